/* nf-recipe-finalize.c — nf_recipe_finalize: the values a recipe derives (sr loss
 * weights from --loss, the default data and loss-network folders, name and output) and
 * the checks of every setting, each failure a message that names the option; every path
 * made absolute.
 *
 * What it does not: defaults (nf-recipe.c), JSON (nf-recipe-json.c), or look at the
 * files the recipe names.
 */
#include "nf-recipe-fields.h"

#include <math.h>
#include <string.h>

#include "nf-error.h"

/* The perceptual weight of --loss mix: pixel MSE (0..255 units) + this x relu2_2 MSE.
 * On bicubic-quality outputs (blur-bicubic, x2 and x4) relu2_2 MSE is ~270x the pixel
 * MSE and its gradient ~260-310x larger, so at 1e-3 the perceptual term adds about a
 * quarter of the pixel term's pull: PSNR stays the main objective (training/README.md,
 * "SR loss weights"). */
#define MIX_CONTENT_WEIGHT 0.001

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
    nf_recipe_set_str (&r->style_image, r->style_images[0]);
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
nf_recipe_style_factors (const NfRecipe *r, gboolean still, int n, double *out,
    GError **error)
{
  const char *list = still ? r->still_weights : r->style_weights;
  const char *option = still ? "--stability-still-weights" : "--style-weights";
  const char *single = still ? "--stability-still-weight" : "--style-weight";
  for (int i = 0; i < n; i++)
    out[i] = 1.0;
  if (!list)
    return TRUE;
  if (!r->arch || !g_str_equal (r->arch, "style-rt-multi") || n < 2)
    return bad (error, "%s %s: a factor per painting is for a network of several styles "
        "(--arch style-rt-multi, --style-image repeated); use %s", option, list, single);
  char **v = g_strsplit (list, ",", -1);
  int got = (int) g_strv_length (v);
  gboolean ok = got == n;
  for (int i = 0; ok && i < n; i++) {
    char *end;
    const char *s = g_strstrip (v[i]);
    out[i] = g_ascii_strtod (s, &end);
    ok = *s && !*end && isfinite (out[i]) && out[i] > 0 && out[i] <= 1000;
  }
  g_strfreev (v);
  if (!ok)
    return bad (error, "%s %s: %d factors above 0 (at most 1000), one per --style-image in "
        "order, separated by commas (%d given)", option, list, n, got);
  return TRUE;
}

gboolean
nf_recipe_finalize (NfRecipe *r, GError **error)
{
  gboolean style = g_str_equal (r->task, "style");
  static const char *const style_archs[] = { "style-full", "style-slim", "style-rt",
    "style-rt-multi", NULL
  };
  static const char *const sr_archs[] = { "sr-johnson", "sr-subpixel", "sr-light", "sr-light-y",
    NULL
  };
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
        : "sr-johnson, sr-subpixel, sr-light, sr-light-y");
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
    if (r->style_weights || r->still_weights) {
      int n = r->style_images ? (int) g_strv_length (r->style_images) : 1;
      double *f = g_new (double, n);
      gboolean ok = nf_recipe_style_factors (r, FALSE, n, f, error)
          && nf_recipe_style_factors (r, TRUE, n, f, error);
      g_free (f);
      if (!ok)
        return FALSE;
    }
    if (r->style_size < 16)
      return bad (error, "--style-size %d: at least 16", r->style_size);
    if (!(r->stability_weight >= 0) || r->stability_shift < 0 || r->stability_shift > 32
        || !(r->stability_noise >= 0) || (r->stability_weight > 0 && r->stability_shift == 0
            && r->stability_noise == 0))
      return bad (error, "--stability-weight >= 0, --stability-shift 0..32, --stability-noise "
          ">= 0, and a shift or noise when the weight is on");
    if (!(r->stability_still_weight >= 0)
        || (r->stability_still_weight > 0 && !(r->stability_noise > 0)))
      return bad (error, "--stability-still-weight %g: at least 0, and its still crops need "
          "noise (--stability-noise above 0)", r->stability_still_weight);
    if (r->stability_jpeg < 0 || r->stability_jpeg > 95)
      return bad (error, "--stability-jpeg %d: a lowest JPEG quality 1..95 (0: off)",
          r->stability_jpeg);
    if (!(r->input_blur >= 0 && r->input_blur <= 3))
      return bad (error, "--input-blur %g: a Gaussian sigma 0..3 pixels (0: none)",
          r->input_blur);
    r->pixel_weight = 0.0;
    if (r->chroma_weight == -1.0)
      r->chroma_weight = 1.0;   /* unused by style recipes */
  } else {
    if (r->input_blur != 0)
      return bad (error, "--input-blur: only the style networks have an input blur");
    if (!one_of (r->loss, losses))
      return bad (error, "--loss %s: perceptual, pixel or mix", r->loss);
    if (!one_of (r->degrade, degrades))
      return bad (error, "--degrade %s: bicubic, blur-bicubic or video", r->degrade);
    if (r->video_noise < 0 || r->video_jpeg_min < 1 || r->video_jpeg_max > 100
        || r->video_jpeg_min > r->video_jpeg_max)
      return bad (error, "--video-noise >= 0 and 1 <= --video-jpeg-min <= --video-jpeg-max "
          "<= 100");
    /* sr-light-y can only change luma (its dY goes to R, G and B alike): a loss on the
     * chroma would pull its dY towards the plain RGB mean of the errors */
    if (r->chroma_weight == -1.0)
      r->chroma_weight = g_str_equal (r->arch, "sr-light-y") ? 0.0 : 1.0;
    if (!(r->chroma_weight >= 0 && r->chroma_weight <= 1))
      return bad (error, "--chroma-weight %g: 0..1 (1: plain RGB MSE)", r->chroma_weight);
    gboolean pix = g_str_equal (r->loss, "pixel"), mix = g_str_equal (r->loss, "mix");
    if (r->pixel_weight < 0)
      r->pixel_weight = pix || mix ? 1.0 : 0.0;
    if (r->content_weight < 0)
      r->content_weight = pix ? 0.0 : mix ? MIX_CONTENT_WEIGHT : 1.0;
    if (r->tv_strength < 0)
      r->tv_strength = pix || mix ? 0.0 : 1e-6;
    g_clear_pointer (&r->style_image, g_free);
    g_clear_pointer (&r->style_images, g_strfreev);
    g_clear_pointer (&r->style_weights, g_free);
    g_clear_pointer (&r->still_weights, g_free);
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
  nf_recipe_map_paths (r, absolute);    /* every path (nf_recipe_path_keys), run_dir again */
  if (r->print_every < 1 || r->log_every < 1 || r->preview_every < 0 || r->checkpoint_every < 0
      || r->preview_size < 16 || r->loader_depth < 1 || r->preview_count < 0)
    return bad (error, "--print-every/--log-every >= 1, --preview-every/--checkpoint-every "
        ">= 0, --preview-size >= 16, --loader-depth >= 1");
  return TRUE;
}
