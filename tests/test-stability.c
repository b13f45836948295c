/* test-stability.c — the stability term of nf-stability.h.
 *
 * Checks: draws stay in range, are never the null shift, repeat with the seed; the input
 * is the exact translation inside the image (reflection at the borders) plus noise of
 * about the drawn sigma; an identity network gives a zero term; a pattern anchored to
 * the pixel grid (+10 on even columns) gives exactly 100 under an odd shift; the
 * gradients to both outputs agree with central finite differences.
 * Does not: train (test-train-nets runs a style step with the term on).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-stability.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

#define H 20
#define W 28

static void
fill (float *v, int h, int w, int grid)
{
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        v[((size_t) c * h + y) * w + x] = (float) (100 + 40 * sin (0.3 * x + 0.2 * y + c))
            + (grid && x % 2 == 0 ? 10.0f : 0.0f);
}

int
main (void)
{
  NfStabilityDraw d, d2;
  int null_shift = 0, out_of_range = 0;
  for (guint64 s = 1; s < 500; s++) {
    nf_stability_draw (s, 3, 4.0, 0, &d);
    null_shift += d.dx == 0 && d.dy == 0;
    out_of_range += abs (d.dx) > 3 || abs (d.dy) > 3 || d.sigma < 0 || d.sigma > 4.0f;
  }
  CHECK (!null_shift && !out_of_range, "draws: %d null shifts, %d out of range", null_shift,
      out_of_range);
  nf_stability_draw (42, 3, 4.0, 0, &d);
  nf_stability_draw (42, 3, 4.0, 0, &d2);
  CHECK (memcmp (&d, &d2, sizeof d) == 0, "the same seed, the same draw");
  /* JPEG: quality in [jpeg_min, 95], drawn after the rest (shift and sigma unchanged) */
  int q_out = 0, changed = 0, q_lo = 100, q_hi = 0;
  for (guint64 s = 1; s < 500; s++) {
    nf_stability_draw (s, 3, 4.0, 0, &d);
    nf_stability_draw (s, 3, 4.0, 60, &d2);
    q_out += d.quality != 0 || d2.quality < 60 || d2.quality > 95;
    changed += d.dx != d2.dx || d.dy != d2.dy || d.sigma != d2.sigma
        || d.noise_seed != d2.noise_seed;
    q_lo = MIN (q_lo, d2.quality);
    q_hi = MAX (q_hi, d2.quality);
  }
  CHECK (!q_out && !changed && q_lo <= 62 && q_hi >= 93, "JPEG draws: %d out of range, "
      "%d changed the rest, qualities %d..%d", q_out, changed, q_lo, q_hi);

  size_t n = (size_t) 3 * H * W;
  float x[3 * H * W], t[3 * H * W], y2[3 * H * W];
  fill (x, H, W, 0);
  for (size_t i = 0; i < n; i++)
    x[i] = rintf (x[i]);
  d = (NfStabilityDraw) { .dx = 2, .dy = -1, .sigma = 0.0f, .noise_seed = 5 };
  nf_stability_input (x, H, W, &d, t, NULL);
  int bad = 0;
  for (int c = 0; c < 3; c++)
    for (int y = 1; y < H; y++)
      for (int i = 2; i < W; i++)
        bad += t[((size_t) c * H + y - 1) * W + i] != x[((size_t) c * H + y) * W + i - 2];
  CHECK (bad == 0, "translation by (2, -1): %d wrong pixels", bad);
  CHECK (t[0] == x[W + 2] && t[1] == x[W + 1], "reflected border (x 0, 1 <- -2, -1 -> 2, 1)");
  CHECK (nf_stability_loss (x, t, H, W, &d, 2, 1.0, NULL, NULL) == 0.0,
      "identity network, no noise: zero term");
  d.sigma = 2.0f;
  nf_stability_input (x, H, W, &d, y2, NULL);
  double e2 = 0;
  for (size_t i = 0; i < n; i++)
    e2 += (y2[i] - t[i]) * (y2[i] - t[i]);
  CHECK (sqrt (e2 / n) > 1.6 && sqrt (e2 / n) < 2.4, "noise sigma 2: RMS %.3f",
      sqrt (e2 / n));

  /* the JPEG round trip: no shift, no noise, quality 50: a codec's small change, whole
   * levels, the same on a second run */
  float j1[3 * H * W], j2[3 * H * W];
  d = (NfStabilityDraw) { .quality = 50, .noise_seed = 3 };
  GError *err = NULL;
  gboolean ok1 = nf_stability_input (x, H, W, &d, j1, &err);
  gboolean ok2 = nf_stability_input (x, H, W, &d, j2, &err);
  double ej = 0;
  int frac = 0;
  for (size_t i = 0; i < n; i++) {
    ej += (j1[i] - x[i]) * (j1[i] - x[i]);
    frac += j1[i] != rintf (j1[i]) || j1[i] < 0 || j1[i] > 255;
  }
  ej = sqrt (ej / n);
  CHECK (ok1 && ok2 && ej > 0.3 && ej < 8 && !frac && memcmp (j1, j2, sizeof j1) == 0,
      "JPEG quality 50: ok %d %d, RMS change %.3f, %d non-levels (%s)", ok1, ok2, ej, frac,
      err ? err->message : "");
  g_clear_error (&err);
  printf ("JPEG quality 50 round trip of the test crop: RMS change %.2f levels\n", ej);

  /* a net that adds a pattern anchored to the pixel grid, under an odd shift: every
   * valid difference is +-10 */
  float g1[3 * H * W], g2[3 * H * W];
  d = (NfStabilityDraw) { .dx = 1, .dy = 0, .sigma = 0.0f, .noise_seed = 1 };
  fill (x, H, W, 0);
  for (size_t i = 0; i < n; i++)
    x[i] = rintf (x[i]);
  nf_stability_input (x, H, W, &d, t, NULL);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < H; y++)
      for (int i = 0; i < W; i++) {
        size_t p = ((size_t) c * H + y) * W + i;
        g1[p] = x[p] + (i % 2 == 0 ? 10.0f : 0.0f);
        g2[p] = t[p] + (i % 2 == 0 ? 10.0f : 0.0f);
      }
  double L = nf_stability_loss (g1, g2, H, W, &d, 2, 1.0, NULL, NULL);
  CHECK (fabs (L - 100.0) < 1e-6, "grid pattern, odd shift: %.6f (want 100)", L);

  /* gradients against central differences */
  NfRng rng;
  nf_rng_seed (&rng, 3);
  float a[3 * H * W], b[3 * H * W], da[3 * H * W] = { 0 }, db[3 * H * W] = { 0 };
  nf_rng_fill_uniform (&rng, a, n, 0, 255);
  nf_rng_fill_uniform (&rng, b, n, 0, 255);
  d = (NfStabilityDraw) { -2, 3, 0.0f, 1 };
  double w = 0.7;
  nf_stability_loss (a, b, H, W, &d, 1, w, da, db);
  double worst = 0;
  for (int k = 0; k < 40; k++) {
    size_t i = (size_t) (nf_rng_uniform (&rng) * n);
    for (int which = 0; which < 2; which++) {
      float *v = which ? b : a, keep = v[i];
      double h = 0.5;
      v[i] = keep + h;
      double lp = w * nf_stability_loss (a, b, H, W, &d, 1, 1.0, NULL, NULL);
      v[i] = keep - h;
      double lm = w * nf_stability_loss (a, b, H, W, &d, 1, 1.0, NULL, NULL);
      v[i] = keep;
      double num = (lp - lm) / (2 * h), an = which ? db[i] : da[i];
      worst = MAX (worst, fabs (num - an) / MAX (1e-3, fabs (num)));
    }
  }
  CHECK (worst < 1e-3, "gradient vs finite differences: worst relative error %.2e", worst);
  printf ("gradient vs finite differences: worst relative error %.2e\n", worst);
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
