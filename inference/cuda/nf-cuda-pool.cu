/* nf-cuda-pool.cu — avg_pool2d and max_pool2d (the loss network's pooling).
 *
 * What it does: one thread per output element over its k x k window (no padding,
 * windows start at multiples of the stride), accumulating in float; avg divides by
 * k*k, max starts at -inf. A fused ReLU is honoured. Semantics are cpu-ref's.
 * What it does not: padding, ceil mode, or dilation.
 */
#include <math.h>

#include "nf-cuda-private.h"

template <typename L>
__global__ void
pool_kernel (const typename L::T *__restrict__ x, NfDims xd, typename L::T *__restrict__ y,
    NfDims yd, int k, int stride, bool is_max, bool relu, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, oy, ox;
    nf_decode<L::nhwc> (yd, i, b, c, oy, ox);
    float acc = is_max ? -INFINITY : 0.0f;
    for (int ky = 0; ky < k; ky++)
      for (int kx = 0; kx < k; kx++) {
        float v = nf_ld (x + nf_off<L::nhwc> (xd, b, c, oy * stride + ky, ox * stride + kx));
        acc = is_max ? (v > acc ? v : acc) : acc + v;
      }
    if (!is_max)
      acc /= (float) (k * k);
    nf_st (y + i, (relu && acc < 0.0f) ? 0.0f : acc);
  }
}

NF_CUDA_FORWARD (nf_cuda_pool2d)
{
  NfCudaBackend *b = NF_CUDA (be);
  const NfOp *op = call->op;
  if (op->k < 1 || op->stride < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: window %d, stride %d",
        nf_op_type_name (op->type), op->k, op->stride);
    return FALSE;
  }
  if (!nf_cuda_check_call (b, call, in, out, error))
    return FALSE;
  size_t n = nf_shape_numel (call->out);
  unsigned blocks = nf_blocks (n, NF_THREADS);
  NfDims xd = nf_dims (call->in[0]), yd = nf_dims (call->out);
  bool is_max = op->type == NF_OP_MAX_POOL2D, relu = op->fuse_relu;
  if (b->fp16)
    pool_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, b->stream>>> ((const __half *) in[0],
        xd, (__half *) out, yd, op->k, op->stride, is_max, relu, n);
  else
    pool_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, b->stream>>> ((const float *) in[0],
        xd, (float *) out, yd, op->k, op->stride, is_max, relu, n);
  return nf_cuda_launch_ok ("pool_kernel", error);
}
