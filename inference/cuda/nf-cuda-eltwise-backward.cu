/* nf-cuda-eltwise-backward.cu — backward of the element-wise ops (training): relu, add,
 * tanh_scale, clamp, and the ReLU mask a convolution's backward uses for a fused ReLU.
 *
 * What it does: one grid-stride kernel per op, accumulating (dx += ...), templated on
 * the element type (float or half, math in float; tanh in double as cpu-ref), with
 * cpu-ref's semantics (nf-cpu-ref-backward.c):
 *   relu        dx += x > 0 ? dy : 0
 *   add         da += g, db += g, g = dy (zero where a fused ReLU clamped y) — one
 *               launch per input, so add (a, a) (both gradients in one buffer) gets 2 g
 *   tanh_scale  dx += dy * scale * (1 - tanh(x)^2)
 *   clamp       dx += min <= x <= max ? dy : 0 (PyTorch's convention at the bounds)
 * The layout does not matter here: every tensor of one op has the same shape and layout.
 * What it does not: parameter gradients (these ops have none).
 */
#include "nf-cuda-private.h"

#define GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < (n); \
      i += (size_t) gridDim.x * blockDim.x)

/* ---- kernels ---------------------------------------------------------------------- */

template <typename T>
__global__ void
relu_backward_kernel (const T *x, const T *dy, T *dx, size_t n)
{
  GRID_STRIDE (i, n) {
    if (nf_ld (x + i) > 0.0f)
      nf_st (dx + i, nf_ld (dx + i) + nf_ld (dy + i));
  }
}

/* dx += g, the add's output gradient with a fused ReLU undone. */
template <typename T>
__global__ void
add_backward_kernel (const T *y, const T *dy, bool relu, T *dx, size_t n)
{
  GRID_STRIDE (i, n) {
    nf_st (dx + i, nf_ld (dx + i) + nf_grad_at (y, dy, i, relu));
  }
}

template <typename T>
__global__ void
relu_mask_kernel (const T *y, const T *dy, T *g, size_t n)
{
  GRID_STRIDE (i, n) {
    nf_st (g + i, nf_grad_at (y, dy, i, true));
  }
}

template <typename T>
__global__ void
tanh_scale_backward_kernel (const T *x, const T *dy, T *dx, size_t n, float scale)
{
  GRID_STRIDE (i, n) {
    double t = tanh ((double) nf_ld (x + i));
    /* cpu-ref's order: the float product dy * scale, then times 1 - t^2 in double */
    float ds = nf_ld (dy + i) * scale;
    nf_st (dx + i, nf_ld (dx + i) + (float) (ds * (1.0 - t * t)));
  }
}

template <typename T>
__global__ void
clamp_backward_kernel (const T *x, const T *dy, T *dx, size_t n, float lo, float hi)
{
  GRID_STRIDE (i, n) {
    float v = nf_ld (x + i);
    if (v >= lo && v <= hi)
      nf_st (dx + i, nf_ld (dx + i) + nf_ld (dy + i));
  }
}

/* ---- launchers ------------------------------------------------------------------------ */

gboolean
nf_cuda_launch_relu_mask (NfCudaBackend *be, const void *y, const void *dy, void *g,
    size_t n, GError **error)
{
  if (n == 0)
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  if (be->fp16)
    relu_mask_kernel <<<blocks, NF_THREADS, 0, be->stream>>> ((const __half *) y,
        (const __half *) dy, (__half *) g, n);
  else
    relu_mask_kernel <<<blocks, NF_THREADS, 0, be->stream>>> ((const float *) y,
        (const float *) dy, (float *) g, n);
  return nf_cuda_launch_ok ("relu_mask_kernel", error);
}

/* ---- entry points ------------------------------------------------------------------------ */

/* The checks every element-wise backward starts with; dx = din[0] or NULL. */
static gboolean
begin (NfBackend *be, NfOpCall *call, void *const *in, const void *out, const void *dout,
    void *const *din, GError **error)
{
  return nf_cuda_check_backward (NF_CUDA (be), call, in, out, dout, din, error);
}

NF_CUDA_BACKWARD (nf_cuda_relu_backward)
{
  NfCudaBackend *b = NF_CUDA (be);
  if (!begin (be, call, in, out, dout, din, error))
    return FALSE;
  void *dx = din ? din[0] : NULL;
  size_t n = nf_shape_numel (call->out);
  if (!dx || n == 0)
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  if (b->fp16)
    relu_backward_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const __half *) in[0],
        (const __half *) dout, (__half *) dx, n);
  else
    relu_backward_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const float *) in[0],
        (const float *) dout, (float *) dx, n);
  return nf_cuda_launch_ok ("relu_backward_kernel", error);
}

NF_CUDA_BACKWARD (nf_cuda_add_backward)
{
  NfCudaBackend *b = NF_CUDA (be);
  if (call->op->n_in != 2) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "add takes 2 inputs, not %d",
        call->op->n_in);
    return FALSE;
  }
  if (!begin (be, call, in, out, dout, din, error))
    return FALSE;
  size_t n = nf_shape_numel (call->out);
  unsigned blocks = nf_blocks (n, NF_THREADS);
  bool relu = call->op->fuse_relu;
  for (int j = 0; j < 2 && n > 0; j++) {
    void *dx = din ? din[j] : NULL;
    if (!dx)
      continue;
    if (b->fp16)
      add_backward_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const __half *) out,
          (const __half *) dout, relu, (__half *) dx, n);
    else
      add_backward_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const float *) out,
          (const float *) dout, relu, (float *) dx, n);
    if (!nf_cuda_launch_ok ("add_backward_kernel", error))
      return FALSE;
  }
  return TRUE;
}

NF_CUDA_BACKWARD (nf_cuda_tanh_scale_backward)
{
  NfCudaBackend *b = NF_CUDA (be);
  if (!begin (be, call, in, out, dout, din, error))
    return FALSE;
  void *dx = din ? din[0] : NULL;
  size_t n = nf_shape_numel (call->out);
  if (!dx || n == 0)
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  float s = call->op->scale;
  if (b->fp16)
    tanh_scale_backward_kernel <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const __half *) in[0], (const __half *) dout, (__half *) dx, n, s);
  else
    tanh_scale_backward_kernel <<<blocks, NF_THREADS, 0, b->stream>>> (
        (const float *) in[0], (const float *) dout, (float *) dx, n, s);
  return nf_cuda_launch_ok ("tanh_scale_backward_kernel", error);
}

NF_CUDA_BACKWARD (nf_cuda_clamp_backward)
{
  NfCudaBackend *b = NF_CUDA (be);
  if (!begin (be, call, in, out, dout, din, error))
    return FALSE;
  void *dx = din ? din[0] : NULL;
  size_t n = nf_shape_numel (call->out);
  if (!dx || n == 0)
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  float lo = call->op->min, hi = call->op->max;
  if (b->fp16)
    clamp_backward_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const __half *) in[0],
        (const __half *) dout, (__half *) dx, n, lo, hi);
  else
    clamp_backward_kernel <<<blocks, NF_THREADS, 0, b->stream>>> ((const float *) in[0],
        (const float *) dout, (float *) dx, n, lo, hi);
  return nf_cuda_launch_ok ("clamp_backward_kernel", error);
}
