/* nf-recipe.c — a recipe's life: the defaults of each task (nf_recipe_new), copy and
 * free (over the table of fields, nf-recipe-fields.c), and where the shared data is.
 *
 * What it does: see nf-recipe.h, which also lists the files that make up the recipe.
 * What it does not: check values (nf-recipe-finalize.c), JSON (nf-recipe-json.c), the
 * learning-rate schedule (nf-recipe-schedule.c), load data or models.
 */
#include "nf-recipe-fields.h"

#include "nf-error.h"

#ifndef NF_SOURCE_ROOT
#define NF_SOURCE_ROOT "."
#endif

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
  r->stability_still_weight = 0.0;
  r->stability_jpeg = 0;
  r->input_blur = 0.0;
  r->chroma_weight = -1.0;       /* from the arch (finalize) */
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
  for (guint i = 0; i < nf_recipe_n_fields; i++) {
    const Field *f = &nf_recipe_fields[i];
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
  for (guint i = 0; i < nf_recipe_n_fields; i++) {
    const Field *f = &nf_recipe_fields[i];
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

const char *
nf_recipe_host_only_term (const NfRecipe *r)
{
  return r->stability_weight > 0 ? "--stability-weight"
      : r->stability_still_weight > 0 ? "--stability-still-weight"
      : r->pixel_weight > 0 && r->chroma_weight != 1.0 ? "--chroma-weight" : NULL;
}
