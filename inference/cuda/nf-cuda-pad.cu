/* nf-cuda-pad.cu — reflection padding, the step before a cuDNN convolution whose
 * graph asks for pad "reflect" (cuDNN pads with zeros only), and its backward; with it
 * (or alone, p = 0) the zero channels of fp16's padded first-layer input.
 *
 * What it does: y (N, C', H + 2p, W + 2p) = x reflected at every edge without repeating
 * the edge pixel (PyTorch's ReflectionPad2d, as cpu-ref's reflect()), channels C..C'-1
 * zero, one thread per output element in the layout's memory order (so every element of
 * y is written). Backward (the fold): every input pixel
 * gathers the gradients of all padded positions that copied it (a gather, so no
 * atomics and the same sum in the same order every run): along one axis of length n
 * (n > 1) the padded coordinates t - p that reflect onto i are those congruent to i or
 * to -i modulo 2 (n - 1) within [-p, n + p); for n == 1 all of them.
 * What it does not: zero padding (cuDNN's own), or asymmetric pads.
 */
#include "nf-cuda-private.h"

/* y (N, yd.c >= xd.c, H + 2p, W + 2p): every element written, channels from xd.c on 0. */
template <typename L>
__global__ void
reflect_pad_kernel (const typename L::T *__restrict__ x, NfDims xd,
    typename L::T *__restrict__ y, NfDims yd, int pad, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, py, px;
    nf_decode<L::nhwc> (yd, i, b, c, py, px);
    if (c < xd.c)
      y[i] = x[nf_off<L::nhwc> (xd, b, c, nf_reflect (py - pad, xd.h),
              nf_reflect (px - pad, xd.w))];
    else
      nf_st (y + i, 0.0f);
  }
}

gboolean
nf_cuda_launch_reflect_pad (NfCudaBackend *be, const void *x, NfShape xs, void *y, int pad,
    int yc, GError **error)
{
  if (yc < xs.c) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "reflect_pad: %d output channels for %d input channels", yc, xs.c);
    return FALSE;
  }
  NfShape ys = { xs.n, yc, xs.h + 2 * pad, xs.w + 2 * pad };
  size_t n = nf_shape_numel (ys);
  unsigned blocks = nf_blocks (n, NF_THREADS);
  if (be->fp16)
    reflect_pad_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, be->stream>>> (
        (const __half *) x, nf_dims (xs), (__half *) y, nf_dims (ys), pad, n);
  else
    reflect_pad_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, be->stream>>> (
        (const float *) x, nf_dims (xs), (float *) y, nf_dims (ys), pad, n);
  return nf_cuda_launch_ok ("reflect_pad_kernel", error);
}

/* ---- backward: fold the padded gradient back ----------------------------------------- */

/* Calls f (t) for every padded coordinate t in 0 .. n + 2p - 1 whose reflection onto
 * 0 .. n - 1 is i. */
template <typename F>
__device__ __forceinline__ void
for_each_source (int i, int n, int pad, F f)
{
  if (n <= 1) {
    for (int t = 0; t < n + 2 * pad; t++)
      f (t);
    return;
  }
  int period = 2 * (n - 1);
  int r[2] = { i, (period - i) % period };
  int nr = (r[1] == r[0]) ? 1 : 2;       /* the edges (0 and n - 1) are their own mirror */
  for (int k = 0; k < nr; k++)
    /* smallest u >= -pad with u = r (mod period), then every period up to n + pad */
    for (int u = r[k] - ((r[k] + pad) / period) * period; u < n + pad; u += period)
      f (u + pad);
}

/* dx (N, C, H, W) += dxp folded; dxp (N, pd.c >= C, H + 2p, W + 2p): channels from C
 * on (zero padding of the input) are not read. */
template <typename L>
__global__ void
reflect_fold_kernel (const typename L::T *__restrict__ dxp, NfDims pd,
    typename L::T *__restrict__ dx, NfDims xd, int pad, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, y, x;
    nf_decode<L::nhwc> (xd, i, b, c, y, x);
    float s = 0.0f;
    for_each_source (y, xd.h, pad, [&] (int ty) {
          for_each_source (x, xd.w, pad, [&] (int tx) {
                s += nf_ld (dxp + nf_off<L::nhwc> (pd, b, c, ty, tx));
              });
        });
    nf_st (dx + i, nf_ld (dx + i) + s);
  }
}

gboolean
nf_cuda_launch_reflect_fold (NfCudaBackend *be, const void *dxp, NfShape xs, void *dx,
    int pad, int pc, GError **error)
{
  if (pc < xs.c) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "reflect_fold: %d padded channels for %d channels", pc, xs.c);
    return FALSE;
  }
  NfShape ps = { xs.n, pc, xs.h + 2 * pad, xs.w + 2 * pad };
  size_t n = nf_shape_numel (xs);
  if (n == 0)
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  if (be->fp16)
    reflect_fold_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, be->stream>>> (
        (const __half *) dxp, nf_dims (ps), (__half *) dx, nf_dims (xs), pad, n);
  else
    reflect_fold_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, be->stream>>> (
        (const float *) dxp, nf_dims (ps), (float *) dx, nf_dims (xs), pad, n);
  return nf_cuda_launch_ok ("reflect_fold_kernel", error);
}
