/* nf-cuda-pool-backward.cu — backward of avg_pool2d and max_pool2d (training; the loss
 * network's pooling).
 *
 * What it does: one thread per input-gradient element gathers over the output windows
 * that contain it (oy with oy*s <= y < oy*s + k, likewise ox): avg adds g / (k*k) for
 * each; max adds g where this element is its window's FIRST maximum in row-major scan
 * order with a strict comparison, found again from x (cpu-ref's tie rule, so ties go to
 * the same element). g is dout with a fused ReLU undone. No atomics: the same sums in
 * the same order every run. Semantics are cpu-ref's (nf-cpu-ref-backward.c).
 * What it does not: padding, ceil mode or dilation (the forward has none).
 */
#include <math.h>

#include "nf-cuda-private.h"

template <typename L>
__global__ void
pool_backward_kernel (const typename L::T *__restrict__ x, NfDims xd,
    const typename L::T *__restrict__ y, const typename L::T *__restrict__ dy, NfDims yd,
    typename L::T *__restrict__ dx, int k, int stride, bool is_max, bool relu, size_t n)
{
  float inv_area = 1.0f / (float) (k * k);
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, iy, ix;
    nf_decode<L::nhwc> (xd, i, b, c, iy, ix);
    /* windows oy with oy*stride <= iy < oy*stride + k, inside the output */
    int oy0 = iy >= k ? (iy - k) / stride + 1 : 0, oy1 = min (iy / stride, yd.h - 1);
    int ox0 = ix >= k ? (ix - k) / stride + 1 : 0, ox1 = min (ix / stride, yd.w - 1);
    float s = 0.0f;
    for (int oy = oy0; oy <= oy1; oy++)
      for (int ox = ox0; ox <= ox1; ox++) {
        size_t o = nf_off<L::nhwc> (yd, b, c, oy, ox);
        float g = nf_grad_at (y, dy, o, relu);
        if (!is_max) {
          s += g * inv_area;
          continue;
        }
        /* the window's first maximum (strict >, row-major), as cpu-ref picks it */
        int by = -1, bx = -1;
        float best = -INFINITY;
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++) {
            float v = nf_ld (x + nf_off<L::nhwc> (xd, b, c, oy * stride + ky,
                    ox * stride + kx));
            if (v > best) {
              best = v;
              by = ky;
              bx = kx;
            }
          }
        if (by < 0) {           /* every value NaN or -inf: the window's first element */
          by = 0;
          bx = 0;
        }
        if (oy * stride + by == iy && ox * stride + bx == ix)
          s += g;
      }
    if (s != 0.0f || isnan (s))
      nf_st (dx + i, nf_ld (dx + i) + s);
  }
}

NF_CUDA_BACKWARD (nf_cuda_pool2d_backward)
{
  NfCudaBackend *b = NF_CUDA (be);
  const NfOp *op = call->op;
  if (op->k < 1 || op->stride < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: window %d, stride %d",
        nf_op_type_name (op->type), op->k, op->stride);
    return FALSE;
  }
  if (!nf_cuda_check_backward (b, call, in, out, dout, din, error))
    return FALSE;
  void *dx = din ? din[0] : NULL;
  size_t n = nf_shape_numel (call->in[0]);
  if (!dx || n == 0 || nf_shape_numel (call->out) == 0)
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  NfDims xd = nf_dims (call->in[0]), yd = nf_dims (call->out);
  bool is_max = op->type == NF_OP_MAX_POOL2D, relu = op->fuse_relu;
  if (b->fp16)
    pool_backward_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const __half *) in[0], xd, (const __half *) out, (const __half *) dout, yd,
        (__half *) dx, op->k, op->stride, is_max, relu, n);
  else
    pool_backward_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const float *) in[0], xd, (const float *) out, (const float *) dout, yd,
        (float *) dx, op->k, op->stride, is_max, relu, n);
  return nf_cuda_launch_ok ("pool_backward_kernel", error);
}
