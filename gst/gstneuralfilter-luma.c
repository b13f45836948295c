/* gstneuralfilter-luma.c — the luma path of GstNeuralFilter: an I420/NV12 frame through
 * a luma-only super-resolution network (sr-light-y) without any RGB.
 *
 * What it does: where the model in use has a luma core on the CPU
 * (NfLoadedModel.luma_engine, nf-luma-core.h) and the frame is I420 or NV12 with the
 * same matrix and range both ways, no stabilisation, no blend (strength 1), it turns
 * the Y plane into one float plane (reflection-padded to the model's multiple), runs
 * the core (the network's luma step added to the nearest-upsampled luma, clamped) and
 * writes the output Y plane from it; each chroma plane is upscaled bilinearly
 * (nf-convert-luma.c). The network never sees chroma, so this is what the RGB path
 * computes for the luma (the same network, within rounding: that path clamps R, G and
 * B where this one clamps Y), with a smoother chroma than the RGB path's nearest one,
 * and without the two colour conversions and two thirds of the network's tail.
 * NEURALFILTER_LUMA=0 in the environment turns it off (tests, comparisons).
 * What it does not: the GPU (its frames go through RGB on the GPU), RGB caps, or
 * choose the model (nf-model-runner.c).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "gstneuralfilter-private.h"
#include "nf-convert-luma.h"

GST_DEBUG_CATEGORY_EXTERN (gst_neural_filter_debug);
#define GST_CAT_DEFAULT gst_neural_filter_debug

#define PLANE(f, i) GST_VIDEO_FRAME_PLANE_DATA (f, i)
#define STRIDE(f, i) GST_VIDEO_FRAME_PLANE_STRIDE (f, i)

gboolean
gst_neural_filter_luma_usable (GstNeuralFilterPrivate * priv, const NfLoadedModel * m,
    gint scale, gdouble strength, gfloat stabilize)
{
  return priv->yuv && m->luma_engine && scale > 1 && strength >= 1.0 && stabilize <= 0.0f
      && memcmp (&priv->yuv_in, &priv->yuv_out, sizeof (NfYuvMatrix)) == 0
      && g_strcmp0 (g_getenv ("NEURALFILTER_LUMA"), "0") != 0;
}

/* Each chroma plane of in, upscaled by s into out. */
static void
chroma_upscale (GstNeuralFilterPrivate * priv, GstVideoFrame * in, GstVideoFrame * out,
    gint s)
{
  gint cw = GST_VIDEO_FRAME_COMP_WIDTH (in, 1), ch = GST_VIDEO_FRAME_COMP_HEIGHT (in, 1);
  gint ocw = GST_VIDEO_FRAME_COMP_WIDTH (out, 1), och = GST_VIDEO_FRAME_COMP_HEIGHT (out, 1);

  if (priv->nv12) {             /* U and V interleaved in plane 1 */
    for (gint k = 0; k < 2; k++)
      nf_chroma_upscale ((const guint8 *) PLANE (in, 1) + k, STRIDE (in, 1), cw, ch,
          (guint8 *) PLANE (out, 1) + k, STRIDE (out, 1), ocw, och, 2, s);
    return;
  }
  for (gint p = 1; p <= 2; p++)
    nf_chroma_upscale (PLANE (in, p), STRIDE (in, p), cw, ch, PLANE (out, p),
        STRIDE (out, p), ocw, och, 1, s);
}

GstFlowReturn
gst_neural_filter_luma_frame (GstNeuralFilter * self, NfLoadedModel * m, gint s,
    GstVideoFrame * in, GstVideoFrame * out)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  gint w = GST_VIDEO_FRAME_WIDTH (in), h = GST_VIDEO_FRAME_HEIGHT (in);
  gint ow = GST_VIDEO_FRAME_WIDTH (out), oh = GST_VIDEO_FRAME_HEIGHT (out);
  gfloat lo = m->luma_model->in_lo, hi = m->luma_model->in_hi;
  GError *err = NULL;
  gboolean was_planned;
  NfShape shape, os;

  if (!nf_model_runner_plan_luma (priv->runner, w, h, &shape, &was_planned, &err))
    goto run_failed;
  priv->frame_atypical = !was_planned;  /* the first run after a plan */
  os = nf_engine_output_shape (m->luma_engine);
  if (os.c != 1 || os.w < ow || os.h < oh) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
        ("The luma network of %s turns %dx%d into a %d-channel %dx%d image, not a "
            "1-channel %dx%d one: pick another model.", m->path, shape.w, shape.h, os.c,
            os.w, os.h, ow, oh), (NULL));
    return GST_FLOW_ERROR;
  }
  if (!gst_neural_filter_grow_floats (&priv->in_planes, &priv->in_len,
          nf_shape_numel (shape))
      || !gst_neural_filter_grow_floats (&priv->out_planes, &priv->out_len,
          nf_shape_numel (os))) {
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Out of memory for %dx%d frames: use smaller frames.", w, h), (NULL));
    return GST_FLOW_ERROR;
  }

  gint64 t0 = g_get_monotonic_time ();
  nf_convert_luma_unpack (&priv->yuv_in, PLANE (in, 0), STRIDE (in, 0), w, h,
      priv->in_planes, shape.w, shape.h, lo, hi);
  gint64 t1 = g_get_monotonic_time ();
  if (!nf_model_runner_run_luma_host (priv->runner, priv->in_planes, shape,
          priv->out_planes, &err))
    goto run_failed;
  gint64 t2 = g_get_monotonic_time ();
  nf_convert_luma_pack (&priv->yuv_out, priv->out_planes, os.w, ow, oh, PLANE (out, 0),
      STRIDE (out, 0), m->luma_model->out_lo, m->luma_model->out_hi);
  chroma_upscale (priv, in, out, s);
  GST_LOG_OBJECT (self, "luma path: unpack %.2f ms, network %.2f ms, pack and chroma "
      "%.2f ms", (t1 - t0) / 1e3, (t2 - t1) / 1e3, (g_get_monotonic_time () - t2) / 1e3);
  return GST_FLOW_OK;

run_failed:
  GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
      ("The network %s failed on a %dx%d frame: %s", m->path, w, h, err->message), (NULL));
  g_error_free (err);
  return GST_FLOW_ERROR;
}
