/* nf-style-mix.h — which style a multi-style network runs (conditional instance norm,
 * nf-model.h): the neuralstyle element's style, style-mix and style-position settings,
 * parsed when set and applied to the model in use between frames.
 *
 *   style           "starry_night" or "3": that style alone (a one-hot mix)
 *   style-mix       "starry_night:0.5,great_wave:0.5": name (or index) and weight pairs;
 *                   styles not listed weigh 0; weights are used as given (finite numbers,
 *                   not normalised): >= 0 and summing to 1 blends, others extrapolate
 *   style-position  a fractional place in the model's style list: 2.25 = 75 % style 2 +
 *                   25 % style 3 (clamped to 0..N-1); a number, so GstController's
 *                   interpolation sources can animate a sweep or a cross-fade
 * The last one set is the one in effect; an empty style or style-mix (or a negative
 * position) clears the setting: the model's default (its first style) stays.
 *
 * What it does: parses each setting when it is set (syntax errors are reported then and
 * the previous setting stays); on the thread that runs the model, resolves the setting
 * against the model's style names and writes its mix (nf_model_set_style_mix), only when
 * the setting or the model changed (so a frame costs a comparison); reports a setting
 * the model cannot take (an unknown name, a model of one style) once per setting and
 * model, leaving the mix as it was.
 * What it does not: GObject properties or bus messages (gst/gstneuralstyle-mix.c turns
 * results into those), or any network arithmetic (a new mix needs no replanning: the
 * cond_instance_norm ops read it at the next run).
 * Threads: setters and getters from any thread; apply from the thread that runs the
 * model (the streaming thread).
 */
#pragma once

#include <glib.h>

#include "nf-model.h"

G_BEGIN_DECLS

typedef struct NfStyleMix NfStyleMix;

NfStyleMix *nf_style_mix_new (void);
void nf_style_mix_free (NfStyleMix * s);

/* FALSE + error (the previous setting stays) when value cannot be a setting. NULL or
 * "" (style, style-mix) and a negative position clear it. */
gboolean nf_style_mix_set_style (NfStyleMix * s, const gchar * value, GError ** error);
gboolean nf_style_mix_set_mix (NfStyleMix * s, const gchar * value, GError ** error);
gboolean nf_style_mix_set_position (NfStyleMix * s, gdouble value, GError ** error);
/* The values as last set (NULL, or -1, when never set or cleared). */
gchar *nf_style_mix_dup_style (NfStyleMix * s);
gchar *nf_style_mix_dup_mix (NfStyleMix * s);
gdouble nf_style_mix_get_position (NfStyleMix * s);

typedef enum {
  NF_STYLE_MIX_UNCHANGED,       /* nothing new: the model runs as before */
  NF_STYLE_MIX_APPLIED,         /* the model's mix is the setting's now */
  NF_STYLE_MIX_IGNORED,         /* a model of one style: *error says so (once) */
  NF_STYLE_MIX_FAILED,          /* the model cannot take it: *error (once); mix kept */
} NfStyleMixResult;

/* Applies the setting in effect to m (the model in use) when the setting or the model
 * changed since the last call. *error is set with IGNORED and FAILED only. */
NfStyleMixResult nf_style_mix_apply (NfStyleMix * s, NfModel * m, GError ** error);

/* Parsing alone (the setters use it; tools may too): "name:w,..." into a mix of
 * m's styles (n = m->n_styles weights in w). */
gboolean nf_style_mix_parse_for_model (const gchar * value, const NfModel * m, gfloat * w,
    GError ** error);

G_END_DECLS
