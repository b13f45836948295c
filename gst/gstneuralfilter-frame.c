/* gstneuralfilter-frame.c — the frame path of GstNeuralFilter: caps, then for every
 * frame pixels -> planar float -> network -> planar float -> pixels.
 *
 * What it does, in the order a frame meets it:
 *  - caps: the same caps both ways, less CUDA memory while the network runs on the CPU
 *    (superres overrides transform_caps); set_info checks format, interlacing and the
 *    output size for the model's scale, and picks the pixel layout and, for I420/NV12,
 *    each side's Y'CbCr matrix and range;
 *  - a frame on the CPU (transform_frame): begin (sizes against the model, strength,
 *    stabilize, preserve-color; strength 0 copies the input) -> plan (for the size
 *    padded to the model's multiple) -> unpack (nf-convert.c; reflection padding) ->
 *    network -> steps on out_planes (temporal stabilisation, nf-stabilize.c; the
 *    input's colours, nf-preserve-color.c, or on I420/NV12 the input's chroma planes
 *    copied at the pack) -> pack (crop, blend with the input by strength), or, for a
 *    luma-only SR model on I420/NV12, the Y plane alone (gstneuralfilter-luma.c); on a CUDA
 *    runner (transform) the same begin and plan, then unpack, network, steps and pack
 *    on the GPU (gstneuralfilter-cuda.c);
 *  - the stabilisation starts afresh (a request any thread may make) on new caps, a
 *    flush (gstneuralfilter-live.c), a new model (gstneuralfilter.c), a strength of 0,
 *    and a DISCONT buffer whose timestamp jumps back or by more than a second (not
 *    after a short gap: a leaky queue marks DISCONT after each frame it drops);
 *  - a failure in a frame is an element error a user can act on (out of GPU memory with
 *    its own hint), never a skipped or black frame.
 * What it does not: find, load, swap or place models (nf-model-runner.c), properties
 * and state changes (gstneuralfilter.c), what happens between frames and the queries
 * (gstneuralfilter-stream.c), the GPU copies and kernels (gstneuralfilter-cuda.c),
 * timing frames and deciding which to skip (gstneuralfilter-live.c).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "gstneuralfilter-private.h"
#include "nf-preserve-color.h"

#ifdef NF_HAVE_GST_CUDA
#include "nf-cuda.h"
#endif

GST_DEBUG_CATEGORY_EXTERN (gst_neural_filter_debug);
#define GST_CAT_DEFAULT gst_neural_filter_debug

/* ---- caps -------------------------------------------------------------------------- */

gboolean
gst_neural_filter_memory_usable (GstNeuralFilter * self, GstCapsFeatures * features)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  gint on_gpu;

  if (!features || gst_caps_features_is_any (features)
      || !gst_caps_features_contains (features, "memory:CUDAMemory"))
    return TRUE;
#ifdef NF_HAVE_GST_CUDA
  GST_OBJECT_LOCK (self);
  on_gpu = priv->on_gpu;
  GST_OBJECT_UNLOCK (self);
  return on_gpu != 0;           /* not known yet, or running in a CUDA context */
#else
  (void) priv;
  (void) on_gpu;
  return FALSE;
#endif
}

/* Same caps both ways, less CUDA memory while the network runs on the CPU. */
static GstCaps *
gst_neural_filter_transform_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * filter)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  GstCaps *ret = gst_caps_new_empty ();

  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    GstCapsFeatures *f = gst_caps_get_features (caps, i);
    if (!gst_neural_filter_memory_usable (self, f))
      continue;
    ret = gst_caps_merge_structure_full (ret,
        gst_structure_copy (gst_caps_get_structure (caps, i)),
        f ? gst_caps_features_copy (f) : NULL);
  }
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, ret, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (ret);
    ret = tmp;
  }
  return ret;
}

static gboolean
layout_for_format (GstVideoFormat f, NfLayout * layout, gboolean * yuv)
{
  static const struct {
    GstVideoFormat format;
    NfLayout layout;
  } rgb[] = {
    {GST_VIDEO_FORMAT_RGB, NF_LAYOUT_RGB}, {GST_VIDEO_FORMAT_BGR, NF_LAYOUT_BGR},
    {GST_VIDEO_FORMAT_RGBx, NF_LAYOUT_RGBX}, {GST_VIDEO_FORMAT_BGRx, NF_LAYOUT_BGRX},
    {GST_VIDEO_FORMAT_xRGB, NF_LAYOUT_XRGB}, {GST_VIDEO_FORMAT_xBGR, NF_LAYOUT_XBGR},
    {GST_VIDEO_FORMAT_RGBA, NF_LAYOUT_RGBA}, {GST_VIDEO_FORMAT_BGRA, NF_LAYOUT_BGRA},
  };

  *yuv = f == GST_VIDEO_FORMAT_I420 || f == GST_VIDEO_FORMAT_NV12;
  if (*yuv) {
    *layout = NF_LAYOUT_RGBX;
    return TRUE;
  }
  for (guint i = 0; i < G_N_ELEMENTS (rgb); i++) {
    if (rgb[i].format == f) {
      *layout = rgb[i].layout;
      return TRUE;
    }
  }
  return FALSE;
}

/* The Y'CbCr matrix and range of info's colorimetry (BT.601 when unknown). */
static void
yuv_matrix_for (GstNeuralFilter * self, const GstVideoInfo * info, NfYuvMatrix * m)
{
  gdouble kr, kb;

  if (!gst_video_color_matrix_get_Kr_Kb (info->colorimetry.matrix, &kr, &kb)) {
    GST_WARNING_OBJECT (self, "no known YUV matrix in the caps: using BT.601");
    kr = 0.299;
    kb = 0.114;
  }
  nf_yuv_matrix_init (m, kr, kb,
      info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255);
  GST_DEBUG_OBJECT (self, "YUV matrix Kr %.4f Kb %.4f, %s range", kr, kb,
      info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255 ? "full" : "limited");
}

static gboolean
gst_neural_filter_set_info (GstVideoFilter * vf, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (vf);
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  NfLoadedModel *m = nf_model_runner_current (priv->runner);
  GstVideoFormat fmt = GST_VIDEO_INFO_FORMAT (in_info);
  gint w = GST_VIDEO_INFO_WIDTH (in_info), h = GST_VIDEO_INFO_HEIGHT (in_info);
  gint ow = GST_VIDEO_INFO_WIDTH (out_info), oh = GST_VIDEO_INFO_HEIGHT (out_info);
  gint s;

  if (fmt != GST_VIDEO_INFO_FORMAT (out_info)
      || !layout_for_format (fmt, &priv->layout, &priv->yuv))
    goto bad_format;
  if (GST_VIDEO_INFO_IS_INTERLACED (in_info))
    goto interlaced;
  if (!m)
    goto no_model;
  s = m->model->scale;
  if ((gint64) w * s != ow || (gint64) h * s != oh)
    goto bad_size;
  priv->alpha = !priv->yuv && nf_layout_has_alpha (priv->layout);

  gst_neural_filter_frame_free (priv);
  gst_neural_filter_frame_reset_temporal (self);
  priv->nv12 = fmt == GST_VIDEO_FORMAT_NV12;
  if (priv->yuv) {
    yuv_matrix_for (self, in_info, &priv->yuv_in);
    yuv_matrix_for (self, out_info, &priv->yuv_out);
  }
  GST_DEBUG_OBJECT (self, "%s %dx%d -> %dx%d", gst_video_format_to_string (fmt), w,
      h, ow, oh);
  return TRUE;

  /* ERRORS */
bad_format:
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
      ("Unsupported video format %s -> %s: convert to one of "
          GST_NEURAL_FILTER_FORMATS " first (e.g. with videoconvert).",
          gst_video_format_to_string (fmt),
          gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (out_info))), (NULL));
  return FALSE;
interlaced:
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
      ("Interlaced video is not supported: put a deinterlace element before "
          "this one."), (NULL));
  return FALSE;
no_model:
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
      ("No model is loaded: set the model property."), (NULL));
  return FALSE;
bad_size:
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
      ("The output size %dx%d is not %d times the input size %dx%d, as the model "
          "needs: let the element choose the output size (do not force both).",
          ow, oh, s, w, h), (NULL));
  return FALSE;
}

/* ---- one frame: begin and plan (both devices) ------------------------------------ */

/* What a frame needs to know of the model and the sizes, on either device. */
typedef struct {
  NfLoadedModel *m;
  gint w, h, ow, oh;            /* input and output frame sizes */
  gint s;                       /* the model's scale: ow = w * s, oh = h * s */
  gdouble strength;             /* weight of the network output, 0..1 */
  NfStabilizeParams stab;       /* stab.strength 0: no temporal stabilisation */
  gboolean preserve_color;      /* the input's colours (same-size outputs only) */
  NfShape shape;                /* network input [1, 3, ph, pw]: padded to the multiple */
  NfShape os;                   /* network output [1, 3, oph, opw] (oph >= oh) */
  gboolean was_planned;         /* FALSE: planned for this frame, its run is atypical */
} FrameJob;

/* Sizes against the model, the strength, and the subclass's settings of the model (a
 * style mix). An element error when the sizes disagree. */
static GstFlowReturn
frame_begin (GstNeuralFilter * self, NfLoadedModel * m, gint w, gint h, gint ow,
    gint oh, FrameJob * job)
{
  GstNeuralFilterClass *klass = GST_NEURAL_FILTER_GET_CLASS (self);

  *job = (FrameJob) { .m = m, .w = w, .h = h, .ow = ow, .oh = oh, .s = m->model->scale };
  if ((gint64) w * job->s != ow || (gint64) h * job->s != oh) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("The output frame is %dx%d but the model makes %dx%d from %dx%d input: "
            "the caps were not renegotiated after a model change; let the element "
            "choose its output size.", ow, oh, w * job->s, h * job->s, w, h), (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  job->strength = klass->get_strength ?
      CLAMP (klass->get_strength (self), 0.0, 1.0) : 1.0;
  job->stab = (NfStabilizeParams) {
    (gfloat) (klass->get_stabilize ? CLAMP (klass->get_stabilize (self), 0.0, 1.0) : 0.0),
    NF_STABILIZE_LO, NF_STABILIZE_HI,
    klass->get_stabilize_motion && klass->get_stabilize_motion (self) ? NF_MOTION_SEARCH : 0
  };
  job->preserve_color = job->s == 1 && klass->get_preserve_color
      && klass->get_preserve_color (self);
  if (klass->prepare_model)
    klass->prepare_model (self, m->model);
  return GST_FLOW_OK;
}

/* A network that failed on a frame: an element error a user can act on. */
static void
post_run_error (GstNeuralFilter * self, const FrameJob * job, const GError * err)
{
#ifdef NF_HAVE_GST_CUDA
  if (g_error_matches (err, NF_CUDA_ERROR, NF_CUDA_ERROR_OUT_OF_MEMORY)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Out of GPU memory running %s on %dx%d frames: use smaller frames (scale or "
            "split them before this element), precision=fp16 (half the memory), "
            "another GPU (cuda-device-id), or device=cpu.", job->m->path, job->w,
            job->h), ("%s", err->message));
    return;
  }
#endif
  GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
      ("The network %s failed on a %dx%d frame: %s", job->m->path, job->w, job->h,
          err->message), (NULL));
}

/* Plans the network for the frame size and checks what it makes of it. */
static GstFlowReturn
frame_plan (GstNeuralFilter * self, FrameJob * job)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GError *err = NULL;

  if (!nf_model_runner_plan (priv->runner, job->w, job->h, &job->shape,
          &job->was_planned, &err)) {
    post_run_error (self, job, err);
    g_error_free (err);
    return GST_FLOW_ERROR;
  }
  job->os = nf_engine_output_shape (job->m->engine);
  if (job->os.c != 3 || job->os.w < job->ow || job->os.h < job->oh) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
        ("The model %s turns %dx%d into a %d-channel %dx%d image, not a 3-channel "
            "%dx%d one: pick another model.", job->m->path, job->shape.w,
            job->shape.h, job->os.c, job->os.w, job->os.h, job->shape.w * job->s,
            job->shape.h * job->s), (NULL));
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

/* byte = y * ya + x * xa + b: the network output y (the model's output range) blended
 * by strength with the network input x (input range; same-size outputs only). */
static void
blend_coefficients (const FrameJob * job, gfloat * ya, gfloat * xa, gfloat * b)
{
  const NfModel *model = job->m->model;
  gfloat olo = model->out_lo, ohi = model->out_hi;
  gfloat ilo = model->in_lo, ihi = model->in_hi;

  *ya = (gfloat) (job->strength * 255.0 / (ohi - olo));
  *xa = job->s == 1 ? (gfloat) ((1.0 - job->strength) * 255.0 / (ihi - ilo)) : 0.0f;
  *b = -*ya * olo - *xa * ilo;
}

/* Any thread: the next frame's stabilisation starts afresh. */
void
gst_neural_filter_frame_reset_temporal (GstNeuralFilter * self)
{
  g_atomic_int_set (&gst_neural_filter_get_priv (self)->temporal_reset, TRUE);
}

/* Whether this frame's stabilisation starts afresh (clears the request). */
static gboolean
take_temporal_reset (GstNeuralFilterPrivate * priv)
{
  return g_atomic_int_compare_and_exchange (&priv->temporal_reset, TRUE, FALSE);
}

/* preserve-color: x (the model's input units) * xm + xb is in its output units; the
 * luma weights are the output caps' matrix (BT.601 for RGB caps). *chroma_copy: the
 * output is I420/NV12 with the input's matrix and range, so its chroma planes can be
 * the input's, copied (exact and nearly free) instead of computed. */
static void
color_params (GstNeuralFilterPrivate * priv, const FrameJob * job, gfloat * xm,
    gfloat * xb, gfloat * kr, gfloat * kb, gboolean * chroma_copy)
{
  const NfModel *model = job->m->model;

  *xm = (model->out_hi - model->out_lo) / (model->in_hi - model->in_lo);
  *xb = model->out_lo - model->in_lo * *xm;
  *kr = priv->yuv ? priv->yuv_out.kr : 0.299f;
  *kb = priv->yuv ? priv->yuv_out.kb : 0.114f;
  *chroma_copy = priv->yuv
      && memcmp (&priv->yuv_in, &priv->yuv_out, sizeof (NfYuvMatrix)) == 0;
}

/* ---- one frame on the CPU ---------------------------------------------------------- */

void
gst_neural_filter_frame_free (GstNeuralFilterPrivate * priv)
{
  nf_stabilizer_free (priv->stabilizer);
  priv->stabilizer = NULL;
  priv->temporal_pts = GST_CLOCK_TIME_NONE;
  nf_free (priv->in_planes);
  nf_free (priv->out_planes);
  priv->in_planes = priv->out_planes = NULL;
  priv->in_len = priv->out_len = 0;
  g_free (priv->alpha_plane);
  priv->alpha_plane = NULL;
  priv->alpha_len = 0;
  nf_convert_scratch_free (priv->scratch);
  priv->scratch = NULL;
  priv->scratch_width = 0;
}

gboolean
gst_neural_filter_grow_floats (gfloat ** buf, gsize * len, gsize n)
{
  if (*len >= n)
    return TRUE;
  nf_free (*buf);
  *buf = nf_alloc_floats (n);
  *len = *buf ? n : 0;
  return *buf != NULL;
}

/* The planes, scratch rows and alpha plane of this frame size. */
static gboolean
frame_buffers (GstNeuralFilterPrivate * priv, const FrameJob * job)
{
  gint width = MAX (job->w, job->ow);
  gsize npix = (gsize) job->w * job->h;

  if (priv->scratch_width < width) {
    nf_convert_scratch_free (priv->scratch);
    priv->scratch = nf_convert_scratch_new (width);
    priv->scratch_width = priv->scratch ? width : 0;
    if (!priv->scratch)
      return FALSE;
  }
  if (!gst_neural_filter_grow_floats (&priv->in_planes, &priv->in_len,
          nf_shape_numel (job->shape))
      || !gst_neural_filter_grow_floats (&priv->out_planes, &priv->out_len,
          nf_shape_numel (job->os)))
    return FALSE;
  if (priv->alpha && priv->alpha_len < npix) {
    g_free (priv->alpha_plane);
    priv->alpha_plane = g_try_malloc (npix);
    priv->alpha_len = priv->alpha_plane ? npix : 0;
    if (!priv->alpha_plane)
      return FALSE;
  }
  return TRUE;
}

#define PLANE(f, i) GST_VIDEO_FRAME_PLANE_DATA (f, i)
#define STRIDE(f, i) GST_VIDEO_FRAME_PLANE_STRIDE (f, i)

/* Pixels -> in_planes [1, 3, ph, pw] in the model's input range, reflection-padded. */
static void
frame_unpack (GstNeuralFilterPrivate * priv, const FrameJob * job, GstVideoFrame * in)
{
  gfloat lo = job->m->model->in_lo, hi = job->m->model->in_hi;
  gint pw = job->shape.w, ph = job->shape.h;

  if (priv->yuv)
    nf_convert_yuv_unpack (&priv->yuv_in, priv->nv12, PLANE (in, 0), STRIDE (in, 0),
        PLANE (in, 1), STRIDE (in, 1), priv->nv12 ? NULL : PLANE (in, 2),
        priv->nv12 ? 0 : STRIDE (in, 2), job->w, job->h, priv->in_planes, pw, ph,
        (hi - lo) / 255.0f, lo);
  else
    nf_convert_unpack (priv->impl, priv->scratch, priv->layout, PLANE (in, 0),
        STRIDE (in, 0), job->w, job->h, priv->in_planes, pw, ph,
        priv->alpha ? priv->alpha_plane : NULL, (hi - lo) / 255.0f, lo);
}

/* Temporal stabilisation, then the input's colours, on out_planes (nf-stabilize.c,
 * nf-preserve-color.c). *chroma_copy: preserve-color is left to frame_pack, which
 * copies the input's chroma planes. FALSE: out of memory. */
static gboolean
frame_steps (GstNeuralFilterPrivate * priv, const FrameJob * job, gboolean * chroma_copy)
{
  const NfModel *model = job->m->model;
  gint pw = job->shape.w, ph = job->shape.h, opw = job->os.w, oph = job->os.h;
  gfloat xm, xb, kr, kb;

  *chroma_copy = FALSE;
  if (!priv->stabilizer && !(priv->stabilizer = nf_stabilizer_new ()))
    return FALSE;
  if (take_temporal_reset (priv) || job->stab.strength <= 0.0f)
    nf_stabilizer_reset (priv->stabilizer);
  if (job->stab.strength > 0.0f && !nf_stabilizer_apply (priv->stabilizer, &job->stab,
          priv->in_planes, pw, (gsize) pw * ph, job->w, job->h,
          255.0f / (model->in_hi - model->in_lo), priv->out_planes, opw,
          (gsize) opw * oph, job->s))
    return FALSE;
  if (job->stab.strength > 0.0f && job->stab.search > 0) {
    gint dx, dy;
    nf_stabilizer_last_shift (priv->stabilizer, &dx, &dy);
    if (dx || dy)
      GST_LOG ("stabilize: the camera moved (%d, %d) px", dx, dy);
  }
  if (!job->preserve_color)
    return TRUE;
  color_params (priv, job, &xm, &xb, &kr, &kb, chroma_copy);
  if (!*chroma_copy)
    nf_preserve_color (priv->out_planes, opw, (gsize) opw * oph, priv->in_planes, pw,
        (gsize) pw * ph, job->w, job->h, xm, xb, kr, kb);
  return TRUE;
}

/* out_planes [1, 3, oph, opw] in the model's output range -> pixels: cropped, blended
 * by strength with in_planes; chroma_copy: I420/NV12 chroma copied from in. */
static void
frame_pack (GstNeuralFilterPrivate * priv, const FrameJob * job, GstVideoFrame * in,
    GstVideoFrame * out, gboolean chroma_copy)
{
  gint pw = job->shape.w, ph = job->shape.h, opw = job->os.w, oph = job->os.h;
  gfloat ya, xa, b;

  blend_coefficients (job, &ya, &xa, &b);
  const gfloat *x = xa != 0.0f ? priv->in_planes : NULL;
  if (priv->yuv) {
    nf_convert_yuv_pack (&priv->yuv_out, priv->nv12, PLANE (out, 0), STRIDE (out, 0),
        chroma_copy ? NULL : PLANE (out, 1), STRIDE (out, 1),
        priv->nv12 ? NULL : PLANE (out, 2), priv->nv12 ? 0 : STRIDE (out, 2), job->ow,
        job->oh, priv->out_planes, opw, (gsize) opw * oph, x, pw, (gsize) pw * ph, ya, xa,
        b);
    if (chroma_copy) {
      gst_video_frame_copy_plane (out, in, 1);
      if (!priv->nv12)
        gst_video_frame_copy_plane (out, in, 2);
    }
  } else
    nf_convert_pack (priv->impl, priv->scratch, priv->layout, PLANE (out, 0),
        STRIDE (out, 0), job->ow, job->oh, priv->out_planes, opw, (gsize) opw * oph,
        x, pw, (gsize) pw * ph, priv->alpha ? priv->alpha_plane : NULL, job->w,
        job->s, ya, xa, b);
}

static GstFlowReturn
gst_neural_filter_transform_frame (GstVideoFilter * vf, GstVideoFrame * in,
    GstVideoFrame * out)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (vf);
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  NfLoadedModel *m = nf_model_runner_current (priv->runner);
  GError *err = NULL;
  GstFlowReturn ret;
  FrameJob job;

  if (!m) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("No model is loaded: set the model property."), (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  ret = frame_begin (self, m, GST_VIDEO_FRAME_WIDTH (in), GST_VIDEO_FRAME_HEIGHT (in),
      GST_VIDEO_FRAME_WIDTH (out), GST_VIDEO_FRAME_HEIGHT (out), &job);
  if (ret != GST_FLOW_OK)
    return ret;
  if (job.s == 1 && job.strength <= 0.0) {
    priv->frame_atypical = TRUE;        /* a copy: no network, nothing to stabilise */
    gst_neural_filter_frame_reset_temporal (self);
    return gst_video_frame_copy (out, in) ? GST_FLOW_OK : GST_FLOW_ERROR;
  }
  if (gst_neural_filter_luma_usable (priv, m, job.s, job.strength, job.stab.strength))
    return gst_neural_filter_luma_frame (self, m, job.s, in, out);

  if ((ret = frame_plan (self, &job)) != GST_FLOW_OK)
    return ret;
  priv->frame_atypical = !job.was_planned;      /* the first run after a plan */
  if (!frame_buffers (priv, &job)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Out of memory for %dx%d frames: use smaller frames.", job.w, job.h), (NULL));
    return GST_FLOW_ERROR;
  }

  gint64 t0 = g_get_monotonic_time ();
  frame_unpack (priv, &job, in);

  gint64 t1 = g_get_monotonic_time ();
  if (!nf_model_runner_run_host (priv->runner, priv->in_planes, job.shape,
          priv->out_planes, &err)) {
    post_run_error (self, &job, err);
    g_error_free (err);
    return GST_FLOW_ERROR;
  }

  gint64 t2 = g_get_monotonic_time ();
  gboolean chroma_copy;
  if (!frame_steps (priv, &job, &chroma_copy)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Out of memory for the stabilisation of %dx%d frames: use smaller frames or "
            "stabilize=0.", job.w, job.h), (NULL));
    return GST_FLOW_ERROR;
  }
  frame_pack (priv, &job, in, out, chroma_copy);
  GST_LOG_OBJECT (self, "unpack %.2f ms, network %.2f ms, steps and pack %.2f ms",
      (t1 - t0) / 1e3, (t2 - t1) / 1e3, (g_get_monotonic_time () - t2) / 1e3);
  return GST_FLOW_OK;
}

/* ---- one frame on the GPU -------------------------------------------------------- */

#ifdef NF_HAVE_GST_CUDA
/* Conversions, network and blend on the GPU (gstneuralfilter-cuda.c); frames in CUDA
 * memory of the runner's context are used in place. */
static GstFlowReturn
transform_cuda (GstNeuralFilter * self, NfLoadedModel * m, GstBuffer * inbuf,
    GstBuffer * outbuf)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstVideoFilter *vf = GST_VIDEO_FILTER (self);
  GError *err = NULL;
  GstFlowReturn ret;
  FrameJob job;

  if (!vf->negotiated) {
    GST_ELEMENT_ERROR (self, CORE, NOT_IMPLEMENTED, (NULL), ("caps not negotiated"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  ret = frame_begin (self, m, GST_VIDEO_INFO_WIDTH (&vf->in_info),
      GST_VIDEO_INFO_HEIGHT (&vf->in_info), GST_VIDEO_INFO_WIDTH (&vf->out_info),
      GST_VIDEO_INFO_HEIGHT (&vf->out_info), &job);
  if (ret != GST_FLOW_OK || (ret = frame_plan (self, &job)) != GST_FLOW_OK)
    return ret;

  NfGstCudaJob cj = {
    .engine = m->engine, .backend = m->backend, .ctx = m->device_ctx,
    .shape = job.shape, .run_network = !(job.s == 1 && job.strength <= 0.0),
    .in_scale = (m->model->in_hi - m->model->in_lo) / 255.0f,
    .in_offset = m->model->in_lo, .scale = job.s,
    .yuv_in = &priv->yuv_in, .yuv_out = &priv->yuv_out,
    .in_info = &vf->in_info, .out_info = &vf->out_info,
  };
  blend_coefficients (&job, &cj.ya, &cj.xa, &cj.b);
  cj.stab = job.stab;
  cj.temporal_reset = take_temporal_reset (priv);
  cj.x_to_levels = 255.0f / (m->model->in_hi - m->model->in_lo);
  if (job.preserve_color) {
    color_params (priv, &job, &cj.color_xm, &cj.color_xb, &cj.kr, &cj.kb,
        &cj.chroma_copy);
    cj.preserve_color = !cj.chroma_copy;
  }
  /* the first run after a plan, and a copy, are not typical */
  priv->frame_atypical = !job.was_planned || !cj.run_network;
  if (!nf_gst_cuda_process (priv->cuda, &cj, inbuf, outbuf, &err)) {
    post_run_error (self, &job, err);
    g_error_free (err);
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}
#endif

/* CUDA runners take every buffer themselves (they map CUDA memory as such); CPU
 * runners go through GstVideoFilter, which maps the frames for transform_frame. The
 * test delay ($NEURALFILTER_TEST_DELAY_MS) counts as work on the frame. */
static GstFlowReturn
gst_neural_filter_transform (GstBaseTransform * trans, GstBuffer * inbuf,
    GstBuffer * outbuf)
{
  gst_neural_filter_live_test_delay (GST_NEURAL_FILTER (trans));
#ifdef NF_HAVE_GST_CUDA
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  NfLoadedModel *m = nf_model_runner_current (gst_neural_filter_get_priv (self)->runner);
  if (m && m->device_ctx)
    return transform_cuda (self, m, inbuf, outbuf);
#endif
  return PARENT_TRANSFORM_CLASS->transform (trans, inbuf, outbuf);
}

void
gst_neural_filter_frame_class_init (GstNeuralFilterClass * klass)
{
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *vfilter_class = GST_VIDEO_FILTER_CLASS (klass);

  trans_class->transform_caps = GST_DEBUG_FUNCPTR (gst_neural_filter_transform_caps);
  trans_class->transform = GST_DEBUG_FUNCPTR (gst_neural_filter_transform);
  vfilter_class->set_info = GST_DEBUG_FUNCPTR (gst_neural_filter_set_info);
  vfilter_class->transform_frame =
      GST_DEBUG_FUNCPTR (gst_neural_filter_transform_frame);
  gst_neural_filter_stream_class_init (klass);
  gst_neural_filter_live_class_init (klass);
}
