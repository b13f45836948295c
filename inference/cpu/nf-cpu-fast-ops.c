/* nf-cpu-fast-ops.c — the fast CPU backend's elementwise and data-movement ops (forward):
 * OpenMP loops over the blocked layout (nChw8c for c > 4, NCHW otherwise; see
 * nf-cpu-fast-private.h).
 *
 * What it does: relu, add (ReLU fused), tanh_scale (a vectorisable tanh, absolute error
 * below 2e-7), clamp, concat, nearest upsampling, pixel shuffle (ReLU fused), average and
 * max pooling (ReLU fused). Each reads its inputs through their views (whatever halo they
 * were stored with) and writes its output with the halo its consumer asked for
 * (nf_cpu_begin_write). Padded channel lanes stay zero: tanh_scale, clamp, concat and
 * pixel shuffle write the zeros, the others keep their inputs' zeros. The elementwise rows
 * have AVX2 versions chosen at run time (NF_CPU_NO_AVX2=1: the portable ones).
 * What it does not: instance norm (nf-cpu-fast-norm.c), convolutions, buffers, halos and
 * the backend table (nf-cpu-fast.c), backward passes (nf-cpu-fast-backward.c).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "nf-cpu-fast-private.h"

/* ---- elementwise ops ------------------------------------------------------------ */

/* Vectorisable tanh: 1 - 2 / (exp(2|x|) + 1) with a Cephes exp polynomial; absolute
 * error below 2e-7. */
static inline float
tanh_fast (float x)
{
  float a = fabsf (x);
  a = a < 9.0f ? a : 9.0f;
  float t = -2.0f * a;                          /* exp(t), t in [-18, 0] */
  float fn = t * 1.44269504088896341f + 12582912.0f;
  fn -= 12582912.0f;                            /* round to nearest */
  float r = t - fn * 0.693359375f;
  r = r + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float e = p * r * r + r + 1.0f;
  union { float f; int32_t i; } sc;
  sc.i = ((int32_t) fn + 127) << 23;
  e *= sc.f;
  float y = (1.0f - e) / (1.0f + e);
  return x < 0.0f ? -y : y;
}

/* The same in AVX2, 8 at a time. */
__attribute__((target ("avx2,fma")))
static inline __m256
tanh_avx2 (__m256 x)
{
  const __m256 sign = _mm256_set1_ps (-0.0f);
  __m256 a = _mm256_min_ps (_mm256_andnot_ps (sign, x), _mm256_set1_ps (9.0f));
  __m256 t = _mm256_mul_ps (a, _mm256_set1_ps (-2.0f));
  __m256 fn = _mm256_round_ps (_mm256_mul_ps (t, _mm256_set1_ps (1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps (fn, _mm256_set1_ps (0.693359375f), t);
  r = _mm256_fmadd_ps (fn, _mm256_set1_ps (2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps (1.9875691500e-4f);
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.3981999507e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (8.3334519073e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (4.1665795894e-2f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.6666665459e-1f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (5.0000001201e-1f));
  __m256 e = _mm256_fmadd_ps (_mm256_mul_ps (p, r), r, _mm256_add_ps (r, _mm256_set1_ps (1.0f)));
  __m256i ei = _mm256_slli_epi32 (_mm256_add_epi32 (_mm256_cvtps_epi32 (fn),
          _mm256_set1_epi32 (127)), 23);
  e = _mm256_mul_ps (e, _mm256_castsi256_ps (ei));
  __m256 one = _mm256_set1_ps (1.0f);
  __m256 y = _mm256_div_ps (_mm256_sub_ps (one, e), _mm256_add_ps (one, e));
  return _mm256_or_ps (y, _mm256_and_ps (x, sign));
}

enum { EW_RELU, EW_ADD, EW_ADD_RELU, EW_TANH, EW_CLAMP };

static inline void
ew_row_body (int kind, float *restrict y, const float *restrict a, const float *restrict b,
    size_t len, float p0, float p1)
{
  switch (kind) {
    case EW_RELU:
      for (size_t i = 0; i < len; i++)
        y[i] = a[i] > 0.0f ? a[i] : 0.0f;
      break;
    case EW_ADD:
      for (size_t i = 0; i < len; i++)
        y[i] = a[i] + b[i];
      break;
    case EW_ADD_RELU:
      for (size_t i = 0; i < len; i++) {
        float s = a[i] + b[i];
        y[i] = s > 0.0f ? s : 0.0f;
      }
      break;
    case EW_TANH:
      for (size_t i = 0; i < len; i++)
        y[i] = p0 * tanh_fast (a[i]) + p1;
      break;
    case EW_CLAMP:
      for (size_t i = 0; i < len; i++) {
        float v = a[i] < p0 ? p0 : a[i];
        y[i] = v > p1 ? p1 : v;
      }
      break;
  }
}

__attribute__((target ("avx2,fma")))
static void
ew_row_avx2 (int kind, float *restrict y, const float *restrict a, const float *restrict b,
    size_t len, float p0, float p1)
{
  if (kind == EW_TANH) {
    size_t i = 0;
    __m256 sc = _mm256_set1_ps (p0), off = _mm256_set1_ps (p1);
    for (; i + 8 <= len; i += 8)
      _mm256_storeu_ps (y + i, _mm256_fmadd_ps (sc, tanh_avx2 (_mm256_loadu_ps (a + i)), off));
    ew_row_body (kind, y + i, a + i, b, len - i, p0, p1);
    return;
  }
  ew_row_body (kind, y, a, b, len, p0, p1);
}

static void
ew_row_sse (int kind, float *restrict y, const float *restrict a, const float *restrict b,
    size_t len, float p0, float p1)
{
  ew_row_body (kind, y, a, b, len, p0, p1);
}

static gboolean
elementwise (NfBackend *base, NfOpCall *call, void *const *in, void *out, int kind,
    float p0, float p1, GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  NfCpuBuf *xa = in[0], *xb = kind == EW_ADD || kind == EW_ADD_RELU ? in[1] : NULL;
  NfCpuBuf *yb = out;
  if (!nf_cpu_check_buf (xa, call->in[0], "input", error)
      || (xb && !nf_cpu_check_buf (xb, call->in[1], "second input", error))
      || !nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView a = nf_cpu_view (xa), b = xb ? nf_cpu_view (xb) : a;
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  size_t len = (size_t) y.w * y.vec;
  int rows = y.n * y.planes * y.h;
  gboolean avx2 = be->avx2;
  gboolean fix_lanes = (kind == EW_TANH || kind == EW_CLAMP);
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * len))
  for (int r = 0; r < rows; r++) {
    int yy = r % y.h, t = r / y.h;
    int n = t / y.planes, pl = t % y.planes;
    float *yr = nf_cpu_row (&y, n, pl, yy);
    const float *ar = nf_cpu_row (&a, n, pl, yy), *br = nf_cpu_row (&b, n, pl, yy);
    if (avx2)
      ew_row_avx2 (kind, yr, ar, br, len, p0, p1);
    else
      ew_row_sse (kind, yr, ar, br, len, p0, p1);
    if (fix_lanes && pl == y.planes - 1)
      nf_cpu_zero_pad_lanes_row (&y, n, yy);
  }
  return TRUE;
}

gboolean
nf_cpu_relu (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  return elementwise (be, call, in, out, EW_RELU, 0, 0, error);
}

gboolean
nf_cpu_add (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  return elementwise (be, call, in, out, call->op->fuse_relu ? EW_ADD_RELU : EW_ADD, 0, 0,
      error);
}

gboolean
nf_cpu_tanh_scale (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  return elementwise (be, call, in, out, EW_TANH, call->op->scale, call->op->offset, error);
}

gboolean
nf_cpu_clamp (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  return elementwise (be, call, in, out, EW_CLAMP, call->op->min, call->op->max, error);
}

/* ---- data movement ---------------------------------------------------------------- */

/* y (N, sum Ci, H, W): inputs stacked along channels. Whole blocks are copied row by
 * row when the channel offsets fall on block boundaries; otherwise channel by
 * channel. */
gboolean
nf_cpu_concat (NfBackend *base, NfOpCall *call, void *const *in, void *out, GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  const NfOp *op = call->op;
  NfCpuBuf *yb = out;
  for (int i = 0; i < op->n_in; i++)
    if (!nf_cpu_check_buf (in[i], call->in[i], "input", error))
      return FALSE;
  if (!nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  int c0 = 0;
  for (int i = 0; i < op->n_in; i++) {
    NfCpuView x = nf_cpu_view ((NfCpuBuf *) in[i]);
    gboolean blocks = y.vec == 8 && x.vec == 8 && c0 % 8 == 0
        && (x.c % 8 == 0 || i == op->n_in - 1);
    if (blocks) {
      int rows = x.n * x.planes * x.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * x.w * 8))
      for (int r = 0; r < rows; r++) {
        int yy = r % x.h, t = r / x.h;
        int n = t / x.planes, pl = t % x.planes;
        memcpy (nf_cpu_row (&y, n, c0 / 8 + pl, yy), nf_cpu_row (&x, n, pl, yy),
            (size_t) x.w * 8 * sizeof (float));
      }
    } else {
      int rows = x.n * x.c * x.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * x.w))
      for (int r = 0; r < rows; r++) {
        int yy = r % x.h, t = r / x.h;
        int n = t / x.c, c = t % x.c;
        const float *s = nf_cpu_at (&x, n, c, yy, 0);
        float *d = nf_cpu_at (&y, n, c0 + c, yy, 0);
        for (int xx = 0; xx < x.w; xx++)
          d[(size_t) xx * y.vec] = s[(size_t) xx * x.vec];
      }
    }
    c0 += x.c;
  }
  for (int n = 0; n < y.n; n++)
    for (int yy = 0; yy < y.h; yy++)
      nf_cpu_zero_pad_lanes_row (&y, n, yy);
  return TRUE;
}

gboolean
nf_cpu_upsample_nearest (NfBackend *base, NfOpCall *call, void *const *in, void *out,
    GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  NfCpuBuf *xb = in[0], *yb = out;
  if (!nf_cpu_check_buf (xb, call->in[0], "input", error)
      || !nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView x = nf_cpu_view (xb);
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  int f = call->op->factor, vec = x.vec;
  int rows = x.n * x.planes * x.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * y.w * vec))
  for (int r = 0; r < rows; r++) {
    int iy = r % x.h, t = r / x.h;
    int n = t / x.planes, pl = t % x.planes;
    const float *s = nf_cpu_row (&x, n, pl, iy);
    float *d = nf_cpu_row (&y, n, pl, iy * f);
    if (vec == 8) {
      for (int ix = 0; ix < x.w; ix++)
        for (int j = 0; j < f; j++)
          for (int l = 0; l < 8; l++)
            d[((size_t) ix * f + j) * 8 + l] = s[(size_t) ix * 8 + l];
    } else {
      for (int ix = 0; ix < x.w; ix++)
        for (int j = 0; j < f; j++)
          d[(size_t) ix * f + j] = s[ix];
    }
    for (int i = 1; i < f; i++)
      memcpy (nf_cpu_row (&y, n, pl, iy * f + i), d, (size_t) y.w * vec * sizeof (float));
  }
  return TRUE;
}

/* y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w] (PyTorch pixel_shuffle).
 * With fuse_skip_add (the SR tail, nf-graph.h): + skip[n, c, h, w] (the nearest
 * upsampling of in[1]), then with fuse_clamp clamped to [min, max]. */
gboolean
nf_cpu_pixel_shuffle (NfBackend *base, NfOpCall *call, void *const *in, void *out,
    GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  const NfOp *op = call->op;
  NfCpuBuf *xb = in[0], *yb = out;
  if (!nf_cpu_check_buf (xb, call->in[0], "input", error)
      || !nf_cpu_check_buf (yb, call->out, "output", error)
      || (op->fuse_skip_add && !nf_cpu_check_buf (in[1], call->in[1], "skip input", error)))
    return FALSE;
  NfCpuView x = nf_cpu_view (xb);
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  int rf = op->factor;
  gboolean relu = op->fuse_relu;
  NfCpuView k = op->fuse_skip_add ? nf_cpu_view ((NfCpuBuf *) in[1]) : x;
  int rows = y.n * y.c * y.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * y.w))
  for (int r = 0; r < rows; r++) {
    int oy = r % y.h, t = r / y.h;
    int n = t / y.c, c = t % y.c;
    int i = oy % rf, iy = oy / rf;
    for (int j = 0; j < rf; j++) {
      const float *s = nf_cpu_at (&x, n, c * rf * rf + i * rf + j, iy, 0);
      float *d = nf_cpu_at (&y, n, c, oy, j);
      size_t ds = (size_t) rf * y.vec, ss = x.vec;
      if (op->fuse_skip_add) {
        const float *sk = nf_cpu_at (&k, n, c, iy, 0);
        size_t ks = k.vec;
        float lo = op->fuse_clamp ? op->min : -INFINITY;
        float hi = op->fuse_clamp ? op->max : INFINITY;
        for (int ix = 0; ix < x.w; ix++) {
          float v = s[ix * ss] + sk[ix * ks];
          d[ix * ds] = v < lo ? lo : v > hi ? hi : v;
        }
      } else if (relu) {
        for (int ix = 0; ix < x.w; ix++) {
          float v = s[ix * ss];
          d[ix * ds] = v > 0.0f ? v : 0.0f;
        }
      } else {
        for (int ix = 0; ix < x.w; ix++)
          d[ix * ds] = s[ix * ss];
      }
    }
  }
  for (int n = 0; n < y.n; n++)
    for (int yy = 0; yy < y.h; yy++)
      nf_cpu_zero_pad_lanes_row (&y, n, yy);
  return TRUE;
}

gboolean
nf_cpu_pool2d (NfBackend *base, NfOpCall *call, void *const *in, void *out, GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  const NfOp *op = call->op;
  NfCpuBuf *xb = in[0], *yb = out;
  if (!nf_cpu_check_buf (xb, call->in[0], "input", error)
      || !nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView x = nf_cpu_view (xb);
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  int k = op->k, s = op->stride, vec = x.vec;
  gboolean is_max = op->type == NF_OP_MAX_POOL2D, relu = op->fuse_relu;
  float inv = 1.0f / (float) (k * k);
  int rows = y.n * y.planes * y.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * y.w * vec * k * k))
  for (int r = 0; r < rows; r++) {
    int oy = r % y.h, t = r / y.h;
    int n = t / y.planes, pl = t % y.planes;
    float *d = nf_cpu_row (&y, n, pl, oy);
    for (int ox = 0; ox < y.w; ox++) {
      float acc[8];
      for (int l = 0; l < vec; l++)
        acc[l] = is_max ? -INFINITY : 0.0f;
      for (int ky = 0; ky < k; ky++) {
        const float *sr = nf_cpu_row (&x, n, pl, oy * s + ky) + (size_t) ox * s * vec;
        for (int kx = 0; kx < k; kx++)
          for (int l = 0; l < vec; l++) {
            float v = sr[kx * vec + l];
            if (is_max)
              acc[l] = v > acc[l] ? v : acc[l];
            else
              acc[l] += v;
          }
      }
      for (int l = 0; l < vec; l++) {
        float v = is_max ? acc[l] : acc[l] * inv;
        d[(size_t) ox * vec + l] = relu && v < 0.0f ? 0.0f : v;
      }
    }
  }
  return TRUE;
}
