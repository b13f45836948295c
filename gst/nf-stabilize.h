/* nf-stabilize.h — temporal stabilisation of a per-frame network's output (issue 14):
 * static parts of a video stop crawling, moving parts are not ghosted.
 *
 * What it does: keeps, per pixel, the output it delivered last (prev) and the input
 * that output stands for (ref, a running blend of the inputs with the same weights).
 * For each new frame x with network output y:
 *   (dx, dy) = the camera's motion since the state, one integer translation
 *           (nf-stabilize-motion.h; with search 0, or (0, 0) found: none), and ref and
 *           prev are moved with it (prev by (dx, dy) x scale); pixels that came into the
 *           frame have no past: their d counts as motion and their weight is 0;
 *   d     = the 3x3 mean (over the pixels inside the frame) of the max-channel |x - ref|,
 *           in levels of 0..255 (averaging keeps sensor noise below the thresholds
 *           while real motion, coherent over neighbours, stays above them);
 *   a     = strength * (1 - smoothstep (lo, hi, d))   (a: the weight of the past);
 *   prev  = a * prev + (1 - a) * y      (the output: held where x is still, fresh
 *                                        where it moved, a smooth ramp between);
 *   ref   = a * ref + (1 - a) * x       (so slow drifts add up until they count).
 * Comparing with ref rather than with the previous frame lets a slow change (light
 * fading by less than lo per frame) through once it has added up, and makes a frame
 * skipped by the live path harmless. Moving the state with the camera is what lets a
 * pan keep the static scene steady: without it every textured pixel of a panning
 * frame is "moving" and comes fresh from the network, flicker and all. Outputs larger than the input (superres) take
 * the weight of the input pixel they come from. The first frame after a reset is
 * passed through and becomes the state. The formula is here once (nf_stabilize_weight,
 * usable from CUDA code) so the CPU and CUDA paths compute the same weights.
 * What it does not: decide when to reset (the element does: caps, flushes,
 * discontinuities, a new model), or touch bytes: it works on planar float frames
 * between the network and the packing of pixels.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#ifdef __CUDACC__
#define NF_STABILIZE_FN __host__ __device__ static inline
#else
#define NF_STABILIZE_FN static inline
#endif

/* Where the weight ramps from strength (d <= lo: still) to 0 (d >= hi: moving), in
 * levels of 0..255 of the 3x3-mean max-channel input change. Chosen by measurement
 * (README, "Stabilisation and colours"): sensor noise and video compression give d
 * of 0.3-2 levels, motion 10 or more. */
#define NF_STABILIZE_LO 3.0f
#define NF_STABILIZE_HI 12.0f

typedef struct {
  float strength;               /* 0..1: weight of the past where the input is still */
  float lo, hi;                 /* the ramp, levels (lo < hi) */
  int search;                   /* the camera motion searched, pixels (0: none; the
                                 * element: NF_MOTION_SEARCH) */
} NfStabilizeParams;

/* The weight of the past for a 3x3-mean max-channel input change d (levels). */
NF_STABILIZE_FN float
nf_stabilize_weight (const NfStabilizeParams * p, float d)
{
  if (d <= p->lo)
    return p->strength;
  if (d >= p->hi)
    return 0.0f;
  float t = (d - p->lo) / (p->hi - p->lo);
  return p->strength * (1.0f - t * t * (3.0f - 2.0f * t));
}

typedef struct NfStabilizer NfStabilizer;

NfStabilizer *nf_stabilizer_new (void);
void nf_stabilizer_free (NfStabilizer * s);
/* The next frame starts afresh (passed through, becomes the state). */
void nf_stabilizer_reset (NfStabilizer * s);

/* The translation the last frame's state was moved by (0, 0 without one). */
void nf_stabilizer_last_shift (const NfStabilizer * s, int *dx, int *dy);

/* One frame. x: the network input, 3 planes (R, G, B) of x_plane floats, rows xw
 * floats apart, w x h used; x * x_to_levels is in levels of 0..255 up to an offset
 * (only differences count). y: the network output, 3 planes of
 * y_plane floats, rows yw floats apart, (w * scale) x (h * scale) used; replaced by
 * the stabilised output. A new size or scale resets. FALSE when out of memory (y is
 * then left as it was). */
gboolean nf_stabilizer_apply (NfStabilizer * s, const NfStabilizeParams * p,
    const float *x, int xw, gsize x_plane, int w, int h, float x_to_levels,
    float *y, int yw, gsize y_plane, int scale);

G_END_DECLS
