/* nf-checkpoint.h — the complete state of a training run in one safetensors file, so a
 * run stopped (Ctrl-C, a crash, the end of a session) continues bit-identically.
 *
 * Contents:
 *   tensors   every tensor of the model as the model file names them (parameters and
 *             batch-norm statistics), F32; "optim.adam_m" and "optim.adam_v" (n) — Adam's
 *             moments over the flat parameter buffer, in the buffer's order
 *   metadata  "nf_checkpoint" = "1"; "recipe" (the run's JSON recipe, nf-recipe.h);
 *             "step" (optimiser steps done = batches consumed); "adam_t";
 *             "param_layout" (name:count,... of the flat buffer, checked on load);
 *             "data_fingerprint" (of the training file list; a change is reported);
 *             "elapsed_s" (training seconds so far); "losses" (last logged losses, text)
 * The data loader needs no state of its own: batch k is a pure function of the seed
 * and k (nf-dataset.h), so `step` is its position. Files are written to PATH.tmp and
 * renamed over PATH, so a crash while writing leaves the previous checkpoint intact.
 *
 * What it does not: build the model (the caller does, from the recipe), decide when to
 * checkpoint (the training session).
 */
#pragma once

#include <glib.h>

#include "nf-model.h"
#include "nf-optim.h"

G_BEGIN_DECLS

typedef struct {
  guint64 step;
  int adam_t;
  char *recipe_json;            /* owned */
  guint64 data_fingerprint;
  double elapsed_s;
  char *losses;                 /* owned, may be NULL */
} NfCheckpointState;

void nf_checkpoint_state_clear (NfCheckpointState *s);

gboolean nf_checkpoint_save (const char *path, NfModel *model, const NfParams *params,
    const NfCheckpointState *state, GError **error);

typedef struct NfCheckpoint NfCheckpoint;

/* Opens and checks the container; the recipe can then be read before a model exists. */
NfCheckpoint *nf_checkpoint_open (const char *path, GError **error);
void nf_checkpoint_free (NfCheckpoint *c);
const char *nf_checkpoint_recipe (const NfCheckpoint *c);

/* Copies the stored tensors into model (every model tensor must be present with its
 * shape), the parameters and moments into params (layout must match), the rest into
 * state (recipe_json/losses duplicated). */
gboolean nf_checkpoint_restore (const NfCheckpoint *c, NfModel *model, NfParams *params,
    NfCheckpointState *state, GError **error);

G_END_DECLS
