/* nf-engine.h — runs a model on a backend for one input size.
 *
 * A plan fixes the input shape: it infers every value's shape, fuses ReLU into the
 * op before it where that op's output has no other consumer, asks the backend to
 * prepare each op (oneDNN primitives, reordered weights), and allocates all
 * activations once. nf_engine_run() then reuses all of that every frame; a different
 * input size replans (automatically in nf_engine_run_host).
 * In training mode every value is kept (for backward); otherwise buffers are shared
 * between values whose lifetimes do not overlap.
 *
 * What it does not: pixel formats or u8 conversion (gst/), scaling to the model's
 * input range (the caller uses model->in_lo/in_hi).
 */
#pragma once

#include <glib.h>

#include "nf-backend.h"
#include "nf-model.h"

G_BEGIN_DECLS

typedef struct NfEngine NfEngine;

typedef struct {
  gboolean keep_all_values;     /* training: every activation stays readable */
  gboolean no_fusion;           /* run relu as its own op (tests) */
} NfEngineOptions;

/* The engine references model and backend; both must outlive it. */
NfEngine *nf_engine_new (NfModel *model, NfBackend *be, const NfEngineOptions *opts);
void nf_engine_free (NfEngine *e);

gboolean nf_engine_plan (NfEngine *e, NfShape input, GError **error);
gboolean nf_engine_is_planned_for (NfEngine *e, NfShape input);
NfShape nf_engine_output_shape (NfEngine *e);
NfShape nf_engine_value_shape (NfEngine *e, int value);

/* Device-side run on planned buffers. */
void *nf_engine_input_buffer (NfEngine *e);
void *nf_engine_output_buffer (NfEngine *e);
void *nf_engine_value_buffer (NfEngine *e, int value);
gboolean nf_engine_run (NfEngine *e, GError **error);

/* Host convenience: replans when the shape changes, uploads, runs, downloads.
 * out must hold nf_shape_numel(output shape) floats. */
gboolean nf_engine_run_host (NfEngine *e, const float *in, NfShape s, float *out,
    GError **error);

/* Training. Plan with keep_all_values and no_fusion, then per step:
 *   nf_engine_run (forward);
 *   nf_engine_zero_grads;
 *   write dL/dv into nf_engine_grad_buffer (e, v) for the value(s) the loss reads
 *     (the output, or intermediate values such as VGG layers: several may be seeded);
 *   nf_engine_backward: ops run backward in reverse order, accumulating.
 * Afterwards nf_engine_grad_buffer (e, v) holds dL/dv for every value (the input's
 * included). Parameter gradients are ACCUMULATED into the buffers param_grad returns
 * for a tensor name ("conv1.weight", "in1.bias"); NULL skips that tensor.
 * Models with batch_norm train the folded weights: not supported for parameter
 * gradients (input gradients are right). */
gboolean nf_engine_zero_grads (NfEngine *e, GError **error);
typedef void *(*NfParamGradFn) (const char *tensor_name, gpointer user_data);
gboolean nf_engine_backward (NfEngine *e, NfParamGradFn param_grad, gpointer user_data,
    GError **error);
void *nf_engine_grad_buffer (NfEngine *e, int value);
/* Weights were changed in place (an optimiser step) or rebound: refresh the engine's
 * weight pointers and let the backend re-prepare (e.g. re-reorder for oneDNN). */
gboolean nf_engine_weights_changed (NfEngine *e, GError **error);

/* Per-op timing of the last run (ms), when timing is enabled. */
void nf_engine_set_timing (NfEngine *e, gboolean on);
double nf_engine_op_ms (NfEngine *e, int op_index);
/* The list of planned calls (for verbose printing). */
int nf_engine_n_calls (NfEngine *e);
const NfOpCall *nf_engine_call (NfEngine *e, int i);
gboolean nf_engine_call_skipped (NfEngine *e, int i);

G_END_DECLS
