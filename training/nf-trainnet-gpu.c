/* nf-trainnet-gpu.c — a network in training on a CUDA backend (see nf-trainnet.h): the
 * device mirror of the flat parameter buffer, the engine's parameter gradients routed
 * into it, device-pointer forward/backward, Adam on the device, and the new weights
 * brought back to the engine. The net_* entries of the CUDA training device
 * (nf-train-device-cuda.h); built only with NF_HAVE_CUDA_TRAIN.
 *
 * What it does: device params | grads | m | v at the host offsets; device scratch for
 * the folded-conv gradients of batch norm, downloaded for the host chain rule
 * (nf_trainnet_bn_chain_rule) whose results are uploaded into the device grads; fp32
 * <-> fp16 NHWC conversion of the input, output and output gradient for "cuda-fp16".
 * What it does not: the host paths (nf-trainnet.c), losses, schedules, all-reduce (the
 * trainer uses nf_trainnet_device_grads for that).
 */
#include "nf-trainnet-private.h"
#include "nf-train-device-cuda.h"

#include <string.h>

#include "nf-error.h"

struct NfTrainNetDeviceState {
  NfGpuParams *params;          /* params | grads | m | v on the device */
  float **bn_gw, **bn_gb;       /* per BnFold: dL/dW', dL/db' on the device */
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

gboolean
nf_trainnet_gpu_init (NfTrainNet *t, GError **error)
{
  NfTrainNetDeviceState *ds = t->dstate = g_new0 (NfTrainNetDeviceState, 1);
  ds->bn_gw = g_new0 (float *, t->bns->len);
  ds->bn_gb = g_new0 (float *, t->bns->len);
  if (!(ds->params = nf_gpu_params_new (t->be, t->params->n, error)))
    return FALSE;
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    if (!(ds->bn_gw[i] = nf_gpu_alloc_floats (t->be, b->nw, error))
        || !(ds->bn_gb[i] = nf_gpu_alloc_floats (t->be, b->conv->cout, error)))
      return FALSE;
  }
  return TRUE;
}

void
nf_trainnet_gpu_free (NfTrainNet *t)
{
  NfTrainNetDeviceState *ds = t->dstate;
  if (!ds)
    return;
  for (guint i = 0; t->bns && i < t->bns->len; i++) {
    nf_gpu_free (t->be, ds->bn_gw[i]);
    nf_gpu_free (t->be, ds->bn_gb[i]);
  }
  g_free (ds->bn_gw);
  g_free (ds->bn_gb);
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
      return ds->bn_gw[i];
    if (g_str_equal (name, b->b_name))
      return ds->bn_gb[i];
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

/* Batch norm: dW', db' down, chain rule on the host, dW, db, dgamma, dbeta up. */
static gboolean
bn_chain_rule_gpu (NfTrainNet *t, GError **error)
{
  NfTrainNetDeviceState *ds = t->dstate;
  if (t->bns->len == 0)
    return TRUE;
  for (guint i = 0; i < t->bns->len; i++) {
    BnFold *b = &g_array_index (t->bns, BnFold, i);
    if (!nf_gpu_copy (t->be, b->gw, ds->bn_gw[i], b->nw * sizeof (float), error)
        || !nf_gpu_copy (t->be, b->gb, ds->bn_gb[i], b->conv->cout * sizeof (float), error))
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
    if (!nf_gpu_zero (t->be, ds->bn_gw[i], b->nw * sizeof (float), error)
        || !nf_gpu_zero (t->be, ds->bn_gb[i], b->conv->cout * sizeof (float), error))
      return FALSE;
  }
  return nf_engine_backward (t->engine, param_grad_dev, t, error)
      && bn_chain_rule_gpu (t, error);
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
  return nf_gpu_params_upload (t->dstate->params, t->params, TRUE, FALSE, TRUE, error);
}

gboolean
nf_trainnet_gpu_pull (NfTrainNet *t, gboolean params, gboolean moments, GError **error)
{
  return nf_gpu_params_download (t->dstate->params, t->params, params, FALSE, moments,
      error);
}

gboolean
nf_trainnet_gpu_weights_updated (NfTrainNet *t, GError **error)
{
  return need_gpu (t, error)
      && nf_gpu_params_download (t->dstate->params, t->params, TRUE, FALSE, FALSE, error)
      && nf_trainnet_host_sync (t, error);
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
  if (!nf_engine_is_planned_for (t->engine, s) && !nf_engine_plan (t->engine, s, error))
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
