/* gstneuralstyle-mix.h — neuralstyle's style settings as GObject properties: style,
 * style-mix and style-position (nf-style-mix.h), and their application to the model in
 * use before each frame. Private to the plugin.
 *
 * What it does: installs the three properties (controllable, changeable while PLAYING),
 * sets and gets them, and turns what nf-style-mix reports into WARNING messages: a value
 * that cannot be parsed (when it is set; the previous setting stays), a setting the
 * model cannot take or a model of one style (once, at the frame that finds it).
 * What it does not: parse or apply anything itself (nf-style-mix.c), or other properties
 * of the element (gstneuralstyle.c).
 */
#pragma once

#include <gst/gst.h>

#include "nf-style-mix.h"

G_BEGIN_DECLS

/* The three properties get ids first, first + 1, first + 2. */
void gst_neural_style_mix_install (GObjectClass * klass, guint first);
/* id: 0 style, 1 style-mix, 2 style-position (prop_id - first). */
void gst_neural_style_mix_set_property (GstElement * element, NfStyleMix * mix, guint id,
    const GValue * value);
void gst_neural_style_mix_get_property (NfStyleMix * mix, guint id, GValue * value);
/* Streaming thread, before the network runs on a frame: the setting into the model. */
void gst_neural_style_mix_prepare (GstElement * element, NfStyleMix * mix, NfModel * model);

G_END_DECLS
