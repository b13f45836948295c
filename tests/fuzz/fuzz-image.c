/* fuzz-image.c — libFuzzer target: an image file's bytes through the PNG/JPEG loader.
 *
 * Per input: nf_image_load_bytes (signature sniffing, libpng with every transform to
 * 8-bit RGB, libjpeg-turbo with its truncation check, the size limit); a decoded image
 * must have a positive size within the limit and a buffer of width*height*3 bytes
 * (every pixel is converted to planar floats and back, which must be exact; ASan
 * catches a buffer that is too small). A failure must give a GError with a message; a
 * crash, a sanitizer report, a leak, a GLib critical or warning is a finding.
 * What it does not: fuzz libpng/libjpeg themselves (not instrumented here), or the
 * writers (nf_image_save encodes images we made, not input).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "nf-image.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *e = NULL;
  NfImage *img = nf_image_load_bytes (data, size, "fuzz input", &e);
  if (!img) {
    if (!e || !e->message || !*e->message) {
      g_printerr ("fuzz-image: load failed without an error message\n");
      abort ();
    }
    g_error_free (e);
    return 0;
  }
  if (img->width <= 0 || img->height <= 0 || !img->rgb
      || (gsize) img->width * img->height > ((gsize) 1 << 28)) {
    g_printerr ("fuzz-image: decoded a %dx%d image\n", img->width, img->height);
    abort ();
  }
  /* Bounded work per input: the round trip only for images up to 1 Mpixel. */
  gsize n = (gsize) img->width * img->height;
  if (n <= ((gsize) 1 << 20)) {
    float *planar = g_new (float, 3 * n);
    nf_image_to_planar (img, planar, 0.0f, 255.0f);
    NfImage *back = nf_image_new (img->width, img->height);
    nf_image_from_planar (back, planar, 0.0f, 255.0f);
    if (memcmp (back->rgb, img->rgb, 3 * n) != 0) {
      g_printerr ("fuzz-image: u8 -> planar -> u8 is not exact\n");
      abort ();
    }
    nf_image_free (back);
    g_free (planar);
  }
  nf_image_free (img);
  return 0;
}
