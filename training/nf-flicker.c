/* nf-flicker.c — static flicker ratio, warping error and synthetic static clips
 * (definitions in nf-flicker.h).
 *
 * What it does: runs the caller's filter on every frame once (the previous output is
 * kept), accumulates in double; warps with edge-replicating translations and a bilinear
 * zoom; encodes/decodes JPEG through nf-image.
 * What it does not: choose clips or print.
 */
#include "nf-flicker.h"

#include <math.h>
#include <string.h>

#include "nf-error.h"
#include "nf-image.h"
#include "nf-tensor.h"

static gboolean
run (NfFrameFilter f, gpointer user, const float *in, int w, int h, float **out, int *ow,
    int *oh, GError **error)
{
  *out = NULL;
  if (!f (user, in, w, h, out, ow, oh, error))
    return FALSE;
  if (*ow % w || *oh % h || *ow / w != *oh / h || *ow < w) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "flicker: a %dx%d frame gave a %dx%d "
        "output (not the same size or an integer upscale)", w, h, *ow, *oh);
    nf_free (*out);
    *out = NULL;
    return FALSE;
  }
  return TRUE;
}

gboolean
nf_flicker_static (const float *const *frames, int n, int w, int h, double threshold,
    NfFrameFilter f, gpointer user, NfFlickerStatic *out, GError **error)
{
  memset (out, 0, sizeof *out);
  if (n < 2 || w < 1 || h < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "flicker: need at least 2 frames");
    return FALSE;
  }
  size_t plane = (size_t) w * h;
  float *prev = NULL, *cur = NULL;
  int ow = 0, oh = 0;
  if (!run (f, user, frames[0], w, h, &prev, &ow, &oh, error))
    return FALSE;
  int s = ow / w;
  size_t oplane = (size_t) ow * oh;
  double in_sum = 0, out_sum = 0;
  guint64 n_static = 0, n_all = 0;
  gboolean ok = TRUE;
  for (int t = 1; t < n && ok; t++) {
    int w2, h2;
    if (!(ok = run (f, user, frames[t], w, h, &cur, &w2, &h2, error)))
      break;
    if (w2 != ow || h2 != oh) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "flicker: output size changed");
      ok = FALSE;
      break;
    }
    const float *a = frames[t - 1], *b = frames[t];
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        size_t i = (size_t) y * w + x;
        double d[3], m = 0;
        for (int c = 0; c < 3; c++) {
          d[c] = fabs ((double) b[c * plane + i] - a[c * plane + i]);
          m = MAX (m, d[c]);
        }
        n_all++;
        if (m >= threshold)
          continue;
        n_static++;
        in_sum += (d[0] + d[1] + d[2]) / 3.0;
        double o = 0;
        for (int c = 0; c < 3; c++)
          for (int dy = 0; dy < s; dy++)
            for (int dx = 0; dx < s; dx++) {
              size_t j = c * oplane + (size_t) (y * s + dy) * ow + x * s + dx;
              o += fabs ((double) cur[j] - prev[j]);
            }
        out_sum += o / (3.0 * s * s);
      }
    nf_free (prev);
    prev = cur;
    cur = NULL;
  }
  nf_free (prev);
  nf_free (cur);
  if (!ok)
    return FALSE;
  if (n_static == 0 || in_sum == 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "flicker: %s",
        n_static ? "the static pixels never change (identical frames): no ratio"
        : "no pixel is static (the threshold is below every change)");
    return FALSE;
  }
  out->input_change = in_sum / n_static;
  out->output_change = out_sum / n_static;
  out->ratio = out->output_change / out->input_change;
  out->static_fraction = (double) n_static / n_all;
  out->pairs = n - 1;
  return TRUE;
}

/* ---- warping ------------------------------------------------------------------------ */

/* dst = src translated by (dx, dy) (dst(y, x) = src(y - dy, x - dx)), edges replicated. */
static void
translate (const float *src, int w, int h, int dx, int dy, float *dst)
{
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        int sy = CLAMP (y - dy, 0, h - 1), sx = CLAMP (x - dx, 0, w - 1);
        dst[((size_t) c * h + y) * w + x] = src[((size_t) c * h + sy) * w + sx];
      }
}

/* dst = src zoomed by z about the centre, bilinear, edges replicated. */
static void
zoom (const float *src, int w, int h, double z, float *dst)
{
  double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        double u = cx + (x - cx) / z, v = cy + (y - cy) / z;
        int x0 = (int) floor (u), y0 = (int) floor (v);
        double fx = u - x0, fy = v - y0, acc = 0;
        for (int j = 0; j < 2; j++)
          for (int i = 0; i < 2; i++) {
            int sx = CLAMP (x0 + i, 0, w - 1), sy = CLAMP (y0 + j, 0, h - 1);
            acc += (i ? fx : 1 - fx) * (j ? fy : 1 - fy) * src[((size_t) c * h + sy) * w + sx];
          }
        dst[((size_t) c * h + y) * w + x] = (float) acc;
      }
}

static double
interior_mae (const float *a, const float *b, int w, int h, int margin)
{
  double sum = 0;
  guint64 n = 0;
  for (int c = 0; c < 3; c++)
    for (int y = margin; y < h - margin; y++)
      for (int x = margin; x < w - margin; x++) {
        size_t i = ((size_t) c * h + y) * w + x;
        sum += fabs ((double) a[i] - b[i]);
        n++;
      }
  return n ? sum / n : 0.0;
}

gboolean
nf_flicker_warp (const float *img, int w, int h, int margin, NfFrameFilter f, gpointer user,
    NfWarpScore *out, GError **error)
{
  static const int shifts[][2] = { {1, 0}, {0, 1}, {2, 3}, {-3, 1}, {5, -2} };
  memset (out, 0, sizeof *out);
  out->zoom_error = -1;
  if (w <= 2 * (margin + 6) || h <= 2 * (margin + 6)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "warp: a %dx%d image is too small for a "
        "margin of %d", w, h, margin);
    return FALSE;
  }
  float *fx = NULL, *ftx = NULL;
  int ow, oh, w2, h2;
  if (!run (f, user, img, w, h, &fx, &ow, &oh, error))
    return FALSE;
  int s = ow / w;
  float *tx = nf_alloc_floats ((size_t) 3 * w * h), *tfx = nf_alloc_floats ((size_t) 3 * ow * oh);
  gboolean ok = TRUE;
  double sum_t = 0;
  int n_t = G_N_ELEMENTS (shifts);
  for (int k = 0; k < n_t && ok; k++) {
    translate (img, w, h, shifts[k][0], shifts[k][1], tx);
    translate (fx, ow, oh, s * shifts[k][0], s * shifts[k][1], tfx);
    if ((ok = run (f, user, tx, w, h, &ftx, &w2, &h2, error)))
      sum_t += interior_mae (ftx, tfx, ow, oh, s * (margin + 5));
    nf_free (ftx);
    ftx = NULL;
  }
  if (ok) {
    out->translate_error = sum_t / n_t;
    out->motions = n_t;
    out->error = sum_t;
    if (s == 1) {
      zoom (img, w, h, 1.03, tx);
      zoom (fx, ow, oh, 1.03, tfx);
      if ((ok = run (f, user, tx, w, h, &ftx, &w2, &h2, error))) {
        out->zoom_error = interior_mae (ftx, tfx, ow, oh, margin + (int) ceil (0.03 * MAX (w,
                    h)));
        out->error += out->zoom_error;
        out->motions++;
      }
      nf_free (ftx);
    }
    out->error /= out->motions;
  }
  nf_free (tx);
  nf_free (tfx);
  nf_free (fx);
  return ok;
}

/* ---- synthetic static clips ---------------------------------------------------------- */

float **
nf_flicker_static_clip (const float *img, int w, int h, int n, double sigma, int quality,
    guint64 seed, GError **error)
{
  if (n < 1 || sigma < 0 || quality < 0 || quality > 100) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "static clip: frames >= 1, sigma >= 0, "
        "quality 0..100");
    return NULL;
  }
  size_t plane = (size_t) w * h;
  float **frames = g_new0 (float *, n);
  NfRng rng;
  nf_rng_seed (&rng, seed);
  for (int t = 0; t < n; t++) {
    frames[t] = nf_alloc_floats (3 * plane);
    for (size_t i = 0; i < 3 * plane; i++)
      frames[t][i] = CLAMP (rintf (img[i] + (float) sigma * nf_rng_normal (&rng)), 0.0f,
          255.0f);
    if (quality && !nf_image_jpeg_round_trip_planar (frames[t], w, h, quality,
            "static clip frame", error)) {
      for (int k = 0; k <= t; k++)
        nf_free (frames[k]);
      g_free (frames);
      return NULL;
    }
  }
  return frames;
}
