/* nf-resize.h — resizing planar float images (C, H, W): area averaging when shrinking
 * (every source pixel weighted by its overlap with the output pixel, so no aliasing),
 * bilinear with half-pixel centres when enlarging; separable, per axis.
 *
 * What it does not: blur kernels or bicubic (super-resolution data preparation has
 * its own), colour conversion.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* src (c, h, w) -> dst (c, oh, ow); dst must hold c*oh*ow floats. */
void nf_resize_planar (const float *src, int c, int h, int w, float *dst, int oh, int ow);

/* The size with the long side = long_side, aspect kept (each side at least 1). */
void nf_resize_fit (int w, int h, int long_side, int *ow, int *oh);

G_END_DECLS
