/* nf-perceptual-private.h — what nf-perceptual.c (host path) and nf-perceptual-gpu.c
 * (device path on CUDA backends) share: the object and its loss layers.
 * What it does not: anything callers see (nf-perceptual.h is the API).
 */
#pragma once

#include "nf-engine.h"
#include "nf-perceptual.h"
#include "nf-train-gpu.h"
#include "cuda/nf-cuda-train.h"

typedef struct {
  int value;                    /* value id in the VGG graph */
  gboolean content;             /* the content term reads this layer */
  int n_style;
  int style_idx[NF_PERCEPTUAL_MAX_LAYERS];
  NfShape shape;                /* as planned */
  float *act, *grad, *target;   /* host (shape); target only for the content layer */
  /* device fp32 NCHW (CUDA backends): content target; cuda-fp16 activation and
   * gradient copies */
  float *d_target, *d_act32, *d_grad32;
} LossLayer;

struct NfPerceptual {
  NfPerceptualSpec spec;
  char *layer_names[NF_PERCEPTUAL_MAX_LAYERS + 1];      /* owned copies of the spec's names */
  NfVgg *vgg;
  NfBackend *be;
  NfEngine *engine;
  NfShape planned;              /* batch shape the host buffers are sized for */
  float *x, *dx;                /* preprocessed input and its gradient (planned) */
  int n_layers;
  LossLayer layers[NF_PERCEPTUAL_MAX_LAYERS + 1];
  float *gram[NF_PERCEPTUAL_MAX_LAYERS];        /* (C, C) style targets */
  /* CUDA backends (nf-perceptual-gpu.c) */
  gboolean gpu;
  NfCudaTrain *ct;              /* own: loss kernels on the backend's stream */
  float loss_scale;             /* loss gradients are seeded times this */
  NfShape dplanned;             /* batch shape the device buffers are sized for */
  float *d_x32, *d_dx32;        // (N, 3, H, W) fp32 staging for cuda-fp16
  float *d_gram[NF_PERCEPTUAL_MAX_LAYERS];      // (C, C) style targets on the device
};


/* Plans the engine for s and sizes the host buffers (nf-perceptual.c). */
gboolean nf_perceptual_ensure_planned (NfPerceptual *p, NfShape s, GError **error);

/* nf-perceptual-gpu.c */
gboolean nf_perceptual_gpu_init (NfPerceptual *p, GError **error);
void nf_perceptual_gpu_free (NfPerceptual *p);
/* Uploads the host Gram target k ((C, C), n = C * C floats) to the device. */
gboolean nf_perceptual_gpu_set_gram (NfPerceptual *p, int k, size_t n, GError **error);
