/* nf-convert-luma.c — luma plane <-> float plane, and bilinear chroma upscaling
 * (definitions in nf-convert-luma.h).
 *
 * What it does: the three row loops of the luma path, plain C (a 640x360 luma plane
 * in and a 1280x720 one out with its chroma take about 2 ms on one core, next to a
 * network's 30).
 * What it does not: anything with RGB (nf-convert.c).
 */
#include "nf-convert-luma.h"

void
nf_convert_luma_unpack (const NfYuvMatrix *m, const guint8 *y, int ys, int w, int h,
    float *plane, int pw, int ph, float lo, float hi)
{
  float a = (hi - lo) / m->y_scale, b = lo - a * m->y_off;
  float lut[256];
  for (int i = 0; i < 256; i++)
    lut[i] = a * (float) i + b;
  for (int r = 0; r < ph; r++) {
    const guint8 *row = y + (gsize) nf_convert_reflect (r, h) * ys;
    float *d = plane + (gsize) r * pw;
    for (int x = 0; x < w; x++)
      d[x] = lut[row[x]];
    for (int x = w; x < pw; x++)
      d[x] = lut[row[nf_convert_reflect (x, w)]];
  }
}

void
nf_convert_luma_pack (const NfYuvMatrix *m, const float *plane, int pw, int w, int h,
    guint8 *y, int ys, float lo, float hi)
{
  float a = m->y_scale / (hi - lo), b = m->y_off - a * lo + 0.5f;
  for (int r = 0; r < h; r++) {
    const float *s = plane + (gsize) r * pw;
    guint8 *d = y + (gsize) r * ys;
    for (int x = 0; x < w; x++) {
      float v = s[x] * a + b;   /* + 0.5: truncation rounds */
      d[x] = !(v >= 0.0f) ? 0 : v >= 255.0f ? 255 : (guint8) (int) v;
    }
  }
}

/* For output index i of an upscale by s of n samples: the two source indices and the
 * weight of the second, in 1/256. */
static void
taps (int i, int s, int n, int *i0, int *i1, int *f)
{
  int num = 2 * i + 1 - s;      /* ((i + 0.5) / s - 0.5) * 2 s */
  int base = num >= 0 ? num / (2 * s) : -1;
  int frac = num - base * 2 * s;        /* 0 .. 2 s - 1 */
  *f = (frac * 256 + s) / (2 * s);
  *i0 = CLAMP (base, 0, n - 1);
  *i1 = CLAMP (base + 1, 0, n - 1);
}

void
nf_chroma_upscale (const guint8 *src, int ss, int sw, int sh, guint8 *dst, int ds,
    int dw, int dh, int step, int s)
{
  int *x0 = g_new (int, 3 * (gsize) dw), *x1 = x0 + dw, *fx = x1 + dw;
  for (int x = 0; x < dw; x++) {
    taps (x, s, sw, &x0[x], &x1[x], &fx[x]);
    x0[x] *= step;
    x1[x] *= step;
  }
  for (int r = 0; r < dh; r++) {
    int y0, y1, fy;
    taps (r, s, sh, &y0, &y1, &fy);
    const guint8 *a = src + (gsize) y0 * ss, *b = src + (gsize) y1 * ss;
    guint8 *d = dst + (gsize) r * ds;
    for (int x = 0; x < dw; x++) {
      int top = a[x0[x]] * (256 - fx[x]) + a[x1[x]] * fx[x];
      int bot = b[x0[x]] * (256 - fx[x]) + b[x1[x]] * fx[x];
      d[(gsize) x * step] = (guint8) ((top * (256 - fy) + bot * fy + 32768) >> 16);
    }
  }
  g_free (x0);
}
