/* nf-pixopt.c — content / style / Gatys objectives over the VGG loss network, and
 * L-BFGS on the pixels.
 *
 * What it does: plans one training engine (every value kept, no fusion) for the image
 * size, computes targets once (content activations; style Grams on an engine planned
 * for the style image's size, then replanned), and evaluates loss + gradient with the
 * backend's forward and backward, reading and seeding values only through the
 * backend's upload/download (the host path). Where the backend's training device has a
 * pixel-optimisation path (nf-train-device.h; the CUDA one, nf-pixopt-gpu.c) it hands
 * targets and evaluations to that instead.
 * What it does not: image files, option parsing, progress printing (the tool does).
 */
#include "nf-pixopt-private.h"

#include <math.h>
#include <string.h>

#include "nf-error.h"
#include "nf-losses.h"

static LossLayer *
layer_for (NfPixopt *p, int value, GError **error)
{
  for (int i = 0; i < p->n_layers; i++)
    if (p->layers[i].value == value)
      return &p->layers[i];
  if (p->n_layers >= (int) G_N_ELEMENTS (p->layers)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "at most %d loss layers",
        NF_PIXOPT_MAX_LAYERS);
    return NULL;
  }
  LossLayer *l = &p->layers[p->n_layers++];
  memset (l, 0, sizeof (*l));
  l->value = value;
  return l;
}

/* Forward of a (1, 3, h, w) 0..255 image on the planned engine. */
static gboolean
forward_rgb (NfPixopt *p, const float *rgb, NfShape s, float *xbuf, GError **error)
{
  NfBackend *be = p->spec.be;
  nf_vgg_preprocess (p->spec.vgg, rgb, xbuf, 1, (size_t) s.h * s.w);
  if (!nf_engine_is_planned_for (p->engine, s) && !nf_engine_plan (p->engine, s, error))
    return FALSE;
  if (!be->iface->upload (be, nf_engine_input_buffer (p->engine), xbuf, s, error))
    return FALSE;
  return nf_engine_run (p->engine, error);
}

static float *
download_value (NfPixopt *p, int value, GError **error)
{
  NfShape s = nf_engine_value_shape (p->engine, value);
  float *h = nf_alloc_floats (nf_shape_numel (s));
  if (!p->spec.be->iface->download (p->spec.be, h, nf_engine_value_buffer (p->engine, value),
          s, error)) {
    nf_free (h);
    return NULL;
  }
  return h;
}

gboolean
nf_pixopt_backend_can_train (const NfBackendIface *bi, const NfVgg *vgg, GError **error)
{
  if (!bi->zero) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
        "backend %s has no backward passes; optimising pixels needs one (cpu-ref has)",
        bi->name);
    return FALSE;
  }
  const NfGraph *g = vgg->model->graph;
  for (int i = 0; i < g->n_ops; i++)
    if (!bi->backward[g->ops[i].type]) {
      g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
          "backend %s has no backward pass for %s (op %s of the loss network); optimising "
          "pixels needs one (cpu-ref has)", bi->name, nf_op_type_name (g->ops[i].type),
          g->ops[i].name ? g->ops[i].name : g->value_names[g->ops[i].out]);
      return FALSE;
    }
  return TRUE;
}

gboolean
nf_pixopt_on_device (const NfPixopt *p)
{
  return p->device != NULL;
}

void
nf_pixopt_free (NfPixopt *p)
{
  if (!p)
    return;
  if (p->device && p->device->pixopt_free)
    p->device->pixopt_free (p);
  nf_engine_free (p->engine);
  nf_free (p->x);
  nf_free (p->dx);
  nf_free (p->frgb);
  nf_free (p->fgrad);
  for (int i = 0; i < p->n_layers; i++) {
    nf_free (p->layers[i].act);
    nf_free (p->layers[i].grad);
    nf_free (p->layers[i].content);
  }
  for (int i = 0; i < NF_PIXOPT_MAX_LAYERS; i++)
    nf_free (p->gram_target[i]);
  g_free (p);
}

NfPixopt *
nf_pixopt_new (const NfPixoptSpec *spec, GError **error)
{
  if (spec->width < 1 || spec->height < 1 || !spec->vgg || !spec->be
      || spec->n_style_layers < 0 || spec->n_style_layers > NF_PIXOPT_MAX_LAYERS
      || (spec->style_rgb && (spec->n_style_layers < 1 || spec->style_width < 1
              || spec->style_height < 1)) || (spec->content_rgb && !spec->content_layer)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "pixel optimisation: incomplete spec (size %dx%d, %d style layers, at most %d)",
        spec->width, spec->height, spec->n_style_layers, NF_PIXOPT_MAX_LAYERS);
    return NULL;
  }
  if (!spec->content_rgb && !spec->style_rgb) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "pixel optimisation needs a content image, a style image, or both");
    return NULL;
  }
  if (!nf_pixopt_backend_can_train (spec->be->iface, spec->vgg, error))
    return NULL;
  NfPixopt *p = g_new0 (NfPixopt, 1);
  p->spec = *spec;
  p->in_shape = (NfShape) { 1, 3, spec->height, spec->width };
  size_t n_in = nf_shape_numel (p->in_shape);
  p->x = nf_alloc_floats (n_in);
  p->dx = nf_alloc_floats (n_in);
  p->frgb = nf_alloc_floats (n_in);
  p->fgrad = nf_alloc_floats (n_in);
  NfEngineOptions eo = {.keep_all_values = TRUE,.no_fusion = TRUE };
  p->engine = nf_engine_new (spec->vgg->model, spec->be, &eo);

  /* Which values carry which terms. */
  LossLayer *content_layer = NULL;
  if (spec->content_rgb) {
    int v = nf_vgg_value (spec->vgg, spec->content_layer, error);
    if (v < 0 || !(content_layer = layer_for (p, v, error)))
      goto fail;
  }
  if (spec->style_rgb)
    for (int i = 0; i < spec->n_style_layers; i++) {
      int v = nf_vgg_value (spec->vgg, spec->style_layers[i].layer, error);
      LossLayer *l = v < 0 ? NULL : layer_for (p, v, error);
      if (!l)
        goto fail;
      l->style_idx[l->n_style++] = i;
    }

  const NfTrainDevice *d = spec->host_losses ? NULL : nf_train_device_for (spec->be, NULL);
  if (d && d->pixopt_init) {
    p->device = d;
    if (!d->pixopt_init (p, error))
      goto fail;
    return p;
  }

  /* Style targets: Grams of the style image at its own size. */
  if (spec->style_rgb) {
    NfShape ss = { 1, 3, spec->style_height, spec->style_width };
    float *xs = nf_alloc_floats (nf_shape_numel (ss));
    gboolean ok = forward_rgb (p, spec->style_rgb, ss, xs, error);
    nf_free (xs);
    if (!ok) {
      g_prefix_error (error, "style image: ");
      goto fail;
    }
    for (int i = 0; i < spec->n_style_layers; i++) {
      int v = nf_vgg_value (spec->vgg, spec->style_layers[i].layer, NULL);
      NfShape s = nf_engine_value_shape (p->engine, v);
      float *a = download_value (p, v, error);
      if (!a)
        goto fail;
      p->gram_target[i] = nf_alloc_floats ((size_t) s.c * s.c);
      ok = nf_gram (a, s, p->gram_target[i], error);
      nf_free (a);
      if (!ok)
        goto fail;
    }
  }

  /* Plan for the image being optimised; content target. */
  if (!nf_engine_plan (p->engine, p->in_shape, error))
    goto fail;
  if (spec->content_rgb) {
    if (!forward_rgb (p, spec->content_rgb, p->in_shape, p->x, error)) {
      g_prefix_error (error, "content image: ");
      goto fail;
    }
    if (!(content_layer->content = download_value (p, content_layer->value, error)))
      goto fail;
  }
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    l->shape = nf_engine_value_shape (p->engine, l->value);
    l->act = nf_alloc_floats (nf_shape_numel (l->shape));
    l->grad = nf_alloc_floats (nf_shape_numel (l->shape));
  }
  return p;

fail:
  nf_pixopt_free (p);
  return NULL;
}

gboolean
nf_pixopt_eval (NfPixopt *p, const float *rgb, float *grad, NfPixoptLosses *losses,
    GError **error)
{
  const NfPixoptSpec *sp = &p->spec;
  NfBackend *be = sp->be;
  NfPixoptLosses L = { 0 };
  size_t hw = (size_t) p->in_shape.h * p->in_shape.w;

  if (p->device) {
    if (!p->device->pixopt_eval (p, rgb, grad, &L, error))
      return FALSE;
    p->last = L;
    if (losses)
      *losses = L;
    return TRUE;
  }
  if (!forward_rgb (p, rgb, p->in_shape, p->x, error))
    return FALSE;
  if (grad && !nf_engine_zero_grads (p->engine, error))
    return FALSE;
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    size_t n = nf_shape_numel (l->shape);
    if (!be->iface->download (be, l->act, nf_engine_value_buffer (p->engine, l->value),
            l->shape, error))
      return FALSE;
    float *g = grad ? l->grad : NULL;
    if (g)
      memset (g, 0, n * sizeof (float));
    if (l->content) {
      double c = nf_loss_content (l->act, l->content, n, sp->content_weight, g);
      L.content += sp->content_weight * c;
    }
    for (int j = 0; j < l->n_style; j++) {
      int k = l->style_idx[j];
      double w = sp->style_weight * sp->style_layers[k].weight, s;
      if (!nf_loss_gram (l->act, l->shape, p->gram_target[k], w, g, &s, error))
        return FALSE;
      L.style_layer[k] = s;
      L.style += w * s;
    }
    if (g && !be->iface->upload (be, nf_engine_grad_buffer (p->engine, l->value), g,
            l->shape, error))
      return FALSE;
  }
  if (grad) {
    if (!nf_engine_backward (p->engine, NULL, NULL, error))
      return FALSE;
    int in = sp->vgg->model->graph->input;
    if (!be->iface->download (be, p->dx, nf_engine_grad_buffer (p->engine, in), p->in_shape,
            error))
      return FALSE;
    nf_vgg_preprocess_backward (sp->vgg, p->dx, grad, 1, hw);
  }
  if (sp->tv_weight != 0.0)
    L.tv = sp->tv_weight * nf_loss_tv (rgb, p->in_shape, sp->tv_weight, grad);
  L.total = L.content + L.style + L.tv;
  p->last = L;
  if (losses)
    *losses = L;
  return TRUE;
}

typedef struct {
  NfPixopt *p;
  NfPixoptIterFn iter;
  gpointer user;
} RunCtx;

static gboolean
run_eval (gpointer user, const double *x, double *g, size_t n, double *fx, GError **error)
{
  RunCtx *c = user;
  NfPixopt *p = c->p;
  for (size_t i = 0; i < n; i++)
    p->frgb[i] = (float) x[i];
  NfPixoptLosses L;
  if (!nf_pixopt_eval (p, p->frgb, p->fgrad, &L, error))
    return FALSE;
  for (size_t i = 0; i < n; i++)
    g[i] = p->fgrad[i];
  *fx = L.total;
  return TRUE;
}

static gboolean
run_iter (gpointer user, int iter, const double *x, size_t n, double fx, int evals)
{
  RunCtx *c = user;
  return c->iter ? c->iter (c->user, iter, x, &c->p->last, evals) : TRUE;
}

gboolean
nf_pixopt_run (NfPixopt *p, float *rgb, const NfLbfgsParams *params, NfPixoptIterFn iter,
    gpointer user, NfLbfgsResult *result, GError **error)
{
  size_t n = nf_shape_numel (p->in_shape);
  double *x = g_try_new (double, n);
  if (!x) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "out of memory");
    return FALSE;
  }
  for (size_t i = 0; i < n; i++)
    x[i] = rgb[i];
  RunCtx c = { p, iter, user };
  gboolean ok = nf_lbfgs_minimize (x, n, params, run_eval, run_iter, &c, result, error);
  for (size_t i = 0; i < n; i++)
    rgb[i] = (float) x[i];
  g_free (x);
  return ok;
}

void
nf_pixopt_noise (float *rgb, size_t hw, guint64 seed, float amplitude)
{
  static const float mean_rgb[3] = { 123.68f, 116.779f, 103.939f };
  NfRng rng;
  nf_rng_seed (&rng, seed);
  for (int c = 0; c < 3; c++)
    for (size_t i = 0; i < hw; i++)
      rgb[c * hw + i] = mean_rgb[c] + amplitude * (2.0f * nf_rng_uniform (&rng) - 1.0f);
}
