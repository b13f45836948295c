/* nf-trainnet-private.h — what nf-trainnet.c (the host side) and the training devices
 * (nf-train-device-cpu.c, nf-trainnet-gpu.c) share: the NfTrainNet object, its
 * batch-norm folds, the chain rule and the host paths the CPU table points at.
 * What it does not: anything callers see (nf-trainnet.h is the API), a device's own
 * state (NfTrainNetDeviceState, defined by the device that has one).
 */
#pragma once

#include "nf-engine.h"
#include "nf-train-device.h"
#include "nf-trainnet.h"

typedef struct {
  const NfOp *bn;               /* in model->source_graph */
  const NfOp *conv;             /* the convolution it is folded into */
  char *w_name, *b_name;        /* "conv.weight", "conv.bias" (the run graph's names) */
  NfModelTensor *fw, *fb;       /* folded weight/bias in model->folded */
  float *gw, *gb;               /* dL/dW', dL/db' from the engine (host scratch) */
  size_t nw;                    /* elements of the conv weight */
} BnFold;

/* A device's own per-network state (device parameter mirror, scratch); NULL on the CPU. */
typedef struct NfTrainNetDeviceState NfTrainNetDeviceState;

struct NfTrainNet {
  NfModel *model;
  NfBackend *be;
  const NfTrainDevice *device;  /* the table for be (nf-train-device.h) */
  NfTrainNetDeviceState *dstate;
  NfEngine *engine;
  NfParams *params;
  GArray *bns;                  /* BnFold */
  NfShape in_shape;
  int out_value;                /* the value the loss reads: the output, or the input of a
                                 * final clamp */
};

/* Spreads dW', db' (b->gw, b->gb) of every folded conv over W, b, gamma, beta, ADDING
 * into the host gradient views. */
void nf_trainnet_bn_chain_rule (NfTrainNet *t);
/* Host params -> model tensors and batch-norm refold, nothing else: the model's tensors
 * made current where the engine already runs with these weights (a GPU's). */
void nf_trainnet_host_copy (NfTrainNet *t);
/* nf_trainnet_host_copy, then the engine refreshed (no device transfer): the CPU table's
 * net_weights_updated. */
gboolean nf_trainnet_host_sync (NfTrainNet *t, GError **error);
/* The CPU table's net_backward: zeroes the host gradients, runs the engine's backward
 * from host dy with the parameter gradients in host memory, applies the chain rule. */
gboolean nf_trainnet_host_backward (NfTrainNet *t, const float *dy, GError **error);
