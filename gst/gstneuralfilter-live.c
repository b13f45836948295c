/* gstneuralfilter-live.c — GstNeuralFilter in live pipelines: which frames are worth
 * processing, how long a frame takes, and the latency the element reports.
 *
 * A network that takes longer per frame than the source's frame interval cannot show
 * every frame. What it must not do is spend its time on frames that reach the sink too
 * late to be shown (the sink drops them, or shows them later and later: a backlog).
 * What it does:
 *  - measures the processing time of every frame it makes (from taking the input to
 *    handing the output on: conversions, network, blend) on the pipeline clock, or the
 *    monotonic clock without one; keeps a running mean (weight 1/8) and mean absolute
 *    deviation (1/4); the estimate is mean + deviation. The first frame after a new
 *    plan and frames that only copy (strength 0) are not typical and not measured;
 *  - reports latency = estimate + min(frame interval, estimate) in LATENCY queries (to
 *    both min and max): a frame waits at most one frame interval for the previous one
 *    to finish (the source is blocked meanwhile, or a leaky queue holds the newest
 *    frame), then takes the processing time. It posts a latency message when this
 *    grows by more than a quarter of that wait or shrinks by more than 1/4 (and on the
 *    first measurement), so that the pipeline redistributes latency;
 *  - skips a frame BEFORE processing it (GST_BASE_TRANSFORM_FLOW_DROPPED, with a QoS
 *    message: processed/dropped counts) when it would reach the sink late: when the
 *    sink's last QoS event says frames up to a later running time are late (as
 *    GstBaseTransform does; forgotten when the pipeline's latency changes), or when
 *    now + estimate > running time + latency, the latency being the pipeline's (from
 *    the LATENCY event), or for a live upstream at least upstream's plus what this
 *    element needs now: the newest frame of a live source is always made, so neither a
 *    processing time that grew since the last latency message nor an application that
 *    does not act on latency messages can make it skip every frame. Only once
 *    a QoS event has come since start or flush: a sink that syncs to the clock and
 *    does QoS is downstream. Without one (a transcode to a file, qos=false on the
 *    element or the sink) every frame is processed;
 *  - turns the output thread on (gstneuralfilter-output.c) once the upstream is live
 *    or a QoS event came, so that a sink's wait for the clock does not hold up the
 *    next frame;
 *  - $NEURALFILTER_TEST_DELAY_MS (read at start; for tests and benchmarks only): every
 *    frame that reaches the frame path (transform) takes that much longer, waited on
 *    the pipeline clock (a GstTestClock in tests decides how long it really takes).
 * What it assumes: the elements after this one take little time (their own latency is
 * not known here); frames come in running-time order.
 * What it does not: process frames (gstneuralfilter-frame.c), queue or reorder them,
 * or change the QoS events it forwards upstream (it forwards them as they came; they do
 * not reach GstBaseTransform's own QoS, which would count skipped frames apart).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>

#include "gstneuralfilter-private.h"

GST_DEBUG_CATEGORY_EXTERN (gst_neural_filter_debug);
#define GST_CAT_DEFAULT gst_neural_filter_debug

#define TEST_DELAY_ENV "NEURALFILTER_TEST_DELAY_MS"

/* ---- clocks ------------------------------------------------------------------------ */

/* The running time now, or NONE when the element is not PLAYING on a clock. */
static GstClockTime
running_time_now (GstElement * e)
{
  GstClock *clock = NULL;
  GstClockTime base = 0, now;

  GST_OBJECT_LOCK (e);
  if (GST_STATE (e) == GST_STATE_PLAYING && GST_ELEMENT_CLOCK (e)) {
    clock = gst_object_ref (GST_ELEMENT_CLOCK (e));
    base = GST_ELEMENT_CAST (e)->base_time;
  }
  GST_OBJECT_UNLOCK (e);
  if (!clock)
    return GST_CLOCK_TIME_NONE;
  now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  return now >= base ? now - base : 0;
}

/* Processing times are measured on clock (the pipeline's), else on the monotonic one. */
static GstClockTime
time_now (GstClock * clock)
{
  return clock ? gst_clock_get_time (clock)
      : (GstClockTime) g_get_monotonic_time () * GST_USECOND;
}

void
gst_neural_filter_live_test_delay (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstClock *clock;

  if (!priv->test_delay)
    return;
  clock = gst_element_get_clock (GST_ELEMENT (self));
  if (clock) {
    GstClockID id = gst_clock_new_single_shot_id (clock,
        gst_clock_get_time (clock) + priv->test_delay);
    gst_clock_id_wait (id, NULL);
    gst_clock_id_unref (id);
    gst_object_unref (clock);
  } else {
    g_usleep (priv->test_delay / GST_USECOND);
  }
}

/* ---- processing time and latency --------------------------------------------------- */

/* The processing time a frame will almost always stay within; 0 before any measure. */
static GstClockTime
proc_estimate (GstNeuralFilterPrivate * priv)
{
  return priv->proc_n ? priv->proc_mean + priv->proc_dev : 0;
}

/* A frame took dt: update the estimate, and the reported latency when it changed a lot. */
static void
frame_measured (GstNeuralFilter * self, GstClockTime dt)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstClockTime est, wait, want, old;
  gboolean post = FALSE;

  if (priv->proc_n == 0) {
    priv->proc_mean = dt;
    priv->proc_dev = 0;
  } else {
    GstClockTimeDiff err = GST_CLOCK_DIFF (priv->proc_mean, dt);
    GstClockTimeDiff dev = (GstClockTimeDiff) priv->proc_dev;
    priv->proc_mean = (GstClockTime) ((GstClockTimeDiff) priv->proc_mean + err / 8);
    priv->proc_dev = (GstClockTime) (dev + (ABS (err) - dev) / 4);
  }
  priv->proc_n++;
  est = proc_estimate (priv);
  wait = MIN (priv->frame_interval, est);
  want = est + wait;

  GST_OBJECT_LOCK (self);
  old = priv->latency;
  if (want > old + wait / 4 || want < old - old / 4) {
    priv->latency = want;
    post = TRUE;
  }
  GST_OBJECT_UNLOCK (self);
  GST_LOG_OBJECT (self, "frame took %" GST_TIME_FORMAT ", mean %" GST_TIME_FORMAT
      ", deviation %" GST_TIME_FORMAT, GST_TIME_ARGS (dt),
      GST_TIME_ARGS (priv->proc_mean), GST_TIME_ARGS (priv->proc_dev));
  if (post) {
    GST_INFO_OBJECT (self, "processing takes %" GST_TIME_FORMAT " (mean %"
        GST_TIME_FORMAT "): latency %" GST_TIME_FORMAT " -> %" GST_TIME_FORMAT,
        GST_TIME_ARGS (est), GST_TIME_ARGS (priv->proc_mean), GST_TIME_ARGS (old),
        GST_TIME_ARGS (want));
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  }
}

void
gst_neural_filter_live_latency_query (GstNeuralFilter * self, GstQuery * query)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  gboolean live;
  GstClockTime min, max, lat;

  gst_query_parse_latency (query, &live, &min, &max);
  GST_OBJECT_LOCK (self);
  priv->upstream_live = live;
  priv->upstream_min = min;
  lat = priv->latency;
  GST_OBJECT_UNLOCK (self);
  min += lat;
  if (GST_CLOCK_TIME_IS_VALID (max))
    max += lat;
  GST_DEBUG_OBJECT (self, "adding processing latency %" GST_TIME_FORMAT " (upstream %s, "
      "min %" GST_TIME_FORMAT ")", GST_TIME_ARGS (lat), live ? "live" : "not live",
      GST_TIME_ARGS (min));
  gst_query_set_latency (query, live, min, max);
}

/* ---- skipping late frames ---------------------------------------------------------- */

static void
post_skip (GstNeuralFilter * self, GstBuffer * buf, GstClockTime rt, gboolean live,
    GstClockTimeDiff jitter, gdouble proportion)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  GstClockTime pts = GST_BUFFER_PTS (buf);
  GstMessage *msg = gst_message_new_qos (GST_OBJECT (self), live, rt,
      gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME, pts), pts,
      GST_BUFFER_DURATION (buf));

  gst_message_set_qos_values (msg, jitter, proportion, 1000000);
  gst_message_set_qos_stats (msg, GST_FORMAT_BUFFERS, priv->processed, priv->skipped);
  gst_element_post_message (GST_ELEMENT (self), msg);
}

gboolean
gst_neural_filter_live_skip (GstNeuralFilter * self, GstBuffer * buf)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  GstVideoInfo *info = &GST_VIDEO_FILTER (self)->in_info;
  GstClockTime rt, now, earliest, deadline_latency, est;
  GstClockTimeDiff jitter;
  gboolean seen, live;
  gdouble proportion;

  if (GST_BUFFER_DURATION_IS_VALID (buf))
    priv->frame_interval = GST_BUFFER_DURATION (buf);
  else if (GST_VIDEO_INFO_FPS_N (info) > 0)
    priv->frame_interval = gst_util_uint64_scale_int (GST_SECOND,
        GST_VIDEO_INFO_FPS_D (info), GST_VIDEO_INFO_FPS_N (info));

  if (!gst_base_transform_is_qos_enabled (trans)
      || trans->segment.format != GST_FORMAT_TIME)
    return FALSE;
  rt = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME,
      GST_BUFFER_PTS (buf));
  if (!GST_CLOCK_TIME_IS_VALID (rt))
    return FALSE;

  est = proc_estimate (priv);
  GST_OBJECT_LOCK (self);
  seen = priv->qos_seen;
  earliest = priv->qos_earliest;
  proportion = priv->qos_proportion;
  live = priv->upstream_live;
  deadline_latency = GST_CLOCK_TIME_IS_VALID (priv->pipeline_latency) ?
      priv->pipeline_latency : 0;
  /* A live source's newest frame is always worth making, even while the pipeline's
   * latency lags behind this element's (so the skipping cannot starve the sink). */
  if (live)
    deadline_latency = MAX (deadline_latency, priv->upstream_min + est
        + MIN (priv->frame_interval, est));
  GST_OBJECT_UNLOCK (self);
  if (!seen)
    return FALSE;

  /* The sink already saw frames up to `earliest` late. */
  if (GST_CLOCK_TIME_IS_VALID (earliest) && rt <= earliest) {
    jitter = GST_CLOCK_DIFF (rt, earliest);
    GST_DEBUG_OBJECT (self, "skipping frame %" GST_TIME_FORMAT ": the sink is at %"
        GST_TIME_FORMAT, GST_TIME_ARGS (rt), GST_TIME_ARGS (earliest));
    goto skip;
  }
  /* Made now, it would reach the sink after its time. */
  now = running_time_now (GST_ELEMENT (self));
  if (GST_CLOCK_TIME_IS_VALID (now) && now + est > rt + deadline_latency) {
    jitter = GST_CLOCK_DIFF (rt + deadline_latency, now + est);
    GST_DEBUG_OBJECT (self, "skipping frame %" GST_TIME_FORMAT ": it is %"
        GST_TIME_FORMAT " old, and processing (%" GST_TIME_FORMAT ") would end %"
        GST_TIME_FORMAT " after its time (latency %" GST_TIME_FORMAT ")",
        GST_TIME_ARGS (rt), GST_TIME_ARGS (now > rt ? now - rt : 0),
        GST_TIME_ARGS (est), GST_TIME_ARGS (jitter), GST_TIME_ARGS (deadline_latency));
    goto skip;
  }
  return FALSE;

skip:
  priv->skipped++;
  priv->out_discont = TRUE;
  post_skip (self, buf, rt, live, jitter, proportion);
  return TRUE;
}

/* ---- vfuncs ------------------------------------------------------------------------ */

static void
reset_qos (GstNeuralFilterPrivate * priv)
{
  priv->qos_seen = FALSE;
  priv->qos_earliest = GST_CLOCK_TIME_NONE;
  priv->qos_proportion = 1.0;
}

void
gst_neural_filter_live_start (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  const gchar *delay = g_getenv (TEST_DELAY_ENV);

  GST_OBJECT_LOCK (self);
  reset_qos (priv);
  priv->pipeline_latency = GST_CLOCK_TIME_NONE;
  priv->upstream_live = FALSE;
  priv->upstream_min = 0;
  GST_OBJECT_UNLOCK (self);
  priv->frame_interval = 0;
  priv->processed = priv->skipped = 0;
  gst_neural_filter_live_model_changed (self);

  priv->test_delay = 0;
  if (delay && *delay) {
    gchar *end;
    guint64 ms = g_ascii_strtoull (delay, &end, 10);
    if (*end || ms > 60000)
      GST_WARNING_OBJECT (self, "ignoring %s=%s: not a number of milliseconds "
          "0..60000", TEST_DELAY_ENV, delay);
    else
      priv->test_delay = ms * GST_MSECOND;
    if (priv->test_delay)
      GST_WARNING_OBJECT (self, "%s: every frame takes %" G_GUINT64_FORMAT
          " ms longer (for tests)", TEST_DELAY_ENV, ms);
  }
}

void
gst_neural_filter_live_model_changed (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);

  priv->proc_mean = priv->proc_dev = 0;
  priv->proc_n = 0;
}

/* The output thread pays off once a sink syncs to the clock (a QoS event came) or the
 * source is live (its frames will be shown in real time). */
static gboolean
wants_output_thread (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  gboolean want;

  if (priv->out_thread)
    return TRUE;
  GST_OBJECT_LOCK (self);
  want = priv->upstream_live || priv->qos_seen;
  GST_OBJECT_UNLOCK (self);
  return want;
}

/* Makes the output for the queued input (GstBaseTransform's default), timed; with the
 * output thread on, hands it over (gstneuralfilter-output.c) instead of returning it. */
static GstFlowReturn
gst_neural_filter_generate_output (GstBaseTransform * trans, GstBuffer ** outbuf)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstClock *clock;
  GstClockTime t0;
  GstFlowReturn ret;

  if (!trans->queued_buf)
    return PARENT_TRANSFORM_CLASS->generate_output (trans, outbuf);

  clock = gst_element_get_clock (GST_ELEMENT (self));
  t0 = time_now (clock);
  priv->frame_atypical = FALSE;
  ret = PARENT_TRANSFORM_CLASS->generate_output (trans, outbuf);
  if (ret == GST_FLOW_OK && *outbuf) {
    priv->processed++;
    if (!priv->frame_atypical)
      frame_measured (self, time_now (clock) - t0);
    if (wants_output_thread (self) && gst_neural_filter_output_enable (self)) {
      ret = gst_neural_filter_output_hand_over (self, *outbuf);
      *outbuf = NULL;
    }
  }
  if (clock)
    gst_object_unref (clock);
  return ret;
}

/* QoS events (the sink's lateness) and LATENCY events (the pipeline's latency). */
static gboolean
gst_neural_filter_src_event (GstBaseTransform * trans, GstEvent * event)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (GST_NEURAL_FILTER (trans));

  if (GST_EVENT_TYPE (event) == GST_EVENT_QOS) {
    gdouble proportion;
    GstClockTimeDiff diff;
    GstClockTime ts;

    gst_event_parse_qos (event, NULL, &proportion, &diff, &ts);
    GST_OBJECT_LOCK (trans);
    priv->qos_seen = TRUE;
    priv->qos_proportion = proportion;
    if (GST_CLOCK_TIME_IS_VALID (ts))   /* as GstBaseTransform: timestamp + jitter */
      priv->qos_earliest = diff < 0 && (GstClockTime) (-diff) > ts ? 0 : ts + diff;
    GST_OBJECT_UNLOCK (trans);
    /* Upstream, not through GstBaseTransform: this file does all the skipping (one
     * count of processed and dropped frames; no stale lateness after a latency
     * change). */
    return gst_pad_push_event (GST_BASE_TRANSFORM_SINK_PAD (trans), event);
  } else if (GST_EVENT_TYPE (event) == GST_EVENT_LATENCY) {
    GstClockTime latency;

    gst_event_parse_latency (event, &latency);
    GST_OBJECT_LOCK (trans);
    /* The sink's lateness so far was measured against the old latency. */
    if (latency != priv->pipeline_latency)
      priv->qos_earliest = GST_CLOCK_TIME_NONE;
    priv->pipeline_latency = latency;
    GST_OBJECT_UNLOCK (trans);
    GST_DEBUG_OBJECT (trans, "pipeline latency %" GST_TIME_FORMAT,
        GST_TIME_ARGS (latency));
  }
  return PARENT_TRANSFORM_CLASS->src_event (trans, event);
}

/* Flushes reset the QoS state; serialized events wait for the frame in flight. */
static gboolean
gst_neural_filter_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);

  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_START) {
    gst_neural_filter_output_flush_start (self);
  } else if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP) {
    gst_neural_filter_output_flush_stop (self);
    gst_neural_filter_frame_reset_temporal (self);      /* a seek: other pictures */
    GST_OBJECT_LOCK (trans);
    reset_qos (priv);
    GST_OBJECT_UNLOCK (trans);
    priv->processed = priv->skipped = 0;
  } else if (GST_EVENT_IS_SERIALIZED (event)) {
    gst_neural_filter_output_drain (self);
  }
  return PARENT_TRANSFORM_CLASS->sink_event (trans, event);
}

void
gst_neural_filter_live_class_init (GstNeuralFilterClass * klass)
{
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  trans_class->generate_output = GST_DEBUG_FUNCPTR (gst_neural_filter_generate_output);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_neural_filter_src_event);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_neural_filter_sink_event);
}
