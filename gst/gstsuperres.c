/* gstsuperres.c — the superres element: neural super-resolution on video.
 *
 * What it does: runs a super-resolution model on every frame; the output is the input
 * times the model's scale (2, 3 or 4) in both directions. Caps: transform_caps
 * multiplies sizes going downstream and divides them going upstream (fixed values,
 * ranges with steps, and lists; sizes that are not a multiple of the scale are dropped
 * upstream), keeping format, memory (CUDA memory only while running on CUDA),
 * pixel-aspect-ratio and framerate; fixate_caps picks the
 * exact multiple. The model is loaded when the element goes to READY, so its scale is
 * known before negotiation; a model swapped in while PLAYING with another scale
 * renegotiates the output caps before the next frame.
 * Without a model setting the caps choose the scale: transform_caps offers x2, x3 and
 * x4 in that order of preference (then, for a fixed size, any other size, so that a
 * size no scale fits reaches set_info and its clear error); fixate_caps aims at x2;
 * set_info takes the scale of the negotiated sizes and has the runner load the first
 * of sr-video-xS, sr-subpixel-xS, sr-light-xS that is found, or on the CPU first
 * sr-light-xS (nf_model_runner_choose); the scale then stays until
 * the element goes back to NULL.
 * What it does not: anything of the model, the pixel formats or the device (the
 * GstNeuralFilter base class does all of that), or scaling by factors other than the
 * model's (put videoscale after it).
 */

/**
 * SECTION:element-superres
 * @title: superres
 * @see_also: neuralstyle, videoscale
 *
 * Upscales every frame of a video by the scale of its super-resolution network (a
 * fully convolutional network trained with a perceptual loss, Johnson et al. 2016, or
 * a sub-pixel network). The output size is always the input size times the model's
 * scale; the format, pixel aspect ratio and framerate stay the same.
 *
 * The model is loaded when the element goes to READY (the scale must be known to
 * negotiate caps): a missing or wrong model is an error at that point.
 *
 * Without the model property, the caps choose: the output size that downstream asks
 * for (x2 when it is free) picks the shipped model of that scale: on a GPU
 * sr-video-x2/-x4 (trained on compressed video), else sr-subpixel-x2/-x3/-x4; on the
 * CPU the real-time sr-light-x2/-x3/-x4 first; an output size that is
 * not 2, 3 or 4 times the input is a negotiation error, and so is a scale without a
 * shipped model. One INFO line in the debug log names the model chosen.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=100 ! video/x-raw,width=160,height=120 ! superres model=sr-subpixel-x2 ! videoconvert ! autovideosink
 * ]| Upscales a 160x120 test pattern to 320x240 with a shipped x2 model.
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=100 ! video/x-raw,width=640,height=360 ! superres ! video/x-raw,width=1920,height=1080 ! videoconvert ! autovideosink
 * ]| Upscales 640x360 to 1920x1080 with the shipped x3 model the caps pick.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsuperres.h"

#include "gstneuralfilter-private.h"

GST_DEBUG_CATEGORY_STATIC (gst_super_res_debug);
#define GST_CAT_DEFAULT gst_super_res_debug

struct _GstSuperRes
{
  GstNeuralFilter parent;
};

G_DEFINE_TYPE_WITH_CODE (GstSuperRes, gst_super_res, GST_TYPE_NEURAL_FILTER,
    GST_DEBUG_CATEGORY_INIT (gst_super_res_debug, "superres", 0,
        "neural super-resolution"));
GST_ELEMENT_REGISTER_DEFINE (superres, "superres", GST_RANK_NONE,
    GST_TYPE_SUPER_RES);

/* Without a model setting: the scales the caps may choose, x2 (free output) first. */
static const gint auto_scales[] = { 2, 3, 4 };

static gboolean
model_is_automatic (GstBaseTransform * trans)
{
  return nf_model_runner_is_automatic (gst_neural_filter_get_priv (GST_NEURAL_FILTER
          (trans))->runner);
}

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_NEURAL_FILTER_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_NEURAL_FILTER_CAPS));

static gint64
gcd64 (gint64 a, gint64 b)
{
  while (b) {
    gint64 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* One size value times s (up) or divided by s (!up); FALSE when no value is left. */
static gboolean
transform_size_value (const GValue * in, GValue * out, gint s, gboolean up)
{
  if (G_VALUE_HOLDS_INT (in)) {
    gint64 v = g_value_get_int (in);
    if (up ? v * s > G_MAXINT : v % s != 0)
      return FALSE;
    g_value_init (out, G_TYPE_INT);
    g_value_set_int (out, (gint) (up ? v * s : v / s));
    return TRUE;
  }

  if (GST_VALUE_HOLDS_INT_RANGE (in)) {
    /* A range holds the multiples of step between min and max (both multiples). */
    gint64 min = gst_value_get_int_range_min (in);
    gint64 max = gst_value_get_int_range_max (in);
    gint64 step = gst_value_get_int_range_step (in);
    gint64 nmin, nmax, nstep;
    if (up) {
      nstep = step * s;
      nmin = min * s;
      nmax = MIN (max * s, G_MAXINT / nstep * nstep);
    } else {
      gint64 l = step / gcd64 (step, s) * s;      /* lcm: values divisible by s */
      nmin = (min + l - 1) / l * l / s;
      nmax = max / l * l / s;
      nstep = l / s;
    }
    if (nmin > nmax || nmin > G_MAXINT)
      return FALSE;
    if (nmin == nmax) {
      g_value_init (out, G_TYPE_INT);
      g_value_set_int (out, (gint) nmin);
    } else {
      g_value_init (out, GST_TYPE_INT_RANGE);
      gst_value_set_int_range_step (out, (gint) nmin, (gint) nmax, (gint) nstep);
    }
    return TRUE;
  }

  if (GST_VALUE_HOLDS_LIST (in)) {
    GValue list = G_VALUE_INIT;
    g_value_init (&list, GST_TYPE_LIST);
    for (guint i = 0; i < gst_value_list_get_size (in); i++) {
      GValue v = G_VALUE_INIT;
      if (transform_size_value (gst_value_list_get_value (in, i), &v, s, up))
        gst_value_list_append_and_take_value (&list, &v);
    }
    guint n = gst_value_list_get_size (&list);
    if (n == 0) {
      g_value_unset (&list);
      return FALSE;
    }
    if (n == 1) {
      g_value_init (out, G_VALUE_TYPE (gst_value_list_get_value (&list, 0)));
      g_value_copy (gst_value_list_get_value (&list, 0), out);
      g_value_unset (&list);
    } else {
      *out = list;
    }
    return TRUE;
  }

  return FALSE;
}

static gboolean
transform_size_field (GstStructure * st, const gchar * field, gint s, gboolean up)
{
  const GValue *v = gst_structure_get_value (st, field);
  GValue out = G_VALUE_INIT;

  if (!v)
    return TRUE;                /* unrestricted stays unrestricted */
  if (!transform_size_value (v, &out, s, up))
    return FALSE;
  gst_structure_take_value (st, field, &out);
  return TRUE;
}

/* ret + caps' structures (less unusable memory) with their sizes times s (up) or
 * divided by s; s 0: any size; s -1: of the structures whose size is fixed, any size
 * but that width (any other scale than x1: the base class puts the untransformed
 * peer caps first in caps queries when they fit, which would make x1 the choice). */
static GstCaps *
append_scaled (GstBaseTransform * trans, GstCaps * ret, GstCaps * caps, gint s,
    gboolean up)
{
  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    GstCapsFeatures *f = gst_caps_get_features (caps, i);
    const GstStructure *in = gst_caps_get_structure (caps, i);
    gint w, h;
    if (!gst_neural_filter_memory_usable (GST_NEURAL_FILTER (trans), f))
      continue;                 /* CUDA memory while running on the CPU */
    if (s < 0 && !(gst_structure_get_int (in, "width", &w)
            && gst_structure_get_int (in, "height", &h)))
      continue;
    GstStructure *st = gst_structure_copy (in);

    if (s < 0) {
      GValue others = G_VALUE_INIT, r = G_VALUE_INIT;
      g_value_init (&others, GST_TYPE_LIST);
      for (int k = 0; k < 2; k++) {
        gint lo = k ? w + 1 : 1, hi = k ? G_MAXINT : w - 1;
        if (lo > hi)
          continue;
        g_value_init (&r, GST_TYPE_INT_RANGE);
        gst_value_set_int_range (&r, lo, hi);
        gst_value_list_append_and_take_value (&others, &r);
      }
      gst_structure_take_value (st, "width", &others);
      gst_structure_set (st, "height", GST_TYPE_INT_RANGE, 1, G_MAXINT, NULL);
    } else if (s == 0) {
      gst_structure_set (st, "width", GST_TYPE_INT_RANGE, 1, G_MAXINT,
          "height", GST_TYPE_INT_RANGE, 1, G_MAXINT, NULL);
    } else if (!transform_size_field (st, "width", s, up)
        || !transform_size_field (st, "height", s, up)) {
      gst_structure_free (st);
      continue;
    }
    ret = gst_caps_merge_structure_full (ret, st, f ? gst_caps_features_copy (f) : NULL);
  }
  return ret;
}

static GstCaps *
gst_super_res_transform_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * filter)
{
  gint s = gst_neural_filter_get_scale (GST_NEURAL_FILTER (trans));
  gboolean up = direction == GST_PAD_SINK;
  GstCaps *ret = gst_caps_new_empty ();

  if (s <= 0 && model_is_automatic (trans)) {
    /* The caps choose the scale: each scale in order of preference, then for a
     * fixed size any other size, so that a size no scale fits reaches set_info and
     * its clear error. */
    for (guint k = 0; k < G_N_ELEMENTS (auto_scales); k++)
      ret = append_scaled (trans, ret, caps, auto_scales[k], up);
    ret = append_scaled (trans, ret, caps, -1, up);
  } else {
    /* s <= 0 and a model set: not loaded yet, any size (set_info checks once it is) */
    ret = append_scaled (trans, ret, caps, MAX (s, 0), up);
  }

  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, ret, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (ret);
    ret = tmp;
  }
  GST_DEBUG_OBJECT (trans, "scale %d, %s: %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
      s, up ? "up" : "down", caps, ret);
  return ret;
}

/* Y'CbCr: the other side's colorimetry where it is free, fixated to that of the fixed
 * side (caps), so an upscale keeps the matrix and range of its input. Caps without a
 * colorimetry get one by size (BT.601 below 720 lines, BT.709 from there): without
 * this a 640x360 -> 1280x720 upscale would change matrix, costing two colour
 * conversions per frame and the luma path (gstneuralfilter-luma.c). */
static void
fixate_colorimetry (GstCaps * caps, GstStructure * outs)
{
  GstVideoInfo info;
  if (!gst_video_info_from_caps (&info, caps) || !GST_VIDEO_INFO_IS_YUV (&info))
    return;
  gchar *c = gst_video_colorimetry_to_string (&info.colorimetry);
  if (!c)
    return;
  if (!gst_structure_has_field (outs, "colorimetry"))
    gst_structure_set (outs, "colorimetry", G_TYPE_STRING, c, NULL);
  else
    gst_structure_fixate_field_string (outs, "colorimetry", c);
  g_free (c);
}

static GstCaps *
gst_super_res_fixate_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * othercaps)
{
  gint s = gst_neural_filter_get_scale (GST_NEURAL_FILTER (trans));
  GstStructure *ins, *outs;
  gint w, h;

  if (s <= 0 && model_is_automatic (trans))
    s = auto_scales[0];         /* a free size: the preferred scale */
  othercaps = gst_caps_truncate (othercaps);
  othercaps = gst_caps_make_writable (othercaps);
  if (gst_caps_is_empty (othercaps))
    return othercaps;
  ins = gst_caps_get_structure (caps, 0);
  outs = gst_caps_get_structure (othercaps, 0);
  if (s > 0 && gst_structure_get_int (ins, "width", &w)
      && gst_structure_get_int (ins, "height", &h)) {
    gint64 tw = direction == GST_PAD_SINK ? (gint64) w * s : w / s;
    gint64 th = direction == GST_PAD_SINK ? (gint64) h * s : h / s;
    if (gst_structure_has_field (outs, "width"))
      gst_structure_fixate_field_nearest_int (outs, "width", (gint) MIN (tw, G_MAXINT));
    else
      gst_structure_set (outs, "width", G_TYPE_INT, (gint) MIN (tw, G_MAXINT), NULL);
    if (gst_structure_has_field (outs, "height"))
      gst_structure_fixate_field_nearest_int (outs, "height", (gint) MIN (th, G_MAXINT));
    else
      gst_structure_set (outs, "height", G_TYPE_INT, (gint) MIN (th, G_MAXINT), NULL);
  }
  fixate_colorimetry (caps, outs);
  return GST_BASE_TRANSFORM_CLASS (gst_super_res_parent_class)->fixate_caps (trans,
      direction, caps, othercaps);
}

/* No model set: the model of the scale of the negotiated sizes (see the header). */
static gboolean
choose_model (GstSuperRes * self, const GstVideoInfo * in, const GstVideoInfo * out)
{
  NfModelRunner *runner = gst_neural_filter_get_priv (GST_NEURAL_FILTER (self))->runner;
  gint w = GST_VIDEO_INFO_WIDTH (in), h = GST_VIDEO_INFO_HEIGHT (in);
  gint ow = GST_VIDEO_INFO_WIDTH (out), oh = GST_VIDEO_INFO_HEIGHT (out);
  gint s = w > 0 && ow % w == 0 ? ow / w : 0;
  GError *err = NULL;

  if (s < auto_scales[0] || s > auto_scales[G_N_ELEMENTS (auto_scales) - 1]
      || (gint64) h * s != oh) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("No model is set, so superres picks one by the scale the caps ask for, but "
            "the output size %dx%d is not 2, 3 or 4 times the input size %dx%d in both "
            "directions: ask for twice, three or four times the input size (or leave "
            "the output size free, for x2), or set the model property.", ow, oh, w, h),
        (NULL));
    return FALSE;
  }
  /* a GPU runs the heavy networks in real time; on a CPU only sr-light keeps up with
   * live video (README, Speed on the CPU) */
  gchar *names[] = { g_strdup_printf ("sr-video-x%d", s),
    g_strdup_printf ("sr-subpixel-x%d", s), g_strdup_printf ("sr-light-x%d", s), NULL
  };
  const gchar *cpu_names[] = { names[2], names[0], names[1], NULL };
  gboolean ok = nf_model_runner_choose (runner, (const gchar * const *) names, cpu_names,
      &err);
  if (!ok) {
    gint code = g_error_matches (err, NF_RUNNER_ERROR, NF_RUNNER_ERROR_NOT_FOUND) ?
        GST_RESOURCE_ERROR_NOT_FOUND : GST_RESOURCE_ERROR_READ;
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_ERROR, GST_RESOURCE_ERROR,
        code, g_strdup_printf ("No model is set, and the caps ask for x%d (%dx%d -> "
            "%dx%d), but %s. Set the model property to a x%d model, or install the "
            "shipped models.", s, w, h, ow, oh, err->message, s), NULL, __FILE__,
        GST_FUNCTION, __LINE__);
    g_error_free (err);
  }
  for (guint i = 0; names[i]; i++)
    g_free (names[i]);
  return ok;
}

static gboolean
gst_super_res_set_info (GstVideoFilter * vf, GstCaps * incaps, GstVideoInfo * in_info,
    GstCaps * outcaps, GstVideoInfo * out_info)
{
  NfModelRunner *runner = gst_neural_filter_get_priv (GST_NEURAL_FILTER (vf))->runner;

  if (!nf_model_runner_current (runner) && nf_model_runner_is_automatic (runner)
      && !choose_model (GST_SUPER_RES (vf), in_info, out_info))
    return FALSE;
  return GST_VIDEO_FILTER_CLASS (gst_super_res_parent_class)->set_info (vf, incaps,
      in_info, outcaps, out_info);
}

static void
gst_super_res_class_init (GstSuperResClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *vfilter_class = GST_VIDEO_FILTER_CLASS (klass);
  GstNeuralFilterClass *filter_class = GST_NEURAL_FILTER_CLASS (klass);

  gst_element_class_set_static_metadata (element_class,
      "Neural super-resolution", "Filter/Effect/Video",
      "Upscales video x2, x3 or x4 with a super-resolution network loaded from a "
      ".safetensors model; output size = input size x the model's scale. Without a "
      "model, the output size the caps ask for picks the shipped model of that scale "
      "(on a GPU sr-video-xS, else sr-subpixel-xS; on the CPU the real-time "
      "sr-light-xS first; x2 when the output size is free)",
      "neuralfilter project <neuralfilter@localhost>");
  gst_element_class_add_static_metadata (element_class, "example",
      "gst-launch-1.0 videotestsrc ! video/x-raw,width=160,height=120 ! "
      "superres model=sr-subpixel-x2 ! videoconvert ! autovideosink");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->transform_caps = GST_DEBUG_FUNCPTR (gst_super_res_transform_caps);
  trans_class->fixate_caps = GST_DEBUG_FUNCPTR (gst_super_res_fixate_caps);
  vfilter_class->set_info = GST_DEBUG_FUNCPTR (gst_super_res_set_info);

  filter_class->task = NF_TASK_SUPERRES;
}

static void
gst_super_res_init (GstSuperRes * self)
{
}
