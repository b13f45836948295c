/* nf-stabilize.c — temporal stabilisation of a network's output on the CPU (the
 * definition is in nf-stabilize.h).
 *
 * What it does: keeps ref (3, h, w) in levels and prev (3, h * scale, w * scale) in the
 * network's output units; per frame computes the max-channel change against ref, its
 * 3x3 mean (separable: row sums, then column sums, divided by the count of pixels
 * inside the frame), the weight of each input pixel, then updates ref and the output.
 * What it does not: allocate per frame (buffers grow with the frame size and stay), or
 * know about GStreamer.
 */
#include "nf-stabilize.h"

#include <math.h>
#include <string.h>

struct NfStabilizer {
  gboolean valid;               /* ref and prev hold a frame */
  int w, h, scale;
  float *ref;                   /* (3, h, w), levels */
  float *prev;                  /* (3, h * scale, w * scale), output units */
  float *d;                     /* (h, w): the change, then its row sums */
  float *a;                     /* (h, w): the weight of the past */
  gsize ref_len, prev_len, d_len, a_len;        /* floats allocated */
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
  g_free (s->d);
  g_free (s->a);
  g_free (s);
}

void
nf_stabilizer_reset (NfStabilizer * s)
{
  s->valid = FALSE;
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

/* a (h, w) = weight of the 3x3 mean of the max-channel |x - ref| (levels). */
static void
weights (NfStabilizer * s, const NfStabilizeParams * p, const float *x, int xw,
    gsize x_plane, float k)
{
  int w = s->w, h = s->h;
  gsize plane = (gsize) w * h;

  for (int i = 0; i < h; i++)
    for (int j = 0; j < w; j++) {
      gsize r = (gsize) i * w + j, xi = (gsize) i * xw + j;
      float m = 0.0f;
      for (int c = 0; c < 3; c++)
        m = fmaxf (m, fabsf (x[c * x_plane + xi] * k - s->ref[c * plane + r]));
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
    for (int j = 0; j < w; j++) {
      int cols = 1 + (j > 0) + (j + 1 < w);
      float sum = mid[j] + (up ? up[j] : 0.0f) + (down ? down[j] : 0.0f);
      s->a[(gsize) i * w + j] = nf_stabilize_weight (p, sum / (float) (rows * cols));
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
  if (!s->valid) {
    take_frame (s, x, xw, x_plane, x_to_levels, y, yw, y_plane);
    return TRUE;
  }

  weights (s, p, x, xw, x_plane, x_to_levels);
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < h; i++) {
      float *r = s->ref + c * plane + (gsize) i * w;
      const float *xr = x + c * x_plane + (gsize) i * xw, *ar = s->a + (gsize) i * w;
      for (int j = 0; j < w; j++)
        r[j] = ar[j] * r[j] + (1.0f - ar[j]) * (xr[j] * x_to_levels);
    }
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < oh; i++) {
      float *pr = s->prev + c * oplane + (gsize) i * ow;
      float *yr = y + c * y_plane + (gsize) i * yw;
      const float *ar = s->a + (gsize) (i / scale) * w;
      for (int j = 0; j < ow; j++) {
        float a = ar[j / scale];
        pr[j] = a * pr[j] + (1.0f - a) * yr[j];
        yr[j] = pr[j];
      }
    }
  return TRUE;
}
