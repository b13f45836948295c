/* nf-cuda-resample.cu — ops that move pixels between sizes: upsample_nearest and
 * pixel_shuffle.
 *
 * What it does: one thread per output element (in the layout's memory order, so
 * writes are coalesced) gathers its input element. Semantics are cpu-ref's:
 * upsample y[n, c, oy, ox] = x[n, c, oy / f, ox / f]; pixel_shuffle (PyTorch)
 * y[n, c, oy, ox] = x[n, c*r*r + (oy % r)*r + (ox % r), oy / r, ox / r], with a fused
 * ReLU when the op carries one.
 * What it does not: other interpolation modes.
 */
#include "nf-cuda-private.h"

/* ---- kernels ---------------------------------------------------------------------- */

/* y (N, C, H*f, W*f) = x (N, C, H, W) repeated f x f. */
template <typename L>
__global__ void
upsample_nearest_kernel (const typename L::T *__restrict__ x, NfDims xd,
    typename L::T *__restrict__ y, NfDims yd, int f, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, oy, ox;
    nf_decode<L::nhwc> (yd, i, b, c, oy, ox);
    y[i] = x[nf_off<L::nhwc> (xd, b, c, oy / f, ox / f)];
  }
}

/* y (N, C, H*r, W*r) = pixel_shuffle (x (N, C*r*r, H, W)). */
template <typename L>
__global__ void
pixel_shuffle_kernel (const typename L::T *__restrict__ x, NfDims xd,
    typename L::T *__restrict__ y, NfDims yd, int r, bool relu, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, oy, ox;
    nf_decode<L::nhwc> (yd, i, b, c, oy, ox);
    int ci = c * r * r + (oy % r) * r + (ox % r);
    float v = nf_ld (x + nf_off<L::nhwc> (xd, b, ci, oy / r, ox / r));
    nf_st (y + i, (relu && v < 0.0f) ? 0.0f : v);
  }
}

/* ---- entry points (check, then launch on the backend's stream) --------------------- */

NF_CUDA_FORWARD (nf_cuda_upsample_nearest)
{
  NfCudaBackend *b = NF_CUDA (be);
  int f = call->op->factor;
  if (f < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "upsample_nearest: factor %d", f);
    return FALSE;
  }
  if (!nf_cuda_check_call (b, call, in, out, error))
    return FALSE;
  size_t n = nf_shape_numel (call->out);
  unsigned blocks = nf_blocks (n, NF_THREADS);
  NfDims xd = nf_dims (call->in[0]), yd = nf_dims (call->out);
  if (b->fp16)
    upsample_nearest_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const __half *) in[0], xd, (__half *) out, yd, f, n);
  else
    upsample_nearest_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const float *) in[0], xd, (float *) out, yd, f, n);
  return nf_cuda_launch_ok ("upsample_nearest_kernel", error);
}

NF_CUDA_FORWARD (nf_cuda_pixel_shuffle)
{
  NfCudaBackend *b = NF_CUDA (be);
  int r = call->op->factor;
  if (r < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "pixel_shuffle: factor %d", r);
    return FALSE;
  }
  if (!nf_cuda_check_call (b, call, in, out, error))
    return FALSE;
  size_t n = nf_shape_numel (call->out);
  unsigned blocks = nf_blocks (n, NF_THREADS);
  NfDims xd = nf_dims (call->in[0]), yd = nf_dims (call->out);
  bool relu = call->op->fuse_relu;
  if (b->fp16)
    pixel_shuffle_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const __half *) in[0], xd, (__half *) out, yd, r, relu, n);
  else
    pixel_shuffle_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const float *) in[0], xd, (float *) out, yd, r, relu, n);
  return nf_cuda_launch_ok ("pixel_shuffle_kernel", error);
}
