/* nf-trainnet.h — a network being trained: its parameters in one flat buffer (with
 * Adam's moments), a training engine on a host-memory backend, forward and backward on
 * batches, and writing updated parameters back into the model the engines run.
 *
 * Parameters: every conv/transposed-conv weight and bias, instance-norm and batch-norm
 * weight (gamma) and bias (beta), as named views "conv1.weight", ... of NfParams (the
 * names the model file uses). Batch-norm running_mean/running_var are not parameters.
 *
 * Batch norm (sr-johnson): the engine runs batch_norm folded into the convolution
 * before it, and this is also what is trained: BN is a per-channel affine map with
 * FROZEN statistics, y = gamma (conv(x) - mean) / sqrt(var + eps) + beta. The gradients
 * the engine gives for the folded weight W' = W s and bias b' = (b - mean) s + beta
 * (s = gamma / sqrt(var + eps)) are taken back by the chain rule:
 *   dW = dW' s,  db = db' s,  dbeta = db',
 *   dgamma = (sum over the channel's weights of dW' W + db' (b - mean)) / sqrt(var + eps).
 * The statistics are set once, before the first step, either from data
 * (nf_trainnet_init_bn_stats: per-channel mean and variance of each conv's output over
 * one batch, layer by layer, so the network starts normalised as with batch statistics)
 * or left at mean 0, var 1. So the network trained is exactly the network that runs in
 * the element (no train/inference mismatch of batch statistics), at the price of no
 * renormalisation during training.
 *
 * Where the parameters live depends on the training device of the backend
 * (nf-train-device.h). On the CPU they are the host NfParams. On a CUDA backend ("cuda",
 * "cuda-fp16"; nf-trainnet-gpu.c, its device API in nf-train-device-cuda.h) the flat
 * buffer is mirrored on the device (params | grads | m | v, same offsets): the engine's
 * parameter gradients are accumulated into the device grads, Adam runs there, and
 * nf_trainnet_weights_updated brings the new weights to the engine on the device: the
 * batch-norm folds are refolded by a kernel and the backend refreshes its prepared
 * weight copies from the device params (NfBackendIface.weights_on_device), with no host
 * transfer and no re-prepare. The host NfParams and the model's tensors then lag behind
 * until nf_trainnet_host_weights downloads them (previews and the weight file call it;
 * nf_trainnet_download_moments, for checkpoints, and nf_trainnet_copy_state bring them
 * too). Batch norm on the GPU: the folded-weight gradients dW', db' go to device scratch
 * and the chain rule above runs on the device into the device grads. The host API
 * (nf_trainnet_forward/backward with host arrays) also works on a CUDA backend (it then
 * downloads the gradients into the host NfParams), for tests and the batch-norm
 * statistics.
 *
 * What it does not: losses (the trainers), optimiser schedules, data.
 */
#pragma once

#include <glib.h>

#include "nf-backend.h"
#include "nf-model.h"
#include "nf-optim.h"

G_BEGIN_DECLS

typedef struct NfTrainNet NfTrainNet;

/* The model (not owned) must outlive the net. Its current tensors become the initial
 * parameters. */
NfTrainNet *nf_trainnet_new (NfModel *model, NfBackend *be, GError **error);
void nf_trainnet_free (NfTrainNet *t);

NfParams *nf_trainnet_params (NfTrainNet *t);
NfModel *nf_trainnet_model (NfTrainNet *t);
gboolean nf_trainnet_has_batch_norm (const NfTrainNet *t);

/* x (N, 3, H, W) in the model's input range -> y (N, 3, sH, sW) in its output range
 * (y may be NULL: output left on the device). Plans on the first call / a new shape
 * (from the model's tensors: on a GPU whose host weights lag, nf_trainnet_host_weights
 * first).
 * A clamp at the end of the graph is not applied here: y is its input, and the loss
 * gradient is seeded there (a clamp's gradient is zero outside its range, which would
 * freeze pixels that stray out for good; the loss pulls them back instead). */
gboolean nf_trainnet_forward (NfTrainNet *t, NfShape s, const float *x, float *y,
    GError **error);
NfShape nf_trainnet_output_shape (NfTrainNet *t);

/* After nf_trainnet_forward: zeroes the parameter gradients, then sets them to
 * dL/dparams for dy = dL/dy (output shape). */
gboolean nf_trainnet_backward (NfTrainNet *t, const float *dy, GError **error);

/* The host parameters changed (an optimiser step on the host, a checkpoint load):
 * copies them into the model's tensors, refolds batch norm in place and refreshes the
 * training engine; on a CUDA backend also uploads params, m and v (the host buffer is
 * the truth here). Other engines on the same model need nf_engine_weights_changed
 * afterwards. */
gboolean nf_trainnet_sync (NfTrainNet *t, GError **error);
/* An optimiser step changed the parameters where the device keeps them (the host
 * NfParams on the CPU, the device mirror on a GPU): the training engine runs with the
 * new weights. On the CPU the model's tensors hold them; on a GPU they do after
 * nf_trainnet_host_weights. */
gboolean nf_trainnet_weights_updated (NfTrainNet *t, GError **error);
/* The host NfParams' parameters and the model's tensors (batch norm refolded) made
 * current: downloaded when a GPU keeps newer ones, nothing to do otherwise. Call before
 * reading them on the host or building another engine on the model. (Adam's moments:
 * nf_trainnet_download_moments.) */
gboolean nf_trainnet_host_weights (NfTrainNet *t, GError **error);

/* Data-dependent batch-norm statistics from one batch x (see above). No-op without BN. */
gboolean nf_trainnet_init_bn_stats (NfTrainNet *t, NfShape s, const float *x,
    GError **error);
/* Sets every BN to mean 0, var 1 (what "unit" statistics means). */
void nf_trainnet_unit_bn_stats (NfTrainNet *t);

/* Adam's moments (m, v) into the host NfParams (checkpoints): downloaded from a GPU,
 * nothing to do on the CPU. */
gboolean nf_trainnet_download_moments (NfTrainNet *t, GError **error);
/* dst (a replica of the same architecture, e.g. on another GPU) takes src's parameters,
 * Adam moments and batch-norm statistics (src's device state is downloaded first), then
 * nf_trainnet_sync. */
gboolean nf_trainnet_copy_state (NfTrainNet *dst, NfTrainNet *src, GError **error);

G_END_DECLS
