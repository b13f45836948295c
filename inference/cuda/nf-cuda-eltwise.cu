/* nf-cuda-eltwise.cu — element-wise ops: relu, add (residual, ReLU fused when the
 * engine asks), tanh_scale, clamp, and the bias (+ ReLU) epilogue that convolutions
 * use where cuDNN cannot fuse it.
 *
 * What it does: one grid-stride kernel per op, templated on the element type (float
 * or half, math in float); the layout matters only to the bias epilogue (which
 * channel an element belongs to). Semantics are cpu-ref's (nf-cpu-ref.c): relu
 * y = x > 0 ? x : 0, a fused ReLU v < 0 ? 0 : v (relu_if), clamp = x < min ? min : x > max ? max :
 * x, tanh_scale y = scale * tanh(x) + offset.
 * What it does not: in-place tricks beyond what is safe (every kernel reads element i
 * before writing element i, so out may alias an input).
 */
#include "nf-cuda-private.h"

/* ---- kernels ---------------------------------------------------------------------- */

#define GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < (n); \
      i += (size_t) gridDim.x * blockDim.x)

template <typename T>
__global__ void
relu_kernel (const T *x, T *y, size_t n)
{
  GRID_STRIDE (i, n) {
    float v = nf_ld (x + i);
    nf_st (y + i, v > 0.0f ? v : 0.0f);
  }
}

template <typename T>
__global__ void
add_kernel (const T *a, const T *b, T *y, size_t n, bool relu)
{
  GRID_STRIDE (i, n) {
    float v = nf_ld (a + i) + nf_ld (b + i);
    nf_st (y + i, (relu && v < 0.0f) ? 0.0f : v);
  }
}

template <typename T>
__global__ void
tanh_scale_kernel (const T *x, T *y, size_t n, float scale, float offset)
{
  GRID_STRIDE (i, n) {
    nf_st (y + i, scale * tanhf (nf_ld (x + i)) + offset);
  }
}

template <typename T>
__global__ void
clamp_kernel (const T *x, T *y, size_t n, float lo, float hi)
{
  GRID_STRIDE (i, n) {
    float v = nf_ld (x + i);
    nf_st (y + i, v < lo ? lo : (v > hi ? hi : v));
  }
}

/* y (N, C, H, W) += bias (C) then ReLU when relu; bias NULL: ReLU only. */
template <typename L>
__global__ void
bias_act_kernel (typename L::T *y, NfDims d, size_t n, const float *bias, bool relu)
{
  size_t hw = (size_t) d.h * d.w;
  GRID_STRIDE (i, n) {
    float v = nf_ld (y + i);
    if (bias)
      v += bias[L::nhwc ? (int) (i % d.c) : (int) ((i / hw) % d.c)];
    if (relu && v < 0.0f)
      v = 0.0f;
    nf_st (y + i, v);
  }
}

/* ---- launchers --------------------------------------------------------------------- */

gboolean
nf_cuda_launch_bias_act (NfCudaBackend *be, void *y, NfShape s, const float *bias,
    gboolean relu, GError **error)
{
  size_t n = nf_shape_numel (s);
  if (n == 0 || (!bias && !relu))
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  if (be->fp16)
    bias_act_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, be->stream>>> ((__half *) y,
        nf_dims (s), n, bias, relu);
  else
    bias_act_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, be->stream>>> ((float *) y,
        nf_dims (s), n, bias, relu);
  return nf_cuda_launch_ok ("bias_act_kernel", error);
}

/* ---- entry points ------------------------------------------------------------------- */

NF_CUDA_FORWARD (nf_cuda_relu)
{
  NfCudaBackend *b = NF_CUDA (be);
  if (!nf_cuda_check_call (b, call, in, out, error))
    return FALSE;
  size_t n = nf_shape_numel (call->out);
  unsigned blocks = nf_blocks (n, NF_THREADS);
  if (b->fp16)
    relu_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const __half *) in[0],
        (__half *) out, n);
  else
    relu_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const float *) in[0],
        (float *) out, n);
  return nf_cuda_launch_ok ("relu_kernel", error);
}

NF_CUDA_FORWARD (nf_cuda_add)
{
  NfCudaBackend *b = NF_CUDA (be);
  if (call->op->n_in != 2) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "add takes 2 inputs, not %d",
        call->op->n_in);
    return FALSE;
  }
  if (!nf_cuda_check_call (b, call, in, out, error))
    return FALSE;
  size_t n = nf_shape_numel (call->out);
  unsigned blocks = nf_blocks (n, NF_THREADS);
  bool relu = call->op->fuse_relu;
  if (b->fp16)
    add_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const __half *) in[0],
        (const __half *) in[1], (__half *) out, n, relu);
  else
    add_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const float *) in[0],
        (const float *) in[1], (float *) out, n, relu);
  return nf_cuda_launch_ok ("add_kernel", error);
}

NF_CUDA_FORWARD (nf_cuda_tanh_scale)
{
  NfCudaBackend *b = NF_CUDA (be);
  if (!nf_cuda_check_call (b, call, in, out, error))
    return FALSE;
  size_t n = nf_shape_numel (call->out);
  unsigned blocks = nf_blocks (n, NF_THREADS);
  float s = call->op->scale, o = call->op->offset;
  if (b->fp16)
    tanh_scale_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const __half *) in[0],
        (__half *) out, n, s, o);
  else
    tanh_scale_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const float *) in[0],
        (float *) out, n, s, o);
  return nf_cuda_launch_ok ("tanh_scale_kernel", error);
}

NF_CUDA_FORWARD (nf_cuda_clamp)
{
  NfCudaBackend *b = NF_CUDA (be);
  if (!nf_cuda_check_call (b, call, in, out, error))
    return FALSE;
  size_t n = nf_shape_numel (call->out);
  unsigned blocks = nf_blocks (n, NF_THREADS);
  float lo = call->op->min, hi = call->op->max;
  if (b->fp16)
    clamp_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const __half *) in[0],
        (__half *) out, n, lo, hi);
  else
    clamp_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const float *) in[0],
        (float *) out, n, lo, hi);
  return nf_cuda_launch_ok ("clamp_kernel", error);
}
