/* nf-trainnet-private.h — what nf-trainnet.c (host) and nf-trainnet-gpu.c (CUDA
 * backends) share: the NfTrainNet object, its batch-norm folds and the chain rule.
 * What it does not: anything callers see (nf-trainnet.h is the API).
 */
#pragma once

#include "nf-engine.h"
#include "nf-train-gpu.h"
#include "nf-trainnet.h"

typedef struct {
  const NfOp *bn;               /* in model->source_graph */
  const NfOp *conv;             /* the convolution it is folded into */
  char *w_name, *b_name;        /* "conv.weight", "conv.bias" (the run graph's names) */
  NfModelTensor *fw, *fb;       /* folded weight/bias in model->folded */
  float *gw, *gb;               /* dL/dW', dL/db' from the engine (host scratch) */
  float *dev_gw, *dev_gb;       /* the same on the device (CUDA backends) */
  size_t nw;                    /* elements of the conv weight */
} BnFold;

struct NfTrainNet {
  NfModel *model;
  NfBackend *be;
  NfEngine *engine;
  NfParams *params;
  GArray *bns;                  /* BnFold */
  NfShape in_shape;
  int out_value;                /* the value the loss reads: the output, or the input of a
                                 * final clamp */
  /* CUDA backends */
  gboolean gpu;
  NfGpuParams *dev;             /* params | grads | m | v on the device */
  float *dev_scratch;           /* fp32 staging for cuda-fp16 layout changes */
  size_t dev_scratch_n;
};

/* Spreads dW', db' (b->gw, b->gb) of every folded conv over W, b, gamma, beta, ADDING
 * into the host gradient views. */
void nf_trainnet_bn_chain_rule (NfTrainNet *t);
/* Host params -> model tensors, refold, engine refresh (no device transfer). */
gboolean nf_trainnet_host_sync (NfTrainNet *t, GError **error);

/* nf-trainnet-gpu.c: device state after the host side is built; its release. */
gboolean nf_trainnet_gpu_init (NfTrainNet *t, GError **error);
void nf_trainnet_gpu_free (NfTrainNet *t);
/* Zeroes device grads (and BN scratch), runs the engine's backward with the output
 * gradient already written into the engine, applies the BN chain rule. */
gboolean nf_trainnet_gpu_backward (NfTrainNet *t, GError **error);
/* Zeroes the engine's gradients (before an output gradient is written). */
gboolean nf_trainnet_gpu_zero (NfTrainNet *t, GError **error);
