/* gstneuralstyle-mix.c — neuralstyle's style, style-mix and style-position properties
 * (see gstneuralstyle-mix.h).
 *
 * What it does: the GObject side of nf-style-mix.h: property specs, set/get, and the
 * WARNING messages on the bus for values and models that cannot take them.
 * What it does not: parsing or applying (nf-style-mix.c).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstneuralstyle-mix.h"
#include "gstneuralfilter.h"

GST_DEBUG_CATEGORY_STATIC (gst_neural_style_mix_debug);
#define GST_CAT_DEFAULT gst_neural_style_mix_debug

#define FLAGS (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_CONTROLLABLE \
    | GST_PARAM_MUTABLE_PLAYING)

void
gst_neural_style_mix_install (GObjectClass * klass, guint first)
{
  GST_DEBUG_CATEGORY_INIT (gst_neural_style_mix_debug, "neuralstyle-mix", 0,
      "neuralstyle's style settings");
  g_object_class_install_property (klass, first,
      g_param_spec_string ("style", "Style",
          "The style a multi-style model runs: its name (the model's \"styles\" metadata, "
          "e.g. starry_night) or its index; empty: the model's first. Applied at the next "
          "frame, without reloading; a model of one style ignores it (one warning)",
          NULL, FLAGS));
  g_object_class_install_property (klass, first + 1,
      g_param_spec_string ("style-mix", "Style mix",
          "A blend of a multi-style model's styles: name:weight pairs, e.g. "
          "\"starry_night:0.5,great_wave:0.5\" (names or indices; styles not listed weigh "
          "0; weights are used as given: >= 0 and summing to 1 blends, others "
          "extrapolate). Applied at the next frame, without reloading; empty: the model's "
          "first style", NULL, FLAGS));
  g_object_class_install_property (klass, first + 2,
      g_param_spec_double ("style-position", "Style position",
          "A place in a multi-style model's list of styles: 1.25 is 75% of style 1 and "
          "25% of style 2 (clamped to the last style); negative: not used. A number, so "
          "GstController sources can animate it (a sweep through the styles, a "
          "cross-fade)", -1.0, 1024.0, -1.0, FLAGS));
}

void
gst_neural_style_mix_set_property (GstElement * element, NfStyleMix * mix, guint id,
    const GValue * value)
{
  GError *err = NULL;
  gboolean ok = id == 0 ? nf_style_mix_set_style (mix, g_value_get_string (value), &err)
      : id == 1 ? nf_style_mix_set_mix (mix, g_value_get_string (value), &err)
      : nf_style_mix_set_position (mix, g_value_get_double (value), &err);
  if (!ok) {
    GST_ELEMENT_WARNING (element, LIBRARY, SETTINGS,
        ("%s; the previous style setting stays.", err->message), (NULL));
    g_error_free (err);
  }
}

void
gst_neural_style_mix_get_property (NfStyleMix * mix, guint id, GValue * value)
{
  if (id == 0)
    g_value_take_string (value, nf_style_mix_dup_style (mix));
  else if (id == 1)
    g_value_take_string (value, nf_style_mix_dup_mix (mix));
  else
    g_value_set_double (value, nf_style_mix_get_position (mix));
}

void
gst_neural_style_mix_prepare (GstElement * element, NfStyleMix * mix, NfModel * model)
{
  GError *err = NULL;
  switch (nf_style_mix_apply (mix, model, &err)) {
    case NF_STYLE_MIX_IGNORED:
      GST_ELEMENT_WARNING (element, LIBRARY, SETTINGS, ("%s.", err->message), (NULL));
      break;
    case NF_STYLE_MIX_FAILED:
      GST_ELEMENT_WARNING (element, LIBRARY, SETTINGS,
          ("%s; the previous style mix stays.", err->message), (NULL));
      break;
    case NF_STYLE_MIX_APPLIED:
      /* another network now: blending its output with the previous style's would
       * fade between styles over several frames where the picture is still */
      GST_DEBUG_OBJECT (element, "style mix applied: the stabilisation starts afresh");
      gst_neural_filter_reset_temporal (GST_NEURAL_FILTER (element));
      break;
    default:
      break;
  }
  g_clear_error (&err);
}
