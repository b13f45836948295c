/* nf-degrade.c — the SR degradations of nf-degrade.h: Gaussian blur, bicubic downscale,
 * and video's noise + JPEG.
 *
 * What it does: a separable Gaussian (double accumulation, mirrored borders as in
 * nf-resample.c), then nf_resample_planar with the bicubic kernel, then rounding and
 * clamping to 8-bit values; for video, seeded noise and a JPEG round trip (nf-image).
 * What it does not: anything about crops.
 */
#include "nf-degrade.h"

#include <math.h>
#include <string.h>

#include "nf-error.h"
#include "nf-image.h"
#include "nf-resample.h"
#include "nf-tensor.h"

static int
mirror (int j, int len)
{
  int period = 2 * len;
  j %= period;
  if (j < 0)
    j += period;
  return j < len ? j : period - 1 - j;
}

void
nf_gaussian_blur_planar (const float *src, int c, int h, int w, double sigma, float *dst)
{
  if (sigma <= 0.0) {
    memcpy (dst, src, sizeof (float) * c * h * w);
    return;
  }
  int r = (int) ceil (3.0 * sigma);
  double *k = g_new (double, 2 * r + 1), sum = 0.0;
  for (int i = -r; i <= r; i++)
    sum += k[i + r] = exp (-0.5 * i * i / (sigma * sigma));
  for (int i = 0; i <= 2 * r; i++)
    k[i] /= sum;
  double *tmp = g_new (double, (size_t) h * w);                      // (h, w) one plane
  for (int ch = 0; ch < c; ch++) {
    const float *s = src + (size_t) ch * h * w;
    float *d = dst + (size_t) ch * h * w;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        double acc = 0.0;
        for (int i = -r; i <= r; i++)
          acc += k[i + r] * s[(size_t) y * w + mirror (x + i, w)];
        tmp[(size_t) y * w + x] = acc;
      }
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        double acc = 0.0;
        for (int i = -r; i <= r; i++)
          acc += k[i + r] * tmp[(size_t) mirror (y + i, h) * w + x];
        d[(size_t) y * w + x] = (float) acc;
      }
  }
  g_free (tmp);
  g_free (k);
}

gboolean
nf_degrade_planar (const NfDegrade *d, const float *hr, int c, int h, int w, float *lr,
    GError **error)
{
  int s = d->scale;
  if (s < 2 || s > 8 || h % s || w % s || h < s || w < s) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "degradation: a %dx%d image cannot be downscaled by %d (sides must be positive "
        "multiples of the scale, scale 2..8)", w, h, s);
    return FALSE;
  }
  const float *src = hr;
  float *blurred = NULL;
  if (d->kind == NF_DEGRADE_BLUR_BICUBIC) {
    blurred = nf_alloc_floats ((size_t) c * h * w);
    nf_gaussian_blur_planar (hr, c, h, w, d->sigma, blurred);
    src = blurred;
  }
  size_t n = (size_t) c * (h / s) * (w / s);
  nf_resample_planar (src, c, h, w, lr, h / s, w / s, NF_FILTER_BICUBIC);
  nf_free (blurred);
  if (d->kind != NF_DEGRADE_VIDEO) {
    for (size_t i = 0; i < n; i++)
      lr[i] = CLAMP (rintf (lr[i]), 0.0f, 255.0f);
    return TRUE;
  }
  if (c != 3 || d->noise < 0 || d->jpeg_min < 0 || d->jpeg_max > 100
      || d->jpeg_min > d->jpeg_max || (d->jpeg_min == 0 && d->jpeg_max != 0)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "video degradation: 3 channels, noise "
        ">= 0 and a JPEG quality range within 1..100 (or 0..0: none)");
    return FALSE;
  }
  NfRng rng;
  nf_rng_seed (&rng, d->seed ^ 0x5f3759dfu);
  double sigma = d->noise * nf_rng_uniform (&rng);
  int q = d->jpeg_min + (int) (nf_rng_uniform (&rng) * (d->jpeg_max - d->jpeg_min + 1));
  q = MIN (q, d->jpeg_max);
  for (size_t i = 0; i < n; i++)
    lr[i] = CLAMP (rintf (lr[i] + (float) sigma * nf_rng_normal (&rng)), 0.0f, 255.0f);
  if (q == 0)
    return TRUE;
  return nf_image_jpeg_round_trip_planar (lr, w / s, h / s, q, "video degradation", error);
}

gboolean
nf_degrade_kind_from_name (const char *name, NfDegradeKind *out)
{
  if (g_str_equal (name, "bicubic"))
    *out = NF_DEGRADE_BICUBIC;
  else if (g_str_equal (name, "blur-bicubic"))
    *out = NF_DEGRADE_BLUR_BICUBIC;
  else if (g_str_equal (name, "video"))
    *out = NF_DEGRADE_VIDEO;
  else
    return FALSE;
  return TRUE;
}

const char *
nf_degrade_kind_name (NfDegradeKind k)
{
  return k == NF_DEGRADE_BLUR_BICUBIC ? "blur-bicubic" : k == NF_DEGRADE_VIDEO ? "video"
      : "bicubic";
}
