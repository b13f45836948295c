/* test-gst-stabilize.c — neuralstyle's stabilize and preserve-color properties
 * (issue 14) through GstHarness, with the plugin from the build tree.
 *
 * Models are made here: an exact identity (1x1 conv) and a negation (255 - x).
 * Checks, on the CPU path:
 *  - stabilize=1 on a still, noisy input holds the first output exactly; 0.5 lets
 *    through less than 0.65 of the input's change; 0 passes every frame (property
 *    changes while PLAYING);
 *  - a square moving over the noisy background comes out unblended (= the input)
 *    where it is, was, and one pixel around, and every other pixel keeps its previous
 *    output (no ghost trail, no crawl), at strengths 1 and 0.8;
 *  - a camera panning over a random scene at stabilize=1: with stabilize-motion (on by
 *    default) the output is the previous output moved by the pan (at least 97 % of the
 *    pixels; 100 % measured), off under 20 % (3.7 % measured);
 *  - a slow drift (1 level per frame) is followed with a bounded lag (the reference
 *    input adds it up), not frozen;
 *  - resets: a flush, a DISCONT that jumps back in time, a caps change and a new model
 *    start afresh; a DISCONT after a short gap (a leaky queue's) does not;
 *  - preserve-color: on RGBx and RGB the output's BT.601 chroma is the input's within
 *    1 level and its luma the negation's; on I420 and NV12 the output's chroma planes
 *    are the input's bytes; with strength 0.5 too; off, the chroma is the negation's;
 *  - bad values: out of range is refused by GObject with a warning (the value stays);
 *    a value that is not a number fails gst_parse_launch with a message naming the
 *    property.
 * Does not: check the CUDA path (tests/gpu/test-gpu-elements.c does) or measure
 * flicker on real networks (gst-stabilize-bench does).
 */
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "nf-graph.h"
#include "nf-model.h"
#include "nf-test-tree.h"

static gchar *model_dir, *m_identity, *m_negate;

/* ---- models ------------------------------------------------------------------------ */

static gchar *
conv1x1_model (const gchar * name, float weight, float bias)
{
  GError *e = NULL;
  NfGraph *g = nf_graph_from_json ("{\"input\":\"x\",\"output\":\"y\",\"ops\":[{\"op\":"
      "\"conv2d\",\"name\":\"conv1\",\"in\":\"x\",\"out\":\"y\",\"k\":1,\"cin\":3,"
      "\"cout\":3}]}", &e);
  if (!g)
    g_error ("graph: %s", e->message);
  NfModel *m = nf_model_new_for_graph (g, NF_TASK_STYLE, 1, &e);
  if (!m)
    g_error ("model: %s", e->message);
  nf_graph_free (g);
  float *w = nf_model_tensor (m, "conv1.weight")->data;
  float *b = nf_model_tensor (m, "conv1.bias")->data;
  for (int c = 0; c < 3; c++) {
    w[c * 3 + c] = weight;
    b[c] = bias;
  }
  nf_model_bind (m, NULL);
  gchar *path = g_build_filename (model_dir, name, NULL);
  if (!nf_model_save (m, path, NF_DTYPE_F32, &e))
    g_error ("saving %s: %s", path, e->message);
  nf_model_free (m);
  return path;
}

/* ---- frames: packed RGBx bytes, w * h * 4 ------------------------------------------ */

#define W 40
#define H 24
#define NPIX (W * H)

static guint8 *
base_image (guint seed, gint lo, gint hi)
{
  GRand *r = g_rand_new_with_seed (seed);
  guint8 *p = g_malloc (NPIX * 4);
  for (gint i = 0; i < NPIX * 4; i++)
    p[i] = i % 4 == 3 ? 255 : g_rand_int_range (r, lo, hi + 1);
  g_rand_free (r);
  return p;
}

/* base + uniform noise in -amp..amp per colour byte */
static guint8 *
noisy (const guint8 * base, GRand * r, gint amp)
{
  guint8 *p = g_memdup2 (base, NPIX * 4);
  for (gint i = 0; i < NPIX * 4; i++)
    if (i % 4 != 3)
      p[i] = CLAMP (p[i] + g_rand_int_range (r, -amp, amp + 1), 0, 255);
  return p;
}

static GstBuffer *
buffer_of (const guint8 * px, gsize len, guint64 frame, gboolean discont)
{
  GstBuffer *b = gst_buffer_new_memdup (px, len);
  GST_BUFFER_PTS (b) = frame * GST_SECOND / 30;
  GST_BUFFER_DURATION (b) = GST_SECOND / 30;
  if (discont)
    GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_DISCONT);
  return b;
}

/* Pushes px (RGBx W x H) as frame number `frame`, returns the output bytes. */
static guint8 *
push_rgbx (GstHarness * h, const guint8 * px, guint64 frame, gboolean discont)
{
  GstBuffer *out = gst_harness_push_and_pull (h, buffer_of (px, NPIX * 4, frame, discont));
  fail_unless (out != NULL);
  fail_unless_equals_int ((gint) gst_buffer_get_size (out), NPIX * 4);
  guint8 *o = g_malloc (NPIX * 4);
  gst_buffer_extract (out, 0, o, NPIX * 4);
  gst_buffer_unref (out);
  return o;
}

static gint
max_diff (const guint8 * a, const guint8 * b)
{
  gint m = 0;
  for (gint i = 0; i < NPIX * 4; i++)
    if (i % 4 != 3)
      m = MAX (m, abs ((gint) a[i] - b[i]));
  return m;
}

static gdouble
mean_diff (const guint8 * a, const guint8 * b)
{
  gdouble s = 0;
  for (gint i = 0; i < NPIX * 4; i++)
    if (i % 4 != 3)
      s += abs ((gint) a[i] - b[i]);
  return s / (NPIX * 3);
}

static GstHarness *
harness_new (const gchar * model, gdouble stabilize)
{
  GstElement *e = gst_element_factory_make ("neuralstyle", NULL);
  fail_unless (e != NULL);
  g_object_set (e, "model", model, "stabilize", stabilize, NULL);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=RGBx,width=" G_STRINGIFY (W)
      ",height=" G_STRINGIFY (H) ",framerate=30/1");
  return h;
}

/* ---- stabilize ------------------------------------------------------------------------ */

GST_START_TEST (test_static_input)
{
  GstHarness *h = harness_new (m_identity, 1.0);
  guint8 *base = base_image (1, 60, 190);
  GRand *r = g_rand_new_with_seed (2);
  guint64 t = 0;

  /* stabilize=1: every pixel still (noise of +-1: changes of 2 < 3 levels): the first
   * output held */
  guint8 *x0 = noisy (base, r, 1), *y0 = push_rgbx (h, x0, t++, FALSE);
  fail_unless_equals_int (max_diff (x0, y0), 0);        /* the first frame passes */
  for (gint i = 0; i < 15; i++) {
    guint8 *x = noisy (base, r, 1), *y = push_rgbx (h, x, t++, FALSE);
    fail_unless (max_diff (x, x0) > 0);
    fail_unless_equals_int (max_diff (y, y0), 0);
    g_free (x);
    g_free (y);
  }

  /* 0.5, set while PLAYING: the output moves, by less than 0.65 of the input's change */
  g_object_set (h->element, "stabilize", 0.5, NULL);
  guint8 *xp = noisy (base, r, 1), *yp = push_rgbx (h, xp, t++, FALSE);
  gdouble din = 0, dout = 0;
  for (gint i = 0; i < 30; i++) {
    guint8 *x = noisy (base, r, 1), *y = push_rgbx (h, x, t++, FALSE);
    din += mean_diff (x, xp);
    dout += mean_diff (y, yp);
    g_free (xp);
    g_free (yp);
    xp = x;
    yp = y;
  }
  GST_INFO ("stabilize=0.5: output change %.3f, input change %.3f", dout / 30, din / 30);
  fail_unless (dout > 0.1 * din && dout < 0.65 * din, "output change %.3f for input "
      "change %.3f", dout / 30, din / 30);

  /* 0: every frame on its own (the identity's output is its input) */
  g_object_set (h->element, "stabilize", 0.0, NULL);
  for (gint i = 0; i < 3; i++) {
    guint8 *x = noisy (base, r, 1), *y = push_rgbx (h, x, t++, FALSE);
    fail_unless_equals_int (max_diff (x, y), 0);
    g_free (x);
    g_free (y);
  }
  g_free (xp);
  g_free (yp);
  g_free (x0);
  g_free (y0);
  g_free (base);
  g_rand_free (r);
  gst_harness_teardown (h);
}

GST_END_TEST;

#define SQ 8                    /* the moving square's side */
#define SPEED 3                 /* its pixels per frame */

static gboolean
in_square (gint x, gint y, gint sx, gint sy)
{
  return x >= sx && x < sx + SQ && y >= sy && y < sy + SQ;
}

/* The pixel changed by the square's move from px to sx (in one of the two places). */
static gboolean
changed (gint x, gint y, gint sx, gint px, gint sy)
{
  return in_square (x, y, sx, sy) != in_square (x, y, px, sy);
}

static void
check_motion (gdouble stabilize)
{
  GstHarness *h = harness_new (m_identity, stabilize);
  guint8 *base = base_image (3, 20, 100);
  GRand *r = g_rand_new_with_seed (4);
  guint8 *prev_out = NULL;
  const gint sy = 8;

  for (gint t = 0; t < 10; t++) {
    gint sx = 2 + SPEED * t, px = sx - SPEED;
    guint8 *x = noisy (base, r, 1);
    for (gint i = 0; i < SQ; i++)
      for (gint j = 0; j < SQ; j++)
        memset (x + ((sy + i) * W + sx + j) * 4, 255, 3);
    guint8 *y = push_rgbx (h, x, t, FALSE);
    for (gint i = 0; t > 0 && i < H; i++)
      for (gint j = 0; j < W; j++) {
        /* changed by 150 levels or more: the new output, unblended (no trail); with no
         * such pixel among its neighbours: still (stabilize=1: held exactly); next to
         * one: between the two */
        gboolean near = FALSE;
        for (gint di = -1; di <= 1; di++)
          for (gint dj = -1; dj <= 1; dj++)
            near |= changed (j + dj, i + di, sx, px, sy);
        for (gint c = 0; c < 3; c++) {
          gint k = (i * W + j) * 4 + c, lo = MIN (x[k], prev_out[k]) - 1,
              hi = MAX (x[k], prev_out[k]) + 1;
          if (changed (j, i, sx, px, sy))
            fail_unless (y[k] == x[k], "t %d (%d, %d): %d, the input is %d", t, j, i,
                y[k], x[k]);
          else if (!near && stabilize == 1.0)
            fail_unless (y[k] == prev_out[k], "t %d (%d, %d): %d, was %d", t, j, i, y[k],
                prev_out[k]);
          else
            fail_unless (y[k] >= lo && y[k] <= hi, "t %d (%d, %d): %d outside %d..%d", t,
                j, i, y[k], lo, hi);
        }
      }
    g_free (x);
    g_free (prev_out);
    prev_out = y;
  }
  g_free (prev_out);
  g_free (base);
  g_rand_free (r);
  gst_harness_teardown (h);
}

GST_START_TEST (test_motion)
{
  check_motion (1.0);
  check_motion (0.8);
}

GST_END_TEST;

/* A camera panning 3 px right and 2 up per frame over a random scene (+-1 noise),
 * PW x PH frames (large enough for the motion search), through the identity at
 * stabilize=1: with stabilize-motion (the default) the output is the previous output
 * moved by the pan wherever that is inside the frame (but next to the strip that came
 * in); with it off, few pixels are. Returns the share of such pixels held. */
#define PW 128
#define PH 96
static gdouble
pan_held (gboolean motion)
{
  GstElement *e = gst_element_factory_make ("neuralstyle", NULL);
  gboolean dflt = FALSE;
  g_object_get (e, "stabilize-motion", &dflt, NULL);
  fail_unless (dflt, "stabilize-motion is off by default");
  g_object_set (e, "model", m_identity, "stabilize", 1.0, "stabilize-motion", motion, NULL);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=RGBx,width=" G_STRINGIFY (PW)
      ",height=" G_STRINGIFY (PH) ",framerate=30/1");
  const gint pad = 30, sw = PW + 2 * pad, sh = PH + 2 * pad, px = 3, py = -2;
  GRand *r = g_rand_new_with_seed (9);
  guint8 *scene = g_malloc ((gsize) sw * sh * 4), *prev = NULL;
  for (gint i = 0; i < sw * sh * 4; i++)
    scene[i] = g_rand_int_range (r, 30, 220);
  gsize n = (gsize) PW * PH * 4;
  guint64 held = 0, total = 0;
  for (gint t = 0; t < 6; t++) {
    guint8 *x = g_malloc (n);
    gint ox = pad - px * t, oy = pad - py * t;
    for (gint i = 0; i < PH; i++)
      for (gint j = 0; j < PW * 4; j++)
        x[(gsize) i * PW * 4 + j] = j % 4 == 3 ? 255 : CLAMP (scene[(gsize) (oy + i) * sw * 4
                + ox * 4 + j] + g_rand_int_range (r, -1, 2), 0, 255);
    GstBuffer *out = gst_harness_push_and_pull (h, buffer_of (x, n, t, FALSE));
    fail_unless (out != NULL);
    guint8 *y = g_malloc (n);
    gst_buffer_extract (out, 0, y, n);
    gst_buffer_unref (out);
    for (gint i = 2; prev && i < PH - 2; i++)
      for (gint j = 2; j < PW - 2; j++) {
        gint si = i - py, sj = j - px;
        if (si < 2 || si >= PH - 2 || sj < 2 || sj >= PW - 2)
          continue;
        total++;
        held += memcmp (y + ((gsize) i * PW + j) * 4, prev + ((gsize) si * PW + sj) * 4, 3)
            == 0;
      }
    g_free (x);
    g_free (prev);
    prev = y;
  }
  g_free (prev);
  g_free (scene);
  g_rand_free (r);
  gst_harness_teardown (h);
  GST_INFO ("pan, stabilize-motion=%d: %.4f of the pixels held", motion,
      (gdouble) held / total);
  return (gdouble) held / total;
}

GST_START_TEST (test_pan)
{
  gdouble on = pan_held (TRUE), off = pan_held (FALSE);
  fail_unless (on > 0.97, "stabilize-motion: %.4f of a pan's pixels held", on);
  fail_unless (off < 0.2, "stabilize-motion=false: %.4f of a pan's pixels held", off);
}

GST_END_TEST;

GST_START_TEST (test_slow_drift)
{
  GstHarness *h = harness_new (m_identity, 1.0);
  guint8 *x = base_image (5, 60, 140), *y = NULL;
  guint8 *first = NULL;

  for (gint t = 0; t < 40; t++) {
    g_free (y);
    y = push_rgbx (h, x, t, FALSE);
    if (!first)
        first = g_memdup2 (y, NPIX * 4);
    for (gint i = 0; i < NPIX * 4; i++)
      if (i % 4 != 3)
        x[i]++;
  }
  /* 40 levels brighter: the output followed, a few levels behind */
  for (gint i = 0; i < NPIX * 4; i++)
    if (i % 4 != 3)
      x[i]--;
  GST_INFO ("after a drift of 39 levels: output %.1f above the first, %.1f below the input",
      mean_diff (y, first), mean_diff (x, y));
  fail_unless (mean_diff (y, first) > 30.0);
  fail_unless (max_diff (x, y) <= 8);
  g_free (x);
  g_free (y);
  g_free (first);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* a + d in every colour byte */
static guint8 *
shifted (const guint8 * a, gint d)
{
  guint8 *p = g_memdup2 (a, NPIX * 4);
  for (gint i = 0; i < NPIX * 4; i++)
    if (i % 4 != 3)
      p[i] = CLAMP (p[i] + d, 0, 255);
  return p;
}

/* Pushes a, then b (2 levels away: still): the output stays a's. */
static void
hold (GstHarness * h, const guint8 * a, const guint8 * b, guint64 * t)
{
  guint8 *y = push_rgbx (h, b, (*t)++, FALSE);
  fail_unless_equals_int (max_diff (y, a), 0);
  g_free (y);
}

GST_START_TEST (test_resets)
{
  GstHarness *h = harness_new (m_identity, 1.0);
  guint8 *a = base_image (6, 60, 190), *b = shifted (a, 2), *c = shifted (a, 4);
  guint64 t = 0;
  guint8 *y;

  g_free (push_rgbx (h, a, t++, FALSE));
  hold (h, a, b, &t);

  /* a flush (a seek): afresh */
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  y = push_rgbx (h, b, t++, FALSE);
  fail_unless_equals_int (max_diff (y, b), 0);
  g_free (y);
  hold (h, b, c, &t);

  /* DISCONT after a gap of two frames (a leaky queue dropped them): still held */
  t += 2;
  y = push_rgbx (h, c, t++, TRUE);
  fail_unless_equals_int (max_diff (y, b), 0);
  g_free (y);
  /* DISCONT back in time: afresh */
  y = push_rgbx (h, c, 0, TRUE);
  fail_unless_equals_int (max_diff (y, c), 0);
  g_free (y);
  /* DISCONT two seconds later: afresh */
  hold (h, c, b, &t);
  t += 60;
  y = push_rgbx (h, b, t++, TRUE);
  fail_unless_equals_int (max_diff (y, b), 0);
  g_free (y);

  /* a caps change (another size): afresh, then held at that size */
  gst_harness_set_src_caps_str (h, "video/x-raw,format=RGBx,width=" G_STRINGIFY (H)
      ",height=" G_STRINGIFY (W) ",framerate=30/1");
  y = push_rgbx (h, a, t++, FALSE);
  fail_unless_equals_int (max_diff (y, a), 0);
  g_free (y);
  hold (h, a, b, &t);

  /* a new model while PLAYING: its output, not the old one's held */
  g_object_set (h->element, "model", m_negate, NULL);
  guint8 *neg = g_memdup2 (a, NPIX * 4);
  for (gint i = 0; i < NPIX * 4; i++)
    if (i % 4 != 3)
      neg[i] = 255 - a[i];
  gint i;
  for (i = 0; i < 500; i++) {
    y = push_rgbx (h, a, t++, FALSE);
    gboolean now = max_diff (y, neg) == 0;
    fail_unless (now || max_diff (y, a) == 0, "frame %d is neither held nor negated", i);
    g_free (y);
    if (now)
      break;
    g_usleep (10000);
  }
  fail_unless (i < 500, "the new model's output never came");
  g_free (neg);
  g_free (a);
  g_free (b);
  g_free (c);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- preserve-color ------------------------------------------------------------------ */

/* BT.601 Y, Cb, Cr (0..255 units, no offset) of an RGB pixel. */
static void
ycc (const guint8 * p, gdouble * y, gdouble * cb, gdouble * cr)
{
  *y = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
  *cb = (p[2] - *y) * 0.5 / (1 - 0.114);
  *cr = (p[0] - *y) * 0.5 / (1 - 0.299);
}

/* Output against input, pixel by pixel (bpp 3 or 4): worst chroma difference, and
 * worst luma difference from want_luma (a function of the input luma). */
static void
color_errors (const guint8 * in, const guint8 * out, gint bpp, gdouble strength,
    gdouble * chroma, gdouble * luma)
{
  *chroma = *luma = 0;
  for (gint i = 0; i < NPIX; i++) {
    gdouble yi, cbi, cri, yo, cbo, cro;
    ycc (in + i * bpp, &yi, &cbi, &cri);
    ycc (out + i * bpp, &yo, &cbo, &cro);
    gdouble want = strength * (255.0 - yi) + (1 - strength) * yi;
    *chroma = MAX (*chroma, MAX (fabs (cbo - cbi), fabs (cro - cri)));
    *luma = MAX (*luma, fabs (yo - want));
  }
}

static void
check_color_rgb (const gchar * format, gint bpp)
{
  GstElement *e = gst_element_factory_make ("neuralstyle", NULL);
  g_object_set (e, "model", m_negate, "preserve-color", TRUE, NULL);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
      "framerate=30/1", format, W, H);
  gst_harness_set_src_caps_str (h, caps);
  g_free (caps);

  /* colours around mid-grey, so that nothing clips on the way */
  GRand *r = g_rand_new_with_seed (7);
  gsize len = (gsize) NPIX * bpp;
  guint8 *in = g_malloc (len), *out = g_malloc (len);
  for (gsize i = 0; i < len; i++)
    in[i] = g_rand_int_range (r, 100, 156);
  g_rand_free (r);
  gdouble chroma, luma;
  const gdouble strengths[] = { 1.0, 0.5 };
  for (guint k = 0; k < G_N_ELEMENTS (strengths); k++) {
    g_object_set (h->element, "strength", strengths[k], NULL);
    GstBuffer *o = gst_harness_push_and_pull (h, buffer_of (in, len, k, FALSE));
    fail_unless (o != NULL);
    gst_buffer_extract (o, 0, out, len);
    gst_buffer_unref (o);
    color_errors (in, out, bpp, strengths[k], &chroma, &luma);
    GST_INFO ("%s preserve-color strength %.1f: chroma within %.2f, luma within %.2f",
        format, strengths[k], chroma, luma);
    fail_unless (chroma <= 1.0, "%s strength %.1f: chroma differs by %.2f", format,
        strengths[k], chroma);
    fail_unless (luma <= 1.0, "%s strength %.1f: luma off by %.2f", format,
        strengths[k], luma);
  }

  /* off while PLAYING: the negation's colours */
  g_object_set (h->element, "preserve-color", FALSE, "strength", 1.0, NULL);
  GstBuffer *o = gst_harness_push_and_pull (h, buffer_of (in, len, 5, FALSE));
  gst_buffer_extract (o, 0, out, len);
  gst_buffer_unref (o);
  color_errors (in, out, bpp, 1.0, &chroma, &luma);
  fail_unless (chroma > 5.0, "%s without preserve-color: chroma kept (%.2f)", format,
      chroma);
  g_free (in);
  g_free (out);
  gst_harness_teardown (h);
}

GST_START_TEST (test_preserve_color_rgb)
{
  check_color_rgb ("RGBx", 4);
  check_color_rgb ("RGB", 3);
}

GST_END_TEST;

static void
check_color_yuv (GstVideoFormat fmt)
{
  GstElement *e = gst_element_factory_make ("neuralstyle", NULL);
  g_object_set (e, "model", m_negate, "preserve-color", TRUE, NULL);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  GstVideoInfo info;
  gst_video_info_set_format (&info, fmt, W + 1, H + 1);        /* odd: partial blocks */
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));        /* takes them */

  GstBuffer *in = gst_buffer_new_allocate (NULL, info.size, NULL);
  GstVideoFrame fi, fo;
  fail_unless (gst_video_frame_map (&fi, &info, in, GST_MAP_WRITE));
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS (&fi); c++)
    for (gint i = 0; i < GST_VIDEO_FRAME_COMP_HEIGHT (&fi, c); i++)
      for (gint j = 0; j < GST_VIDEO_FRAME_COMP_WIDTH (&fi, c); j++)
        GST_VIDEO_FRAME_COMP_DATA (&fi, c)[i * GST_VIDEO_FRAME_COMP_STRIDE (&fi, c)
            + j * GST_VIDEO_FRAME_COMP_PSTRIDE (&fi, c)] = c == 0 ? 70 + 3 * ((i + j) % 30)
            : 128 + (gint) (25 * sin (0.4 * i + 0.3 * j + c));
  gst_video_frame_unmap (&fi);

  const gdouble strengths[] = { 1.0, 0.5 };
  for (guint k = 0; k <= G_N_ELEMENTS (strengths); k++) {
    gboolean on = k < G_N_ELEMENTS (strengths);
    gdouble s = on ? strengths[k] : 1.0;
    g_object_set (h->element, "strength", s, "preserve-color", on, NULL);
    GstBuffer *out = gst_harness_push_and_pull (h, gst_buffer_ref (in));
    fail_unless (out != NULL);
    fail_unless (gst_video_frame_map (&fi, &info, in, GST_MAP_READ));
    fail_unless (gst_video_frame_map (&fo, &info, out, GST_MAP_READ));
    gint chroma = 0, luma = 0;
    gboolean full = info.colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255;
    for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS (&fi); c++)
      for (gint i = 0; i < GST_VIDEO_FRAME_COMP_HEIGHT (&fi, c); i++)
        for (gint j = 0; j < GST_VIDEO_FRAME_COMP_WIDTH (&fi, c); j++) {
          gsize oi = i * GST_VIDEO_FRAME_COMP_STRIDE (&fi, c)
              + j * GST_VIDEO_FRAME_COMP_PSTRIDE (&fi, c);
          gsize oo = i * GST_VIDEO_FRAME_COMP_STRIDE (&fo, c)
              + j * GST_VIDEO_FRAME_COMP_PSTRIDE (&fo, c);
          gint vi = GST_VIDEO_FRAME_COMP_DATA (&fi, c)[oi];
          gint vo = GST_VIDEO_FRAME_COMP_DATA (&fo, c)[oo];
          if (c > 0) {
            chroma = MAX (chroma, abs (vo - vi));
          } else {
            /* the negation's luma: (lo + hi) - Y, blended with Y by strength */
            gdouble neg = (full ? 255.0 : 16.0 + 235.0) - vi;
            luma = MAX (luma, (gint) ceil (fabs (vo - (s * neg + (1 - s) * vi)) - 0.5));
          }
        }
    gst_video_frame_unmap (&fi);
    gst_video_frame_unmap (&fo);
    gst_buffer_unref (out);
    GST_INFO ("%s preserve-color %d strength %.1f: chroma bytes within %d, luma within %d",
        gst_video_format_to_string (fmt), on, s, chroma, luma);
    if (on) {
      fail_unless_equals_int (chroma, 0);
      fail_unless (luma <= 1, "%s strength %.1f: luma off by %d",
          gst_video_format_to_string (fmt), s, luma);
    } else {
      fail_unless (chroma > 10, "%s without preserve-color: chroma kept",
          gst_video_format_to_string (fmt));
    }
  }
  gst_buffer_unref (in);
  gst_harness_teardown (h);
}

GST_START_TEST (test_preserve_color_yuv)
{
  check_color_yuv (GST_VIDEO_FORMAT_I420);
  check_color_yuv (GST_VIDEO_FORMAT_NV12);
}

GST_END_TEST;

/* ---- bad values ------------------------------------------------------------------------ */

GST_START_TEST (test_bad_values)
{
  GstElement *e = gst_element_factory_make ("neuralstyle", NULL);
  gdouble v;

  g_object_set (e, "stabilize", 0.25, NULL);
  ASSERT_WARNING (g_object_set (e, "stabilize", 1.5, NULL));
  ASSERT_WARNING (g_object_set (e, "stabilize", -0.1, NULL));
  g_object_get (e, "stabilize", &v, NULL);
  fail_unless_equals_float (v, 0.25);
  gst_object_unref (e);

  GError *err = NULL;
  GstElement *p = gst_parse_launch ("videotestsrc ! neuralstyle stabilize=strong ! "
      "fakesink", &err);
  fail_unless (err != NULL);
  GST_INFO ("gst_parse_launch: %s", err->message);
  fail_unless (strstr (err->message, "stabilize") != NULL, "%s", err->message);
  g_clear_error (&err);
  gst_clear_object (&p);
  p = gst_parse_launch ("videotestsrc ! neuralstyle preserve-color=maybe ! fakesink", &err);
  fail_unless (err != NULL);
  fail_unless (strstr (err->message, "preserve-color") != NULL, "%s", err->message);
  g_clear_error (&err);
  gst_clear_object (&p);
}

GST_END_TEST;

static Suite *
stabilize_suite (void)
{
  Suite *s = suite_create ("neuralstyle-stabilize");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_static_input);
  tcase_add_test (tc, test_motion);
  tcase_add_test (tc, test_pan);
  tcase_add_test (tc, test_slow_drift);
  tcase_add_test (tc, test_resets);
  tcase_add_test (tc, test_preserve_color_rgb);
  tcase_add_test (tc, test_preserve_color_yuv);
  tcase_add_test (tc, test_bad_values);
  return s;
}

int
main (int argc, char **argv)
{
  model_dir = g_dir_make_tmp ("nf-gst-stabilize-XXXXXX", NULL);
  g_assert (model_dir != NULL);
  m_identity = conv1x1_model ("identity.safetensors", 1.0f, 0.0f);
  m_negate = conv1x1_model ("negate.safetensors", -1.0f, 255.0f);

  gst_check_init (&argc, &argv);
  GstPluginFeature *f = gst_registry_lookup_feature (gst_registry_get (), "neuralstyle");
  if (!f) {
    g_printerr ("the neuralfilter plugin was not found: set GST_PLUGIN_PATH_1_0 to the "
        "build's gst/ folder (meson test does)\n");
    nf_test_rm_tree (model_dir);
    return 1;
  }
  gst_object_unref (f);
  gint failed = gst_check_run_suite (stabilize_suite (), "neuralstyle-stabilize", __FILE__);
  nf_test_rm_tree (model_dir);
  return failed ? 1 : 0;
}
