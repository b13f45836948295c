/* nf-perceptual-styles.h — the Gram targets of several styles for one perceptual loss:
 * computed once per painting (nf_perceptual_set_style), kept, and put back when a batch
 * of that style comes (training one network for several styles, nf-trainer-styles.c).
 *
 * What it does: copies of the (C, C) targets of every style layer of the loss, and
 * their return into the loss, on the host and, where the training device keeps targets
 * of its own (a GPU), there too.
 * Also the style weight, which may differ between the paintings.
 * What it does not: compute targets (nf-perceptual.c does, from a painting).
 */
#pragma once

#include "nf-perceptual.h"

G_BEGIN_DECLS

typedef struct NfStyleTargets NfStyleTargets;

/* The loss's current targets (after nf_perceptual_set_style), or NULL when it has none. */
NfStyleTargets *nf_style_targets_save (const NfPerceptual *p);
/* Makes t the loss's targets again (t saved from this loss or one of the same spec). */
gboolean nf_style_targets_load (NfPerceptual *p, const NfStyleTargets *t, GError **error);
void nf_style_targets_free (NfStyleTargets *t);

/* The style term's weight from the next evaluation on (a painting of its own balance of
 * style and content: --style-weights). */
void nf_perceptual_set_style_weight (NfPerceptual *p, double style_weight);

G_END_DECLS
