/* nf-live-bench.c — runs a live pipeline for some seconds and says, second by second,
 * what happened to its frames and how late the sink showed them.
 *
 *   nf-live-bench [--seconds N] [--steady S] PIPELINE-DESCRIPTION
 *
 * The pipeline (gst-launch syntax) must name the filter "nf" and the sink "sink" (a
 * GstBaseSink with a "handoff" signal, e.g. fakesink; it may sit inside
 * fpsdisplaysink's video-sink). Counted: frames into nf, frames out of nf (the
 * difference: skipped by nf), frames the sink rendered (handoff, after its clock
 * wait) and frames it dropped as late (its QoS messages; qos=true on the sink).
 * Latency at the sink, for every rendered frame: the pipeline's running time at
 * render minus the frame's running time (from its PTS), i.e. capture to display for
 * a live source that timestamps frames at capture. Latency messages on the bus are
 * acted on (gst_bin_recalculate_latency), as gst-launch does.
 * Prints one line per second, then a summary over the seconds from --steady on (the
 * first seconds load and plan the network) and over the whole run, and the pipeline's
 * latency (LATENCY query) at the end.
 * What it does not: judge the numbers (gst/live-bench.sh compares them with nf-bench),
 * or run without a display of its own (it prints only).
 * Exit codes: 0 done, 1 the pipeline failed, 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>

#define MAX_SECONDS 3600

typedef struct {
  gint in, out, late, shown;
  gdouble lat_sum, lat_max;     /* ms, over shown frames */
} Second;

typedef struct {
  GMutex lock;
  Second *sec;                  /* [seconds] */
  gint seconds;
  GstClockTime start;           /* monotonic, at PLAYING */
  gboolean started;
  GArray *lat_all;              /* gdouble ms of shown frames, from --steady on */
  gint steady;
  GstElement *pipeline, *sink;
  GMainLoop *loop;
  gint printed;
  gint ret;
} Bench;

/* The second a count goes to (-1: before PLAYING or after the end). */
static gint
second_now (Bench * b)
{
  if (!b->started)
    return -1;
  gint s = (gint) ((g_get_monotonic_time () * GST_USECOND - b->start) / GST_SECOND);
  return s < b->seconds ? s : -1;
}

typedef enum { COUNT_IN, COUNT_OUT } Count;

static GstPadProbeReturn
count_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Bench *b = g_object_get_data (G_OBJECT (pad), "bench");
  Count what = GPOINTER_TO_INT (data);
  g_mutex_lock (&b->lock);
  gint s = second_now (b);
  if (s >= 0) {
    if (what == COUNT_IN)
      b->sec[s].in++;
    else
      b->sec[s].out++;
  }
  g_mutex_unlock (&b->lock);
  return GST_PAD_PROBE_OK;
}

/* Rendered: the running time now minus the frame's. */
static void
on_handoff (GstElement * sink, GstBuffer * buf, GstPad * pad, gpointer data)
{
  Bench *b = data;
  GstClockTime rt = gst_segment_to_running_time (&GST_BASE_SINK (sink)->segment,
      GST_FORMAT_TIME, GST_BUFFER_PTS (buf));
  GstClock *clock = gst_element_get_clock (sink);
  if (!clock || !GST_CLOCK_TIME_IS_VALID (rt)) {
    if (clock)
      gst_object_unref (clock);
    return;
  }
  GstClockTime now = gst_clock_get_time (clock) - gst_element_get_base_time (sink);
  gst_object_unref (clock);
  gdouble ms = (gdouble) GST_CLOCK_DIFF (rt, now) / GST_MSECOND;

  g_mutex_lock (&b->lock);
  gint s = second_now (b);
  if (s >= 0) {
    b->sec[s].shown++;
    b->sec[s].lat_sum += ms;
    b->sec[s].lat_max = MAX (b->sec[s].lat_max, ms);
    if (s >= b->steady)
      g_array_append_val (b->lat_all, ms);
  }
  g_mutex_unlock (&b->lock);
}

static void
print_row (const char *label, const Second * t, gdouble secs)
{
  printf ("%-8s %7.1f %7.1f %7.1f %7.1f %7.1f   %7.1f %7.1f\n", label, t->in / secs,
      (t->in - t->out) / secs, t->out / secs, t->shown / secs, t->late / secs,
      t->shown ? t->lat_sum / t->shown : 0.0, t->lat_max);
}

static gboolean
on_tick (gpointer data)
{
  Bench *b = data;
  g_mutex_lock (&b->lock);
  if (!b->started) {
    g_mutex_unlock (&b->lock);
    return G_SOURCE_CONTINUE;
  }
  gint s = second_now (b);
  gint done = s < 0 ? b->seconds : s;
  while (b->printed < done) {
    Second t = b->sec[b->printed];
    g_mutex_unlock (&b->lock);
    gchar label[16];
    g_snprintf (label, sizeof label, "%d-%d", b->printed, b->printed + 1);
    print_row (label, &t, 1.0);
    fflush (stdout);
    g_mutex_lock (&b->lock);
    b->printed++;
  }
  g_mutex_unlock (&b->lock);
  if (s < 0) {
    g_main_loop_quit (b->loop);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_message (GstBus * bus, GstMessage * msg, gpointer data)
{
  Bench *b = data;
  GError *err = NULL;
  gchar *dbg = NULL;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:
      gst_message_parse_error (msg, &err, &dbg);
      fprintf (stderr, "nf-live-bench: error from %s: %s\n%s\n",
          GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), err->message, dbg ? dbg : "");
      g_clear_error (&err);
      g_free (dbg);
      b->ret = 1;
      g_main_loop_quit (b->loop);
      break;
    case GST_MESSAGE_WARNING:
    case GST_MESSAGE_INFO:
      if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING)
        gst_message_parse_warning (msg, &err, &dbg);
      else
        gst_message_parse_info (msg, &err, &dbg);
      fprintf (stderr, "nf-live-bench: %s from %s: %s\n",
          GST_MESSAGE_TYPE_NAME (msg), GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
          err->message);
      g_clear_error (&err);
      g_free (dbg);
      break;
    case GST_MESSAGE_EOS:
      g_main_loop_quit (b->loop);
      break;
    case GST_MESSAGE_QOS:         /* the sink dropped a late frame */
      if (GST_MESSAGE_SRC (msg) == GST_OBJECT (b->sink)) {
        g_mutex_lock (&b->lock);
        gint s = second_now (b);
        if (s >= 0)
          b->sec[s].late++;
        g_mutex_unlock (&b->lock);
      }
      break;
    case GST_MESSAGE_LATENCY:
      gst_bin_recalculate_latency (GST_BIN (b->pipeline));
      break;
    case GST_MESSAGE_STATE_CHANGED:
      if (GST_MESSAGE_SRC (msg) == GST_OBJECT (b->pipeline) && !b->started) {
        GstState now;
        gst_message_parse_state_changed (msg, NULL, &now, NULL);
        if (now == GST_STATE_PLAYING) {
          g_mutex_lock (&b->lock);
          b->start = g_get_monotonic_time () * GST_USECOND;
          b->started = TRUE;
          g_mutex_unlock (&b->lock);
        }
      }
      break;
    default:
      break;
  }
  return TRUE;
}

static int
cmp_double (const void *a, const void *b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;
  return x < y ? -1 : x > y;
}

static gboolean
add_probe (Bench * b, const gchar * element, const gchar * pad_name, Count what)
{
  GstElement *e = gst_bin_get_by_name (GST_BIN (b->pipeline), element);
  GstPad *pad = e ? gst_element_get_static_pad (e, pad_name) : NULL;
  if (!pad) {
    fprintf (stderr, "nf-live-bench: the pipeline has no element \"%s\" with a pad "
        "\"%s\"\n", element, pad_name);
    if (e)
      gst_object_unref (e);
    return FALSE;
  }
  g_object_set_data (G_OBJECT (pad), "bench", b);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, count_probe,
      GINT_TO_POINTER (what), NULL);
  gst_object_unref (pad);
  gst_object_unref (e);
  return TRUE;
}

static void
summary (Bench * b)
{
  Second steady = { 0 }, all = { 0 };
  for (gint s = 0; s < b->seconds; s++) {
    Second *t = &b->sec[s];
    Second *acc[2] = { &all, s >= b->steady ? &steady : NULL };
    for (int k = 0; k < 2; k++) {
      if (!acc[k])
        continue;
      acc[k]->in += t->in;
      acc[k]->out += t->out;
      acc[k]->late += t->late;
      acc[k]->shown += t->shown;
      acc[k]->lat_sum += t->lat_sum;
      acc[k]->lat_max = MAX (acc[k]->lat_max, t->lat_max);
    }
  }
  gchar label[16];
  g_snprintf (label, sizeof label, "%d-%d", b->steady, b->seconds);
  printf ("per second over the steady seconds and the whole run:\n");
  print_row (label, &steady, b->seconds - b->steady);
  g_snprintf (label, sizeof label, "0-%d", b->seconds);
  print_row (label, &all, b->seconds);

  gdouble p50 = 0, p95 = 0;
  if (b->lat_all->len) {
    gdouble *v = (gdouble *) b->lat_all->data;
    qsort (v, b->lat_all->len, sizeof (gdouble), cmp_double);
    p50 = v[b->lat_all->len / 2];
    p95 = v[MIN (b->lat_all->len - 1, b->lat_all->len * 95 / 100)];
  }
  printf ("steady: shown %.2f frames/s, skipped by the filter %.2f/s, dropped late "
      "by the sink %.2f/s; latency at the sink median %.1f ms, 95%% %.1f ms, "
      "max %.1f ms\n", steady.shown / (gdouble) (b->seconds - b->steady),
      (steady.in - steady.out) / (gdouble) (b->seconds - b->steady),
      steady.late / (gdouble) (b->seconds - b->steady), p50, p95,
      steady.lat_max);

  GstQuery *q = gst_query_new_latency ();
  if (gst_element_query (b->pipeline, q)) {
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency (q, &live, &min, &max);
    printf ("pipeline latency (query): %s, min %.1f ms\n", live ? "live" : "not live",
        (gdouble) min / GST_MSECOND);
  }
  gst_query_unref (q);
}

int
main (int argc, char **argv)
{
  gint seconds = 10, steady = 2;
  GError *err = NULL;
  GOptionEntry entries[] = {
    {"seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "How long to run (default 10)", "N"},
    {"steady", 0, 0, G_OPTION_ARG_INT, &steady,
        "The summary leaves out the seconds before this (default 2)", "S"},
    {NULL}
  };
  GOptionContext *ctx = g_option_context_new ("PIPELINE-DESCRIPTION");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  g_option_context_set_summary (ctx, "Runs a live pipeline whose filter is named \"nf\" "
      "and whose sink (fakesink) is named \"sink\", and prints frames per second in, "
      "skipped by the filter, out of it, shown and dropped late by the sink, and the "
      "latency at the sink (ms).");
  if (!g_option_context_parse (ctx, &argc, &argv, &err) || argc < 2
      || seconds < 1 || seconds > MAX_SECONDS || steady < 0 || steady >= seconds) {
    fprintf (stderr, "nf-live-bench: %s\n", err ? err->message :
        argc < 2 ? "no pipeline given" : "--seconds must be 1..3600 and --steady "
        "0..seconds-1");
    fprintf (stderr, "Try 'nf-live-bench --help'.\n");
    return 2;
  }
  g_option_context_free (ctx);

  gchar *desc = g_strjoinv (" ", argv + 1);
  Bench b = { .seconds = seconds, .steady = steady };
  g_mutex_init (&b.lock);
  b.sec = g_new0 (Second, seconds);
  b.lat_all = g_array_new (FALSE, FALSE, sizeof (gdouble));
  b.pipeline = gst_parse_launch (desc, &err);
  if (!b.pipeline) {
    fprintf (stderr, "nf-live-bench: bad pipeline: %s\n", err->message);
    return 2;
  }
  b.sink = gst_bin_get_by_name (GST_BIN (b.pipeline), "sink");
  if (!b.sink || !g_signal_lookup ("handoff", G_OBJECT_TYPE (b.sink))
      || !add_probe (&b, "nf", "sink", COUNT_IN) || !add_probe (&b, "nf", "src",
          COUNT_OUT)) {
    fprintf (stderr, "nf-live-bench: name the filter \"nf\" and the sink (a fakesink) "
        "\"sink\"\n");
    return 2;
  }
  g_object_set (b.sink, "signal-handoffs", TRUE, NULL);
  g_signal_connect (b.sink, "handoff", G_CALLBACK (on_handoff), &b);

  b.loop = g_main_loop_new (NULL, FALSE);
  GstBus *bus = gst_element_get_bus (b.pipeline);
  gst_bus_add_watch (bus, on_message, &b);
  gst_object_unref (bus);
  printf ("pipeline: %s\n", desc);
  printf ("frames per second; latency at the sink in ms (render time - frame time)\n");
  printf ("%-8s %7s %7s %7s %7s %7s   %7s %7s\n", "second", "in", "skipped", "made",
      "shown", "late", "lat-avg", "lat-max");
  if (gst_element_set_state (b.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    fprintf (stderr, "nf-live-bench: the pipeline does not start\n");
    b.ret = 1;
  } else {
    g_timeout_add (100, on_tick, &b);
    g_main_loop_run (b.loop);
    if (b.ret == 0)
      summary (&b);
  }
  gst_element_set_state (b.pipeline, GST_STATE_NULL);
  gst_object_unref (b.sink);
  gst_object_unref (b.pipeline);
  g_main_loop_unref (b.loop);
  g_array_free (b.lat_all, TRUE);
  g_free (b.sec);
  g_free (desc);
  return b.ret;
}
