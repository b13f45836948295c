/* nf-cuda-train.h — the training arithmetic on the GPU: losses and their gradients,
 * the loss network's preprocessing, Adam over the flat parameter buffer, mixed-precision
 * helpers and the multi-GPU gradient all-reduce. The GPU twin of nf-losses.h and
 * nf_adam_step (nf-optim.h), checked against them in tests/gpu/test-gpu-train-ops.c.
 *
 * Conventions.
 *   - be is a CUDA backend (nf-cuda.h); every call queues its work on the backend's
 *     stream, in order with the engine's ops, and returns errors as GError (never aborts).
 *   - Pointers are DEVICE memory of fp32 in NCHW order (the "cuda" backend's activation
 *     layout, or scratch from nf_cuda_device_alloc), unless a comment says otherwise.
 *   - Losses return their UNWEIGHTED value in *loss (host double; the call synchronises
 *     the stream to read it, unless ct defers its values: see NfCudaValues below; loss
 *     may be NULL to skip the value) and, when grad is not NULL, ACCUMULATE
 *     weight * dL/d(input) into grad, exactly as nf-losses.h does.
 *     Reductions run in fp32 per block and double across blocks, so values match the
 *     host functions to ~1e-6 relative.
 *   - The definitions of every loss are the ones in nf-losses.h (MSE means over all
 *     elements; Gram G_n = F_n F_n^T / (C*H*W); Gram loss = mean over N*C*C of
 *     (G_n - T)^2; TV = sum of squared neighbour differences / (N*C*H*W)).
 *
 * What it does not: run networks (nf-engine on the CUDA backend), choose weights or
 * schedules (the trainers), move batches to the GPU (the loader and nf-cuda.h copies).
 */
#pragma once

#include <glib.h>
#include <stddef.h>

#include "nf-backend.h"
#include "nf-cuda-bn-fold.h"
#include "nf-tensor.h"

G_BEGIN_DECLS

/* Per-backend state: the cuBLAS handle bound to the backend's stream, reduction
 * scratch. One per backend (per GPU rank). */
typedef struct NfCudaTrain NfCudaTrain;

NfCudaTrain *nf_cuda_train_new (NfBackend *be, GError **error);
void nf_cuda_train_free (NfCudaTrain *ct);
NfBackend *nf_cuda_train_backend (NfCudaTrain *ct);

/* ---- loss values read once per step ---------------------------------------------------- */

/* Loss values left on the device and read together: one stream synchronisation for all
 * the losses of a training step instead of one per loss. While an NfCudaTrain defers
 * into v (nf_cuda_train_defer), each of its losses given a loss pointer queues its sum
 * (the second reduction stage) into the next device slot of v and remembers the pointer,
 * without waiting; nf_cuda_values_read copies the queued slots into page-locked memory,
 * synchronises the stream once and writes into each pointer the double an immediate
 * read would have given (the same kernels, the same scaling). Until then the pointers
 * must stay valid, and they are not written. Several NfCudaTrain of one backend may
 * defer into the same v (a trainer's losses and its perceptual losses'). At most
 * NF_CUDA_VALUES_MAX values between two reads: one more is an error. */
#define NF_CUDA_VALUES_MAX 64
typedef struct NfCudaValues NfCudaValues;

NfCudaValues *nf_cuda_values_new (NfBackend *be, GError **error);
void nf_cuda_values_free (NfCudaValues *v);
/* ct's losses queue their values into v from now on; NULL: each loss reads its value at
 * once again. v must be of ct's backend (an error otherwise). */
gboolean nf_cuda_train_defer (NfCudaTrain *ct, NfCudaValues *v, GError **error);
/* Values queued since the last read. */
int nf_cuda_values_pending (const NfCudaValues *v);
/* Reads every queued value into its pointer (nothing queued: TRUE, no synchronisation).
 * The queue is empty afterwards, also on failure (then nothing was written). */
gboolean nf_cuda_values_read (NfCudaValues *v, GError **error);
/* Forgets the queued values unread (a step that failed half-way). */
void nf_cuda_values_drop (NfCudaValues *v);

/* ---- losses ----------------------------------------------------------------------- */

/* Feature / pixel MSE: f, p, grad hold n floats. */
gboolean nf_cuda_loss_mse (NfCudaTrain *ct, const float *f, const float *p, size_t n,
    double weight, float *grad, double *loss, GError **error);

/* f (N, C, H, W) -> g (N, C, C), through cuBLAS (strided batched sgemm, FP32 compute,
 * no TF32). */
gboolean nf_cuda_gram (NfCudaTrain *ct, const float *f, NfShape s, float *g,
    GError **error);

/* Gram loss of f (N, C, H, W) against one target (C, C) (device). grad like f. */
gboolean nf_cuda_loss_gram (NfCudaTrain *ct, const float *f, NfShape s,
    const float *target, double weight, float *grad, double *loss, GError **error);

/* Total variation of x (N, C, H, W); grad like x. */
gboolean nf_cuda_loss_tv (NfCudaTrain *ct, const float *x, NfShape s, double weight,
    float *grad, double *loss, GError **error);

/* ---- element-wise helpers ------------------------------------------------------------ */

/* The loss network's preprocessing (nf-vgg.h): x[c] = rgb[perm[c]] * scale[c] + shift[c]
 * for rgb, x of shape (n, 3, H, W), hw = H * W. */
gboolean nf_cuda_vgg_preprocess (NfCudaTrain *ct, const int perm[3], const float scale[3],
    const float shift[3], const float *rgb, float *x, int n, size_t hw, GError **error);
/* drgb[perm[c]] = dx[c] * scale[c] (OVERWRITES drgb). */
gboolean nf_cuda_vgg_preprocess_backward (NfCudaTrain *ct, const int perm[3],
    const float scale[3], const float *dx, float *drgb, int n, size_t hw, GError **error);

/* y[i] = a * x[i] + b for n floats (x == y allowed): range maps between a model's
 * input/output range and 0..255, gradient scaling. */
gboolean nf_cuda_affine (NfCudaTrain *ct, const float *x, float *y, size_t n, float a,
    float b, GError **error);

/* *all_finite = every one of n floats is finite (synchronises). */
gboolean nf_cuda_all_finite (NfCudaTrain *ct, const float *x, size_t n,
    gboolean *all_finite, GError **error);

/* ---- optimiser ------------------------------------------------------------------------- */

/* One Adam step (nf_adam_step's arithmetic, bias-corrected, decoupled weight decay when
 * weight_decay > 0) over n parameters in ONE kernel: param, m, v updated in place from
 * grad * grad_scale (grad_scale = 1 / loss scale for mixed precision, 1 otherwise).
 * t is the step number after this step (1 for the first). */
gboolean nf_cuda_adam_step (NfCudaTrain *ct, float *param, const float *grad, float *m,
    float *v, size_t n, float lr, float beta1, float beta2, float eps,
    float weight_decay, int t, float grad_scale, GError **error);

/* ---- batch norm folded into a convolution (nf-trainnet.h) ---------------------------------- */

/* The arithmetic of nf-trainnet.c for one fold, on the device (nf-cuda-bn-fold.h, whose
 * NfBnFoldGeom g describes the convolution). Every pointer is device fp32: w the
 * convolution's weight (numel of g), b its bias (cout; NULL: none), gamma, beta, mean,
 * var the batch norm's (cout). */

/* fw = W' = W s, fb = b' = (b - mean) s + beta (s = gamma / sqrt (var + eps)):
 * bit-identical to nf-trainnet.c's refold. */
gboolean nf_cuda_bn_refold (NfCudaTrain *ct, const NfBnFoldGeom *g, const float *w,
    const float *b, const float *gamma, const float *beta, const float *mean,
    const float *var, float *fw, float *fb, GError **error);
/* The chain rule of nf_trainnet_bn_chain_rule from gw = dL/dW' (numel of g) and gb =
 * dL/db' (cout), ACCUMULATED into dw, db (NULL when b is), dgamma, dbeta; one block per
 * output channel, the channel's sum in double in a fixed order (deterministic). */
gboolean nf_cuda_bn_chain_rule (NfCudaTrain *ct, const NfBnFoldGeom *g, const float *gw,
    const float *gb, const float *w, const float *b, const float *gamma, const float *mean,
    const float *var, float *dw, float *db, float *dgamma, float *dbeta, GError **error);

/* ---- mixed precision --------------------------------------------------------------------- */

/* Copies between the "cuda" layout (fp32 NCHW) and the "cuda-fp16" one (half NHWC) of
 * shape s, multiplying by scale on the way (loss scaling). dst/src are device memory. */
gboolean nf_cuda_f32_nchw_to_f16_nhwc (NfCudaTrain *ct, const float *src, void *dst,
    NfShape s, float scale, GError **error);
gboolean nf_cuda_f16_nhwc_to_f32_nchw (NfCudaTrain *ct, const void *src, float *dst,
    NfShape s, float scale, GError **error);

/* ---- several GPUs in one process (NCCL) -------------------------------------------------- */

/* One communicator per GPU of a data-parallel group, created together for devices
 * 0..n-1 (ncclCommInitAll). Build without NCCL: n > 1 is an error saying so. */
typedef struct NfCudaGroup NfCudaGroup;

NfCudaGroup *nf_cuda_group_new (int n_devices, GError **error);
void nf_cuda_group_free (NfCudaGroup *g);
int nf_cuda_group_size (const NfCudaGroup *g);
/* In-place sum of n floats across the ranks, called by every rank's thread with its
 * own backend (on the backend's stream); then multiplied by 1/size (mean gradient). */
gboolean nf_cuda_group_allreduce_mean (NfCudaGroup *g, int rank, NfCudaTrain *ct,
    float *buf, size_t n, GError **error);

G_END_DECLS
