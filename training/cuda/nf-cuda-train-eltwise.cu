/* nf-cuda-train-eltwise.cu — element-wise helpers of GPU training: the loss network's
 * preprocessing and its gradient (nf_vgg_preprocess / _backward on the device), the
 * affine map y = a x + b, the finiteness check of a gradient (mixed-precision overflow),
 * and the copies between the "cuda" layout (fp32 NCHW) and the "cuda-fp16" one (half
 * NHWC) with a scale factor (loss scaling).
 *
 * Arithmetic uses the _rn intrinsics in the host's order (no FMA contraction), so the
 * results are bit-identical to the host functions in nf-vgg.c.
 * What it does not: losses (nf-cuda-losses.cu), Adam (nf-cuda-adam.cu), or the
 * backend's own layout conversions of host data (inference/cuda/nf-cuda-layout.cu).
 */
#include "nf-cuda-train-private.h"

#include "nf-error.h"

/* ---- preprocessing ---------------------------------------------------------------------- */

typedef struct {
  int perm[3];
  float scale[3], shift[3];
} PreParams;

/* x (n, 3, hw) [i] = rgb[b, perm[c], q] * scale[c] + shift[c]; total = n * 3 * hw */
__global__ void
preprocess_kernel (PreParams p, const float *rgb, float *x, size_t hw, size_t total)
{
  size_t stride = (size_t) gridDim.x * blockDim.x;
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    size_t q = i % hw, bc = i / hw, b = bc / 3;
    int c = (int) (bc % 3);
    float v = rgb[(b * 3 + p.perm[c]) * hw + q];
    x[i] = __fadd_rn (__fmul_rn (v, p.scale[c]), p.shift[c]);
  }
}

/* drgb[b, perm[c], q] = dx (n, 3, hw) [i] * scale[c] */
__global__ void
preprocess_backward_kernel (PreParams p, const float *dx, float *drgb, size_t hw,
    size_t total)
{
  size_t stride = (size_t) gridDim.x * blockDim.x;
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    size_t q = i % hw, bc = i / hw, b = bc / 3;
    int c = (int) (bc % 3);
    drgb[(b * 3 + p.perm[c]) * hw + q] = __fmul_rn (dx[i], p.scale[c]);
  }
}

/* perm is a permutation of 0, 1, 2 (so the backward writes every drgb element). */
static gboolean
make_params (const int perm[3], const float scale[3], const float *shift, int n, size_t hw,
    PreParams *p, const char *what, GError **error)
{
  if (!perm || !scale || n < 1 || hw < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: no %s", what,
        !perm ? "permutation" : !scale ? "scale" : "pixels");
    return FALSE;
  }
  gboolean seen[3] = { FALSE, FALSE, FALSE };
  for (int c = 0; c < 3; c++) {
    if (perm[c] < 0 || perm[c] > 2 || seen[perm[c]]) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "%s: (%d, %d, %d) is not a permutation of the channels", what, perm[0], perm[1],
          perm[2]);
      return FALSE;
    }
    seen[perm[c]] = TRUE;
    p->perm[c] = perm[c];
    p->scale[c] = scale[c];
    p->shift[c] = shift ? shift[c] : 0.0f;
  }
  return TRUE;
}

gboolean
nf_cuda_vgg_preprocess (NfCudaTrain *ct, const int perm[3], const float scale[3],
    const float shift[3], const float *rgb, float *x, int n, size_t hw, GError **error)
{
  PreParams p;
  if (!nf_ct_need (rgb, "nf_cuda_vgg_preprocess (rgb)", error)
      || !nf_ct_need (x, "nf_cuda_vgg_preprocess (x)", error)
      || !nf_ct_need (shift, "nf_cuda_vgg_preprocess (shift)", error)
      || !make_params (perm, scale, shift, n, hw, &p, "nf_cuda_vgg_preprocess", error)
      || !nf_ct_enter (ct, error))
    return FALSE;
  size_t total = (size_t) n * 3 * hw;
  preprocess_kernel<<<nf_blocks (total, NF_THREADS), NF_THREADS, 0, nf_ct_stream (ct)>>> (
      p, rgb, x, hw, total);
  return nf_cuda_launch_ok ("preprocess_kernel", error);
}

gboolean
nf_cuda_vgg_preprocess_backward (NfCudaTrain *ct, const int perm[3], const float scale[3],
    const float *dx, float *drgb, int n, size_t hw, GError **error)
{
  PreParams p;
  if (!nf_ct_need (dx, "nf_cuda_vgg_preprocess_backward (dx)", error)
      || !nf_ct_need (drgb, "nf_cuda_vgg_preprocess_backward (drgb)", error)
      || !make_params (perm, scale, NULL, n, hw, &p, "nf_cuda_vgg_preprocess_backward",
          error)
      || !nf_ct_enter (ct, error))
    return FALSE;
  size_t total = (size_t) n * 3 * hw;
  preprocess_backward_kernel<<<nf_blocks (total, NF_THREADS), NF_THREADS, 0,
      nf_ct_stream (ct)>>> (p, dx, drgb, hw, total);
  return nf_cuda_launch_ok ("preprocess_backward_kernel", error);
}

/* ---- affine map, finiteness ----------------------------------------------------------------- */

/* y = a x + b over n floats (x == y allowed: each element read before it is written) */
__global__ void
affine_kernel (const float *x, float *y, size_t n, float a, float b)
{
  size_t stride = (size_t) gridDim.x * blockDim.x;
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = __fadd_rn (__fmul_rn (a, x[i]), b);
}

gboolean
nf_cuda_affine (NfCudaTrain *ct, const float *x, float *y, size_t n, float a, float b,
    GError **error)
{
  if (!nf_ct_need (x, "nf_cuda_affine (x)", error)
      || !nf_ct_need (y, "nf_cuda_affine (y)", error))
    return FALSE;
  if (n == 0)
    return TRUE;
  if (!nf_ct_enter (ct, error))
    return FALSE;
  affine_kernel<<<nf_blocks (n, NF_THREADS), NF_THREADS, 0, nf_ct_stream (ct)>>> (x, y, n,
      a, b);
  return nf_cuda_launch_ok ("affine_kernel", error);
}

/* *flag = 1 when any of n floats is NaN or infinite (every writer writes the same 1) */
__global__ void
finite_kernel (const float *x, size_t n, int *flag)
{
  size_t stride = (size_t) gridDim.x * blockDim.x;
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    if (!isfinite (x[i])) {
      *flag = 1;
      return;
    }
}

gboolean
nf_cuda_all_finite (NfCudaTrain *ct, const float *x, size_t n, gboolean *all_finite,
    GError **error)
{
  if (!nf_ct_need (x, "nf_cuda_all_finite (x)", error)
      || !nf_ct_need (all_finite, "nf_cuda_all_finite (all_finite)", error)
      || !nf_ct_enter (ct, error))
    return FALSE;
  cudaStream_t st = nf_ct_stream (ct);
  NF_CUDA_TRY (cudaMemsetAsync (ct->d_flag, 0, sizeof (int), st), error);
  if (n > 0) {
    finite_kernel<<<nf_blocks (n, NF_THREADS), NF_THREADS, 0, st>>> (x, n, ct->d_flag);
    if (!nf_cuda_launch_ok ("finite_kernel", error))
      return FALSE;
  }
  NF_CUDA_TRY (cudaMemcpyAsync (ct->h_flag, ct->d_flag, sizeof (int), cudaMemcpyDeviceToHost,
          st), error);
  NF_CUDA_TRY (nf_cuda_counted_sync (st), error);
  *all_finite = *ct->h_flag == 0;
  return TRUE;
}

/* ---- mixed-precision layout copies ------------------------------------------------------------ */

/* dst (half NHWC) [i] = src (float NCHW) * scale, i in NHWC memory order */
__global__ void
f32_nchw_to_f16_nhwc_kernel (const float *src, __half *dst, NfDims d, size_t total,
    float scale)
{
  size_t stride = (size_t) gridDim.x * blockDim.x;
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    int n, c, y, x;
    nf_decode<true> (d, i, n, c, y, x);
    dst[i] = __float2half_rn (__fmul_rn (src[nf_off<false> (d, n, c, y, x)], scale));
  }
}

/* dst (float NCHW) [i] = src (half NHWC) * scale, i in NCHW memory order */
__global__ void
f16_nhwc_to_f32_nchw_kernel (const __half *src, float *dst, NfDims d, size_t total,
    float scale)
{
  size_t stride = (size_t) gridDim.x * blockDim.x;
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    int n, c, y, x;
    nf_decode<false> (d, i, n, c, y, x);
    dst[i] = __fmul_rn (__half2float (src[nf_off<true> (d, n, c, y, x)]), scale);
  }
}

gboolean
nf_cuda_f32_nchw_to_f16_nhwc (NfCudaTrain *ct, const float *src, void *dst, NfShape s,
    float scale, GError **error)
{
  if (!nf_ct_need (src, "nf_cuda_f32_nchw_to_f16_nhwc (src)", error)
      || !nf_ct_need (dst, "nf_cuda_f32_nchw_to_f16_nhwc (dst)", error)
      || !nf_ct_check_shape (s, "nf_cuda_f32_nchw_to_f16_nhwc", error)
      || !nf_ct_enter (ct, error))
    return FALSE;
  size_t total = nf_shape_numel (s);
  f32_nchw_to_f16_nhwc_kernel<<<nf_blocks (total, NF_THREADS), NF_THREADS, 0,
      nf_ct_stream (ct)>>> (src, (__half *) dst, nf_dims (s), total, scale);
  return nf_cuda_launch_ok ("f32_nchw_to_f16_nhwc_kernel", error);
}

gboolean
nf_cuda_f16_nhwc_to_f32_nchw (NfCudaTrain *ct, const void *src, float *dst, NfShape s,
    float scale, GError **error)
{
  if (!nf_ct_need (src, "nf_cuda_f16_nhwc_to_f32_nchw (src)", error)
      || !nf_ct_need (dst, "nf_cuda_f16_nhwc_to_f32_nchw (dst)", error)
      || !nf_ct_check_shape (s, "nf_cuda_f16_nhwc_to_f32_nchw", error)
      || !nf_ct_enter (ct, error))
    return FALSE;
  size_t total = nf_shape_numel (s);
  f16_nhwc_to_f32_nchw_kernel<<<nf_blocks (total, NF_THREADS), NF_THREADS, 0,
      nf_ct_stream (ct)>>> ((const __half *) src, dst, nf_dims (s), total, scale);
  return nf_cuda_launch_ok ("f16_nhwc_to_f32_nchw_kernel", error);
}
