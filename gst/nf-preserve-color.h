/* nf-preserve-color.h — the stylised luminance with the input's colours (Gatys et al.
 * 2016, "Preserving color in neural artistic style transfer": luminance-only
 * transfer), on planar float frames.
 *
 * What it does: replaces each pixel of a network output y by the input pixel x shifted
 * by the difference of their lumas, y' = x + (Y(y) - Y(x)) in every channel, which is
 * the Y'CbCr pixel with y's luma and x's chroma (Y = kr R + (1 - kr - kb) G + kb B;
 * the chroma of x - Y(x) + c is that of x for any c). x is first brought to y's units
 * (x * xm + xb). The per-pixel formula is here once (nf_preserve_color_pixel, usable
 * from CUDA code) so the CPU and CUDA paths agree.
 * What it does not: pick the luma weights (the element takes the caps' matrix, BT.601
 * for RGB caps), or the I420/NV12 shortcut (the element copies the input's chroma
 * planes instead).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#ifdef __CUDACC__
#define NF_PRESERVE_COLOR_FN __host__ __device__ static inline
#else
#define NF_PRESERVE_COLOR_FN static inline
#endif

/* rgb: y's pixel (R, G, B), replaced; x: the input's, in its own units. */
NF_PRESERVE_COLOR_FN void
nf_preserve_color_pixel (float rgb[3], const float x[3], float xm, float xb, float kr,
    float kb)
{
  float kg = 1.0f - kr - kb;
  float x0 = x[0] * xm + xb, x1 = x[1] * xm + xb, x2 = x[2] * xm + xb;
  float dl = (kr * rgb[0] + kg * rgb[1] + kb * rgb[2]) - (kr * x0 + kg * x1 + kb * x2);
  rgb[0] = x0 + dl;
  rgb[1] = x1 + dl;
  rgb[2] = x2 + dl;
}

/* y: 3 planes of y_plane floats, rows yw floats apart; x: 3 planes of x_plane floats,
 * rows xw apart; w x h pixels of both. */
void nf_preserve_color (float *y, int yw, gsize y_plane, const float *x, int xw,
    gsize x_plane, int w, int h, float xm, float xb, float kr, float kb);

G_END_DECLS
