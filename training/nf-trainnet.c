/* nf-trainnet.c — parameters, forward/backward and write-back for a network in training
 * (the batch-norm treatment is described in nf-trainnet.h).
 *
 * What it does: declares one NfParams view per trainable tensor, runs a training engine
 * (every value kept, no fusion), routes the engine's parameter gradients into the flat
 * gradient buffer (or, for convolutions that carry a folded batch norm, into scratch
 * buffers that the chain rule then spreads over conv weight, gamma and beta), copies
 * parameters back into the model and refolds batch norm into the model's existing
 * folded tensors (so every weight pointer the engines hold stays valid).
 * Where the parameters live is the training device's business (nf-train-device.h):
 * the backward from a host gradient, copies to and from a device mirror and the
 * engine's refresh after an optimiser step go through its table.
 * What it does not: losses, optimiser steps (nf-optim.c), device buffers and the device
 * paths of CUDA backends (nf-trainnet-gpu.c).
 */
#include "nf-trainnet.h"
#include "nf-trainnet-private.h"

#include <math.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-engine.h"
#include "nf-error.h"

static size_t
numel (const NfModelTensor *t)
{
  size_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= (size_t) t->dims[i];
  return n;
}

static NfModelTensor *
tensor2 (NfModel *m, const char *prefix, const char *suffix)
{
  char *k = g_strconcat (prefix, ".", suffix, NULL);
  NfModelTensor *t = nf_model_tensor (m, k);
  g_free (k);
  return t;
}

/* Every named conv and norm, but the ops whose weights are part of the design (the
 * style networks' fixed input blur, nf-arch.h). */
static gboolean
is_trainable (const NfOp *op)
{
  return op->name && !nf_arch_op_is_fixed (op) && (op->type == NF_OP_CONV2D || op->type == NF_OP_CONV_TRANSPOSE2D
      || (op->type == NF_OP_INSTANCE_NORM && op->affine) || op->type == NF_OP_BATCH_NORM
      || op->type == NF_OP_COND_INSTANCE_NORM);
}

void
nf_trainnet_free (NfTrainNet *t)
{
  if (!t)
    return;
  if (t->device && t->device->net_free)
    t->device->net_free (t);
  nf_engine_free (t->engine);
  nf_params_free (t->params);
  if (t->bns) {
    for (guint i = 0; i < t->bns->len; i++) {
      BnFold *b = &g_array_index (t->bns, BnFold, i);
      g_free (b->w_name);
      g_free (b->b_name);
      nf_free (b->gw);
      nf_free (b->gb);
    }
    g_array_free (t->bns, TRUE);
  }
  g_free (t);
}

/* Output channel of element i of a conv weight. */
static inline int
out_channel (const NfOp *conv, size_t i)
{
  size_t kk = (size_t) conv->k * conv->k;
  return conv->type == NF_OP_CONV2D ? (int) (i / (kk * conv->cin))
      : (int) ((i / kk) % conv->cout);
}

/* W' = W s, b' = (b - mean) s + beta, into the model's folded tensors. */
static void
refold (NfTrainNet *t, BnFold *b)
{
  NfModel *m = t->model;
  const float *gamma = tensor2 (m, b->bn->name, "weight")->data;
  const float *beta = tensor2 (m, b->bn->name, "bias")->data;
  const float *mean = tensor2 (m, b->bn->name, "running_mean")->data;
  const float *var = tensor2 (m, b->bn->name, "running_var")->data;
  const float *w = tensor2 (m, b->conv->name, "weight")->data;
  NfModelTensor *cb = b->conv->has_bias ? tensor2 (m, b->conv->name, "bias") : NULL;
  int cout = b->conv->cout;
  double *s = g_new (double, cout);
  for (int co = 0; co < cout; co++) {
    s[co] = gamma[co] / sqrt ((double) var[co] + b->bn->eps);
    b->fb->data[co] = (float) (((cb ? cb->data[co] : 0.0) - mean[co]) * s[co] + beta[co]);
  }
  for (size_t i = 0; i < b->nw; i++)
    b->fw->data[i] = (float) (w[i] * s[out_channel (b->conv, i)]);
  g_free (s);
}

static gboolean
collect_bns (NfTrainNet *t, GError **error)
{
  const NfGraph *g = t->model->source_graph;
  t->bns = g_array_new (FALSE, TRUE, sizeof (BnFold));
  for (int i = 0; i < g->n_ops; i++) {
    const NfOp *bn = &g->ops[i];
    if (bn->type != NF_OP_BATCH_NORM)
      continue;
    const NfOp *conv = NULL;
    for (int j = 0; j < i; j++)
      if (g->ops[j].out == bn->in[0])
        conv = &g->ops[j];
    BnFold b = {.bn = bn,.conv = conv };
    if (conv) {
      b.w_name = g_strconcat (conv->name, ".weight", NULL);
      b.b_name = g_strconcat (conv->name, ".bias", NULL);
      b.fw = g_hash_table_lookup (t->model->folded, b.w_name);
      b.fb = g_hash_table_lookup (t->model->folded, b.b_name);
    }
    if (!conv || !b.fw || !b.fb) {
      g_free (b.w_name);
      g_free (b.b_name);
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
          "batch_norm %s is not folded into a convolution; it cannot be trained", bn->name);
      return FALSE;
    }
    b.nw = numel (tensor2 (t->model, conv->name, "weight"));
    b.gw = nf_alloc_floats (b.nw);
    b.gb = nf_alloc_floats (conv->cout);
    g_array_append_val (t->bns, b);
  }
  return TRUE;
}

NfTrainNet *
nf_trainnet_new (NfModel *model, NfBackend *be, GError **error)
{
  const char *bn = be->iface->name;
  const NfTrainDevice *device = nf_train_device_for (be, error);
  if (!device)
    return NULL;
  if (!be->iface->zero || !be->iface->backward[NF_OP_CONV2D]) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
        "backend %s has no backward passes; training needs one (cpu-ref has)", bn);
    return NULL;
  }
  NfTrainNet *t = g_new0 (NfTrainNet, 1);
  t->model = model;
  t->be = be;
  t->device = device;
  t->params = nf_params_new ();
  const NfGraph *g = model->source_graph;
  for (int i = 0; i < g->n_ops; i++) {
    const NfOp *op = &g->ops[i];
    if (!is_trainable (op))
      continue;
    const char *sfx[2] = { "weight", "bias" };
    for (int k = 0; k < 2; k++) {
      NfModelTensor *mt = tensor2 (model, op->name, sfx[k]);
      if (!mt)
        continue;               /* a conv without bias */
      char *name = g_strconcat (op->name, ".", sfx[k], NULL);
      nf_params_add (t->params, name, mt->ndim, mt->dims);
      g_free (name);
    }
  }
  if (!nf_params_alloc (t->params, error) || !collect_bns (t, error)) {
    nf_trainnet_free (t);
    return NULL;
  }
  for (guint i = 0; i < t->params->views->len; i++) {
    const NfParamView *v = &g_array_index (t->params->views, NfParamView, i);
    memcpy (t->params->params + v->offset, nf_model_tensor (model, v->name)->data,
        v->count * sizeof (float));
  }
  /* A final clamp is left out of training: its gradient is zero outside the range, which
   * can freeze pixels for good; the loss sees (and pulls back) the unclamped values. */
  const NfGraph *rg = model->graph;
  t->out_value = rg->output;
  for (int i = 0; i < rg->n_ops; i++)
    if (rg->ops[i].out == rg->output && rg->ops[i].type == NF_OP_CLAMP
        && nf_graph_n_consumers (rg, rg->ops[i].in[0]) == 1)
      t->out_value = rg->ops[i].in[0];
  NfEngineOptions eo = {.keep_all_values = TRUE,.no_fusion = TRUE };
  t->engine = nf_engine_new (model, be, &eo);
  if ((device->net_init && !device->net_init (t, error)) || !nf_trainnet_sync (t, error)) {
    nf_trainnet_free (t);
    return NULL;
  }
  return t;
}

NfParams *
nf_trainnet_params (NfTrainNet *t)
{
  return t->params;
}

NfModel *
nf_trainnet_model (NfTrainNet *t)
{
  return t->model;
}

gboolean
nf_trainnet_has_batch_norm (const NfTrainNet *t)
{
  return t->bns->len > 0;
}

gboolean
nf_trainnet_forward (NfTrainNet *t, NfShape s, const float *x, float *y, GError **error)
{
  if (!nf_engine_is_planned_for (t->engine, s) && !nf_engine_plan (t->engine, s, error))
    return FALSE;
  t->in_shape = s;
  if (!t->be->iface->upload (t->be, nf_engine_input_buffer (t->engine), x, s, error)
      || !nf_engine_run (t->engine, error))
    return FALSE;
  return !y || t->be->iface->download (t->be, y, nf_engine_value_buffer (t->engine,
          t->out_value), nf_engine_value_shape (t->engine, t->out_value), error);
}

NfShape
nf_trainnet_output_shape (NfTrainNet *t)
{
  return nf_engine_output_shape (t->engine);
}

static void *
param_grad (const char *name, gpointer user)
{
  NfTrainNet *t = user;
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    if (g_str_equal (name, b->w_name))
      return b->gw;
    if (g_str_equal (name, b->b_name))
      return b->gb;
  }
  return nf_params_grad (t->params, name);
}

/* Spreads dW', db' of every folded conv over W, b, gamma, beta. */
void
nf_trainnet_bn_chain_rule (NfTrainNet *t)
{
  NfModel *m = t->model;
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    const NfOp *bn = b->bn, *conv = b->conv;
    const float *gamma = tensor2 (m, bn->name, "weight")->data;
    const float *mean = tensor2 (m, bn->name, "running_mean")->data;
    const float *var = tensor2 (m, bn->name, "running_var")->data;
    const float *w = tensor2 (m, conv->name, "weight")->data;
    NfModelTensor *cb = conv->has_bias ? tensor2 (m, conv->name, "bias") : NULL;
    char *gk = g_strconcat (bn->name, ".weight", NULL), *bk = g_strconcat (bn->name, ".bias",
        NULL);
    float *dgamma = nf_params_grad (t->params, gk), *dbeta = nf_params_grad (t->params, bk);
    float *dw = nf_params_grad (t->params, b->w_name);
    float *db = cb ? nf_params_grad (t->params, b->b_name) : NULL;
    g_free (gk);
    g_free (bk);
    int cout = conv->cout;
    double *acc = g_new0 (double, cout);                /* sum of dW' W per channel */
    for (size_t k = 0; k < b->nw; k++) {
      int co = out_channel (conv, k);
      acc[co] += (double) b->gw[k] * w[k];
    }
    for (int co = 0; co < cout; co++) {
      double inv = 1.0 / sqrt ((double) var[co] + bn->eps), s = gamma[co] * inv;
      double bias = cb ? cb->data[co] : 0.0;
      dgamma[co] += (float) ((acc[co] + (double) b->gb[co] * (bias - mean[co])) * inv);
      dbeta[co] += b->gb[co];
      if (db)
        db[co] += (float) (b->gb[co] * s);
    }
    for (size_t k = 0; k < b->nw; k++)
      dw[k] += (float) (b->gw[k] * (gamma[out_channel (conv, k)]
              / sqrt ((double) var[out_channel (conv, k)] + bn->eps)));
    g_free (acc);
  }
}

gboolean
nf_trainnet_backward (NfTrainNet *t, const float *dy, GError **error)
{
  return t->device->net_backward (t, dy, error);
}

gboolean
nf_trainnet_host_backward (NfTrainNet *t, const float *dy, GError **error)
{
  int out = t->out_value;
  nf_params_zero_grads (t->params);
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    memset (b->gw, 0, b->nw * sizeof (float));
    memset (b->gb, 0, b->conv->cout * sizeof (float));
  }
  if (!nf_engine_zero_grads (t->engine, error)
      || !t->be->iface->upload (t->be, nf_engine_grad_buffer (t->engine, out), dy,
          nf_engine_value_shape (t->engine, out), error)
      || !nf_engine_backward (t->engine, param_grad, t, error))
    return FALSE;
  nf_trainnet_bn_chain_rule (t);
  return TRUE;
}

gboolean
nf_trainnet_sync (NfTrainNet *t, GError **error)
{
  if (!nf_trainnet_host_sync (t, error))
    return FALSE;
  return !t->device->net_push || t->device->net_push (t, error);
}

gboolean
nf_trainnet_weights_updated (NfTrainNet *t, GError **error)
{
  return t->device->net_weights_updated (t, error);
}

gboolean
nf_trainnet_download_moments (NfTrainNet *t, GError **error)
{
  return !t->device->net_pull || t->device->net_pull (t, FALSE, TRUE, error);
}

void
nf_trainnet_host_copy (NfTrainNet *t)
{
  for (guint i = 0; i < t->params->views->len; i++) {
    const NfParamView *v = &g_array_index (t->params->views, NfParamView, i);
    memcpy (nf_model_tensor (t->model, v->name)->data, t->params->params + v->offset,
        v->count * sizeof (float));
  }
  for (guint i = 0; i < t->bns->len; i++)
    refold (t, &g_array_index (t->bns, BnFold, i));
}

gboolean
nf_trainnet_host_sync (NfTrainNet *t, GError **error)
{
  nf_trainnet_host_copy (t);
  return nf_engine_weights_changed (t->engine, error);
}

gboolean
nf_trainnet_copy_state (NfTrainNet *dst, NfTrainNet *src, GError **error)
{
  if (dst->params->n != src->params->n || dst->bns->len != src->bns->len) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "cannot copy a network's state into one of another architecture");
    return FALSE;
  }
  if (src->device->net_pull && !src->device->net_pull (src, TRUE, TRUE, error))
    return FALSE;
  size_t n = src->params->n;
  memcpy (dst->params->params, src->params->params, n * sizeof (float));
  memcpy (dst->params->m, src->params->m, n * sizeof (float));
  memcpy (dst->params->v, src->params->v, n * sizeof (float));
  const char *stats[2] = { "running_mean", "running_var" };
  for (guint i = 0; i < src->bns->len; i++) {
    const NfOp *bn = g_array_index (src->bns, BnFold, i).bn;
    for (int k = 0; k < 2; k++) {
      NfModelTensor *a = tensor2 (dst->model, bn->name, stats[k]);
      NfModelTensor *b = tensor2 (src->model, bn->name, stats[k]);
      if (!a || !b || numel (a) != numel (b)) {
        g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s.%s differs between replicas",
            bn->name, stats[k]);
        return FALSE;
      }
      memcpy (a->data, b->data, numel (a) * sizeof (float));
    }
  }
  return nf_trainnet_sync (dst, error);
}

void
nf_trainnet_unit_bn_stats (NfTrainNet *t)
{
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    float *mean = tensor2 (t->model, b->bn->name, "running_mean")->data;
    float *var = tensor2 (t->model, b->bn->name, "running_var")->data;
    for (int c = 0; c < b->bn->c; c++) {
      mean[c] = 0.0f;
      var[c] = 1.0f;
    }
    refold (t, b);
  }
}

gboolean
nf_trainnet_init_bn_stats (NfTrainNet *t, NfShape s, const float *x, GError **error)
{
  if (t->bns->len == 0)
    return TRUE;
  NfModel *m = t->model;
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    if (!nf_trainnet_forward (t, s, x, NULL, error))
      return FALSE;
    int v = b->bn->out;         /* the folded conv produces the BN's output value */
    NfShape vs = nf_engine_value_shape (t->engine, v);
    float *y = nf_alloc_floats (nf_shape_numel (vs));   // (N, C, H, W)
    if (!t->be->iface->download (t->be, y, nf_engine_value_buffer (t->engine, v), vs, error)) {
      nf_free (y);
      return FALSE;
    }
    const float *gamma = tensor2 (m, b->bn->name, "weight")->data;
    const float *beta = tensor2 (m, b->bn->name, "bias")->data;
    float *mean = tensor2 (m, b->bn->name, "running_mean")->data;
    float *var = tensor2 (m, b->bn->name, "running_var")->data;
    size_t hw = (size_t) vs.h * vs.w;
    for (int c = 0; c < vs.c; c++) {
      double sc = gamma[c] / sqrt ((double) var[c] + b->bn->eps);
      double sum = 0.0, sq = 0.0;
      for (int n = 0; n < vs.n; n++)
        for (size_t k = 0; k < hw; k++) {
          /* the conv's own output, undoing the current normalisation */
          double pre = (y[((size_t) n * vs.c + c) * hw + k] - beta[c]) / sc + mean[c];
          sum += pre;
          sq += pre * pre;
        }
      double cnt = (double) vs.n * hw, mu = sum / cnt;
      double va = MAX (sq / cnt - mu * mu, 0.0);
      if (!isfinite (mu) || !isfinite (va) || fabs (sc) < 1e-12) {
        mu = 0.0;
        va = 1.0;
      }
      mean[c] = (float) mu;
      var[c] = (float) va;
    }
    nf_free (y);
    refold (t, b);
    if (!nf_engine_weights_changed (t->engine, error))
      return FALSE;
  }
  return TRUE;
}
