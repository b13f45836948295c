/* nf-stabilize.c — temporal stabilisation of a network's output on the CPU (the
 * definition is in nf-stabilize.h).
 *
 * What it does: keeps ref (3, h, w) in levels and prev (3, h * scale, w * scale) in the
 * network's output units; per frame finds the camera's motion (grey and coarse planes of
 * x and ref, the search of nf-stabilize-motion.c), computes the max-channel change
 * against ref moved by it, its 3x3 mean (separable: row sums, then column sums, divided
 * by the count of pixels inside the frame), the weight of each input pixel, then updates
 * ref and the output (into second buffers, swapped in, when the state moved).
 * What it does not: allocate per frame (buffers grow with the frame size and stay), or
 * know about GStreamer.
 */
#include "nf-stabilize.h"

#include <math.h>
#include <string.h>

#include "nf-stabilize-motion.h"

struct NfStabilizer {
  gboolean valid;               /* ref and prev hold a frame */
  int w, h, scale;
  int dx, dy;                   /* the last frame's camera motion */
  float *ref;                   /* (3, h, w), levels */
  float *prev;                  /* (3, h * scale, w * scale), output units */
  float *ref2, *prev2;          /* where a moved state is written (then swapped in) */
  float *d;                     /* (h, w): the change, then its row sums */
  float *a;                     /* (h, w): the weight of the past */
  float *gx, *gr;               /* (h, w): grey planes of x and ref (the motion search) */
  float *cx, *cr;               /* their coarse planes */
  gsize ref_len, prev_len, ref2_len, prev2_len, d_len, a_len;   /* floats allocated */
  gsize gx_len, gr_len, cx_len, cr_len;
};

NfStabilizer *
nf_stabilizer_new (void)
{
  return g_new0 (NfStabilizer, 1);
}

void
nf_stabilizer_free (NfStabilizer * s)
{
  if (!s)
    return;
  g_free (s->ref);
  g_free (s->prev);
  g_free (s->ref2);
  g_free (s->prev2);
  g_free (s->d);
  g_free (s->a);
  g_free (s->gx);
  g_free (s->gr);
  g_free (s->cx);
  g_free (s->cr);
  g_free (s);
}

void
nf_stabilizer_reset (NfStabilizer * s)
{
  s->valid = FALSE;
}

void
nf_stabilizer_last_shift (const NfStabilizer * s, int *dx, int *dy)
{
  *dx = s->dx;
  *dy = s->dy;
}

static gboolean
grow (float **buf, gsize * len, gsize n)
{
  if (*len >= n)
    return TRUE;
  g_free (*buf);
  *buf = g_try_new (float, n);
  *len = *buf ? n : 0;
  return *buf != NULL;
}

static void
swap_buffers (float **a, gsize * a_len, float **b, gsize * b_len)
{
  float *t = *a;
  gsize l = *a_len;
  *a = *b;
  *a_len = *b_len;
  *b = t;
  *b_len = l;
}

/* The first frame: ref = x (levels), prev = y. */
static void
take_frame (NfStabilizer * s, const float *x, int xw, gsize x_plane, float k,
    const float *y, int yw, gsize y_plane)
{
  int w = s->w, h = s->h, ow = w * s->scale, oh = h * s->scale;
  for (int c = 0; c < 3; c++) {
    for (int i = 0; i < h; i++)
      for (int j = 0; j < w; j++)
        s->ref[((gsize) c * h + i) * w + j] = x[c * x_plane + (gsize) i * xw + j] * k;
    for (int i = 0; i < oh; i++)
      memcpy (s->prev + ((gsize) c * oh + i) * ow, y + c * y_plane + (gsize) i * yw,
          sizeof (float) * ow);
  }
  s->valid = TRUE;
}

/* ---- the camera's motion ---------------------------------------------------------------- */

/* s->dx, s->dy: x's translation against ref (0, 0 when the frame is too small, the search
 * off or out of memory: then the stabiliser works as on a still camera). */
static void
find_motion (NfStabilizer * s, const NfStabilizeParams * p, const float *x, int xw,
    gsize x_plane, float k)
{
  NfMotionPlan plan;
  s->dx = s->dy = 0;
  if (!nf_motion_plan (s->w, s->h, p->search, &plan))
    return;
  gsize n = (gsize) s->w * s->h, cn = (gsize) plan.cw * plan.ch;
  if (!grow (&s->gx, &s->gx_len, n) || !grow (&s->gr, &s->gr_len, n)
      || !grow (&s->cx, &s->cx_len, cn) || !grow (&s->cr, &s->cr_len, cn))
    return;
  nf_motion_grey (x, xw, x_plane, s->w, s->h, k, s->gx);
  nf_motion_grey (s->ref, s->w, n, s->w, s->h, 1.0f, s->gr);
  nf_motion_coarsen (s->gx, s->w, s->h, s->cx, plan.cw, plan.ch);
  nf_motion_coarsen (s->gr, s->w, s->h, s->cr, plan.cw, plan.ch);
  nf_motion_find_cpu (&plan, s->gx, s->gr, s->cx, s->cr, &s->dx, &s->dy);
}

/* ---- one frame -------------------------------------------------------------------------- */

/* a (h, w) = weight of the 3x3 mean of the max-channel |x - ref moved by (dx, dy)|
 * (levels); a pixel whose source lies outside the frame counts as changed by hi and
 * gets weight 0. */
static void
weights (NfStabilizer * s, const NfStabilizeParams * p, const float *x, int xw,
    gsize x_plane, float k)
{
  int w = s->w, h = s->h, dx = s->dx, dy = s->dy;
  gsize plane = (gsize) w * h;

  for (int i = 0; i < h; i++)
    for (int j = 0; j < w; j++) {
      gsize r = (gsize) i * w + j, xi = (gsize) i * xw + j;
      int si = i - dy, sj = j - dx;
      if (si < 0 || si >= h || sj < 0 || sj >= w) {
        s->d[r] = p->hi;
        continue;
      }
      gsize sr = (gsize) si * w + sj;
      float m = 0.0f;
      for (int c = 0; c < 3; c++)
        m = fmaxf (m, fabsf (x[c * x_plane + xi] * k - s->ref[c * plane + sr]));
      s->d[r] = m;
    }
  /* row sums of three, in place (keeping the left neighbour's old value) */
  for (int i = 0; i < h; i++) {
    float *row = s->d + (gsize) i * w, left = 0.0f;
    for (int j = 0; j < w; j++) {
      float v = row[j];
      row[j] = left + v + (j + 1 < w ? row[j + 1] : 0.0f);
      left = v;
    }
  }
  /* column sums of three, divided by the count of pixels inside the frame */
  for (int i = 0; i < h; i++) {
    const float *up = i > 0 ? s->d + (gsize) (i - 1) * w : NULL;
    const float *mid = s->d + (gsize) i * w;
    const float *down = i + 1 < h ? s->d + (gsize) (i + 1) * w : NULL;
    int rows = 1 + (up != NULL) + (down != NULL);
    gboolean row_in = i - dy >= 0 && i - dy < h;
    for (int j = 0; j < w; j++) {
      int cols = 1 + (j > 0) + (j + 1 < w);
      float sum = mid[j] + (up ? up[j] : 0.0f) + (down ? down[j] : 0.0f);
      gboolean in = row_in && j - dx >= 0 && j - dx < w;
      s->a[(gsize) i * w + j] = in ? nf_stabilize_weight (p, sum / (float) (rows * cols))
          : 0.0f;
    }
  }
}

gboolean
nf_stabilizer_apply (NfStabilizer * s, const NfStabilizeParams * p,
    const float *x, int xw, gsize x_plane, int w, int h, float x_to_levels,
    float *y, int yw, gsize y_plane, int scale)
{
  g_return_val_if_fail (w > 0 && h > 0 && scale > 0 && xw >= w && yw >= w * scale,
      FALSE);
  int ow = w * scale, oh = h * scale;
  gsize plane = (gsize) w * h, oplane = (gsize) ow * oh;

  if (w != s->w || h != s->h || scale != s->scale)
    s->valid = FALSE;
  if (!grow (&s->ref, &s->ref_len, 3 * plane) || !grow (&s->prev, &s->prev_len, 3 * oplane)
      || !grow (&s->d, &s->d_len, plane) || !grow (&s->a, &s->a_len, plane)) {
    s->valid = FALSE;
    return FALSE;
  }
  s->w = w;
  s->h = h;
  s->scale = scale;
  s->dx = s->dy = 0;
  if (!s->valid) {
    take_frame (s, x, xw, x_plane, x_to_levels, y, yw, y_plane);
    return TRUE;
  }

  find_motion (s, p, x, xw, x_plane, x_to_levels);
  gboolean moved = s->dx || s->dy;
  if (moved && (!grow (&s->ref2, &s->ref2_len, 3 * plane)
          || !grow (&s->prev2, &s->prev2_len, 3 * oplane)))
    s->dx = s->dy = moved = 0;  /* no memory to move the state: as if still */
  weights (s, p, x, xw, x_plane, x_to_levels);

  /* ref = a * ref(moved) + (1 - a) * x; a is 0 where the source is outside */
  int dx = s->dx, dy = s->dy;
  float *nref = moved ? s->ref2 : s->ref;
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < h; i++) {
      const float *src = s->ref + c * plane + (gsize) CLAMP (i - dy, 0, h - 1) * w;
      float *r = nref + c * plane + (gsize) i * w;
      const float *xr = x + c * x_plane + (gsize) i * xw, *ar = s->a + (gsize) i * w;
      for (int j = 0; j < w; j++) {
        float past = ar[j] > 0.0f ? src[j - dx] : 0.0f;
        r[j] = ar[j] * past + (1.0f - ar[j]) * (xr[j] * x_to_levels);
      }
    }
  /* prev = a * prev(moved by dx, dy x scale) + (1 - a) * y */
  int odx = dx * scale, ody = dy * scale;
  float *nprev = moved ? s->prev2 : s->prev;
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < oh; i++) {
      const float *src = s->prev + c * oplane + (gsize) CLAMP (i - ody, 0, oh - 1) * ow;
      float *pr = nprev + c * oplane + (gsize) i * ow;
      float *yr = y + c * y_plane + (gsize) i * yw;
      const float *ar = s->a + (gsize) (i / scale) * w;
      for (int j = 0; j < ow; j++) {
        float a = ar[j / scale];
        float past = a > 0.0f ? src[j - odx] : 0.0f;
        pr[j] = a * past + (1.0f - a) * yr[j];
        yr[j] = pr[j];
      }
    }
  if (moved) {                  /* the new state becomes the state */
    swap_buffers (&s->ref, &s->ref_len, &s->ref2, &s->ref2_len);
    swap_buffers (&s->prev, &s->prev_len, &s->prev2, &s->prev2_len);
  }
  return TRUE;
}
