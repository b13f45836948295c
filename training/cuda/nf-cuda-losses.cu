/* nf-cuda-losses.cu — the losses of nf-losses.h on the GPU: feature/pixel MSE, Gram
 * matrices (cuBLAS strided-batched sgemm, FP32), the Gram (style) loss and total
 * variation, each with its value (two-stage reduction, nf-cuda-train-private.h) and its
 * gradient ACCUMULATED into grad.
 *
 * Matching the host twins: element-wise arithmetic uses the _rn intrinsics (no FMA
 * contraction, as the host's ISO C build) in the host's order, so the MSE and TV
 * gradients are bit-identical to nf_loss_content / nf_loss_tv; the Gram loss follows
 * nf_loss_gram (G = F F^T / K, E = G - T, grad += alpha E F with alpha = weight * 4 /
 * (N*C*C*K), K = C*H*W), which equals nf_loss_gram_ref's (D + D^T) F / K for symmetric
 * D = 2 E / (N*C*C).
 * What it does not: choose layers or weights (the trainers), or preprocess (nf-cuda-
 * train-eltwise.cu).
 */
#include "nf-cuda-train-private.h"

#include <limits.h>

#include "nf-error.h"

/* ---- MSE ---------------------------------------------------------------------------- */

/* sum (f - p)^2 per block -> partial; grad += k (f - p) (grad may be NULL); n floats */
__global__ void
mse_kernel (const float *f, const float *p, size_t n, float k, float *grad,
    double *partial)
{
  float acc = 0.0f;
  size_t stride = (size_t) gridDim.x * blockDim.x;
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    float d = __fsub_rn (f[i], p[i]);
    acc = __fadd_rn (acc, __fmul_rn (d, d));
    if (grad)
      grad[i] = __fadd_rn (grad[i], __fmul_rn (k, d));
  }
  float s = nf_ct_block_sum (acc);
  if (threadIdx.x == 0)
    partial[blockIdx.x] = s;
}

gboolean
nf_cuda_loss_mse (NfCudaTrain *ct, const float *f, const float *p, size_t n, double weight,
    float *grad, double *loss, GError **error)
{
  if (!nf_ct_need (f, "nf_cuda_loss_mse (f)", error)
      || !nf_ct_need (p, "nf_cuda_loss_mse (p)", error))
    return FALSE;
  if (n == 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "nf_cuda_loss_mse: no elements");
    return FALSE;
  }
  if (!grad && !loss)
    return TRUE;
  if (!nf_ct_enter (ct, error))
    return FALSE;
  unsigned blocks = nf_ct_red_blocks (n);
  float k = (float) (2.0 * weight / n);                               // as nf_loss_content
  mse_kernel<<<blocks, NF_CT_RED_THREADS, 0, nf_ct_stream (ct)>>> (f, p, n, k, grad,
      ct->d_partial);
  if (!nf_cuda_launch_ok ("mse_kernel", error))
    return FALSE;
  return !loss || nf_ct_sum_finish (ct, blocks, 1.0 / n, loss, error);
}

/* ---- Gram matrices -------------------------------------------------------------------- */

/* The Gram shapes cuBLAS takes (int dimensions). */
static gboolean
check_gram_shape (NfShape s, const char *what, GError **error)
{
  if (!nf_ct_check_shape (s, what, error))
    return FALSE;
  if ((size_t) s.h * s.w > INT_MAX) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: %d x %d pixels is too many for "
        "one cuBLAS product", what, s.h, s.w);
    return FALSE;
  }
  return TRUE;
}

/* g (N, C, C) = alpha * F_n F_n^T + beta * g for every n, F_n = f's (C, HW) image n.
 * Row-major F_n is column-major F_n^T (HW x C, ld HW), so G = (F^T)^T F^T: op T, op N. */
static gboolean
gram_gemm (NfCudaTrain *ct, const float *f, NfShape s, float alpha, float *g,
    GError **error)
{
  int c = s.c, hw = s.h * s.w;
  float beta = 0.0f;
  return nf_cublas_ok (cublasSgemmStridedBatched (ct->blas, CUBLAS_OP_T, CUBLAS_OP_N,
          c, c, hw, &alpha,
          f, hw, (long long) c * hw,
          f, hw, (long long) c * hw,
          &beta, g, c, (long long) c * c, s.n),
      "cublasSgemmStridedBatched (Gram F F^T)", error);
}

gboolean
nf_cuda_gram (NfCudaTrain *ct, const float *f, NfShape s, float *g, GError **error)
{
  if (!nf_ct_need (f, "nf_cuda_gram (f)", error) || !nf_ct_need (g, "nf_cuda_gram (g)", error)
      || !check_gram_shape (s, "nf_cuda_gram", error) || !nf_ct_enter (ct, error))
    return FALSE;
  float inv_k = (float) (1.0 / ((double) s.c * s.h * s.w));           // as nf_gram
  return gram_gemm (ct, f, s, inv_k, g, error);
}

/* g (N, C, C) -> g - t (t (C, C) for every n), in place; sum of squares per block */
__global__ void
gram_diff_kernel (float *g, const float *t, size_t cc, size_t total, double *partial)
{
  float acc = 0.0f;
  size_t stride = (size_t) gridDim.x * blockDim.x;
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    float e = __fsub_rn (g[i], t[i % cc]);
    acc = __fadd_rn (acc, __fmul_rn (e, e));
    g[i] = e;
  }
  float s = nf_ct_block_sum (acc);
  if (threadIdx.x == 0)
    partial[blockIdx.x] = s;
}

gboolean
nf_cuda_loss_gram (NfCudaTrain *ct, const float *f, NfShape s, const float *target,
    double weight, float *grad, double *loss, GError **error)
{
  if (!nf_ct_need (f, "nf_cuda_loss_gram (f)", error)
      || !nf_ct_need (target, "nf_cuda_loss_gram (target)", error)
      || !check_gram_shape (s, "nf_cuda_loss_gram", error))
    return FALSE;
  if (!grad && !loss)
    return TRUE;
  int c = s.c, hw = s.h * s.w;
  size_t cc = (size_t) c * c, total = (size_t) s.n * cc;
  double k = (double) c * hw;
  if (!nf_ct_enter (ct, error) || !nf_ct_gram_reserve (ct, total, error))
    return FALSE;
  float *e = ct->d_gram;                                              // (N, C, C)
  if (!gram_gemm (ct, f, s, (float) (1.0 / k), e, error))
    return FALSE;
  unsigned blocks = nf_ct_red_blocks (total);
  gram_diff_kernel<<<blocks, NF_CT_RED_THREADS, 0, nf_ct_stream (ct)>>> (e, target, cc,
      total, ct->d_partial);
  if (!nf_cuda_launch_ok ("gram_diff_kernel", error))
    return FALSE;
  if (grad) {
    /* grad_n (C, HW) += alpha E_n (C, C) F_n (C, HW); column-major: grad_n^T (HW x C) =
     * F_n^T (HW x C, ld HW) E_n^T (C x C, ld C) + grad_n^T, op N, op N. */
    float alpha = (float) (weight * 4.0 / ((double) s.n * cc * k));     // as nf_loss_gram
    float beta = 1.0f;
    if (!nf_cublas_ok (cublasSgemmStridedBatched (ct->blas, CUBLAS_OP_N, CUBLAS_OP_N,
                hw, c, c, &alpha,
                f, hw, (long long) c * hw,
                e, c, (long long) cc,
                &beta, grad, hw, (long long) c * hw, s.n),
            "cublasSgemmStridedBatched (Gram loss gradient E F)", error))
      return FALSE;
  }
  return !loss || nf_ct_sum_finish (ct, blocks, 1.0 / (double) total, loss, error);
}

/* ---- total variation -------------------------------------------------------------------- */

/* x (N, C, H, W): per element its right and lower squared differences (summed per
 * block) and, when grad is not NULL, its gradient gathered from its four neighbour
 * differences in the order nf_loss_tv adds them (upper, left, own right, own lower). */
__global__ void
tv_kernel (const float *x, size_t total, int h, int w, float gk, float *grad,
    double *partial)
{
  float acc = 0.0f;
  size_t stride = (size_t) gridDim.x * blockDim.x;
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    int xx = (int) (i % w), yy = (int) ((i / w) % h);
    float v = x[i];
    float dr = xx + 1 < w ? __fsub_rn (x[i + 1], v) : 0.0f;
    float dd = yy + 1 < h ? __fsub_rn (x[i + w], v) : 0.0f;
    acc = __fadd_rn (acc, __fadd_rn (__fmul_rn (dr, dr), __fmul_rn (dd, dd)));
    if (grad) {
      float gv = grad[i];
      if (yy > 0)
        gv = __fadd_rn (gv, __fmul_rn (gk, __fsub_rn (v, x[i - w])));
      if (xx > 0)
        gv = __fadd_rn (gv, __fmul_rn (gk, __fsub_rn (v, x[i - 1])));
      if (xx + 1 < w)
        gv = __fsub_rn (gv, __fmul_rn (gk, dr));
      if (yy + 1 < h)
        gv = __fsub_rn (gv, __fmul_rn (gk, dd));
      grad[i] = gv;
    }
  }
  float s = nf_ct_block_sum (acc);
  if (threadIdx.x == 0)
    partial[blockIdx.x] = s;
}

gboolean
nf_cuda_loss_tv (NfCudaTrain *ct, const float *x, NfShape s, double weight, float *grad,
    double *loss, GError **error)
{
  if (!nf_ct_need (x, "nf_cuda_loss_tv (x)", error)
      || !nf_ct_check_shape (s, "nf_cuda_loss_tv", error))
    return FALSE;
  if (!grad && !loss)
    return TRUE;
  if (!nf_ct_enter (ct, error))
    return FALSE;
  size_t total = nf_shape_numel (s);
  float gk = (float) (2.0 * weight / (double) total);                 // as nf_loss_tv
  unsigned blocks = nf_ct_red_blocks (total);
  tv_kernel<<<blocks, NF_CT_RED_THREADS, 0, nf_ct_stream (ct)>>> (x, total, s.h, s.w, gk,
      grad, ct->d_partial);
  if (!nf_cuda_launch_ok ("tv_kernel", error))
    return FALSE;
  return !loss || nf_ct_sum_finish (ct, blocks, 1.0 / (double) total, loss, error);
}
