/* nf-pixopt-private.h — what nf-pixopt.c (the host path, any backend) and
 * nf-pixopt-gpu.c (the device path on CUDA backends) share: the object, its loss layers
 * and the device path's entry points.
 * What it does not: anything callers see (nf-pixopt.h is the API).
 */
#pragma once

#include "nf-engine.h"
#include "nf-pixopt.h"
#include "cuda/nf-cuda-train.h"

typedef struct {
  int value;                    /* value id in the VGG graph */
  NfShape shape;
  /* host path */
  float *act;                   /* host copy of the activations (shape) */
  float *grad;                  /* host dL/d(act) (shape) */
  float *content;               /* content target (shape) or NULL */
  /* device path (fp32 NCHW device memory) */
  float *d_content;             /* content target (shape) or NULL */
  float *d_act32, *d_grad32;    /* cuda-fp16: fp32 copies of act and its gradient (shape) */
  int n_style;                  /* style terms on this layer (indices into spec layers) */
  int style_idx[NF_PIXOPT_MAX_LAYERS];
} LossLayer;

struct NfPixopt {
  NfPixoptSpec spec;
  NfEngine *engine;
  NfShape in_shape;             /* (1, 3, H, W) */
  float *x, *dx;                /* host path: preprocessed input and its gradient (in_shape) */
  int n_layers;
  LossLayer layers[NF_PIXOPT_MAX_LAYERS + 1];
  float *gram_target[NF_PIXOPT_MAX_LAYERS];     /* host path: (C, C) per style layer */
  NfPixoptLosses last;
  /* L-BFGS scratch */
  float *frgb, *fgrad;

  /* device path (nf-pixopt-gpu.c): set when the backend is a CUDA backend, this build
   * has the GPU training kernels and the spec does not ask for host losses */
  gboolean gpu;
  NfCudaTrain *ct;              /* own: loss kernels on the backend's stream */
  float *d_rgb, *d_grad;        // (1, 3, H, W) fp32 device: the image, dL/d(image)
  float *h_rgb, *h_grad;        // (1, 3, H, W) pinned host staging of the two
  float *d_x32, *d_dx32;        // (1, 3, H, W) fp32 device: cuda-fp16 input staging
  float *d_gram[NF_PIXOPT_MAX_LAYERS];  // (C, C) device Gram targets per style layer
  double loss_scale;            /* cuda-fp16: gradient seeds times this (dynamic) */
  int finite_run;               /* cuda-fp16: evaluations since the scale last changed */
};

/* nf-pixopt-gpu.c. TRUE when p's backend takes the device path (sets nothing). */
gboolean nf_pixopt_gpu_wanted (const NfPixoptSpec *spec);
/* Device state and targets: content activations, style Grams (p->layers filled, the
 * engine not yet planned for in_shape); leaves the engine planned for in_shape. */
gboolean nf_pixopt_gpu_init (NfPixopt *p, GError **error);
void nf_pixopt_gpu_free (NfPixopt *p);
gboolean nf_pixopt_gpu_eval (NfPixopt *p, const float *rgb, float *grad,
    NfPixoptLosses *losses, GError **error);
