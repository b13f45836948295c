/* nf-losses.h — the perceptual losses and their gradients, on host float arrays (NCHW).
 *
 *   content   L = mean over N*C*H*W of (f - p)^2                     (feature MSE)
 *   Gram      G_n = F_n F_n^T / (C*H*W), F_n the (C, H*W) matrix of image n
 *   gram loss L = mean over N*C*C of (G_n(f) - T)^2, T one (C, C) target for every n
 *   style     sum over layers l of w_l * gram loss at l (the caller loops over layers)
 *   TV        L = (sum of (x[y][i+1] - x[y][i])^2 + sum of (x[y+1][i] - x[y][i])^2)
 *                 / (N*C*H*W)   (squared differences of neighbours, mean per element)
 *
 * Every loss returns its unweighted value and, when grad is not NULL, ACCUMULATES
 * weight * dL/d(input) into grad (so several losses on one layer just add up).
 * The *_ref functions are plain loops in double, obviously right, for the tests; the
 * others are the fast twins used in training (Gram products through oneDNN's sgemm,
 * which is blocked and multithreaded), checked against the reference in
 * tests/test-train-losses.c.
 *
 * What it does not: run the loss network (nf-engine), or move data to/from a backend.
 */
#pragma once

#include <glib.h>

#include "nf-tensor.h"

G_BEGIN_DECLS

/* f, p, grad: n floats. */
double nf_loss_content (const float *f, const float *p, size_t n, double weight, float *grad);

/* The pixel MSE of RGB images f, p (N, 3, H, W) with the chroma part of each pixel's
 * difference weighted by chroma_weight: with u the unit vector along BT.601 luma
 * (0.299, 0.587, 0.114)/|.| and d = f - p per pixel,
 *     L = mean over N*3*H*W of  [ (u.d)^2 + chroma_weight * (|d|^2 - (u.d)^2) ] (x 1/3 per
 *         channel, so that chroma_weight 1 is exactly nf_loss_content's MSE),
 * the luma part being what PSNR-Y measures. ADDS weight * dL/df to grad when non-NULL. */
double nf_loss_pixel_chroma (const float *f, const float *p, NfShape s, double chroma_weight,
    double weight, float *grad);

/* f (N, C, H, W) -> g (N, C, C). */
void nf_gram_ref (const float *f, NfShape s, float *g);
gboolean nf_gram (const float *f, NfShape s, float *g, GError **error);

/* f (N, C, H, W), target (C, C), grad (N, C, C, H, W)-shaped like f. */
double nf_loss_gram_ref (const float *f, NfShape s, const float *target, double weight,
    float *grad);
gboolean nf_loss_gram (const float *f, NfShape s, const float *target, double weight,
    float *grad, double *loss, GError **error);

/* x (N, C, H, W), grad like x. */
double nf_loss_tv (const float *x, NfShape s, double weight, float *grad);

/* Peak signal-to-noise ratio (dB) of a vs b, values in 0..peak. */
double nf_psnr (const float *a, const float *b, size_t n, double peak);

G_END_DECLS
