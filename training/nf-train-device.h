/* nf-train-device.h — the training device: one table of functions per kind of device
 * the trainers run on, as the inference backends are one table per backend
 * (nf-backend.h). The generic training files (nf-trainer.c, nf-trainnet.c,
 * nf-perceptual.c, nf-pixopt.c) do the host-side work that holds for every backend and
 * call through the table for what depends on where the parameters, activations and
 * loss values live; they never include a device's headers.
 *
 * Tables:
 *   "cpu"   nf-train-device-cpu.c: backends cpu and cpu-ref. Everything is in host
 *           memory; most entries are NULL (nothing to do), the others are the host
 *           paths (host backward, host losses, Adam on the host NfParams).
 *   "cuda"  nf-train-device-cuda.c, built only with the GPU training kernels
 *           (NF_HAVE_CUDA_TRAIN): backends cuda and cuda-fp16; the entries live in the
 *           *-gpu.c files (nf-train-device-cuda.h).
 * nf_train_device_for picks the table from the backend's name; a backend no table
 * serves (the CUDA backends of a build without training/cuda) cannot train.
 *
 * Entries marked "optional" may be NULL: nothing to do on that device. The step of a
 * run, as the generic code drives it (nf-trainer.c):
 *   batch_losses (grad) -> read_losses -> optimiser_step -> net_weights_updated
 * unless the device has its own `step` (CUDA: several ranks, an all-reduce between the
 * backward and the optimiser step), which calls the same entries per rank.
 * On the GPU (issue 18) batch_losses only queues work (forward, losses, backward) and
 * read_losses reads every loss value with the step's one stream synchronisation;
 * net_weights_updated refreshes the engine's weights from the device params on the
 * device, leaving the host's copy behind until net_to_host (previews and the weight file
 * call it through nf_trainnet_host_weights; a checkpoint's net_pull does it too).
 *
 * What it does not: the backends' ops (nf-backend.h), the training arithmetic on the
 * GPU (training/cuda/nf-cuda-train.h), the host paths that work on any backend through
 * upload/download (previews, nf_perceptual_eval, nf_trainnet_forward).
 */
#pragma once

#include <glib.h>

#include "nf-backend.h"
#include "nf-dataset.h"
#include "nf-loader.h"
#include "nf-perceptual.h"
#include "nf-pixopt.h"
#include "nf-trainer.h"
#include "nf-trainnet.h"

G_BEGIN_DECLS

typedef struct NfTrainDevice NfTrainDevice;

struct NfTrainDevice {
  const char *name;                     /* "cpu", "cuda" */
  const char *backends[4];              /* the backends it trains on, NULL-terminated */

  /* Optional. NULL when backend `name` (one of `backends`) can train on this machine,
   * else why not (g_free): no usable device, no backward passes. */
  char *(*cannot_train) (const char *backend);

  /* ---- the network being trained (NfTrainNet, nf-trainnet-private.h) ---------------- */
  /* Optional. Device state once the host side (params, batch-norm folds, engine) is
   * built; its release (also after a failed init). */
  gboolean (*net_init) (NfTrainNet *t, GError **error);
  void (*net_free) (NfTrainNet *t);
  /* After a forward: host dy (output shape) -> dL/dparams in the host NfParams grads. */
  gboolean (*net_backward) (NfTrainNet *t, const float *dy, GError **error);
  /* Optional. The host params and Adam moments changed (nf_trainnet_sync): copy them to
   * where the device keeps its own. */
  gboolean (*net_push) (NfTrainNet *t, GError **error);
  /* Optional. The device's params and/or moments into the host NfParams (checkpoints,
   * replicas); where the host's weights lag behind (net_to_host), they are brought up to
   * date first whatever is asked, so a checkpoint gets the current ones. */
  gboolean (*net_pull) (NfTrainNet *t, gboolean params, gboolean moments, GError **error);
  /* After an optimiser step changed the parameters where the device keeps them: the
   * training engine runs with the new weights (CPU: the model's tensors, batch-norm
   * refold; GPU: on the device, the host's copy left behind). */
  gboolean (*net_weights_updated) (NfTrainNet *t, GError **error);
  /* Optional. The host NfParams' parameters and the model's tensors (batch norm refolded)
   * brought up to date where the device keeps newer ones (nf_trainnet_host_weights);
   * NULL: the host's are always current. */
  gboolean (*net_to_host) (NfTrainNet *t, GError **error);

  /* ---- perceptual losses (NfPerceptual, nf-perceptual-private.h) -------------------- */
  /* Optional: device state; its release; the host Gram target k of p just changed
   * (nf_perceptual_set_style). */
  gboolean (*perceptual_init) (NfPerceptual *p, GError **error);
  void (*perceptual_free) (NfPerceptual *p);
  gboolean (*perceptual_set_gram) (NfPerceptual *p, int k, GError **error);

  /* ---- the training session (NfTrainer, nf-trainer-private.h) ----------------------- */
  /* Once the network, losses, loader and host buffers exist: device buffers, ranks of
   * --gpus (rank 0 only), or an error for what the device cannot do. */
  gboolean (*trainer_setup) (NfTrainer *t, GError **error);
  void (*trainer_free) (NfTrainer *t);           /* optional */
  /* Optional: memory for the loader's batches (user: the backend); NULL: plain host
   * memory. */
  NfLoaderAllocFn batch_alloc;
  NfLoaderFreeFn batch_free;
  /* Forward and losses of batch b (0..255 pixels); with grad also dL/dparams (the
   * backward, on the device the gradient stays there). pinned: b is a loader batch in
   * batch_alloc memory, held until the step is over. A non-finite loss is an error. */
  gboolean (*batch_losses) (NfTrainer *t, const NfBatch *b, gboolean pinned,
      gboolean grad, NfTrainLosses *L, GError **error);
  /* Optional: the loss values of the last batch_losses, when that left them on the
   * device. NULL: batch_losses returned them final. */
  gboolean (*read_losses) (NfTrainer *t, NfTrainLosses *L, GError **error);
  /* One Adam step (t->adam, learning rate set) from the gradient of the last
   * batch_losses. *stepped FALSE: the step was skipped (cuda-fp16 overflow). */
  gboolean (*optimiser_step) (NfTrainer *t, gboolean *stepped, GError **error);
  /* Optional: the whole step (next batches, losses, optimiser) where the device runs it
   * its own way; NULL: the generic step of nf-trainer.c. */
  gboolean (*step) (NfTrainer *t, NfTrainLosses *L, GError **error);

  /* ---- pixel optimisation (NfPixopt, nf-pixopt-private.h) --------------------------- */
  /* Optional: a device path (pixopt_init NULL: the host path, through upload/download,
   * which works on any backend). init computes the targets and leaves the engine planned
   * for the image; eval as nf_pixopt_eval. */
  gboolean (*pixopt_init) (NfPixopt *p, GError **error);
  void (*pixopt_free) (NfPixopt *p);
  gboolean (*pixopt_eval) (NfPixopt *p, const float *rgb, float *grad,
      NfPixoptLosses *losses, GError **error);
};

extern const NfTrainDevice nf_train_device_cpu;
#ifdef NF_HAVE_CUDA_TRAIN
extern const NfTrainDevice nf_train_device_cuda;
#endif

/* The table that trains on backend `name`, or NULL. */
const NfTrainDevice *nf_train_device_for_name (const char *name);
/* The table for be, or NULL with an error saying which backends train in this build. */
const NfTrainDevice *nf_train_device_for (const NfBackend *be, GError **error);

G_END_DECLS
