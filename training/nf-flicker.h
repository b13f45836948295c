/* nf-flicker.h — how much a per-frame filter flickers on video.
 *
 * Two measures (issue 14):
 *   static flicker ratio  on a clip x_0..x_{n-1}: a pixel is static between frames t-1
 *                         and t when every channel of the input changes by less than
 *                         `threshold` (2 levels of 0..255); the ratio is the mean
 *                         |y_t - y_{t-1}| over static pixels and channels of the output
 *                         y = f(x) divided by the same mean of the input. An identity
 *                         gives 1; a filter that amplifies sensor/compression noise into
 *                         crawling texture gives more. Outputs larger than the input by
 *                         an integer factor (super-resolution) use the mask replicated.
 *   warping error         on a still image x under known motions T (integer translations
 *                         of 1-5 pixels, and for same-size outputs a 3 % zoom about the
 *                         centre, bilinear): the mean |f(T(x)) - T(f(x))| over the pixels
 *                         farther than `margin` from every border, in 0..255 units. A
 *                         per-pixel function gives 0 for translations.
 * Synthetic static-camera clips: a still photo plus, per frame, Gaussian sensor noise
 * (sigma levels) and a JPEG round trip at a streaming quality, seeded.
 * Frames are planar float (3, h, w) in 0..255.
 *
 * What it does not: read video (give decoded frames; nf-evaluate reads a folder of
 * images), or run models (the caller's filter does).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* in (3, h, w) -> *out (3, *oh, *ow), nf_alloc'd by the filter. */
typedef gboolean (*NfFrameFilter) (gpointer user, const float *in, int w, int h, float **out,
    int *ow, int *oh, GError **error);

typedef struct {
  double input_change;          /* mean |x_t - x_{t-1}| over static pixels, levels */
  double output_change;         /* the same of the output */
  double ratio;                 /* output_change / input_change */
  double static_fraction;       /* share of pixel pairs that were static */
  int pairs;                    /* frame pairs measured */
} NfFlickerStatic;

gboolean nf_flicker_static (const float *const *frames, int n, int w, int h, double threshold,
    NfFrameFilter f, gpointer user, NfFlickerStatic *out, GError **error);

typedef struct {
  double error;                 /* mean |f(T x) - T f(x)| over all motions, levels */
  double translate_error, zoom_error;   /* zoom_error < 0: not measured */
  int motions;
} NfWarpScore;

gboolean nf_flicker_warp (const float *img, int w, int h, int margin, NfFrameFilter f,
    gpointer user, NfWarpScore *out, GError **error);

/* n frames of a static camera looking at img: img + N(0, sigma^2) per pixel and frame,
 * rounded, then JPEG at quality q (0: no JPEG); seeded. Returns n nf_alloc'd frames
 * (free each with nf_free, then g_free the array). */
float **nf_flicker_static_clip (const float *img, int w, int h, int n, double sigma,
    int quality, guint64 seed, GError **error);

G_END_DECLS
