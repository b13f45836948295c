/* nf-pixopt.h — optimising the pixels of an image against a VGG loss: content
 * reconstruction, style reconstruction and Gatys style transfer (the lesson's three
 * experiments), on any backend that has backward passes.
 *
 *   loss(rgb) = content_weight * MSE(F_l(rgb), F_l(content))                [if content]
 *             + style_weight * sum_l w_l * MSE(G_l(rgb), G_l(style))        [if style]
 *             + tv_weight * TV(rgb)
 * rgb is the (1, 3, H, W) image in 0..255; F_l the activations at layer l of the loss
 * network on the preprocessed image; G_l their Gram matrix (nf-losses.h).
 *
 * Per evaluation, host path (CPU backends, and any backend when spec.host_losses):
 * preprocess, upload, forward, then for every distinct loss layer download its
 * activations, compute the loss terms and their gradient on the host and upload that
 * into the engine's gradient buffer of the layer; one backward; download the input's
 * gradient and take it back through the preprocessing; add TV. Backends are only
 * touched through upload/download, so any layout works.
 * Device path (CUDA backends, in builds with the GPU training kernels, NF_HAVE_CUDA_TRAIN;
 * nf-pixopt-gpu.c): one upload of the image, preprocessing, losses (against targets
 * computed once on the device), their gradients straight into the engine's gradient
 * buffers, backward, preprocessing backward and TV all on the device; one download of
 * the gradient. "cuda-fp16" seeds the gradients times a dynamic loss scale (halved
 * when the input gradient is not finite, doubled after 100 finite evaluations).
 * L-BFGS itself always runs on the host, in double (liblbfgs, nf-optim.h).
 *
 * What it does not: load images or parse options (training/nf-optimize.c does).
 */
#pragma once

#include <glib.h>

#include "nf-backend.h"
#include "nf-optim.h"
#include "nf-vgg.h"

G_BEGIN_DECLS

#define NF_PIXOPT_MAX_LAYERS 16

typedef struct {
  const char *layer;
  double weight;
} NfLayerWeight;

typedef struct {
  NfVgg *vgg;                   /* loaded with every layer used below */
  NfBackend *be;
  int width, height;            /* the image being optimised */
  /* content term: content_rgb NULL for none */
  const float *content_rgb;     /* (1, 3, height, width), 0..255 */
  const char *content_layer;
  double content_weight;
  /* style term: style_rgb NULL for none */
  const float *style_rgb;       /* (1, 3, style_height, style_width), 0..255 */
  int style_width, style_height;
  int n_style_layers;
  const NfLayerWeight *style_layers;
  double style_weight;
  double tv_weight;
  /* CUDA backends: compute the losses on the host as for CPU backends (checks the
   * device path against the host one); ignored by other backends */
  gboolean host_losses;
} NfPixoptSpec;

typedef struct {
  double total;                 /* the sum of the weighted terms below */
  double content, style, tv;    /* weighted */
  double style_layer[NF_PIXOPT_MAX_LAYERS];     /* unweighted Gram MSE per style layer */
} NfPixoptLosses;

typedef struct NfPixopt NfPixopt;

/* TRUE when backend bi has the backward passes (and zero) that optimising pixels through
 * vgg needs; else FALSE with an NF_ERROR_UNSUPPORTED error naming the missing op. */
gboolean nf_pixopt_backend_can_train (const NfBackendIface *bi, const NfVgg *vgg,
    GError **error);

/* Plans the engine, computes the content activations and style Gram targets. */
NfPixopt *nf_pixopt_new (const NfPixoptSpec *spec, GError **error);
void nf_pixopt_free (NfPixopt *p);
/* TRUE when p evaluates on the device path (see above). */
gboolean nf_pixopt_on_device (const NfPixopt *p);

/* Loss at rgb (3*H*W floats); grad (same size, may be NULL) is overwritten. */
gboolean nf_pixopt_eval (NfPixopt *p, const float *rgb, float *grad, NfPixoptLosses *losses,
    GError **error);

/* Called after every L-BFGS iteration; rgb is the current image (doubles, 3*H*W). */
typedef gboolean (*NfPixoptIterFn) (gpointer user, int iter, const double *rgb,
    const NfPixoptLosses *losses, int evals);

/* L-BFGS on rgb (in place), evaluating through nf_pixopt_eval. */
gboolean nf_pixopt_run (NfPixopt *p, float *rgb, const NfLbfgsParams *params,
    NfPixoptIterFn iter, gpointer user, NfLbfgsResult *result, GError **error);

/* Initial image: the ImageNet mean colour plus uniform noise of +-amplitude, seeded. */
void nf_pixopt_noise (float *rgb, size_t hw, guint64 seed, float amplitude);

G_END_DECLS
