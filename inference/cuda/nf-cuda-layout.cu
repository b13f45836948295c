/* nf-cuda-layout.cu — NCHW float (the host's layout) <-> the backend's layout on the
 * device: a copy for "cuda" (NCHW float), a transpose with fp16 rounding for
 * "cuda-fp16" (NHWC half).
 *
 * What it does: the kernels behind upload and download (the host buffer is first
 * copied to/from fp32 scratch on the device), one thread per element of the
 * destination so writes are coalesced.
 * What it does not: weights (converted on the host at prepare, nf-cuda-conv.cu) or
 * pixel frames (nf-cuda-convert.cu).
 */
#include "nf-cuda-private.h"

/* ---- kernels ---------------------------------------------------------------------- */

/* dst (N, C, H, W) in L's layout = src (N, C, H, W) NCHW float. */
template <typename L>
__global__ void
from_nchw_kernel (const float *__restrict__ src, typename L::T *__restrict__ dst, NfDims d,
    size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, y, x;
    nf_decode<L::nhwc> (d, i, b, c, y, x);
    nf_st (dst + i, src[nf_off<false> (d, b, c, y, x)]);
  }
}

/* dst (N, C, H, W) NCHW float = src in L's layout. */
template <typename L>
__global__ void
to_nchw_kernel (const typename L::T *__restrict__ src, float *__restrict__ dst, NfDims d,
    size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int b, c, y, x;
    nf_decode<false> (d, i, b, c, y, x);
    dst[i] = nf_ld (src + nf_off<L::nhwc> (d, b, c, y, x));
  }
}

/* ---- launchers -------------------------------------------------------------------- */

gboolean
nf_cuda_launch_from_nchw_f32 (NfCudaBackend *be, const float *src, void *dst, NfShape s,
    GError **error)
{
  size_t n = nf_shape_numel (s);
  if (n == 0)
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  if (be->fp16)
    from_nchw_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, be->stream>>> (src,
        (__half *) dst, nf_dims (s), n);
  else
    from_nchw_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, be->stream>>> (src,
        (float *) dst, nf_dims (s), n);
  return nf_cuda_launch_ok ("from_nchw_kernel", error);
}

gboolean
nf_cuda_launch_to_nchw_f32 (NfCudaBackend *be, const void *src, float *dst, NfShape s,
    GError **error)
{
  size_t n = nf_shape_numel (s);
  if (n == 0)
    return TRUE;
  unsigned blocks = nf_blocks (n, NF_THREADS);
  if (be->fp16)
    to_nchw_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, be->stream>>> (
        (const __half *) src, dst, nf_dims (s), n);
  else
    to_nchw_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, be->stream>>> (
        (const float *) src, dst, nf_dims (s), n);
  return nf_cuda_launch_ok ("to_nchw_kernel", error);
}
