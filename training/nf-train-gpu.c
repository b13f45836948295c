/* nf-train-gpu.c — device memory for training on a CUDA backend (see nf-train-gpu.h).
 *
 * What it does: cudaMemsetAsync / cudaMemcpyAsync on the backend's stream, with the
 * backend's device made current first and every return code turned into a GError;
 * allocation through nf_cuda_device_alloc and synchronisation through the backend
 * (nf-cuda.h), so both are counted (nf_cuda_counters).
 * What it does not: kernels (training/cuda/), anything about networks.
 */
#include "nf-train-gpu.h"

#include <cuda_runtime_api.h>

#include "nf-cuda.h"
#include "nf-error.h"

static gboolean
cuda_ok (cudaError_t st, const char *what, GError **error)
{
  if (st == cudaSuccess)
    return TRUE;
  g_set_error (error, NF_CUDA_ERROR, st == cudaErrorMemoryAllocation
      ? NF_CUDA_ERROR_OUT_OF_MEMORY : NF_CUDA_ERROR_FAILED, "%s: %s (%s)", what,
      cudaGetErrorString (st), cudaGetErrorName (st));
  return FALSE;
}

static gboolean
enter (NfBackend *be, GError **error)
{
  return cuda_ok (cudaSetDevice (nf_cuda_backend_device (be)), "cudaSetDevice", error);
}

static cudaStream_t
stream_of (NfBackend *be)
{
  return (cudaStream_t) nf_cuda_backend_stream (be);
}

gboolean
nf_gpu_is_backend (const NfBackend *be)
{
  return be && nf_cuda_is_backend (be);
}

gboolean
nf_gpu_is_fp16 (const NfBackend *be)
{
  return nf_gpu_is_backend (be) && nf_cuda_backend_precision (be) == NF_CUDA_FP16;
}

size_t
nf_gpu_elem_size (const NfBackend *be)
{
  return nf_gpu_is_fp16 (be) ? 2 : 4;
}

NfBackend *
nf_gpu_backend_on_device (const NfBackend *like, int device, GError **error)
{
  NfCudaConfig cfg = {.precision = nf_cuda_backend_precision (like),.device = device };
  return nf_cuda_backend_new (&cfg, error);
}

int
nf_gpu_device_count (GError **error)
{
  return nf_cuda_device_count (error);
}

float *
nf_gpu_alloc_floats (NfBackend *be, size_t n, GError **error)
{
  float *p = nf_cuda_device_alloc (be, MAX (n, 1) * sizeof (float), error);
  if (p && !nf_gpu_zero (be, p, MAX (n, 1) * sizeof (float), error)) {
    nf_cuda_device_free (be, p);
    return NULL;
  }
  return p;
}

void
nf_gpu_free (NfBackend *be, void *p)
{
  if (p)
    nf_cuda_device_free (be, p);
}

void *
nf_gpu_host_alloc (gpointer be, size_t bytes, GError **error)
{
  return nf_cuda_host_alloc (be, bytes, error);
}

void
nf_gpu_host_free (gpointer be, void *p)
{
  if (p)
    nf_cuda_host_free (be, p);
}

gboolean
nf_gpu_zero (NfBackend *be, void *dev, size_t bytes, GError **error)
{
  if (!enter (be, error))
    return FALSE;
  return bytes == 0 || cuda_ok (cudaMemsetAsync (dev, 0, bytes, stream_of (be)),
      "cudaMemsetAsync", error);
}

gboolean
nf_gpu_copy (NfBackend *be, void *dst, const void *src, size_t bytes, GError **error)
{
  if (!enter (be, error))
    return FALSE;
  return bytes == 0 || cuda_ok (cudaMemcpyAsync (dst, src, bytes, cudaMemcpyDefault,
          stream_of (be)), "cudaMemcpyAsync", error);
}

gboolean
nf_gpu_sync (NfBackend *be, GError **error)
{
  /* the backend's own (it makes its device current first), counted (nf_cuda_counters) */
  return be->iface->synchronize (be, error);
}

/* ---- the flat parameter buffer on the device ------------------------------------------- */

NfGpuParams *
nf_gpu_params_new (NfBackend *be, size_t n, GError **error)
{
  float *mem = nf_gpu_alloc_floats (be, 4 * n, error);
  if (!mem)
    return NULL;
  NfGpuParams *d = g_new0 (NfGpuParams, 1);
  d->be = be;
  d->n = n;
  d->mem = mem;
  d->params = mem;
  d->grads = mem + n;
  d->m = mem + 2 * n;
  d->v = mem + 3 * n;
  return d;
}

void
nf_gpu_params_free (NfGpuParams *d)
{
  if (!d)
    return;
  nf_gpu_free (d->be, d->mem);
  g_free (d);
}

static gboolean
transfer (NfGpuParams *d, NfParams *host, gboolean up, gboolean params, gboolean grads,
    gboolean moments, GError **error)
{
  if (host->n != d->n) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "parameter buffers differ: %zu on the host, %zu on the device", host->n, d->n);
    return FALSE;
  }
  size_t b = d->n * sizeof (float);
  float *hp[4] = { host->params, host->grads, host->m, host->v };
  float *dp[4] = { d->params, d->grads, d->m, d->v };
  gboolean which[4] = { params, grads, moments, moments };
  for (int i = 0; i < 4; i++)
    if (which[i] && !nf_gpu_copy (d->be, up ? (void *) dp[i] : (void *) hp[i],
            up ? (const void *) hp[i] : (const void *) dp[i], b, error))
      return FALSE;
  /* pageable host memory: wait until the copies have read / written it */
  return nf_gpu_sync (d->be, error);
}

gboolean
nf_gpu_params_upload (NfGpuParams *d, const NfParams *host, gboolean params, gboolean grads,
    gboolean moments, GError **error)
{
  return transfer (d, (NfParams *) host, TRUE, params, grads, moments, error);
}

gboolean
nf_gpu_params_download (NfGpuParams *d, NfParams *host, gboolean params, gboolean grads,
    gboolean moments, GError **error)
{
  return transfer (d, host, FALSE, params, grads, moments, error);
}
