/* nf-perceptual-private.h — what nf-perceptual.c (host path) and the training devices
 * (nf-perceptual-gpu.c) share: the object and its loss layers.
 * What it does not: anything callers see (nf-perceptual.h is the API), a device's own
 * state (NfPerceptualDeviceState, defined by the device that has one).
 */
#pragma once

#include "nf-engine.h"
#include "nf-perceptual.h"
#include "nf-train-device.h"

typedef struct {
  int value;                    /* value id in the VGG graph */
  gboolean content;             /* the content term reads this layer */
  int n_style;
  int style_idx[NF_PERCEPTUAL_MAX_LAYERS];
  NfShape shape;                /* as planned */
  float *act, *grad, *target;   /* host (shape); target only for the content layer */
} LossLayer;

/* A device's own state (device targets, staging, loss kernels); NULL on the CPU. */
typedef struct NfPerceptualDeviceState NfPerceptualDeviceState;

struct NfPerceptual {
  NfPerceptualSpec spec;
  char *layer_names[NF_PERCEPTUAL_MAX_LAYERS + 1];      /* owned copies of the spec's names */
  NfVgg *vgg;
  NfBackend *be;
  const NfTrainDevice *device;  /* the table for be (nf-train-device.h) */
  NfPerceptualDeviceState *dstate;
  NfEngine *engine;
  NfShape planned;              /* batch shape the host buffers are sized for */
  float *x, *dx;                /* preprocessed input and its gradient (planned) */
  int n_layers;
  LossLayer layers[NF_PERCEPTUAL_MAX_LAYERS + 1];
  float *gram[NF_PERCEPTUAL_MAX_LAYERS];        /* (C, C) style targets */
};


/* Plans the engine for s and sizes the host buffers (nf-perceptual.c). */
gboolean nf_perceptual_ensure_planned (NfPerceptual *p, NfShape s, GError **error);
