/* test-gst-live.c — the elements' live behaviour (gstneuralfilter-live.c and
 * gstneuralfilter-output.c), deterministically: a GstHarness on a GstTestClock plays a
 * live source and a sink that syncs to the clock, and NEURALFILTER_TEST_DELAY_MS makes
 * every frame the element makes take exactly 90 ms of that clock (a network slower
 * than the source's 30 frames/s). A helper thread advances the test clock to each wait
 * of the element, so time passes only while a frame is made.
 * Checks:
 *  - late frames are skipped BEFORE processing: a skipped frame costs no clock time, a
 *    made one exactly 90 ms; fewer frames are made than come in; the element's QoS
 *    messages count them (processed/dropped);
 *  - no backlog: once the pipeline knows the element's latency, every frame made
 *    reaches the sink by its display time, and starts being made at most two frame
 *    intervals after its capture;
 *  - the element keeps the network busy: frames made >= 90% of (time / 90 ms);
 *  - the LATENCY query answers upstream's latency + 90 ms + one frame interval (the
 *    processing time, and the longest a frame waits for the previous one), and one
 *    latency message announced it;
 *  - without QoS events from a sink (a transcode), every frame is made;
 *  - real pipelines with the output thread on (live source, syncing sink): frames
 *    arrive in order and EOS after them; a flushing seek and state changes while
 *    frames are in flight end without a hang.
 * Does not: time anything on the real clock (gst/live-bench.sh measures), or check
 * pixels (test-gst-elements does).
 */
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>

#include "nf-graph.h"
#include "nf-model.h"

#define DELAY_MS 90
#define CAPS "video/x-raw,format=RGBx,width=64,height=48,framerate=30/1"

static gchar *model_dir, *m_identity;

/* identity: a 1x1 conv 3->3 (costs next to nothing) */
static void
make_model (void)
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
  for (int c = 0; c < 3; c++)
    w[c * 3 + c] = 1.0f;
  nf_model_bind (m, NULL);
  m_identity = g_build_filename (model_dir, "identity.safetensors", NULL);
  if (!nf_model_save (m, m_identity, NF_DTYPE_F32, &e))
    g_error ("saving %s: %s", m_identity, e->message);
  nf_model_free (m);
}

/* ---- a harness on a test clock --------------------------------------------------- */

typedef struct {
  GstHarness *h;
  GstTestClock *clock;
  GstBus *bus;
  GThread *cranker;
  gint stop;
} Live;

/* Advances the test clock to each wait of the element (its processing delay). */
static gpointer
crank_loop (gpointer data)
{
  Live *l = data;
  while (!g_atomic_int_get (&l->stop)) {
    if (gst_test_clock_timed_wait_for_multiple_pending_ids (l->clock, 1, 20, NULL))
      gst_test_clock_crank (l->clock);
  }
  return NULL;
}

static void
live_start (Live * l, gboolean upstream_live)
{
  g_setenv ("NEURALFILTER_TEST_DELAY_MS", G_STRINGIFY (DELAY_MS), TRUE);
  GstElement *e = gst_element_factory_make ("neuralstyle", NULL);
  fail_unless (e != NULL);
  g_object_set (e, "model", m_identity, NULL);
  l->bus = gst_bus_new ();
  gst_element_set_bus (e, l->bus);
  l->h = gst_harness_new_with_element (e, "sink", "src");       /* starts it */
  gst_object_unref (e);
  g_unsetenv ("NEURALFILTER_TEST_DELAY_MS");
  gst_harness_set_live (l->h, upstream_live);
  gst_harness_set_upstream_latency (l->h, gst_util_uint64_scale_int (GST_SECOND, 1, 30));
  gst_harness_set_src_caps_str (l->h, CAPS);
  l->clock = gst_harness_get_testclock (l->h);
  l->stop = 0;
  l->cranker = g_thread_new ("cranker", crank_loop, l);
}

static void
live_stop (Live * l)
{
  g_atomic_int_set (&l->stop, 1);
  g_thread_join (l->cranker);
  gst_harness_teardown (l->h);
  gst_object_unref (l->clock);
  gst_bus_set_flushing (l->bus, TRUE);
  gst_object_unref (l->bus);
}

/* What a bin does on a latency message: query, then tell the elements. */
static GstClockTime
configure_latency (Live * l)
{
  GstClockTime min = gst_harness_query_latency (l->h);
  fail_unless (GST_CLOCK_TIME_IS_VALID (min));
  fail_unless (gst_harness_push_upstream_event (l->h, gst_event_new_latency (min)));
  return min;
}

static GstBuffer *
frame (guint i, GstClockTime d)
{
  GstBuffer *b = gst_buffer_new_allocate (NULL, 64 * 48 * 4, NULL);
  gst_buffer_memset (b, 0, (guint8) i, 64 * 48 * 4);
  GST_BUFFER_PTS (b) = i * d;
  GST_BUFFER_DURATION (b) = d;
  return b;
}

/* ---- tests ------------------------------------------------------------------------- */

GST_START_TEST (test_live_skips_late_frames)
{
  const GstClockTime d = gst_util_uint64_scale_int (GST_SECOND, 1, 30);
  const GstClockTime delay = DELAY_MS * GST_MSECOND;
  const guint n = 120, steady_from = 10;
  guint made = 0, skipped = 0, made_steady = 0, latency_msgs = 0, qos_msgs = 0;
  guint64 qos_processed = 0, qos_dropped = 0;
  GstClockTime steady_start = GST_CLOCK_TIME_NONE;
  Live l;

  live_start (&l, TRUE);
  GstClockTime latency = configure_latency (&l);
  fail_unless_equals_uint64 (latency, d);       /* nothing measured yet */

  for (guint i = 0; i < n; i++) {
    GstClockTime pts = i * d;
    /* a live source hands a frame over when its capture ends, or at once if late */
    if (gst_clock_get_time (GST_CLOCK (l.clock)) < pts + d)
      gst_test_clock_set_time (l.clock, pts + d);
    GstClockTime before = gst_clock_get_time (GST_CLOCK (l.clock));
    if (i == steady_from)
      steady_start = before;
    fail_unless_equals_int (gst_harness_push (l.h, frame (i, d)), GST_FLOW_OK);
    GstClockTime took = gst_clock_get_time (GST_CLOCK (l.clock)) - before;

    if (took == 0) {
      skipped++;
    } else {
      /* made: it took the delay, and nothing else of the test clock */
      fail_unless_equals_uint64 (took, delay);
      made++;
      GstBuffer *out = gst_harness_pull (l.h);
      fail_unless (out != NULL, "frame %u was made but not pushed", i);
      fail_unless_equals_uint64 (GST_BUFFER_PTS (out), pts);
      gst_buffer_unref (out);
      /* the sink: it shows the frame at pts + latency */
      GstClockTimeDiff jitter = GST_CLOCK_DIFF (pts + latency, before + took);
      if (i >= steady_from) {
        made_steady++;
        fail_unless (jitter <= 0, "frame %u reached the sink %" G_GINT64_FORMAT
            " ns late", i, jitter);
        fail_unless (before - pts <= 2 * d, "frame %u was %" GST_TIME_FORMAT " old when "
            "its processing began", i, GST_TIME_ARGS (before - pts));
      }
      fail_unless (gst_harness_push_upstream_event (l.h, gst_event_new_qos (jitter > 0 ?
                  GST_QOS_TYPE_UNDERFLOW : GST_QOS_TYPE_OVERFLOW, 1.0, jitter, pts)));
    }
    GstMessage *msg;
    while ((msg = gst_bus_pop (l.bus))) {
      if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_LATENCY) {
        latency_msgs++;
        latency = configure_latency (&l);
      } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_QOS) {
        GstFormat fmt;
        qos_msgs++;
        gst_message_parse_qos_stats (msg, &fmt, &qos_processed, &qos_dropped);
        fail_unless_equals_int (fmt, GST_FORMAT_BUFFERS);
      }
      gst_message_unref (msg);
    }
  }
  GstClockTime span = gst_clock_get_time (GST_CLOCK (l.clock)) - steady_start;
  GST_INFO ("%u frames in: %u made (%u steady in %" GST_TIME_FORMAT "), %u skipped",
      n, made, made_steady, GST_TIME_ARGS (span), skipped);

  /* skipped before processing, and counted */
  fail_unless_equals_int (made + skipped, n);
  fail_unless (made < n / 2, "%u of %u frames made at 90 ms per 33 ms frame", made, n);
  fail_unless_equals_int (qos_msgs, skipped);
  fail_unless_equals_uint64 (qos_dropped, skipped);
  fail_unless (qos_processed <= made && qos_processed + 2 >= made);
  /* the network never idles in the steady part */
  fail_unless (made_steady * delay >= span * 9 / 10, "%u frames made in %"
      GST_TIME_FORMAT " at %d ms each", made_steady, GST_TIME_ARGS (span), DELAY_MS);
  /* latency: upstream + processing + one frame interval, announced once */
  fail_unless_equals_uint64 (latency, d + delay + d);
  fail_unless_equals_uint64 (gst_harness_query_latency (l.h), d + delay + d);
  fail_unless_equals_int (latency_msgs, 1);
  live_stop (&l);
}

GST_END_TEST;

/* No sink does QoS (a transcode): every frame is made, pushed in order. */
GST_START_TEST (test_no_qos_no_skipping)
{
  const GstClockTime d = gst_util_uint64_scale_int (GST_SECOND, 1, 30);
  const guint n = 20;
  Live l;

  live_start (&l, FALSE);
  for (guint i = 0; i < n; i++) {
    GstClockTime before = gst_clock_get_time (GST_CLOCK (l.clock));
    fail_unless_equals_int (gst_harness_push (l.h, frame (i, d)), GST_FLOW_OK);
    fail_unless_equals_uint64 (gst_clock_get_time (GST_CLOCK (l.clock)) - before,
        DELAY_MS * GST_MSECOND);
    GstBuffer *out = gst_harness_pull (l.h);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), i * d);
    gst_buffer_unref (out);
  }
  fail_unless_equals_int (gst_harness_buffers_received (l.h), n);
  live_stop (&l);
}

GST_END_TEST;

/* ---- real pipelines with the output thread ------------------------------------------ */

typedef struct {
  gint count;
  GstClockTime last;
  gboolean in_order;
} SinkLog;

static GstPadProbeReturn
log_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  SinkLog *s = data;
  GstClockTime pts = GST_BUFFER_PTS (GST_PAD_PROBE_INFO_BUFFER (info));
  if (s->count && pts <= s->last)
    s->in_order = FALSE;
  s->last = pts;
  s->count++;
  return GST_PAD_PROBE_OK;
}

static GstElement *
pipeline_new (const gchar * src, SinkLog * log)
{
  gchar *desc = g_strdup_printf ("%s ! " CAPS " ! neuralstyle model=%s ! fakesink "
      "name=sink sync=true qos=true", src, m_identity);
  GError *e = NULL;
  GstElement *p = gst_parse_launch (desc, &e);
  fail_unless (p != NULL, "%s: %s", desc, e ? e->message : "?");
  g_free (desc);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (p), "sink");
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  *log = (SinkLog) {.in_order = TRUE };
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, log_buffer, log, NULL);
  gst_object_unref (pad);
  gst_object_unref (sink);
  return p;
}

/* Waits for EOS (TRUE) or an error (fails). */
static void
wait_eos (GstElement * p)
{
  GstBus *bus = gst_element_get_bus (p);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no EOS within 60 s");
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err;
    gst_message_parse_error (msg, &err, NULL);
    fail ("error: %s", err->message);
  }
  gst_message_unref (msg);
  gst_object_unref (bus);
}

GST_START_TEST (test_output_thread_pipelines)
{
  SinkLog log;
  GstElement *p;

  /* live source, syncing sink, a slow network: EOS after the frames, in order */
  g_setenv ("NEURALFILTER_TEST_DELAY_MS", "50", TRUE);
  p = pipeline_new ("videotestsrc is-live=true num-buffers=45", &log);
  fail_unless (gst_element_set_state (p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  wait_eos (p);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
  GST_INFO ("live: %d of 45 frames shown", log.count);
  fail_unless (log.count > 0 && log.count < 45 && log.in_order, "%d frames, in order: %d",
      log.count, log.in_order);

  /* stopped while frames are in flight, five times */
  for (int k = 0; k < 5; k++) {
    p = pipeline_new ("videotestsrc is-live=true", &log);
    fail_unless (gst_element_set_state (p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    g_usleep (150000 + 40000 * k);
    fail_unless_equals_int (gst_element_set_state (p, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
    gst_object_unref (p);
  }

  /* not live, syncing sink (the thread goes on at the first QoS event): a flushing
   * seek back to the start while frames are in flight, then EOS */
  p = pipeline_new ("videotestsrc num-buffers=30", &log);
  fail_unless (gst_element_set_state (p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  fail_unless (gst_element_get_state (p, NULL, NULL, 30 * GST_SECOND)
      == GST_STATE_CHANGE_SUCCESS);
  g_usleep (300000);
  fail_unless (gst_element_seek_simple (p, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH, 0));
  wait_eos (p);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
  g_unsetenv ("NEURALFILTER_TEST_DELAY_MS");
  fail_unless (log.count > 0);
}

GST_END_TEST;

static Suite *
live_suite (void)
{
  Suite *s = suite_create ("neuralfilter-live");
  TCase *tc = tcase_create ("live");

  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_live_skips_late_frames);
  tcase_add_test (tc, test_no_qos_no_skipping);
  tcase_add_test (tc, test_output_thread_pipelines);
  return s;
}

int
main (int argc, char **argv)
{
  int failed;

  model_dir = g_dir_make_tmp ("nf-gst-live-XXXXXX", NULL);
  g_assert (model_dir != NULL);
  make_model ();

  gst_check_init (&argc, &argv);
  GstPluginFeature *f = gst_registry_lookup_feature (gst_registry_get (),
      "neuralstyle");
  if (f) {
    gst_object_unref (f);
    failed = gst_check_run_suite (live_suite (), "neuralfilter-live", __FILE__);
  } else {
    g_printerr ("the neuralfilter plugin was not found: set GST_PLUGIN_PATH_1_0 to "
        "the build's gst/ folder (meson test does)\n");
    failed = 1;
  }
  g_unlink (m_identity);
  g_rmdir (model_dir);
  g_free (m_identity);
  g_free (model_dir);
  return failed ? 1 : 0;
}
