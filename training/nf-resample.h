/* nf-resample.h — kernel resampling of planar float images (C, H, W) the way MATLAB's
 * imresize does it: bicubic (Keys, a = -0.5) or Lanczos-3, half-pixel centres, the
 * kernel stretched by the shrink factor when shrinking (antialiasing), weights
 * normalised to sum 1, and symmetric (mirror) padding at the borders. Super-resolution
 * papers build their low-resolution inputs and their bicubic baselines with exactly
 * this, so PSNR numbers compare.
 *
 * What it does not: area or bilinear resizing (nf-resize.h), blurring (nf-degrade.h),
 * colour conversion, clamping (results of cubic/Lanczos kernels can overshoot 0..255).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  NF_FILTER_BICUBIC,            /* Keys cubic, a = -0.5, support 2 */
  NF_FILTER_LANCZOS3,           /* sinc(x) sinc(x/3), support 3 */
} NfFilter;

/* src (c, h, w) -> dst (c, oh, ow). dst must hold c*oh*ow floats and not alias src. */
void nf_resample_planar (const float *src, int c, int h, int w, float *dst, int oh, int ow,
    NfFilter filter);

/* The kernel itself (x in source pixels at unit scale), for tests. */
double nf_resample_kernel (NfFilter filter, double x);

/* "bicubic" | "lanczos3" -> filter; FALSE when unknown. */
gboolean nf_filter_from_name (const char *name, NfFilter *out);
const char *nf_filter_name (NfFilter f);

G_END_DECLS
