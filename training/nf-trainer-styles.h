/* nf-trainer-styles.h — training one network for several styles (conditional instance
 * norm, Dumoulin et al. 2017): `nf-train style --arch style-rt-multi --style-image A.jpg
 * --style-image B.png ...`.
 *
 * The network's norms hold one row per painting, in the order of the options; the
 * convolutions are shared. Each batch trains one style: batch index i is style i mod N
 * (cycling: every style as often, the same sequence after a resume), with that
 * painting's Gram targets (computed once, at the start) and the network run on that
 * style's one-hot mix, and the style weight --style-weight times that painting's factor
 * of --style-weights (all 1 without it), the stability term's still weight likewise
 * (--stability-still-weights); the content loss, TV and the stability term
 * (--stability-weight, nf-stability.h) are those of single-style training. The model's
 * "styles" metadata lists the paintings' file stems ("starry_night" for
 * .../starry_night.jpg), so the weight file names its styles. Previews show the style of
 * the last step, scored against that painting.
 * What it does not: train on mixes (the mixes of the rows are what the network makes of
 * them), or run on the GPU trainer yet (refused with a clear error: its step would need
 * the per-batch hook and the device copies of the rows).
 */
#pragma once

#include "nf-trainer.h"

G_BEGIN_DECLS

/* The styles a recipe trains: the --style-image count for style-rt-multi (at least 1),
 * 0 for the architectures of one style. */
int nf_recipe_n_styles (const NfRecipe *r);
/* The paintings of a style recipe in style order (NULL-terminated, static to r). */
const char *const *nf_recipe_style_paths (const NfRecipe *r, const char *one[2]);

/* Styles of the network in training (0: a network of one style). */
int nf_trainer_n_styles (const NfTrainer *t);
/* The losses of training batch `index` in style s (tests and checks; the next step
 * picks its own style again). */
gboolean nf_trainer_style_loss_on_batch (NfTrainer *t, int s, guint64 index,
    NfTrainLosses *losses, GError **error);

G_END_DECLS
