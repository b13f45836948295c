/* nf-cuda-resample-backward.cu — backward of the ops that move pixels (training):
 * upsample_nearest, pixel_shuffle and concat.
 *
 * What it does: one thread per INPUT-gradient element (in the layout's memory order)
 * gathers the output-gradient elements its input element was copied to, and adds them
 * (dx += ...): no atomics, the same sums in the same order every run. Semantics are
 * cpu-ref's (nf-cpu-ref-backward.c):
 *   upsample_nearest  dx[n, c, y, x] += sum over i, j < f of dy[n, c, y*f + i, x*f + j]
 *   pixel_shuffle     dx[n, c*r*r + i*r + j, y, x] += g[n, c, y*r + i, x*r + j]
 *                     (g: dy with a fused ReLU undone)
 *   concat            dx_k[n, c, y, x] += dy[n, c0_k + c, y, x], one launch per input.
 * What it does not: other interpolation modes or concatenation axes.
 */
#include "nf-cuda-private.h"

/* ---- kernels ---------------------------------------------------------------------- */

template <typename L>
__global__ void
upsample_nearest_backward_kernel (const typename L::T *__restrict__ dy, NfDims yd,
    typename L::T *__restrict__ dx, NfDims xd, int f, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, y, x;
    nf_decode<L::nhwc> (xd, i, b, c, y, x);
    float s = 0.0f;
    for (int a = 0; a < f; a++)
      for (int e = 0; e < f; e++)
        s += nf_ld (dy + nf_off<L::nhwc> (yd, b, c, y * f + a, x * f + e));
    nf_st (dx + i, nf_ld (dx + i) + s);
  }
}

template <typename L>
__global__ void
pixel_shuffle_backward_kernel (const typename L::T *__restrict__ y,
    const typename L::T *__restrict__ dy, bool relu, NfDims yd,
    typename L::T *__restrict__ dx, NfDims xd, int r, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, ci, yy, xx;
    nf_decode<L::nhwc> (xd, i, b, ci, yy, xx);
    int c = ci / (r * r), a = (ci / r) % r, e = ci % r;
    size_t o = nf_off<L::nhwc> (yd, b, c, yy * r + a, xx * r + e);
    nf_st (dx + i, nf_ld (dx + i) + nf_grad_at (y, dy, o, relu));
  }
}

template <typename L>
__global__ void
concat_part_backward_kernel (const typename L::T *__restrict__ dy, NfDims yd,
    typename L::T *__restrict__ dx, NfDims xd, int c0, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, yy, xx;
    nf_decode<L::nhwc> (xd, i, b, c, yy, xx);
    nf_st (dx + i, nf_ld (dx + i) + nf_ld (dy + nf_off<L::nhwc> (yd, b, c0 + c, yy, xx)));
  }
}

/* ---- entry points ------------------------------------------------------------------------ */

NF_CUDA_BACKWARD (nf_cuda_upsample_nearest_backward)
{
  NfCudaBackend *b = NF_CUDA (be);
  int f = call->op->factor;
  if (f < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "upsample_nearest: factor %d", f);
    return FALSE;
  }
  if (!nf_cuda_check_backward (b, call, in, out, dout, din, error))
    return FALSE;
  void *dx = din ? din[0] : NULL;
  size_t n = nf_shape_numel (call->in[0]);
  if (!dx || n == 0)
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  NfDims xd = nf_dims (call->in[0]), yd = nf_dims (call->out);
  if (b->fp16)
    upsample_nearest_backward_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const __half *) dout, yd, (__half *) dx, xd, f, n);
  else
    upsample_nearest_backward_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const float *) dout, yd, (float *) dx, xd, f, n);
  return nf_cuda_launch_ok ("upsample_nearest_backward_kernel", error);
}

NF_CUDA_BACKWARD (nf_cuda_pixel_shuffle_backward)
{
  NfCudaBackend *b = NF_CUDA (be);
  int r = call->op->factor;
  if (r < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "pixel_shuffle: factor %d", r);
    return FALSE;
  }
  if (!nf_cuda_check_backward (b, call, in, out, dout, din, error))
    return FALSE;
  void *dx = din ? din[0] : NULL;
  size_t n = nf_shape_numel (call->in[0]);
  if (!dx || n == 0)
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  NfDims xd = nf_dims (call->in[0]), yd = nf_dims (call->out);
  bool relu = call->op->fuse_relu;
  if (b->fp16)
    pixel_shuffle_backward_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const __half *) out, (const __half *) dout, relu, yd, (__half *) dx, xd, r, n);
  else
    pixel_shuffle_backward_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const float *) out, (const float *) dout, relu, yd, (float *) dx, xd, r, n);
  return nf_cuda_launch_ok ("pixel_shuffle_backward_kernel", error);
}

NF_CUDA_BACKWARD (nf_cuda_concat_backward)
{
  NfCudaBackend *b = NF_CUDA (be);
  if (!nf_cuda_check_backward (b, call, in, out, dout, din, error))
    return FALSE;
  NfDims yd = nf_dims (call->out);
  int c0 = 0;
  for (int j = 0; j < call->op->n_in; j++) {
    void *dx = din ? din[j] : NULL;
    size_t n = nf_shape_numel (call->in[j]);
    if (dx && n > 0) {
      unsigned blocks = nf_blocks (n, NF_THREADS);
      NfDims xd = nf_dims (call->in[j]);
      if (b->fp16)
        concat_part_backward_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, b->stream>>> (
            (const __half *) dout, yd, (__half *) dx, xd, c0, n);
      else
        concat_part_backward_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, b->stream>>> (
            (const float *) dout, yd, (float *) dx, xd, c0, n);
      if (!nf_cuda_launch_ok ("concat_part_backward_kernel", error))
        return FALSE;
    }
    c0 += call->in[j].c;
  }
  return TRUE;
}
