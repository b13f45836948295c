/* nf-cpu-fast-norm.c — instance norm (forward) of the fast CPU backend, on the blocked
 * layout (nChw8c for c > 4, NCHW otherwise; see nf-cpu-fast-private.h).
 *
 * What it does: per (n, c): y = (x - mean) / sqrt(var + eps) * w[c] + b[c], biased
 * variance, ReLU fused when the op asks; the statistics in one pass of shifted sums
 * (shift = the first pixel of each channel), per row in float, across rows in double.
 * Statistics and normalisation rows have AVX2 versions chosen at run time. Padded channel
 * lanes get zeros. cond_instance_norm: nf-cond-norm.c mixes the style rows and runs this
 * with them.
 * What it does not: the backward pass (nf-cpu-fast-backward.c), batch_norm (folded at
 * load), buffers and halos (nf-cpu-fast.c).
 */
#include <immintrin.h>
#include <math.h>

#include "nf-cpu-fast-private.h"

/* ---- instance norm -------------------------------------------------------------- */

/* Sums of (x - k) and (x - k)^2 over one row, per lane (8 lanes; plain rows use
 * lanes as 8 interleaved partial sums of the same channel). */
static inline void
stats_row_body (const float *restrict r, size_t len, const float *restrict k,
    float *restrict s, float *restrict q)
{
  float sv[8] = { 0 }, qv[8] = { 0 };
  size_t i = 0;
  for (; i + 8 <= len; i += 8)
    for (int l = 0; l < 8; l++) {
      float d = r[i + l] - k[l];
      sv[l] += d;
      qv[l] += d * d;
    }
  for (; i < len; i++) {
    float d = r[i] - k[0];
    sv[0] += d;
    qv[0] += d * d;
  }
  for (int l = 0; l < 8; l++) {
    s[l] = sv[l];
    q[l] = qv[l];
  }
}

__attribute__((target ("avx2,fma")))
static void
stats_row_avx2 (const float *r, size_t len, const float *k, float *s, float *q)
{
  __m256 kv = _mm256_loadu_ps (k);
  __m256 s0 = _mm256_setzero_ps (), s1 = s0, s2 = s0, s3 = s0;
  __m256 q0 = s0, q1 = s0, q2 = s0, q3 = s0;
  size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    __m256 d0 = _mm256_sub_ps (_mm256_loadu_ps (r + i), kv);
    __m256 d1 = _mm256_sub_ps (_mm256_loadu_ps (r + i + 8), kv);
    __m256 d2 = _mm256_sub_ps (_mm256_loadu_ps (r + i + 16), kv);
    __m256 d3 = _mm256_sub_ps (_mm256_loadu_ps (r + i + 24), kv);
    s0 = _mm256_add_ps (s0, d0);
    s1 = _mm256_add_ps (s1, d1);
    s2 = _mm256_add_ps (s2, d2);
    s3 = _mm256_add_ps (s3, d3);
    q0 = _mm256_fmadd_ps (d0, d0, q0);
    q1 = _mm256_fmadd_ps (d1, d1, q1);
    q2 = _mm256_fmadd_ps (d2, d2, q2);
    q3 = _mm256_fmadd_ps (d3, d3, q3);
  }
  for (; i + 8 <= len; i += 8) {
    __m256 d0 = _mm256_sub_ps (_mm256_loadu_ps (r + i), kv);
    s0 = _mm256_add_ps (s0, d0);
    q0 = _mm256_fmadd_ps (d0, d0, q0);
  }
  _mm256_storeu_ps (s, _mm256_add_ps (_mm256_add_ps (s0, s1), _mm256_add_ps (s2, s3)));
  _mm256_storeu_ps (q, _mm256_add_ps (_mm256_add_ps (q0, q1), _mm256_add_ps (q2, q3)));
  for (; i < len; i++) {          /* plain rows: the tail goes to lane 0 */
    float d = r[i] - k[0];
    s[0] += d;
    q[0] += d * d;
  }
}

static void
stats_row_sse (const float *r, size_t len, const float *k, float *s, float *q)
{
  stats_row_body (r, len, k, s, q);
}

/* y = max((x - m) * a + b, 0) (relu) or (x - m) * a + b, per lane. Subtracting the
 * mean first keeps the result exact where the spread is tiny next to the mean. */
static inline void
norm_row_body (float *restrict y, const float *restrict x, size_t len,
    const float *restrict m, const float *restrict a, const float *restrict b, gboolean relu)
{
  if (relu) {
    for (size_t i = 0; i < len; i += 8)
      for (int l = 0; l < 8; l++) {
        float v = (x[i + l] - m[l]) * a[l] + b[l];
        y[i + l] = v > 0.0f ? v : 0.0f;
      }
  } else {
    for (size_t i = 0; i < len; i += 8)
      for (int l = 0; l < 8; l++)
        y[i + l] = (x[i + l] - m[l]) * a[l] + b[l];
  }
}

__attribute__((target ("avx2,fma")))
static void
norm_row_avx2 (float *y, const float *x, size_t len, const float *m, const float *a,
    const float *b, gboolean relu)
{
  __m256 mv = _mm256_loadu_ps (m), av = _mm256_loadu_ps (a), bv = _mm256_loadu_ps (b);
  __m256 zero = _mm256_setzero_ps ();
  if (relu) {
    for (size_t i = 0; i < len; i += 8) {
      __m256 v = _mm256_fmadd_ps (_mm256_sub_ps (_mm256_loadu_ps (x + i), mv), av, bv);
      _mm256_storeu_ps (y + i, _mm256_max_ps (zero, v));     /* NaN stays NaN */
    }
  } else {
    for (size_t i = 0; i < len; i += 8)
      _mm256_storeu_ps (y + i, _mm256_fmadd_ps (_mm256_sub_ps (_mm256_loadu_ps (x + i), mv),
              av, bv));
  }
}

static void
norm_row_sse (float *y, const float *x, size_t len, const float *m, const float *a,
    const float *b, gboolean relu)
{
  norm_row_body (y, x, len, m, a, b, relu);
}

/* Per (n, c): y = (x - mean) / sqrt(var + eps) * w[c] + b[c], biased variance,
 * optionally followed by ReLU. One pass for the statistics: shifted sums (shift = the
 * first pixel of each channel) accumulated per row in float, across rows in double. */
gboolean
nf_cpu_instance_norm (NfBackend *base, NfOpCall *call, void *const *in, void *out,
    GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  const NfOp *op = call->op;
  NfCpuBuf *xb = in[0], *yb = out;
  if (!nf_cpu_check_buf (xb, call->in[0], "input", error)
      || !nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView x = nf_cpu_view (xb);
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  int vec = x.vec, h = x.h, np = x.n * x.planes;
  size_t len = (size_t) x.w * vec;
  /* Plain rows shorter than 8 floats or not a multiple of 8 use a scalar tail; the
   * normalise loop works on whole vectors of 8 only for blocked rows. */
  gboolean avx2 = be->avx2;
  int chunks = MIN (h, 16);
  /* per (plane, chunk): 8 sums, 8 squares, in double; then per plane: a[8], b[8],
   * k[8] (the shift), m[8] (the mean) */
  double *part = g_new0 (double, (size_t) np * chunks * 16);
  float *coef = g_new0 (float, (size_t) np * 32);

  for (int t = 0; t < np; t++) {
    float *k = coef + (size_t) t * 32 + 16;
    const float *r0 = nf_cpu_row (&x, t / x.planes, t % x.planes, 0);
    for (int l = 0; l < 8; l++)
      k[l] = vec == 8 ? r0[l] : r0[0];
  }

#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) np * h * len))
  for (int tc = 0; tc < np * chunks; tc++) {
    int t = tc / chunks, ch = tc % chunks;
    int y0 = (int) ((long) h * ch / chunks), y1 = (int) ((long) h * (ch + 1) / chunks);
    const float *k = coef + (size_t) t * 32 + 16;
    double *ps = part + (size_t) tc * 16;
    for (int yy = y0; yy < y1; yy++) {
      float s[8], q[8];
      const float *r = nf_cpu_row (&x, t / x.planes, t % x.planes, yy);
      if (avx2)
        stats_row_avx2 (r, len, k, s, q);
      else
        stats_row_sse (r, len, k, s, q);
      for (int l = 0; l < 8; l++) {
        ps[l] += s[l];
        ps[8 + l] += q[l];
      }
    }
  }

  double cnt = (double) x.h * x.w;
  for (int t = 0; t < np; t++) {
    int pl = t % x.planes;
    float *a = coef + (size_t) t * 32, *b = a + 8, *mu = a + 24;
    const float *k = a + 16;
    double s[8] = { 0 }, q[8] = { 0 };
    for (int ch = 0; ch < chunks; ch++) {
      const double *ps = part + ((size_t) t * chunks + ch) * 16;
      for (int l = 0; l < 8; l++) {
        s[l] += ps[l];
        q[l] += ps[8 + l];
      }
    }
    if (vec == 1) {             /* the 8 lanes were partial sums of one channel */
      for (int l = 1; l < 8; l++) {
        s[0] += s[l];
        q[0] += q[l];
      }
    }
    for (int l = 0; l < 8; l++) {
      int c = vec == 8 ? pl * 8 + l : pl;
      if ((vec == 1 && l > 0) || c >= x.c) {
        a[l] = b[l] = mu[l] = 0.0f;
        continue;
      }
      double m = s[l] / cnt;                    /* mean of x - k */
      double var = q[l] / cnt - m * m;
      if (var < 0.0)
        var = 0.0;
      double inv = 1.0 / sqrt (var + op->eps);
      double w = (op->affine && op->weight) ? op->weight[c] : 1.0;
      double bb = (op->affine && op->bias) ? op->bias[c] : 0.0;
      a[l] = (float) (inv * w);
      b[l] = (float) bb;
      mu[l] = (float) (m + k[l]);
    }
    if (vec == 1)
      for (int l = 1; l < 8; l++) {
        a[l] = a[0];
        b[l] = b[0];
        mu[l] = mu[0];
      }
  }

  int rows = np * h;
  gboolean relu = op->fuse_relu;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * len))
  for (int r = 0; r < rows; r++) {
    int yy = r % h, t = r / h;
    const float *a = coef + (size_t) t * 32, *b = a + 8, *mu = a + 24;
    const float *xr = nf_cpu_row (&x, t / x.planes, t % x.planes, yy);
    float *yr = nf_cpu_row (&y, t / x.planes, t % x.planes, yy);
    size_t main_len = len & ~(size_t) 7;
    if (avx2)
      norm_row_avx2 (yr, xr, main_len, mu, a, b, relu);
    else
      norm_row_sse (yr, xr, main_len, mu, a, b, relu);
    for (size_t i = main_len; i < len; i++) {     /* plain rows only */
      float v = (xr[i] - mu[0]) * a[0] + b[0];
      yr[i] = relu && v < 0.0f ? 0.0f : v;
    }
  }
  g_free (part);
  g_free (coef);
  return TRUE;
}
