/* nf-image.h — reading and writing PNG and JPEG files as 8-bit RGB, and converting
 * between 8-bit RGB and planar float (1, 3, H, W) tensors.
 *
 * What it does: PNG through libpng (any bit depth/colour type, alpha dropped,
 * 16-bit reduced), JPEG through libjpeg-turbo (grey expanded to RGB), chosen by content
 * (magic bytes) for reading and by file extension for writing; bilinear-free
 * nearest/area resize is not here.
 * What it does not: video frames (gst/ does that).
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct {
  int width, height;
  uint8_t *rgb;                 /* width*height*3, row-major, no padding */
} NfImage;

NfImage *nf_image_load (const char *path, GError **error);
/* The same from a file's bytes in memory; name is what error messages call it. */
NfImage *nf_image_load_bytes (const guint8 *data, gsize len, const char *name,
    GError **error);
gboolean nf_image_save (const NfImage *img, const char *path, GError **error);
/* The image as JPEG bytes at quality 1..100 (g_free). */
guint8 *nf_image_encode_jpeg (const NfImage *img, int quality, gsize *len, GError **error);
NfImage *nf_image_new (int width, int height);
void nf_image_free (NfImage *img);

/* (1, 3, H, W) floats: value = lo + (hi - lo) * u8 / 255. */
void nf_image_to_planar (const NfImage *img, float *dst, float lo, float hi);
/* Inverse, rounding and clamping to 0..255. */
void nf_image_from_planar (NfImage *img, const float *src, float lo, float hi);
/* planar (3, h, w) 0..255 values replaced by their JPEG round trip at quality 1..100
 * (libjpeg, 4:2:0): what a frame of a compressed stream is. `what` names it in errors. */
gboolean nf_image_jpeg_round_trip_planar (float *planar, int w, int h, int quality,
    const char *what, GError **error);

G_END_DECLS
