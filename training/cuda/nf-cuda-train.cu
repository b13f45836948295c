/* nf-cuda-train.cu — the NfCudaTrain object: creation on a CUDA backend (cuBLAS handle
 * on the backend's stream, reduction scratch), its helpers shared by the other training
 * .cu files (errors, argument checks, the second stage of the sum reductions, read at
 * once or deferred into an NfCudaValues, the Gram scratch).
 *
 * cuBLAS math mode: CUBLAS_PEDANTIC_MATH, so the Gram products are plain FP32 (no TF32,
 * no BF16x9 emulation, whatever NVIDIA_TF32_OVERRIDE or cuBLAS's emulation variables
 * say) and match the host's sgemm to FP32 rounding; the products are a small part of a
 * training step (the loss network's convolutions dominate), so the cost does not show.
 * What it does not: any loss, optimiser or layout arithmetic (nf-cuda-losses.cu,
 * nf-cuda-adam.cu, nf-cuda-train-eltwise.cu), or NCCL (nf-cuda-group.cu).
 */
#include "nf-cuda-train-private.h"

#include "nf-error.h"

/* ---- helpers ------------------------------------------------------------------------ */

gboolean
nf_ct_enter (NfCudaTrain *ct, GError **error)
{
  if (ct->cb->cfg.use_current_context)
    return TRUE;
  return nf_cuda_ok (cudaSetDevice (ct->cb->device), "cudaSetDevice", error);
}

gboolean
nf_cublas_ok (cublasStatus_t st, const char *what, GError **error)
{
  if (st == CUBLAS_STATUS_SUCCESS)
    return TRUE;
  NfCudaErrorCode code = st == CUBLAS_STATUS_ALLOC_FAILED ? NF_CUDA_ERROR_OUT_OF_MEMORY
      : st == CUBLAS_STATUS_ARCH_MISMATCH ? NF_CUDA_ERROR_NO_DEVICE : NF_CUDA_ERROR_FAILED;
  g_set_error (error, NF_CUDA_ERROR, code, "cublas: %s: %s (status %d)", what,
      cublasGetStatusString (st), (int) st);
  return FALSE;
}

gboolean
nf_ct_need (const void *p, const char *what, GError **error)
{
  if (p)
    return TRUE;
  g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: NULL device pointer", what);
  return FALSE;
}

gboolean
nf_ct_check_shape (NfShape s, const char *what, GError **error)
{
  if (s.n >= 1 && s.c >= 1 && s.h >= 1 && s.w >= 1)
    return TRUE;
  g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: bad shape (%d, %d, %d, %d)", what,
      s.n, s.c, s.h, s.w);
  return FALSE;
}

unsigned
nf_ct_red_blocks (size_t n)
{
  /* at least 4 elements per thread before a new block is added */
  size_t b = (n + 4 * NF_CT_RED_THREADS - 1) / (4 * NF_CT_RED_THREADS);
  return (unsigned) (b < 1 ? 1 : b > NF_CT_RED_BLOCKS ? NF_CT_RED_BLOCKS : b);
}

/* partial (n) -> *out = sum in double (one block of 256 threads) */
__global__ void
sum_finish_kernel (const double *partial, unsigned n, double *out)
{
  __shared__ double s[256];
  double acc = 0.0;
  for (unsigned i = threadIdx.x; i < n; i += blockDim.x)
    acc += partial[i];
  s[threadIdx.x] = acc;
  __syncthreads ();
  for (unsigned o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o)
      s[threadIdx.x] += s[threadIdx.x + o];
    __syncthreads ();
  }
  if (threadIdx.x == 0)
    *out = s[0];
}

gboolean
nf_ct_sum_finish (NfCudaTrain *ct, unsigned n_blocks, double scale, double *sum,
    GError **error)
{
  cudaStream_t st = nf_ct_stream (ct);
  double *out = ct->defer ? nf_ct_values_slot (ct->defer, error) : ct->d_result;
  if (!out)
    return FALSE;
  sum_finish_kernel<<<1, 256, 0, st>>> (ct->d_partial, n_blocks, out);
  if (!nf_cuda_launch_ok ("sum_finish_kernel", error))
    return FALSE;
  if (ct->defer) {
    /* read later with the step's other values (nf_cuda_values_read) */
    nf_ct_values_commit (ct->defer, sum, scale);
    return TRUE;
  }
  NF_CUDA_TRY (cudaMemcpyAsync (ct->h_result, ct->d_result, sizeof (double),
          cudaMemcpyDeviceToHost, st), error);
  NF_CUDA_TRY (nf_cuda_counted_sync (st), error);
  *sum = *ct->h_result * scale;
  return TRUE;
}

gboolean
nf_ct_gram_reserve (NfCudaTrain *ct, size_t floats, GError **error)
{
  if (floats <= ct->gram_cap)
    return TRUE;
  /* the old scratch may still be read by queued work */
  NF_CUDA_TRY (nf_cuda_counted_sync (nf_ct_stream (ct)), error);
  if (ct->d_gram) {
    NF_CUDA_TRY (nf_cuda_counted_free (ct->d_gram), error);
    ct->d_gram = NULL;
    ct->gram_cap = 0;
  }
  if (!nf_cuda_ok (nf_cuda_counted_malloc ((void **) &ct->d_gram, floats * sizeof (float)),
          "cudaMalloc (Gram scratch)", error))
    return FALSE;
  ct->gram_cap = floats;
  return TRUE;
}

/* ---- the object ------------------------------------------------------------------------ */

NfCudaTrain *
nf_cuda_train_new (NfBackend *be, GError **error)
{
  if (!be || !nf_cuda_is_backend (be)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "GPU training arithmetic needs a CUDA backend, not %s",
        be ? be->iface->name : "none");
    return NULL;
  }
  NfCudaTrain *ct = g_new0 (NfCudaTrain, 1);
  ct->be = be;
  ct->cb = NF_CUDA (be);
  if (!nf_ct_enter (ct, error))
    goto fail;
  if (!nf_cuda_ok (nf_cuda_counted_malloc ((void **) &ct->d_partial,
              NF_CT_RED_BLOCKS * sizeof (double)),
          "cudaMalloc (reduction partials)", error)
      || !nf_cuda_ok (nf_cuda_counted_malloc ((void **) &ct->d_result, sizeof (double)),
          "cudaMalloc (reduction result)", error)
      || !nf_cuda_ok (nf_cuda_counted_malloc ((void **) &ct->d_flag, sizeof (int)),
          "cudaMalloc (finite flag)", error)
      || !nf_cuda_ok (nf_cuda_counted_host_alloc ((void **) &ct->h_result, sizeof (double)),
          "cudaMallocHost (reduction result)", error)
      || !nf_cuda_ok (nf_cuda_counted_host_alloc ((void **) &ct->h_flag, sizeof (int)),
          "cudaMallocHost (finite flag)", error))
    goto fail;
  if (!nf_cublas_ok (cublasCreate (&ct->blas), "cublasCreate", error)) {
    ct->blas = NULL;
    goto fail;
  }
  if (!nf_cublas_ok (cublasSetStream (ct->blas, nf_ct_stream (ct)), "cublasSetStream", error)
      || !nf_cublas_ok (cublasSetMathMode (ct->blas, CUBLAS_PEDANTIC_MATH),
          "cublasSetMathMode (CUBLAS_PEDANTIC_MATH)", error)
      || !nf_cublas_ok (cublasSetPointerMode (ct->blas, CUBLAS_POINTER_MODE_HOST),
          "cublasSetPointerMode", error))
    goto fail;
  return ct;

fail:
  g_prefix_error (error, "GPU training state on %s: ", nf_cuda_backend_description (be));
  nf_cuda_train_free (ct);
  return NULL;
}

/* Frees with a warning on failure (a free has nowhere to return an error). */
static void
release (cudaError_t st, const char *what)
{
  if (st != cudaSuccess)
    g_warning ("nf_cuda_train_free: %s: %s", what, cudaGetErrorString (st));
}

void
nf_cuda_train_free (NfCudaTrain *ct)
{
  if (!ct)
    return;
  GError *e = NULL;
  if (!nf_ct_enter (ct, &e)) {
    g_warning ("nf_cuda_train_free: %s", e->message);
    g_clear_error (&e);
  }
  /* queued kernels may still use the scratch */
  release (nf_cuda_counted_sync (nf_ct_stream (ct)), "cudaStreamSynchronize");
  if (ct->blas) {
    cublasStatus_t st = cublasDestroy (ct->blas);
    if (st != CUBLAS_STATUS_SUCCESS)
      g_warning ("nf_cuda_train_free: cublasDestroy: %s", cublasGetStatusString (st));
  }
  if (ct->d_partial)
    release (nf_cuda_counted_free (ct->d_partial), "cudaFree (partials)");
  if (ct->d_result)
    release (nf_cuda_counted_free (ct->d_result), "cudaFree (result)");
  if (ct->d_flag)
    release (nf_cuda_counted_free (ct->d_flag), "cudaFree (flag)");
  if (ct->d_gram)
    release (nf_cuda_counted_free (ct->d_gram), "cudaFree (Gram scratch)");
  if (ct->h_result)
    release (nf_cuda_counted_host_free (ct->h_result), "cudaFreeHost (result)");
  if (ct->h_flag)
    release (nf_cuda_counted_host_free (ct->h_flag), "cudaFreeHost (flag)");
  g_free (ct);
}

NfBackend *
nf_cuda_train_backend (NfCudaTrain *ct)
{
  return ct ? ct->be : NULL;
}
