/* test-gst-superres-auto.c — superres without a model property: the caps choose the
 * scale and the shipped model of that scale (issue 19), through GstHarness and one
 * gst_parse_launch pipeline, with the plugin loaded from the build tree.
 *
 * Models are made here, in a temporary folder that becomes NEURALFILTER_MODEL_PATH:
 * nearest-neighbour upscalers (a 1x1 conv replicating channels + pixel shuffle) whose
 * bias marks each one, so the output of a grey frame says which model ran:
 * sr-video-x2 (+10 levels), sr-subpixel-x2 (+20), sr-subpixel-x3 (+30),
 * sr-subpixel-x4 (+40); a second folder holds sr-subpixel-x2 only, a third sr-video-x2
 * and sr-light-x2 (+5).
 * Checks: 640x360 with 1280x720 downstream picks x2 and prefers sr-video-x2 over
 * sr-subpixel-x2; 1920x1080 picks sr-subpixel-x3 (no sr-video-x3), 2560x1440
 * sr-subpixel-x4; a free output size picks x2, and the scale stays x2 when the input
 * size changes; a free source with 1280x720 downstream is given 640x360; an explicit
 * model property still decides; an output size that is not 2, 3 or 4 times the input
 * is a negotiation error that says so; a scale without a model is an error naming the
 * models looked for; with device=cpu, sr-light-x2 is preferred to sr-video-x2.
 * Does not: check network arithmetic or the caps of a set model (test-gst-elements).
 */
#include <string.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "nf-graph.h"
#include "nf-model.h"
#include "nf-test-tree.h"

static gchar *model_dir, *x2_only_dir, *light_dir;

/* ---- models ----------------------------------------------------------------------- */

/* Nearest-neighbour x s in the 0..1 range, plus mark/255. */
static void
save_upscaler (const gchar * dir, const gchar * name, gint s, gint mark)
{
  GError *e = NULL;
  gchar *json = g_strdup_printf ("{\"input\":\"x\",\"output\":\"y\",\"ops\":["
      "{\"op\":\"conv2d\",\"name\":\"rep\",\"in\":\"x\",\"out\":\"r\",\"k\":1,"
      "\"cin\":3,\"cout\":%d},"
      "{\"op\":\"pixel_shuffle\",\"in\":\"r\",\"out\":\"y\",\"factor\":%d}]}", 3 * s * s, s);
  NfGraph *g = nf_graph_from_json (json, &e);
  g_free (json);
  if (!g)
    g_error ("graph: %s", e->message);
  NfModel *m = nf_model_new_for_graph (g, NF_TASK_SUPERRES, s, &e);
  nf_graph_free (g);
  if (!m)
    g_error ("model: %s", e->message);
  float *w = nf_model_tensor (m, "rep.weight")->data;     /* (3 s s, 3, 1, 1) */
  float *b = nf_model_tensor (m, "rep.bias")->data;       /* (3 s s) */
  for (gint c = 0; c < 3; c++)
    for (gint k = 0; k < s * s; k++) {
      w[(c * s * s + k) * 3 + c] = 1.0f;
      b[c * s * s + k] = mark / 255.0f;
    }
  m->in_lo = m->out_lo = 0.0f;
  m->in_hi = m->out_hi = 1.0f;
  nf_model_bind (m, NULL);
  gchar *path = g_strdup_printf ("%s/%s.safetensors", dir, name);
  if (!nf_model_save (m, path, NF_DTYPE_F32, &e))
    g_error ("saving %s: %s", path, e->message);
  g_free (path);
  nf_model_free (m);
}

static void
make_models (void)
{
  save_upscaler (model_dir, "sr-video-x2", 2, 10);
  save_upscaler (model_dir, "sr-subpixel-x2", 2, 20);
  save_upscaler (model_dir, "sr-subpixel-x3", 3, 30);
  save_upscaler (model_dir, "sr-subpixel-x4", 4, 40);
  save_upscaler (x2_only_dir, "sr-subpixel-x2", 2, 20);
  save_upscaler (light_dir, "sr-video-x2", 2, 10);
  save_upscaler (light_dir, "sr-light-x2", 2, 5);
}

/* ---- the harness -------------------------------------------------------------------- */

/* superres (model: NULL for none) in a harness whose element posts on bus. */
static GstHarness *
harness_new (const gchar * model, GstBus ** bus)
{
  GstElement *e = gst_element_factory_make ("superres", NULL);
  fail_unless (e != NULL);
  if (model)
    g_object_set (e, "model", model, NULL);
  *bus = gst_bus_new ();
  gst_element_set_bus (e, *bus);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  return h;
}

static void
harness_free (GstHarness * h, GstBus * bus)
{
  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

/* A grey RGBx frame (every byte 100). */
static GstBuffer *
grey_frame (gint w, gint h)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, (gsize) w * h * 4, NULL);
  gst_buffer_memset (buf, 0, 100, (gsize) w * h * 4);
  return buf;
}

static void
set_input (GstHarness * h, gint w, gint h_)
{
  gchar *caps = g_strdup_printf ("video/x-raw,format=RGBx,width=%d,height=%d,"
      "framerate=30/1", w, h_);
  gst_harness_set_src_caps_str (h, caps);
  g_free (caps);
}

/* Pushes a grey w x h frame; the output must be ow x oh with every colour byte
 * 100 + mark (the model that ran). */
static void
expect_output (GstHarness * h, gint w, gint h_, gint ow, gint oh, gint mark)
{
  GstBuffer *out = gst_harness_push_and_pull (h, grey_frame (w, h_));
  fail_unless (out != NULL, "no output for %dx%d", w, h_);
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  GstVideoInfo info;
  fail_unless (caps && gst_video_info_from_caps (&info, caps));
  gst_caps_unref (caps);
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&info), ow);
  fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&info), oh);
  GstMapInfo map;
  fail_unless (gst_buffer_map (out, &map, GST_MAP_READ));
  gint stride = GST_VIDEO_INFO_PLANE_STRIDE (&info, 0), worst = 0;
  for (gint i = 0; i < oh; i++)
    for (gint j = 0; j < ow; j++)
      for (gint c = 0; c < 3; c++)
        worst = MAX (worst, ABS ((gint) map.data[(gsize) i * stride + j * 4 + c]
                - (100 + mark)));
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  fail_unless (worst <= 1, "%dx%d -> %dx%d: output differs by %d from the model "
      "marked +%d", w, h_, ow, oh, worst, mark);
}

/* The bus holds an ERROR of domain/code whose message contains each of want. */
static void
expect_bus_error (GstBus * bus, GQuark domain, gint code, const gchar * const *want)
{
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error message");
  GError *e;
  gchar *dbg;
  gst_message_parse_error (msg, &e, &dbg);
  GST_INFO ("error: %s", e->message);
  fail_unless (g_error_matches (e, domain, code), "error %s %d: %s",
      g_quark_to_string (e->domain), e->code, e->message);
  for (guint i = 0; want[i]; i++)
    fail_unless (strstr (e->message, want[i]) != NULL, "\"%s\" lacks \"%s\"", e->message,
        want[i]);
  g_error_free (e);
  g_free (dbg);
  gst_message_unref (msg);
}

/* ---- tests -------------------------------------------------------------------------- */

static void
check_scale (const gchar * sink_caps, gint ow, gint oh, gint mark)
{
  GstBus *bus;
  GstHarness *h = harness_new (NULL, &bus);
  gst_harness_set_sink_caps_str (h, sink_caps);
  set_input (h, 640, 360);
  expect_output (h, 640, 360, ow, oh, mark);
  fail_if (gst_bus_have_pending (bus) && gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR),
      "an error for %s", sink_caps);
  harness_free (h, bus);
}

GST_START_TEST (test_caps_pick_the_scale)
{
  check_scale ("video/x-raw,width=1280,height=720", 1280, 720, 10);     /* sr-video-x2 */
  check_scale ("video/x-raw,width=1920,height=1080", 1920, 1080, 30);   /* sr-subpixel-x3 */
  check_scale ("video/x-raw,width=2560,height=1440", 2560, 1440, 40);   /* sr-subpixel-x4 */
}

GST_END_TEST;

GST_START_TEST (test_free_output_is_x2)
{
  GstBus *bus;
  GstHarness *h = harness_new (NULL, &bus);
  set_input (h, 640, 360);
  expect_output (h, 640, 360, 1280, 720, 10);
  /* the scale stays once chosen: a new input size is upscaled x2 by the same model */
  set_input (h, 320, 240);
  expect_output (h, 320, 240, 640, 480, 10);
  harness_free (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_free_source)
{
  /* the source's size is free: it is asked for half of the output size (x2) */
  GstElement *p = gst_parse_launch ("videotestsrc num-buffers=2 ! video/x-raw,format=RGBx"
      " ! superres name=sr ! video/x-raw,width=1280,height=720 ! fakesink", NULL);
  fail_unless (p != NULL);
  fail_unless (gst_element_set_state (p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  GstBus *bus = gst_element_get_bus (p);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS, "the pipeline failed");
  gst_message_unref (msg);
  GstElement *sr = gst_bin_get_by_name (GST_BIN (p), "sr");
  GstPad *pad = gst_element_get_static_pad (sr, "sink");
  GstCaps *caps = gst_pad_get_current_caps (pad);
  GstStructure *st = gst_caps_get_structure (caps, 0);
  gint w = 0, h = 0;
  gst_structure_get_int (st, "width", &w);
  gst_structure_get_int (st, "height", &h);
  fail_unless (w == 640 && h == 360, "the source was given %dx%d", w, h);
  gst_caps_unref (caps);
  gst_object_unref (pad);
  gst_object_unref (sr);
  gst_object_unref (bus);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
}

GST_END_TEST;

GST_START_TEST (test_model_property_decides)
{
  GstBus *bus;
  GstHarness *h = harness_new ("sr-subpixel-x4", &bus);
  set_input (h, 64, 36);
  expect_output (h, 64, 36, 256, 144, 40);
  harness_free (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_no_scale_fits)
{
  GstBus *bus;
  GstHarness *h = harness_new (NULL, &bus);
  gst_harness_set_sink_caps_str (h, "video/x-raw,width=1000,height=700");
  set_input (h, 640, 360);
  fail_unless_equals_int (gst_harness_push (h, grey_frame (640, 360)),
      GST_FLOW_NOT_NEGOTIATED);
  const gchar *want[] = { "1000x700", "640x360", "not 2, 3 or 4 times", NULL };
  expect_bus_error (bus, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION, want);
  harness_free (h, bus);

  /* 2x wide, 3x high */
  h = harness_new (NULL, &bus);
  gst_harness_set_sink_caps_str (h, "video/x-raw,width=1280,height=1080");
  set_input (h, 640, 360);
  fail_unless_equals_int (gst_harness_push (h, grey_frame (640, 360)),
      GST_FLOW_NOT_NEGOTIATED);
  const gchar *want2[] = { "1280x1080", "not 2, 3 or 4 times", NULL };
  expect_bus_error (bus, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION, want2);
  harness_free (h, bus);
}

GST_END_TEST;

/* On the CPU the real-time sr-light model of the scale comes first. */
GST_START_TEST (test_cpu_prefers_light)
{
  g_setenv ("NEURALFILTER_MODEL_PATH", light_dir, TRUE);
  GstBus *bus;
  GstHarness *h = harness_new (NULL, &bus);
  gst_util_set_object_arg (G_OBJECT (h->element), "device", "cpu");
  gst_harness_set_sink_caps_str (h, "video/x-raw,width=1280,height=720");
  set_input (h, 640, 360);
  expect_output (h, 640, 360, 1280, 720, 5);    /* sr-light-x2, not sr-video-x2 */
  harness_free (h, bus);
  g_setenv ("NEURALFILTER_MODEL_PATH", model_dir, TRUE);
}

GST_END_TEST;

GST_START_TEST (test_no_model_for_the_scale)
{
  gchar *installed = g_build_filename (NF_WEIGHTS_DIR, "sr-subpixel-x3.safetensors", NULL);
  gchar *installed_video = g_build_filename (NF_WEIGHTS_DIR, "sr-video-x3.safetensors",
      NULL);
  gboolean have = g_file_test (installed, G_FILE_TEST_EXISTS)
      || g_file_test (installed_video, G_FILE_TEST_EXISTS);
  g_free (installed);
  g_free (installed_video);
  if (have) {
    GST_WARNING ("an x3 model is installed in " NF_WEIGHTS_DIR ": not checked");
    return;
  }
  g_setenv ("NEURALFILTER_MODEL_PATH", x2_only_dir, TRUE);
  GstBus *bus;
  GstHarness *h = harness_new (NULL, &bus);
  gst_harness_set_sink_caps_str (h, "video/x-raw,width=1920,height=1080");
  set_input (h, 640, 360);
  fail_unless_equals_int (gst_harness_push (h, grey_frame (640, 360)),
      GST_FLOW_NOT_NEGOTIATED);
  const gchar *want[] = { "x3", "sr-video-x3, sr-subpixel-x3", x2_only_dir, NULL };
  expect_bus_error (bus, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, want);
  harness_free (h, bus);
  g_setenv ("NEURALFILTER_MODEL_PATH", model_dir, TRUE);
}

GST_END_TEST;

static Suite *
superres_auto_suite (void)
{
  Suite *s = suite_create ("superres-auto");
  TCase *tc = tcase_create ("auto");

  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_caps_pick_the_scale);
  tcase_add_test (tc, test_free_output_is_x2);
  tcase_add_test (tc, test_free_source);
  tcase_add_test (tc, test_model_property_decides);
  tcase_add_test (tc, test_no_scale_fits);
  tcase_add_test (tc, test_no_model_for_the_scale);
  tcase_add_test (tc, test_cpu_prefers_light);
  return s;
}

int
main (int argc, char **argv)
{
  model_dir = g_dir_make_tmp ("nf-gst-auto-XXXXXX", NULL);
  x2_only_dir = g_dir_make_tmp ("nf-gst-auto-x2-XXXXXX", NULL);
  light_dir = g_dir_make_tmp ("nf-gst-auto-light-XXXXXX", NULL);
  g_assert (model_dir && x2_only_dir && light_dir);
  g_setenv ("NEURALFILTER_MODEL_PATH", model_dir, TRUE);
  make_models ();

  gst_check_init (&argc, &argv);
  GstPluginFeature *f = gst_registry_lookup_feature (gst_registry_get (), "superres");
  int failed = 1;
  if (f) {
    gst_object_unref (f);
    failed = gst_check_run_suite (superres_auto_suite (), "superres-auto", __FILE__);
  } else {
    g_printerr ("the neuralfilter plugin was not found: set GST_PLUGIN_PATH_1_0 to "
        "the build's gst/ folder (meson test does)\n");
  }
  nf_test_rm_tree (model_dir);
  nf_test_rm_tree (x2_only_dir);
  nf_test_rm_tree (light_dir);
  return failed ? 1 : 0;
}
