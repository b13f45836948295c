/* nf-cuda-norm-backward.cu — backward of instance_norm (training), cpu-ref's math:
 *   y = xhat * w + b, xhat = (x - mean) * inv, inv = 1 / sqrt(var + eps) (biased var);
 *   g = dL/dy (zero where a fused ReLU clamped y);
 *   dw[c] += sum g * xhat, db[c] += sum g (over n and the plane);
 *   dx += inv * w * (g - mean(g) - xhat * mean(g * xhat)) per (n, c) plane.
 *
 * What it does: the statistics again from x (nf-cuda-norm.cu's pass 1, shifted sums in
 * fp32 per chunk of pixels), merged per (n, c) in double; then per chunk the sums of g
 * and g * xhat (fp32 per thread; NCHW a channel's contiguous pixels per block, NHWC 32
 * neighbouring channels per warp row), merged per (n, c) in double; the parameter
 * gradients per channel summed over n in a fixed order (no atomics: the same result
 * every run); then dx element-wise. Every buffer was sized at prepare (NfCudaNorm), so
 * nothing is allocated and no scratch is used. Both layouts and types come from the
 * same templates (fp32 NCHW, fp16 NHWC with fp32/double statistics).
 * What it does not: rely on statistics left by the forward (it recomputes them, so a
 * backward is right whatever ran in between).
 */
#include <math.h>

#include "nf-cuda-norm.h"

#define BW_CH 32                /* NHWC: channels per block (threadIdx.x) */
#define BW_LANES 8              /* NHWC: pixel lanes per block (threadIdx.y) */

/* ---- kernels ---------------------------------------------------------------------- */

/* One thread per (n, c): shift, mean - shift, inv from pass 1's partials. */
template <typename L>
__global__ void
stats_kernel (const typename L::T *__restrict__ x, NfDims d, int chunks,
    const float *__restrict__ partials, float eps, float *__restrict__ bwd)
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
  double m = s1 / hw;
  double var = s2 / hw - m * m;
  if (var < 0.0)
    var = 0.0;
  float *o = bwd + (size_t) i * NF_NORM_BWD;
  o[0] = nf_ld (x + nf_off<L::nhwc> (d, n, c, 0, 0));
  o[1] = (float) m;
  o[2] = (float) (1.0 / sqrt (var + (double) eps));
}

/* xhat of element off in plane (n, c) whose values p (NF_NORM_BWD floats) are loaded. */
template <typename T>
__device__ __forceinline__ float
xhat_at (const T *x, size_t off, const float *p)
{
  return ((nf_ld (x + off) - p[0]) - p[1]) * p[2];
}

/* NCHW: block (c, chunk, n), NF_THREADS threads: partial sums of g and g * xhat. */
template <typename T>
__global__ void
grad_sums_nchw_kernel (const T *__restrict__ x, const T *__restrict__ y,
    const T *__restrict__ dy, bool relu, NfDims d, int chunk_pixels, int chunks,
    const float *__restrict__ bwd, float *__restrict__ partials)
{
  int c = blockIdx.x, chunk = blockIdx.y, n = blockIdx.z;
  size_t hw = (size_t) d.h * d.w;
  size_t base = ((size_t) n * d.c + c) * hw;
  const float *p = bwd + ((size_t) n * d.c + c) * NF_NORM_BWD;
  float pl[3] = { p[0], p[1], p[2] };
  size_t p0 = (size_t) chunk * chunk_pixels, p1 = min (p0 + chunk_pixels, hw);
  float s1 = 0.0f, s2 = 0.0f;
  for (size_t q = p0 + threadIdx.x; q < p1; q += blockDim.x) {
    float g = nf_grad_at (y, dy, base + q, relu);
    s1 += g;
    s2 += g * xhat_at (x, base + q, pl);
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

/* NHWC: block (channel group, chunk, n) of BW_CH x BW_LANES threads. */
template <typename T>
__global__ void
grad_sums_nhwc_kernel (const T *__restrict__ x, const T *__restrict__ y,
    const T *__restrict__ dy, bool relu, NfDims d, int chunk_pixels, int chunks,
    const float *__restrict__ bwd, float *__restrict__ partials)
{
  int c = blockIdx.x * BW_CH + threadIdx.x, chunk = blockIdx.y, n = blockIdx.z;
  size_t hw = (size_t) d.h * d.w;
  size_t base = (size_t) n * hw * d.c;
  float s1 = 0.0f, s2 = 0.0f;
  if (c < d.c) {
    const float *p = bwd + ((size_t) n * d.c + c) * NF_NORM_BWD;
    float pl[3] = { p[0], p[1], p[2] };
    size_t p0 = (size_t) chunk * chunk_pixels, p1 = min (p0 + chunk_pixels, hw);
    for (size_t q = p0 + threadIdx.y; q < p1; q += BW_LANES) {
      size_t off = base + q * d.c + c;
      float g = nf_grad_at (y, dy, off, relu);
      s1 += g;
      s2 += g * xhat_at (x, off, pl);
    }
  }
  __shared__ float sh1[BW_LANES][BW_CH], sh2[BW_LANES][BW_CH];
  sh1[threadIdx.y][threadIdx.x] = s1;
  sh2[threadIdx.y][threadIdx.x] = s2;
  __syncthreads ();
  if (threadIdx.y == 0 && c < d.c) {
    for (int l = 1; l < BW_LANES; l++) {
      s1 += sh1[l][threadIdx.x];
      s2 += sh2[l][threadIdx.x];
    }
    float *o = partials + (((size_t) n * d.c + c) * chunks + chunk) * 2;
    o[0] = s1;
    o[1] = s2;
  }
}

/* One thread per (n, c): the chunks merged in double. */
__global__ void
grad_sums_finalize_kernel (int nc, int chunks, const float *__restrict__ partials,
    float *__restrict__ bwd)
{
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= nc)
    return;
  double s1 = 0.0, s2 = 0.0;
  for (int k = 0; k < chunks; k++) {
    s1 += partials[((size_t) i * chunks + k) * 2];
    s2 += partials[((size_t) i * chunks + k) * 2 + 1];
  }
  bwd[(size_t) i * NF_NORM_BWD + 3] = (float) s1;
  bwd[(size_t) i * NF_NORM_BWD + 4] = (float) s2;
}

/* One thread per channel: dw[c] += sum_n sum g * xhat, db[c] += sum_n sum g. */
__global__ void
params_kernel (NfDims d, const float *__restrict__ bwd, float *__restrict__ dw,
    float *__restrict__ db)
{
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= d.c)
    return;
  double sg = 0.0, sgx = 0.0;
  for (int n = 0; n < d.n; n++) {
    const float *p = bwd + ((size_t) n * d.c + c) * NF_NORM_BWD;
    sg += p[3];
    sgx += p[4];
  }
  if (dw)
    dw[c] += (float) sgx;
  if (db)
    db[c] += (float) sg;
}

/* dx += inv * w * (g - sum g / hw - xhat * sum (g * xhat) / hw), element-wise. */
template <typename L>
__global__ void
dx_kernel (const typename L::T *__restrict__ x, const typename L::T *__restrict__ y,
    const typename L::T *__restrict__ dy, bool relu, typename L::T *__restrict__ dx,
    NfDims d, const float *__restrict__ bwd, const float *__restrict__ w, size_t n)
{
  size_t hw = (size_t) d.h * d.w;
  float inv_hw = 1.0f / (float) hw;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int c = L::nhwc ? (int) (i % d.c) : (int) ((i / hw) % d.c);
    int img = (int) (i / ((size_t) d.c * hw));
    const float *p = bwd + ((size_t) img * d.c + c) * NF_NORM_BWD;
    float g = nf_grad_at (y, dy, i, relu);
    float xh = ((nf_ld (x + i) - p[0]) - p[1]) * p[2];
    float wc = w ? w[c] : 1.0f;
    float v = p[2] * wc * (g - p[3] * inv_hw - xh * p[4] * inv_hw);
    nf_st (dx + i, nf_ld (dx + i) + v);
  }
}

/* ---- launcher ---------------------------------------------------------------------- */

template <typename L>
static gboolean
launch (NfCudaBackend *be, NfCudaNorm *st, const NfOp *op, NfShape s,
    const typename L::T *x, const typename L::T *y, const typename L::T *dy,
    typename L::T *dx, float *dw, float *db, GError **error)
{
  NfDims d = nf_dims (s);
  int nc = d.n * d.c;
  unsigned nc_blocks = (unsigned) ((nc + 127) / 128);
  bool relu = op->fuse_relu;
  if (!nf_cuda_norm_launch_stats (be, st, x, s, error))
    return FALSE;
  stats_kernel<L> <<<nc_blocks, 128, 0, be->stream>>> (x, d, st->chunks, st->partials,
      op->eps, st->bwd);
  if (!nf_cuda_launch_ok ("instance norm backward stats_kernel", error))
    return FALSE;
  if (L::nhwc) {
    dim3 grid ((d.c + BW_CH - 1) / BW_CH, st->chunks, d.n), block (BW_CH, BW_LANES);
    grad_sums_nhwc_kernel <<<grid, block, 0, be->stream>>> (x, y, dy, relu, d,
        st->chunk_pixels, st->chunks, st->bwd, st->partials);
  } else {
    dim3 grid (d.c, st->chunks, d.n);
    grad_sums_nchw_kernel <<<grid, NF_THREADS, 0, be->stream>>> (x, y, dy, relu, d,
        st->chunk_pixels, st->chunks, st->bwd, st->partials);
  }
  if (!nf_cuda_launch_ok ("instance norm backward grad_sums_kernel", error))
    return FALSE;
  grad_sums_finalize_kernel <<<nc_blocks, 128, 0, be->stream>>> (nc, st->chunks,
      st->partials, st->bwd);
  if (!nf_cuda_launch_ok ("instance norm backward grad_sums_finalize_kernel", error))
    return FALSE;
  if (dw || db) {
    params_kernel <<<(d.c + 127) / 128, 128, 0, be->stream>>> (d, st->bwd, dw, db);
    if (!nf_cuda_launch_ok ("instance norm backward params_kernel", error))
      return FALSE;
  }
  if (dx) {
    size_t n = nf_shape_numel (s);
    dx_kernel<L> <<<nf_blocks (n, NF_THREADS), NF_THREADS, 0, be->stream>>> (x, y, dy, relu,
        dx, d, st->bwd, st->w, n);
    if (!nf_cuda_launch_ok ("instance norm backward dx_kernel", error))
      return FALSE;
  }
  return TRUE;
}

NF_CUDA_BACKWARD (nf_cuda_instance_norm_backward)
{
  NfCudaBackend *b = NF_CUDA (be);
  NfCudaNorm *st = (NfCudaNorm *) call->state;
  const NfOp *op = call->op;
  if (!nf_cuda_check_backward (b, call, in, out, dout, din, error))
    return FALSE;
  if (!st) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "%s: instance_norm backward without prepare", be->iface->name);
    return FALSE;
  }
  void *dx = din ? din[0] : NULL;
  /* no parameters (affine false): nothing to accumulate there, as cpu-ref */
  float *dw = op->affine ? (float *) dweight : NULL;
  float *db = op->affine ? (float *) dbias : NULL;
  if (!dx && !dw && !db)
    return TRUE;
  if (b->fp16)
    return launch<NfF16Nhwc> (b, st, op, call->in[0], (const __half *) in[0],
        (const __half *) out, (const __half *) dout, (__half *) dx, dw, db, error);
  return launch<NfF32Nchw> (b, st, op, call->in[0], (const float *) in[0],
      (const float *) out, (const float *) dout, (float *) dx, dw, db, error);
}
