/* nf-cuda-steps.h — the steps on a network's output before it becomes pixels, on a
 * CUDA backend's stream: temporal stabilisation (nf-stabilize.h) and preserve-color
 * (nf-preserve-color.h), with the CPU path's formulas.
 *
 * What it does: keeps the stabiliser's state (the reference input, the kept output,
 * the weights) and preserve-color's result in buffers of one CUDA backend, in its
 * layout and type (fp32 NCHW or fp16 NHWC), so nf_cuda_tensor_to_frame packs them as it
 * packs the network's output. Tensors x and y are the engine's input (1, 3, ph, pw) and
 * output (1, 3, oph, opw) buffers; w x h is the frame inside x.
 * What it does not: decide when to reset (the element does), copy frames or
 * synchronise. Every function is called with the backend's CUDA context current.
 */
#pragma once

#include <glib.h>

#include "nf-backend.h"
#include "nf-stabilize.h"

G_BEGIN_DECLS

typedef struct NfCudaSteps NfCudaSteps;

NfCudaSteps *nf_cuda_steps_new (void);
/* Frees the buffers through the backend they belong to: call it before that backend
 * is freed (a new model), with its context current. The next frame starts afresh. */
void nf_cuda_steps_release (NfCudaSteps * s);
/* Releases, then frees s. */
void nf_cuda_steps_free (NfCudaSteps * s);
/* The next stabilised frame starts afresh (passed through, becomes the state). */
void nf_cuda_steps_reset (NfCudaSteps * s);

/* Stabilises y (the network output of input x; scale: its size / x's) into the kept
 * output; *out receives that buffer (shape ys) for packing. x_to_levels: x * it is in
 * levels of 0..255 up to an offset. Queued on be's stream. */
gboolean nf_cuda_steps_stabilize (NfCudaSteps * s, NfBackend * be,
    const NfStabilizeParams * p, const void *x, NfShape xs, int w, int h,
    float x_to_levels, const void *y, NfShape ys, int scale, const void **out,
    GError ** error);

/* *out = y with x's colours (nf_preserve_color_pixel over w x h pixels: x * xm + xb
 * brings x to y's units; kr, kb the luma weights), a buffer of shape ys; same-size
 * outputs only. Queued on be's stream. */
gboolean nf_cuda_steps_preserve_color (NfCudaSteps * s, NfBackend * be, const void *y,
    NfShape ys, const void *x, NfShape xs, int w, int h, float xm, float xb, float kr,
    float kb, const void **out, GError ** error);

G_END_DECLS
