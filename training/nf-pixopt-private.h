/* nf-pixopt-private.h — what nf-pixopt.c (the host path, any backend) and the training
 * devices with a device path (nf-pixopt-gpu.c) share: the object and its loss layers.
 * What it does not: anything callers see (nf-pixopt.h is the API), a device's own state
 * (NfPixoptDeviceState, defined by the device that has one).
 */
#pragma once

#include "nf-engine.h"
#include "nf-pixopt.h"
#include "nf-train-device.h"

typedef struct {
  int value;                    /* value id in the VGG graph */
  NfShape shape;
  /* host path */
  float *act;                   /* host copy of the activations (shape) */
  float *grad;                  /* host dL/d(act) (shape) */
  float *content;               /* content target (shape) or NULL */
  int n_style;                  /* style terms on this layer (indices into spec layers) */
  int style_idx[NF_PIXOPT_MAX_LAYERS];
} LossLayer;

/* A device's own state (device image, targets, staging, loss scaling); NULL on the
 * host path. */
typedef struct NfPixoptDeviceState NfPixoptDeviceState;

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

  /* the device path: the table whose pixopt entries evaluate (set when the backend's
   * training device has one and the spec does not ask for host losses), NULL: the host
   * path */
  const NfTrainDevice *device;
  NfPixoptDeviceState *dstate;
};
