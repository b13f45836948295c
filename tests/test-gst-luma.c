/* test-gst-luma.c — superres's luma path: I420/NV12 frames through a luma-only network
 * (sr-light-y) on the Y plane alone, and the colorimetry it keeps.
 *
 * Checks:
 *   - a luma-only x2 network whose learned weights are all zero (it is then nearest
 *     upsampling): on I420 and NV12, odd sizes, padded strides, the output Y plane is
 *     the nearest-upsampled input exactly and each chroma plane the bilinear upscale
 *     of the input's (a float reference here, within 1 LSB), which differs from the
 *     nearest one (so the luma path ran); with NEURALFILTER_LUMA=0 the same frames go
 *     through RGB and come back nearest-upsampled within 1 LSB;
 *   - a seeded luma-only network: the luma path's Y plane is the RGB path's within
 *     1 LSB (the same network either way);
 *   - an upscale keeps its input's colorimetry: 640x360 I420 without colorimetry in the
 *     caps comes out 1280x720 bt601 (GStreamer's default for 720 lines is bt709), and
 *     a downstream that asks for bt709 still gets it.
 * Does not: time anything (gst/live-bench.sh), or the GPU (its frames go through RGB).
 */
#include <math.h>
#include <string.h>

#include "gst-element-fixtures.h"

/* frame (fmt, w x h) through superres with model: the output, its info in *oi. */
static GstBuffer *
upscale (const gchar * model, GstVideoFormat fmt, gint w, gint h, gboolean padded,
    GstBuffer ** in, GstVideoInfo * ii, GstVideoInfo * oi)
{
  GstHarness *hr = harness_new ("superres", model);
  gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
      "framerate=30/1", gst_video_format_to_string (fmt), w, h);
  gst_harness_set_src_caps_str (hr, caps);
  info_from_caps_str (ii, caps);
  g_free (caps);
  *in = frame_new (fmt, w, h, w * 1000 + h, padded);
  GstBuffer *out = gst_harness_push_and_pull (hr, gst_buffer_ref (*in));
  fail_unless (out != NULL, "no output for %s %dx%d", gst_video_format_to_string (fmt), w, h);
  out_info (hr, oi);
  gst_harness_teardown (hr);
  return out;
}

/* The bilinear upscale by s of component c of fi at output sample (x, y), rounded. */
static gint
bilinear (GstVideoFrame * fi, guint c, gint s, gint x, gint y)
{
  const guint8 *d = GST_VIDEO_FRAME_COMP_DATA (fi, c);
  gint st = GST_VIDEO_FRAME_COMP_STRIDE (fi, c), ps = GST_VIDEO_FRAME_COMP_PSTRIDE (fi, c);
  gint w = GST_VIDEO_FRAME_COMP_WIDTH (fi, c), h = GST_VIDEO_FRAME_COMP_HEIGHT (fi, c);
  gdouble sx = (x + 0.5) / s - 0.5, sy = (y + 0.5) / s - 0.5;
  gint x0 = (gint) floor (sx), y0 = (gint) floor (sy);
  gdouble fx = sx - x0, fy = sy - y0;
#define AT(i, j) d[(gsize) CLAMP (j, 0, h - 1) * st + (gsize) CLAMP (i, 0, w - 1) * ps]
  gdouble v = (1 - fy) * ((1 - fx) * AT (x0, y0) + fx * AT (x0 + 1, y0))
      + fy * ((1 - fx) * AT (x0, y0 + 1) + fx * AT (x0 + 1, y0 + 1));
#undef AT
  return (gint) floor (v + 0.5);
}

/* Largest |out - bilinear (in)| of each chroma component (1, 2) into maxd. */
static void
chroma_vs_bilinear (GstBuffer * in, GstVideoInfo * ii, GstBuffer * out, GstVideoInfo * oi,
    gint s, gint maxd[3])
{
  GstVideoFrame fi, fo;
  fail_unless (gst_video_frame_map (&fi, ii, in, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&fo, oi, out, GST_MAP_READ));
  for (guint c = 1; c <= 2; c++) {
    const guint8 *d = GST_VIDEO_FRAME_COMP_DATA (&fo, c);
    gint st = GST_VIDEO_FRAME_COMP_STRIDE (&fo, c), ps = GST_VIDEO_FRAME_COMP_PSTRIDE (&fo, c);
    maxd[c] = 0;
    for (gint y = 0; y < GST_VIDEO_FRAME_COMP_HEIGHT (&fo, c); y++)
      for (gint x = 0; x < GST_VIDEO_FRAME_COMP_WIDTH (&fo, c); x++)
        maxd[c] = MAX (maxd[c], abs (d[(gsize) y * st + (gsize) x * ps]
                - bilinear (&fi, c, s, x, y)));
  }
  gst_video_frame_unmap (&fi);
  gst_video_frame_unmap (&fo);
}

GST_START_TEST (test_luma_path_exact)
{
  const GstVideoFormat fmts[] = { GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12 };
  const gint sizes[][3] = { {33, 17, 0}, {9, 7, 1}, {64, 36, 0} };
  for (guint f = 0; f < G_N_ELEMENTS (fmts); f++)
    for (guint k = 0; k < G_N_ELEMENTS (sizes); k++) {
      const gchar *fs = gst_video_format_to_string (fmts[f]);
      GstVideoInfo ii, oi;
      GstBuffer *in, *out;
      gint near[4], bil[3];

      out = upscale (m_sry, fmts[f], sizes[k][0], sizes[k][1], sizes[k][2], &in, &ii, &oi);
      frame_diff (in, &ii, out, &oi, 2, near);
      chroma_vs_bilinear (in, &ii, out, &oi, 2, bil);
      GST_INFO ("luma path %s %dx%d: Y vs nearest %d, chroma vs bilinear %d %d, vs "
          "nearest %d %d", fs, sizes[k][0], sizes[k][1], near[0], bil[1], bil[2], near[1],
          near[2]);
      fail_unless (near[0] == 0, "%s: Y differs from nearest by %d", fs, near[0]);
      fail_unless (bil[1] <= 1 && bil[2] <= 1, "%s: chroma differs from bilinear by %d %d",
          fs, bil[1], bil[2]);
      fail_unless (near[1] > 1 || near[2] > 1, "%s %dx%d: chroma is nearest: not the luma "
          "path", fs, sizes[k][0], sizes[k][1]);
      gst_buffer_unref (in);
      gst_buffer_unref (out);

      g_setenv ("NEURALFILTER_LUMA", "0", TRUE);
      out = upscale (m_sry, fmts[f], sizes[k][0], sizes[k][1], sizes[k][2], &in, &ii, &oi);
      g_unsetenv ("NEURALFILTER_LUMA");
      frame_diff (in, &ii, out, &oi, 2, near);
      check_tolerance (fmts[f], near, "RGB path (NEURALFILTER_LUMA=0)");
      gst_buffer_unref (in);
      gst_buffer_unref (out);
    }
}

GST_END_TEST;

/* Largest |a - b| over the Y planes of two frames of info oi. */
static gint
luma_diff (GstBuffer * a, GstBuffer * b, GstVideoInfo * oi)
{
  GstVideoFrame fa, fb;
  gint worst = 0;
  fail_unless (gst_video_frame_map (&fa, oi, a, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&fb, oi, b, GST_MAP_READ));
  for (gint y = 0; y < GST_VIDEO_INFO_HEIGHT (oi); y++)
    for (gint x = 0; x < GST_VIDEO_INFO_WIDTH (oi); x++) {
      gint va = ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&fa, 0))[y *
          GST_VIDEO_FRAME_PLANE_STRIDE (&fa, 0) + x];
      gint vb = ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&fb, 0))[y *
          GST_VIDEO_FRAME_PLANE_STRIDE (&fb, 0) + x];
      worst = MAX (worst, abs (va - vb));
    }
  gst_video_frame_unmap (&fa);
  gst_video_frame_unmap (&fb);
  return worst;
}

GST_START_TEST (test_luma_path_matches_rgb)
{
  const GstVideoFormat fmts[] = { GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12 };
  for (guint f = 0; f < G_N_ELEMENTS (fmts); f++) {
    GstVideoInfo ii, oi, oi2;
    GstBuffer *in, *in2;
    GstBuffer *luma = upscale (m_sryr, fmts[f], 45, 31, FALSE, &in, &ii, &oi);
    g_setenv ("NEURALFILTER_LUMA", "0", TRUE);
    GstBuffer *rgb = upscale (m_sryr, fmts[f], 45, 31, FALSE, &in2, &ii, &oi2);
    g_unsetenv ("NEURALFILTER_LUMA");
    gint d = luma_diff (luma, rgb, &oi);
    gint near[4];
    frame_diff (in, &ii, luma, &oi, 2, near);
    GST_INFO ("%s: luma path vs RGB path, Y: %d (vs the nearest input %d)",
        gst_video_format_to_string (fmts[f]), d, near[0]);
    fail_unless (d <= 1, "%s: the luma path's Y differs from the RGB path's by %d",
        gst_video_format_to_string (fmts[f]), d);
    fail_unless (near[0] > 1, "the seeded network changes nothing (%d)", near[0]);
    gst_buffer_unref (in);
    gst_buffer_unref (in2);
    gst_buffer_unref (luma);
    gst_buffer_unref (rgb);
  }
}

GST_END_TEST;

/* The colorimetry of the caps at "sink" after a run of desc. */
static gchar *
sink_colorimetry (const gchar * desc)
{
  GstCaps *caps = NULL;
  GstMessage *msg = run_pipeline (desc, NULL, &caps);
  fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS, "%s: no EOS", desc);
  gst_message_unref (msg);
  fail_unless (caps != NULL);
  GstVideoInfo info;
  fail_unless (gst_video_info_from_caps (&info, caps));
  gst_caps_unref (caps);
  return gst_video_colorimetry_to_string (&info.colorimetry);
}

GST_START_TEST (test_colorimetry_kept)
{
  gchar *desc = g_strdup_printf ("videotestsrc num-buffers=2 ! video/x-raw,format=I420,"
      "width=640,height=360 ! superres model=%s ! fakesink name=sink", m_sry);
  gchar *c = sink_colorimetry (desc);
  fail_unless_equals_string (c, "bt601");
  g_free (c);
  g_free (desc);
  desc = g_strdup_printf ("videotestsrc num-buffers=2 ! video/x-raw,format=NV12,"
      "width=640,height=360 ! superres model=%s ! video/x-raw,colorimetry=bt709 ! "
      "fakesink name=sink", m_sry);
  c = sink_colorimetry (desc);
  fail_unless_equals_string (c, "bt709");
  g_free (c);
  g_free (desc);
}

GST_END_TEST;

static Suite *
luma_suite (void)
{
  Suite *s = suite_create ("neuralfilter-luma");
  TCase *tc = tcase_create ("luma");

  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_luma_path_exact);
  tcase_add_test (tc, test_luma_path_matches_rgb);
  tcase_add_test (tc, test_colorimetry_kept);
  return s;
}

int
main (int argc, char **argv)
{
  return gst_fixtures_run (argc, argv, luma_suite, "test-gst-luma");
}
