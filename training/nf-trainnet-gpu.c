/* nf-trainnet-gpu.c — a network in training on a CUDA backend (see nf-trainnet.h): the
 * device mirror of the flat parameter buffer, the engine's parameter gradients routed
 * into it, device-pointer forward/backward, Adam on the device, and the new weights
 * brought to the engine on the device. The net_* entries of the CUDA training device
 * (nf-train-device-cuda.h); built only with NF_HAVE_CUDA_TRAIN.
 *
 * What it does: device params | grads | m | v at the host offsets; device scratch for
 * the folded-conv gradients of batch norm; fp32 <-> fp16 NHWC conversion of the input,
 * output and output gradient for "cuda-fp16".
 * New weights after an optimiser step (issue 18.3): the parameters stay on the device.
 * Each op of the run graph that holds weights has its source there
 * (nf_trainnet_weight_sources, made once): a convolution's, an instance norm's or a
 * cond_instance_norm's own parameter views (the latter's (N, c) style rows), or for a
 * convolution with batch norm folded in, device buffers W', b' that the refold kernel
 * (nf_cuda_bn_refold) makes from the parameters and the frozen statistics (uploaded
 * when the host's change). net_weights_updated refolds and hands
 * each op its source through the backend's weights_on_device (fp32: device copies; fp16:
 * one conversion kernel): no download, no host refold, no re-prepare, no allocation, no
 * synchronisation. The chain rule of batch norm runs on the device too
 * (nf_cuda_bn_chain_rule). The host NfParams and the model's tensors then lag behind
 * (host_stale) until net_to_host downloads them (checkpoints, previews, the weight file,
 * a plan on the host path); a new plan on the device path takes its weights from the
 * device again.
 * NF_GPU_TRAIN_REPREPARE=1 (read when the network is made) keeps the old path, for
 * comparisons (tests/gpu/test-gpu-train-step.c): after each step the parameters are
 * downloaded, copied into the model, refolded on the host and every op re-prepared
 * (nf_engine_weights_changed), and the batch-norm chain rule runs on the host.
 * What it does not: the host paths (nf-trainnet.c), losses, schedules, all-reduce (the
 * trainer uses nf_trainnet_device_grads for that).
 */
#include "nf-trainnet-private.h"
#include "nf-train-device-cuda.h"

#include <string.h>

#include "nf-arch.h"
#include "nf-error.h"

#define NO_VIEW ((size_t) -1)

/* One BnFold on the device (same index as t->bns). */
typedef struct {
  NfBnFoldGeom geom;
  size_t w, b, gamma, beta;     /* offsets in the params (b: NO_VIEW without a bias) */
  float *gw, *gb;               /* dL/dW', dL/db' (the engine's gradients of the fold) */
  float *fw, *fb;               /* W', b': the folded weight and bias the engine runs */
  float *stats;                 /* mean | var (2 cout), as last uploaded */
  float *stats_host;            /* the host values of that upload; NULL: none yet */
  char *mean_key, *var_key;     /* "bn.running_mean", "bn.running_var" */
} DevFold;

struct NfTrainNetDeviceState {
  NfGpuParams *params;          /* params | grads | m | v on the device */
  DevFold *folds;               /* t->bns->len */
  NfCudaTrain *ct;              /* own: the batch-norm kernels (NULL without batch norm) */
  NfTrainWeightSource *src;     /* where each weighted op's weights are on the device */
  int n_src;
  gboolean reprepare;           /* NF_GPU_TRAIN_REPREPARE=1: the old host round trip */
  gboolean host_stale;          /* the device params are newer than the host's */
  float *scratch;               /* fp32 staging for cuda-fp16 layout changes */
  size_t scratch_n;
};

static gboolean
need_gpu (const NfTrainNet *t, GError **error)
{
  if (t->dstate)
    return TRUE;
  g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
      "the network is on backend %s, not on a CUDA backend", t->be->iface->name);
  return FALSE;
}

/* ---- where each op's weights are on the device --------------------------------------- */

static size_t
view_offset (NfTrainNet *t, const char *prefix, const char *suffix, size_t count)
{
  char *k = g_strconcat (prefix, ".", suffix, NULL);
  const NfParamView *v = nf_params_find (t->params, k);
  g_free (k);
  return v && v->count == count ? v->offset : NO_VIEW;
}

NfTrainWeightSource *
nf_trainnet_weight_sources (NfTrainNet *t, int *n, GError **error)
{
  const NfGraph *g = t->model->graph;
  GArray *a = g_array_new (FALSE, TRUE, sizeof (NfTrainWeightSource));
  *n = 0;
  for (int i = 0; i < g->n_ops; i++) {
    const NfOp *op = &g->ops[i];
    gboolean conv = op->type == NF_OP_CONV2D || op->type == NF_OP_CONV_TRANSPOSE2D;
    gboolean norm = op->type == NF_OP_INSTANCE_NORM && op->affine;
    gboolean cond = op->type == NF_OP_COND_INSTANCE_NORM;
    if ((!conv && !norm && !cond && !op->weight && !op->bias) || nf_arch_op_is_fixed (op))
      continue;                 /* a fixed op (the input blur) keeps what its plan uploaded */
    const char *name = op->name ? op->name : "";
    NfTrainWeightSource s = {.op = i,.fold = -1,.w = NO_VIEW,.b = NO_VIEW };
    if (conv) {
      s.nw = (size_t) op->cout * op->cin * op->k * op->k;
      s.nb = op->bias ? (size_t) op->cout : 0;
    } else if (norm) {
      s.nw = s.nb = (size_t) op->c;
    } else if (cond) {
      s.nw = s.nb = (size_t) op->styles * op->c;       /* the (N, c) style rows */
    } else {
      g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "%s %s holds weights the GPU "
          "trainer cannot keep on the device", nf_op_type_name (op->type), name);
      g_array_free (a, TRUE);
      return NULL;
    }
    for (guint f = 0; conv && op->name && f < t->bns->len; f++)
      if (g_str_equal (g_array_index (t->bns, BnFold, f).conv->name, op->name))
        s.fold = (int) f;
    if (s.fold < 0 && op->name) {
      s.w = view_offset (t, op->name, "weight", s.nw);
      s.b = s.nb ? view_offset (t, op->name, "bias", s.nb) : NO_VIEW;
    }
    gboolean ok = s.fold >= 0 ? op->bias != NULL
        : s.w != NO_VIEW && (s.nb == 0 || s.b != NO_VIEW);
    if (!ok) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s %s: its weights are not "
          "parameters of %zu and %zu floats", nf_op_type_name (op->type), name, s.nw, s.nb);
      g_array_free (a, TRUE);
      return NULL;
    }
    g_array_append_val (a, s);
  }
  *n = (int) a->len;
  return (NfTrainWeightSource *) g_array_free (a, FALSE);
}

/* ---- lifetime ------------------------------------------------------------------------- */

static gboolean
init_fold (NfTrainNet *t, const BnFold *b, DevFold *f, GError **error)
{
  const NfOp *conv = b->conv;
  int cout = conv->cout;
  f->geom = (NfBnFoldGeom) {.cout = cout,.cin = conv->cin,.kk = conv->k * conv->k,
    .transposed = conv->type == NF_OP_CONV_TRANSPOSE2D,.eps = b->bn->eps };
  f->w = view_offset (t, conv->name, "weight", b->nw);
  f->b = conv->has_bias ? view_offset (t, conv->name, "bias", cout) : NO_VIEW;
  f->gamma = view_offset (t, b->bn->name, "weight", cout);
  f->beta = view_offset (t, b->bn->name, "bias", cout);
  f->mean_key = g_strconcat (b->bn->name, ".running_mean", NULL);
  f->var_key = g_strconcat (b->bn->name, ".running_var", NULL);
  if (f->w == NO_VIEW || (conv->has_bias && f->b == NO_VIEW) || f->gamma == NO_VIEW
      || f->beta == NO_VIEW || nf_bn_fold_numel (&f->geom) != b->nw) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "batch_norm %s folded into %s: its "
        "parameters do not match the convolution", b->bn->name, conv->name);
    return FALSE;
  }
  return (f->gw = nf_gpu_alloc_floats (t->be, b->nw, error))
      && (f->gb = nf_gpu_alloc_floats (t->be, cout, error))
      && (f->fw = nf_gpu_alloc_floats (t->be, b->nw, error))
      && (f->fb = nf_gpu_alloc_floats (t->be, cout, error))
      && (f->stats = nf_gpu_alloc_floats (t->be, 2 * (size_t) cout, error));
}

gboolean
nf_trainnet_gpu_init (NfTrainNet *t, GError **error)
{
  NfTrainNetDeviceState *ds = t->dstate = g_new0 (NfTrainNetDeviceState, 1);
  const char *rp = g_getenv ("NF_GPU_TRAIN_REPREPARE");
  ds->reprepare = rp && g_str_equal (rp, "1");
  ds->folds = g_new0 (DevFold, t->bns->len);
  if (!(ds->params = nf_gpu_params_new (t->be, t->params->n, error))
      || !(ds->src = nf_trainnet_weight_sources (t, &ds->n_src, error)))
    return FALSE;
  if (t->bns->len > 0 && !(ds->ct = nf_cuda_train_new (t->be, error)))
    return FALSE;
  for (guint i = 0; i < t->bns->len; i++)
    if (!init_fold (t, &g_array_index (t->bns, BnFold, i), &ds->folds[i], error))
      return FALSE;
  return TRUE;
}

void
nf_trainnet_gpu_free (NfTrainNet *t)
{
  NfTrainNetDeviceState *ds = t->dstate;
  if (!ds)
    return;
  for (guint i = 0; ds->folds && t->bns && i < t->bns->len; i++) {
    DevFold *f = &ds->folds[i];
    nf_gpu_free (t->be, f->gw);
    nf_gpu_free (t->be, f->gb);
    nf_gpu_free (t->be, f->fw);
    nf_gpu_free (t->be, f->fb);
    nf_gpu_free (t->be, f->stats);
    g_free (f->stats_host);
    g_free (f->mean_key);
    g_free (f->var_key);
  }
  g_free (ds->folds);
  g_free (ds->src);
  if (ds->ct)
    nf_cuda_train_free (ds->ct);
  nf_gpu_free (t->be, ds->scratch);
  nf_gpu_params_free (ds->params);
  g_free (ds);
  t->dstate = NULL;
}

float *
nf_trainnet_device_grads (NfTrainNet *t)
{
  return t->dstate && t->dstate->params ? t->dstate->params->grads : NULL;
}

/* The engine's parameter gradients: DEVICE pointers into the mirrored grads, or the
 * folded-conv scratch. */
static void *
param_grad_dev (const char *name, gpointer user)
{
  NfTrainNet *t = user;
  NfTrainNetDeviceState *ds = t->dstate;
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    if (g_str_equal (name, b->w_name))
      return ds->folds[i].gw;
    if (g_str_equal (name, b->b_name))
      return ds->folds[i].gb;
  }
  const NfParamView *v = nf_params_find (t->params, name);
  return v ? ds->params->grads + v->offset : NULL;
}

/* Host grads of one view -> device grads. */
static gboolean
upload_grad_view (NfTrainNet *t, const char *name, GError **error)
{
  const NfParamView *v = nf_params_find (t->params, name);
  return !v || nf_gpu_copy (t->be, t->dstate->params->grads + v->offset,
      t->params->grads + v->offset, v->count * sizeof (float), error);
}

static void
zero_grad_view (NfTrainNet *t, const char *name)
{
  const NfParamView *v = nf_params_find (t->params, name);
  if (v)
    memset (t->params->grads + v->offset, 0, v->count * sizeof (float));
}

/* Batch norm, the old path (NF_GPU_TRAIN_REPREPARE=1; the host model is current there):
 * dW', db' down, chain rule on the host, dW, db, dgamma, dbeta up. */
static gboolean
bn_chain_rule_host (NfTrainNet *t, GError **error)
{
  NfTrainNetDeviceState *ds = t->dstate;
  if (t->bns->len == 0)
    return TRUE;
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    if (!nf_gpu_copy (t->be, b->gw, ds->folds[i].gw, b->nw * sizeof (float), error)
        || !nf_gpu_copy (t->be, b->gb, ds->folds[i].gb, b->conv->cout * sizeof (float),
            error))
      return FALSE;
  }
  if (!nf_gpu_sync (t->be, error))
    return FALSE;
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    g_ptr_array_add (names, g_strdup (b->w_name));
    g_ptr_array_add (names, g_strdup (b->b_name));
    g_ptr_array_add (names, g_strconcat (b->bn->name, ".weight", NULL));
    g_ptr_array_add (names, g_strconcat (b->bn->name, ".bias", NULL));
  }
  for (guint i = 0; i < names->len; i++)
    zero_grad_view (t, g_ptr_array_index (names, i));
  nf_trainnet_bn_chain_rule (t);
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < names->len; i++)
    ok = upload_grad_view (t, g_ptr_array_index (names, i), error);
  g_ptr_array_unref (names);
  /* the host views are pageable memory the next step rewrites */
  return ok && nf_gpu_sync (t->be, error);
}

/* The frozen statistics of fold i on the device: uploaded when the host's differ from
 * the last upload (set from data or to unit values before the first step, restored
 * from a checkpoint, copied from rank 0), which happens once or twice a run; the copy
 * from pageable memory is waited for, so the kept host copy may change afterwards. */
static gboolean
upload_stats (NfTrainNet *t, DevFold *f, GError **error)
{
  NfModelTensor *mean = nf_model_tensor (t->model, f->mean_key);
  NfModelTensor *var = nf_model_tensor (t->model, f->var_key);
  size_t c = (size_t) f->geom.cout;
  if (!mean || !var) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "the model has no %s or %s",
        f->mean_key, f->var_key);
    return FALSE;
  }
  if (f->stats_host && memcmp (f->stats_host, mean->data, c * sizeof (float)) == 0
      && memcmp (f->stats_host + c, var->data, c * sizeof (float)) == 0)
    return TRUE;
  if (!f->stats_host)
    f->stats_host = g_new (float, 2 * c);
  memcpy (f->stats_host, mean->data, c * sizeof (float));
  memcpy (f->stats_host + c, var->data, c * sizeof (float));
  return nf_gpu_copy (t->be, f->stats, f->stats_host, 2 * c * sizeof (float), error)
      && nf_gpu_sync (t->be, error);
}

/* Batch norm on the device: dW', db' of every fold spread over W, b, gamma, beta in the
 * device gradients (zeroed before the backward; the engine writes none of these). */
static gboolean
bn_chain_rule_device (NfTrainNet *t, GError **error)
{
  NfTrainNetDeviceState *ds = t->dstate;
  float *p = ds->params->params, *g = ds->params->grads;
  for (guint i = 0; i < t->bns->len; i++) {
    DevFold *f = &ds->folds[i];
    size_t c = (size_t) f->geom.cout;
    gboolean bias = f->b != NO_VIEW;
    if (!upload_stats (t, f, error)
        || !nf_cuda_bn_chain_rule (ds->ct, &f->geom, f->gw, f->gb, p + f->w,
            bias ? p + f->b : NULL, p + f->gamma, f->stats, f->stats + c, g + f->w,
            bias ? g + f->b : NULL, g + f->gamma, g + f->beta, error))
      return FALSE;
  }
  return TRUE;
}

/* The engine runs with the device params: every fold refolded from them, every
 * weighted op of the plan handed its weights (nothing to hand when not planned: the
 * next plan on the device path calls this again). */
static gboolean
refresh_engine (NfTrainNet *t, GError **error)
{
  NfTrainNetDeviceState *ds = t->dstate;
  float *p = ds->params->params;
  for (guint i = 0; i < t->bns->len; i++) {
    DevFold *f = &ds->folds[i];
    size_t c = (size_t) f->geom.cout;
    if (!upload_stats (t, f, error)
        || !nf_cuda_bn_refold (ds->ct, &f->geom, p + f->w, f->b != NO_VIEW ? p + f->b : NULL,
            p + f->gamma, p + f->beta, f->stats, f->stats + c, f->fw, f->fb, error))
      return FALSE;
  }
  for (int k = 0; k < ds->n_src; k++) {
    const NfTrainWeightSource *s = &ds->src[k];
    const NfOpCall *call = nf_engine_call (t->engine, s->op);
    if (!call)
      return TRUE;              /* not planned */
    const float *w = s->fold >= 0 ? ds->folds[s->fold].fw : p + s->w;
    const float *b = s->fold >= 0 ? ds->folds[s->fold].fb : s->nb ? p + s->b : NULL;
    if (!t->be->iface->weights_on_device (t->be, call, w, s->nw, b, s->nb, error))
      return FALSE;
  }
  return TRUE;
}

/* The device path: the backend takes new weights from device memory. */
static gboolean
on_device (const NfTrainNet *t)
{
  return !t->dstate->reprepare && t->be->iface->weights_on_device;
}

/* Zeroes device grads (and BN scratch), runs the engine's backward with the output
 * gradient already written into the engine, applies the BN chain rule. */
static gboolean
backward (NfTrainNet *t, GError **error)
{
  NfTrainNetDeviceState *ds = t->dstate;
  if (!nf_gpu_zero (t->be, ds->params->grads, ds->params->n * sizeof (float), error))
    return FALSE;
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    if (!nf_gpu_zero (t->be, ds->folds[i].gw, b->nw * sizeof (float), error)
        || !nf_gpu_zero (t->be, ds->folds[i].gb, b->conv->cout * sizeof (float), error))
      return FALSE;
  }
  return nf_engine_backward (t->engine, param_grad_dev, t, error)
      && (on_device (t) ? bn_chain_rule_device (t, error) : bn_chain_rule_host (t, error));
}

gboolean
nf_trainnet_gpu_backward_host (NfTrainNet *t, const float *dy, GError **error)
{
  /* host dy on a CUDA backend: the device path, then the gradients to the host */
  int out = t->out_value;
  return nf_engine_zero_grads (t->engine, error)
      && t->be->iface->upload (t->be, nf_engine_grad_buffer (t->engine, out), dy,
      nf_engine_value_shape (t->engine, out), error)
      && backward (t, error)
      && nf_gpu_params_download (t->dstate->params, t->params, FALSE, TRUE, FALSE, error);
}

gboolean
nf_trainnet_gpu_push (NfTrainNet *t, GError **error)
{
  /* the host is the truth (nf_trainnet_sync has refreshed the engine from it) */
  if (!nf_gpu_params_upload (t->dstate->params, t->params, TRUE, FALSE, TRUE, error))
    return FALSE;
  t->dstate->host_stale = FALSE;
  return TRUE;
}

gboolean
nf_trainnet_gpu_pull (NfTrainNet *t, gboolean params, gboolean moments, GError **error)
{
  /* lagging host weights first (the table's contract: a checkpoint gets current ones) */
  return nf_trainnet_gpu_to_host (t, error)
      && nf_gpu_params_download (t->dstate->params, t->params, params && !t->dstate->host_stale
      ? FALSE : params, FALSE, moments, error);
}

gboolean
nf_trainnet_gpu_weights_updated (NfTrainNet *t, GError **error)
{
  if (!need_gpu (t, error))
    return FALSE;
  if (on_device (t)) {
    if (!refresh_engine (t, error))
      return FALSE;
    t->dstate->host_stale = TRUE;
    return TRUE;
  }
  /* the old path: download, host copy and refold, every op re-prepared */
  return nf_gpu_params_download (t->dstate->params, t->params, TRUE, FALSE, FALSE, error)
      && nf_trainnet_host_sync (t, error);
}

gboolean
nf_trainnet_gpu_to_host (NfTrainNet *t, GError **error)
{
  if (!need_gpu (t, error))
    return FALSE;
  if (!t->dstate->host_stale)
    return TRUE;
  if (!nf_gpu_params_download (t->dstate->params, t->params, TRUE, FALSE, FALSE, error))
    return FALSE;
  /* the engine runs with these weights already: the model's tensors only */
  nf_trainnet_host_copy (t);
  t->dstate->host_stale = FALSE;
  return TRUE;
}

static float *
scratch (NfTrainNet *t, size_t n, GError **error)
{
  NfTrainNetDeviceState *ds = t->dstate;
  if (ds->scratch_n < n) {
    nf_gpu_free (t->be, ds->scratch);
    ds->scratch_n = 0;
    if (!(ds->scratch = nf_gpu_alloc_floats (t->be, n, error)))
      return NULL;
    ds->scratch_n = n;
  }
  return ds->scratch;
}

gboolean
nf_trainnet_forward_device (NfTrainNet *t, NfCudaTrain *ct, NfShape s, const float *x,
    float a, float b, GError **error)
{
  if (!need_gpu (t, error))
    return FALSE;
  /* a plan prepares from the host's weights: when those lag, the device's replace them */
  if (!nf_engine_is_planned_for (t->engine, s) && (!nf_engine_plan (t->engine, s, error)
          || (t->dstate->host_stale && !refresh_engine (t, error))))
    return FALSE;
  t->in_shape = s;
  size_t n = nf_shape_numel (s);
  void *in = nf_engine_input_buffer (t->engine);        // (N, 3, H, W) backend layout
  if (nf_gpu_is_fp16 (t->be)) {
    float *x32 = scratch (t, n, error);
    if (!x32 || !nf_cuda_affine (ct, x, x32, n, a, b, error)
        || !nf_cuda_f32_nchw_to_f16_nhwc (ct, x32, in, s, 1.0f, error))
      return FALSE;
  } else if (!nf_cuda_affine (ct, x, in, n, a, b, error)) {
    return FALSE;
  }
  return nf_engine_run (t->engine, error);
}

gboolean
nf_trainnet_output_device (NfTrainNet *t, NfCudaTrain *ct, float *y, float a, float b,
    GError **error)
{
  if (!need_gpu (t, error))
    return FALSE;
  NfShape os = nf_engine_value_shape (t->engine, t->out_value);
  size_t n = nf_shape_numel (os);
  const void *out = nf_engine_value_buffer (t->engine, t->out_value);
  if (nf_gpu_is_fp16 (t->be))
    return nf_cuda_f16_nhwc_to_f32_nchw (ct, out, y, os, 1.0f, error)
        && nf_cuda_affine (ct, y, y, n, a, b, error);
  return nf_cuda_affine (ct, out, y, n, a, b, error);
}

gboolean
nf_trainnet_backward_device (NfTrainNet *t, NfCudaTrain *ct, const float *dy, float a,
    GError **error)
{
  if (!need_gpu (t, error) || !nf_engine_zero_grads (t->engine, error))
    return FALSE;
  NfShape os = nf_engine_value_shape (t->engine, t->out_value);
  void *g = nf_engine_grad_buffer (t->engine, t->out_value);
  gboolean ok = nf_gpu_is_fp16 (t->be)
      ? nf_cuda_f32_nchw_to_f16_nhwc (ct, dy, g, os, a, error)
      : nf_cuda_affine (ct, dy, g, nf_shape_numel (os), a, 0.0f, error);
  return ok && backward (t, error);
}

gboolean
nf_trainnet_adam_device (NfTrainNet *t, NfCudaTrain *ct, NfAdam *a, float grad_scale,
    GError **error)
{
  if (!need_gpu (t, error))
    return FALSE;
  a->t++;
  NfGpuParams *d = t->dstate->params;
  if (!nf_cuda_adam_step (ct, d->params, d->grads, d->m, d->v, d->n, a->lr, a->beta1,
          a->beta2, a->eps, a->weight_decay, a->t, grad_scale, error)) {
    a->t--;
    return FALSE;
  }
  return TRUE;
}
