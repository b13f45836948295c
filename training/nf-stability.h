/* nf-stability.h — the temporal stability term of style training (issue 14), without
 * optical flow.
 *
 * For a batch of crops x (N, 3, H, W) in 0..255 the trainer also runs the network on
 * x' = T(x) + n, where T is a small random integer translation (|dx|, |dy| <= max_shift,
 * the uncovered border filled by reflection) and n Gaussian noise of a sigma drawn in
 * [0, max_noise] levels (sensor and compression noise of a static camera), and adds
 *     L_stab = weight * mean over the valid pixels of (f(x') - T(f(x)))^2
 * (0..255 units; valid = pixels whose source under T lies in the image, farther than
 * `margin` from every border). Its gradient reaches both outputs: f(x') is pulled
 * towards the shifted f(x) and f(x) towards the unshifted f(x') - Gupta et al. 2017
 * ("Characterizing and improving stability in neural style transfer"), Wang et al. 2020
 * ("Consistent video style transfer via compound regularization"): a network that
 * commutes with small motions and ignores noise does not flicker on video.
 * The still part (stability_still_weight): crops drawn with max_shift 0 see noise alone,
 * x' = x + n, and their mean (f(x + n) - f(x))^2 is weighted on its own - the shifted
 * pairs' MSE is mostly the network's response to motion and would drown a static
 * camera's noise, which is what the static flicker ratio measures (nf-trainer.c picks
 * every other crop as still when both weights are on).
 * JPEG (stability_jpeg Q > 0): x' is also round-tripped through JPEG at a quality drawn
 * in [Q, 95], as each frame of a compressed stream is; a static camera's frames then
 * differ by noise AND by where the codec's quantisation falls, which is what the
 * static flicker ratio's clips (nf-flicker.h: noise + JPEG per frame) and real video
 * carry - Gaussian noise alone misses the codec's 8x8-block structure.
 * One draw per crop, from a seed, so a resumed run repeats it.
 *
 * What it does not: run networks (nf-trainer.c does, on the doubled batch), or rotate
 * and zoom (translations and noise only).
 */
#pragma once

#include <glib.h>

#include "nf-tensor.h"

G_BEGIN_DECLS

typedef struct {
  int dx, dy;                   /* T(x)(y, x) = x(y - dy, x - dx) */
  float sigma;                  /* noise sigma, levels */
  int quality;                  /* JPEG round trip at this quality (0: none) */
  guint64 noise_seed;
} NfStabilityDraw;

/* One draw per crop: shifts in [-max_shift, max_shift] (not both 0 when max_shift > 0),
 * sigma in [0, max_noise], JPEG quality in [jpeg_min, 95] when jpeg_min > 0 (drawn after
 * the rest, so a draw without JPEG is what it was before the option existed). */
void nf_stability_draw (guint64 seed, int max_shift, double max_noise, int jpeg_min,
    NfStabilityDraw *d);

/* x (3, h, w) -> out (3, h, w) = T(x) + n, rounded and clamped to 0..255 as a frame,
 * then JPEG round-tripped when d->quality > 0 (FALSE + error only if that fails). */
gboolean nf_stability_input (const float *x, int h, int w, const NfStabilityDraw *d,
    float *out, GError **error);

/* The term for one crop: mean of (y2 - T(y1))^2 over the valid pixels (see above), times
 * weight; with dy1/dy2 non-NULL, ADDS its gradient (weight included) to them. Returns
 * the unweighted mean (0 when no pixel is valid). y1, y2: (3, h, w), 0..255 units. */
double nf_stability_loss (const float *y1, const float *y2, int h, int w,
    const NfStabilityDraw *d, int margin, double weight, float *dy1, float *dy2);

G_END_DECLS
