/* test-flicker.c — the flicker measures of nf-flicker.h with filters whose answer is known.
 *
 * Static flicker ratio on a synthetic static-camera clip (a smooth image, sensor noise,
 * JPEG): the identity gives exactly 1; a contrast gain k (y = 128 + k (x - 128), not
 * clamped) gives exactly k; a nearest x2 upscale (an SR-shaped output) gives 1; a filter
 * that adds fresh noise to every frame gives more than 1. The static mask: a clip whose
 * frames all differ by 3 levels has no static pixel (an error, not a number).
 * Warping error: the identity and a per-pixel curve give 0 for translations; a pattern
 * anchored to the image grid (+10 on even columns) gives exactly 6 levels over the five
 * translations (three of them move by an odd number of columns); the zoom is measured
 * for same-size outputs only.
 * Synthetic clips: frame count, noise level without JPEG (sigma 1 -> std ~1.04 with
 * rounding), frames that differ from each other, bad arguments.
 * Does not: run networks (nf-evaluate flicker does).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-flicker.h"
#include "nf-tensor.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

#define W 64
#define H 48

static void
make_img (float *o, int w, int h)
{
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        o[((size_t) c * h + y) * w + x] = (float) (128.0 + 80.0 * sin (0.11 * x + 0.07 * y + c)
            * cos (0.05 * x - 0.09 * y));
}

typedef struct {
  int kind;                     /* 0 identity, 1 gain, 2 nearest x2, 3 fresh noise, 4 grid, 5 curve */
  double k;
  NfRng rng;
} Filter;

static gboolean
filter (gpointer user, const float *in, int w, int h, float **out, int *ow, int *oh,
    GError **error)
{
  Filter *f = user;
  int s = f->kind == 2 ? 2 : 1;
  *ow = w * s;
  *oh = h * s;
  float *o = nf_alloc_floats ((size_t) 3 * *ow * *oh);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < *oh; y++)
      for (int x = 0; x < *ow; x++) {
        float v = in[((size_t) c * h + y / s) * w + x / s];
        switch (f->kind) {
          case 1:
            v = (float) (128.0 + f->k * (v - 128.0));
            break;
          case 3:
            v += 3.0f * (nf_rng_uniform (&f->rng) - 0.5f);
            break;
          case 4:
            v += x % 2 == 0 ? 10.0f : 0.0f;
            break;
          case 5:
            v = 255.0f * powf (v / 255.0f, 0.6f);
            break;
        }
        o[((size_t) c * *oh + y) * *ow + x] = v;
      }
  *out = o;
  return TRUE;
}

static void
test_static (void)
{
  float *img = nf_alloc_floats ((size_t) 3 * W * H);
  make_img (img, W, H);
  GError *e = NULL;
  int n = 12;
  float **clip = nf_flicker_static_clip (img, W, H, n, 1.0, 90, 5, &e);
  CHECK (clip, "static clip: %s", e ? e->message : "");
  g_clear_error (&e);
  if (!clip)
    return;
  const float *const *fr = (const float *const *) clip;
  NfFlickerStatic st;
  Filter f = { 0 };
  CHECK (nf_flicker_static (fr, n, W, H, 2.0, filter, &f, &st, &e) && st.ratio == 1.0
      && st.pairs == n - 1 && st.static_fraction > 0.3, "identity: ratio %.9f, static %.2f",
      st.ratio, st.static_fraction);
  printf ("synthetic clip: input change %.3f levels on %.0f%% static pixels\n",
      st.input_change, 100 * st.static_fraction);
  f = (Filter) { 1, 1.7 };
  CHECK (nf_flicker_static (fr, n, W, H, 2.0, filter, &f, &st, &e)
      && fabs (st.ratio - 1.7) < 1e-4, "gain 1.7: ratio %.9f", st.ratio);
  f = (Filter) { 2 };
  CHECK (nf_flicker_static (fr, n, W, H, 2.0, filter, &f, &st, &e)
      && fabs (st.ratio - 1.0) < 1e-9, "nearest x2: ratio %.9f", st.ratio);
  f = (Filter) { 3 };
  nf_rng_seed (&f.rng, 9);
  CHECK (nf_flicker_static (fr, n, W, H, 2.0, filter, &f, &st, &e) && st.ratio > 1.3,
      "fresh noise per frame: ratio %.3f (want > 1.3)", st.ratio);
  printf ("fresh noise of +-1.5 levels per frame: ratio %.3f\n", st.ratio);
  g_clear_error (&e);

  /* every pixel moves by 3 levels: nothing is static */
  float *moving[3];
  for (int t = 0; t < 3; t++) {
    moving[t] = nf_alloc_floats ((size_t) 3 * W * H);
    for (int i = 0; i < 3 * W * H; i++)
      moving[t][i] = img[i] + 3.0f * t;
  }
  f = (Filter) { 0 };
  CHECK (!nf_flicker_static ((const float *const *) moving, 3, W, H, 2.0, filter, &f, &st, &e)
      && e, "no static pixel is an error");
  g_clear_error (&e);
  CHECK (!nf_flicker_static (fr, 1, W, H, 2.0, filter, &f, &st, &e) && e, "one frame");
  g_clear_error (&e);
  for (int t = 0; t < 3; t++)
    nf_free (moving[t]);

  /* the clip itself */
  float **raw = nf_flicker_static_clip (img, W, H, 2, 1.0, 0, 5, &e);
  double s2 = 0;
  for (int i = 0; raw && i < 3 * W * H; i++)
    s2 += (raw[0][i] - img[i]) * (raw[0][i] - img[i]);
  double sd = sqrt (s2 / (3 * W * H));
  CHECK (raw && sd > 0.95 && sd < 1.15, "noise sigma 1 (+ rounding): std %.3f", sd);
  CHECK (raw && memcmp (raw[0], raw[1], sizeof (float) * 3 * W * H) != 0, "frames differ");
  for (int t = 0; raw && t < 2; t++)
    nf_free (raw[t]);
  g_free (raw);
  CHECK (!nf_flicker_static_clip (img, W, H, 0, 1.0, 90, 1, &e) && e, "0 frames");
  g_clear_error (&e);
  CHECK (!nf_flicker_static_clip (img, W, H, 3, 1.0, 101, 1, &e) && e, "quality 101");
  g_clear_error (&e);
  for (int t = 0; t < n; t++)
    nf_free (clip[t]);
  g_free (clip);
  nf_free (img);
}

static void
test_warp (void)
{
  float *img = nf_alloc_floats ((size_t) 3 * W * H);
  make_img (img, W, H);
  GError *e = NULL;
  NfWarpScore ws;
  Filter f = { 0 };
  CHECK (nf_flicker_warp (img, W, H, 4, filter, &f, &ws, &e) && ws.error == 0.0
      && ws.motions == 6, "identity: warping error %g over %d motions", ws.error, ws.motions);
  f = (Filter) { 5 };
  CHECK (nf_flicker_warp (img, W, H, 4, filter, &f, &ws, &e) && ws.translate_error == 0.0
      && ws.zoom_error > 0.0 && ws.zoom_error < 0.5, "a per-pixel curve: shifts %g, zoom %g",
      ws.translate_error, ws.zoom_error);
  f = (Filter) { 4 };
  CHECK (nf_flicker_warp (img, W, H, 4, filter, &f, &ws, &e)
      && fabs (ws.translate_error - 6.0) < 1e-6, "grid pattern: shifts %.9f (want 6)",
      ws.translate_error);
  printf ("grid-anchored pattern: warping error %.3f (shifts), %.3f (zoom)\n",
      ws.translate_error, ws.zoom_error);
  f = (Filter) { 2 };
  CHECK (nf_flicker_warp (img, W, H, 4, filter, &f, &ws, &e) && ws.translate_error == 0.0
      && ws.zoom_error < 0 && ws.motions == 5, "nearest x2: shifts %g, zoom %g (not measured)",
      ws.translate_error, ws.zoom_error);
  CHECK (!nf_flicker_warp (img, 20, 20, 4, filter, &f, &ws, &e) && e, "too small");
  g_clear_error (&e);
  nf_free (img);
}

int
main (void)
{
  test_static ();
  test_warp ();
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
