/* nf-cuda-norm.cu — instance_norm: per (n, c), y = (x - mean) / sqrt(var + eps) *
 * w[c] + b[c] with the biased variance, then ReLU when fused (cpu-ref's semantics).
 *
 * What it does: statistics in fp32 whatever the activation type, in three kernels:
 *  1. partial sums per (n, c, chunk of pixels): sum of (x - K) and of (x - K)^2 with
 *     the shift K = x[n, c, 0, 0] (a value of the same channel, so the squares do not
 *     cancel catastrophically when the mean is large against the spread), in float
 *     per thread and per block; NCHW reads a channel's contiguous pixels, NHWC reads
 *     32 neighbouring channels per warp row so loads stay coalesced;
 *  2. per (n, c): the chunks merged in double, mean and scale = w / sqrt(var + eps);
 *  3. element-wise (x - mean) * scale + b, ReLU.
 * Chunks spread large images over many blocks; buffers for partials are sized at
 * prepare, so forward allocates nothing (nor does the backward in
 * nf-cuda-norm-backward.cu, which reuses pass 1 and these buffers).
 * Training: nf_cuda_instance_norm_set_weights replaces the affine parameters with new
 * ones already in device memory (device-to-device copies on the stream, nothing
 * re-prepared).
 * What it does not: statistics across tiles (the engine plans whole frames).
 */
#include <math.h>

#include "nf-cuda-norm.h"

/* ---- kernels ---------------------------------------------------------------------- */

/* NCHW: block (c, chunk, n), NF_THREADS threads over the chunk's pixels. */
template <typename T>
__global__ void
stats_nchw_kernel (const T *__restrict__ x, NfDims d, int chunk_pixels, int chunks,
    float *__restrict__ partials)
{
  int c = blockIdx.x, chunk = blockIdx.y, n = blockIdx.z;
  size_t hw = (size_t) d.h * d.w;
  const T *xc = x + ((size_t) n * d.c + c) * hw;
  float k = nf_ld (xc);
  size_t p0 = (size_t) chunk * chunk_pixels, p1 = min (p0 + chunk_pixels, hw);
  float s1 = 0.0f, s2 = 0.0f;
  for (size_t p = p0 + threadIdx.x; p < p1; p += blockDim.x) {
    float v = nf_ld (xc + p) - k;
    s1 += v;
    s2 += v * v;
  }
  __shared__ float sh1[NF_THREADS], sh2[NF_THREADS];
  sh1[threadIdx.x] = s1;
  sh2[threadIdx.x] = s2;
  __syncthreads ();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int) threadIdx.x < s) {
      sh1[threadIdx.x] += sh1[threadIdx.x + s];
      sh2[threadIdx.x] += sh2[threadIdx.x + s];
    }
    __syncthreads ();
  }
  if (threadIdx.x == 0) {
    float *o = partials + (((size_t) n * d.c + c) * chunks + chunk) * 2;
    o[0] = sh1[0];
    o[1] = sh2[0];
  }
}

#define NHWC_CH 32              /* channels per block (threadIdx.x) */
#define NHWC_LANES 8            /* pixel lanes per block (threadIdx.y) */

/* NHWC: block (channel group, chunk, n) of NHWC_CH x NHWC_LANES threads. */
template <typename T>
__global__ void
stats_nhwc_kernel (const T *__restrict__ x, NfDims d, int chunk_pixels, int chunks,
    float *__restrict__ partials)
{
  int c = blockIdx.x * NHWC_CH + threadIdx.x, chunk = blockIdx.y, n = blockIdx.z;
  size_t hw = (size_t) d.h * d.w;
  const T *xn = x + (size_t) n * hw * d.c;
  float s1 = 0.0f, s2 = 0.0f;
  if (c < d.c) {
    float k = nf_ld (xn + c);
    size_t p0 = (size_t) chunk * chunk_pixels, p1 = min (p0 + chunk_pixels, hw);
    for (size_t p = p0 + threadIdx.y; p < p1; p += NHWC_LANES) {
      float v = nf_ld (xn + p * d.c + c) - k;
      s1 += v;
      s2 += v * v;
    }
  }
  __shared__ float sh1[NHWC_LANES][NHWC_CH], sh2[NHWC_LANES][NHWC_CH];
  sh1[threadIdx.y][threadIdx.x] = s1;
  sh2[threadIdx.y][threadIdx.x] = s2;
  __syncthreads ();
  if (threadIdx.y == 0 && c < d.c) {
    for (int l = 1; l < NHWC_LANES; l++) {
      s1 += sh1[l][threadIdx.x];
      s2 += sh2[l][threadIdx.x];
    }
    float *o = partials + (((size_t) n * d.c + c) * chunks + chunk) * 2;
    o[0] = s1;
    o[1] = s2;
  }
}

/* One thread per (n, c): merge the chunks (double), write mean and scale. */
template <typename L>
__global__ void
finalize_kernel (const typename L::T *__restrict__ x, NfDims d, int chunks,
    const float *__restrict__ partials, const float *__restrict__ w, float eps,
    float *__restrict__ ms)
{
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= d.n * d.c)
    return;
  int n = i / d.c, c = i % d.c;
  double s1 = 0.0, s2 = 0.0;
  for (int k = 0; k < chunks; k++) {
    s1 += partials[((size_t) i * chunks + k) * 2];
    s2 += partials[((size_t) i * chunks + k) * 2 + 1];
  }
  double hw = (double) d.h * d.w;
  double shift = nf_ld (x + nf_off<L::nhwc> (d, n, c, 0, 0));
  double m = s1 / hw;
  double var = s2 / hw - m * m;
  if (var < 0.0)
    var = 0.0;
  double scale = 1.0 / sqrt (var + (double) eps);
  if (w)
    scale *= w[c];
  ms[2 * i] = (float) (shift + m);
  ms[2 * i + 1] = (float) scale;
}

/* y = (x - mean) * scale + b, ReLU when fused; element-wise. */
template <typename L>
__global__ void
apply_kernel (const typename L::T *__restrict__ x, typename L::T *__restrict__ y, NfDims d,
    const float *__restrict__ ms, const float *__restrict__ b, bool relu, size_t n)
{
  size_t hw = (size_t) d.h * d.w;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int c, img;
    if (L::nhwc) {
      c = (int) (i % d.c);
      img = (int) (i / ((size_t) d.c * hw));
    } else {
      c = (int) ((i / hw) % d.c);
      img = (int) (i / ((size_t) d.c * hw));
    }
    int nc = img * d.c + c;
    float v = (nf_ld (x + i) - ms[2 * nc]) * ms[2 * nc + 1];
    if (b)
      v += b[c];
    nf_st (y + i, (relu && v < 0.0f) ? 0.0f : v);
  }
}

/* ---- launcher ---------------------------------------------------------------------- */

gboolean
nf_cuda_norm_launch_stats (NfCudaBackend *be, NfCudaNorm *st, const void *x, NfShape s,
    GError **error)
{
  NfDims d = nf_dims (s);
  if (be->fp16) {
    dim3 grid_nhwc ((d.c + NHWC_CH - 1) / NHWC_CH, st->chunks, d.n);
    dim3 block_nhwc (NHWC_CH, NHWC_LANES);
    stats_nhwc_kernel <<<grid_nhwc, block_nhwc, 0, be->stream>>> ((const __half *) x, d,
        st->chunk_pixels, st->chunks, st->partials);
    return nf_cuda_launch_ok ("instance norm stats_nhwc_kernel", error);
  }
  dim3 grid_nchw (d.c, st->chunks, d.n);
  stats_nchw_kernel <<<grid_nchw, NF_THREADS, 0, be->stream>>> ((const float *) x, d,
      st->chunk_pixels, st->chunks, st->partials);
  return nf_cuda_launch_ok ("instance norm stats_nchw_kernel", error);
}

static gboolean
launch_instance_norm (NfCudaBackend *be, NfCudaNorm *st, const void *x, void *y, NfShape s,
    float eps, bool relu, GError **error)
{
  NfDims d = nf_dims (s);
  unsigned nc_blocks = (unsigned) ((d.n * d.c + 127) / 128);
  size_t n = nf_shape_numel (s);
  unsigned blocks = nf_blocks (n, NF_THREADS);
  if (!nf_cuda_norm_launch_stats (be, st, x, s, error))
    return FALSE;
  if (be->fp16) {
    finalize_kernel<NfF16Nhwc> <<<nc_blocks, 128, 0, be->stream>>> ((const __half *) x, d,
        st->chunks, st->partials, st->w, eps, st->ms);
    if (!nf_cuda_launch_ok ("instance norm finalize_kernel", error))
      return FALSE;
    apply_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, be->stream>>> ((const __half *) x,
        (__half *) y, d, st->ms, st->b, relu, n);
  } else {
    finalize_kernel<NfF32Nchw> <<<nc_blocks, 128, 0, be->stream>>> ((const float *) x, d,
        st->chunks, st->partials, st->w, eps, st->ms);
    if (!nf_cuda_launch_ok ("instance norm finalize_kernel", error))
      return FALSE;
    apply_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, be->stream>>> ((const float *) x,
        (float *) y, d, st->ms, st->b, relu, n);
  }
  return nf_cuda_launch_ok ("instance norm apply_kernel", error);
}

/* ---- prepare / release / entry point ------------------------------------------------------ */

void
nf_cuda_instance_norm_release (NfCudaBackend *be, NfOpCall *call)
{
  NfCudaNorm *st = (NfCudaNorm *) call->state;
  if (!st)
    return;
  nf_cuda_counted_free (st->w);
  nf_cuda_counted_free (st->b);
  nf_cuda_counted_free (st->partials);
  nf_cuda_counted_free (st->ms);
  nf_cuda_counted_free (st->bwd);
  cudaGetLastError ();
  g_free (st);
  call->state = NULL;
}

/* On the backend's non-blocking stream (a plain cudaMemcpy runs on the legacy stream,
 * which that stream does not wait for), synchronised before src may go. */
static gboolean
upload_floats (NfCudaBackend *be, float **dst, const float *src, int n, GError **error)
{
  *dst = NULL;
  if (!src)
    return TRUE;
  NF_CUDA_TRY (nf_cuda_counted_malloc ((void **) dst, n * sizeof (float)), error);
  NF_CUDA_TRY (cudaMemcpyAsync (*dst, src, n * sizeof (float), cudaMemcpyHostToDevice,
          be->stream), error);
  NF_CUDA_TRY (nf_cuda_counted_sync (be->stream), error);
  return TRUE;
}

gboolean
nf_cuda_instance_norm_prepare (NfCudaBackend *be, NfOpCall *call, GError **error)
{
  const NfOp *op = call->op;
  NfShape s = call->in[0];
  if (s.c != op->c || s.n < 1 || s.h < 1 || s.w < 1 || s.n > 65535) {
    g_set_error (error, NF_ERROR, NF_ERROR_SHAPE,
        "instance_norm %s: input %dx%dx%dx%d does not fit %d channels", op->name ? op->name :
        "", s.n, s.c, s.h, s.w, op->c);
    return FALSE;
  }
  NfCudaNorm *st = g_new0 (NfCudaNorm, 1);
  call->state = st;
  size_t hw = (size_t) s.h * s.w;
  size_t chunks = (hw + 4095) / 4096;
  st->chunks = (int) CLAMP (chunks, 1, 1024);
  st->chunk_pixels = (int) ((hw + st->chunks - 1) / st->chunks);
  gboolean affine = op->affine;
  if (!upload_floats (be, &st->w, affine ? op->weight : NULL, op->c, error)
      || !upload_floats (be, &st->b, affine ? op->bias : NULL, op->c, error)
      || !nf_cuda_ok (nf_cuda_counted_malloc ((void **) &st->partials,
              (size_t) s.n * s.c * st->chunks * 2 * sizeof (float)), "cudaMalloc", error)
      || !nf_cuda_ok (nf_cuda_counted_malloc ((void **) &st->ms,
              (size_t) s.n * s.c * 2 * sizeof (float)), "cudaMalloc", error)
      || !nf_cuda_ok (nf_cuda_counted_malloc ((void **) &st->bwd,
              (size_t) s.n * s.c * NF_NORM_BWD * sizeof (float)), "cudaMalloc", error)) {
    g_prefix_error (error, "instance_norm %s: ", op->name ? op->name : "");
    nf_cuda_instance_norm_release (be, call);
    return FALSE;
  }
  return TRUE;
}

gboolean
nf_cuda_instance_norm_set_weights (NfCudaBackend *be, const NfOpCall *call,
    const float *weight, size_t n_weight, const float *bias, size_t n_bias, GError **error)
{
  const NfOp *op = call->op;
  NfCudaNorm *st = (NfCudaNorm *) call->state;
  const char *name = op->name ? op->name : "";
  if (!st) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "instance_norm %s: new weights for an "
        "op that is not prepared", name);
    return FALSE;
  }
  size_t c = (size_t) op->c;
  if (!st->w || !st->b || !weight || !bias || n_weight != c || n_bias != c) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "instance_norm %s: new weight and bias "
        "of %zu and %zu floats where the op has %zu each%s", name, weight ? n_weight : 0,
        bias ? n_bias : 0, c, st->w ? "" : " (it is not affine)");
    return FALSE;
  }
  NF_CUDA_TRY (cudaMemcpyAsync (st->w, weight, c * sizeof (float), cudaMemcpyDeviceToDevice,
          be->stream), error);
  NF_CUDA_TRY (cudaMemcpyAsync (st->b, bias, c * sizeof (float), cudaMemcpyDeviceToDevice,
          be->stream), error);
  return TRUE;
}

NF_CUDA_FORWARD (nf_cuda_instance_norm)
{
  NfCudaBackend *b = NF_CUDA (be);
  NfCudaNorm *st = (NfCudaNorm *) call->state;
  if (!nf_cuda_check_call (b, call, in, out, error))
    return FALSE;
  if (!st) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "%s: instance_norm run without prepare", be->iface->name);
    return FALSE;
  }
  return launch_instance_norm (b, st, in[0], out, call->in[0], call->op->eps,
      call->op->fuse_relu, error);
}
