/* nf-perceptual.c — batched content + Gram losses through the VGG engine, and their
 * gradient with respect to the input pixels.
 *
 * What it does: keeps one training engine on the loss network (every value kept, no
 * fusion), replanned for each new batch shape; per evaluation: targets forward
 * (content layer downloaded), images forward, host losses per distinct loss layer,
 * gradients uploaded into the engine, one backward, the input gradient taken back
 * through the preprocessing.
 * The training device of the backend (nf-train-device.h) may keep its own state
 * (nf-perceptual-gpu.c: the device path of the CUDA backends, with the Gram targets
 * uploaded when they are set here); the host path here works on any backend (previews,
 * CPU backends).
 * What it does not: anything about the network that produced the images.
 */
#include "nf-perceptual.h"
#include "nf-perceptual-private.h"

#include <string.h>

#include "nf-engine.h"
#include "nf-error.h"
#include "nf-losses.h"

static void
free_buffers (NfPerceptual *p)
{
  nf_free (p->x);
  nf_free (p->dx);
  p->x = p->dx = NULL;
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    nf_free (l->act);
    nf_free (l->grad);
    nf_free (l->target);
    l->act = l->grad = l->target = NULL;
  }
  p->planned = (NfShape) { 0, 0, 0, 0 };
}

void
nf_perceptual_free (NfPerceptual *p)
{
  if (!p)
    return;
  free_buffers (p);
  if (p->device && p->device->perceptual_free)
    p->device->perceptual_free (p);
  nf_engine_free (p->engine);
  for (int i = 0; i < NF_PERCEPTUAL_MAX_LAYERS; i++)
    nf_free (p->gram[i]);
  for (int i = 0; i <= NF_PERCEPTUAL_MAX_LAYERS; i++)
    g_free (p->layer_names[i]);
  g_free (p);
}

static LossLayer *
layer_for (NfPerceptual *p, int value)
{
  for (int i = 0; i < p->n_layers; i++)
    if (p->layers[i].value == value)
      return &p->layers[i];
  LossLayer *l = &p->layers[p->n_layers++];
  memset (l, 0, sizeof (*l));
  l->value = value;
  return l;
}

NfPerceptual *
nf_perceptual_new (NfVgg *vgg, NfBackend *be, const NfPerceptualSpec *spec, GError **error)
{
  if (spec->n_style < 0 || spec->n_style > NF_PERCEPTUAL_MAX_LAYERS) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "at most %d style layers",
        NF_PERCEPTUAL_MAX_LAYERS);
    return NULL;
  }
  if (!spec->content_layer && spec->n_style == 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "a perceptual loss needs a content layer, style layers, or both");
    return NULL;
  }
  if (!be->iface->zero || !be->iface->backward[NF_OP_CONV2D]) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
        "backend %s has no backward passes; training needs one", be->iface->name);
    return NULL;
  }
  NfPerceptual *p = g_new0 (NfPerceptual, 1);
  p->spec = *spec;
  p->vgg = vgg;
  p->be = be;
  NfEngineOptions eo = {.keep_all_values = TRUE,.no_fusion = TRUE };
  p->engine = nf_engine_new (vgg->model, be, &eo);
  if (spec->content_layer) {
    p->layer_names[NF_PERCEPTUAL_MAX_LAYERS] = g_strdup (spec->content_layer);
    p->spec.content_layer = p->layer_names[NF_PERCEPTUAL_MAX_LAYERS];
    int v = nf_vgg_value (vgg, spec->content_layer, error);
    if (v < 0)
      goto fail;
    layer_for (p, v)->content = TRUE;
  }
  for (int i = 0; i < spec->n_style; i++) {
    p->layer_names[i] = g_strdup (spec->style[i].layer);
    p->spec.style[i].layer = p->layer_names[i];
    int v = nf_vgg_value (vgg, spec->style[i].layer, error);
    if (v < 0)
      goto fail;
    LossLayer *l = layer_for (p, v);
    l->style_idx[l->n_style++] = i;
  }
  if (!(p->device = nf_train_device_for (be, error))
      || (p->device->perceptual_init && !p->device->perceptual_init (p, error)))
    goto fail;
  return p;

fail:
  nf_perceptual_free (p);
  return NULL;
}

/* Plans the engine for s and sizes the host buffers. */
gboolean
nf_perceptual_ensure_planned (NfPerceptual *p, NfShape s, GError **error)
{
  if (nf_shape_equal (p->planned, s) && nf_engine_is_planned_for (p->engine, s))
    return TRUE;
  free_buffers (p);
  if (!nf_engine_plan (p->engine, s, error))
    return FALSE;
  p->x = nf_alloc_floats (nf_shape_numel (s));
  p->dx = nf_alloc_floats (nf_shape_numel (s));
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    l->shape = nf_engine_value_shape (p->engine, l->value);
    size_t n = nf_shape_numel (l->shape);
    l->act = nf_alloc_floats (n);
    l->grad = nf_alloc_floats (n);
    if (l->content)
      l->target = nf_alloc_floats (n);
  }
  p->planned = s;
  return TRUE;
}

static gboolean
forward (NfPerceptual *p, NfShape s, const float *rgb, GError **error)
{
  nf_vgg_preprocess (p->vgg, rgb, p->x, s.n, (size_t) s.h * s.w);
  if (!p->be->iface->upload (p->be, nf_engine_input_buffer (p->engine), p->x, s, error))
    return FALSE;
  return nf_engine_run (p->engine, error);
}

static gboolean
download (NfPerceptual *p, LossLayer *l, float *dst, GError **error)
{
  return p->be->iface->download (p->be, dst, nf_engine_value_buffer (p->engine, l->value),
      l->shape, error);
}

gboolean
nf_perceptual_set_style (NfPerceptual *p, const float *rgb, int w, int h, GError **error)
{
  if (p->spec.n_style == 0)
    return TRUE;
  NfShape s = { 1, 3, h, w };
  if (!nf_perceptual_ensure_planned (p, s, error) || !forward (p, s, rgb, error)) {
    g_prefix_error (error, "style image: ");
    return FALSE;
  }
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    if (!l->n_style)
      continue;
    if (!download (p, l, l->act, error))
      return FALSE;
    for (int j = 0; j < l->n_style; j++) {
      int k = l->style_idx[j];
      nf_free (p->gram[k]);
      p->gram[k] = nf_alloc_floats ((size_t) l->shape.c * l->shape.c);
      if (!nf_gram (l->act, l->shape, p->gram[k], error)
          || (p->device->perceptual_set_gram
              && !p->device->perceptual_set_gram (p, k, error)))
        return FALSE;
    }
  }
  return TRUE;
}

gboolean
nf_perceptual_has_style (const NfPerceptual *p)
{
  return p->spec.n_style > 0 && p->gram[0] != NULL;
}

gboolean
nf_perceptual_eval (NfPerceptual *p, NfShape s, const float *rgb, const float *content_rgb,
    float *grad, NfPerceptualLosses *losses, GError **error)
{
  const NfPerceptualSpec *sp = &p->spec;
  NfPerceptualLosses L = { 0 };
  if (sp->content_layer && !content_rgb) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "the content term needs target images");
    return FALSE;
  }
  if (sp->n_style && !p->gram[0]) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "no style image set");
    return FALSE;
  }
  if (!nf_perceptual_ensure_planned (p, s, error))
    return FALSE;
  if (sp->content_layer) {
    if (!forward (p, s, content_rgb, error))
      return FALSE;
    for (int i = 0; i < p->n_layers; i++)
      if (p->layers[i].content && !download (p, &p->layers[i], p->layers[i].target, error))
        return FALSE;
  }
  if (!forward (p, s, rgb, error))
    return FALSE;
  if (grad && !nf_engine_zero_grads (p->engine, error))
    return FALSE;
  for (int i = 0; i < p->n_layers; i++) {
    LossLayer *l = &p->layers[i];
    size_t n = nf_shape_numel (l->shape);
    if (!download (p, l, l->act, error))
      return FALSE;
    float *g = grad ? l->grad : NULL;
    if (g)
      memset (g, 0, n * sizeof (float));
    if (l->content)
      L.content = nf_loss_content (l->act, l->target, n, sp->content_weight, g);
    for (int j = 0; j < l->n_style; j++) {
      int k = l->style_idx[j];
      double w = sp->style[k].weight, v;
      if (!nf_loss_gram (l->act, l->shape, p->gram[k], sp->style_weight * w, g, &v, error))
        return FALSE;
      L.style_layer[k] = v;
      L.style += w * v;
    }
    if (g && !p->be->iface->upload (p->be, nf_engine_grad_buffer (p->engine, l->value), g,
            l->shape, error))
      return FALSE;
  }
  if (grad) {
    if (!nf_engine_backward (p->engine, NULL, NULL, error))
      return FALSE;
    int in = p->vgg->model->graph->input;
    if (!p->be->iface->download (p->be, p->dx, nf_engine_grad_buffer (p->engine, in), s,
            error))
      return FALSE;
    nf_vgg_preprocess_backward (p->vgg, p->dx, grad, s.n, (size_t) s.h * s.w);
  }
  L.total = sp->content_weight * L.content + sp->style_weight * L.style;
  if (losses)
    *losses = L;
  return TRUE;
}

gboolean
nf_perceptual_parse_layers (NfPerceptualSpec *spec, const char *layers, const char *weights,
    GError **error)
{
  char **ls = g_strsplit (layers ? layers : "", ",", -1);
  char **ws = weights && *weights ? g_strsplit (weights, ",", -1) : NULL;
  int n = 0;
  gboolean ok = TRUE;
  for (int i = 0; ls[i]; i++) {
    char *name = g_strstrip (ls[i]);
    if (!*name)
      continue;
    if (n >= NF_PERCEPTUAL_MAX_LAYERS) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "at most %d style layers",
          NF_PERCEPTUAL_MAX_LAYERS);
      ok = FALSE;
      break;
    }
    spec->style[n].layer = g_intern_string (name);
    spec->style[n].weight = 1.0;
    n++;
  }
  if (ok && ws) {
    guint nw = g_strv_length (ws);
    if ((int) nw != n) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "%u layer weights for %d style layers (%s)", nw, n, layers);
      ok = FALSE;
    }
    for (int i = 0; ok && i < n; i++) {
      char *end = NULL;
      spec->style[i].weight = g_ascii_strtod (g_strstrip (ws[i]), &end);
      if (!end || *end || end == ws[i]) {
        g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "layer weight \"%s\" is not a number",
            ws[i]);
        ok = FALSE;
      }
    }
  }
  spec->n_style = ok ? n : 0;
  g_strfreev (ls);
  g_strfreev (ws);
  return ok;
}
