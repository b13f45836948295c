/* nf-degrade.h — the super-resolution degradation: how a high-resolution image is
 * turned into the low-resolution input a network learns to undo.
 *
 *   bicubic       LR = bicubic downscale by s (MATLAB imresize, antialiased)
 *   blur-bicubic  LR = bicubic downscale of (HR blurred with a Gaussian of sigma, 1 by
 *                 default) — Johnson et al. 2016, section 4.2
 *   video         LR = bicubic downscale, then Gaussian sensor noise of a sigma drawn in
 *                 [0, noise], then a JPEG round trip (4:2:0, libjpeg) at a quality drawn
 *                 in [jpeg_min, jpeg_max] - streamed video's losses in one cheap step;
 *                 the draws come from `seed` (the same seed, the same LR)
 * Either way the LR image is rounded and clamped to 0..255, as a decoded 8-bit frame
 * would be, so training and evaluation see the inputs the element will see.
 * Images are planar float (C, H, W) in 0..255.
 *
 * What it does not: choose crops (nf-dataset.h), upscale (nf-resample.h for the
 * baselines), or real H.264 (nf-evaluate reads frames made by gst-launch for that).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  NF_DEGRADE_BICUBIC,
  NF_DEGRADE_BLUR_BICUBIC,
  NF_DEGRADE_VIDEO,
} NfDegradeKind;

typedef struct {
  NfDegradeKind kind;
  double sigma;                 /* Gaussian sigma in HR pixels (blur-bicubic) */
  int scale;                    /* downscale factor, 2..8 */
  /* video */
  double noise;                 /* largest noise sigma, levels of 0..255 */
  int jpeg_min, jpeg_max;       /* JPEG quality range, 1..100 (0: no JPEG) */
  guint64 seed;                 /* this image's draw */
} NfDegrade;

/* Separable Gaussian of sigma (taps to +-ceil(3 sigma), normalised), mirror borders.
 * src (c, h, w) -> dst (c, h, w); dst may not alias src. */
void nf_gaussian_blur_planar (const float *src, int c, int h, int w, double sigma,
    float *dst);

/* hr (c, h, w) -> lr (c, h/scale, w/scale). h and w must be multiples of scale
 * (NF_ERROR_ARGUMENT otherwise). */
gboolean nf_degrade_planar (const NfDegrade *d, const float *hr, int c, int h, int w,
    float *lr, GError **error);

gboolean nf_degrade_kind_from_name (const char *name, NfDegradeKind *out);
const char *nf_degrade_kind_name (NfDegradeKind k);

G_END_DECLS
