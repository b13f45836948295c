/* nf-trainer.h — one training run of a style or super-resolution network: the model,
 * its data, its losses, the optimiser, checkpoints, previews and the final weight file.
 *
 * Per step (nf_trainer_step): the next batch from the loader thread; the network's
 * forward on it (photo crops for style, degraded LR crops for SR, mapped into the
 * model's input range); the loss on the output mapped back to 0..255:
 *   style  content_weight * MSE(relu2_2(out), relu2_2(photo))
 *          + style_weight * sum_l w_l MSE(Gram_l(out), Gram_l(painting))
 *          + tv_strength * (sum of squared neighbour differences of out)
 *   sr     pixel_weight * MSE(out, HR) + content_weight * MSE(relu2_2(out), relu2_2(HR))
 *          + tv_strength * (sum of squared neighbour differences of out)
 * (MSE = mean over all elements of the batch; Gram as in nf-losses.h; VGG inputs with
 * the loss network's own preprocessing), its gradient back through the loss network and
 * the network, one Adam step at the scheduled learning rate. A non-finite loss stops
 * the run with an error before any parameter changes.
 *
 * Everything a run depends on is in the recipe (nf-recipe.h) and the checkpoint
 * (nf-checkpoint.h): the same recipe and seed give the same parameters, whether the run
 * went straight through or was stopped and resumed (same machine, same thread count,
 * deterministic backend kernels).
 *
 * Previews use fixed images (the recipe's --preview files, else the first validation
 * files of the data folders): style rows "input | output", SR rows "bicubic | output |
 * HR" of a centre crop, with a one-line summary (style: content and style loss of the
 * outputs and the unstyled baseline; SR: PSNR-Y of output and bicubic).
 *
 * On a CUDA backend (--device cuda, or auto with a usable GPU; nf-trainer-gpu.c) the
 * step runs on the device: the batch is staged in pinned memory and uploaded, mapped
 * into the input range, forward, mapped to 0..255, perceptual + pixel + TV losses and
 * their gradient on the device, backward, Adam over the device copy of the flat
 * parameter buffer, then the new weights to the engine (nf-trainnet.h). Losses and
 * checkpoints are the same as on the CPU (Adam's moments are downloaded to save them
 * and uploaded on resume). "cuda-fp16" trains with half activations, fp32 master
 * weights and dynamic loss scaling: the loss gradients are multiplied by S (2^15 at
 * the start), a step whose gradient is not finite is skipped and halves S, 2000 finite
 * steps in a row double it, Adam reads grad / S. S is not in the checkpoint: a resumed
 * fp16 run starts again at 2^15.
 * --gpus N (recipe gpus): N data-parallel ranks on GPUs 0..N-1, each with its own
 * backend, network replica, loss network and batch stream (seed + rank * 1000003), the
 * gradient averaged by an NCCL all-reduce, the same Adam step on every rank (details in
 * nf-trainer-gpu.c); one GPU is a group of one on the same path. A run of N GPUs sees
 * N x batch images per step; the losses are the mean over the ranks.
 *
 * What it does not: parse options, print progress, write the CSV log or catch signals
 * (the nf-train tool does).
 */
#pragma once

#include <glib.h>

#include "nf-dataset.h"
#include "nf-optim.h"
#include "nf-perceptual.h"
#include "nf-recipe.h"

G_BEGIN_DECLS

typedef struct {
  double total;                 /* the weighted loss that was minimised */
  double content, style, tv, pixel;     /* unweighted: MSEs, sum_l w_l Gram MSE, mean TV */
  double stability;             /* unweighted mean (f(T x + n) - T f(x))^2 (nf-stability.h) */
  double stability_still;       /* the same over the still crops: mean (f(x + n) - f(x))^2 */
  int n_style;
  double style_layer[NF_PERCEPTUAL_MAX_LAYERS];         /* unweighted Gram MSE per layer */
} NfTrainLosses;

typedef struct NfTrainer NfTrainer;

/* A finalized recipe (copied). resume_from: a checkpoint to continue, or NULL for a fresh
 * run (which refuses a run folder that already holds a checkpoint). */
NfTrainer *nf_trainer_new (const NfRecipe *recipe, const char *resume_from, GError **error);
void nf_trainer_free (NfTrainer *t);

/* The recipe stored in a checkpoint, with its run settings (not finalized). */
NfRecipe *nf_trainer_recipe_from_checkpoint (const char *path, GError **error);

gboolean nf_trainer_step (NfTrainer *t, NfTrainLosses *losses, GError **error);
/* The losses of training batch `index` under the current weights, without a step (for
 * tests and checks; a network with pending batch-norm initialisation runs as it is). */
gboolean nf_trainer_loss_on_batch (NfTrainer *t, guint64 index, NfTrainLosses *losses,
    GError **error);

const NfRecipe *nf_trainer_recipe (const NfTrainer *t);
/* After resuming with a raised iters: the learning rate ramps up from where the run
 * stopped (nf_recipe_mark_extension); kept in the recipe of later checkpoints. */
void nf_trainer_mark_extension (NfTrainer *t, int old_iters);
guint64 nf_trainer_steps_done (const NfTrainer *t);
double nf_trainer_last_lr (const NfTrainer *t);
double nf_trainer_elapsed (const NfTrainer *t);         /* training seconds, all sessions */
const char *nf_trainer_backend_name (const NfTrainer *t);
NfDataset *nf_trainer_dataset (NfTrainer *t);
/* The host parameters (on a GPU current after a checkpoint, a preview or the export). */
NfParams *nf_trainer_params (NfTrainer *t);
/* Style layer names of the loss, in order (n_style of them); NULL-terminated. */
const char *const *nf_trainer_style_layer_names (const NfTrainer *t);
/* Seconds spent waiting for data so far (the loader did not keep up). */
double nf_trainer_data_wait (const NfTrainer *t);

/* RUN/checkpoint.safetensors */
const char *nf_trainer_checkpoint_path (const NfTrainer *t);
gboolean nf_trainer_save_checkpoint (NfTrainer *t, GError **error);
/* Writes the preview PNG; *summary (may be NULL) gets the one-line metrics. */
gboolean nf_trainer_preview (NfTrainer *t, const char *png_path, char **summary,
    GError **error);
/* The weight file for the elements, with the recipe and results in its metadata. */
gboolean nf_trainer_export (NfTrainer *t, const char *path, GError **error);

/* "auto" -> "cpu" when the fast backend has backward passes, else "cpu-ref". */
const char *nf_trainer_pick_backend (const char *requested);

/* The backend a run uses, from --device (auto|cpu|cuda) and --backend
 * (auto|cpu|cpu-ref|cuda|cuda-fp16) (nf-train-device.c):
 *   backend named        that backend (an error when it contradicts --device);
 *   device cpu           nf_trainer_pick_backend ("auto");
 *   device cuda          "cuda"; an error saying why when no GPU is usable or the
 *                        CUDA backend has no backward passes;
 *   device auto          "cuda" when a GPU is usable and the CUDA backend has backward
 *                        passes, else the CPU, with *note saying why (g_free).
 * *note (may be NULL) gets a line for the first progress line, or NULL. */
const char *nf_trainer_choose_backend (const char *device, const char *backend, char **note,
    GError **error);
/* The note of nf_trainer_choose_backend for this run (NULL: nothing to say). */
const char *nf_trainer_device_note (const NfTrainer *t);
/* cuda-fp16: steps whose gradient was not finite and that loss scaling skipped. */
guint64 nf_trainer_skipped_steps (const NfTrainer *t);

G_END_DECLS
