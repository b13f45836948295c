/* nf-trainer-private.h — what nf-trainer.c (the session, the host step) and the training
 * devices (nf-train-device-cpu.c, nf-trainer-gpu.c) share: the trainer object, the
 * replicas of data parallelism and the step's parts.
 * What it does not: anything callers see (nf-trainer.h is the API), a device's own
 * state (NfTrainerDeviceState, defined by the device that has one).
 */
#pragma once

#include "nf-backend.h"
#include "nf-loader.h"
#include "nf-model.h"
#include "nf-perceptual-styles.h"
#include "nf-train-device.h"
#include "nf-trainer.h"
#include "nf-trainnet.h"
#include "nf-vgg.h"

typedef struct {
  char *path;
  int w, h;                     /* style: the input; sr: the HR crop */
  float *rgb;                   // (1, 3, h, w) 0..255: style input / SR HR crop
  float *lr;                    // sr: (1, 3, h/s, w/s) degraded
} PreviewImage;

/* A device's own per-trainer state (buffers, loss scaling, ranks); NULL on the CPU. */
typedef struct NfTrainerDeviceState NfTrainerDeviceState;

struct NfTrainer {
  NfRecipe *r;
  gboolean style;
  NfBackend *be;
  const NfTrainDevice *device;  /* the table for be (nf-train-device.h) */
  NfTrainerDeviceState *dstate;
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
  guint64 skipped_steps;        /* cuda-fp16 steps skipped for non-finite gradients */
  int rank;                     /* data parallelism (--gpus): 0, or the replica's rank */
  /* several styles in one network (nf-trainer-styles.c); n_styles 0: one style */
  int n_styles;
  int cur_style;                /* the style the losses and the model are set to */
  NfStyleTargets **loss_targets, **eval_targets;        /* (n_styles) */
  double *style_weight;         /* (n_styles) the training loss's style weight per style */
  double *still_weight;         /* (n_styles) the still part's weight per style */
};


/* The host path of the device table's batch_losses (nf-trainer.c): forward, losses and
 * (grad) backward through the host arrays; pinned is not used. */
gboolean nf_trainer_host_batch_losses (NfTrainer *t, const NfBatch *b, gboolean pinned,
    gboolean grad, NfTrainLosses *out, GError **error);
/* The device's batch_losses, then its read_losses (the values final in *out). */
gboolean nf_trainer_batch_losses (NfTrainer *t, const NfBatch *b, gboolean pinned,
    gboolean grad, NfTrainLosses *out, GError **error);
/* The device's optimiser_step, then (when it stepped) the new weights to the engine. */
gboolean nf_trainer_update (NfTrainer *t, gboolean *stepped, GError **error);

/* Replica `rank` of t0 on backend be (taken, also on failure): the network with t0's
 * state, the loss network, a loader over t0's data set whose seed is t0's +
 * rank * NF_RANK_SEED_STRIDE, then the device's trainer_setup. */
#define NF_RANK_SEED_STRIDE 1000003
NfTrainer *nf_trainer_replica_new (NfTrainer *t0, int rank, NfBackend *be, GError **error);

/* A painting or preview image scaled so that its long side is long_side, centre-cropped
 * to a multiple (nf-trainer.c): (3, *h, *w) 0..255, nf_free. */
float *nf_trainer_load_fit (const char *path, int long_side, int multiple, int *w, int *h,
    GError **error);

/* Several styles (nf-trainer-styles.c). Setup after the losses: every painting's targets,
 * the model's style names, style 0 selected; nothing for a network of one style. */
gboolean nf_trainer_styles_setup (NfTrainer *t, GError **error);
/* The style of batch `batch_index` into the losses and the model (nothing for one style). */
gboolean nf_trainer_styles_select (NfTrainer *t, guint64 batch_index, GError **error);
void nf_trainer_styles_free (NfTrainer *t);

/* 0..255 -> the model's input range. */
static inline void
nf_trainer_to_input (const NfModel *m, const float *rgb, float *x, size_t n)
{
  float a = (m->in_hi - m->in_lo) / 255.0f, b = m->in_lo;
  for (size_t i = 0; i < n; i++)
    x[i] = rgb[i] * a + b;
}

/* The model's output range -> 0..255 (not clamped). */
static inline void
nf_trainer_from_output (const NfModel *m, const float *y, float *rgb, size_t n)
{
  float a = 255.0f / (m->out_hi - m->out_lo), b = m->out_lo;
  for (size_t i = 0; i < n; i++)
    rgb[i] = (y[i] - b) * a;
}

/* --init (nf-trainer-init.c): m's tensors from the weight file at path (same
 * architecture; see there), then m rebound. */
gboolean nf_trainer_init_from_file (NfModel *m, const char *path, GError **error);
