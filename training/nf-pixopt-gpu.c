/* nf-pixopt-gpu.c — the pixel optimiser's device path on CUDA backends (see
 * nf-pixopt.h): targets computed once on the device, then per evaluation one upload
 * of the image and one download of its gradient.
 *
 * What it does, all on the backend's stream: the image (pinned staging, asynchronous
 * copy) preprocessed into the VGG input (nf_cuda_vgg_preprocess), forward, per loss
 * layer the content MSE and Gram losses (nf-cuda-train.h) ACCUMULATING their weighted
 * gradient straight into the engine's gradient buffer of that layer ("cuda", fp32
 * NCHW) or into an fp32 copy converted to half with the loss scale ("cuda-fp16"), one
 * backward, the input gradient back through the preprocessing, TV, and the download.
 * Targets: the style image's Grams (nf_cuda_gram, at the style image's size) and the
 * content activations, kept in device memory for the object's life.
 * What it does not: L-BFGS (the host, nf-pixopt.c), the host path, CPU backends.
 * The pixopt_* entries of the CUDA training device (nf-train-device-cuda.h), built only
 * with the GPU training kernels (NF_HAVE_CUDA_TRAIN); without them nothing takes this
 * path and CUDA backends use the host path (host losses, upload/download).
 */
#include "nf-pixopt-private.h"
#include "nf-train-device-cuda.h"

#include <math.h>
#include <string.h>

#include "nf-error.h"

/* cuda-fp16 loss scaling: the first scale, how many finite evaluations before it is
 * doubled, its bounds (halved on a non-finite input gradient, down to the lowest). */
#define LOSS_SCALE_INIT 65536.0
#define LOSS_SCALE_GROWTH_EVALS 100
#define LOSS_SCALE_MAX 16777216.0
#define LOSS_SCALE_MIN (1.0 / 65536.0)

struct NfPixoptDeviceState {
  NfCudaTrain *ct;              /* own: loss kernels on the backend's stream */
  float *d_rgb, *d_grad;        // (1, 3, H, W) fp32 device: the image, dL/d(image)
  float *h_rgb, *h_grad;        // (1, 3, H, W) pinned host staging of the two
  float *d_x32, *d_dx32;        // (1, 3, H, W) fp32 device: cuda-fp16 input staging
  float *d_gram[NF_PIXOPT_MAX_LAYERS];  // (C, C) device Gram targets per style layer
  /* per loss layer (p->layers), fp32 NCHW device memory of its shape: the content
   * target (NULL: no content term there); cuda-fp16 copies of act and its gradient */
  float *d_content[NF_PIXOPT_MAX_LAYERS + 1];
  float *d_act32[NF_PIXOPT_MAX_LAYERS + 1], *d_grad32[NF_PIXOPT_MAX_LAYERS + 1];
  double loss_scale;            /* cuda-fp16: gradient seeds times this (dynamic) */
  int finite_run;               /* cuda-fp16: evaluations since the scale last changed */
};

void
nf_pixopt_gpu_free (NfPixopt *p)
{
  NfPixoptDeviceState *ds = p->dstate;
  if (!ds)
    return;
  NfBackend *be = p->spec.be;
  nf_gpu_free (be, ds->d_rgb);
  nf_gpu_free (be, ds->d_grad);
  nf_gpu_free (be, ds->d_x32);
  nf_gpu_free (be, ds->d_dx32);
  nf_gpu_host_free (be, ds->h_rgb);
  nf_gpu_host_free (be, ds->h_grad);
  for (int i = 0; i < p->n_layers; i++) {
    nf_gpu_free (be, ds->d_content[i]);
    nf_gpu_free (be, ds->d_act32[i]);
    nf_gpu_free (be, ds->d_grad32[i]);
  }
  for (int i = 0; i < NF_PIXOPT_MAX_LAYERS; i++)
    nf_gpu_free (be, ds->d_gram[i]);
  if (ds->ct)
    nf_cuda_train_free (ds->ct);
  g_free (ds);
  p->dstate = NULL;
}

/* A (1, 3, s.h, s.w) 0..255 host image -> d_rgb -> preprocessed engine input ->
 * forward, with the engine planned for s. */
static gboolean
forward_device (NfPixopt *p, const float *rgb, NfShape s, GError **error)
{
  NfPixoptDeviceState *ds = p->dstate;
  NfBackend *be = p->spec.be;
  const NfVgg *v = p->spec.vgg;
  size_t hw = (size_t) s.h * s.w;
  if (!nf_engine_is_planned_for (p->engine, s) && !nf_engine_plan (p->engine, s, error))
    return FALSE;
  /* the pinned stage may still be read by the previous copy: wait before rewriting */
  if (!nf_gpu_sync (be, error))
    return FALSE;
  memcpy (ds->h_rgb, rgb, 3 * hw * sizeof (float));
  if (!nf_gpu_copy (be, ds->d_rgb, ds->h_rgb, 3 * hw * sizeof (float), error))
    return FALSE;
  void *in = nf_engine_input_buffer (p->engine);
  if (nf_gpu_is_fp16 (be)) {
    if (!nf_cuda_vgg_preprocess (ds->ct, v->perm, v->scale, v->shift, ds->d_rgb, ds->d_x32,
            1, hw, error)
        || !nf_cuda_f32_nchw_to_f16_nhwc (ds->ct, ds->d_x32, in, s, 1.0f, error))
      return FALSE;
  } else if (!nf_cuda_vgg_preprocess (ds->ct, v->perm, v->scale, v->shift, ds->d_rgb, in, 1,
          hw, error)) {
    return FALSE;
  }
  return nf_engine_run (p->engine, error);
}

/* The activation of value v (shape s) as device fp32 NCHW: the engine's buffer itself
 * ("cuda"), or converted into dst ("cuda-fp16"). */
static const float *
act32 (NfPixopt *p, int v, NfShape s, float *dst, GError **error)
{
  const void *a = nf_engine_value_buffer (p->engine, v);
  if (!nf_gpu_is_fp16 (p->spec.be))
    return a;
  return nf_cuda_f16_nhwc_to_f32_nchw (p->dstate->ct, a, dst, s, 1.0f, error) ? dst : NULL;
}

/* Grams of the style image at its own size, one device (C, C) target per style layer. */
static gboolean
style_targets (NfPixopt *p, GError **error)
{
  const NfPixoptSpec *sp = &p->spec;
  NfPixoptDeviceState *ds = p->dstate;
  NfBackend *be = sp->be;
  NfShape ss = { 1, 3, sp->style_height, sp->style_width };
  if (!forward_device (p, sp->style_rgb, ss, error)) {
    g_prefix_error (error, "style image: ");
    return FALSE;
  }
  for (int i = 0; i < sp->n_style_layers; i++) {
    int v = nf_vgg_value (sp->vgg, sp->style_layers[i].layer, error);
    if (v < 0)
      return FALSE;
    NfShape s = nf_engine_value_shape (p->engine, v);
    float *tmp = NULL;          // (1, C, H, W) fp32 copy (cuda-fp16 only)
    if (nf_gpu_is_fp16 (be) && !(tmp = nf_gpu_alloc_floats (be, nf_shape_numel (s), error)))
      return FALSE;
    const float *a;
    gboolean ok = (ds->d_gram[i] = nf_gpu_alloc_floats (be, (size_t) s.c * s.c, error))
        && (a = act32 (p, v, s, tmp, error))
        && nf_cuda_gram (ds->ct, a, s, ds->d_gram[i], error);
    /* cudaFree waits for the Gram that reads tmp */
    nf_gpu_free (be, tmp);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

gboolean
nf_pixopt_gpu_init (NfPixopt *p, GError **error)
{
  const NfPixoptSpec *sp = &p->spec;
  NfBackend *be = sp->be;
  gboolean fp16 = nf_gpu_is_fp16 (be);
  size_t n_in = nf_shape_numel (p->in_shape);
  size_t n_style = sp->style_rgb ? (size_t) 3 * sp->style_width * sp->style_height : 0;
  size_t n_max = MAX (n_in, n_style);   /* the image stage also holds the style image */

  NfPixoptDeviceState *ds = p->dstate = g_new0 (NfPixoptDeviceState, 1);
  if (!(ds->ct = nf_cuda_train_new (be, error)))
    return FALSE;
  ds->loss_scale = fp16 ? LOSS_SCALE_INIT : 1.0;
  if (!(ds->d_rgb = nf_gpu_alloc_floats (be, n_max, error))
      || !(ds->d_grad = nf_gpu_alloc_floats (be, n_in, error))
      || !(ds->h_rgb = nf_gpu_host_alloc (be, n_max * sizeof (float), error))
      || !(ds->h_grad = nf_gpu_host_alloc (be, n_in * sizeof (float), error)))
    return FALSE;
  if (fp16 && (!(ds->d_x32 = nf_gpu_alloc_floats (be, n_max, error))
          || !(ds->d_dx32 = nf_gpu_alloc_floats (be, n_in, error))))
    return FALSE;

  if (sp->style_rgb && !style_targets (p, error))
    return FALSE;

  /* Plan for the image being optimised; per-layer buffers; content target. */
  if (!nf_engine_plan (p->engine, p->in_shape, error))
    return FALSE;
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    l->shape = nf_engine_value_shape (p->engine, l->value);
    size_t m = nf_shape_numel (l->shape);
    if (fp16 && (!(ds->d_act32[i] = nf_gpu_alloc_floats (be, m, error))
            || !(ds->d_grad32[i] = nf_gpu_alloc_floats (be, m, error))))
      return FALSE;
  }
  if (sp->content_rgb) {
    if (!forward_device (p, sp->content_rgb, p->in_shape, error)) {
      g_prefix_error (error, "content image: ");
      return FALSE;
    }
    int v = nf_vgg_value (sp->vgg, sp->content_layer, error);
    if (v < 0)
      return FALSE;
    for (int i = 0; i < p->n_layers; i++) {
      LossLayer *l = &p->layers[i];
      if (l->value != v)
        continue;
      size_t m = nf_shape_numel (l->shape);
      if (!(ds->d_content[i] = nf_gpu_alloc_floats (be, m, error)))
        return FALSE;
      gboolean ok = fp16
          ? act32 (p, v, l->shape, ds->d_content[i], error) != NULL
          : nf_gpu_copy (be, ds->d_content[i], nf_engine_value_buffer (p->engine, v),
          m * sizeof (float), error);
      if (!ok)
        return FALSE;
    }
  }
  return nf_gpu_sync (be, error);
}

/* Loss terms at the current forward; with grad, the gradient seeds times the loss scale
 * and one backward, leaving dL/d(rgb) (unscaled) in d_grad. Sets *finite to whether
 * that gradient is finite (always TRUE for fp32, which is not checked). */
static gboolean
losses_and_backward (NfPixopt *p, gboolean grad, NfPixoptLosses *L, gboolean *finite,
    GError **error)
{
  const NfPixoptSpec *sp = &p->spec;
  NfPixoptDeviceState *ds = p->dstate;
  NfBackend *be = sp->be;
  gboolean fp16 = nf_gpu_is_fp16 (be);
  double S = ds->loss_scale;
  *finite = TRUE;
  if (grad && !nf_engine_zero_grads (p->engine, error))
    return FALSE;
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    size_t m = nf_shape_numel (l->shape);
    const float *a = act32 (p, l->value, l->shape, ds->d_act32[i], error);
    if (!a)
      return FALSE;
    /* fp32: the engine's gradient buffer itself (zeroed above); fp16: an fp32 copy */
    float *g = NULL;
    if (grad) {
      g = fp16 ? ds->d_grad32[i] : nf_engine_grad_buffer (p->engine, l->value);
      if (fp16 && !nf_gpu_zero (be, g, m * sizeof (float), error))
        return FALSE;
    }
    if (ds->d_content[i]) {
      double c;
      if (!nf_cuda_loss_mse (ds->ct, a, ds->d_content[i], m, sp->content_weight * S, g, &c,
              error))
        return FALSE;
      L->content += sp->content_weight * c;
    }
    for (int j = 0; j < l->n_style; j++) {
      int k = l->style_idx[j];
      double w = sp->style_weight * sp->style_layers[k].weight, s;
      if (!nf_cuda_loss_gram (ds->ct, a, l->shape, ds->d_gram[k], w * S, g, &s, error))
        return FALSE;
      L->style_layer[k] = s;
      L->style += w * s;
    }
    if (g && fp16 && !nf_cuda_f32_nchw_to_f16_nhwc (ds->ct, g,
            nf_engine_grad_buffer (p->engine, l->value), l->shape, 1.0f, error))
      return FALSE;
  }
  if (!grad)
    return TRUE;
  if (!nf_engine_backward (p->engine, NULL, NULL, error))
    return FALSE;
  const NfVgg *v = sp->vgg;
  const float *dx = nf_engine_grad_buffer (p->engine, v->model->graph->input);
  if (fp16) {
    if (!nf_cuda_f16_nhwc_to_f32_nchw (ds->ct, dx, ds->d_dx32, p->in_shape,
            (float) (1.0 / S), error))
      return FALSE;
    dx = ds->d_dx32;
  }
  size_t hw = (size_t) p->in_shape.h * p->in_shape.w;
  if (!nf_cuda_vgg_preprocess_backward (ds->ct, v->perm, v->scale, dx, ds->d_grad, 1, hw,
          error))
    return FALSE;
  return !fp16 || nf_cuda_all_finite (ds->ct, ds->d_grad, 3 * hw, finite, error);
}

gboolean
nf_pixopt_gpu_eval (NfPixopt *p, const float *rgb, float *grad, NfPixoptLosses *losses,
    GError **error)
{
  const NfPixoptSpec *sp = &p->spec;
  NfPixoptDeviceState *ds = p->dstate;
  NfBackend *be = sp->be;
  size_t n = nf_shape_numel (p->in_shape);
  NfPixoptLosses L;

  if (!forward_device (p, rgb, p->in_shape, error))
    return FALSE;
  for (;;) {
    gboolean finite;
    memset (&L, 0, sizeof (L));
    if (!losses_and_backward (p, grad != NULL, &L, &finite, error))
      return FALSE;
    if (finite)
      break;
    /* cuda-fp16: a seed or gradient overflowed half; retry at half the scale */
    ds->loss_scale *= 0.5;
    ds->finite_run = 0;
    if (ds->loss_scale < LOSS_SCALE_MIN) {
      g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
          "%s: the image gradient is not finite even at loss scale %g (the image or the "
          "loss network overflows half precision; use the \"cuda\" backend)",
          be->iface->name, ds->loss_scale * 2);
      return FALSE;
    }
  }
  if (grad && nf_gpu_is_fp16 (be) && ++ds->finite_run >= LOSS_SCALE_GROWTH_EVALS) {
    ds->loss_scale = MIN (ds->loss_scale * 2, LOSS_SCALE_MAX);
    ds->finite_run = 0;
  }
  if (sp->tv_weight != 0.0) {
    double tv;
    if (!nf_cuda_loss_tv (ds->ct, ds->d_rgb, p->in_shape, sp->tv_weight,
            grad ? ds->d_grad : NULL, &tv, error))
      return FALSE;
    L.tv = sp->tv_weight * tv;
  }
  if (grad) {
    if (!nf_gpu_copy (be, ds->h_grad, ds->d_grad, n * sizeof (float), error)
        || !nf_gpu_sync (be, error))
      return FALSE;
    memcpy (grad, ds->h_grad, n * sizeof (float));
  }
  L.total = L.content + L.style + L.tv;
  *losses = L;
  return TRUE;
}
