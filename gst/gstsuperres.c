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
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=100 ! video/x-raw,width=160,height=120 ! superres model=sr-subpixel-x2 ! videoconvert ! autovideosink
 * ]| Upscales a 160x120 test pattern to 320x240 with a shipped x2 model.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsuperres.h"

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

static GstCaps *
gst_super_res_transform_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * filter)
{
  gint s = gst_neural_filter_get_scale (GST_NEURAL_FILTER (trans));
  gboolean up = direction == GST_PAD_SINK;
  GstCaps *ret = gst_caps_new_empty ();

  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    GstCapsFeatures *f = gst_caps_get_features (caps, i);
    if (!gst_neural_filter_memory_usable (GST_NEURAL_FILTER (trans), f))
      continue;                 /* CUDA memory while running on the CPU */
    GstStructure *st = gst_structure_copy (gst_caps_get_structure (caps, i));

    if (s <= 0) {
      /* No model loaded yet: any size (set_info checks once one is). */
      gst_structure_set (st, "width", GST_TYPE_INT_RANGE, 1, G_MAXINT,
          "height", GST_TYPE_INT_RANGE, 1, G_MAXINT, NULL);
    } else if (!transform_size_field (st, "width", s, up)
        || !transform_size_field (st, "height", s, up)) {
      gst_structure_free (st);
      continue;
    }
    ret = gst_caps_merge_structure_full (ret, st, f ? gst_caps_features_copy (f) : NULL);
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

static GstCaps *
gst_super_res_fixate_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * othercaps)
{
  gint s = gst_neural_filter_get_scale (GST_NEURAL_FILTER (trans));
  GstStructure *ins, *outs;
  gint w, h;

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
  return GST_BASE_TRANSFORM_CLASS (gst_super_res_parent_class)->fixate_caps (trans,
      direction, caps, othercaps);
}

static void
gst_super_res_class_init (GstSuperResClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstNeuralFilterClass *filter_class = GST_NEURAL_FILTER_CLASS (klass);

  gst_element_class_set_static_metadata (element_class,
      "Neural super-resolution", "Filter/Effect/Video",
      "Upscales video x2, x3 or x4 with a super-resolution network loaded from a "
      ".safetensors model; output size = input size x the model's scale",
      "neuralfilter project <neuralfilter@localhost>");
  gst_element_class_add_static_metadata (element_class, "example",
      "gst-launch-1.0 videotestsrc ! video/x-raw,width=160,height=120 ! "
      "superres model=sr-subpixel-x2 ! videoconvert ! autovideosink");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->transform_caps = GST_DEBUG_FUNCPTR (gst_super_res_transform_caps);
  trans_class->fixate_caps = GST_DEBUG_FUNCPTR (gst_super_res_fixate_caps);

  filter_class->task = NF_TASK_SUPERRES;
}

static void
gst_super_res_init (GstSuperRes * self)
{
}
