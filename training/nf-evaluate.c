/* nf-evaluate.c — scores trained models on held-out images.
 *
 *   nf-evaluate sr MODEL.safetensors... [--data DIR] [--split val|train|all]
 *       [--degrade bicubic|blur-bicubic|as-trained] [--blur-sigma S] [--csv FILE] [--save DIR]
 *   nf-evaluate style MODEL.safetensors... [--data DIR] [--style-image IMG] [--style NAME]
 *       [--style-size 256] [--size 256] [--layers relu1_2,relu2_2,relu3_3] [--csv FILE]
 *       [--save DIR]
 *   nf-evaluate flicker MODEL.safetensors... [--clip DIR]... [--data DIR] [--frames 40]
 *       [--size 384] [--noise 1.0] [--jpeg 90] [--style NAME] [--csv FILE]
 *   common: --val-percent P --exclude NAME --lossnet PATH --backend B --max-images N
 *
 * What it does: picks the images — by default the validation split (FNV-1a name hash,
 * nf-dataset.h) of the folders, split percentage and exclusions the model was trained
 * with (read from its "training" metadata), else of ../shared/data/{photos,sr-train}
 * with 10 % — and prints per image and per model:
 *   sr:    the standard SR benchmark protocol unless --degrade says otherwise: HR cropped
 *          to a multiple of the scale, LR by antialiased bicubic (MATLAB imresize), PSNR-Y
 *          and SSIM-Y (BT.601 luma, shave = scale) of the model, bicubic and Lanczos-3;
 *          the mean gain over bicubic per image folder and overall, against FSRCNN's
 *          BSD100 margin for the scale (x2 +2.0, x3 +1.3, x4 +1.0 dB);
 *   style: content loss (MSE of VGG16 relu2_2 between output and photo, caffe
 *          preprocessing, photos scaled to --size 256 on the long side), style loss (sum
 *          of Gram MSEs, weights 1, over --layers) of the output and of the unstyled
 *          photo (the baseline), and both against the bars (content <= 1.5e5,
 *          style <= baseline / 3); a multi-style model once per style (or --style's
 *          only), each against its own painting (nf-evaluate-style.c);
 *   flicker: the static flicker ratio and the warping error (definitions in nf-flicker.h)
 *          of the model's 8-bit output: on each --clip (a folder of frames in name order,
 *          e.g. from gst-launch ... ! pngenc ! multifilesink), else on synthetic static-
 *          camera clips made from the first --max-images (3) held-out photos scaled to
 *          --size on the long side (--frames frames, sensor noise of --noise levels,
 *          JPEG at --jpeg quality); the warping error on the clips' first frames; the
 *          issue's bars (network alone: ratio <= 2.0); a multi-style model in its first
 *          style, or --style's (labelled NAME/STYLE).
 * Definitions in nf-eval.h. --csv writes one row per model and image; --save writes the
 * outputs as PNG under DIR/<model name>/ (DIR/<model name>/<style>/ for a multi-style one).
 * This file: options, image selection, outputs, sr and flicker; the style task is in
 * nf-evaluate-style.c (shared declarations in nf-evaluate-private.h).
 * What it does not: train. Exit codes: 0 scored (whether or not a bar is met), 1 a file
 * or model failed, 2 usage error.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nf-dataset.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-eval.h"
#include "nf-evaluate-private.h"
#include "nf-flicker.h"
#include "nf-image.h"
#include "nf-recipe.h"
#include "nf-resize.h"
#include "nf-trainer.h"

/* FSRCNN's gain over bicubic on BSD100 (Dong et al. 2016, table 3), the bar. */
static double
psnr_bar (int scale)
{
  return scale == 2 ? 2.0 : scale == 3 ? 1.3 : 1.0;
}

static char **opt_data, **opt_exclude, *opt_split, *opt_degrade, *opt_csv, *opt_save;
static char *opt_style, *opt_layers, *opt_lossnet, *opt_backend, *opt_one_style;
static int opt_val_percent = -1, opt_style_size = 0, opt_size = 256, opt_max = 0;
static double opt_sigma = -1.0, opt_noise = -1.0;
static char **opt_clip;
static int opt_frames = 40, opt_jpeg = -1;

static GOptionEntry entries[] = {
  {"data", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_data,
      "Image folder (repeatable; default: the model's training folders)", "DIR"},
  {"split", 0, 0, G_OPTION_ARG_STRING, &opt_split, "val|train|all (val)", "S"},
  {"val-percent", 0, 0, G_OPTION_ARG_INT, &opt_val_percent,
      "Validation percentage of the split (default: the model's, else 10)", "P"},
  {"exclude", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_exclude, "Leave out this name", "NAME"},
  {"max-images", 0, 0, G_OPTION_ARG_INT, &opt_max, "Score at most N images (0: all)", "N"},
  {"degrade", 0, 0, G_OPTION_ARG_STRING, &opt_degrade,
      "sr: bicubic (the standard protocol; default) | blur-bicubic | video | as-trained", "D"},
  {"blur-sigma", 0, 0, G_OPTION_ARG_DOUBLE, &opt_sigma,
      "sr: blur-bicubic's Gaussian sigma (as trained, else 1)", "S"},
  {"style-image", 0, 0, G_OPTION_ARG_FILENAME, &opt_style,
      "style: the painting (default: the one the model was trained on; multi-style models: "
      "with --style only)", "IMG"},
  {"style", 0, 0, G_OPTION_ARG_STRING, &opt_one_style,
      "multi-style models: score this style only (a name or an index; style: default every "
      "style against its own painting, flicker: default the first)", "NAME"},
  {"style-size", 0, 0, G_OPTION_ARG_INT, &opt_style_size,
      "style: long side of the painting for its Gram targets (as trained, else 256)", "N"},
  {"size", 0, 0, G_OPTION_ARG_INT, &opt_size, "style: photos' long side (256)", "N"},
  {"layers", 0, 0, G_OPTION_ARG_STRING, &opt_layers,
      "style: Gram layers (relu1_2,relu2_2,relu3_3)", "L1,L2"},
  {"lossnet", 0, 0, G_OPTION_ARG_FILENAME, &opt_lossnet,
      "VGG16 safetensors (default $NF_LOSSNET, else shared/data/lossnets/" LOSSNET_FILE ")",
      "PATH"},
  {"backend", 0, 0, G_OPTION_ARG_STRING, &opt_backend, "cpu|cpu-ref|... (auto)", "B"},
  {"clip", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_clip,
      "flicker: a folder of frames, in name order (repeatable; default: synthetic static "
      "clips of held-out photos)", "DIR"},
  {"frames", 0, 0, G_OPTION_ARG_INT, &opt_frames, "flicker: frames per clip (40)", "N"},
  {"noise", 0, 0, G_OPTION_ARG_DOUBLE, &opt_noise,
      "flicker: synthetic clips' sensor noise sigma in levels (1.0); sr video: the largest "
      "noise sigma (as trained, else 2)", "S"},
  {"jpeg", 0, 0, G_OPTION_ARG_INT, &opt_jpeg,
      "flicker: synthetic clips' JPEG quality (90; 0: none); sr video: one JPEG quality (as "
      "trained: a range, else 40..90)", "Q"},
  {"csv", 0, 0, G_OPTION_ARG_FILENAME, &opt_csv, "Per-image scores as CSV", "FILE"},
  {"save", 0, 0, G_OPTION_ARG_FILENAME, &opt_save, "Write the outputs under DIR/<model>/", "DIR"},
  {NULL}
};

void
nfe_usage_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "nf-evaluate: ");
  vfprintf (stderr, fmt, ap);
  fprintf (stderr, "\nTry 'nf-evaluate --help'.\n");
  va_end (ap);
  exit (2);
}

void
nfe_fail (GError *e)
{
  fprintf (stderr, "nf-evaluate: %s\n", e->message);
  g_error_free (e);
  exit (1);
}

NfRecipe *
nfe_model_recipe (const NfModel *m)
{
  return nf_recipe_from_training_metadata (nf_model_get_metadata (m, "training"), NULL);
}

NfDataset *
nfe_images_for (const NfRecipe *r, gboolean style)
{
  char **dirs = opt_data;
  char **own = NULL;
  if (!dirs && r && r->data && r->data[0])
    dirs = r->data;
  if (!dirs) {
    char *shared = nf_shared_data_dir ();
    own = g_new0 (char *, 2);
    own[0] = g_build_filename (shared, style ? "photos" : "sr-train", NULL);
    g_free (shared);
    dirs = own;
  }
  NfSplit split = NF_SPLIT_VAL;
  if (opt_split && !nf_split_from_name (opt_split, &split))
    nfe_usage_error ("--split %s: val, train or all", opt_split);
  char **excl = opt_exclude ? opt_exclude : r ? r->exclude : NULL;
  NfDatasetOptions o = {.split = split,
    .val_percent = opt_val_percent >= 0 ? opt_val_percent : r ? r->val_percent : 10,
    .exclude = (const char *const *) excl,.min_side = 16
  };
  GError *e = NULL;
  NfDataset *ds = nf_dataset_open ((const char *const *) dirs, &o, &e);
  g_strfreev (own);
  if (!ds)
    nfe_fail (e);
  return ds;
}

static char *
base_name (const char *path)
{
  return g_path_get_basename (path);
}

void
nfe_save_output (const char *model_name, const char *image_path, const float *rgb, int w, int h)
{
  if (!opt_save || !rgb)
    return;
  char *dir = g_build_filename (opt_save, model_name, NULL);
  g_mkdir_with_parents (dir, 0755);
  char *b = base_name (image_path), *dot = strrchr (b, '.');
  if (dot)
    *dot = '\0';
  char *file = g_strconcat (b, ".png", NULL);
  char *path = g_build_filename (dir, file, NULL);
  NfImage *img = nf_image_new (w, h);
  nf_image_from_planar (img, rgb, 0.0f, 255.0f);
  GError *e = NULL;
  if (!nf_image_save (img, path, &e))
    nfe_fail (e);
  nf_image_free (img);
  g_free (path);
  g_free (file);
  g_free (b);
  g_free (dir);
}

static int
eval_sr (char **models, NfBackend *be, FILE *csv)
{
  if (csv)
    fprintf (csv, "model,image,width,height,psnr_y,ssim_y,bicubic_psnr_y,bicubic_ssim_y,"
        "lanczos_psnr_y,lanczos_ssim_y\n");
  for (int mi = 0; models[mi]; mi++) {
    GError *e = NULL;
    NfModel *m = nf_model_load (models[mi], &e);
    if (!m)
      nfe_fail (e);
    if (m->task != NF_TASK_SUPERRES)
      nfe_usage_error ("%s is a %s model, not superres", models[mi], nf_task_name (m->task));
    NfRecipe *r = nfe_model_recipe (m);
    /* the standard protocol by default; the model's own degradation on request */
    NfDegrade d = {.kind = NF_DEGRADE_BICUBIC,.sigma = 1.0,.scale = m->scale };
    gboolean as_trained = opt_degrade && g_str_equal (opt_degrade, "as-trained");
    if (r && (as_trained || (opt_degrade && g_str_equal (opt_degrade, "blur-bicubic"))))
      d.sigma = r->blur_sigma;
    if (as_trained && r)
      nf_degrade_kind_from_name (r->degrade, &d.kind);
    else if (as_trained)
      nfe_usage_error ("--degrade as-trained: %s has no training recipe", models[mi]);
    else if (opt_degrade && !nf_degrade_kind_from_name (opt_degrade, &d.kind))
      nfe_usage_error ("--degrade %s: bicubic, blur-bicubic, video or as-trained", opt_degrade);
    if (opt_sigma >= 0)
      d.sigma = opt_sigma;
    d.noise = opt_noise >= 0 ? opt_noise : r ? r->video_noise : 2.0;
    d.jpeg_min = opt_jpeg >= 0 ? opt_jpeg : r ? r->video_jpeg_min : 40;
    d.jpeg_max = opt_jpeg >= 0 ? opt_jpeg : r ? r->video_jpeg_max : 90;
    NfDataset *ds = nfe_images_for (r, FALSE);
    const char *name = nf_model_get_metadata (m, "name");
    name = name ? name : "model";
    int n = nf_dataset_size (ds);
    if (opt_max > 0)
      n = MIN (n, opt_max);
    printf ("%s (%s, x%d), %d images, protocol: %s\n", models[mi], name, m->scale, n,
        d.kind == NF_DEGRADE_BICUBIC ? "standard" : "NON-standard");
    printf ("  HR cropped to a multiple of %d, LR = ", m->scale);
    if (d.kind == NF_DEGRADE_BLUR_BICUBIC)
      printf ("Gaussian blur sigma %g, then ", d.sigma);
    printf ("antialiased bicubic downscale (MATLAB imresize) rounded to 8 bit");
    if (d.kind == NF_DEGRADE_VIDEO)
      printf (", Gaussian noise of sigma in [0, %g] levels and JPEG quality %d..%d (per image, "
          "seeded)", d.noise, d.jpeg_min, d.jpeg_max);
    printf (";\n  PSNR/SSIM on Y (BT.601), %d border pixels shaved\n", m->scale);
    printf ("  %-24s %9s  %7s %6s | %7s %6s | %7s %6s\n", "image", "size", "PSNR-Y", "SSIM",
        "bicubic", "SSIM", "lanczos", "SSIM");
    NfSrScores mean = { 0 };
    int scored = 0;
    GHashTable *folders = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
    GPtrArray *folder_order = g_ptr_array_new ();
    for (int i = 0; i < n; i++) {
      int w, h;
      float *hr = nf_load_planar (nf_dataset_path (ds, i), &w, &h, &e);
      NfSrScores s;
      d.seed = 7919u * (guint64) (i + 1);       /* the video draw of this image */
      float *out = NULL;
      if (!hr || !nf_eval_sr_image (m, be, &d, hr, w, h, &s, opt_save ? &out : NULL, &e)) {
        fprintf (stderr, "nf-evaluate: skipping %s: %s\n", nf_dataset_path (ds, i), e->message);
        g_clear_error (&e);
        nf_free (hr);
        continue;
      }
      char *b = base_name (nf_dataset_path (ds, i));
      char *size = g_strdup_printf ("%dx%d", s.w, s.h);
      printf ("  %-24s %9s  %7.3f %6.4f | %7.3f %6.4f | %7.3f %6.4f\n", b, size, s.psnr,
          s.ssim, s.psnr_bicubic, s.ssim_bicubic, s.psnr_lanczos, s.ssim_lanczos);
      if (csv)
        fprintf (csv, "%s,%s,%d,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", name, b, s.w, s.h, s.psnr,
            s.ssim, s.psnr_bicubic, s.ssim_bicubic, s.psnr_lanczos, s.ssim_lanczos);
      if (out)
        nfe_save_output (name, nf_dataset_path (ds, i), out, s.w, s.h);
      char *dir = g_path_get_dirname (nf_dataset_path (ds, i));
      char *folder = g_path_get_basename (dir);
      double *acc = g_hash_table_lookup (folders, folder);
      if (!acc) {
        acc = g_new0 (double, 3);
        g_ptr_array_add (folder_order, folder);
        g_hash_table_insert (folders, folder, acc);
      } else {
        g_free (folder);
      }
      g_free (dir);
      acc[0] += s.psnr;
      acc[1] += s.psnr_bicubic;
      acc[2] += 1.0;
      mean.psnr += s.psnr;
      mean.ssim += s.ssim;
      mean.psnr_bicubic += s.psnr_bicubic;
      mean.ssim_bicubic += s.ssim_bicubic;
      mean.psnr_lanczos += s.psnr_lanczos;
      mean.ssim_lanczos += s.ssim_lanczos;
      scored++;
      g_free (b);
      g_free (size);
      nf_free (out);
      nf_free (hr);
    }
    if (scored) {
      double k = 1.0 / scored;
      double gain = (mean.psnr - mean.psnr_bicubic) * k;
      printf ("  %-24s %9s  %7.3f %6.4f | %7.3f %6.4f | %7.3f %6.4f\n", "mean", "",
          mean.psnr * k, mean.ssim * k, mean.psnr_bicubic * k, mean.ssim_bicubic * k,
          mean.psnr_lanczos * k, mean.ssim_lanczos * k);
      for (guint f = 0; folder_order->len > 1 && f < folder_order->len; f++) {
        const char *fn = g_ptr_array_index (folder_order, f);
        const double *acc = g_hash_table_lookup (folders, fn);
        printf ("  %-24s %9s  %7.3f        | %7.3f        |  (%d images: bicubic %+.3f dB)\n",
            fn, "", acc[0] / acc[2], acc[1] / acc[2], (int) acc[2], (acc[0] - acc[1]) / acc[2]);
      }
      double bar = psnr_bar (m->scale);
      printf ("  %s: PSNR-Y %.3f dB = bicubic %+.3f dB (bar, FSRCNN's BSD100 margin at x%d: "
          "+%.1f dB, %s%s), Lanczos %+.3f dB; SSIM-Y %.4f (bicubic %.4f)\n", name,
          mean.psnr * k, gain, m->scale, bar, gain >= bar ? "met" : "NOT met",
          d.kind == NF_DEGRADE_BICUBIC ? "" : "; bar is for the standard protocol",
          (mean.psnr - mean.psnr_lanczos) * k, mean.ssim * k, mean.ssim_bicubic * k);
    }
    g_hash_table_destroy (folders);
    g_ptr_array_free (folder_order, TRUE);
    nf_dataset_free (ds);
    nf_recipe_free (r);
    nf_model_free (m);
  }
  return 0;
}

/* ---- flicker ---------------------------------------------------------------------- */

typedef struct {
  NfModel *m;
  NfEngine *eng;
} ModelFilter;

/* The model on a 0..255 frame, its output rounded and clamped to 8 bit as the element
 * delivers it (NfFrameFilter). */
static gboolean
model_filter (gpointer user, const float *in, int w, int h, float **out, int *ow, int *oh,
    GError **error)
{
  ModelFilter *f = user;
  NfModel *m = f->m;
  NfShape s = { 1, 3, h, w };
  size_t n = nf_shape_numel (s), no = n * m->scale * m->scale;
  float *x = nf_alloc_floats (n), *y = nf_alloc_floats (no);
  float a = (m->in_hi - m->in_lo) / 255.0f, b = 255.0f / (m->out_hi - m->out_lo);
  for (size_t i = 0; i < n; i++)
    x[i] = in[i] * a + m->in_lo;
  gboolean ok = nf_engine_run_host (f->eng, x, s, y, error);
  nf_free (x);
  if (!ok) {
    nf_free (y);
    return FALSE;
  }
  for (size_t i = 0; i < no; i++)
    y[i] = CLAMP (rintf ((y[i] - m->out_lo) * b), 0.0f, 255.0f);
  *out = y;
  *ow = w * m->scale;
  *oh = h * m->scale;
  return TRUE;
}

/* (3, h, w) -> the centred (3, h', w') crop with sides multiples of k. */
static float *
crop_to_multiple (const float *src, int w, int h, int k, int *cw, int *ch)
{
  *cw = w / k * k;
  *ch = h / k * k;
  int x0 = (w - *cw) / 2, y0 = (h - *ch) / 2;
  float *d = nf_alloc_floats ((size_t) 3 * *cw * *ch);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < *ch; y++)
      memcpy (d + ((size_t) c * *ch + y) * *cw, src + ((size_t) c * h + y0 + y) * w + x0,
          sizeof (float) * *cw);
  return d;
}

typedef struct {
  char *name;
  float **frames;
  int n, w, h;
} Clip;

static void
clip_clear (Clip *c)
{
  for (int i = 0; i < c->n; i++)
    nf_free (c->frames[i]);
  g_free (c->frames);
  g_free (c->name);
}

/* A folder of frames in name order, at most --frames, cropped to multiples of k. */
static gboolean
clip_from_dir (const char *dir, int k, Clip *c, GError **error)
{
  GDir *d = g_dir_open (dir, 0, error);
  if (!d)
    return FALSE;
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *e;
  while ((e = g_dir_read_name (d)))
    if (g_str_has_suffix (e, ".png") || g_str_has_suffix (e, ".jpg")
        || g_str_has_suffix (e, ".jpeg"))
      g_ptr_array_add (names, g_strdup (e));
  g_dir_close (d);
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  memset (c, 0, sizeof *c);
  c->name = g_path_get_basename (dir);
  c->frames = g_new0 (float *, MAX (names->len, 1));
  gboolean ok = names->len >= 2;
  if (!ok)
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: fewer than 2 frames (PNG/JPEG)", dir);
  for (guint i = 0; ok && i < names->len && c->n < opt_frames; i++) {
    char *path = g_build_filename (dir, (char *) names->pdata[i], NULL);
    int w, h;
    float *f = nf_load_planar (path, &w, &h, error);
    g_free (path);
    if (!f || (c->n && (w / k * k != c->w || h / k * k != c->h))) {
      if (f)
        g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: frames of different sizes", dir);
      nf_free (f);
      ok = FALSE;
      break;
    }
    c->frames[c->n++] = crop_to_multiple (f, w, h, k, &c->w, &c->h);
    nf_free (f);
  }
  g_ptr_array_free (names, TRUE);
  if (!ok)
    clip_clear (c);
  return ok;
}

static int
eval_flicker (char **models, NfBackend *be, FILE *csv)
{
  if (opt_noise < 0)
    opt_noise = 1.0;
  if (opt_jpeg < 0)
    opt_jpeg = 90;
  if (opt_frames < 2 || opt_jpeg > 100)
    nfe_usage_error ("--frames >= 2, --jpeg 0..100");
  GError *e = NULL;
  if (csv)
    fprintf (csv, "model,clip,input_change,output_change,ratio,warp_translate,warp_zoom\n");
  for (int mi = 0; models[mi]; mi++) {
    NfModel *m = nf_model_load (models[mi], &e);
    if (!m)
      nfe_fail (e);
    char *name = nfe_select_style (m, models[mi], opt_one_style);
    int k = MAX (m->size_multiple, 1);
    GArray *clips = g_array_new (FALSE, TRUE, sizeof (Clip));
    for (int i = 0; opt_clip && opt_clip[i]; i++) {
      Clip c;
      if (!clip_from_dir (opt_clip[i], k, &c, &e))
        nfe_fail (e);
      g_array_append_val (clips, c);
    }
    if (!opt_clip) {            /* synthetic static clips of held-out photos */
      NfRecipe *r = m->task == NF_TASK_STYLE ? nfe_model_recipe (m) : NULL;
      NfDataset *ds = nfe_images_for (r, TRUE);
      int n = MIN (nf_dataset_size (ds), opt_max > 0 ? opt_max : 3);
      for (int i = 0; i < n; i++) {
        int w, h, sw, sh;
        float *p = nf_load_planar (nf_dataset_path (ds, i), &w, &h, &e);
        if (!p)
          nfe_fail (e);
        nf_resize_fit (w, h, m->task == NF_TASK_STYLE ? opt_size : opt_size / 2, &sw, &sh);
        float *small = nf_alloc_floats ((size_t) 3 * sw * sh);
        nf_resize_planar (p, 3, h, w, small, sh, sw);
        Clip c = { base_name (nf_dataset_path (ds, i)), NULL, opt_frames, 0, 0 };
        float *cropped = crop_to_multiple (small, sw, sh, k, &c.w, &c.h);
        c.frames = nf_flicker_static_clip (cropped, c.w, c.h, opt_frames, opt_noise, opt_jpeg,
            1000 + i, &e);
        if (!c.frames)
          nfe_fail (e);
        g_array_append_val (clips, c);
        nf_free (cropped);
        nf_free (small);
        nf_free (p);
      }
      nf_dataset_free (ds);
      nf_recipe_free (r);
    }
    printf ("%s (%s): flicker on %u %s clips of %d frames (static: every channel changes by "
        "< 2 levels)%s\n", models[mi], name, clips->len, opt_clip ? "given" : "synthetic "
        "static-camera", opt_frames, opt_clip ? "" : "");
    if (!opt_clip)
      printf ("  synthetic: held-out photos at %d px long side, sensor noise sigma %.2g "
          "levels, JPEG quality %d per frame\n", m->task == NF_TASK_STYLE ? opt_size
          : opt_size / 2, opt_noise, opt_jpeg);
    printf ("  %-26s %9s %8s %8s %8s | %10s %8s\n", "clip", "size", "in", "out", "ratio",
        "warp-shift", "warp-zoom");
    ModelFilter mf = { m, nf_engine_new (m, be, NULL) };
    double sum_ratio = 0, sum_ws = 0, sum_wz = 0;
    int n_wz = 0;
    for (guint i = 0; i < clips->len; i++) {
      Clip *c = &g_array_index (clips, Clip, i);
      NfFlickerStatic st;
      NfWarpScore ws;
      if (!nf_flicker_static ((const float *const *) c->frames, c->n, c->w, c->h, 2.0,
              model_filter, &mf, &st, &e)
          || !nf_flicker_warp (c->frames[0], c->w, c->h, 16, model_filter, &mf, &ws, &e))
        nfe_fail (e);
      char size[32], zoom[32] = "-";
      g_snprintf (size, sizeof size, "%dx%d", c->w, c->h);
      if (ws.zoom_error >= 0)
        g_snprintf (zoom, sizeof zoom, "%.3f", ws.zoom_error);
      printf ("  %-26s %9s %8.3f %8.3f %8.2f | %10.3f %9s\n", c->name, size, st.input_change,
          st.output_change, st.ratio, ws.translate_error, zoom);
      if (csv)
        fprintf (csv, "%s,%s,%.6f,%.6f,%.6f,%.6f,%.6f\n", name, c->name, st.input_change,
            st.output_change, st.ratio, ws.translate_error, ws.zoom_error);
      sum_ratio += st.ratio;
      sum_ws += ws.translate_error;
      if (ws.zoom_error >= 0) {
        sum_wz += ws.zoom_error;
        n_wz++;
      }
    }
    if (clips->len) {
      double r = sum_ratio / clips->len;
      printf ("  %s: static flicker ratio %.2f (network alone, bar <= 2.0: %s), warping error "
          "%.3f levels (shifts)", name, r, r <= 2.0 ? "met" : "NOT met", sum_ws / clips->len);
      if (n_wz)
        printf (", %.3f (zoom)", sum_wz / n_wz);
      printf ("\n");
    }
    for (guint i = 0; i < clips->len; i++)
      clip_clear (&g_array_index (clips, Clip, i));
    g_array_free (clips, TRUE);
    nf_engine_free (mf.eng);
    nf_model_free (m);
    g_free (name);
  }
  return 0;
}

int
main (int argc, char **argv)
{
  GOptionContext *ctx = g_option_context_new ("sr|style|flicker MODEL... - score trained models on "
      "held-out images");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *e = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &e))
    nfe_usage_error ("%s", e->message);
  g_option_context_free (ctx);
  if (argc < 3)
    nfe_usage_error ("give the task (sr, style or flicker) and at least one model file");
  const char *task = argv[1];
  if (!g_str_equal (task, "sr") && !g_str_equal (task, "style") && !g_str_equal (task,
          "flicker"))
    nfe_usage_error ("unknown task \"%s\" (sr, style or flicker)", task);
  if (opt_size < 16)
    nfe_usage_error ("--size %d: at least 16", opt_size);
  NfBackend *be = nf_backend_new (opt_backend && !g_str_equal (opt_backend, "auto")
      ? opt_backend : nf_trainer_pick_backend ("auto"), &e);
  if (!be)
    nfe_fail (e);
  FILE *csv = NULL;
  if (opt_csv && !(csv = fopen (opt_csv, "w"))) {
    fprintf (stderr, "nf-evaluate: cannot write %s: %s\n", opt_csv, g_strerror (errno));
    return 1;
  }
  int rc = g_str_equal (task, "sr") ? eval_sr (argv + 2, be, csv)
      : g_str_equal (task, "flicker") ? eval_flicker (argv + 2, be, csv)
      : nfe_eval_style (argv + 2, be, csv, &(NfeStyleOptions) {.style_image = opt_style,
        .style = opt_one_style,.layers = opt_layers,.lossnet = opt_lossnet,
        .style_size = opt_style_size,.size = opt_size,.max_images = opt_max });
  if (csv)
    fclose (csv);
  nf_backend_free (be);
  return rc;
}
