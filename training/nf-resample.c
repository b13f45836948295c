/* nf-resample.c — MATLAB-imresize-style separable resampling (bicubic, Lanczos-3).
 *
 * What it does: per axis, for every output index i, the source position
 * u = (i + 0.5) / s - 0.5 (s = out/in), taps at floor(u - support/s') .. + ceil(2
 * support/s') + 1 with s' = min(s, 1), weights k((u - j) s') normalised to sum 1,
 * indices mirrored into range (..., 1, 0, 0, 1, ..., n-1, n-1, n-2, ...); then rows,
 * then columns, accumulating in double.
 * What it does not: anything but the two kernels; no integer rounding.
 */
#include "nf-resample.h"

#include <math.h>

#include "nf-tensor.h"

double
nf_resample_kernel (NfFilter filter, double x)
{
  double ax = fabs (x);
  if (filter == NF_FILTER_LANCZOS3) {
    if (ax < 1e-12)
      return 1.0;
    if (ax >= 3.0)
      return 0.0;
    double px = G_PI * x;
    return 3.0 * sin (px) * sin (px / 3.0) / (px * px);
  }
  /* Keys (1981) with a = -0.5, as MATLAB's cubic */
  double ax2 = ax * ax, ax3 = ax2 * ax;
  if (ax <= 1.0)
    return 1.5 * ax3 - 2.5 * ax2 + 1.0;
  if (ax <= 2.0)
    return -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0;
  return 0.0;
}

static double
support (NfFilter f)
{
  return f == NF_FILTER_LANCZOS3 ? 3.0 : 2.0;
}

gboolean
nf_filter_from_name (const char *name, NfFilter *out)
{
  if (g_str_equal (name, "bicubic"))
    *out = NF_FILTER_BICUBIC;
  else if (g_str_equal (name, "lanczos3") || g_str_equal (name, "lanczos"))
    *out = NF_FILTER_LANCZOS3;
  else
    return FALSE;
  return TRUE;
}

const char *
nf_filter_name (NfFilter f)
{
  return f == NF_FILTER_LANCZOS3 ? "lanczos3" : "bicubic";
}

typedef struct {
  int n;                        /* taps per output index */
  int *idx;                     /* (m, n) source indices, mirrored into 0..len-1 */
  double *w;                    /* (m, n) weights, each row summing to 1 */
} Taps;

static int
mirror (int j, int len)
{
  int period = 2 * len;
  j %= period;
  if (j < 0)
    j += period;
  return j < len ? j : period - 1 - j;
}

static Taps
make_taps (int len, int m, NfFilter f)
{
  double s = (double) m / len;
  double sa = s < 1.0 ? s : 1.0;        /* kernel stretched by 1/s when shrinking */
  double width = 2.0 * support (f) / sa;
  Taps t;
  t.n = (int) ceil (width) + 2;
  t.idx = g_new (int, (size_t) m * t.n);
  t.w = g_new (double, (size_t) m * t.n);
  for (int i = 0; i < m; i++) {
    double u = (i + 0.5) / s - 0.5;
    int left = (int) floor (u - width / 2.0);
    double sum = 0.0;
    for (int k = 0; k < t.n; k++) {
      int j = left + k;
      double wk = sa * nf_resample_kernel (f, (u - j) * sa);
      t.idx[(size_t) i * t.n + k] = mirror (j, len);
      t.w[(size_t) i * t.n + k] = wk;
      sum += wk;
    }
    for (int k = 0; k < t.n; k++)
      t.w[(size_t) i * t.n + k] /= sum;
  }
  return t;
}

static void
free_taps (Taps *t)
{
  g_free (t->idx);
  g_free (t->w);
}

void
nf_resample_planar (const float *src, int c, int h, int w, float *dst, int oh, int ow,
    NfFilter filter)
{
  Taps tx = make_taps (w, ow, filter), ty = make_taps (h, oh, filter);
  double *tmp = g_new (double, (size_t) h * ow);                     // (h, ow) one plane
  for (int ch = 0; ch < c; ch++) {
    const float *sp = src + (size_t) ch * h * w;
    float *dp = dst + (size_t) ch * oh * ow;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < ow; x++) {
        const int *ix = tx.idx + (size_t) x * tx.n;
        const double *wx = tx.w + (size_t) x * tx.n;
        double acc = 0.0;
        for (int k = 0; k < tx.n; k++)
          acc += wx[k] * sp[(size_t) y * w + ix[k]];
        tmp[(size_t) y * ow + x] = acc;
      }
    for (int y = 0; y < oh; y++) {
      const int *iy = ty.idx + (size_t) y * ty.n;
      const double *wy = ty.w + (size_t) y * ty.n;
      for (int x = 0; x < ow; x++) {
        double acc = 0.0;
        for (int k = 0; k < ty.n; k++)
          acc += wy[k] * tmp[(size_t) iy[k] * ow + x];
        dp[(size_t) y * ow + x] = (float) acc;
      }
    }
  }
  g_free (tmp);
  free_taps (&tx);
  free_taps (&ty);
}
