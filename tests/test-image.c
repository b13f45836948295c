/* test-image.c — PNG/JPEG reading and writing and the planar float conversions.
 *
 * Checks: PNG round trip of a random image is exact; JPEG round trip of a smooth image
 * has PSNR > 30 dB; PNGs of other colour types and depths written here with libpng
 * directly (grey 8/16-bit, grey+alpha, RGBA, 16-bit RGB, palette with transparency,
 * 1-bit grey, interlaced) load as the expected 8-bit RGB; a grey JPEG loads as RGB;
 * u8 -> planar -> u8 is exact for several ranges, and out-of-range / NaN values clamp;
 * truncated, garbage, empty and missing files give GErrors naming the file; saving
 * with an unknown extension or into a missing directory fails cleanly.
 * Does not: check decoding speed or colour management.
 * Runs under valgrind too (NF_QUICK=1 keeps it short).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <jpeglib.h>
#include <png.h>

#include "nf-error.h"
#include "nf-image.h"
#include "nf-tensor.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static char *tmpdir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmpdir, name, NULL);
}

static NfImage *
random_image (int w, int h, guint64 seed)
{
  NfRng rng;
  nf_rng_seed (&rng, seed);
  NfImage *img = nf_image_new (w, h);
  for (gsize i = 0; i < (gsize) w * h * 3; i++)
    img->rgb[i] = (uint8_t) (nf_rng_u32 (&rng) & 0xff);
  return img;
}

/* Gradients and low-frequency waves: what JPEG is made for. */
static NfImage *
smooth_image (int w, int h)
{
  NfImage *img = nf_image_new (w, h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = img->rgb + ((gsize) y * w + x) * 3;
      p[0] = (uint8_t) (255.0 * x / (w - 1));
      p[1] = (uint8_t) (127.5 + 100.0 * sin (x * 0.11) * cos (y * 0.07));
      p[2] = (uint8_t) (255.0 * y / (h - 1));
    }
  return img;
}

static double
psnr (const NfImage *a, const NfImage *b)
{
  double se = 0;
  gsize n = (gsize) a->width * a->height * 3;
  for (gsize i = 0; i < n; i++) {
    double d = (double) a->rgb[i] - b->rgb[i];
    se += d * d;
  }
  if (se == 0)
    return INFINITY;
  return 10.0 * log10 (255.0 * 255.0 / (se / n));
}

static int
count_diff (const NfImage *a, const NfImage *b)
{
  if (a->width != b->width || a->height != b->height)
    return -1;
  int n = 0;
  for (gsize i = 0; i < (gsize) a->width * a->height * 3; i++)
    n += a->rgb[i] != b->rgb[i];
  return n;
}

static gboolean
write_bytes (const char *path, const void *data, gsize len)
{
  return g_file_set_contents (path, data, (gssize) len, NULL);
}

/* ---- PNG / JPEG written directly with the libraries (not through nf-image) ---- */

/* rows: height rows of packed samples as libpng expects for (ctype, depth); 16-bit
 * samples big-endian. palette/trans only for PNG_COLOR_TYPE_PALETTE. */
static gboolean
write_png_raw (const char *path, int w, int h, int ctype, int depth, int interlace,
    guint8 **rows, const png_color *palette, int n_palette, const guint8 *trans,
    int n_trans)
{
  FILE *f = fopen (path, "wb");
  if (!f)
    return FALSE;
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct (png);
  if (setjmp (png_jmpbuf (png))) {
    png_destroy_write_struct (&png, &info);
    fclose (f);
    return FALSE;
  }
  png_init_io (png, f);
  png_set_IHDR (png, info, w, h, depth, ctype, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
      PNG_FILTER_TYPE_DEFAULT);
  if (palette)
    png_set_PLTE (png, info, palette, n_palette);
  if (trans)
    png_set_tRNS (png, info, trans, n_trans, NULL);
  png_write_info (png, info);
  png_write_image (png, rows);
  png_write_end (png, NULL);
  png_destroy_write_struct (&png, &info);
  fclose (f);
  return TRUE;
}

static gboolean
write_grey_jpeg (const char *path, int w, int h, const guint8 *grey)
{
  FILE *f = fopen (path, "wb");
  if (!f)
    return FALSE;
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  c.err = jpeg_std_error (&err);
  jpeg_create_compress (&c);
  jpeg_stdio_dest (&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 1;
  c.in_color_space = JCS_GRAYSCALE;
  jpeg_set_defaults (&c);
  jpeg_set_quality (&c, 95, TRUE);
  jpeg_start_compress (&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW) grey + (gsize) c.next_scanline * w;
    jpeg_write_scanlines (&c, &row, 1);
  }
  jpeg_finish_compress (&c);
  jpeg_destroy_compress (&c);
  fclose (f);
  return TRUE;
}

/* ---- tests ------------------------------------------------------------------ */

static void
test_png_round_trip (void)
{
  int sizes[][2] = { { 1, 1 }, { 37, 23 }, { 64, 9 } };
  for (int s = 0; s < 3; s++) {
    NfImage *img = random_image (sizes[s][0], sizes[s][1], 100 + s);
    char *path = tmp_path ("rt.png");
    GError *e = NULL;
    gboolean ok = nf_image_save (img, path, &e);
    CHECK (ok, "save %s: %s", path, e ? e->message : "");
    g_clear_error (&e);
    NfImage *back = nf_image_load (path, &e);
    CHECK (back != NULL, "load %s: %s", path, e ? e->message : "");
    g_clear_error (&e);
    if (back) {
      int nd = count_diff (img, back);
      printf ("png round trip %dx%d: %d differing bytes (must be 0)\n", img->width,
          img->height, nd);
      CHECK (nd == 0, "png round trip not exact");
    }
    nf_image_free (back);
    nf_image_free (img);
    g_unlink (path);
    g_free (path);
  }
}

static void
test_jpeg_round_trip (void)
{
  const char *names[] = { "rt.jpg", "rt.JPEG" };
  for (int i = 0; i < 2; i++) {
    NfImage *img = smooth_image (96, 64);
    char *path = tmp_path (names[i]);
    GError *e = NULL;
    gboolean ok = nf_image_save (img, path, &e);
    CHECK (ok, "save %s: %s", path, e ? e->message : "");
    g_clear_error (&e);
    NfImage *back = nf_image_load (path, &e);
    CHECK (back != NULL, "load %s: %s", path, e ? e->message : "");
    g_clear_error (&e);
    if (back) {
      CHECK (back->width == 96 && back->height == 64, "jpeg size %dx%d", back->width,
          back->height);
      double p = back->width == 96 && back->height == 64 ? psnr (img, back) : 0;
      printf ("jpeg round trip %s 96x64 smooth: PSNR %.2f dB (must be > 30)\n", names[i], p);
      CHECK (p > 30.0, "jpeg PSNR %.2f too low", p);
    }
    nf_image_free (back);
    nf_image_free (img);
    g_unlink (path);
    g_free (path);
  }
}

/* Other PNG flavours, each with the RGB it must decode to. */
static void
test_png_flavours (void)
{
  const int w = 13, h = 7;
  NfRng rng;
  nf_rng_seed (&rng, 5);
  guint8 *base = g_malloc (w * h * 4);          /* random RGBA source */
  for (int i = 0; i < w * h * 4; i++)
    base[i] = nf_rng_u32 (&rng) & 0xff;
  NfImage *expect = nf_image_new (w, h);
  guint8 *data = g_malloc0 (w * h * 8);
  guint8 **rows = g_new (guint8 *, h);

  struct {
    const char *what;
    int ctype, depth, interlace, bytes_per_px;
  } cases[] = {
    { "grey 8-bit", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, 1 },
    { "grey 16-bit", PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, 2 },
    { "grey+alpha 8-bit", PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, 2 },
    { "RGBA 8-bit", PNG_COLOR_TYPE_RGBA, 8, PNG_INTERLACE_NONE, 4 },
    { "RGB 16-bit", PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, 6 },
    { "RGBA 16-bit interlaced", PNG_COLOR_TYPE_RGBA, 16, PNG_INTERLACE_ADAM7, 8 },
    { "RGB 8-bit interlaced", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, 3 },
    { "palette 8-bit + tRNS", PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE, 1 },
    { "grey 1-bit", PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, 0 },
  };
  png_color palette[16];
  guint8 trans[16];
  for (int i = 0; i < 16; i++) {
    palette[i].red = (png_byte) (i * 16);
    palette[i].green = (png_byte) (255 - i * 9);
    palette[i].blue = (png_byte) (i * 37 % 256);
    trans[i] = (guint8) (i * 17);
  }

  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++) {
    int stride = cases[c].bytes_per_px ? w * cases[c].bytes_per_px : (w + 7) / 8;
    memset (data, 0, w * h * 8);
    for (int y = 0; y < h; y++) {
      rows[y] = data + (gsize) y * stride;
      for (int x = 0; x < w; x++) {
        const guint8 *s = base + (y * w + x) * 4;
        guint8 *d = rows[y] + x * cases[c].bytes_per_px;
        guint8 *e = expect->rgb + (y * w + x) * 3;
        switch (c) {
          case 0:
            d[0] = e[0] = e[1] = e[2] = s[0];
            break;
          case 1:               /* v*257: scaled back to 8 bits exactly */
            d[0] = d[1] = e[0] = e[1] = e[2] = s[0];
            break;
          case 2:
            d[0] = e[0] = e[1] = e[2] = s[0];
            d[1] = s[3];
            break;
          case 3:
            memcpy (d, s, 4);
            memcpy (e, s, 3);
            break;
          case 4:
          case 5:
            for (int k = 0; k < (c == 4 ? 3 : 4); k++)
              d[2 * k] = d[2 * k + 1] = s[k];
            memcpy (e, s, 3);
            break;
          case 6:
            memcpy (d, s, 3);
            memcpy (e, s, 3);
            break;
          case 7: {
            int idx = s[0] & 15;
            d[0] = (guint8) idx;
            e[0] = palette[idx].red;
            e[1] = palette[idx].green;
            e[2] = palette[idx].blue;
            break;
          }
          case 8: {
            int bit = s[0] & 1;
            if (bit)
              rows[y][x / 8] |= (guint8) (0x80 >> (x % 8));
            e[0] = e[1] = e[2] = bit ? 255 : 0;
            break;
          }
        }
      }
    }
    char *path = tmp_path ("flavour.png");
    gboolean ok = write_png_raw (path, w, h, cases[c].ctype, cases[c].depth,
        cases[c].interlace, rows, c == 7 ? palette : NULL, 16, c == 7 ? trans : NULL, 16);
    CHECK (ok, "could not write test PNG %s", cases[c].what);
    GError *e = NULL;
    NfImage *img = nf_image_load (path, &e);
    CHECK (img != NULL, "load %s: %s", cases[c].what, e ? e->message : "");
    g_clear_error (&e);
    if (img) {
      int nd = count_diff (img, expect);
      printf ("png %-24s -> RGB: %d differing bytes (must be 0)\n", cases[c].what, nd);
      CHECK (nd == 0, "png %s decoded wrongly", cases[c].what);
    }
    nf_image_free (img);
    g_unlink (path);
    g_free (path);
  }
  g_free (rows);
  g_free (data);
  g_free (base);
  nf_image_free (expect);
}

static void
test_grey_jpeg (void)
{
  const int w = 40, h = 24;
  guint8 *grey = g_malloc (w * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      grey[y * w + x] = (guint8) (40 + 4 * x + 2 * y);
  char *path = tmp_path ("grey.jpg");
  CHECK (write_grey_jpeg (path, w, h, grey), "could not write grey JPEG");
  GError *e = NULL;
  NfImage *img = nf_image_load (path, &e);
  CHECK (img != NULL, "load grey jpeg: %s", e ? e->message : "");
  g_clear_error (&e);
  if (img) {
    int maxd = 0, not_grey = 0;
    for (int i = 0; i < w * h; i++) {
      const guint8 *p = img->rgb + i * 3;
      not_grey += p[0] != p[1] || p[1] != p[2];
      maxd = MAX (maxd, abs ((int) p[0] - grey[i]));
    }
    printf ("grey jpeg -> RGB: %d non-grey pixels (must be 0), max diff %d (must be <= 4)\n",
        not_grey, maxd);
    CHECK (img->width == w && img->height == h && not_grey == 0 && maxd <= 4,
        "grey jpeg decoded wrongly");
  }
  nf_image_free (img);
  g_unlink (path);
  g_free (path);
  g_free (grey);
}

static void
test_planar (void)
{
  float ranges[][2] = { { 0, 255 }, { 0, 1 }, { -1, 1 }, { -123.68f, 131.32f } };
  NfImage *img = nf_image_new (256, 2);
  for (int i = 0; i < 256; i++) {
    /* every value in every channel, in two different orders */
    img->rgb[i * 3 + 0] = (uint8_t) i;
    img->rgb[i * 3 + 1] = (uint8_t) (255 - i);
    img->rgb[i * 3 + 2] = (uint8_t) (i * 7);
    img->rgb[(256 + i) * 3 + 0] = (uint8_t) (i * 3);
    img->rgb[(256 + i) * 3 + 1] = (uint8_t) (i * 5);
    img->rgb[(256 + i) * 3 + 2] = (uint8_t) (255 - i);
  }
  float *planar = nf_alloc_floats (256 * 2 * 3);
  NfImage *back = nf_image_new (256, 2);
  for (gsize r = 0; r < G_N_ELEMENTS (ranges); r++) {
    float lo = ranges[r][0], hi = ranges[r][1];
    nf_image_to_planar (img, planar, lo, hi);
    /* layout and values: channel c of pixel i at c*plane + i, lo + (hi-lo)*u/255 */
    double maxe = 0;
    for (int i = 0; i < 512; i++)
      for (int c = 0; c < 3; c++) {
        double want = lo + (hi - lo) * img->rgb[i * 3 + c] / 255.0;
        maxe = fmax (maxe, fabs (planar[c * 512 + i] - want));
      }
    memset (back->rgb, 0x55, 512 * 3);
    nf_image_from_planar (back, planar, lo, hi);
    int nd = count_diff (img, back);
    double tol = 1e-6 * fmax (fabs (lo), fabs (hi));
    printf ("planar %g..%g: max value error %.2e (tol %.1e), round trip %d differing bytes "
        "(must be 0)\n", lo, hi, maxe, tol, nd);
    CHECK (maxe <= tol, "to_planar values off for %g..%g", lo, hi);
    CHECK (nd == 0, "planar round trip not exact for %g..%g", lo, hi);
  }
  /* clamping and rounding: 0..1 range */
  float vals[] = { -5.0f, NAN, 2.0f, INFINITY, -INFINITY, 0.5f / 255, 0.49f / 255,
    254.6f / 255 };
  uint8_t want[] = { 0, 0, 255, 255, 0, 1, 0, 255 };
  NfImage *one = nf_image_new (1, 1);
  for (gsize i = 0; i < G_N_ELEMENTS (vals); i++) {
    float px[3] = { vals[i], vals[i], vals[i] };
    nf_image_from_planar (one, px, 0.0f, 1.0f);
    CHECK (one->rgb[0] == want[i] && one->rgb[2] == want[i],
        "from_planar(%g) = %d, want %d", vals[i], one->rgb[0], want[i]);
  }
  nf_image_free (one);
  nf_image_free (back);
  nf_image_free (img);
  nf_free (planar);
}

/* path must fail to load with an error of the given code that names the file. */
static void
expect_load_error (const char *path, int code, const char *what)
{
  GError *e = NULL;
  NfImage *img = nf_image_load (path, &e);
  CHECK (img == NULL && e != NULL, "%s: loaded without error", what);
  if (e) {
    CHECK (e->domain == NF_ERROR && e->code == code, "%s: error code %d, want %d (%s)", what,
        e->code, code, e->message);
    CHECK (strstr (e->message, path) != NULL, "%s: message does not name the file: %s",
        what, e->message);
    if (g_getenv ("NF_VERBOSE"))
      printf ("  %s: %s\n", what, e->message);
  }
  g_clear_error (&e);
  nf_image_free (img);
}

static void
test_bad_files (void)
{
  gboolean quick = g_getenv ("NF_QUICK") != NULL;
  NfImage *img = random_image (31, 17, 9);
  NfImage *smooth = smooth_image (48, 40);
  char *png = tmp_path ("good.png"), *jpg = tmp_path ("good.jpg");
  char *bad = tmp_path ("bad.png");
  CHECK (nf_image_save (img, png, NULL), "save png");
  CHECK (nf_image_save (smooth, jpg, NULL), "save jpg");
  int n_checked = 0;

  /* truncated at many lengths: every one must fail */
  for (int f = 0; f < 2; f++) {
    guint8 *data = NULL;
    gsize len = 0;
    CHECK (g_file_get_contents (f ? jpg : png, (char **) &data, &len, NULL), "read back");
    gsize step = quick ? len / 7 + 1 : len / 61 + 1;
    for (gsize cut = 1; cut < len; cut += step) {
      write_bytes (bad, data, cut);
      expect_load_error (bad, NF_ERROR_FORMAT, f ? "truncated jpeg" : "truncated png");
      n_checked++;
    }
    for (gsize cut = len - 3; cut < len; cut++) {     /* only the trailer missing */
      write_bytes (bad, data, cut);
      expect_load_error (bad, NF_ERROR_FORMAT, f ? "jpeg without its end" : "png without IEND");
      n_checked++;
    }
    /* corrupted body: the header kept, the rest random */
    NfRng rng;
    nf_rng_seed (&rng, 77 + f);
    for (int t = 0; t < (quick ? 2 : 10); t++) {
      guint8 *c = g_memdup2 (data, len);
      gsize keep = f ? 2 + t * 20 : 8 + t * 8;
      for (gsize i = keep; i < len; i++)
        c[i] = nf_rng_u32 (&rng) & 0xff;
      write_bytes (bad, c, len);
      GError *e = NULL;
      NfImage *r = nf_image_load (bad, &e);
      /* a random body must never crash; JPEG may occasionally decode garbage */
      if (!f)
        CHECK (r == NULL && e != NULL, "corrupt png loaded");
      g_clear_error (&e);
      nf_image_free (r);
      g_free (c);
      n_checked++;
    }
    g_free (data);
  }

  /* garbage and empty files, unknown formats, missing files */
  write_bytes (bad, "hello, this is not an image at all", 34);
  expect_load_error (bad, NF_ERROR_FORMAT, "text file");
  write_bytes (bad, "", 0);
  expect_load_error (bad, NF_ERROR_FORMAT, "empty file");
  write_bytes (bad, "GIF89a\x01\x00\x01\x00", 10);
  expect_load_error (bad, NF_ERROR_FORMAT, "GIF file");
  write_bytes (bad, "\x89PNG\r\n\x1a\n", 8);
  expect_load_error (bad, NF_ERROR_FORMAT, "PNG signature only");
  write_bytes (bad, "\xff\xd8\xff", 3);
  expect_load_error (bad, NF_ERROR_FORMAT, "JPEG SOI only");
  char *missing = tmp_path ("does-not-exist.png");
  expect_load_error (missing, NF_ERROR_IO, "missing file");
  expect_load_error (tmpdir, NF_ERROR_IO, "directory");
  n_checked += 7;
  printf ("bad files: %d cases, all refused with an error naming the file\n", n_checked);

  /* saving */
  GError *e = NULL;
  char *unknown = tmp_path ("out.bmp");
  CHECK (!nf_image_save (img, unknown, &e) && e && e->code == NF_ERROR_ARGUMENT,
      "save .bmp: %s", e ? e->message : "succeeded");
  g_clear_error (&e);
  CHECK (!g_file_test (unknown, G_FILE_TEST_EXISTS), "save .bmp left a file");
  char *nodir = g_build_filename (tmpdir, "no", "such", "dir.png", NULL);
  CHECK (!nf_image_save (img, nodir, &e) && e && e->code == NF_ERROR_IO
      && strstr (e->message, "dir.png"), "save into missing dir: %s",
      e ? e->message : "succeeded");
  g_clear_error (&e);

  CHECK (nf_image_new (0, 5) == NULL && nf_image_new (5, -1) == NULL, "nf_image_new(0, 5)");

  g_unlink (png);
  g_unlink (jpg);
  g_unlink (bad);
  g_free (png);
  g_free (jpg);
  g_free (bad);
  g_free (missing);
  g_free (unknown);
  g_free (nodir);
  nf_image_free (img);
  nf_image_free (smooth);
}

int
main (void)
{
  GError *e = NULL;
  tmpdir = g_dir_make_tmp ("nf-test-image-XXXXXX", &e);
  if (!tmpdir) {
    printf ("FAIL: cannot make a temporary directory: %s\n", e->message);
    g_error_free (e);
    return 1;
  }
  test_png_round_trip ();
  test_jpeg_round_trip ();
  test_png_flavours ();
  test_grey_jpeg ();
  test_planar ();
  test_bad_files ();
  g_rmdir (tmpdir);
  g_free (tmpdir);
  printf ("%s (%d failures)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
