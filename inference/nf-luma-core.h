/* nf-luma-core.h — the luma core of a luma-only super-resolution model (nf-luma-core.c).
 *
 * What it does: from a model of the sr-light-y form (fixed RGB -> Y conv, a network on
 * luma, fixed copy of its sub-pixels to R, G and B, pixel shuffle plus the nearest-
 * upsampled input), a model that takes the luma plane (N, 1, H, W) in the same units
 * and gives the upscaled luma (N, 1, sH, sW): what the full model adds to every colour
 * channel, added to the nearest-upsampled luma.
 * What it does not: anything for models of other forms (NULL, no error).
 */
#pragma once

#include "nf-model.h"

G_BEGIN_DECLS

/* The luma core of m (a new model with copies of m's weights); NULL without an error
 * when m is not a luma-only model, NULL with one when the core cannot be built. */
NfModel *nf_model_luma_core (NfModel *m, GError **error);

G_END_DECLS
