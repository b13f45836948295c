/* nf-perceptual-gpu.c — the perceptual losses on a CUDA backend (see nf-perceptual.h):
 * device images in, device gradient out, loss values to the host. The perceptual_*
 * entries of the CUDA training device and nf_perceptual_eval_device
 * (nf-train-device-cuda.h); built only with NF_HAVE_CUDA_TRAIN.
 *
 * What it does: per evaluation, on the backend's stream: the content images
 * preprocessed into the VGG input and run, the content layer copied as the target;
 * the scored images preprocessed and run; per loss layer the MSE / Gram losses
 * (nf_cuda_loss_mse, nf_cuda_loss_gram) ACCUMULATING their weighted gradient straight
 * into the engine's gradient buffer of that layer (fp32 "cuda"), or into an fp32 copy
 * converted to half with the loss scale ("cuda-fp16"); one backward; the input gradient
 * taken back through the preprocessing into the caller's buffer. The loss values go
 * to this object's own doubles (raw_*): read at once by each loss (one stream
 * synchronisation each), or, after nf_perceptual_defer_values, queued into the trainer's
 * NfCudaValues and read with the step's other values; nf_perceptual_device_losses then
 * combines them as nf_perceptual_eval does.
 * What it does not: the host path (nf-perceptual.c), Gram targets from images (set on
 * the host by nf_perceptual_set_style, uploaded here).
 */
#include "nf-perceptual-private.h"
#include "nf-train-device-cuda.h"

#include "nf-error.h"

struct NfPerceptualDeviceState {
  NfCudaTrain *ct;              /* own: loss kernels on the backend's stream */
  float loss_scale;             /* loss gradients are seeded times this */
  NfShape dplanned;             /* batch shape the device buffers are sized for */
  float *d_x32, *d_dx32;        // (N, 3, H, W) fp32 staging for cuda-fp16
  float *d_gram[NF_PERCEPTUAL_MAX_LAYERS];      // (C, C) style targets on the device
  /* per loss layer (p->layers), fp32 NCHW of its shape: the content target; cuda-fp16
   * activation and gradient copies */
  float *d_target[NF_PERCEPTUAL_MAX_LAYERS + 1];
  float *d_act32[NF_PERCEPTUAL_MAX_LAYERS + 1];
  float *d_grad32[NF_PERCEPTUAL_MAX_LAYERS + 1];
  /* the unweighted values of the last evaluation (written when read) */
  double raw_content, raw_style[NF_PERCEPTUAL_MAX_LAYERS];
  gboolean deferred;            /* ct queues its values into a caller's NfCudaValues */
};

void
nf_perceptual_set_loss_scale (NfPerceptual *p, float scale)
{
  if (p->dstate)
    p->dstate->loss_scale = scale;
}

static void
free_device (NfPerceptual *p)
{
  NfPerceptualDeviceState *ds = p->dstate;
  nf_gpu_free (p->be, ds->d_x32);
  nf_gpu_free (p->be, ds->d_dx32);
  ds->d_x32 = ds->d_dx32 = NULL;
  for (int i = 0; i < p->n_layers; i++) {
    nf_gpu_free (p->be, ds->d_target[i]);
    nf_gpu_free (p->be, ds->d_act32[i]);
    nf_gpu_free (p->be, ds->d_grad32[i]);
    ds->d_target[i] = ds->d_act32[i] = ds->d_grad32[i] = NULL;
  }
  ds->dplanned = (NfShape) { 0, 0, 0, 0 };
}

void
nf_perceptual_gpu_free (NfPerceptual *p)
{
  NfPerceptualDeviceState *ds = p->dstate;
  if (!ds)
    return;
  free_device (p);
  for (int i = 0; i < NF_PERCEPTUAL_MAX_LAYERS; i++)
    nf_gpu_free (p->be, ds->d_gram[i]);
  if (ds->ct)
    nf_cuda_train_free (ds->ct);
  g_free (ds);
  p->dstate = NULL;
}

gboolean
nf_perceptual_defer_values (NfPerceptual *p, NfCudaValues *v, GError **error)
{
  if (!p->dstate) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "nf_perceptual_defer_values needs a CUDA backend, not %s", p->be->iface->name);
    return FALSE;
  }
  if (!nf_cuda_train_defer (p->dstate->ct, v, error))
    return FALSE;
  p->dstate->deferred = v != NULL;
  return TRUE;
}

void
nf_perceptual_device_losses (NfPerceptual *p, NfPerceptualLosses *losses)
{
  const NfPerceptualSpec *sp = &p->spec;
  NfPerceptualDeviceState *ds = p->dstate;
  NfPerceptualLosses L = { 0 };
  if (!ds) {
    *losses = L;
    return;
  }
  /* the order nf_perceptual_eval_device used to add them in */
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    if (l->content)
      L.content = ds->raw_content;
    for (int j = 0; j < l->n_style; j++) {
      int k = l->style_idx[j];
      L.style_layer[k] = ds->raw_style[k];
      L.style += sp->style[k].weight * ds->raw_style[k];
    }
  }
  L.total = sp->content_weight * L.content + sp->style_weight * L.style;
  *losses = L;
}

gboolean
nf_perceptual_gpu_init (NfPerceptual *p, GError **error)
{
  p->dstate = g_new0 (NfPerceptualDeviceState, 1);
  p->dstate->loss_scale = 1.0f;
  p->dstate->ct = nf_cuda_train_new (p->be, error);
  return p->dstate->ct != NULL;
}

gboolean
nf_perceptual_gpu_set_gram (NfPerceptual *p, int k, GError **error)
{
  NfPerceptualDeviceState *ds = p->dstate;
  size_t n = 0;                 /* C * C of the layer that style term k reads */
  for (int i = 0; i < p->n_layers; i++)
    for (int j = 0; j < p->layers[i].n_style; j++)
      if (p->layers[i].style_idx[j] == k)
        n = (size_t) p->layers[i].shape.c * p->layers[i].shape.c;
  nf_gpu_free (p->be, ds->d_gram[k]);
  if (!(ds->d_gram[k] = nf_gpu_alloc_floats (p->be, n, error)))
    return FALSE;
  /* the host target is pageable and lives on: wait for the copy anyway, so that a
   * later nf_perceptual_set_style cannot overwrite it while it is read */
  return nf_gpu_copy (p->be, ds->d_gram[k], p->gram[k], n * sizeof (float), error)
      && nf_gpu_sync (p->be, error);
}

/* Device buffers for batch shape s (the engine is planned by the host helper). */
static gboolean
ensure_device (NfPerceptual *p, NfShape s, GError **error)
{
  NfPerceptualDeviceState *ds = p->dstate;
  if (!nf_perceptual_ensure_planned (p, s, error))
    return FALSE;
  if (nf_shape_equal (ds->dplanned, s))
    return TRUE;
  free_device (p);
  gboolean fp16 = nf_gpu_is_fp16 (p->be);
  size_t n = nf_shape_numel (s);
  if (fp16 && (!(ds->d_x32 = nf_gpu_alloc_floats (p->be, n, error))
          || !(ds->d_dx32 = nf_gpu_alloc_floats (p->be, n, error))))
    return FALSE;
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    size_t m = nf_shape_numel (l->shape);
    if (l->content && !(ds->d_target[i] = nf_gpu_alloc_floats (p->be, m, error)))
      return FALSE;
    if (fp16 && (!(ds->d_act32[i] = nf_gpu_alloc_floats (p->be, m, error))
            || !(ds->d_grad32[i] = nf_gpu_alloc_floats (p->be, m, error))))
      return FALSE;
  }
  ds->dplanned = s;
  return TRUE;
}

/* rgb (N, 3, H, W) 0..255 device -> preprocessed VGG input -> forward. */
static gboolean
forward_device (NfPerceptual *p, NfShape s, const float *rgb, GError **error)
{
  NfPerceptualDeviceState *ds = p->dstate;
  const NfVgg *v = p->vgg;
  size_t hw = (size_t) s.h * s.w;
  void *in = nf_engine_input_buffer (p->engine);
  if (nf_gpu_is_fp16 (p->be)) {
    if (!nf_cuda_vgg_preprocess (ds->ct, v->perm, v->scale, v->shift, rgb, ds->d_x32, s.n, hw,
            error) || !nf_cuda_f32_nchw_to_f16_nhwc (ds->ct, ds->d_x32, in, s, 1.0f, error))
      return FALSE;
  } else if (!nf_cuda_vgg_preprocess (ds->ct, v->perm, v->scale, v->shift, rgb, in, s.n, hw,
          error)) {
    return FALSE;
  }
  return nf_engine_run (p->engine, error);
}

/* The layer's activation as device fp32 NCHW. */
static const float *
act32 (NfPerceptual *p, LossLayer *l, float *dst, GError **error)
{
  const void *a = nf_engine_value_buffer (p->engine, l->value);
  if (!nf_gpu_is_fp16 (p->be))
    return a;
  return nf_cuda_f16_nhwc_to_f32_nchw (p->dstate->ct, a, dst, l->shape, 1.0f, error)
      ? dst : NULL;
}

gboolean
nf_perceptual_eval_device (NfPerceptual *p, NfShape s, const float *rgb,
    const float *content_rgb, float *grad, NfPerceptualLosses *losses, GError **error)
{
  const NfPerceptualSpec *sp = &p->spec;
  NfPerceptualDeviceState *ds = p->dstate;
  if (!ds) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "nf_perceptual_eval_device needs a CUDA backend, not %s", p->be->iface->name);
    return FALSE;
  }
  if (sp->content_layer && !content_rgb) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "the content term needs target images");
    return FALSE;
  }
  if (sp->n_style && !ds->d_gram[0]) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "no style image set");
    return FALSE;
  }
  if (!ensure_device (p, s, error))
    return FALSE;
  gboolean fp16 = nf_gpu_is_fp16 (p->be);
  ds->raw_content = 0.0;
  for (int k = 0; k < NF_PERCEPTUAL_MAX_LAYERS; k++)
    ds->raw_style[k] = 0.0;
  if (sp->content_layer) {
    if (!forward_device (p, s, content_rgb, error))
      return FALSE;
    for (int i = 0; i < p->n_layers; i++) {
      LossLayer *l = &p->layers[i];
      if (!l->content)
        continue;
      size_t m = nf_shape_numel (l->shape);
      gboolean ok = fp16
          ? act32 (p, l, ds->d_target[i], error) != NULL
          : nf_gpu_copy (p->be, ds->d_target[i], nf_engine_value_buffer (p->engine, l->value),
          m * sizeof (float), error);
      if (!ok)
        return FALSE;
    }
  }
  if (!forward_device (p, s, rgb, error))
    return FALSE;
  if (grad && !nf_engine_zero_grads (p->engine, error))
    return FALSE;
  double ls = ds->loss_scale;
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    size_t m = nf_shape_numel (l->shape);
    const float *a = act32 (p, l, ds->d_act32[i], error);
    if (!a)
      return FALSE;
    /* fp32: the engine's gradient buffer itself (zeroed above); fp16: an fp32 copy */
    float *g = NULL;
    if (grad) {
      g = fp16 ? ds->d_grad32[i] : nf_engine_grad_buffer (p->engine, l->value);
      if (fp16 && !nf_gpu_zero (p->be, g, m * sizeof (float), error))
        return FALSE;
    }
    if (l->content && !nf_cuda_loss_mse (ds->ct, a, ds->d_target[i], m,
            sp->content_weight * ls, g, &ds->raw_content, error))
      return FALSE;
    for (int j = 0; j < l->n_style; j++) {
      int k = l->style_idx[j];
      double w = sp->style[k].weight;
      if (!nf_cuda_loss_gram (ds->ct, a, l->shape, ds->d_gram[k], sp->style_weight * w * ls,
              g, &ds->raw_style[k], error))
        return FALSE;
    }
    if (g && fp16 && !nf_cuda_f32_nchw_to_f16_nhwc (ds->ct, g,
            nf_engine_grad_buffer (p->engine, l->value), l->shape, 1.0f, error))
      return FALSE;
  }
  if (grad) {
    if (!nf_engine_backward (p->engine, NULL, NULL, error))
      return FALSE;
    int in = p->vgg->model->graph->input;
    const float *dx = nf_engine_grad_buffer (p->engine, in);
    if (fp16) {
      if (!nf_cuda_f16_nhwc_to_f32_nchw (ds->ct, dx, ds->d_dx32, s, 1.0f, error))
        return FALSE;
      dx = ds->d_dx32;
    }
    const NfVgg *v = p->vgg;
    if (!nf_cuda_vgg_preprocess_backward (ds->ct, v->perm, v->scale, dx, grad, s.n,
            (size_t) s.h * s.w, error))
      return FALSE;
  }
  if (losses && !ds->deferred)
    nf_perceptual_device_losses (p, losses);
  return TRUE;
}
