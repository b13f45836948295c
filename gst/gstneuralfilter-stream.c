/* gstneuralfilter-stream.c — GstNeuralFilter between frames: what the stream asks of
 * the element before a frame reaches the frame path, and the queries it answers.
 *
 * What it does:
 *  - submit_input_buffer, before the base class looks at the reconfigure flag: swaps
 *    in a model loaded in the background (nf-model-runner.c), so that a new superres
 *    scale (gstneuralfilter.c marks the source pad for reconfiguration) renegotiates
 *    before the next frame; follows discontinuities (a DISCONT buffer whose timestamp
 *    jumps back, by more than a second or without timestamps restarts the
 *    stabilisation); skips a frame that would reach the sink too late before any work
 *    (gstneuralfilter-live.c); with the output thread on, marks gaps and drains the
 *    frame in flight before renegotiating (gstneuralfilter-output.c);
 *  - before_transform: controlled properties (strength, style-position, style-mix)
 *    follow their control sources at the frame's stream time;
 *  - queries: serialized queries (allocation, drain) wait for the frame the output
 *    thread is pushing; the element's latency (gstneuralfilter-live.c) is added to
 *    LATENCY answers; CUDA context queries are answered with the runner's context.
 * What it does not: caps and the frame itself (gstneuralfilter-frame.c), timing
 * frames and deciding which to skip (gstneuralfilter-live.c), loading models.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstneuralfilter-private.h"

GST_DEBUG_CATEGORY_EXTERN (gst_neural_filter_debug);
#define GST_CAT_DEFAULT gst_neural_filter_debug

/* ---- between frames -------------------------------------------------------------- */

/* Longest jump in timestamps across a DISCONT buffer that keeps the stabilisation. */
#define TEMPORAL_MAX_GAP GST_SECOND

/* A DISCONT buffer resets the stabilisation when the stream jumps: backwards, by more
 * than TEMPORAL_MAX_GAP, or without timestamps. A short gap does not: a leaky queue
 * marks the frame after every one it drops DISCONT (the live webcam pipeline), and
 * the stabiliser compares with its reference input, not with the frame before, so
 * whatever moved during the gap counts as motion. */
static void
temporal_follow (GstNeuralFilter * self, GstBuffer * input)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstClockTime pts = GST_BUFFER_PTS (input), last = priv->temporal_pts;

  if (GST_BUFFER_IS_DISCONT (input) && (!GST_CLOCK_TIME_IS_VALID (pts)
          || !GST_CLOCK_TIME_IS_VALID (last) || pts < last
          || pts - last > TEMPORAL_MAX_GAP)) {
    GST_DEBUG_OBJECT (self, "discontinuity at %" GST_TIME_FORMAT " after %"
        GST_TIME_FORMAT ": stabilisation starts afresh", GST_TIME_ARGS (pts),
        GST_TIME_ARGS (last));
    gst_neural_filter_frame_reset_temporal (self);
  }
  priv->temporal_pts = pts;
}

static GstFlowReturn
gst_neural_filter_submit_input_buffer (GstBaseTransform * trans,
    gboolean is_discont, GstBuffer * input)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);

  /* Before the base class looks at the reconfigure flag (see the header). */
  nf_model_runner_swap (priv->runner);
  temporal_follow (self, input);
  if (gst_neural_filter_live_skip (self, input)) {
    gst_buffer_unref (input);
    return GST_BASE_TRANSFORM_FLOW_DROPPED;
  }
  /* With the output thread on, GstBaseTransform no longer marks gaps, and must not
   * renegotiate while a frame is being pushed. */
  if (gst_neural_filter_output_is_on (self)) {
    if (GST_BUFFER_IS_DISCONT (input))
      priv->out_discont = TRUE;
    if (gst_pad_needs_reconfigure (GST_BASE_TRANSFORM_SRC_PAD (trans)))
      gst_neural_filter_output_drain (self);
  }
  return PARENT_TRANSFORM_CLASS->submit_input_buffer (trans, is_discont, input);
}

/* Controlled properties (strength) follow their control sources frame by frame. */
static void
gst_neural_filter_before_transform (GstBaseTransform * trans, GstBuffer * buf)
{
  GstClockTime ts = gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME,
      GST_BUFFER_PTS (buf));
  if (GST_CLOCK_TIME_IS_VALID (ts))
    gst_object_sync_values (GST_OBJECT (trans), ts);
}

/* ---- queries ----------------------------------------------------------------------- */

static gboolean
gst_neural_filter_query (GstBaseTransform * trans, GstPadDirection direction,
    GstQuery * query)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  gboolean ret;

#ifdef NF_HAVE_GST_CUDA
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  if (GST_QUERY_TYPE (query) == GST_QUERY_CONTEXT
      && nf_gst_cuda_handle_context_query (priv->cuda, GST_ELEMENT (self), query))
    return TRUE;
#endif
  /* Serialized queries (allocation, drain) must not overtake the frame in flight. */
  if (direction == GST_PAD_SINK && GST_QUERY_IS_SERIALIZED (query))
    gst_neural_filter_output_drain (self);
  ret = PARENT_TRANSFORM_CLASS->query (trans, direction, query);
  if (ret && direction == GST_PAD_SRC && GST_QUERY_TYPE (query) == GST_QUERY_LATENCY)
    gst_neural_filter_live_latency_query (self, query);
  return ret;
}

void
gst_neural_filter_stream_class_init (GstNeuralFilterClass * klass)
{
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  trans_class->submit_input_buffer =
      GST_DEBUG_FUNCPTR (gst_neural_filter_submit_input_buffer);
  trans_class->before_transform =
      GST_DEBUG_FUNCPTR (gst_neural_filter_before_transform);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_neural_filter_query);
}
