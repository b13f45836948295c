/* nf-image.c — PNG and JPEG files as 8-bit RGB, and 8-bit RGB <-> planar float.
 *
 * What it does: reads a whole file into memory (or takes bytes already in memory),
 * picks the decoder by its magic bytes (PNG signature, JPEG SOI marker), and decodes
 * with libpng (every bit depth and colour type turned into 8-bit RGB by png_set_*
 * transforms, alpha dropped, 16-bit scaled down) or libjpeg-turbo (grey expanded to
 * RGB by the library). Writes PNG or JPEG (quality 92) chosen by the file extension,
 * encoding into memory first so that a failed encode never leaves a half-written file.
 * Every libpng/libjpeg error (which both report by longjmp) becomes a GError naming the
 * file; a truncated file is an error, not a grey-filled image.
 * What it does not: resize, colour management (ICC/gamma chunks are ignored), EXIF
 * orientation, or video frames (gst/ does those).
 */
#include "nf-image.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>              /* before jpeglib.h, which needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "nf-error.h"

/* Decoded images larger than this are refused (a corrupt header must not make us
 * allocate gigabytes): 2^28 pixels, e.g. 16384 x 16384. */
#define NF_IMAGE_MAX_PIXELS ((gsize) 1 << 28)
/* libjpeg's own working memory: a progressive JPEG keeps the coefficients of the whole
 * image (2 bytes each, 1.5-3 a pixel), so a 60-byte header claiming 16384 x 16384 pixels
 * would make it allocate and zero 0.8-1.6 GB. 512 MB decodes progressive files up to
 * ~90-180 Mpixels; baseline files need only a few rows. */
#define NF_JPEG_MAX_MEMORY (512L << 20)

NfImage *
nf_image_new (int width, int height)
{
  if (width <= 0 || height <= 0 || (gsize) width * (gsize) height > NF_IMAGE_MAX_PIXELS)
    return NULL;
  uint8_t *rgb = g_try_malloc0 ((gsize) width * height * 3);
  if (!rgb)
    return NULL;
  NfImage *img = g_new0 (NfImage, 1);
  img->width = width;
  img->height = height;
  img->rgb = rgb;
  return img;
}

void
nf_image_free (NfImage *img)
{
  if (!img)
    return;
  g_free (img->rgb);
  g_free (img);
}

/* ---- PNG ------------------------------------------------------------------------ */

typedef struct {
  jmp_buf jmp;
  char msg[256];
  /* reading from memory */
  const guint8 *data;
  gsize len, pos;
  /* writing to memory */
  GByteArray *out;
} PngCtx;

static void
png_error_cb (png_structp png, png_const_charp msg)
{
  PngCtx *ctx = png_get_error_ptr (png);
  g_strlcpy (ctx->msg, msg ? msg : "unknown libpng error", sizeof ctx->msg);
  longjmp (ctx->jmp, 1);
}

static void
png_warning_cb (png_structp png, png_const_charp msg)
{
  /* Warnings (unknown chunks, bad gamma, ...) do not stop decoding. */
}

static void
png_read_cb (png_structp png, png_bytep dst, png_size_t n)
{
  PngCtx *ctx = png_get_io_ptr (png);
  if (n > ctx->len - ctx->pos)
    png_error (png, "the file is truncated");
  memcpy (dst, ctx->data + ctx->pos, n);
  ctx->pos += n;
}

static void
png_write_cb (png_structp png, png_bytep src, png_size_t n)
{
  PngCtx *ctx = png_get_io_ptr (png);
  g_byte_array_append (ctx->out, src, (guint) n);
}

static void
png_flush_cb (png_structp png)
{
}

static NfImage *
load_png (const char *path, const guint8 *data, gsize len, GError **error)
{
  PngCtx ctx = { .data = data, .len = len };
  png_structp png = png_create_read_struct (PNG_LIBPNG_VER_STRING, &ctx, png_error_cb,
      png_warning_cb);
  if (!png) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "%s: cannot initialise libpng", path);
    return NULL;
  }
  png_infop info = png_create_info_struct (png);
  /* Modified after setjmp and read after a longjmp: volatile. */
  NfImage *volatile img = NULL;
  png_bytep *volatile rows = NULL;

  if (!info) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "%s: cannot initialise libpng", path);
    goto fail;
  }
  if (setjmp (ctx.jmp)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "%s: not a readable PNG file: %s", path,
        ctx.msg);
    goto fail;
  }
  png_set_read_fn (png, &ctx, png_read_cb);
  png_read_info (png, info);

  png_uint_32 w, h;
  int depth, ctype, interlace;
  png_get_IHDR (png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);

  /* Everything to 8-bit RGB: palette -> RGB, grey < 8 bits -> 8, tRNS -> alpha (then
   * dropped), 16 -> 8 bits with rounding, grey -> RGB, alpha stripped. */
  png_set_expand (png);
  png_set_scale_16 (png);
  png_set_strip_alpha (png);
  if (!(ctype & PNG_COLOR_MASK_COLOR))
    png_set_gray_to_rgb (png);
  if (interlace != PNG_INTERLACE_NONE)
    png_set_interlace_handling (png);
  png_read_update_info (png, info);

  if (png_get_rowbytes (png, info) != (png_size_t) w * 3 || png_get_channels (png, info) != 3
      || png_get_bit_depth (png, info) != 8) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "%s: PNG colour type %d, depth %d could not be converted to 8-bit RGB", path,
        ctype, depth);
    goto fail;
  }
  if (w > G_MAXINT || h > G_MAXINT || !(img = nf_image_new ((int) w, (int) h))) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "%s: PNG of %ux%u pixels is empty or too large (at most %" G_GSIZE_FORMAT
        " pixels)", path, (unsigned) w, (unsigned) h, NF_IMAGE_MAX_PIXELS);
    goto fail;
  }
  rows = g_new (png_bytep, h);
  for (png_uint_32 y = 0; y < h; y++)
    rows[y] = img->rgb + (gsize) y * w * 3;
  png_read_image (png, rows);
  png_read_end (png, NULL);

  g_free (rows);
  png_destroy_read_struct (&png, &info, NULL);
  return img;

fail:
  g_free (rows);
  nf_image_free (img);
  png_destroy_read_struct (&png, info ? &info : NULL, NULL);
  return NULL;
}

static GByteArray *
encode_png (const NfImage *img, const char *path, GError **error)
{
  PngCtx ctx = { 0 };
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &ctx, png_error_cb,
      png_warning_cb);
  if (!png) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "%s: cannot initialise libpng", path);
    return NULL;
  }
  png_infop info = png_create_info_struct (png);
  png_bytep *volatile rows = NULL;
  ctx.out = g_byte_array_new ();

  if (!info) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "%s: cannot initialise libpng", path);
    goto fail;
  }
  if (setjmp (ctx.jmp)) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "%s: PNG encoding failed: %s", path, ctx.msg);
    goto fail;
  }
  png_set_write_fn (png, &ctx, png_write_cb, png_flush_cb);
  png_set_IHDR (png, info, (png_uint_32) img->width, (png_uint_32) img->height, 8,
      PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
      PNG_FILTER_TYPE_DEFAULT);
  png_write_info (png, info);
  rows = g_new (png_bytep, img->height);
  for (int y = 0; y < img->height; y++)
    rows[y] = img->rgb + (gsize) y * img->width * 3;
  png_write_image (png, rows);
  png_write_end (png, NULL);

  g_free (rows);
  png_destroy_write_struct (&png, &info);
  return ctx.out;

fail:
  g_free (rows);
  g_byte_array_unref (ctx.out);
  png_destroy_write_struct (&png, info ? &info : NULL);
  return NULL;
}

/* ---- JPEG ----------------------------------------------------------------------- */

typedef struct {
  struct jpeg_error_mgr mgr;    /* first: libjpeg hands us a pointer to it */
  jmp_buf jmp;
  char msg[JMSG_LENGTH_MAX];
} JpegErr;

static void
jpeg_error_exit_cb (j_common_ptr cinfo)
{
  JpegErr *err = (JpegErr *) cinfo->err;
  err->mgr.format_message (cinfo, err->msg);
  longjmp (err->jmp, 1);
}

/* libjpeg only warns about a truncated file (and pads it with grey); we refuse it.
 * Other warnings (and trace messages) are ignored. */
static void
jpeg_emit_message_cb (j_common_ptr cinfo, int level)
{
  JpegErr *err = (JpegErr *) cinfo->err;
  if (level < 0 && err->mgr.msg_code == JWRN_JPEG_EOF) {
    g_strlcpy (err->msg, "the file is truncated", sizeof err->msg);
    longjmp (err->jmp, 1);
  }
}

static void
jpeg_error_setup (JpegErr *err)
{
  jpeg_std_error (&err->mgr);
  err->mgr.error_exit = jpeg_error_exit_cb;
  err->mgr.emit_message = jpeg_emit_message_cb;
  err->msg[0] = '\0';
}

static NfImage *
load_jpeg (const char *path, const guint8 *data, gsize len, GError **error)
{
  struct jpeg_decompress_struct cinfo;
  JpegErr err;
  NfImage *volatile img = NULL;

  cinfo.err = &err.mgr;
  jpeg_error_setup (&err);
  if (setjmp (err.jmp)) {
    if (err.mgr.msg_code == JERR_NO_BACKING_STORE)     /* over NF_JPEG_MAX_MEMORY */
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "%s: JPEG of %ux%u pixels needs more "
          "than %ld MB to decode", path, cinfo.image_width, cinfo.image_height,
          NF_JPEG_MAX_MEMORY >> 20);
    else
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "%s: not a readable JPEG file: %s",
          path, err.msg);
    jpeg_destroy_decompress (&cinfo);
    nf_image_free (img);
    return NULL;
  }
  jpeg_create_decompress (&cinfo);
  cinfo.mem->max_memory_to_use = NF_JPEG_MAX_MEMORY;
  jpeg_mem_src (&cinfo, data, (unsigned long) len);
  jpeg_read_header (&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;      /* grey and YCbCr both come out as RGB */
  /* Before jpeg_start_decompress, which allocates the decoder's buffers: for a
   * progressive file one of coefficients for the whole image, so a header that claims
   * 60000x60000 pixels would cost gigabytes before any size check after it. */
  if ((gsize) cinfo.image_width * cinfo.image_height > NF_IMAGE_MAX_PIXELS) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "%s: JPEG of %ux%u pixels is too large (at most %" G_GSIZE_FORMAT " pixels)", path,
        cinfo.image_width, cinfo.image_height, NF_IMAGE_MAX_PIXELS);
    jpeg_destroy_decompress (&cinfo);
    return NULL;
  }
  jpeg_start_decompress (&cinfo);
  if (cinfo.output_components != 3
      || !(img = nf_image_new ((int) cinfo.output_width, (int) cinfo.output_height))) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "%s: JPEG of %ux%u pixels with %d components cannot be read as RGB", path,
        cinfo.output_width, cinfo.output_height, cinfo.output_components);
    jpeg_destroy_decompress (&cinfo);
    return NULL;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = img->rgb + (gsize) cinfo.output_scanline * img->width * 3;
    jpeg_read_scanlines (&cinfo, &row, 1);
  }
  jpeg_finish_decompress (&cinfo);
  jpeg_destroy_decompress (&cinfo);
  return img;
}

/* Returns a malloc()ed buffer (free with free()). */
static unsigned char *
encode_jpeg (const NfImage *img, const char *path, int quality, unsigned long *out_len,
    GError **error)
{
  struct jpeg_compress_struct cinfo;
  JpegErr err;
  unsigned char *buf = NULL;
  unsigned long len = 0;

  cinfo.err = &err.mgr;
  jpeg_error_setup (&err);
  if (setjmp (err.jmp)) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "%s: JPEG encoding failed: %s", path, err.msg);
    jpeg_destroy_compress (&cinfo);
    free (buf);
    return NULL;
  }
  jpeg_create_compress (&cinfo);
  jpeg_mem_dest (&cinfo, &buf, &len);
  cinfo.image_width = (JDIMENSION) img->width;
  cinfo.image_height = (JDIMENSION) img->height;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults (&cinfo);
  jpeg_set_quality (&cinfo, quality, TRUE);
  jpeg_start_compress (&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = img->rgb + (gsize) cinfo.next_scanline * img->width * 3;
    jpeg_write_scanlines (&cinfo, &row, 1);
  }
  jpeg_finish_compress (&cinfo);
  jpeg_destroy_compress (&cinfo);
  *out_len = len;
  return buf;
}

/* ---- entry points ---------------------------------------------------------------- */

guint8 *
nf_image_encode_jpeg (const NfImage *img, int quality, gsize *len, GError **error)
{
  if (!img || img->width <= 0 || img->height <= 0 || !img->rgb || quality < 1
      || quality > 100) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "JPEG encoding: %s",
        quality < 1 || quality > 100 ? "quality must be 1..100" : "no image");
    return NULL;
  }
  unsigned long n = 0;
  guint8 *buf = encode_jpeg (img, "in-memory JPEG", quality, &n, error);
  if (!buf)
    return NULL;
  guint8 *copy = g_memdup2 (buf, n);    /* g_free-able; libjpeg allocated with malloc */
  free (buf);
  *len = n;
  return copy;
}

static const guint8 png_magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

NfImage *
nf_image_load_bytes (const guint8 *data, gsize len, const char *name, GError **error)
{
  if (len >= 8 && memcmp (data, png_magic, 8) == 0)
    return load_png (name, data, len, error);
  if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
    return load_jpeg (name, data, len, error);
  g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
      "%s: not a PNG or JPEG file (%" G_GSIZE_FORMAT " bytes, unknown signature)", name, len);
  return NULL;
}

NfImage *
nf_image_load (const char *path, GError **error)
{
  guint8 *data = NULL;
  gsize len = 0;
  GError *e = NULL;
  if (!g_file_get_contents (path, (char **) &data, &len, &e)) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "cannot read image: %s", e->message);
    g_error_free (e);
    return NULL;
  }
  NfImage *img = nf_image_load_bytes (data, len, path, error);
  g_free (data);
  return img;
}

static gboolean
has_ext (const char *path, const char *ext)
{
  gsize n = strlen (path), m = strlen (ext);
  return n > m && g_ascii_strcasecmp (path + n - m, ext) == 0;
}

gboolean
nf_image_save (const NfImage *img, const char *path, GError **error)
{
  if (!img || img->width <= 0 || img->height <= 0 || !img->rgb) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: no image to save", path);
    return FALSE;
  }
  const guint8 *bytes = NULL;
  gsize len = 0;
  GByteArray *png_buf = NULL;
  unsigned char *jpeg_buf = NULL;
  if (has_ext (path, ".png")) {
    if (!(png_buf = encode_png (img, path, error)))
      return FALSE;
    bytes = png_buf->data;
    len = png_buf->len;
  } else if (has_ext (path, ".jpg") || has_ext (path, ".jpeg")) {
    unsigned long jl = 0;
    if (!(jpeg_buf = encode_jpeg (img, path, 92, &jl, error)))
      return FALSE;
    bytes = jpeg_buf;
    len = jl;
  } else {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "%s: unknown image format (the name must end in .png, .jpg or .jpeg)", path);
    return FALSE;
  }
  GError *e = NULL;
  gboolean ok = g_file_set_contents (path, (const char *) bytes, (gssize) len, &e);
  if (!ok) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "cannot write image %s: %s", path, e->message);
    g_error_free (e);
  }
  if (png_buf)
    g_byte_array_unref (png_buf);
  free (jpeg_buf);
  return ok;
}

/* ---- planar float conversion ------------------------------------------------------ */

void
nf_image_to_planar (const NfImage *img, float *dst, float lo, float hi)
{
  float lut[256];
  for (int i = 0; i < 256; i++)
    lut[i] = (float) (lo + ((double) hi - lo) * i / 255.0);
  gsize plane = (gsize) img->width * img->height;
  const uint8_t *p = img->rgb;
  for (gsize i = 0; i < plane; i++, p += 3) {
    dst[i] = lut[p[0]];                 // R plane
    dst[plane + i] = lut[p[1]];         // G plane
    dst[2 * plane + i] = lut[p[2]];     // B plane
  }
}

static inline uint8_t
to_u8 (float v, float lo, float scale)
{
  float x = (v - lo) * scale + 0.5f;
  if (!(x > 0.0f))              /* also NaN */
    return 0;
  if (x >= 255.0f)
    return 255;
  return (uint8_t) x;           /* truncation of x + 0.5: round half up */
}

void
nf_image_from_planar (NfImage *img, const float *src, float lo, float hi)
{
  float scale = hi != lo ? 255.0f / (hi - lo) : 0.0f;
  gsize plane = (gsize) img->width * img->height;
  uint8_t *p = img->rgb;
  for (gsize i = 0; i < plane; i++, p += 3) {
    p[0] = to_u8 (src[i], lo, scale);
    p[1] = to_u8 (src[plane + i], lo, scale);
    p[2] = to_u8 (src[2 * plane + i], lo, scale);
  }
}

gboolean
nf_image_jpeg_round_trip_planar (float *planar, int w, int h, int quality, const char *what,
    GError **error)
{
  NfImage *img = nf_image_new (w, h);
  nf_image_from_planar (img, planar, 0.0f, 255.0f);
  gsize len = 0;
  guint8 *jpg = nf_image_encode_jpeg (img, quality, &len, error);
  NfImage *dec = jpg ? nf_image_load_bytes (jpg, len, what, error) : NULL;
  if (dec)
    nf_image_to_planar (dec, planar, 0.0f, 255.0f);
  g_free (jpg);
  nf_image_free (dec);
  nf_image_free (img);
  return dec != NULL;
}
