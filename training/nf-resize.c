/* nf-resize.c — separable area/bilinear resizing of planar float images.
 *
 * What it does: per axis, a list of (source index, weight) taps for every output index
 * (area overlap when shrinking, two bilinear taps when enlarging), applied to rows then
 * columns in double.
 * What it does not: anything beyond plain resampling (no sharpening, no gamma).
 */
#include "nf-resize.h"

#include <math.h>

#include "nf-tensor.h"

typedef struct {
  int first, n;                 /* taps: source indices first .. first+n-1 */
  double *w;                    /* n weights, summing to 1 */
} Taps;

static Taps *
make_taps (int n, int m)
{
  Taps *t = g_new0 (Taps, m);
  double scale = (double) n / m;
  for (int i = 0; i < m; i++) {
    if (m <= n) {
      double a = i * scale, b = (i + 1) * scale;
      int j0 = (int) floor (a), j1 = MIN ((int) ceil (b), n);
      t[i].first = j0;
      t[i].n = j1 - j0;
      t[i].w = g_new0 (double, t[i].n);
      double sum = 0.0;
      for (int j = j0; j < j1; j++) {
        double o = MIN (b, j + 1.0) - MAX (a, (double) j);
        t[i].w[j - j0] = o > 0 ? o : 0;
        sum += t[i].w[j - j0];
      }
      for (int j = 0; j < t[i].n; j++)
        t[i].w[j] /= sum;
    } else {
      double x = (i + 0.5) * scale - 0.5;
      x = CLAMP (x, 0.0, n - 1.0);
      int j0 = MIN ((int) floor (x), n - 1), j1 = MIN (j0 + 1, n - 1);
      double f = x - j0;
      t[i].first = j0;
      t[i].n = j1 > j0 ? 2 : 1;
      t[i].w = g_new0 (double, 2);
      t[i].w[0] = t[i].n == 2 ? 1.0 - f : 1.0;
      t[i].w[1] = f;
    }
  }
  return t;
}

static void
free_taps (Taps *t, int m)
{
  for (int i = 0; i < m; i++)
    g_free (t[i].w);
  g_free (t);
}

void
nf_resize_planar (const float *src, int c, int h, int w, float *dst, int oh, int ow)
{
  Taps *tx = make_taps (w, ow), *ty = make_taps (h, oh);
  float *tmp = nf_alloc_floats ((size_t) h * ow);                     // (h, ow) one plane
  for (int ch = 0; ch < c; ch++) {
    const float *s = src + (size_t) ch * h * w;
    float *d = dst + (size_t) ch * oh * ow;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < ow; x++) {
        double acc = 0.0;
        for (int k = 0; k < tx[x].n; k++)
          acc += tx[x].w[k] * s[(size_t) y * w + tx[x].first + k];
        tmp[(size_t) y * ow + x] = (float) acc;
      }
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++) {
        double acc = 0.0;
        for (int k = 0; k < ty[y].n; k++)
          acc += ty[y].w[k] * tmp[(size_t) (ty[y].first + k) * ow + x];
        d[(size_t) y * ow + x] = (float) acc;
      }
  }
  nf_free (tmp);
  free_taps (tx, ow);
  free_taps (ty, oh);
}

void
nf_resize_fit (int w, int h, int long_side, int *ow, int *oh)
{
  if (w >= h) {
    *ow = long_side;
    *oh = MAX (1, (int) lround ((double) h * long_side / w));
  } else {
    *oh = long_side;
    *ow = MAX (1, (int) lround ((double) w * long_side / h));
  }
}
