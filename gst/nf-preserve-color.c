/* nf-preserve-color.c — the stylised luminance with the input's colours on the CPU
 * (definition in nf-preserve-color.h).
 *
 * What it does: the per-pixel formula over w x h pixels of two planar frames.
 * What it does not: anything else.
 */
#include "nf-preserve-color.h"

void
nf_preserve_color (float *y, int yw, gsize y_plane, const float *x, int xw,
    gsize x_plane, int w, int h, float xm, float xb, float kr, float kb)
{
  for (int i = 0; i < h; i++) {
    float *y0 = y + (gsize) i * yw, *y1 = y0 + y_plane, *y2 = y1 + y_plane;
    const float *x0 = x + (gsize) i * xw, *x1 = x0 + x_plane, *x2 = x1 + x_plane;
    for (int j = 0; j < w; j++) {
      float rgb[3] = { y0[j], y1[j], y2[j] }, xv[3] = { x0[j], x1[j], x2[j] };
      nf_preserve_color_pixel (rgb, xv, xm, xb, kr, kb);
      y0[j] = rgb[0];
      y1[j] = rgb[1];
      y2[j] = rgb[2];
    }
  }
}
