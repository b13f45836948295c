/* nf-trainer-private.h — what nf-trainer.c (the session, CPU step) and nf-trainer-gpu.c
 * (the step on a CUDA backend) share: the trainer object and the range maps.
 * What it does not: anything callers see (nf-trainer.h is the API).
 */
#pragma once

#include "nf-backend.h"
#include "nf-loader.h"
#include "nf-model.h"
#include "nf-trainer.h"
#include "nf-trainnet.h"
#include "nf-vgg.h"
#include "cuda/nf-cuda-train.h"

typedef struct {
  char *path;
  int w, h;                     /* style: the input; sr: the HR crop */
  float *rgb;                   // (1, 3, h, w) 0..255: style input / SR HR crop
  float *lr;                    // sr: (1, 3, h/s, w/s) degraded
} PreviewImage;

struct NfTrainer {
  NfRecipe *r;
  gboolean style;
  NfBackend *be;
  NfModel *model;
  NfTrainNet *net;
  NfAdam adam;
  NfDataset *ds;
  NfBatchSpec spec;
  NfLoader *loader;
  NfVgg *vgg;
  NfPerceptual *loss;           /* training losses */
  NfPerceptual *eval;           /* preview losses (own engine, other sizes) */
  char *style_layer_names[NF_PERCEPTUAL_MAX_LAYERS + 1];
  guint64 step;
  double last_lr;
  double elapsed_base, elapsed_run;
  gboolean bn_pending;          /* initialise batch-norm statistics on the first batch */
  char *ckpt_path;
  NfTrainLosses last;
  /* per-step buffers */
  NfShape in_shape, out_shape;
  float *x, *y, *y255, *dy;
  GArray *previews;             /* PreviewImage */
  double unstyled_style;        /* style loss of the preview inputs themselves */
  char *device_note;            /* how the device was chosen (auto), or NULL */
  /* CUDA backends (nf-trainer-gpu.c) */
  gboolean gpu;
  NfCudaTrain *ct;
  float *h_stage;               // pinned: network input (in_shape) | target (out_shape)
  float *d_in, *d_hr;           // device: input batch 0..255 (in_shape), target (out_shape)
  float *d_y255, *d_dy;         // device: output in 0..255, dL/d(output 0..255) (out_shape)
  double loss_scale;            /* cuda-fp16: dynamic loss scale (1 on fp32) */
  int good_steps;               /* finite steps since the scale last changed */
  guint64 skipped_steps;        /* cuda-fp16 steps skipped for non-finite gradients */
  /* data parallelism (--gpus): rank 0 is the trainer callers see; it owns the group and
   * the replicas ranks[1..n_ranks-1] (ranks[0] = itself) */
  int rank, n_ranks;
  NfTrainer **ranks;
  NfCudaGroup *group;
};


/* nf-trainer-gpu.c: buffers and kernels state once the network and losses exist (also
 * checks that the backend can train every op of both networks); their release. */
gboolean nf_trainer_gpu_setup (NfTrainer *t, GError **error);
void nf_trainer_gpu_free (NfTrainer *t);
/* nf-trainer.c: replica `rank` of t0 (a CUDA backend on device `rank`, the network
 * with t0's state, the loss network, a loader over t0's data set whose seed is t0's +
 * rank * NF_RANK_SEED_STRIDE). */
#define NF_RANK_SEED_STRIDE 1000003
NfTrainer *nf_trainer_replica_new (NfTrainer *t0, int rank, GError **error);
/* The ranks and their NCCL group (n = recipe gpus; 1 is a group of one). */
gboolean nf_trainer_gpu_make_ranks (NfTrainer *t, GError **error);
/* One step on every rank: batches, losses, all-reduce mean of the gradient, the same
 * optimiser step everywhere; *L: the losses averaged over the ranks. */
gboolean nf_trainer_gpu_step (NfTrainer *t, NfTrainLosses *L, GError **error);
/* batch_losses on the device (same contract as the host one in nf-trainer.c). pinned: b's
 * pixels are page-locked (a loader batch) and are uploaded straight from it. */
gboolean nf_trainer_gpu_batch_losses (NfTrainer *t, const NfBatch *b, gboolean pinned,
    gboolean grad, NfTrainLosses *out, GError **error);
/* After a gradient: the optimiser step on the device (loss scaling on cuda-fp16) and the
 * new weights to the engine. *stepped: FALSE when a cuda-fp16 step was skipped. */
gboolean nf_trainer_gpu_update (NfTrainer *t, gboolean *stepped, GError **error);
