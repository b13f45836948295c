/* fuzz-seeds.c — writes the seed corpora of the fuzz targets: small valid inputs that
 * show the fuzzer each format's structure.
 *
 *   fuzz-seeds OUTDIR [WEIGHTS_DIR]
 *
 *   OUTDIR/model/   every architecture (nf_arch_new_model, as nf-init makes them) at
 *                   width 1 and 1 residual block (style-full 2 and 2), each scale,
 *                   stored f32 and f16; a TransformerNet state_dict (no graph)
 *   OUTDIR/image/   PNGs of every colour type and bit depth (grey 1/8/16, grey+alpha,
 *                   palette with tRNS, RGB 8/16, RGBA, interlaced) and JPEGs (baseline
 *                   4:2:0 and 4:4:4, grey, progressive 4:2:0 and 4:4:4), 5x3 and 9x7
 *                   pixels
 *   OUTDIR/recipe/  the recipe JSON of both tasks as a checkpoint stores it (with run
 *                   settings) and as the training metadata holds it; with WEIGHTS_DIR,
 *                   the "training" metadata of every *.safetensors there
 * Exit codes: 0 written, 1 a file could not be written, 2 usage error.
 * What it does not: mutate anything (libFuzzer does), or write the regression inputs
 * (those are committed in tests/fuzz/regress/).
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <jpeglib.h>
#include <png.h>

#include "nf-arch.h"
#include "nf-model.h"
#include "nf-recipe.h"
#include "nf-safetensors.h"

static int failures = 0;

static void
fail (const char *what, GError *e)
{
  fprintf (stderr, "fuzz-seeds: %s%s%s\n", what, e ? ": " : "", e ? e->message : "");
  g_clear_error (&e);
  failures++;
}

static void
write_text (const char *dir, const char *name, const char *text)
{
  char *path = g_build_filename (dir, name, NULL);
  GError *e = NULL;
  if (!g_file_set_contents (path, text, -1, &e))
    fail (path, e);
  g_free (path);
}

/* ---- models ------------------------------------------------------------------------ */

static void
write_models (const char *dir)
{
  static const struct { const char *arch; int scale; } specs[] = {
    {"style-slim", 1}, {"style-full", 1}, {"sr-johnson", 2}, {"sr-johnson", 4},
    {"sr-subpixel", 2}, {"sr-subpixel", 3}, {"sr-subpixel", 4},
  };
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++) {
    /* style-full at width 2 and 2 blocks: at 1 and 1 it would be style-slim's graph */
    gboolean full = g_str_equal (specs[i].arch, "style-full");
    NfArchSpec spec = { .arch = specs[i].arch, .scale = specs[i].scale, .width = full ? 2 : 1,
      .n_res = full ? 2 : 1 };
    GError *e = NULL;
    NfModel *m = nf_arch_new_model (&spec, 1 + i, &e);
    if (!m) {
      fail (specs[i].arch, e);
      continue;
    }
    for (int f16 = 0; f16 <= 1; f16++) {
      char *name = g_strdup_printf ("%s-x%d-%s.safetensors", specs[i].arch, specs[i].scale,
          f16 ? "f16" : "f32");
      char *path = g_build_filename (dir, name, NULL);
      if (!nf_model_save (m, path, f16 ? NF_DTYPE_F16 : NF_DTYPE_F32, &e))
        fail (path, e);
      g_free (path);
      g_free (name);
    }
    nf_model_free (m);
  }
}

/* A PyTorch fast_neural_style TransformerNet state_dict (no graph: recognised by its
 * tensor names, conv weights under NAME.conv2d.weight) of style-full at width 1, with a
 * running-stat tensor that the loader ignores. */
static void
write_transformer_net (const char *dir)
{
  NfArchSpec spec = { .arch = "style-full", .width = 1, .n_res = 1 };
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&spec, 9, &e);
  if (!m) {
    fail ("transformernet", e);
    return;
  }
  NfStWriter *w = nf_st_writer_new ();
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, m->tensors);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    const NfModelTensor *t = v;
    const char *dot = strrchr (k, '.');         /* conv1.weight, res1.conv2.bias, ... */
    char *layer = g_strndup (k, dot - (const char *) k);
    const char *last = strrchr (layer, '.') ? strrchr (layer, '.') + 1 : layer;
    char *name = g_str_has_prefix (last, "conv") || g_str_has_prefix (last, "deconv")
        ? g_strconcat (layer, ".conv2d", dot, NULL) : g_strdup (k);
    nf_st_writer_add (w, name, NF_DTYPE_F32, t->ndim, t->dims, t->data);
    if (g_str_equal (k, "in1.weight")) {
      char *stat = g_strconcat (layer, ".running_mean", NULL);
      nf_st_writer_add (w, stat, NF_DTYPE_F32, t->ndim, t->dims, t->data);
      g_free (stat);
    }
    g_free (name);
    g_free (layer);
  }
  char *path = g_build_filename (dir, "transformernet.safetensors", NULL);
  if (!nf_st_writer_write (w, path, &e))
    fail (path, e);
  g_free (path);
  nf_st_writer_free (w);
  nf_model_free (m);
}

/* ---- images ------------------------------------------------------------------------ */

/* A PNG of w x h with the given IHDR; samples are a pattern of the right bit depth. */
static void
write_png (const char *dir, const char *name, int w, int h, int ctype, int depth,
    int interlace)
{
  char *path = g_build_filename (dir, name, NULL);
  FILE *f = g_fopen (path, "wb");
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct (png);
  int channels = ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_PALETTE ? 1
      : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : ctype == PNG_COLOR_TYPE_RGB ? 3 : 4;
  gsize rowbytes = ((gsize) w * channels * depth + 7) / 8;
  guint8 *pixels = g_malloc (rowbytes * h);
  png_bytep *rows = g_new (png_bytep, h);
  for (gsize i = 0; i < rowbytes * h; i++)
    pixels[i] = (guint8) (i * 37 + 11);
  if (ctype == PNG_COLOR_TYPE_PALETTE)  /* indices 0..3 at depth 8 */
    for (gsize i = 0; i < rowbytes * h; i++)
      pixels[i] &= 3;
  for (int y = 0; y < h; y++)
    rows[y] = pixels + (gsize) y * rowbytes;
  if (!f || !png || !info || setjmp (png_jmpbuf (png))) {
    fail (path, NULL);
  } else {
    png_init_io (png, f);
    png_set_IHDR (png, info, w, h, depth, ctype, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
        PNG_FILTER_TYPE_DEFAULT);
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
      png_color palette[4] = { {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 9, 9} };
      png_byte trans[2] = { 0, 128 };
      png_set_PLTE (png, info, palette, 4);
      png_set_tRNS (png, info, trans, 2, NULL);
    }
    png_write_info (png, info);
    png_write_image (png, rows);
    png_write_end (png, NULL);
  }
  png_destroy_write_struct (&png, &info);
  if (f)
    fclose (f);
  g_free (rows);
  g_free (pixels);
  g_free (path);
}

static void
write_jpeg (const char *dir, const char *name, int w, int h, gboolean grey,
    gboolean progressive, gboolean full_chroma)
{
  char *path = g_build_filename (dir, name, NULL);
  FILE *f = g_fopen (path, "wb");
  if (!f) {
    fail (path, NULL);
    g_free (path);
    return;
  }
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  c.err = jpeg_std_error (&err);        /* our own images: an error here exits */
  jpeg_create_compress (&c);
  jpeg_stdio_dest (&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = grey ? 1 : 3;
  c.in_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults (&c);
  jpeg_set_quality (&c, 90, TRUE);
  if (progressive)
    jpeg_simple_progression (&c);
  if (full_chroma && !grey)
    for (int i = 0; i < c.num_components; i++)
      c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  jpeg_start_compress (&c, TRUE);
  guint8 *row = g_malloc ((gsize) w * c.input_components);
  while (c.next_scanline < c.image_height) {
    for (int i = 0; i < w * c.input_components; i++)
      row[i] = (guint8) (i * 29 + c.next_scanline * 53);
    jpeg_write_scanlines (&c, &row, 1);
  }
  jpeg_finish_compress (&c);
  jpeg_destroy_compress (&c);
  fclose (f);
  g_free (row);
  g_free (path);
}

static void
write_images (const char *dir)
{
  write_png (dir, "rgb8.png", 5, 3, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE);
  write_png (dir, "rgb16.png", 5, 3, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE);
  write_png (dir, "rgba8.png", 5, 3, PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE);
  write_png (dir, "grey1.png", 9, 7, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE);
  write_png (dir, "grey8.png", 5, 3, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE);
  write_png (dir, "grey16.png", 5, 3, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE);
  write_png (dir, "greya8.png", 5, 3, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE);
  write_png (dir, "palette.png", 5, 3, PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE);
  write_png (dir, "interlaced.png", 9, 7, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7);
  write_jpeg (dir, "rgb420.jpg", 9, 7, FALSE, FALSE, FALSE);
  write_jpeg (dir, "rgb444.jpg", 5, 3, FALSE, FALSE, TRUE);
  write_jpeg (dir, "grey.jpg", 9, 7, TRUE, FALSE, FALSE);
  write_jpeg (dir, "progressive.jpg", 9, 7, FALSE, TRUE, FALSE);
  write_jpeg (dir, "progressive444.jpg", 5, 3, FALSE, TRUE, TRUE);
}

/* ---- recipes ----------------------------------------------------------------------- */

static void
write_recipes (const char *dir, const char *weights_dir)
{
  const char *tasks[] = { "style", "sr" };
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++) {
    GError *e = NULL;
    NfRecipe *r = nf_recipe_new (tasks[i], &e);
    if (!r) {
      fail (tasks[i], e);
      continue;
    }
    /* What a run stores: finalized, with a few list fields filled. */
    g_free (r->run_dir);
    r->run_dir = g_strdup ("runs/seed");
    if (i == 0) {
      g_free (r->style_image);
      r->style_image = g_strdup ("style/painting.jpg");
    }
    g_strfreev (r->exclude);
    r->exclude = g_strsplit ("a.jpg,b.png", ",", -1);
    if (!nf_recipe_finalize (r, &e))
      fail ("finalize", e);
    char *ckpt = nf_recipe_to_json (r, TRUE);
    char *recipe = nf_recipe_to_json (r, FALSE);
    char *training = g_strdup_printf ("{\"recipe\":%s,\"steps\":%d}", recipe, r->iters);
    char *name = g_strdup_printf ("%s-checkpoint.json", tasks[i]);
    write_text (dir, name, ckpt);
    g_free (name);
    name = g_strdup_printf ("%s-training.json", tasks[i]);
    write_text (dir, name, training);
    g_free (name);
    g_free (training);
    g_free (recipe);
    g_free (ckpt);
    nf_recipe_free (r);
  }
  if (!weights_dir)
    return;
  GDir *d = g_dir_open (weights_dir, 0, NULL);
  const char *f;
  while (d && (f = g_dir_read_name (d))) {
    if (!g_str_has_suffix (f, ".safetensors"))
      continue;
    char *path = g_build_filename (weights_dir, f, NULL);
    GError *e = NULL;
    NfSafetensors *st = nf_safetensors_load (path, &e);
    const char *training = st ? nf_safetensors_metadata (st, "training") : NULL;
    if (!st)
      fail (path, e);
    else if (training) {
      char *name = g_strdup_printf ("weights-%s.json", f);
      write_text (dir, name, training);
      g_free (name);
    }
    nf_safetensors_free (st);
    g_free (path);
  }
  if (d)
    g_dir_close (d);
}

int
main (int argc, char **argv)
{
  if (argc < 2 || argc > 3) {
    fprintf (stderr, "usage: fuzz-seeds OUTDIR [WEIGHTS_DIR]\n");
    return 2;
  }
  const char *sub[] = { "model", "image", "recipe" };
  char *dirs[3];
  for (int i = 0; i < 3; i++) {
    dirs[i] = g_build_filename (argv[1], sub[i], NULL);
    if (g_mkdir_with_parents (dirs[i], 0755) != 0) {
      fprintf (stderr, "fuzz-seeds: cannot create %s\n", dirs[i]);
      return 1;
    }
  }
  write_models (dirs[0]);
  write_transformer_net (dirs[0]);
  write_images (dirs[1]);
  write_recipes (dirs[2], argc > 2 ? argv[2] : NULL);
  for (int i = 0; i < 3; i++)
    g_free (dirs[i]);
  return failures ? 1 : 0;
}
