/* nf-cuda-train-private.h — what the training kernels' .cu files share (C++ only).
 *
 * What it does: the NfCudaTrain object (backend, cuBLAS handle, reduction scratch, Gram
 * scratch), the cuBLAS status -> GError helper, "enter" (the backend's device made
 * current), argument checks, and the two-stage sum reduction every loss uses:
 *   stage 1 (in each loss kernel): every thread accumulates its elements in fp32, the
 *           block sums its threads in fp32 (warp shuffles), thread 0 stores the block's
 *           sum as a double in ct->d_partial[blockIdx.x];
 *   stage 2 (nf_ct_sum_finish): one block adds the partials in double and the result
 *           is copied to pinned host memory, read after a stream synchronisation; or,
 *           when ct defers its values, left in a slot of its NfCudaValues, read later
 *           with the others (nf-cuda-values.cu).
 * What it does not: define any public entry point (nf-cuda-train.h is the API).
 */
#pragma once

#include <cublas_v2.h>

#include "nf-cuda-private.h"
#include "nf-cuda-train.h"

/* Blocks of the stage-1 reduction kernels (also the size of d_partial). */
#define NF_CT_RED_BLOCKS 2048
#define NF_CT_RED_THREADS 256

struct NfCudaTrain {
  NfBackend *be;
  NfCudaBackend *cb;            /* the same, as the CUDA backend object */
  cublasHandle_t blas;          /* bound to the backend's stream, FP32 pedantic math */
  double *d_partial;            /* (NF_CT_RED_BLOCKS) stage-1 block sums */
  double *d_result;             /* (1) stage-2 sum */
  int *d_flag;                  /* (1) all_finite: set to 1 by any non-finite value */
  double *h_result;             /* pinned (1) */
  int *h_flag;                  /* pinned (1) */
  float *d_gram;                /* (gram_cap) Gram / G - T scratch of the Gram loss */
  size_t gram_cap;              /* floats */
  NfCudaValues *defer;          /* not owned: losses queue their values here; NULL: read */
};

static inline cudaStream_t
nf_ct_stream (const NfCudaTrain *ct)
{
  return ct->cb->stream;
}

/* The backend's device made current (nothing in the caller's-context mode, where the
 * caller keeps its context current, as the backend itself does). */
gboolean nf_ct_enter (NfCudaTrain *ct, GError **error);
/* FALSE + error (NF_CUDA_ERROR) when st is not success; what: the call. */
gboolean nf_cublas_ok (cublasStatus_t st, const char *what, GError **error);
/* FALSE + NF_ERROR_ARGUMENT error naming what when p is NULL. */
gboolean nf_ct_need (const void *p, const char *what, GError **error);
/* A shape with every dimension >= 1 (for a loss of the named kind). */
gboolean nf_ct_check_shape (NfShape s, const char *what, GError **error);
/* Number of stage-1 blocks for n elements (1..NF_CT_RED_BLOCKS). */
unsigned nf_ct_red_blocks (size_t n);
/* Stage 2: sums the first n_blocks partials in double; *sum (host) = that sum times
 * scale. Synchronises the backend's stream. */
gboolean nf_ct_sum_finish (NfCudaTrain *ct, unsigned n_blocks, double scale, double *sum,
    GError **error);
/* The device slot the next deferred value of v goes to, or NULL + error when
 * NF_CUDA_VALUES_MAX are queued already; nf_ct_values_commit then queues it: its value
 * will be written to *dst times scale. */
double *nf_ct_values_slot (NfCudaValues *v, GError **error);
void nf_ct_values_commit (NfCudaValues *v, double *dst, double scale);
/* ct->d_gram holds at least floats floats (synchronises before growing it). */
gboolean nf_ct_gram_reserve (NfCudaTrain *ct, size_t floats, GError **error);

/* Stage 1's block sum: every thread of the block passes its value; thread 0 gets the
 * block's sum back (others: unspecified). blockDim.x must be NF_CT_RED_THREADS. */
__device__ __forceinline__ float
nf_ct_block_sum (float v)
{
  __shared__ float warp_sums[NF_CT_RED_THREADS / 32];
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_down_sync (0xffffffffu, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0)
    warp_sums[warp] = v;
  __syncthreads ();
  if (warp == 0) {
    v = lane < NF_CT_RED_THREADS / 32 ? warp_sums[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1)
      v += __shfl_down_sync (0xffffffffu, v, o);
  }
  return v;
}
