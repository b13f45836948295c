/* nf-cuda-pad.cu — reflection padding, the step before a cuDNN convolution whose
 * graph asks for pad "reflect" (cuDNN pads with zeros only).
 *
 * What it does: y (N, C, H + 2p, W + 2p) = x reflected at every edge without repeating
 * the edge pixel (PyTorch's ReflectionPad2d, as cpu-ref's reflect()), one thread per
 * output element in the layout's memory order.
 * What it does not: zero padding (cuDNN's own), or asymmetric pads.
 */
#include "nf-cuda-private.h"

template <typename L>
__global__ void
reflect_pad_kernel (const typename L::T *__restrict__ x, NfDims xd,
    typename L::T *__restrict__ y, NfDims yd, int pad, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, py, px;
    nf_decode<L::nhwc> (yd, i, b, c, py, px);
    y[i] = x[nf_off<L::nhwc> (xd, b, c, nf_reflect (py - pad, xd.h),
            nf_reflect (px - pad, xd.w))];
  }
}

gboolean
nf_cuda_launch_reflect_pad (NfCudaBackend *be, const void *x, NfShape xs, void *y, int pad,
    GError **error)
{
  NfShape ys = { xs.n, xs.c, xs.h + 2 * pad, xs.w + 2 * pad };
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
