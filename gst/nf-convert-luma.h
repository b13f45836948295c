/* nf-convert-luma.h — the Y'CbCr 4:2:0 planes of a frame that a luma-only network
 * upscales (the element's luma path, gstneuralfilter-luma.c).
 *
 * What it does: the luma plane's bytes <-> one float plane in a network's units
 * (Y' in 0..1 mapped to lo..hi, the matrix's range; reflection padding to a larger
 * size as nf_convert_unpack pads), and the integer-factor bilinear upscaling of a
 * chroma plane (sample centres aligned, edges clamped, 8-bit fixed point, rounded):
 * the cheap filter the chroma gets while the network upscales the luma.
 * What it does not: convert to RGB (nf-convert.h), or run networks.
 */
#pragma once

#include <glib.h>

#include "nf-convert.h"

G_BEGIN_DECLS

/* y: w x h bytes, rows ys apart -> plane: pw x ph floats (pw >= w, ph >= h),
 * value = lo + (hi - lo) * (byte - y_off) / y_scale; the extra columns and rows by
 * reflection (replication where the frame is 1 pixel wide or high). */
void nf_convert_luma_unpack (const NfYuvMatrix * m, const guint8 * y, int ys, int w,
    int h, float *plane, int pw, int ph, float lo, float hi);

/* plane: rows pw floats apart -> y: w x h bytes, rows ys apart,
 * byte = clamp (round (y_off + y_scale * (value - lo) / (hi - lo)), 0, 255). */
void nf_convert_luma_pack (const NfYuvMatrix * m, const float *plane, int pw, int w,
    int h, guint8 * y, int ys, float lo, float hi);

/* src: sw x sh samples, step bytes apart in a row (1: a plane; 2: one of NV12's
 * interleaved U and V), rows ss apart -> dst: dw x dh samples (dw <= s sw, dh <= s sh),
 * same step, rows ds apart; dst (x, y) is src bilinearly interpolated at
 * ((x + 0.5) / s - 0.5, (y + 0.5) / s - 0.5). s: 1..8. */
void nf_chroma_upscale (const guint8 * src, int ss, int sw, int sh, guint8 * dst, int ds,
    int dw, int dh, int step, int s);

G_END_DECLS
