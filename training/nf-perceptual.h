/* nf-perceptual.h — perceptual losses of a batch of images through the VGG loss
 * network, with their gradient: what fast style transfer and SR training minimise and
 * what the evaluation tool reports.
 *
 *   content  = MSE(F_c(rgb), F_c(content_rgb))         mean over N*C*H*W at layer c
 *   style    = sum_l w_l * MSE(G_l(rgb), T_l)          mean over N*C*C per layer, one
 *                                                      (C, C) target T_l for the batch
 *   L        = content_weight * content + style_weight * style
 * with F the activations of the preprocessed images (caffe-bgr for our VGG files: B,G,R,
 * 0..255 minus the ImageNet mean) and G_l = F F^T / (C*H*W) (nf-losses.h). The content
 * targets are computed from content_rgb in the same call (the network input of style
 * training, the HR images in SR training).
 *
 * Images are (N, 3, H, W) in 0..255; any H, W (the engine is replanned when the shape
 * changes). One forward for the targets, one forward + backward for the images scored,
 * the loss gradients uploaded into the engine's gradient buffers of the loss layers.
 *
 * nf_perceptual_eval works on any backend that trains. On a CUDA backend ("cuda",
 * "cuda-fp16") the GPU trainer also uses the device twin, nf_perceptual_eval_device
 * (nf-perceptual-gpu.c, declared in nf-train-device-cuda.h): DEVICE images and
 * gradient, every step on the backend's stream, only the loss values back to the host.
 *
 * What it does not: own the VGG or the backend, total variation or pixel losses (the
 * trainer adds those), the network being trained.
 */
#pragma once

#include <glib.h>

#include "nf-backend.h"
#include "nf-pixopt.h"          /* NfLayerWeight */
#include "nf-vgg.h"

G_BEGIN_DECLS

#define NF_PERCEPTUAL_MAX_LAYERS 8

typedef struct {
  const char *content_layer;    /* NULL: no content term */
  double content_weight;
  int n_style;                  /* 0: no style term */
  NfLayerWeight style[NF_PERCEPTUAL_MAX_LAYERS];
  double style_weight;
} NfPerceptualSpec;

typedef struct {
  double content;               /* unweighted content MSE */
  double style;                 /* sum_l w_l * Gram MSE_l (without style_weight) */
  double style_layer[NF_PERCEPTUAL_MAX_LAYERS];         /* unweighted Gram MSE per layer */
  double total;                 /* content_weight * content + style_weight * style */
} NfPerceptualLosses;

typedef struct NfPerceptual NfPerceptual;

/* The VGG must have been loaded with every layer of spec (nf_vgg_load options). */
NfPerceptual *nf_perceptual_new (NfVgg *vgg, NfBackend *be, const NfPerceptualSpec *spec,
    GError **error);
void nf_perceptual_free (NfPerceptual *p);

/* Gram targets of one style image (1, 3, h, w), 0..255. */
gboolean nf_perceptual_set_style (NfPerceptual *p, const float *rgb, int w, int h,
    GError **error);
gboolean nf_perceptual_has_style (const NfPerceptual *p);

/* Losses of rgb (s = (N, 3, H, W)); content_rgb (same shape) is needed when the spec
 * has a content layer. grad (same shape, may be NULL) is overwritten with dL/drgb. */
gboolean nf_perceptual_eval (NfPerceptual *p, NfShape s, const float *rgb,
    const float *content_rgb, float *grad, NfPerceptualLosses *losses, GError **error);

/* Parses "relu1_2,relu2_2" and "1,0.5" (weights optional: all 1) into spec->style. */
gboolean nf_perceptual_parse_layers (NfPerceptualSpec *spec, const char *layers,
    const char *weights, GError **error);

G_END_DECLS
