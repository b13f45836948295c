/* nf-cuda-values.cu — loss values read once per step (NfCudaValues, nf-cuda-train.h).
 *
 * What it does: NF_CUDA_VALUES_MAX doubles on the device (the slots the second stage of
 * a deferred loss reduction writes, nf_ct_sum_finish), as many in page-locked host
 * memory, and per queued value the host double it goes to and its scale. A read is one
 * asynchronous copy of the queued slots into the page-locked mirror on the backend's
 * stream, after every kernel that writes them, then one stream synchronisation, then
 * *dst = slot * scale for each: the expression an immediate read evaluates
 * (nf-cuda-train.cu), so a deferred value is the same double.
 * What it does not: reduce anything (the losses and nf_ct_sum_finish do), or know what
 * the values mean (the trainers).
 */
#include "nf-cuda-train-private.h"

#include "nf-error.h"

struct NfCudaValues {
  NfBackend *be;
  NfCudaBackend *cb;
  double *d_slots;              /* device (NF_CUDA_VALUES_MAX) */
  double *h_slots;              /* page-locked (NF_CUDA_VALUES_MAX) */
  double *dst[NF_CUDA_VALUES_MAX];
  double scale[NF_CUDA_VALUES_MAX];
  int n;                        /* queued */
};

static gboolean
enter (NfCudaValues *v, GError **error)
{
  if (v->cb->cfg.use_current_context)
    return TRUE;
  return nf_cuda_ok (cudaSetDevice (v->cb->device), "cudaSetDevice", error);
}

NfCudaValues *
nf_cuda_values_new (NfBackend *be, GError **error)
{
  if (!be || !nf_cuda_is_backend (be)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "loss values on the device need a CUDA "
        "backend, not %s", be ? be->iface->name : "none");
    return NULL;
  }
  NfCudaValues *v = g_new0 (NfCudaValues, 1);
  v->be = be;
  v->cb = NF_CUDA (be);
  if (!enter (v, error)
      || !nf_cuda_ok (nf_cuda_counted_malloc ((void **) &v->d_slots,
              NF_CUDA_VALUES_MAX * sizeof (double)), "cudaMalloc (loss value slots)", error)
      || !nf_cuda_ok (nf_cuda_counted_host_alloc ((void **) &v->h_slots,
              NF_CUDA_VALUES_MAX * sizeof (double)), "cudaHostAlloc (loss value slots)",
          error)) {
    nf_cuda_values_free (v);
    return NULL;
  }
  return v;
}

void
nf_cuda_values_free (NfCudaValues *v)
{
  if (!v)
    return;
  GError *e = NULL;
  if (!enter (v, &e)) {
    g_warning ("nf_cuda_values_free: %s", e->message);
    g_clear_error (&e);
  }
  /* a queued copy may still write the page-locked slots; a free has nowhere to return
   * an error, so failures are warnings */
  const char *what[3] = { "cudaStreamSynchronize", "cudaFree", "cudaFreeHost" };
  cudaError_t st[3] = {
    nf_cuda_counted_sync (v->cb->stream),
    nf_cuda_counted_free (v->d_slots),
    v->h_slots ? nf_cuda_counted_host_free (v->h_slots) : cudaSuccess,
  };
  for (int i = 0; i < 3; i++)
    if (st[i] != cudaSuccess)
      g_warning ("nf_cuda_values_free: %s: %s", what[i], cudaGetErrorString (st[i]));
  cudaGetLastError ();
  g_free (v);
}

gboolean
nf_cuda_train_defer (NfCudaTrain *ct, NfCudaValues *v, GError **error)
{
  if (v && v->be != ct->be) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "loss values of %s cannot be queued "
        "with those of another backend (%s)", nf_cuda_backend_description (ct->be),
        nf_cuda_backend_description (v->be));
    return FALSE;
  }
  ct->defer = v;
  return TRUE;
}

int
nf_cuda_values_pending (const NfCudaValues *v)
{
  return v ? v->n : 0;
}

double *
nf_ct_values_slot (NfCudaValues *v, GError **error)
{
  if (v->n < NF_CUDA_VALUES_MAX)
    return v->d_slots + v->n;
  g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "more than %d loss values queued without "
      "a read (nf_cuda_values_read)", NF_CUDA_VALUES_MAX);
  return NULL;
}

void
nf_ct_values_commit (NfCudaValues *v, double *dst, double scale)
{
  v->dst[v->n] = dst;
  v->scale[v->n] = scale;
  v->n++;
}

void
nf_cuda_values_drop (NfCudaValues *v)
{
  if (v)
    v->n = 0;
}

gboolean
nf_cuda_values_read (NfCudaValues *v, GError **error)
{
  int n = v->n;
  v->n = 0;
  if (n == 0)
    return TRUE;
  if (!enter (v, error))
    return FALSE;
  /* on the stream after the kernels that wrote the slots; h_slots is page-locked */
  NF_CUDA_TRY (cudaMemcpyAsync (v->h_slots, v->d_slots, n * sizeof (double),
          cudaMemcpyDeviceToHost, v->cb->stream), error);
  NF_CUDA_TRY (nf_cuda_counted_sync (v->cb->stream), error);
  for (int k = 0; k < n; k++)
    *v->dst[k] = v->h_slots[k] * v->scale[k];
  return TRUE;
}
