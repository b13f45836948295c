/* nf-cuda-concat.cu — concat: inputs stacked along channels, in order.
 *
 * What it does: one kernel launch per input, each thread copying one element of that
 * input to its place in the output (channel offset c0). Semantics are cpu-ref's.
 * What it does not: concatenation along other axes.
 */
#include "nf-cuda-private.h"

/* y[n, c0 + c, yy, xx] = x[n, c, yy, xx] for x (N, Cx, H, W), y (N, Cy, H, W). */
template <typename L>
__global__ void
concat_part_kernel (const typename L::T *__restrict__ x, NfDims xd,
    typename L::T *__restrict__ y, NfDims yd, int c0, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, yy, xx;
    nf_decode<L::nhwc> (xd, i, b, c, yy, xx);
    y[nf_off<L::nhwc> (yd, b, c0 + c, yy, xx)] = x[i];
  }
}

NF_CUDA_FORWARD (nf_cuda_concat)
{
  NfCudaBackend *b = NF_CUDA (be);
  if (!nf_cuda_check_call (b, call, in, out, error))
    return FALSE;
  NfDims yd = nf_dims (call->out);
  int c0 = 0;
  for (int j = 0; j < call->op->n_in; j++) {
    size_t n = nf_shape_numel (call->in[j]);
    unsigned blocks = nf_blocks (n, NF_THREADS);
    NfDims xd = nf_dims (call->in[j]);
    if (b->fp16)
      concat_part_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, b->stream>>> (
          (const __half *) in[j], xd, (__half *) out, yd, c0, n);
    else
      concat_part_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, b->stream>>> (
          (const float *) in[j], xd, (float *) out, yd, c0, n);
    if (!nf_cuda_launch_ok ("concat_part_kernel", error))
      return FALSE;
    c0 += call->in[j].c;
  }
  return TRUE;
}
