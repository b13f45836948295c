/* nf-metrics.h — image quality metrics for super-resolution, computed the way SR papers
 * do (and their MATLAB evaluation scripts):
 *
 *   Y      luma of MATLAB's rgb2ycbcr on 0..255 input, kept in float (not rounded):
 *          Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, in 16..235
 *   shave  `shave` pixels dropped on every side before comparing (the scale factor,
 *          by convention)
 *   PSNR   10 log10(255^2 / MSE) over the shaved Y planes (infinity when equal)
 *   SSIM   Wang et al. 2004 (ssim_index.m): 11x11 Gaussian window, sigma 1.5,
 *          K1 = 0.01, K2 = 0.03, L = 255, statistics with the window's weights,
 *          "valid" filtering (no padding), mean of the SSIM map; no downsampling
 *
 * Images are planar float (3, H, W) in 0..255 (callers round outputs to 8 bit first
 * when they mean to score what would be saved).
 * What it does not: perceptual metrics (nf-perceptual.h), colour PSNR.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* rgb (3, h, w) -> y (h, w). */
void nf_rgb_to_y (const float *rgb, int h, int w, float *y);

/* PSNR of two (h, w) planes over the window shaved by `shave` on every side. */
double nf_psnr_plane (const float *a, const float *b, int h, int w, int shave, double peak);
/* SSIM of two (h, w) planes (shaved first); NAN when the shaved planes are smaller
 * than the 11x11 window. */
double nf_ssim_plane (const float *a, const float *b, int h, int w, int shave, double peak);

/* The same on the Y channel of two (3, h, w) RGB images, peak 255. */
double nf_psnr_y (const float *a_rgb, const float *b_rgb, int h, int w, int shave);
double nf_ssim_y (const float *a_rgb, const float *b_rgb, int h, int w, int shave);

G_END_DECLS
