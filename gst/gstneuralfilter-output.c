/* gstneuralfilter-output.c — the output thread of GstNeuralFilter: made frames are
 * pushed downstream from a thread of their own, so that the next frame is processed
 * while a sink waits on the clock to show the previous one.
 *
 * Why: without it, a sink that syncs to the clock blocks the streaming thread until
 * each frame's display time. Display times lie on the source's frame grid, so the
 * network could run only every ceil(processing time / frame interval) frame intervals
 * (e.g. 10 frames/s for a network that makes 11.5), with a core idle meanwhile.
 * What it does: holds at most one frame between the streaming thread and the thread
 * that pushes it; the streaming thread hands a frame over once the previous one has
 * been pushed (so no frames pile up: at most one waits in the sink, one is being
 * made). A failed push (flushing, EOS, not linked, an error) is returned to upstream
 * from the next hand-over. Serialized events and queries and renegotiation wait until
 * the frame in flight is pushed (gst_neural_filter_output_drain), so nothing overtakes
 * a frame. A flush drops the frame not yet pushed.
 * When: turned on by gstneuralfilter-live.c once the upstream is live or a sink that
 * syncs to the clock is downstream; off (frames pushed by GstBaseTransform) otherwise,
 * e.g. for transcoding. Stopped when the element stops.
 * What it does not: make frames, decide which to skip, or queue more than one.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstneuralfilter-private.h"

GST_DEBUG_CATEGORY_EXTERN (gst_neural_filter_debug);
#define GST_CAT_DEFAULT gst_neural_filter_debug

void
gst_neural_filter_output_init (GstNeuralFilterPrivate * priv)
{
  g_mutex_init (&priv->out_lock);
  g_cond_init (&priv->out_cond);
  priv->out_ret = GST_FLOW_OK;
}

void
gst_neural_filter_output_clear (GstNeuralFilterPrivate * priv)
{
  g_mutex_clear (&priv->out_lock);
  g_cond_clear (&priv->out_cond);
}

static gpointer
output_loop (gpointer data)
{
  GstNeuralFilter *self = data;
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstPad *srcpad = GST_BASE_TRANSFORM_SRC_PAD (self);

  g_mutex_lock (&priv->out_lock);
  while (!priv->out_quit) {
    if (!priv->out_pending) {
      g_cond_wait (&priv->out_cond, &priv->out_lock);
      continue;
    }
    GstBuffer *buf = priv->out_pending;
    priv->out_pending = NULL;
    priv->out_busy = TRUE;
    g_mutex_unlock (&priv->out_lock);

    GstFlowReturn ret = gst_pad_push (srcpad, buf);

    g_mutex_lock (&priv->out_lock);
    priv->out_busy = FALSE;
    if (ret != GST_FLOW_OK) {
      GST_DEBUG_OBJECT (self, "output thread: push returned %s", gst_flow_get_name (ret));
      if (priv->out_ret == GST_FLOW_OK)
        priv->out_ret = ret;
    }
    g_cond_broadcast (&priv->out_cond);
  }
  g_mutex_unlock (&priv->out_lock);
  return NULL;
}

gboolean
gst_neural_filter_output_enable (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GError *err = NULL;

  if (priv->out_thread)
    return TRUE;
  g_mutex_lock (&priv->out_lock);
  priv->out_quit = FALSE;
  priv->out_ret = GST_FLOW_OK;
  g_mutex_unlock (&priv->out_lock);
  priv->out_thread = g_thread_try_new ("nf-output", output_loop, self, &err);
  if (!priv->out_thread) {
    GST_WARNING_OBJECT (self, "no output thread (%s): frames are pushed from the "
        "streaming thread", err->message);
    g_error_free (err);
    return FALSE;
  }
  GST_INFO_OBJECT (self, "pushing frames from an output thread");
  return TRUE;
}

gboolean
gst_neural_filter_output_is_on (GstNeuralFilter * self)
{
  return gst_neural_filter_get_priv (self)->out_thread != NULL;
}

GstFlowReturn
gst_neural_filter_output_hand_over (GstNeuralFilter * self, GstBuffer * buf)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstFlowReturn ret;

  if (priv->out_discont) {
    buf = gst_buffer_make_writable (buf);
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    priv->out_discont = FALSE;
  }
  g_mutex_lock (&priv->out_lock);
  while ((priv->out_pending || priv->out_busy) && !priv->out_flushing
      && priv->out_ret == GST_FLOW_OK)
    g_cond_wait (&priv->out_cond, &priv->out_lock);
  ret = priv->out_flushing ? GST_FLOW_FLUSHING : priv->out_ret;
  if (ret == GST_FLOW_OK) {
    priv->out_pending = buf;
    buf = NULL;
    g_cond_broadcast (&priv->out_cond);
  }
  g_mutex_unlock (&priv->out_lock);
  if (buf)
    gst_buffer_unref (buf);
  return ret;
}

void
gst_neural_filter_output_drain (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);

  if (!priv->out_thread)
    return;
  g_mutex_lock (&priv->out_lock);
  while ((priv->out_pending || priv->out_busy) && !priv->out_flushing)
    g_cond_wait (&priv->out_cond, &priv->out_lock);
  g_mutex_unlock (&priv->out_lock);
}

void
gst_neural_filter_output_flush_start (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstBuffer *drop;

  g_mutex_lock (&priv->out_lock);
  priv->out_flushing = TRUE;
  drop = priv->out_pending;
  priv->out_pending = NULL;
  g_cond_broadcast (&priv->out_cond);
  g_mutex_unlock (&priv->out_lock);
  if (drop)
    gst_buffer_unref (drop);
}

/* After downstream was flushed: the push in flight (returning FLUSHING) is waited for. */
void
gst_neural_filter_output_flush_stop (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);

  g_mutex_lock (&priv->out_lock);
  while (priv->out_busy)
    g_cond_wait (&priv->out_cond, &priv->out_lock);
  priv->out_flushing = FALSE;
  priv->out_ret = GST_FLOW_OK;
  g_mutex_unlock (&priv->out_lock);
  priv->out_discont = TRUE;
}

void
gst_neural_filter_output_stop (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstBuffer *drop;

  if (priv->out_thread) {
    g_mutex_lock (&priv->out_lock);
    priv->out_quit = TRUE;
    g_cond_broadcast (&priv->out_cond);
    g_mutex_unlock (&priv->out_lock);
    g_thread_join (priv->out_thread);
    priv->out_thread = NULL;
  }
  g_mutex_lock (&priv->out_lock);
  drop = priv->out_pending;
  priv->out_pending = NULL;
  priv->out_flushing = FALSE;
  priv->out_quit = FALSE;
  priv->out_ret = GST_FLOW_OK;
  g_mutex_unlock (&priv->out_lock);
  priv->out_discont = FALSE;
  if (drop)
    gst_buffer_unref (drop);
}
