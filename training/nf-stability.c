/* nf-stability.c — the stability term's draws, inputs and loss (nf-stability.h).
 *
 * What it does: seeded draws; the shifted, noisy input with reflected borders; the
 * masked mean squared difference and its gradient to both outputs, in double.
 * What it does not: anything about networks or batches.
 */
#include "nf-stability.h"

#include <math.h>

#include "nf-image.h"


void
nf_stability_draw (guint64 seed, int max_shift, double max_noise, int jpeg_min,
    NfStabilityDraw *d)
{
  NfRng rng;
  nf_rng_seed (&rng, seed ^ 0x9e3779b97f4a7c15ull);
  d->dx = d->dy = 0;
  while (max_shift > 0 && d->dx == 0 && d->dy == 0) {
    d->dx = (int) floorf (nf_rng_uniform (&rng) * (2 * max_shift + 1)) - max_shift;
    d->dy = (int) floorf (nf_rng_uniform (&rng) * (2 * max_shift + 1)) - max_shift;
  }
  d->sigma = (float) (max_noise * nf_rng_uniform (&rng));
  d->quality = 0;
  if (jpeg_min > 0) {
    int lo = MIN (jpeg_min, 95);
    d->quality = MIN (95, lo + (int) (nf_rng_uniform (&rng) * (96 - lo)));
  }
  d->noise_seed = seed * 6364136223846793005ull + 1442695040888963407ull;
}

gboolean
nf_stability_input (const float *x, int h, int w, const NfStabilityDraw *d, float *out,
    GError **error)
{
  NfRng rng;
  nf_rng_seed (&rng, d->noise_seed);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < h; y++)
      for (int i = 0; i < w; i++) {
        int sy = nf_reflect_index (y - d->dy, h), sx = nf_reflect_index (i - d->dx, w);
        float v = x[((size_t) c * h + sy) * w + sx];
        if (d->sigma > 0)
          v += d->sigma * nf_rng_normal (&rng);
        out[((size_t) c * h + y) * w + i] = CLAMP (rintf (v), 0.0f, 255.0f);
      }
  return d->quality <= 0 || nf_image_jpeg_round_trip_planar (out, w, h, d->quality,
      "stability crop", error);
}

double
nf_stability_loss (const float *y1, const float *y2, int h, int w, const NfStabilityDraw *d,
    int margin, double weight, float *dy1, float *dy2)
{
  /* valid: (y, x) and its source (y - dy, x - dx) both at least margin from the borders */
  int y0 = MAX (margin, margin + d->dy), y1e = MIN (h - margin, h - margin + d->dy);
  int x0 = MAX (margin, margin + d->dx), x1e = MIN (w - margin, w - margin + d->dx);
  if (y0 >= y1e || x0 >= x1e)
    return 0.0;
  size_t n = (size_t) 3 * (y1e - y0) * (x1e - x0);
  double sum = 0, g = 2.0 * weight / (double) n;
  for (int c = 0; c < 3; c++)
    for (int y = y0; y < y1e; y++)
      for (int x = x0; x < x1e; x++) {
        size_t p = ((size_t) c * h + y) * w + x;
        size_t q = ((size_t) c * h + y - d->dy) * w + x - d->dx;
        double diff = (double) y2[p] - y1[q];
        sum += diff * diff;
        if (dy2)
          dy2[p] += (float) (g * diff);
        if (dy1)
          dy1[q] -= (float) (g * diff);
      }
  return sum / (double) n;
}
