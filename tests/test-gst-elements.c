/* test-gst-elements.c — the neuralstyle and superres elements' formats and caps, through
 * GstHarness and gst_parse_launch, with the plugin loaded from the build tree
 * (GST_PLUGIN_PATH_1_0) and the models of gst-element-fixtures.c.
 *
 * Checks: superres caps both ways (fixed, ranges, lists, odd sizes, x2 and x4) and
 * fixation; every format with and without padded strides, at odd sizes, through the
 * identity (within 1 LSB for RGB formats; YUV within a stated chroma tolerance) and
 * the x2/x4 upscalers; size changes mid-stream; superres negotiation in pipelines; 20
 * NULL->PLAYING->NULL cycles.
 * Does not: check network arithmetic (inference tests do), the CUDA path, or changes
 * while playing and bad input (test-gst-changes.c).
 */
#include <math.h>
#include <string.h>

#include "gst-element-fixtures.h"

/* ---- tests ------------------------------------------------------------------------- */

GST_START_TEST (test_formats_identity)
{
  const gint sizes[][2] = { {37, 29}, {64, 48}, {1, 1}, {2, 3}, {7, 5} };
  gint worst[2][4] = { {0} };

  for (guint fi = 0; fi < N_FORMATS; fi++) {
    GstHarness *h = harness_new ("neuralstyle", m_identity4);
    for (guint si = 0; si < G_N_ELEMENTS (sizes); si++)
      for (int padded = 0; padded < 2; padded++) {
        gint maxd[4];
        push_check (h, gst_fixture_formats[fi], sizes[si][0], sizes[si][1], 1, padded, maxd);
        gchar *what = g_strdup_printf ("identity %dx%d%s", sizes[si][0], sizes[si][1],
            padded ? " padded" : "");
        check_tolerance (gst_fixture_formats[fi], maxd, what);
        g_free (what);
        gboolean yuv = fi >= 8;
        for (int c = 0; c < 4; c++)
          worst[yuv][c] = MAX (worst[yuv][c], maxd[c]);
      }
    gst_harness_teardown (h);
  }
  g_print ("identity round trip, largest differences: RGB formats %d %d %d %d, "
      "YUV formats Y %d U %d V %d\n", worst[0][0], worst[0][1], worst[0][2],
      worst[0][3], worst[1][0], worst[1][1], worst[1][2]);
}

GST_END_TEST;

GST_START_TEST (test_formats_superres)
{
  for (guint fi = 0; fi < N_FORMATS; fi++) {
    for (int s = 2; s <= 4; s += 2) {
      GstHarness *h = harness_new ("superres", s == 2 ? m_sr2 : m_sr4);
      gint maxd[4];
      push_check (h, gst_fixture_formats[fi], 33, 17, s, FALSE, maxd);
      check_tolerance (gst_fixture_formats[fi], maxd, s == 2 ? "x2 33x17" : "x4 33x17");
      push_check (h, gst_fixture_formats[fi], 9, 7, s, TRUE, maxd);
      check_tolerance (gst_fixture_formats[fi], maxd, s == 2 ? "x2 9x7 padded" : "x4 9x7 padded");
      gst_harness_teardown (h);
    }
  }
}

GST_END_TEST;

GST_START_TEST (test_size_change)
{
  const gint sizes[][2] = { {32, 24}, {45, 31}, {16, 16}, {3, 9}, {32, 24} };
  GstHarness *h = harness_new ("neuralstyle", m_identity4);
  for (guint si = 0; si < G_N_ELEMENTS (sizes); si++) {
    gint maxd[4];
    push_check (h, GST_VIDEO_FORMAT_BGRx, sizes[si][0], sizes[si][1], 1, FALSE, maxd);
    check_tolerance (GST_VIDEO_FORMAT_BGRx, maxd, "size change");
    push_check (h, GST_VIDEO_FORMAT_BGRx, sizes[si][0], sizes[si][1], 1, FALSE, maxd);
  }
  gst_harness_teardown (h);

  h = harness_new ("superres", m_sr2);
  for (guint si = 0; si < G_N_ELEMENTS (sizes); si++) {
    gint maxd[4];
    push_check (h, GST_VIDEO_FORMAT_I420, sizes[si][0], sizes[si][1], 2, FALSE, maxd);
    check_tolerance (GST_VIDEO_FORMAT_I420, maxd, "superres size change");
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* transform_caps of superres called directly, at READY (the model is loaded). */
static GstCaps *
sr_transform (GstElement * e, GstPadDirection dir, const gchar * caps_str)
{
  GstBaseTransformClass *k = GST_BASE_TRANSFORM_GET_CLASS (e);
  GstCaps *caps = gst_caps_from_string (caps_str);
  GstCaps *ret = k->transform_caps (GST_BASE_TRANSFORM (e), dir, caps, NULL);
  gst_caps_unref (caps);
  return ret;
}

static void
expect_caps (GstCaps * got, const gchar * want_str)
{
  GstCaps *want = gst_caps_from_string (want_str);
  gchar *g = gst_caps_to_string (got);
  fail_unless (gst_caps_is_equal (got, want), "got %s, want %s", g, want_str);
  g_free (g);
  gst_caps_unref (want);
  gst_caps_unref (got);
}

GST_START_TEST (test_superres_caps)
{
  GstElement *e = gst_element_factory_make ("superres", NULL);
  g_object_set (e, "model", m_sr2, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);

  /* fixed sizes, both ways; par and framerate kept */
  expect_caps (sr_transform (e, GST_PAD_SINK, "video/x-raw,format=RGB,width=64,"
          "height=48,pixel-aspect-ratio=4/3,framerate=25/1"),
      "video/x-raw,format=RGB,width=128,height=96,pixel-aspect-ratio=4/3,framerate=25/1");
  expect_caps (sr_transform (e, GST_PAD_SRC, "video/x-raw,format=RGB,width=128,"
          "height=96,pixel-aspect-ratio=4/3,framerate=25/1"),
      "video/x-raw,format=RGB,width=64,height=48,pixel-aspect-ratio=4/3,framerate=25/1");
  /* odd: 33x17 -> 66x34; 67 wide cannot come from x2 */
  expect_caps (sr_transform (e, GST_PAD_SINK, "video/x-raw,width=33,height=17"),
      "video/x-raw,width=66,height=34");
  expect_caps (sr_transform (e, GST_PAD_SRC, "video/x-raw,width=67,height=34"),
      "EMPTY");
  /* ranges */
  expect_caps (sr_transform (e, GST_PAD_SINK, "video/x-raw,width=[1,100],height=[3,5]"),
      "video/x-raw,width=[2,200,2],height=[6,10,2]");
  expect_caps (sr_transform (e, GST_PAD_SRC, "video/x-raw,width=[10,101],height=[3,5]"),
      "video/x-raw,width=[5,50],height=2");
  /* lists, with values that do not divide dropped */
  expect_caps (sr_transform (e, GST_PAD_SINK, "video/x-raw,width={33,64},height=10"),
      "video/x-raw,width={66,128},height=20");
  expect_caps (sr_transform (e, GST_PAD_SRC, "video/x-raw,width={66,67,100},"
          "height={9,10}"), "video/x-raw,width={33,50},height=5");
  /* a structure that cannot work is dropped, others kept */
  expect_caps (sr_transform (e, GST_PAD_SRC, "video/x-raw,width=3,height=4; "
          "video/x-raw,width=4,height=4"), "video/x-raw,width=2,height=2");
  /* the template */
  GstCaps *t = sr_transform (e, GST_PAD_SINK, "video/x-raw,width=[1,2147483647],"
      "height=[1,2147483647]");
  fail_if (gst_caps_is_empty (t));
  gst_caps_unref (t);

  /* fixate picks the exact multiple */
  {
    GstBaseTransformClass *k = GST_BASE_TRANSFORM_GET_CLASS (e);
    GstCaps *in = gst_caps_from_string ("video/x-raw,format=RGB,width=33,height=17,"
        "framerate=30/1");
    GstCaps *other = gst_caps_from_string ("video/x-raw,format=RGB,width=[2,1000,2],"
        "height=[2,1000,2],framerate=30/1");
    GstCaps *fixed = k->fixate_caps (GST_BASE_TRANSFORM (e), GST_PAD_SINK, in, other);
    expect_caps (fixed, "video/x-raw,format=RGB,width=66,height=34,framerate=30/1");
    gst_caps_unref (in);
    in = gst_caps_from_string ("video/x-raw,format=RGB,width=66,height=34,"
        "framerate=30/1");
    other = gst_caps_from_string ("video/x-raw,format=RGB,width=[1,500],"
        "height=[1,500],framerate=30/1");
    fixed = k->fixate_caps (GST_BASE_TRANSFORM (e), GST_PAD_SRC, in, other);
    expect_caps (fixed, "video/x-raw,format=RGB,width=33,height=17,framerate=30/1");
    gst_caps_unref (in);
  }

  /* x4: switch model in READY, restart */
  gst_element_set_state (e, GST_STATE_NULL);
  g_object_set (e, "model", m_sr4, NULL);
  gst_element_set_state (e, GST_STATE_READY);
  expect_caps (sr_transform (e, GST_PAD_SINK, "video/x-raw,width=33,height=[1,10]"),
      "video/x-raw,width=132,height=[4,40,4]");
  expect_caps (sr_transform (e, GST_PAD_SRC, "video/x-raw,width=[10,101],"
          "height={8,10,12,16}"), "video/x-raw,width=[3,25],height={2,3,4}");
  expect_caps (sr_transform (e, GST_PAD_SRC, "video/x-raw,width=[2,22,2],height=8"),
      "video/x-raw,width=[1,5],height=2");
  expect_caps (sr_transform (e, GST_PAD_SRC, "video/x-raw,width=[6,30,6],height=8"),
      "video/x-raw,width=[3,6,3],height=2");
  gst_element_set_state (e, GST_STATE_NULL);
  gst_object_unref (e);
}

GST_END_TEST;

GST_START_TEST (test_superres_negotiation)
{
  GstCaps *caps = NULL;
  GstMessage *msg;
  gchar *desc;

  /* downstream fixes the output size: upstream must produce half of it */
  desc = g_strdup_printf ("videotestsrc num-buffers=2 ! video/x-raw,format=RGBx ! "
      "superres model=%s name=sr ! video/x-raw,width=130,height=98 ! "
      "fakesink name=sink", m_sr2);
  msg = run_pipeline (desc, NULL, &caps);
  g_free (desc);
  fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
  gst_message_unref (msg);
  {
    GstStructure *st = gst_caps_get_structure (caps, 0);
    gint w = 0, h = 0;
    gst_structure_get_int (st, "width", &w);
    gst_structure_get_int (st, "height", &h);
    fail_unless_equals_int (w, 130);
    fail_unless_equals_int (h, 98);
    gst_caps_unref (caps);
  }

  /* by name from NEURALFILTER_MODEL_PATH, upstream fixed, odd, x4 */
  expect_eos ("videotestsrc num-buffers=3 ! video/x-raw,format=I420,width=17,"
      "height=9 ! superres model=sr4 ! video/x-raw,width=68,height=36 ! "
      "fakesink name=sink", 3);
  /* an output size that is not a multiple cannot negotiate: an error, no crash */
  desc = g_strdup_printf ("videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48"
      " ! superres model=%s ! video/x-raw,width=100,height=100 ! fakesink", m_sr2);
  msg = run_pipeline (desc, NULL, NULL);
  g_free (desc);
  fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR);
  gst_message_unref (msg);
}

GST_END_TEST;

GST_START_TEST (test_state_cycling)
{
  gchar *desc = g_strdup_printf ("videotestsrc is-live=false ! video/x-raw,width=32,"
      "height=24 ! neuralstyle model=%s ! superres model=%s ! fakesink", m_identity,
      m_sr2);
  GstElement *p = gst_parse_launch (desc, NULL);
  g_free (desc);
  fail_unless (p != NULL);
  for (int i = 0; i < 20; i++) {
    fail_if (gst_element_set_state (p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE);
    fail_unless_equals_int (gst_element_get_state (p, NULL, NULL, 10 * GST_SECOND),
        GST_STATE_CHANGE_SUCCESS);
    if (i % 2)
      g_usleep (20000);
    fail_unless_equals_int (gst_element_set_state (p, i % 3 ? GST_STATE_NULL :
            GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  }
  gst_element_set_state (p, GST_STATE_NULL);
  GstBus *bus = gst_element_get_bus (p);
  GstMessage *err = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (err == NULL);
  gst_object_unref (bus);
  gst_object_unref (p);
}

GST_END_TEST;

static Suite *
neuralfilter_suite (void)
{
  Suite *s = suite_create ("neuralfilter");
  TCase *tc = tcase_create ("elements");

  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_superres_caps);
  tcase_add_test (tc, test_formats_identity);
  tcase_add_test (tc, test_formats_superres);
  tcase_add_test (tc, test_size_change);
  tcase_add_test (tc, test_superres_negotiation);
  tcase_add_test (tc, test_state_cycling);
  return s;
}

int
main (int argc, char **argv)
{
  return gst_fixtures_run (argc, argv, neuralfilter_suite, "neuralfilter");
}
