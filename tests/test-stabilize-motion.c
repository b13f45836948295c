/* test-stabilize-motion.c — the camera-motion part of the temporal stabilisation
 * (gst/nf-stabilize-motion.c, and nf-stabilize.c moving its state), without GStreamer.
 *
 * Checks:
 *  - the search finds known translations of a textured frame with sensor-like noise,
 *    from (0, 0) to the largest searched (16, -16) and between, at 160x120 and 320x180;
 *  - it answers (0, 0) for a still camera (noise only), a flat frame, and frames of
 *    independent noise (no structure: no shift beats none by the required margin);
 *  - the plan refuses frames too small to search and a search below the coarse step;
 *  - the stabiliser with an identity "network" (y = x) at strength 1 on a pan of
 *    (3, -2) pixels per frame: the pixels whose source is inside the frame are the
 *    previous output moved by exactly the pan (held; 99.98 % of the interior values
 *    measured, the rest next to the new strip), the strip that came in is the new
 *    frame; with the search off under half are (26 % measured: where the pan changes
 *    little); at scale 2 (y = x upscaled by 2) the output moves by twice
 *    the pan;
 *  - a still camera gives the shift (0, 0) and the same output as with the search off.
 * Does not: the element's property (test-gst-stabilize.c) or the CUDA path
 * (tests/gpu/test-gpu-elements.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "nf-stabilize.h"
#include "nf-stabilize-motion.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf ("FAIL %s:%d: ", \
      __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } } while (0)

/* A smooth random texture, (3, H, W) levels: noise blurred by a few box passes, spread
 * to about 40..220, channels differing. Wide enough (W + 2 pad) for panned views. */
static float *
texture (int w, int h, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  float *t = g_new (float, (gsize) 3 * w * h), *tmp = g_new (float, (gsize) w * h);
  for (int c = 0; c < 3; c++) {
    float *p = t + (gsize) c * w * h;
    for (int i = 0; i < w * h; i++)
      p[i] = (float) g_rand_double (r);
    for (int pass = 0; pass < 3; pass++) {
      for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
          float s = 0;
          for (int d = -2; d <= 2; d++)
            s += p[i * w + CLAMP (j + d, 0, w - 1)];
          tmp[i * w + j] = s / 5;
        }
      for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
          float s = 0;
          for (int d = -2; d <= 2; d++)
            s += tmp[CLAMP (i + d, 0, h - 1) * w + j];
          p[i * w + j] = s / 5;
        }
    }
    float lo = 1e9f, hi = -1e9f;
    for (int i = 0; i < w * h; i++) {
      lo = fminf (lo, p[i]);
      hi = fmaxf (hi, p[i]);
    }
    for (int i = 0; i < w * h; i++)
      p[i] = 40.0f + 180.0f * (p[i] - lo) / (hi - lo);
  }
  g_free (tmp);
  g_rand_free (r);
  return t;
}

/* The w x h view of tex (tw wide, th high) at (ox, oy), plus Gaussian noise (sigma),
 * rounded to whole levels as a camera's bytes are. */
static float *
view (const float *tex, int tw, int th, int ox, int oy, int w, int h, double sigma, GRand *r)
{
  float *v = g_new (float, (gsize) 3 * w * h);
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < h; i++)
      for (int j = 0; j < w; j++) {
        double n = 0;
        if (sigma > 0) {        /* Box-Muller */
          double u1 = g_rand_double_range (r, 1e-12, 1.0), u2 = g_rand_double (r);
          n = sigma * sqrt (-2 * log (u1)) * cos (2 * G_PI * u2);
        }
        float x = tex[((gsize) c * th + oy + i) * tw + ox + j] + (float) n;
        v[((gsize) c * h + i) * w + j] = CLAMP (roundf (x), 0.0f, 255.0f);
      }
  return v;
}

/* The shift found from frame b (the reference) to frame a, both (3, h, w). */
static void
find (const float *a, const float *b, int w, int h, int *dx, int *dy)
{
  NfMotionPlan plan;
  *dx = *dy = 99;
  if (!nf_motion_plan (w, h, NF_MOTION_SEARCH, &plan))
    return;
  gsize n = (gsize) w * h, cn = (gsize) plan.cw * plan.ch;
  float *ga = g_new (float, n), *gb = g_new (float, n);
  float *ca = g_new (float, cn), *cb = g_new (float, cn);
  nf_motion_grey (a, w, n, w, h, 1.0f, ga);
  nf_motion_grey (b, w, n, w, h, 1.0f, gb);
  nf_motion_coarsen (ga, w, h, ca, plan.cw, plan.ch);
  nf_motion_coarsen (gb, w, h, cb, plan.cw, plan.ch);
  nf_motion_find_cpu (&plan, ga, gb, ca, cb, dx, dy);
  g_free (ga);
  g_free (gb);
  g_free (ca);
  g_free (cb);
}

static void
test_search (void)
{
  static const int shifts[][2] = { {0, 0}, {1, 0}, {0, -1}, {-3, 2}, {7, -5}, {-13, 11},
  {16, -16}, {-16, 16}, {5, 14}, {-2, -9}
  };
  static const int sizes[][2] = { {160, 120}, {320, 180} };
  GRand *r = g_rand_new_with_seed (11);
  for (int z = 0; z < 2; z++) {
    int w = sizes[z][0], h = sizes[z][1], pad = 20, tw = w + 2 * pad, th = h + 2 * pad;
    float *tex = texture (tw, th, 100 + z);
    float *ref = view (tex, tw, th, pad, pad, w, h, 1.0, r);
    for (guint k = 0; k < G_N_ELEMENTS (shifts); k++) {
      int sx = shifts[k][0], sy = shifts[k][1], dx, dy;
      /* the scene moves right/down by (sx, sy): the camera's window moves the other way */
      float *a = view (tex, tw, th, pad - sx, pad - sy, w, h, 1.0, r);
      find (a, ref, w, h, &dx, &dy);
      CHECK (dx == sx && dy == sy, "%dx%d: a pan of (%d, %d) found as (%d, %d)", w, h, sx,
          sy, dx, dy);
      g_free (a);
    }
    g_free (ref);
    g_free (tex);
  }

  /* still camera, flat frame, independent noise: no shift */
  int w = 160, h = 120, dx, dy;
  float *tex = texture (w, h, 7);
  float *a = view (tex, w, h, 0, 0, w, h, 1.5, r), *b = view (tex, w, h, 0, 0, w, h, 1.5, r);
  find (a, b, w, h, &dx, &dy);
  CHECK (dx == 0 && dy == 0, "a still camera: (%d, %d)", dx, dy);
  g_free (a);
  g_free (b);
  float *flat = g_new (float, (gsize) 3 * w * h);
  for (int i = 0; i < 3 * w * h; i++)
    flat[i] = 128.0f;
  a = view (flat, w, h, 0, 0, w, h, 1.0, r);
  b = view (flat, w, h, 0, 0, w, h, 1.0, r);
  find (a, b, w, h, &dx, &dy);
  CHECK (dx == 0 && dy == 0, "a flat frame: (%d, %d)", dx, dy);
  g_free (a);
  g_free (b);
  a = view (flat, w, h, 0, 0, w, h, 40.0, r);
  b = view (flat, w, h, 0, 0, w, h, 40.0, r);
  find (a, b, w, h, &dx, &dy);
  CHECK (dx == 0 && dy == 0, "independent noise: (%d, %d)", dx, dy);
  g_free (a);
  g_free (b);
  g_free (flat);
  g_free (tex);
  g_rand_free (r);

  NfMotionPlan plan;
  CHECK (!nf_motion_plan (40, 24, NF_MOTION_SEARCH, &plan), "a 40x24 frame is searched");
  CHECK (!nf_motion_plan (160, 120, NF_MOTION_COARSE - 1, &plan), "a search of %d px",
      NF_MOTION_COARSE - 1);
  CHECK (nf_motion_plan (160, 120, 1000, &plan) && plan.radius * NF_MOTION_COARSE
      == NF_MOTION_SEARCH, "a search of 1000 px is not capped at %d", NF_MOTION_SEARCH);
}

/* y (3, h*s, w*s) = x (3, h, w) upscaled by s (nearest). */
static float *
upscale (const float *x, int w, int h, int s)
{
  int ow = w * s, oh = h * s;
  float *y = g_new (float, (gsize) 3 * ow * oh);
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < oh; i++)
      for (int j = 0; j < ow; j++)
        y[((gsize) c * oh + i) * ow + j] = x[((gsize) c * h + i / s) * w + j / s];
  return y;
}

/* A pan of (px, py) per frame through the stabiliser at strength 1 (search on or off),
 * the "network" an upscale by s (1: identity). */
static void
check_pan (int px, int py, int s, int search)
{
  int w = 160, h = 120, frames = 6, pad = 40, tw = w + 2 * pad, th = h + 2 * pad;
  int ow = w * s, oh = h * s;
  gsize op = (gsize) ow * oh;
  float *tex = texture (tw, th, 21);
  GRand *r = g_rand_new_with_seed (22);
  NfStabilizer *st = nf_stabilizer_new ();
  NfStabilizeParams p = { 1.0f, NF_STABILIZE_LO, NF_STABILIZE_HI, search };
  float *prev = NULL;
  int held = 0, fresh = 0, inner = 0, moved_ok = 0;
  for (int t = 0; t < frames; t++) {
    float *x = view (tex, tw, th, pad - px * t, pad - py * t, w, h, 1.0, r);
    float *y = upscale (x, w, h, s);
    CHECK (nf_stabilizer_apply (st, &p, x, w, (gsize) w * h, w, h, 1.0f, y, ow, op, s),
        "apply");
    int dx, dy;
    nf_stabilizer_last_shift (st, &dx, &dy);
    if (t > 0 && search)
      moved_ok += dx == px && dy == py;
    for (int i = 0; t > 0 && i < oh; i++)
      for (int j = 0; j < ow; j++) {
        int si = i - py * s, sj = j - px * s;
        gboolean in = si >= 0 && si < oh && sj >= 0 && sj < ow;
        /* away from the frame's edges and the strip that came in */
        gboolean interior = in && si >= 2 * s && si < oh - 2 * s && sj >= 2 * s
            && sj < ow - 2 * s;
        for (int c = 0; c < 3; c++) {
          float v = y[(gsize) c * op + (gsize) i * ow + j];
          float xv = x[((gsize) c * h + i / s) * w + j / s];
          if (!in && search) {
            CHECK (v == xv, "pan (%d, %d) x%d t %d: the new strip (%d, %d) is %g, not the "
                "input %g", px, py, s, t, j, i, v, xv);
            fresh++;
          } else if (interior) {
            inner++;
            held += v == prev[(gsize) c * op + (gsize) si * ow + sj];
          }
        }
      }
    g_free (x);
    g_free (prev);
    prev = y;
  }
  if (search) {
    CHECK (moved_ok == frames - 1, "pan (%d, %d) x%d: the shift found in %d of %d frames",
        px, py, s, moved_ok, frames - 1);
    /* a pixel next to the strip sees its neighbours "moving": a few are not held */
    CHECK (held >= 0.97 * inner, "pan (%d, %d) x%d: %d of %d interior values held", px, py,
        s, held, inner);
  } else {
    /* only values the pan happens not to change much (smooth parts; measured 26 %) */
    CHECK (held < 0.5 * inner, "no search, pan (%d, %d) x%d: %d of %d interior values "
        "held", px, py, s, held, inner);
  }
  CHECK (fresh > 0 || !search, "pan (%d, %d): no new strip", px, py);
  printf ("pan (%d, %d) x%d, search %d: %d of %d interior values held\n", px, py, s, search,
      held, inner);
  g_free (prev);
  nf_stabilizer_free (st);
  g_rand_free (r);
  g_free (tex);
}

/* A still camera: no shift, and the same output with the search on as off. */
static void
check_still (void)
{
  int w = 160, h = 120;
  gsize n = (gsize) w * h;
  float *tex = texture (w, h, 31);
  GRand *r = g_rand_new_with_seed (32);
  NfStabilizer *on = nf_stabilizer_new (), *off = nf_stabilizer_new ();
  NfStabilizeParams pon = { 0.8f, NF_STABILIZE_LO, NF_STABILIZE_HI, NF_MOTION_SEARCH };
  NfStabilizeParams poff = { 0.8f, NF_STABILIZE_LO, NF_STABILIZE_HI, 0 };
  int same = 1;
  for (int t = 0; t < 8; t++) {
    float *x = view (tex, w, h, 0, 0, w, h, 2.0, r);
    float *y1 = g_memdup2 (x, 3 * n * sizeof (float)), *y2 = g_memdup2 (x, 3 * n * sizeof (float));
    nf_stabilizer_apply (on, &pon, x, w, n, w, h, 1.0f, y1, w, n, 1);
    nf_stabilizer_apply (off, &poff, x, w, n, w, h, 1.0f, y2, w, n, 1);
    int dx, dy;
    nf_stabilizer_last_shift (on, &dx, &dy);
    CHECK (dx == 0 && dy == 0, "still camera, frame %d: shift (%d, %d)", t, dx, dy);
    same &= memcmp (y1, y2, 3 * n * sizeof (float)) == 0;
    g_free (x);
    g_free (y1);
    g_free (y2);
  }
  CHECK (same, "a still camera's output differs with the search on");
  nf_stabilizer_free (on);
  nf_stabilizer_free (off);
  g_rand_free (r);
  g_free (tex);
}

int
main (void)
{
  test_search ();
  check_pan (3, -2, 1, NF_MOTION_SEARCH);
  check_pan (-5, 4, 1, NF_MOTION_SEARCH);
  check_pan (3, -2, 1, 0);
  check_pan (2, 3, 2, NF_MOTION_SEARCH);
  check_still ();
  if (failures) {
    printf ("%d failure(s)\n", failures);
    return 1;
  }
  printf ("test-stabilize-motion: all passed\n");
  return 0;
}
