/* nf-recipe.c — the run recipe: defaults, checks, JSON both ways, option entries, and
 * the learning-rate schedule, all driven by one table of fields.
 *
 * What it does: see nf-recipe.h. The table below is the single list of every setting.
 * What it does not: load data or models.
 */
#include "nf-recipe.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "nf-error.h"
#include "nf-jsonw.h"
#include "nf-portable-path.h"

#ifndef NF_SOURCE_ROOT
#define NF_SOURCE_ROOT "."
#endif

/* The perceptual weight of --loss mix: pixel MSE (0..255 units) + this x relu2_2 MSE.
 * On bicubic-quality outputs (blur-bicubic, x2 and x4) relu2_2 MSE is ~270x the pixel
 * MSE and its gradient ~260-310x larger, so at 1e-3 the perceptual term adds about a
 * quarter of the pixel term's pull: PSNR stays the main objective (training/README.md,
 * "SR loss weights"). */
#define MIX_CONTENT_WEIGHT 0.001

typedef enum { F_STR, F_STRV, F_INT, F_INT64, F_DOUBLE, F_BOOL } FieldType;
typedef enum { G_RECIPE, G_RECIPE_RESUMABLE, G_RUN } FieldGroup;

typedef struct {
  const char *key;              /* JSON key and option name */
  FieldType type;
  size_t offset;
  FieldGroup group;
  const char *help;
  const char *arg;              /* argument placeholder */
  const char *option;           /* option name when not the key (NULL: the key) */
} Field;

#define OFF(f) G_STRUCT_OFFSET (NfRecipe, f)

static const Field fields[] = {
  {"task", F_STR, OFF (task), G_RECIPE, NULL, NULL},
  {"arch", F_STR, OFF (arch), G_RECIPE,
      "Architecture: style-full|style-slim|style-rt|style-rt-multi (style), "
      "sr-johnson|sr-subpixel|sr-light (sr)", "A"},
  {"scale", F_INT, OFF (scale), G_RECIPE, "SR upscale factor (4; sr-johnson: 2 or 4)", "S"},
  {"width", F_INT, OFF (width), G_RECIPE, "Base channels (0: the architecture's default)", "N"},
  {"res-blocks", F_INT, OFF (n_res), G_RECIPE,
      "Residual blocks (sr-light: body convolutions; 0: default)", "N"},
  {"data", F_STRV, OFF (data), G_RECIPE,
      "Training image folder, searched recursively (repeatable; default "
      "$NF_SHARED_DATA/photos for style, .../sr-train for sr)", "DIR"},
  {"split", F_STR, OFF (split), G_RECIPE,
      "Which files to train on: train|val|all (train)", "S"},
  {"val-percent", F_INT, OFF (val_percent), G_RECIPE,
      "Files whose FNV-1a name hash mod 100 is below this are validation (10)", "P"},
  {"exclude", F_STRV, OFF (exclude), G_RECIPE, "Leave out this base name (repeatable)", "NAME"},
  {"crop", F_INT, OFF (crop), G_RECIPE, "Training patch side (style 256, sr 288 HR)", "N"},
  {"crop-mode", F_STR, OFF (crop_mode), G_RECIPE,
      "short: scale the shorter side to crop*zoom first (style); native: scale by zoom "
      "(sr)", "M"},
  {"zoom-min", F_DOUBLE, OFF (zoom_min), G_RECIPE, "Smallest zoom (1)", "Z"},
  {"zoom-max", F_DOUBLE, OFF (zoom_max), G_RECIPE, "Largest zoom (style 2, sr 1)", "Z"},
  {"flip", F_BOOL, OFF (flip), G_RECIPE, "Random horizontal flips (on; --no-flip)", NULL},
  {"min-side", F_INT, OFF (min_side), G_RECIPE,
      "Skip files whose shorter side is below this (0: what the crop needs)", "N"},
  {"batch", F_INT, OFF (batch), G_RECIPE, "Batch size (4)", "N"},
  {"iters", F_INT, OFF (iters), G_RECIPE_RESUMABLE,
      "Optimiser steps in all (style 40000, sr 200000); raise it on resume to extend", "N"},
  {"seed", F_INT64, OFF (seed), G_RECIPE, "Seed of weights, shuffling and crops (1)", "S"},
  {"lr", F_DOUBLE, OFF (lr), G_RECIPE, "Adam learning rate (1e-3)", "LR"},
  {"anneal", F_STR, OFF (anneal), G_RECIPE,
      "Learning-rate schedule: none|step|cosine (cosine)", "A"},
  {"warmup", F_INT, OFF (warmup), G_RECIPE,
      "Linear learning-rate warm-up over the first N steps (style 0, sr 500)", "N"},
  {"rewarmup", F_INT, OFF (rewarmup), G_RECIPE_RESUMABLE,
      "When resume raises --iters: ramp the learning rate linearly over N steps from where "
      "the run stopped to the longer schedule (500; 0: jump)", "N"},
  {"extend-at", F_INT, OFF (extend_at), G_RECIPE, NULL, NULL},
  {"extend-lr", F_DOUBLE, OFF (extend_lr), G_RECIPE, NULL, NULL},
  {"lr-step", F_INT, OFF (lr_step), G_RECIPE, "step: multiply by --lr-gamma every N steps",
      "N"},
  {"lr-gamma", F_DOUBLE, OFF (lr_gamma), G_RECIPE, "step: factor (0.1)", "G"},
  {"lr-min", F_DOUBLE, OFF (lr_min), G_RECIPE, "cosine: final learning rate (1e-5)", "LR"},
  {"beta1", F_DOUBLE, OFF (beta1), G_RECIPE, "Adam beta1 (0.9)", "B"},
  {"beta2", F_DOUBLE, OFF (beta2), G_RECIPE, "Adam beta2 (0.999)", "B"},
  {"adam-eps", F_DOUBLE, OFF (adam_eps), G_RECIPE, "Adam epsilon (1e-8)", "E"},
  {"weight-decay", F_DOUBLE, OFF (weight_decay), G_RECIPE, "Decoupled weight decay (0)", "W"},
  {"lossnet", F_STR, OFF (lossnet), G_RECIPE,
      "VGG safetensors (default $NF_LOSSNET, else shared/data/lossnets/vgg16-...)", "PATH"},
  {"pool", F_STR, OFF (pool), G_RECIPE, "Loss network pooling max|avg (max)", "P"},
  {"style-image", F_STR, OFF (style_image), G_RECIPE, NULL, NULL},
  /* --style-image fills this list; finalize keeps the first as style-image, the list only
   * when it has several (nf-trainer-styles.h) */
  {"style-images", F_STRV, OFF (style_images), G_RECIPE,
      "style: the painting; repeated (with --arch style-rt-multi), one network for all of "
      "them, a style per painting named by its file stem", "IMG", "style-image"},
  {"style-size", F_INT, OFF (style_size), G_RECIPE,
      "style: long side the painting is scaled to for its Gram targets (256)", "N"},
  {"content-layer", F_STR, OFF (content_layer), G_RECIPE,
      "Content / perceptual layer (relu2_2)", "L"},
  {"content-weight", F_DOUBLE, OFF (content_weight), G_RECIPE,
      "Content (sr: perceptual) loss weight (style 1; sr from --loss)", "W"},
  {"style-layers", F_STR, OFF (style_layers), G_RECIPE,
      "style: Gram layers (relu1_2,relu2_2,relu3_3)", "L1,L2"},
  {"style-layer-weights", F_STR, OFF (style_layer_weights), G_RECIPE,
      "style: per-layer weights (all 1)", "W1,W2"},
  {"style-weight", F_DOUBLE, OFF (style_weight), G_RECIPE, "style: style loss weight (0.5; see training/README.md)", "W"},
  {"tv-strength", F_DOUBLE, OFF (tv_strength), G_RECIPE,
      "Total variation as Johnson's tv_strength: weight of the SUM of squared neighbour "
      "differences of the 0..255 output over the batch (1e-6; sr: from --loss)", "W"},
  {"loss", F_STR, OFF (loss), G_RECIPE,
      "sr: perceptual (relu2_2) | pixel (MSE) | mix (pixel + 0.001 x perceptual)", "L"},
  {"pixel-weight", F_DOUBLE, OFF (pixel_weight), G_RECIPE,
      "sr: pixel MSE weight, 0..255 units (from --loss)", "W"},
  {"degrade", F_STR, OFF (degrade), G_RECIPE,
      "sr: bicubic (antialiased, MATLAB imresize: the standard benchmark degradation; default) | "
      "blur-bicubic (Gaussian sigma, then bicubic; Johnson) | video (bicubic, noise, JPEG)",
      "D"},
  {"blur-sigma", F_DOUBLE, OFF (blur_sigma), G_RECIPE, "sr: blur-bicubic's Gaussian sigma in HR pixels (1)",
      "S"},
  {"stability-weight", F_DOUBLE, OFF (stability_weight), G_RECIPE,
      "style: weight of the temporal stability term: the network also sees each crop shifted "
      "and with sensor noise, and mean (f(T x + n) - T f(x))^2 (0..255 units) is added (0: off)",
      "W"},
  {"stability-shift", F_INT, OFF (stability_shift), G_RECIPE,
      "style: the stability term's largest shift in pixels (4)", "N"},
  {"stability-noise", F_DOUBLE, OFF (stability_noise), G_RECIPE,
      "style: the stability term's largest noise sigma in levels (4)", "S"},
  {"video-noise", F_DOUBLE, OFF (video_noise), G_RECIPE,
      "sr video degradation: largest Gaussian noise sigma, levels (2)", "S"},
  {"video-jpeg-min", F_INT, OFF (video_jpeg_min), G_RECIPE,
      "sr video degradation: lowest JPEG quality (40)", "Q"},
  {"video-jpeg-max", F_INT, OFF (video_jpeg_max), G_RECIPE,
      "sr video degradation: highest JPEG quality (90)", "Q"},
  {"bn-stats", F_STR, OFF (bn_stats), G_RECIPE,
      "sr-johnson batch norm statistics: data (from the first batch, then frozen) | unit",
      "S"},
  {"name", F_STR, OFF (name), G_RECIPE, "Model name in the weight file's metadata", "NAME"},
  {"license", F_STR, OFF (license), G_RECIPE, "Licence string for the weight file", "L"},
  {"init", F_STR, OFF (init), G_RECIPE,
      "Start from this weight file's tensors (same architecture; fine-tuning) instead of "
      "seeded random weights", "FILE"},
  {"run", F_STR, OFF (run_dir), G_RUN,
      "Run folder: checkpoint, loss log, previews (required)", "DIR"},
  {"output", F_STR, OFF (output), G_RUN, "Final weight file (RUN/model.safetensors)", "FILE"},
  {"backend", F_STR, OFF (backend), G_RUN,
      "auto|cpu|cpu-ref|cuda|cuda-fp16 (auto: from --device; on the CPU, cpu when it has "
      "backward passes, else cpu-ref; on the GPU, cuda)", "B"},
  {"device", F_STR, OFF (device), G_RUN,
      "auto|cpu|cuda (auto: cuda when a GPU is usable and the CUDA backend has backward "
      "passes, else the CPU)", "D"},
  {"gpus", F_INT, OFF (gpus), G_RUN,
      "Data-parallel training on GPUs 0..N-1 (NCCL all-reduce of the gradient; 1)", "N"},
  {"print-every", F_INT, OFF (print_every), G_RUN, "Progress line every N steps (10)", "N"},
  {"log-every", F_INT, OFF (log_every), G_RUN, "CSV loss log row every N steps (10)", "N"},
  {"preview-every", F_INT, OFF (preview_every), G_RUN,
      "Preview image every N steps (500; 0: never)", "N"},
  {"checkpoint-every", F_INT, OFF (checkpoint_every), G_RUN,
      "Checkpoint every N steps (500; also on Ctrl-C and at the end)", "N"},
  {"preview", F_STRV, OFF (preview), G_RUN,
      "Preview image (repeatable; default: the first validation files)", "IMG"},
  {"preview-count", F_INT, OFF (preview_count), G_RUN,
      "How many validation files to preview by default (4)", "N"},
  {"preview-size", F_INT, OFF (preview_size), G_RUN,
      "Preview long side (style) / HR crop side (sr) (256)", "N"},
  {"loader-depth", F_INT, OFF (loader_depth), G_RUN, "Batches the loader prepares ahead (3)",
      "N"},
};

#define FIELD(r, f) ((guint8 *) (r) + (f)->offset)

/* The fields that hold file paths: absolute in a run (nf_recipe_finalize), portable
 * (nf-portable-path.h) in a weight file's "training" metadata. */
static const char *const path_keys[] = { "data", "lossnet", "style-image", "style-images",
  "init", "run", "output", "preview", NULL
};

const char *const *
nf_recipe_path_keys (void)
{
  return path_keys;
}

/* Replaces every path of r by map (path). */
static void
map_paths (NfRecipe *r, char *(*map) (const char *))
{
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++) {
    const Field *f = &fields[i];
    if (!g_strv_contains (path_keys, f->key))
      continue;
    if (f->type == F_STR) {
      char **p = (char **) FIELD (r, f), *m = map (*p);
      g_free (*p);
      *p = m;
    }
    for (char **v = f->type == F_STRV ? *(char ***) FIELD (r, f) : NULL; v && *v; v++) {
      char *m = map (*v);
      g_free (*v);
      *v = m;
    }
  }
}

static void
set_str (char **dst, const char *v)
{
  g_free (*dst);
  *dst = g_strdup (v);
}

NfRecipe *
nf_recipe_new (const char *task, GError **error)
{
  gboolean style = task && g_str_equal (task, "style");
  gboolean sr = task && g_str_equal (task, "sr");
  if (!style && !sr) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "unknown task \"%s\" (style or sr)",
        task ? task : "");
    return NULL;
  }
  NfRecipe *r = g_new0 (NfRecipe, 1);
  r->task = g_strdup (task);
  r->arch = g_strdup (style ? "style-full" : "sr-johnson");
  r->scale = style ? 1 : 4;
  r->split = g_strdup ("train");
  r->val_percent = 10;
  r->crop = style ? 256 : 288;
  r->crop_mode = g_strdup (style ? "short" : "native");
  r->zoom_min = 1.0;
  r->zoom_max = style ? 2.0 : 1.0;
  r->flip = TRUE;
  r->batch = 4;
  r->iters = style ? 40000 : 200000;
  r->seed = 1;
  r->lr = 1e-3;
  r->anneal = g_strdup ("cosine");
  r->warmup = style ? 0 : 500;
  r->rewarmup = 500;
  r->lr_step = 0;
  r->lr_gamma = 0.1;
  r->lr_min = 1e-5;
  r->beta1 = 0.9;
  r->beta2 = 0.999;
  r->adam_eps = 1e-8;
  r->pool = g_strdup ("max");
  r->style_size = 256;
  r->content_layer = g_strdup ("relu2_2");
  r->content_weight = style ? 1.0 : -1.0;
  r->style_layers = g_strdup ("relu1_2,relu2_2,relu3_3");
  r->style_weight = 0.5;
  r->tv_strength = style ? 1e-6 : -1.0;
  r->loss = g_strdup ("perceptual");
  r->pixel_weight = style ? 0.0 : -1.0;
  r->degrade = g_strdup ("bicubic");
  r->blur_sigma = 1.0;
  r->stability_weight = 0.0;
  r->stability_shift = 4;
  r->stability_noise = 4.0;
  r->video_noise = 2.0;
  r->video_jpeg_min = 40;
  r->video_jpeg_max = 90;
  r->bn_stats = g_strdup ("data");
  r->backend = g_strdup ("auto");
  r->device = g_strdup ("auto");
  r->gpus = 1;
  r->print_every = 10;
  r->log_every = 10;
  r->preview_every = 500;
  r->checkpoint_every = 500;
  r->preview_count = 4;
  r->preview_size = 256;
  r->loader_depth = 3;
  return r;
}

void
nf_recipe_free (NfRecipe *r)
{
  if (!r)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++) {
    const Field *f = &fields[i];
    if (f->type == F_STR)
      g_free (*(char **) FIELD (r, f));
    else if (f->type == F_STRV)
      g_strfreev (*(char ***) FIELD (r, f));
  }
  g_free (r);
}

NfRecipe *
nf_recipe_copy (const NfRecipe *r)
{
  NfRecipe *c = g_new (NfRecipe, 1);
  *c = *r;
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++) {
    const Field *f = &fields[i];
    if (f->type == F_STR)
      *(char **) FIELD (c, f) = g_strdup (*(char **) FIELD (r, f));
    else if (f->type == F_STRV)
      *(char ***) FIELD (c, f) = g_strdupv (*(char ***) FIELD (r, f));
  }
  return c;
}

char *
nf_shared_data_dir (void)
{
  const char *env = g_getenv ("NF_SHARED_DATA");
  if (env && *env)
    return g_strdup (env);
  return g_build_filename (NF_SOURCE_ROOT, "..", "shared", "data", NULL);
}

static char *
absolute (const char *p)
{
  if (!p)
    return NULL;
  char *a = g_canonicalize_filename (p, NULL);
  return a;
}

static void
make_absolute (char **p)
{
  if (*p) {
    char *a = absolute (*p);
    g_free (*p);
    *p = a;
  }
}

static gboolean
one_of (const char *v, const char *const *allowed)
{
  return v && g_strv_contains (allowed, v);
}

static gboolean
bad (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
bad (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *m = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, NF_ERROR, NF_ERROR_ARGUMENT, m);
  g_free (m);
  return FALSE;
}

/* --style-image given once or more: the first is the painting; a list of several is a
 * network for all of them (style-rt-multi), their file stems (the style names) distinct. */
static gboolean
check_style_images (NfRecipe *r, GError **error)
{
  int n = r->style_images ? (int) g_strv_length (r->style_images) : 0;
  if (n > 0)
    set_str (&r->style_image, r->style_images[0]);
  if (n == 1)
    g_clear_pointer (&r->style_images, g_strfreev);
  if (n > 1 && !g_str_equal (r->arch, "style-rt-multi"))
    return bad (error, "%d --style-image: one network for several styles is --arch "
        "style-rt-multi (%s holds one style)", n, r->arch);
  if (n > 1024)
    return bad (error, "%d --style-image: at most 1024 styles", n);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++) {
      char *a = g_path_get_basename (r->style_images[i]);
      char *b = g_path_get_basename (r->style_images[j]);
      char *da = strrchr (a, '.'), *db = strrchr (b, '.');
      if (da && da != a)
        *da = '\0';
      if (db && db != b)
        *db = '\0';
      gboolean same = g_str_equal (a, b);
      g_free (a);
      g_free (b);
      if (same)
        return bad (error, "--style-image %s and %s: the styles are named after the file "
            "stems, which must differ", r->style_images[j], r->style_images[i]);
    }
  return TRUE;
}

gboolean
nf_recipe_finalize (NfRecipe *r, GError **error)
{
  gboolean style = g_str_equal (r->task, "style");
  static const char *const style_archs[] = { "style-full", "style-slim", "style-rt",
    "style-rt-multi", NULL
  };
  static const char *const sr_archs[] = { "sr-johnson", "sr-subpixel", "sr-light", NULL };
  static const char *const splits[] = { "train", "val", "all", NULL };
  static const char *const modes[] = { "short", "native", NULL };
  static const char *const anneals[] = { "none", "step", "cosine", NULL };
  static const char *const losses[] = { "perceptual", "pixel", "mix", NULL };
  static const char *const degrades[] = { "blur-bicubic", "bicubic", "video", NULL };
  static const char *const bnstats[] = { "data", "unit", NULL };
  static const char *const pools[] = { "max", "avg", NULL };

  if (!one_of (r->arch, style ? style_archs : sr_archs))
    return bad (error, "--arch %s: a %s network is one of %s", r->arch, r->task,
        style ? "style-full, style-slim, style-rt, style-rt-multi"
        : "sr-johnson, sr-subpixel, sr-light");
  if (style)
    r->scale = 1;
  else if (g_str_equal (r->arch, "sr-johnson") ? (r->scale != 2 && r->scale != 4)
      : (r->scale < 2 || r->scale > 4))
    return bad (error, "--scale %d: %s upscales by %s", r->scale, r->arch,
        g_str_equal (r->arch, "sr-johnson") ? "2 or 4" : "2, 3 or 4");
  if (!one_of (r->split, splits))
    return bad (error, "--split %s: train, val or all", r->split);
  if (r->val_percent < 0 || r->val_percent > 100)
    return bad (error, "--val-percent %d: 0..100", r->val_percent);
  if (!one_of (r->crop_mode, modes))
    return bad (error, "--crop-mode %s: short or native", r->crop_mode);
  int mult = style ? 4 : r->scale;
  if (r->crop < 16 || r->crop > 4096 || r->crop % mult)
    return bad (error, "--crop %d: 16..4096 and a multiple of %d (%s)", r->crop, mult,
        style ? "the style network downsamples twice" : "the scale");
  if (!(r->zoom_min > 0) || r->zoom_max < r->zoom_min || r->zoom_max > 64)
    return bad (error, "--zoom-min %g --zoom-max %g: need 0 < min <= max <= 64", r->zoom_min,
        r->zoom_max);
  if (r->batch < 1 || r->batch > 256)
    return bad (error, "--batch %d: 1..256", r->batch);
  if (r->iters < 1)
    return bad (error, "--iters %d: at least 1", r->iters);
  if (!(r->lr > 0) || !one_of (r->anneal, anneals))
    return bad (error, "--lr %g --anneal %s: a positive rate and none, step or cosine", r->lr,
        r->anneal);
  if (r->warmup < 0 || r->warmup >= r->iters)
    return bad (error, "--warmup %d: 0 up to fewer than --iters %d", r->warmup, r->iters);
  if (r->rewarmup < 0)
    return bad (error, "--rewarmup %d: at least 0", r->rewarmup);
  if (r->extend_at < 0 || !(r->extend_lr >= 0))
    return bad (error, "recipe extend-at %d / extend-lr %g: not negative", r->extend_at,
        r->extend_lr);
  /* a negative gamma flips the rate's sign; one above 1 grows it without bound (to
   * infinity over a long run) */
  if (!(r->lr_min >= 0) || !(r->lr_gamma > 0 && r->lr_gamma <= 1))
    return bad (error, "--lr-min %g --lr-gamma %g: lr-min not negative, lr-gamma in (0, 1] "
        "(a step schedule decays the rate)", r->lr_min, r->lr_gamma);
  if (g_str_equal (r->anneal, "step") && r->lr_step < 1)
    r->lr_step = MAX (1, r->iters * 3 / 4);
  if (!(r->beta1 >= 0 && r->beta1 < 1 && r->beta2 >= 0 && r->beta2 < 1 && r->adam_eps > 0))
    return bad (error, "Adam: beta1, beta2 in [0, 1) and eps > 0");
  if (!one_of (r->pool, pools))
    return bad (error, "--pool %s: max or avg", r->pool);
  if (!one_of (r->bn_stats, bnstats))
    return bad (error, "--bn-stats %s: data or unit", r->bn_stats);
  if (style) {
    if (!check_style_images (r, error))
      return FALSE;
    if (!r->style_image)
      return bad (error, "style training needs --style-image");
    if (r->style_size < 16)
      return bad (error, "--style-size %d: at least 16", r->style_size);
    if (!(r->stability_weight >= 0) || r->stability_shift < 0 || r->stability_shift > 32
        || !(r->stability_noise >= 0) || (r->stability_weight > 0 && r->stability_shift == 0
            && r->stability_noise == 0))
      return bad (error, "--stability-weight >= 0, --stability-shift 0..32, --stability-noise "
          ">= 0, and a shift or noise when the weight is on");
    r->pixel_weight = 0.0;
  } else {
    if (!one_of (r->loss, losses))
      return bad (error, "--loss %s: perceptual, pixel or mix", r->loss);
    if (!one_of (r->degrade, degrades))
      return bad (error, "--degrade %s: bicubic, blur-bicubic or video", r->degrade);
    if (r->video_noise < 0 || r->video_jpeg_min < 1 || r->video_jpeg_max > 100
        || r->video_jpeg_min > r->video_jpeg_max)
      return bad (error, "--video-noise >= 0 and 1 <= --video-jpeg-min <= --video-jpeg-max "
          "<= 100");
    gboolean pix = g_str_equal (r->loss, "pixel"), mix = g_str_equal (r->loss, "mix");
    if (r->pixel_weight < 0)
      r->pixel_weight = pix || mix ? 1.0 : 0.0;
    if (r->content_weight < 0)
      r->content_weight = pix ? 0.0 : mix ? MIX_CONTENT_WEIGHT : 1.0;
    if (r->tv_strength < 0)
      r->tv_strength = pix || mix ? 0.0 : 1e-6;
    g_clear_pointer (&r->style_image, g_free);
    g_clear_pointer (&r->style_images, g_strfreev);
  }
  if (r->content_weight < 0 || r->style_weight < 0 || r->tv_strength < 0 || r->pixel_weight < 0)
    return bad (error, "loss weights cannot be negative");
  if (!style && r->content_weight == 0 && r->pixel_weight == 0)
    return bad (error, "both the pixel and the perceptual weight are 0: nothing to train");

  char *shared = nf_shared_data_dir ();
  if (!r->data || !r->data[0]) {
    g_strfreev (r->data);
    r->data = g_new0 (char *, 2);
    r->data[0] = g_build_filename (shared, style ? "photos" : "sr-train", NULL);
  }
  gboolean need_vgg = style || r->content_weight > 0;
  if (need_vgg && !r->lossnet) {
    const char *env = g_getenv ("NF_LOSSNET");
    r->lossnet = env && *env ? g_strdup (env)
        : g_build_filename (shared, "lossnets", "vgg16-conv1_1-conv3_3.safetensors", NULL);
  }
  g_free (shared);
  if (!r->name) {
    if (style) {
      char *b = g_path_get_basename (r->style_image);
      char *dot = strrchr (b, '.');
      if (dot)
        *dot = '\0';
      int n = r->style_images ? (int) g_strv_length (r->style_images) : 1;
      r->name = n > 1 ? g_strdup_printf ("%s-%d-styles", r->arch, n)
          : g_strdup_printf ("%s-%s", r->arch, b);
      g_free (b);
    } else {
      r->name = g_strdup_printf ("%s-x%d-%s", r->arch, r->scale, r->loss);
    }
  }
  if (!r->run_dir)
    return bad (error, "--run DIR is required (checkpoints, logs and previews go there)");
  make_absolute (&r->run_dir);
  if (!r->output)
    r->output = g_build_filename (r->run_dir, "model.safetensors", NULL);
  make_absolute (&r->output);
  make_absolute (&r->style_image);
  for (int i = 0; r->style_images && r->style_images[i]; i++)
    make_absolute (&r->style_images[i]);
  make_absolute (&r->lossnet);
  make_absolute (&r->init);
  for (int i = 0; r->data[i]; i++)
    make_absolute (&r->data[i]);
  for (int i = 0; r->preview && r->preview[i]; i++)
    make_absolute (&r->preview[i]);
  if (r->print_every < 1 || r->log_every < 1 || r->preview_every < 0 || r->checkpoint_every < 0
      || r->preview_size < 16 || r->loader_depth < 1 || r->preview_count < 0)
    return bad (error, "--print-every/--log-every >= 1, --preview-every/--checkpoint-every "
        ">= 0, --preview-size >= 16, --loader-depth >= 1");
  return TRUE;
}

/* ---- JSON ------------------------------------------------------------------------- */

static char *
recipe_json (const NfRecipe *r, gboolean with_run_settings)
{
  GString *s = g_string_new ("{");
  gboolean first = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++) {
    const Field *f = &fields[i];
    if (f->group == G_RUN && !with_run_settings)
      continue;
    const guint8 *p = FIELD (r, f);
    if (f->type == F_STR && !*(char *const *) p)
      continue;
    if (f->option && !*(char **const *) p)      /* style-images: only with several */
      continue;
    nf_jsonw_key (s, f->key, first);
    first = FALSE;
    switch (f->type) {
      case F_STR:
        nf_jsonw_string (s, *(char *const *) p);
        break;
      case F_STRV:{
        char *const *v = *(char **const *) p;
        g_string_append_c (s, '[');
        for (int k = 0; v && v[k]; k++) {
          if (k)
            g_string_append_c (s, ',');
          nf_jsonw_string (s, v[k]);
        }
        g_string_append_c (s, ']');
        break;
      }
      case F_INT:
        g_string_append_printf (s, "%d", *(const int *) p);
        break;
      case F_INT64:
        g_string_append_printf (s, "%" G_GINT64_FORMAT, *(const gint64 *) p);
        break;
      case F_DOUBLE:
        nf_jsonw_double (s, *(const double *) p);
        break;
      case F_BOOL:
        g_string_append (s, *(const gboolean *) p ? "true" : "false");
        break;
    }
  }
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

char *
nf_recipe_to_json (const NfRecipe *r, gboolean with_run_settings)
{
  if (with_run_settings)        /* checkpoints: absolute paths, resumable from anywhere */
    return recipe_json (r, TRUE);
  NfRecipe *c = nf_recipe_copy (r);     /* weight-file metadata: portable paths */
  map_paths (c, nf_portable_path);
  char *j = recipe_json (c, FALSE);
  nf_recipe_free (c);
  return j;
}

static gboolean
update_from_object (NfRecipe *r, JsonObject *o, GError **error)
{
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (fields) && ok; i++) {
    const Field *f = &fields[i];
    JsonNode *n = json_object_get_member (o, f->key);
    if (!n)
      continue;
    guint8 *p = FIELD (r, f);
    GType vt = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
    gboolean in_range = TRUE;
    switch (f->type) {
      case F_STR:
        ok = vt == G_TYPE_STRING;
        /* JSON-GLib turns a lone surrogate escape ("\ud800") into bytes that are not
         * UTF-8, which no JSON writer may store */
        in_range = !ok || g_utf8_validate (json_node_get_string (n), -1, NULL);
        if (ok && in_range)
          set_str ((char **) p, json_node_get_string (n));
        break;
      case F_STRV:{
        ok = JSON_NODE_HOLDS_ARRAY (n);
        JsonArray *a = ok ? json_node_get_array (n) : NULL;
        guint len = a ? json_array_get_length (a) : 0;
        for (guint k = 0; k < len && ok && in_range; k++) {   /* strings only: no null, number, list */
          JsonNode *e = json_array_get_element (a, k);
          ok = JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_STRING;
          in_range = !ok || g_utf8_validate (json_node_get_string (e), -1, NULL);
        }
        if (!ok || !in_range)
          break;
        char **v = g_new0 (char *, len + 1);
        for (guint k = 0; k < len; k++)
          v[k] = g_strdup (json_array_get_string_element (a, k));
        g_strfreev (*(char ***) p);
        *(char ***) p = v;
        break;
      }
      case F_INT:
      case F_INT64:
        ok = vt == G_TYPE_INT64;
        if (ok && f->type == F_INT) {
          gint64 v = json_node_get_int (n);
          in_range = v >= G_MININT && v <= G_MAXINT;
          if (in_range)
            *(int *) p = (int) v;
        } else if (ok)
          *(gint64 *) p = json_node_get_int (n);
        break;
      case F_DOUBLE:
        ok = vt == G_TYPE_DOUBLE || vt == G_TYPE_INT64;
        if (ok) {
          /* 1e999 parses as infinity, which the writer could only store as null */
          double v = json_node_get_double (n);
          in_range = isfinite (v);
          if (in_range)
            *(double *) p = v;
        }
        break;
      case F_BOOL:
        ok = vt == G_TYPE_BOOLEAN;
        if (ok)
          *(gboolean *) p = json_node_get_boolean (n);
        break;
    }
    if (!ok)
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "recipe JSON: \"%s\" has the wrong type",
          f->key);
    else if (!in_range && (f->type == F_STR || f->type == F_STRV)) {
      ok = FALSE;
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "recipe JSON: \"%s\" is not valid UTF-8 "
          "text (a lone surrogate escape?)", f->key);
    } else if (!in_range) {
      ok = FALSE;
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "recipe JSON: \"%s\" is out of range "
          "(%s)", f->key, f->type == F_INT ? "a 32-bit integer" : "a finite number");
    }
  }
  return ok;
}

/* The root object of json, or NULL with an error. */
static JsonParser *
parse_object (const char *json, JsonObject **obj, GError **error)
{
  JsonParser *parser = json_parser_new ();
  GError *e = NULL;
  if (!json_parser_load_from_data (parser, json, -1, &e)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "recipe JSON: %s", e->message);
    g_error_free (e);
    g_object_unref (parser);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "recipe JSON is not an object");
    g_object_unref (parser);
    return NULL;
  }
  *obj = json_node_get_object (root);
  return parser;
}

gboolean
nf_recipe_update_from_json (NfRecipe *r, const char *json, GError **error)
{
  JsonObject *o;
  JsonParser *parser = parse_object (json, &o, error);
  if (!parser)
    return FALSE;
  gboolean ok = update_from_object (r, o, error);
  g_object_unref (parser);
  return ok;
}

NfRecipe *
nf_recipe_from_training_metadata (const char *training, GError **error)
{
  JsonObject *o;
  JsonParser *parser = training ? parse_object (training, &o, error) : NULL;
  if (!parser) {
    if (!training)
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "no \"training\" metadata");
    return NULL;
  }
  JsonNode *rn = json_object_get_member (o, "recipe");
  JsonObject *ro = rn && JSON_NODE_HOLDS_OBJECT (rn) ? json_node_get_object (rn) : NULL;
  JsonNode *tn = ro ? json_object_get_member (ro, "task") : NULL;
  NfRecipe *r = NULL;
  if (!tn || !JSON_NODE_HOLDS_VALUE (tn) || json_node_get_value_type (tn) != G_TYPE_STRING)
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "the \"training\" metadata has no recipe with a task (not written by nf-train?)");
  else if ((r = nf_recipe_new (json_node_get_string (tn), error))
      && !update_from_object (r, ro, error))
    g_clear_pointer (&r, nf_recipe_free);
  if (r)                        /* relative paths are relative to the source root */
    map_paths (r, nf_portable_path_resolve);
  g_object_unref (parser);
  return r;
}

/* ---- options ------------------------------------------------------------------------ */

GOptionEntry *
nf_recipe_option_entries (NfRecipe *r, gboolean run_settings_only)
{
  GOptionEntry *e = g_new0 (GOptionEntry, G_N_ELEMENTS (fields) + 1);
  int n = 0;
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++) {
    const Field *f = &fields[i];
    if (!f->help || (run_settings_only && f->group == G_RECIPE))
      continue;
    GOptionEntry *o = &e[n++];
    o->long_name = f->option ? f->option : f->key;
    o->description = f->help;
    o->arg_description = f->arg;
    o->arg_data = FIELD (r, f);
    switch (f->type) {
      case F_STR:
        o->arg = g_strv_contains (path_keys, f->key) ? G_OPTION_ARG_FILENAME
            : G_OPTION_ARG_STRING;
        break;
      case F_STRV:
        o->arg = G_OPTION_ARG_FILENAME_ARRAY;
        break;
      case F_INT:
        o->arg = G_OPTION_ARG_INT;
        break;
      case F_INT64:
        o->arg = G_OPTION_ARG_INT64;
        break;
      case F_DOUBLE:
        o->arg = G_OPTION_ARG_DOUBLE;
        break;
      case F_BOOL:           /* the one boolean, flip, is on by default */
        o->arg = G_OPTION_ARG_NONE;
        o->long_name = "no-flip";
        o->flags = G_OPTION_FLAG_REVERSE;
        break;
    }
  }
  return e;
}

static double
schedule_lr_at (const NfRecipe *r, guint64 step)
{
  if (step < (guint64) r->warmup)
    return r->lr * (step + 1.0) / r->warmup;
  if (g_str_equal (r->anneal, "step") && r->lr_step > 0)
    return r->lr * pow (r->lr_gamma, (double) (step / (guint64) r->lr_step));
  if (g_str_equal (r->anneal, "cosine")) {
    double t = MIN ((double) step / MAX (r->iters, 1), 1.0);
    return r->lr_min + (r->lr - r->lr_min) * 0.5 * (1.0 + cos (G_PI * t));
  }
  return r->lr;
}

double
nf_recipe_lr_at (const NfRecipe *r, guint64 step)
{
  double lr = schedule_lr_at (r, step);
  if (r->extend_at > 0 && step >= (guint64) r->extend_at
      && step < (guint64) r->extend_at + (guint64) r->rewarmup) {
    double f = (step - (guint64) r->extend_at + 1.0) / r->rewarmup;
    lr = r->extend_lr + (lr - r->extend_lr) * f;
  }
  return lr;
}

void
nf_recipe_mark_extension (NfRecipe *r, int old_iters, guint64 steps_done)
{
  if (r->iters <= old_iters || steps_done == 0)
    return;
  int new_iters = r->iters;
  r->iters = old_iters;
  double last = nf_recipe_lr_at (r, steps_done - 1);   /* the rate of the last step done */
  r->iters = new_iters;
  r->extend_at = (int) steps_done;
  r->extend_lr = last;
}
