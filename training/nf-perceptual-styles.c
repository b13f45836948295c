/* nf-perceptual-styles.c — saving and restoring the Gram targets of a perceptual loss
 * (see nf-perceptual-styles.h).
 *
 * What it does: one copy of each style layer's (C, C) target; on load, the copies back
 * into the loss's host targets and through the training device's perceptual_set_gram
 * (the device's copy) when it has one.
 * What it does not: compute targets, or check that a loss of another spec is given one
 * of its sets beyond the number and sizes of the targets.
 */
#include "nf-perceptual-styles.h"

#include <string.h>

#include "nf-error.h"
#include "nf-perceptual-private.h"

struct NfStyleTargets {
  int n;                        /* the loss's style terms */
  int c[NF_PERCEPTUAL_MAX_LAYERS];      /* channels of each term's layer */
  float *gram[NF_PERCEPTUAL_MAX_LAYERS];        /* (c, c) */
};

/* Channels of style term k's layer, or 0. */
static int
term_channels (const NfPerceptual *p, int k)
{
  for (int i = 0; i < p->n_layers; i++)
    for (int j = 0; j < p->layers[i].n_style; j++)
      if (p->layers[i].style_idx[j] == k)
        return p->layers[i].shape.c;
  return 0;
}

NfStyleTargets *
nf_style_targets_save (const NfPerceptual *p)
{
  if (!nf_perceptual_has_style (p))
    return NULL;
  NfStyleTargets *t = g_new0 (NfStyleTargets, 1);
  t->n = p->spec.n_style;
  for (int k = 0; k < t->n; k++) {
    t->c[k] = term_channels (p, k);
    size_t n = (size_t) t->c[k] * t->c[k];
    t->gram[k] = nf_alloc_floats (n);
    memcpy (t->gram[k], p->gram[k], n * sizeof (float));
  }
  return t;
}

gboolean
nf_style_targets_load (NfPerceptual *p, const NfStyleTargets *t, GError **error)
{
  if (!t || t->n != p->spec.n_style) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "style targets of %d terms for a loss of %d", t ? t->n : 0, p->spec.n_style);
    return FALSE;
  }
  for (int k = 0; k < t->n; k++) {
    if (term_channels (p, k) != t->c[k]) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "style target %d is %dx%d, the loss's layer has %d channels", k, t->c[k], t->c[k],
          term_channels (p, k));
      return FALSE;
    }
    size_t n = (size_t) t->c[k] * t->c[k];
    if (!p->gram[k])
      p->gram[k] = nf_alloc_floats (n);
    memcpy (p->gram[k], t->gram[k], n * sizeof (float));
    if (p->device->perceptual_set_gram && !p->device->perceptual_set_gram (p, k, error))
      return FALSE;
  }
  return TRUE;
}

void
nf_style_targets_free (NfStyleTargets *t)
{
  if (!t)
    return;
  for (int k = 0; k < t->n; k++)
    nf_free (t->gram[k]);
  g_free (t);
}

void
nf_perceptual_set_style_weight (NfPerceptual *p, double style_weight)
{
  p->spec.style_weight = style_weight;
}
