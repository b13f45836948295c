/* nf-train-device-cuda.h — the CUDA training device (nf-train-device.h): the entries of
 * its table (nf-train-device-cuda.c) and what its files call across each other: the
 * device-pointer API of the network in training and of the perceptual losses.
 * Included only by the files built with the GPU training kernels (NF_HAVE_CUDA_TRAIN):
 * nf-*-gpu.c and nf-train-device-cuda.c; the generic files reach all of this through the
 * table.
 *
 * Device-pointer arrays are DEVICE fp32 NCHW whatever the backend's layout (cuda-fp16
 * activations are converted on the way); ct is an NfCudaTrain of the same backend, for
 * the element-wise work.
 * What it does not: the training arithmetic (cuda/nf-cuda-train.h), device memory
 * plumbing (nf-train-gpu.h).
 */
#pragma once

#include "nf-train-device.h"
#include "nf-train-gpu.h"
#include "cuda/nf-cuda-train.h"

G_BEGIN_DECLS

/* ---- the network in training (nf-trainnet-gpu.c) ----------------------------------------- */

/* Table entries (nf-train-device.h, net_*). */
gboolean nf_trainnet_gpu_init (NfTrainNet *t, GError **error);
void nf_trainnet_gpu_free (NfTrainNet *t);
gboolean nf_trainnet_gpu_backward_host (NfTrainNet *t, const float *dy, GError **error);
gboolean nf_trainnet_gpu_push (NfTrainNet *t, GError **error);
gboolean nf_trainnet_gpu_pull (NfTrainNet *t, gboolean params, gboolean moments,
    GError **error);
/* net_weights_updated: the engine runs with the device params, refreshed on the device
 * (batch-norm refold, the backend's weights_on_device; the host then lags until
 * net_to_host); with NF_GPU_TRAIN_REPREPARE=1 or a backend without weights_on_device the
 * old path: download, host copy and refold, nf_engine_weights_changed. */
gboolean nf_trainnet_gpu_weights_updated (NfTrainNet *t, GError **error);
/* net_to_host: when the device params are newer, downloads them into the host NfParams
 * and copies them into the model's tensors (batch norm refolded on the host); the engine
 * is left as it is (it runs with these weights). */
gboolean nf_trainnet_gpu_to_host (NfTrainNet *t, GError **error);

/* Where the weights of one op of the run graph (model->graph) are on the device: a
 * batch-norm fold's W', b' (fold >= 0: index in the network's folds, made from the
 * parameters by the refold), or the offsets of its weight and bias views in the flat
 * parameter buffer (w, b; b unused when nb is 0). nw, nb: elements of the op's weight
 * and bias as the backend checks them. */
typedef struct {
  int op;                       /* index in model->graph, = the engine's call index */
  int fold;                     /* -1: not a fold */
  size_t w, b;                  /* offsets (fold < 0) */
  size_t nw, nb;
} NfTrainWeightSource;
/* Every op of model->graph that holds weights, in graph order (g_free; *n of them); NULL
 * + error when one holds weights that are no parameter of matching size or of a kind the
 * device path does not know. Needs only the host side of t (any backend). */
NfTrainWeightSource *nf_trainnet_weight_sources (NfTrainNet *t, int *n, GError **error);

/* Forward of a*x + b, x DEVICE fp32 (N, 3, H, W) in 0..255 (a, b map it into the model's
 * input range). Plans on the first call / a new shape. */
gboolean nf_trainnet_forward_device (NfTrainNet *t, NfCudaTrain *ct, NfShape s,
    const float *x, float a, float b, GError **error);
/* y = a * output + b, y DEVICE fp32 of the output shape (the value the loss reads: the
 * input of a final clamp, as in nf_trainnet_forward). */
gboolean nf_trainnet_output_device (NfTrainNet *t, NfCudaTrain *ct, float *y, float a,
    float b, GError **error);
/* After nf_trainnet_forward_device: zeroes the device parameter gradients, seeds the
 * output gradient with a * dy (dy DEVICE fp32 of the output shape; a: the output
 * range map times the loss scale) and runs the backward: device grads = dL/dparams. */
gboolean nf_trainnet_backward_device (NfTrainNet *t, NfCudaTrain *ct, const float *dy,
    float a, GError **error);
/* The device gradients (params->n floats): all-reduce, finiteness check. */
float *nf_trainnet_device_grads (NfTrainNet *t);
/* One Adam step on the device (a->t is incremented as nf_adam_step does), from the
 * device grads times grad_scale. The engine sees the new weights after
 * nf_trainnet_weights_updated. */
gboolean nf_trainnet_adam_device (NfTrainNet *t, NfCudaTrain *ct, NfAdam *a,
    float grad_scale, GError **error);

/* ---- perceptual losses (nf-perceptual-gpu.c) --------------------------------------------- */

/* Table entries (perceptual_*). */
gboolean nf_perceptual_gpu_init (NfPerceptual *p, GError **error);
void nf_perceptual_gpu_free (NfPerceptual *p);
gboolean nf_perceptual_gpu_set_gram (NfPerceptual *p, int k, GError **error);

/* The device twin of nf_perceptual_eval: rgb, content_rgb and grad are DEVICE fp32
 * (N, 3, H, W) 0..255 of the backend's device; grad (may be NULL) is overwritten with
 * loss_scale * dL/drgb. Loss values are unscaled. Preprocessing, the VGG forward and
 * backward and the losses (Gram targets kept on the device) all run on the backend's
 * stream, the loss gradients written straight into the engine's gradient buffers; on
 * cuda-fp16 the loss layers are copied to fp32 for the losses and their gradients go
 * back to half multiplied by the loss scale. *losses (may be NULL) gets the values, each
 * read at once (a stream synchronisation per loss term); after nf_perceptual_defer_values
 * they are queued instead and *losses is not written: read the NfCudaValues, then
 * nf_perceptual_device_losses. */
gboolean nf_perceptual_eval_device (NfPerceptual *p, NfShape s, const float *rgb,
    const float *content_rgb, float *grad, NfPerceptualLosses *losses, GError **error);
/* From now on nf_perceptual_eval_device queues its loss values into v (a values object
 * of p's backend, nf-cuda-train.h) for the caller to read with its own; NULL: read at
 * once again. */
gboolean nf_perceptual_defer_values (NfPerceptual *p, NfCudaValues *v, GError **error);
/* The losses of the last nf_perceptual_eval_device from its values (once they were read:
 * at once, or by nf_cuda_values_read on the deferred ones), combined as
 * nf_perceptual_eval does. */
void nf_perceptual_device_losses (NfPerceptual *p, NfPerceptualLosses *losses);
/* Multiplies the gradient seeds of nf_perceptual_eval_device (mixed-precision loss
 * scaling; 1 by default). */
void nf_perceptual_set_loss_scale (NfPerceptual *p, float scale);

/* ---- the training session (nf-trainer-gpu.c) ---------------------------------------------- */

/* Table entries (cannot_train, trainer_*, batch_losses, read_losses, optimiser_step,
 * step). batch_losses queues the losses and the backward; read_losses reads the values
 * with the step's one synchronisation. */
char *nf_trainer_gpu_cannot_train (const char *backend);
gboolean nf_trainer_gpu_setup (NfTrainer *t, GError **error);
void nf_trainer_gpu_free (NfTrainer *t);
gboolean nf_trainer_gpu_batch_losses (NfTrainer *t, const NfBatch *b, gboolean pinned,
    gboolean grad, NfTrainLosses *out, GError **error);
gboolean nf_trainer_gpu_read_losses (NfTrainer *t, NfTrainLosses *out, GError **error);
gboolean nf_trainer_gpu_optimiser_step (NfTrainer *t, gboolean *stepped, GError **error);
gboolean nf_trainer_gpu_step (NfTrainer *t, NfTrainLosses *L, GError **error);

/* ---- pixel optimisation (nf-pixopt-gpu.c) -------------------------------------------------- */

/* Table entries (pixopt_*). */
gboolean nf_pixopt_gpu_init (NfPixopt *p, GError **error);
void nf_pixopt_gpu_free (NfPixopt *p);
gboolean nf_pixopt_gpu_eval (NfPixopt *p, const float *rgb, float *grad,
    NfPixoptLosses *losses, GError **error);

G_END_DECLS
