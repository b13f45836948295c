/* gst-stabilize-bench.c — measures the temporal stabilisation of the neuralstyle
 * element (issue 14): flicker where the camera is still, ghosting where things move.
 *
 *   gst-stabilize-bench MODEL [--stabilize 0.5,0.8,1] [--image FILE]... [--clip DIR]...
 *       [--frames 40] [--size 256] [--noise 1.0] [--jpeg 90] [--format RGB|I420]
 *       [--style NAME] [--no-motion] [--direct [--backend cpu] [--lo 3 --hi 12]]
 *
 * Clips, each run once per stabilize value through a fresh element (GstHarness around
 * "neuralstyle model=MODEL stabilize=S", frames as RGB bytes with 30 fps timestamps,
 * --format I420 converting before and after the element with videoconvert):
 *  - static: a still photo (held-out photos as nf-evaluate flicker picks them by
 *    default, or --image) with sensor noise and a JPEG round trip per frame
 *    (nf_flicker_static_clip); measured: the static flicker ratio (nf-flicker.h) and
 *    the warping error of nf_flicker_warp (its frames x, T1 x, T2 x, ... go through the
 *    element in that order, so a held output would show as an error);
 *  - pan: the same photo seen by a camera panning 1 pixel per frame (each frame with
 *    its own noise and JPEG); measured: the static flicker ratio in the camera's frame
 *    of reference (frame t's pixel against frame t-1's one pixel to the left, where
 *    that input changed by less than 2 levels in every channel);
 *  - object: the same background with a 1/3-size patch of another photo sliding 3
 *    pixels per frame across it; measured: the static flicker ratio (the background),
 *    and the ghosting: the mean |y_S - y_0| against the unstabilised output (S = 0)
 *    where the patch is or was a frame ago, and in the trail it just left;
 *  - --clip DIR: frames of a real video (PNG/JPEG in name order); measured: the static
 *    flicker ratio and the mean |y_S - y_0| where the input moved (a channel changed by
 *    12 levels or more since the previous frame).
 * --direct runs the model and the stabiliser (nf-stabilize.c) without GStreamer, with
 * the ramp --lo/--hi, to choose the element's constants (and on super-resolution
 * models, which the element does not stabilise).
 * What it does not: decide anything; it prints the numbers. Not installed.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "nf-dataset.h"
#include "nf-engine.h"
#include "nf-flicker.h"
#include "nf-model.h"
#include "nf-recipe.h"
#include "nf-resize.h"
#include "nf-stabilize.h"
#include "nf-stabilize-motion.h"

static gchar *opt_stabilize = NULL, *opt_format = NULL, *opt_backend = NULL, *opt_style = NULL;
static gchar **opt_images = NULL, **opt_clips = NULL;
static gint opt_frames = 40, opt_size = 256, opt_jpeg = 90, opt_photos = 3;
static gdouble opt_noise = 1.0, opt_lo = NF_STABILIZE_LO, opt_hi = NF_STABILIZE_HI;
static gboolean opt_direct = FALSE, opt_motion = TRUE;

static GOptionEntry entries[] = {
  {"stabilize", 0, 0, G_OPTION_ARG_STRING, &opt_stabilize,
      "comma-separated strengths besides 0 (0.5,0.8,1)", "LIST"},
  {"image", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_images,
      "a still photo for the synthetic clips (repeatable; default: held-out photos)", "FILE"},
  {"photos", 0, 0, G_OPTION_ARG_INT, &opt_photos, "held-out photos when no --image (3; 0: none)", "N"},
  {"clip", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_clips,
      "a folder of video frames (repeatable)", "DIR"},
  {"frames", 0, 0, G_OPTION_ARG_INT, &opt_frames, "frames per clip (40)", "N"},
  {"size", 0, 0, G_OPTION_ARG_INT, &opt_size, "photos' long side (256)", "N"},
  {"noise", 0, 0, G_OPTION_ARG_DOUBLE, &opt_noise, "sensor noise sigma, levels (1.0)", "S"},
  {"jpeg", 0, 0, G_OPTION_ARG_INT, &opt_jpeg, "JPEG quality per frame (90; 0: none)", "Q"},
  {"format", 0, 0, G_OPTION_ARG_STRING, &opt_format, "RGB (default) or I420", "F"},
  {"style", 0, 0, G_OPTION_ARG_STRING, &opt_style,
      "multi-style models: the element's style property (a name or index; not with --direct)",
      "NAME"},
  {"no-motion", 0, G_OPTION_FLAG_REVERSE, G_OPTION_ARG_NONE, &opt_motion,
      "stabilize-motion=false (the element) / no motion search (--direct)", NULL},
  {"direct", 0, 0, G_OPTION_ARG_NONE, &opt_direct,
      "the model and nf-stabilize.c without GStreamer", NULL},
  {"backend", 0, 0, G_OPTION_ARG_STRING, &opt_backend,
      "--direct: the inference backend (cpu)", "NAME"},
  {"lo", 0, 0, G_OPTION_ARG_DOUBLE, &opt_lo, "--direct: ramp start, levels", "L"},
  {"hi", 0, 0, G_OPTION_ARG_DOUBLE, &opt_hi, "--direct: ramp end, levels", "L"},
  {NULL}
};

static void
die (const gchar * what, GError * e)
{
  g_printerr ("gst-stabilize-bench: %s: %s\n", what, e ? e->message : "failed");
  exit (1);
}

/* ---- the filter under test (NfFrameFilter) ------------------------------------------ */

typedef struct {
  const gchar *model_path;
  gdouble strength;
  /* element */
  GstHarness *h;
  guint64 n;
  /* direct */
  NfBackend *be;
  NfModel *m;
  NfEngine *eng;
  NfStabilizer *stab;
} Filter;

static void
filter_open (Filter * f, const gchar * model, gdouble strength)
{
  memset (f, 0, sizeof *f);
  f->model_path = model;
  f->strength = strength;
  GError *e = NULL;
  if (opt_direct) {
    if (!(f->m = nf_model_load (model, &e)))
      die (model, e);
    if (!(f->be = nf_backend_new (opt_backend ? opt_backend : "cpu", &e)))
      die ("backend", e);
    f->eng = nf_engine_new (f->m, f->be, NULL);
    f->stab = nf_stabilizer_new ();
    return;
  }
  gboolean i420 = opt_format && g_str_equal (opt_format, "I420");
  gchar *style = opt_style ? g_strdup_printf (" style=\"%s\"", opt_style) : g_strdup ("");
  gchar *line = g_strdup_printf ("%sneuralstyle model=\"%s\" stabilize=%g "
      "stabilize-motion=%s%s%s", i420 ? "videoconvert ! video/x-raw,format=I420 ! " : "",
      model, strength, opt_motion ? "true" : "false", style, i420 ? " ! videoconvert" : "");
  g_free (style);
  f->h = gst_harness_new_parse (line);
  g_free (line);
}

static void
filter_close (Filter * f)
{
  if (f->h)
    gst_harness_teardown (f->h);
  nf_stabilizer_free (f->stab);
  nf_engine_free (f->eng);
  nf_model_free (f->m);
  nf_backend_free (f->be);
}

static gboolean
direct_run (Filter * f, const float *in, int w, int h, float **out, int *ow, int *oh,
    GError ** error)
{
  NfModel *m = f->m;
  NfShape s = { 1, 3, h, w };
  size_t n = nf_shape_numel (s), no = n * m->scale * m->scale;
  float *x = nf_alloc_floats (n), *y = nf_alloc_floats (no);
  float a = (m->in_hi - m->in_lo) / 255.0f, b = 255.0f / (m->out_hi - m->out_lo);
  for (size_t i = 0; i < n; i++)
    x[i] = in[i] * a + m->in_lo;
  gboolean ok = nf_engine_run_host (f->eng, x, s, y, error);
  if (ok && f->strength > 0) {
    NfStabilizeParams p = { (float) f->strength, (float) opt_lo, (float) opt_hi,
      opt_motion ? NF_MOTION_SEARCH : 0
    };
    ok = nf_stabilizer_apply (f->stab, &p, x, w, (gsize) w * h, w, h, 1.0f / a, y,
        w * m->scale, (gsize) w * h * m->scale * m->scale, m->scale);
  }
  nf_free (x);
  if (!ok) {
    nf_free (y);
    return FALSE;
  }
  for (size_t i = 0; i < no; i++)
    y[i] = CLAMP (rintf ((y[i] - m->out_lo) * b), 0.0f, 255.0f);
  *out = y;
  *ow = w * m->scale;
  *oh = h * m->scale;
  return TRUE;
}

static gboolean
filter_run (gpointer user, const float *in, int w, int h, float **out, int *ow, int *oh,
    GError ** error)
{
  Filter *f = user;
  if (opt_direct)
    return direct_run (f, in, w, h, out, ow, oh, error);
  if (f->n == 0) {
    gchar *caps = g_strdup_printf ("video/x-raw,format=RGB,width=%d,height=%d,"
        "framerate=30/1", w, h);
    gst_harness_set_src_caps_str (f->h, caps);
    g_free (caps);
  }
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, w, h);
  GstBuffer *buf = gst_buffer_new_allocate (NULL, info.size, NULL);
  GstVideoFrame vf;
  gst_video_frame_map (&vf, &info, buf, GST_MAP_WRITE);
  size_t plane = (size_t) w * h;
  for (int i = 0; i < h; i++) {
    guint8 *row = (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&vf, 0)
        + (gsize) i * GST_VIDEO_FRAME_PLANE_STRIDE (&vf, 0);
    for (int j = 0; j < w; j++)
      for (int c = 0; c < 3; c++)
        row[3 * j + c] = (guint8) CLAMP (rintf (in[c * plane + (size_t) i * w + j]), 0, 255);
  }
  gst_video_frame_unmap (&vf);
  GST_BUFFER_PTS (buf) = f->n * GST_SECOND / 30;
  GST_BUFFER_DURATION (buf) = GST_SECOND / 30;
  f->n++;
  GstBuffer *o = gst_harness_push_and_pull (f->h, buf);
  if (!o) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED, "no output from the element");
    return FALSE;
  }
  GstCaps *oc = gst_pad_get_current_caps (f->h->sinkpad);
  GstVideoInfo oinfo;
  gst_video_info_from_caps (&oinfo, oc);
  gst_caps_unref (oc);
  *ow = GST_VIDEO_INFO_WIDTH (&oinfo);
  *oh = GST_VIDEO_INFO_HEIGHT (&oinfo);
  gst_video_frame_map (&vf, &oinfo, o, GST_MAP_READ);
  size_t oplane = (size_t) *ow * *oh;
  float *y = nf_alloc_floats (3 * oplane);
  for (int i = 0; i < *oh; i++) {
    const guint8 *row = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&vf, 0)
        + (gsize) i * GST_VIDEO_FRAME_PLANE_STRIDE (&vf, 0);
    for (int j = 0; j < *ow; j++)
      for (int c = 0; c < 3; c++)
        y[c * oplane + (size_t) i * *ow + j] = row[3 * j + c];
  }
  gst_video_frame_unmap (&vf);
  gst_buffer_unref (o);
  *out = y;
  return TRUE;
}

/* Runs every frame through a fresh filter of strength s; the outputs. */
static float **
run_clip (const gchar * model, gdouble s, float **frames, int n, int w, int h, int *ow,
    int *oh)
{
  Filter f;
  GError *e = NULL;
  float **out = g_new0 (float *, n);
  filter_open (&f, model, s);
  for (int t = 0; t < n; t++)
    if (!filter_run (&f, frames[t], w, h, &out[t], ow, oh, &e))
      die ("running the clip", e);
  filter_close (&f);
  return out;
}

static void
free_frames (float **f, int n)
{
  for (int i = 0; i < n; i++)
    nf_free (f[i]);
  g_free (f);
}

/* ---- clips ------------------------------------------------------------------------- */

static float *
photo_at_size (const gchar * path, int long_side, int *w, int *h)
{
  GError *e = NULL;
  int pw, ph;
  float *p = nf_load_planar (path, &pw, &ph, &e);
  if (!p)
    die (path, e);
  int sw, sh;
  nf_resize_fit (pw, ph, long_side, &sw, &sh);
  sw = sw / 4 * 4;
  sh = sh / 4 * 4;
  float *small = nf_alloc_floats ((size_t) 3 * sw * sh);
  nf_resize_planar (p, 3, ph, pw, small, sh, sw);
  nf_free (p);
  *w = sw;
  *h = sh;
  return small;
}

/* One frame of noise and JPEG on img (as the static clips have). */
static float *
noisy (const float *img, int w, int h, guint64 seed)
{
  GError *e = NULL;
  float **one = nf_flicker_static_clip (img, w, h, 1, opt_noise, opt_jpeg, seed, &e);
  if (!one)
    die ("clip", e);
  float *f = one[0];
  g_free (one);
  return f;
}

/* The pan clip: a camera panning over img by PAN_DX pixels per frame (the scene moves
 * right), frames (w - PAN_DX * (n - 1)) x h, each with its own noise and JPEG. */
#define PAN_DX 1
static float **
pan_clip (const float *img, int w, int h, int n, int *fw)
{
  *fw = w - PAN_DX * (n - 1);
  if (*fw < 32)
    return NULL;
  size_t plane = (size_t) w * h, fplane = (size_t) *fw * h;
  float **frames = g_new0 (float *, n);
  float *win = nf_alloc_floats (3 * fplane);
  for (int t = 0; t < n; t++) {
    int ox = PAN_DX * (n - 1 - t);
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < h; i++)
        memcpy (win + c * fplane + (size_t) i * *fw, img + c * plane + (size_t) i * w + ox,
            sizeof (float) * *fw);
    frames[t] = noisy (win, *fw, h, 5000 + t);
  }
  nf_free (win);
  return frames;
}

/* The static flicker ratio in the camera's frame of reference: pixel (i, j) of frame t
 * against (i, j - PAN_DX) of frame t - 1, static where every input channel changed by
 * less than 2 levels; the mean output change over the input's there. */
static double
pan_ratio (float **x, float **y, int n, int w, int h, int s, double *static_share,
    double *in_change, double *out_change)
{
  double din = 0, dout = 0;
  long cnt = 0, all = 0;
  size_t plane = (size_t) w * h, oplane = plane * s * s;
  int ow = w * s;
  for (int t = 1; t < n; t++)
    for (int i = 0; i < h; i++)
      for (int j = PAN_DX; j < w; j++) {
        size_t a = (size_t) i * w + j, b = a - PAN_DX;
        gboolean still = TRUE;
        double dx = 0;
        for (int c = 0; c < 3; c++) {
          double d = fabs (x[t][c * plane + a] - x[t - 1][c * plane + b]);
          still &= d < 2.0;
          dx += d;
        }
        all++;
        if (!still)
          continue;
        cnt++;
        din += dx / 3;
        double dy = 0;
        for (int c = 0; c < 3; c++)
          for (int u = 0; u < s; u++)
            for (int v = 0; v < s; v++) {
              size_t oa = (size_t) (i * s + u) * ow + j * s + v, ob = oa - PAN_DX * s;
              dy += fabs (y[t][c * oplane + oa] - y[t - 1][c * oplane + ob]);
            }
        dout += dy / (3 * s * s);
      }
  *static_share = all ? (double) cnt / all : 0;
  *in_change = cnt ? din / cnt : NAN;
  *out_change = cnt ? dout / cnt : NAN;
  return din > 0 ? dout / din : NAN;
}

/* The object clip: patch (pw x ph, from src at its centre) sliding over bg by 3 px per
 * frame from the left third; rect[t] = its x, y. */
#define OBJECT_SPEED 3
static float **
object_clip (const float *bg, const float *src, int w, int h, int sw, int sh, int n,
    int *px, int *py, int *pw, int *ph)
{
  *pw = w / 3;
  *ph = h / 3;
  *py = h / 3;
  *px = w / 8;
  size_t plane = (size_t) w * h, splane = (size_t) sw * sh;
  float **frames = g_new0 (float *, n);
  float *img = nf_alloc_floats (3 * plane);
  for (int t = 0; t < n; t++) {
    memcpy (img, bg, sizeof (float) * 3 * plane);
    int x0 = *px + OBJECT_SPEED * t;
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < *ph; i++)
        for (int j = 0; j < *pw; j++) {
          int si = MIN (sh - 1, sh / 2 - *ph / 2 + i), sj = MIN (sw - 1, sw / 2 - *pw / 2 + j);
          if (x0 + j < w)
            img[c * plane + (size_t) (*py + i) * w + x0 + j] = src[c * splane
                + (size_t) si * sw + sj];
        }
    frames[t] = noisy (img, w, h, 2000 + t);
  }
  nf_free (img);
  return frames;
}

static gboolean
in_rect (int x, int y, int rx, int ry, int rw, int rh)
{
  return x >= rx && x < rx + rw && y >= ry && y < ry + rh;
}

/* ---- measures ---------------------------------------------------------------------- */

static NfFlickerStatic
static_ratio (const gchar * model, gdouble s, float **frames, int n, int w, int h)
{
  Filter f;
  NfFlickerStatic st;
  GError *e = NULL;
  filter_open (&f, model, s);
  if (!nf_flicker_static ((const float *const *) frames, n, w, h, 2.0, filter_run, &f,
          &st, &e))
    die ("static flicker", e);
  filter_close (&f);
  return st;
}

static NfWarpScore
warp_score (const gchar * model, gdouble s, const float *img, int w, int h)
{
  Filter f;
  NfWarpScore ws;
  GError *e = NULL;
  filter_open (&f, model, s);
  if (!nf_flicker_warp (img, w, h, 16, filter_run, &f, &ws, &e))
    die ("warping error", e);
  filter_close (&f);
  return ws;
}

/* Mean |a - b| over the pixels (of frames 1..n-1) where mask says so. */
typedef gboolean (*PixelMask) (gpointer user, int t, int x, int y);

static double
masked_diff (float **a, float **b, int n, int w, int h, int scale, PixelMask mask,
    gpointer user)
{
  int ow = w * scale, oh = h * scale;
  size_t oplane = (size_t) ow * oh;
  double sum = 0;
  guint64 cnt = 0;
  for (int t = 1; t < n; t++)
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++) {
        if (!mask (user, t, x / scale, y / scale))
          continue;
        for (int c = 0; c < 3; c++) {
          size_t i = c * oplane + (size_t) y * ow + x;
          sum += fabs ((double) a[t][i] - b[t][i]);
        }
        cnt += 3;
      }
  return cnt ? sum / cnt : 0;
}

typedef struct {
  int px, py, pw, ph;
} ObjectGeom;

static gboolean
mask_object (gpointer user, int t, int x, int y)
{
  ObjectGeom *g = user;
  return in_rect (x, y, g->px + OBJECT_SPEED * t, g->py, g->pw, g->ph)
      || in_rect (x, y, g->px + OBJECT_SPEED * (t - 1), g->py, g->pw, g->ph);
}

/* the strip the patch left between frames t - 1 and t, and the 12 pixels behind it */
static gboolean
mask_trail (gpointer user, int t, int x, int y)
{
  ObjectGeom *g = user;
  int x1 = g->px + OBJECT_SPEED * t;
  return y >= g->py && y < g->py + g->ph && x < x1 && x >= x1 - 12;
}

typedef struct {
  float **frames;
  int w, h;
} MovingInput;

static gboolean
mask_moving (gpointer user, int t, int x, int y)
{
  MovingInput *m = user;
  size_t plane = (size_t) m->w * m->h, i = (size_t) y * m->w + x;
  for (int c = 0; c < 3; c++)
    if (fabsf (m->frames[t][c * plane + i] - m->frames[t - 1][c * plane + i]) >= 12.0f)
      return TRUE;
  return FALSE;
}

/* ---- main --------------------------------------------------------------------------- */

static float **
load_clip (const gchar * dir, int *n, int *w, int *h)
{
  GError *e = NULL;
  GDir *d = g_dir_open (dir, 0, &e);
  if (!d)
    die (dir, e);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;
  while ((name = g_dir_read_name (d)))
    if (g_str_has_suffix (name, ".png") || g_str_has_suffix (name, ".jpg"))
      g_ptr_array_add (names, g_build_filename (dir, name, NULL));
  g_dir_close (d);
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  *n = MIN ((int) names->len, opt_frames);
  if (*n < 2)
    die (dir, NULL);
  float **frames = g_new0 (float *, *n);
  for (int t = 0; t < *n; t++) {
    int fw, fh;
    float *f = nf_load_planar (names->pdata[t], &fw, &fh, &e);
    if (!f)
      die (names->pdata[t], e);
    *w = fw / 4 * 4;
    *h = fh / 4 * 4;
    frames[t] = nf_alloc_floats ((size_t) 3 * *w * *h);
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < *h; i++)
        memcpy (frames[t] + ((size_t) c * *h + i) * *w, f + ((size_t) c * fh + i) * fw,
            sizeof (float) * *w);
    nf_free (f);
  }
  g_ptr_array_free (names, TRUE);
  return frames;
}

static void
print_header (const gchar * what)
{
  printf ("  %-22s %5s | %7s %7s %6s | %s\n", what, "S", "in", "out", "ratio", "more");
}

int
main (int argc, char **argv)
{
  GError *e = NULL;
  GOptionContext *ctx = g_option_context_new ("MODEL - temporal stabilisation of "
      "neuralstyle: flicker and ghosting");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &e) || argc != 2)
    die ("usage (--help)", e);
  g_option_context_free (ctx);
  gst_init (NULL, NULL);
  setvbuf (stdout, NULL, _IOLBF, 0);
  const gchar *model = argv[1];
  if (opt_lo < 0 || opt_hi <= opt_lo || opt_frames < 3)
    die ("--lo >= 0, --hi > --lo, --frames >= 3", NULL);
  if (opt_style && opt_direct)
    die ("--style is the element's property: not with --direct", NULL);
  /* svals[0] = 0: the reference, every frame on its own; then the list, less zeros */
  gchar **sv = g_strsplit (opt_stabilize ? opt_stabilize : "0.5,0.8,1", ",", -1);
  gdouble *svals = g_new0 (gdouble, g_strv_length (sv) + 1);
  int ns = 0;
  for (int i = 0; sv[i]; i++) {
    gdouble v = g_ascii_strtod (sv[i], NULL);
    if (v < 0 || v > 1)
      die ("--stabilize: values in 0..1", NULL);
    if (v > 0)
      svals[++ns] = v;
  }
  g_strfreev (sv);

  /* photos: --image, else the held-out split of the shared photos */
  GPtrArray *photos = g_ptr_array_new_with_free_func (g_free);
  for (int i = 0; opt_images && opt_images[i]; i++)
    g_ptr_array_add (photos, g_strdup (opt_images[i]));
  if (!photos->len && opt_photos > 0) {
    gchar *shared = nf_shared_data_dir ();
    gchar *dir = g_build_filename (shared, "photos", NULL);
    const char *dirs[] = { dir, NULL };
    NfDatasetOptions o = {.split = NF_SPLIT_VAL,.val_percent = 10,.min_side = 16 };
    NfDataset *ds = nf_dataset_open (dirs, &o, &e);
    if (!ds)
      die (dir, e);
    for (int i = 0; i < MIN (nf_dataset_size (ds), opt_photos + 1); i++)
      g_ptr_array_add (photos, g_strdup (nf_dataset_path (ds, i)));
    nf_dataset_free (ds);
    g_free (dir);
    g_free (shared);
  }
  if (opt_direct)
    printf ("%s, the model and nf-stabilize.c (ramp %g..%g levels)", model, opt_lo, opt_hi);
  else
    printf ("%s, the element on %s frames", model, opt_format ? opt_format : "RGB");
  printf (", %d frames per clip; static: every channel changes by < 2 levels\n",
      opt_frames);

  /* synthetic clips: photo i still, and with a patch of photo i + 1 moving */
  int n_still = photos->len > 1 && !opt_images ? (int) photos->len - 1 : (int) photos->len;
  for (int pi = 0; pi < n_still; pi++) {
    int w, h, sw, sh;
    float *img = photo_at_size (photos->pdata[pi], opt_size, &w, &h);
    float *other = photo_at_size (photos->pdata[(pi + 1) % photos->len], opt_size, &sw, &sh);
    gchar *base = g_path_get_basename (photos->pdata[pi]);
    float **still = nf_flicker_static_clip (img, w, h, opt_frames, opt_noise, opt_jpeg,
        1000 + pi, &e);
    if (!still)
      die ("clip", e);
    ObjectGeom g;
    float **obj = object_clip (img, other, w, h, sw, sh, opt_frames, &g.px, &g.py, &g.pw,
        &g.ph);
    printf ("%s %dx%d\n", base, w, h);
    print_header ("static clip");
    for (int k = 0; k <= ns; k++) {
      NfFlickerStatic st = static_ratio (model, svals[k], still, opt_frames, w, h);
      NfWarpScore ws = warp_score (model, svals[k], still[0], w, h);
      printf ("  %-22s %5.2f | %7.3f %7.3f %6.2f | warp shift %.3f zoom %.3f\n", "still",
          svals[k], st.input_change, st.output_change, st.ratio, ws.translate_error,
          ws.zoom_error);
    }
    int pw;
    float **pan = pan_clip (img, w, h, opt_frames, &pw);
    if (pan) {
      print_header ("pan 1 px/frame");
      for (int k = 0; k <= ns; k++) {
        int ow, oh;
        float **out = run_clip (model, svals[k], pan, opt_frames, pw, h, &ow, &oh);
        double share, din, dout;
        double ratio = pan_ratio (pan, out, opt_frames, pw, h, ow / pw, &share, &din, &dout);
        printf ("  %-22s %5.2f | %7.3f %7.3f %6.2f | static after the pan %.0f%%\n",
            "pan", svals[k], din, dout, ratio, 100 * share);
        free_frames (out, opt_frames);
      }
      free_frames (pan, opt_frames);
    }
    print_header ("moving patch");
    int ow, oh;
    float **ref = run_clip (model, 0.0, obj, opt_frames, w, h, &ow, &oh);
    for (int k = 1; k <= ns; k++) {
      NfFlickerStatic st = static_ratio (model, svals[k], obj, opt_frames, w, h);
      float **out = run_clip (model, svals[k], obj, opt_frames, w, h, &ow, &oh);
      printf ("  %-22s %5.2f | %7.3f %7.3f %6.2f | |y_S - y_0| patch %.3f trail %.3f\n",
          "patch 3 px/frame", svals[k], st.input_change, st.output_change, st.ratio,
          masked_diff (out, ref, opt_frames, w, h, ow / w, mask_object, &g),
          masked_diff (out, ref, opt_frames, w, h, ow / w, mask_trail, &g));
      free_frames (out, opt_frames);
    }
    free_frames (ref, opt_frames);
    free_frames (still, opt_frames);
    free_frames (obj, opt_frames);
    nf_free (img);
    nf_free (other);
    g_free (base);
  }

  /* real clips */
  for (int ci = 0; opt_clips && opt_clips[ci]; ci++) {
    int n, w, h, ow, oh;
    float **frames = load_clip (opt_clips[ci], &n, &w, &h);
    MovingInput mv = { frames, w, h };
    printf ("%s %dx%d, %d frames\n", opt_clips[ci], w, h, n);
    print_header ("clip");
    float **ref = run_clip (model, 0.0, frames, n, w, h, &ow, &oh);
    for (int k = 0; k <= ns; k++) {
      NfFlickerStatic st = static_ratio (model, svals[k], frames, n, w, h);
      float **out = k ? run_clip (model, svals[k], frames, n, w, h, &ow, &oh) : NULL;
      printf ("  %-22s %5.2f | %7.3f %7.3f %6.2f | static %.0f%%, |y_S - y_0| moving "
          "%.3f\n", "video", svals[k], st.input_change, st.output_change, st.ratio,
          100 * st.static_fraction, out ? masked_diff (out, ref, n, w, h, ow / w,
              mask_moving, &mv) : 0.0);
      if (out)
        free_frames (out, n);
    }
    free_frames (ref, n);
    free_frames (frames, n);
  }
  g_ptr_array_free (photos, TRUE);
  g_free (svals);
  return 0;
}
