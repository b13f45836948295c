/* nf-metrics.c — Y-channel PSNR and SSIM (see nf-metrics.h for the exact definitions).
 *
 * What it does: luma conversion, shaving, mean squared error in double, and SSIM with
 * a separable 11-tap Gaussian (the 2-D window of fspecial('gaussian', 11, 1.5) is the
 * outer product of the normalised 1-D one), filtering only where the window fits.
 * What it does not: read images, or resize anything.
 */
#include "nf-metrics.h"

#include <math.h>

#define SSIM_WIN 11
#define SSIM_SIGMA 1.5

void
nf_rgb_to_y (const float *rgb, int h, int w, float *y)
{
  size_t n = (size_t) h * w;
  for (size_t i = 0; i < n; i++)
    y[i] = (float) (16.0 + (65.481 * rgb[i] + 128.553 * rgb[n + i] + 24.966 * rgb[2 * n + i])
        / 255.0);
}

double
nf_psnr_plane (const float *a, const float *b, int h, int w, int shave, double peak)
{
  double se = 0.0;
  size_t n = 0;
  for (int y = shave; y < h - shave; y++)
    for (int x = shave; x < w - shave; x++) {
      double d = (double) a[(size_t) y * w + x] - b[(size_t) y * w + x];
      se += d * d;
      n++;
    }
  if (n == 0)
    return NAN;
  if (se == 0.0)
    return INFINITY;
  return 10.0 * log10 (peak * peak / (se / n));
}

/* Valid-mode separable filtering of p (h, w) with k (SSIM_WIN taps) -> (h-10, w-10). */
static void
filter_valid (const double *p, int h, int w, const double *k, double *tmp, double *out)
{
  int ow = w - SSIM_WIN + 1, oh = h - SSIM_WIN + 1;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < ow; x++) {
      double acc = 0.0;
      for (int i = 0; i < SSIM_WIN; i++)
        acc += k[i] * p[(size_t) y * w + x + i];
      tmp[(size_t) y * ow + x] = acc;
    }
  for (int y = 0; y < oh; y++)
    for (int x = 0; x < ow; x++) {
      double acc = 0.0;
      for (int i = 0; i < SSIM_WIN; i++)
        acc += k[i] * tmp[(size_t) (y + i) * ow + x];
      out[(size_t) y * ow + x] = acc;
    }
}

double
nf_ssim_plane (const float *a, const float *b, int h, int w, int shave, double peak)
{
  int sh = h - 2 * shave, sw = w - 2 * shave;
  if (sh < SSIM_WIN || sw < SSIM_WIN)
    return NAN;
  double k[SSIM_WIN], ksum = 0.0;
  for (int i = 0; i < SSIM_WIN; i++) {
    double d = i - (SSIM_WIN - 1) / 2.0;
    ksum += k[i] = exp (-d * d / (2.0 * SSIM_SIGMA * SSIM_SIGMA));
  }
  for (int i = 0; i < SSIM_WIN; i++)
    k[i] /= ksum;
  size_t n = (size_t) sh * sw;
  int oh = sh - SSIM_WIN + 1, ow = sw - SSIM_WIN + 1;
  size_t no = (size_t) oh * ow;
  /* planes: a, b, a^2, b^2, ab (each (sh, sw)) and their filtered versions (oh, ow) */
  double *in = g_new (double, 5 * n), *f = g_new (double, 5 * no);
  double *tmp = g_new (double, (size_t) sh * ow);
  for (int y = 0; y < sh; y++)
    for (int x = 0; x < sw; x++) {
      size_t i = (size_t) y * sw + x, s = (size_t) (y + shave) * w + x + shave;
      double va = a[s], vb = b[s];
      in[i] = va;
      in[n + i] = vb;
      in[2 * n + i] = va * va;
      in[3 * n + i] = vb * vb;
      in[4 * n + i] = va * vb;
    }
  for (int p = 0; p < 5; p++)
    filter_valid (in + p * n, sh, sw, k, tmp, f + p * no);
  double c1 = (0.01 * peak) * (0.01 * peak), c2 = (0.03 * peak) * (0.03 * peak);
  double sum = 0.0;
  for (size_t i = 0; i < no; i++) {
    double mu1 = f[i], mu2 = f[no + i];
    double s1 = f[2 * no + i] - mu1 * mu1, s2 = f[3 * no + i] - mu2 * mu2;
    double s12 = f[4 * no + i] - mu1 * mu2;
    sum += ((2.0 * mu1 * mu2 + c1) * (2.0 * s12 + c2))
        / ((mu1 * mu1 + mu2 * mu2 + c1) * (s1 + s2 + c2));
  }
  g_free (in);
  g_free (f);
  g_free (tmp);
  return sum / no;
}

double
nf_psnr_y (const float *a_rgb, const float *b_rgb, int h, int w, int shave)
{
  float *ya = g_new (float, (size_t) h * w), *yb = g_new (float, (size_t) h * w);
  nf_rgb_to_y (a_rgb, h, w, ya);
  nf_rgb_to_y (b_rgb, h, w, yb);
  double r = nf_psnr_plane (ya, yb, h, w, shave, 255.0);
  g_free (ya);
  g_free (yb);
  return r;
}

double
nf_ssim_y (const float *a_rgb, const float *b_rgb, int h, int w, int shave)
{
  float *ya = g_new (float, (size_t) h * w), *yb = g_new (float, (size_t) h * w);
  nf_rgb_to_y (a_rgb, h, w, ya);
  nf_rgb_to_y (b_rgb, h, w, yb);
  double r = nf_ssim_plane (ya, yb, h, w, shave, 255.0);
  g_free (ya);
  g_free (yb);
  return r;
}
