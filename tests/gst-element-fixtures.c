/* gst-element-fixtures.c — what the element tests (test-gst-elements.c,
 * test-gst-changes.c) share: the models they make, frames of every format, harnesses,
 * and running launch lines.
 *
 * Models are made in a temporary folder that becomes NEURALFILTER_MODEL_PATH: exact
 * identities (a 1x1 conv, and a 4x4/stride-4 space-to-depth conv + pixel shuffle, which
 * needs sizes padded to multiples of 4), a negation (255 - x), nearest-neighbour x2/x4
 * super-resolution (1x1 conv replicating channels + pixel shuffle, range 0..1), seeded
 * random style-slim and sr-subpixel networks, and damaged files.
 * What it does not: test anything itself.
 */
#include "gst-element-fixtures.h"

#include <math.h>
#include <string.h>
#include <glib/gstdio.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "nf-graph.h"
#include "nf-model.h"
#include "nf-test-tree.h"

gchar *model_dir;
gchar *m_identity, *m_identity4, *m_negate, *m_sr2, *m_sr4, *m_corrupt, *m_trunc, *m_slim,
    *m_srsub, *m_sry, *m_sryr;

/* ---- models ----------------------------------------------------------------------- */

gchar *
save_model (NfModel * m, const gchar * name)
{
  GError *e = NULL;
  gchar *path = g_build_filename (model_dir, name, NULL);
  if (!nf_model_save (m, path, NF_DTYPE_F32, &e))
    g_error ("saving %s: %s", path, e->message);
  nf_model_free (m);
  return path;
}

NfModel *
graph_model (const gchar * json, NfTask task, int scale)
{
  GError *e = NULL;
  NfGraph *g = nf_graph_from_json (json, &e);
  if (!g)
    g_error ("graph: %s", e->message);
  NfModel *m = nf_model_new_for_graph (g, task, scale, &e);
  if (!m)
    g_error ("model: %s", e->message);
  nf_graph_free (g);
  return m;
}

float *
tensor (NfModel * m, const gchar * name)
{
  NfModelTensor *t = nf_model_tensor (m, name);
  if (!t)
    g_error ("no tensor %s", name);
  return t->data;
}

void
make_models (void)
{
  NfModel *m;
  float *w, *b;
  GError *e = NULL;

  /* identity: 1x1 conv 3->3 */
  m = graph_model ("{\"input\":\"x\",\"output\":\"y\",\"ops\":[{\"op\":\"conv2d\","
      "\"name\":\"conv1\",\"in\":\"x\",\"out\":\"y\",\"k\":1,\"cin\":3,\"cout\":3}]}",
      NF_TASK_STYLE, 1);
  w = tensor (m, "conv1.weight");
  for (int c = 0; c < 3; c++)
    w[c * 3 + c] = 1.0f;
  nf_model_bind (m, NULL);
  m_identity = save_model (m, "identity.safetensors");

  /* negate: 255 - x */
  m = graph_model ("{\"input\":\"x\",\"output\":\"y\",\"ops\":[{\"op\":\"conv2d\","
      "\"name\":\"conv1\",\"in\":\"x\",\"out\":\"y\",\"k\":1,\"cin\":3,\"cout\":3}]}",
      NF_TASK_STYLE, 1);
  w = tensor (m, "conv1.weight");
  b = tensor (m, "conv1.bias");
  for (int c = 0; c < 3; c++) {
    w[c * 3 + c] = -1.0f;
    b[c] = 255.0f;
  }
  nf_model_bind (m, NULL);
  m_negate = save_model (m, "negate.safetensors");

  /* identity4: space-to-depth (4x4 conv, stride 4) then pixel shuffle 4: exact
   * identity on sizes that are multiples of 4 */
  m = graph_model ("{\"input\":\"x\",\"output\":\"y\",\"ops\":["
      "{\"op\":\"conv2d\",\"name\":\"s2d\",\"in\":\"x\",\"out\":\"d\",\"k\":4,"
      "\"stride\":4,\"pad\":\"none\",\"cin\":3,\"cout\":48,\"bias\":false},"
      "{\"op\":\"pixel_shuffle\",\"in\":\"d\",\"out\":\"y\",\"factor\":4}]}",
      NF_TASK_STYLE, 1);
  w = tensor (m, "s2d.weight");
  for (int c = 0; c < 3; c++)
    for (int ky = 0; ky < 4; ky++)
      for (int kx = 0; kx < 4; kx++) {
        int co = c * 16 + ky * 4 + kx;
        w[((co * 3 + c) * 4 + ky) * 4 + kx] = 1.0f;
      }
  nf_model_bind (m, NULL);
  if (m->size_multiple != 4)
    g_error ("identity4 has size multiple %d, not 4", m->size_multiple);
  m_identity4 = save_model (m, "identity4.safetensors");

  /* nearest-neighbour x2 and x4 super-resolution, range 0..1 */
  for (int s = 2; s <= 4; s += 2) {
    gchar *json = g_strdup_printf ("{\"input\":\"x\",\"output\":\"y\",\"ops\":["
        "{\"op\":\"conv2d\",\"name\":\"rep\",\"in\":\"x\",\"out\":\"r\",\"k\":1,"
        "\"cin\":3,\"cout\":%d,\"bias\":false},"
        "{\"op\":\"pixel_shuffle\",\"in\":\"r\",\"out\":\"y\",\"factor\":%d}]}",
        3 * s * s, s);
    m = graph_model (json, NF_TASK_SUPERRES, s);
    g_free (json);
    w = tensor (m, "rep.weight");
    for (int c = 0; c < 3; c++)
      for (int k = 0; k < s * s; k++)
        w[(c * s * s + k) * 3 + c] = 1.0f;
    m->in_lo = m->out_lo = 0.0f;
    m->in_hi = m->out_hi = 1.0f;
    nf_model_bind (m, NULL);
    if (s == 2)
      m_sr2 = save_model (m, "sr2.safetensors");
    else
      m_sr4 = save_model (m, "sr4.safetensors");
  }

  /* small widths keep the pipeline tests fast on any backend */
  m = nf_arch_new_model (&(NfArchSpec) {"style-slim", 1, 8, 1}, 1, &e);
  if (!m)
    g_error ("style-slim: %s", e->message);
  m_slim = save_model (m, "slim.safetensors");
  m = nf_arch_new_model (&(NfArchSpec) {"sr-subpixel", 2, 8, 1}, 1, &e);
  if (!m)
    g_error ("sr-subpixel: %s", e->message);
  m_srsub = save_model (m, "srsub.safetensors");
  /* luma-only x2 (sr-light-y, 8 channels): seeded, and with every learned weight zero
   * (then it is the nearest-upsampled input exactly) */
  m = nf_arch_new_model (&(NfArchSpec) {"sr-light-y", 2, 8, 2}, 1, &e);
  if (!m)
    g_error ("sr-light-y: %s", e->message);
  m_sryr = save_model (m, "sryr.safetensors");
  m = nf_arch_new_model (&(NfArchSpec) {"sr-light-y", 2, 8, 2}, 1, &e);
  if (!m)
    g_error ("sr-light-y: %s", e->message);
  for (int i = 0; i < m->source_graph->n_ops; i++) {
    const NfOp *op = &m->source_graph->ops[i];
    if (op->type != NF_OP_CONV2D || nf_arch_op_is_fixed (op))
      continue;
    for (int k = 0; k < 2; k++) {
      gchar *key = g_strconcat (op->name, k ? ".bias" : ".weight", NULL);
      NfModelTensor *t = nf_model_tensor (m, key);
      memset (t->data, 0, nf_model_tensor_numel (t) * sizeof (float));
      g_free (key);
    }
  }
  nf_model_bind (m, NULL);
  m_sry = save_model (m, "sry.safetensors");

  /* damaged files: random bytes, and a valid file cut in half */
  guint8 junk[1000];
  GRand *r = g_rand_new_with_seed (5);
  for (guint i = 0; i < sizeof (junk); i++)
    junk[i] = g_rand_int (r) & 0xff;
  g_rand_free (r);
  m_corrupt = g_build_filename (model_dir, "corrupt.safetensors", NULL);
  g_file_set_contents (m_corrupt, (const gchar *) junk, sizeof (junk), NULL);
  gchar *data;
  gsize len;
  g_file_get_contents (m_identity4, &data, &len, NULL);
  m_trunc = g_build_filename (model_dir, "truncated.safetensors", NULL);
  g_file_set_contents (m_trunc, data, len / 2, NULL);
  g_free (data);
}

/* ---- frames ------------------------------------------------------------------------ */

/* A frame of fmt; RGB formats get random bytes, YUV formats smooth content (so that
 * chroma subsampling loses little). padded: strides and offsets differ from the
 * defaults (described by a GstVideoMeta), and the padding holds garbage. */
GstBuffer *
frame_new (GstVideoFormat fmt, gint w, gint h, guint seed, gboolean padded)
{
  GstVideoInfo info;
  GstVideoFrame f;
  GRand *r = g_rand_new_with_seed (seed);

  gst_video_info_set_format (&info, fmt, w, h);
  if (padded) {
    GstVideoAlignment al;
    gst_video_alignment_reset (&al);
    al.padding_right = 13;
    al.padding_top = 2;
    al.padding_bottom = 3;
    gst_video_info_align (&info, &al);
  }
  GstBuffer *buf = gst_buffer_new_allocate (NULL, info.size, NULL);
  gst_buffer_memset (buf, 0, 0x77, info.size);
  if (padded)
    gst_buffer_add_video_meta_full (buf, GST_VIDEO_FRAME_FLAG_NONE, fmt, w, h,
        GST_VIDEO_INFO_N_PLANES (&info), info.offset, info.stride);
  fail_unless (gst_video_frame_map (&f, &info, buf, GST_MAP_WRITE));
  gboolean yuv = GST_VIDEO_FORMAT_INFO_IS_YUV (info.finfo);
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS (&f); c++) {
    guint8 *d = GST_VIDEO_FRAME_COMP_DATA (&f, c);
    gint stride = GST_VIDEO_FRAME_COMP_STRIDE (&f, c);
    gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (&f, c);
    gint cw = GST_VIDEO_FRAME_COMP_WIDTH (&f, c), ch = GST_VIDEO_FRAME_COMP_HEIGHT (&f, c);
    gdouble ph = g_rand_double_range (r, 0, 6.28);
    for (gint i = 0; i < ch; i++)
      for (gint j = 0; j < cw; j++) {
        guint8 v;
        if (!yuv)
          v = g_rand_int (r) & 0xff;
        else if (c == 0)        /* in the RGB gamut: nothing clips on the way */
          v = 80 + 90 * (i + j) / (ch + cw);
        else
          v = 128 + (gint) (20 * sin (ph + 0.3 * i + 0.2 * j));
        d[(gsize) i * stride + (gsize) j * ps] = v;
      }
  }
  gst_video_frame_unmap (&f);
  g_rand_free (r);
  return buf;
}

/* Largest difference per component between out and in, in pixel (i, j) of out
 * against (i / scale, j / scale) of in. */
void
frame_diff (GstBuffer * inbuf, const GstVideoInfo * in_info, GstBuffer * outbuf,
    const GstVideoInfo * out_info, gint scale, gint maxd[4])
{
  GstVideoFrame fi, fo;
  fail_unless (gst_video_frame_map (&fi, (GstVideoInfo *) in_info, inbuf, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&fo, (GstVideoInfo *) out_info, outbuf, GST_MAP_READ));
  for (guint c = 0; c < 4; c++)
    maxd[c] = 0;
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS (&fo); c++) {
    const guint8 *di = GST_VIDEO_FRAME_COMP_DATA (&fi, c);
    const guint8 *dO = GST_VIDEO_FRAME_COMP_DATA (&fo, c);
    gint si = GST_VIDEO_FRAME_COMP_STRIDE (&fi, c), so = GST_VIDEO_FRAME_COMP_STRIDE (&fo, c);
    gint pi = GST_VIDEO_FRAME_COMP_PSTRIDE (&fi, c), po = GST_VIDEO_FRAME_COMP_PSTRIDE (&fo, c);
    gint iw = GST_VIDEO_FRAME_COMP_WIDTH (&fi, c), ih = GST_VIDEO_FRAME_COMP_HEIGHT (&fi, c);
    gint ow = GST_VIDEO_FRAME_COMP_WIDTH (&fo, c), oh = GST_VIDEO_FRAME_COMP_HEIGHT (&fo, c);
    for (gint i = 0; i < oh; i++)
      for (gint j = 0; j < ow; j++) {
        gint ii = MIN (i / scale, ih - 1), jj = MIN (j / scale, iw - 1);
        gint d = abs ((gint) dO[(gsize) i * so + (gsize) j * po]
            - (gint) di[(gsize) ii * si + (gsize) jj * pi]);
        maxd[c] = MAX (maxd[c], d);
      }
  }
  gst_video_frame_unmap (&fi);
  gst_video_frame_unmap (&fo);
}

void
info_from_caps_str (GstVideoInfo * info, const gchar * s)
{
  GstCaps *caps = gst_caps_from_string (s);
  fail_unless (gst_video_info_from_caps (info, caps));
  gst_caps_unref (caps);
}

void
out_info (GstHarness * h, GstVideoInfo * info)
{
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  fail_unless (caps != NULL);
  fail_unless (gst_video_info_from_caps (info, caps));
  gst_caps_unref (caps);
}

GstHarness *
harness_new (const gchar * element, const gchar * model)
{
  GstElement *e = gst_element_factory_make (element, NULL);
  fail_unless (e != NULL);
  g_object_set (e, "model", model, NULL);
  /* the harness takes its own reference and sets the element PLAYING */
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  return h;
}

/* Pushes one frame of fmt w x h, pulls the result, returns the max component diffs
 * against the input (scale: nearest-neighbour mapping). */
void
push_check (GstHarness * h, GstVideoFormat fmt, gint w, gint h_, gint scale,
    gboolean padded, gint maxd[4])
{
  gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
      "framerate=30/1", gst_video_format_to_string (fmt), w, h_);
  GstVideoInfo in_info, o_info;
  gst_harness_set_src_caps_str (h, caps);
  info_from_caps_str (&in_info, caps);
  g_free (caps);
  GstBuffer *in = frame_new (fmt, w, h_, w * 1000 + h_, padded);
  GstBuffer *out = gst_harness_push_and_pull (h, gst_buffer_ref (in));
  fail_unless (out != NULL, "no output for %s %dx%d", gst_video_format_to_string (fmt),
      w, h_);
  out_info (h, &o_info);
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&o_info), w * scale);
  fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&o_info), h_ * scale);
  frame_diff (in, &in_info, out, &o_info, scale, maxd);
  gst_buffer_unref (in);
  gst_buffer_unref (out);
}

const GstVideoFormat gst_fixture_formats[] = {
  GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR, GST_VIDEO_FORMAT_RGBx,
  GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_xBGR,
  GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_I420,
  GST_VIDEO_FORMAT_NV12,
};


void
check_tolerance (GstVideoFormat fmt, const gint maxd[4], const gchar * what)
{
  gboolean yuv = fmt == GST_VIDEO_FORMAT_I420 || fmt == GST_VIDEO_FORMAT_NV12;
  GST_INFO ("%s %s: max diff %d %d %d %d", what, gst_video_format_to_string (fmt),
      maxd[0], maxd[1], maxd[2], maxd[3]);
  for (int c = 0; c < 4; c++) {
    gint tol = !yuv ? TOL_RGB : c == 0 ? TOL_LUMA : TOL_CHROMA;
    fail_unless (maxd[c] <= tol, "%s %s: component %d differs by %d (tolerance %d)",
        what, gst_video_format_to_string (fmt), c, maxd[c], tol);
  }
}

/* Runs a launch line until EOS or ERROR (or the state change fails); returns the last
 * message (EOS or ERROR; NULL on timeout) and counts buffers reaching "sink". */
static gboolean
count_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  g_atomic_int_inc ((gint *) data);
  return GST_PAD_PROBE_OK;
}

GstMessage *
run_pipeline (const gchar * desc, gint * n_buffers, GstCaps ** sink_caps)
{
  GError *e = NULL;
  GstElement *p = gst_parse_launch (desc, &e);
  fail_unless (p != NULL, "parse %s: %s", desc, e ? e->message : "");
  if (e)
    GST_INFO ("parse %s: %s", desc, e->message);
  g_clear_error (&e);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (p), "sink");
  gint count = 0;
  if (sink) {
    GstPad *pad = gst_element_get_static_pad (sink, "sink");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
        (GstPadProbeCallback) count_buffer, &count, NULL);
    gst_object_unref (pad);
  }
  gst_element_set_state (p, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus (p);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (sink_caps && sink) {
    GstPad *pad = gst_element_get_static_pad (sink, "sink");
    *sink_caps = gst_pad_get_current_caps (pad);
    gst_object_unref (pad);
  }
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (bus);
  if (sink)
    gst_object_unref (sink);
  gst_object_unref (p);
  if (n_buffers)
    *n_buffers = count;
  return msg;
}

void
expect_eos (const gchar * desc, gint want_buffers)
{
  gint n = 0;
  GstMessage *msg = run_pipeline (desc, &n, NULL);
  fail_unless (msg != NULL, "%s: timed out", desc);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *e;
    gchar *dbg;
    gst_message_parse_error (msg, &e, &dbg);
    fail ("%s: error %s (%s)", desc, e->message, dbg);
  }
  if (want_buffers >= 0)
    fail_unless_equals_int (n, want_buffers);
  gst_message_unref (msg);
}

int
gst_fixtures_run (int argc, char **argv, Suite * (*suite) (void), const char *name)
{
  model_dir = g_dir_make_tmp ("nf-gst-test-XXXXXX", NULL);
  g_assert (model_dir != NULL);
  g_setenv ("NEURALFILTER_MODEL_PATH", model_dir, TRUE);
  make_models ();

  gst_check_init (&argc, &argv);
  GstPluginFeature *f = gst_registry_lookup_feature (gst_registry_get (), "neuralstyle");
  if (f)
    gst_object_unref (f);
  else {
    g_printerr ("the neuralfilter plugin was not found: set GST_PLUGIN_PATH_1_0 to "
        "the build's gst/ folder (meson test does)\n");
    nf_test_rm_tree (model_dir);
    return 1;
  }
  int failed = gst_check_run_suite (suite (), name, __FILE__);
  nf_test_rm_tree (model_dir);
  return failed ? 1 : 0;
}
