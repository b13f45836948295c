/* nf-trainer-styles.c — one network for several styles in training (see
 * nf-trainer-styles.h): the paintings' Gram targets, the style of each batch, the
 * style names, and each painting's style and still weights (--style-weights,
 * --stability-still-weights).
 *
 * What it does: at the start, every painting through the training loss and the preview
 * loss (nf_perceptual_set_style), their targets kept (nf-perceptual-styles.h) and the
 * model's styles named after the files; before each batch, that batch's style: its
 * targets into both losses and its one-hot mix into the model (the cond_instance_norm
 * ops read it at the next run).
 * What it does not: the step itself (nf-trainer.c), or mixes of styles.
 */
#include "nf-trainer-styles.h"
#include "nf-trainer-private.h"

#include <string.h>

#include "nf-error.h"
#include "nf-perceptual-styles.h"

int
nf_recipe_n_styles (const NfRecipe *r)
{
  if (!r->arch || !g_str_equal (r->arch, "style-rt-multi"))
    return 0;
  int n = r->style_images ? (int) g_strv_length (r->style_images) : 0;
  return n > 0 ? n : 1;
}

const char *const *
nf_recipe_style_paths (const NfRecipe *r, const char *one[2])
{
  if (r->style_images && r->style_images[0])
    return (const char *const *) r->style_images;
  one[0] = r->style_image;
  one[1] = NULL;
  return one;
}

int
nf_trainer_n_styles (const NfTrainer *t)
{
  return t->n_styles;
}

/* "starry_night" of ".../starry_night.jpg" (g_free). */
static char *
file_stem (const char *path)
{
  char *b = g_path_get_basename (path);
  char *dot = strrchr (b, '.');
  if (dot && dot != b)
    *dot = '\0';
  return b;
}

void
nf_trainer_styles_free (NfTrainer *t)
{
  for (int i = 0; i < t->n_styles; i++) {
    nf_style_targets_free (t->loss_targets ? t->loss_targets[i] : NULL);
    nf_style_targets_free (t->eval_targets ? t->eval_targets[i] : NULL);
  }
  g_clear_pointer (&t->loss_targets, g_free);
  g_clear_pointer (&t->eval_targets, g_free);
  g_clear_pointer (&t->style_weight, g_free);
  g_clear_pointer (&t->still_weight, g_free);
  t->n_styles = 0;
}

gboolean
nf_trainer_styles_setup (NfTrainer *t, GError **error)
{
  const NfRecipe *r = t->r;
  int n = t->model->n_styles;
  if (n <= 0)
    return TRUE;
  const char *one[2];
  const char *const *paths = nf_recipe_style_paths (r, one);
  if (!t->loss || !paths[0] || (int) g_strv_length ((char **) paths) != n) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "the network holds %d styles but the "
        "recipe gives %u paintings", n, paths[0] ? g_strv_length ((char **) paths) : 0);
    return FALSE;
  }
  if (t->device->step) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "training several styles in one "
        "network runs on the CPU trainer so far (--device cpu); the %s device steps on its "
        "own", t->device->name);
    return FALSE;
  }
  char **names = g_new0 (char *, n + 1);
  for (int i = 0; i < n; i++)
    names[i] = file_stem (paths[i]);
  gboolean ok = nf_model_set_style_names (t->model, (const char *const *) names, error);
  g_strfreev (names);
  if (!ok) {
    g_prefix_error (error, "--style-image: ");
    return FALSE;
  }
  t->n_styles = n;
  t->loss_targets = g_new0 (NfStyleTargets *, n);
  t->eval_targets = g_new0 (NfStyleTargets *, n);
  t->style_weight = g_new (double, n);
  t->still_weight = g_new (double, n);
  if (!nf_recipe_style_factors (r, FALSE, n, t->style_weight, error)
      || !nf_recipe_style_factors (r, TRUE, n, t->still_weight, error))
    return FALSE;
  for (int i = 0; i < n; i++) {
    t->style_weight[i] *= r->style_weight;
    t->still_weight[i] *= r->stability_still_weight;
  }
  for (int i = 0; ok && i < n; i++) {
    int w, h;
    float *rgb = nf_trainer_load_fit (paths[i], r->style_size, 1, &w, &h, error);
    ok = rgb && nf_perceptual_set_style (t->loss, rgb, w, h, error)
        && nf_perceptual_set_style (t->eval, rgb, w, h, error)
        && (t->loss_targets[i] = nf_style_targets_save (t->loss))
        && (t->eval_targets[i] = nf_style_targets_save (t->eval));
    nf_free (rgb);
    if (!ok)
      g_prefix_error (error, "style image %s: ", paths[i]);
  }
  t->cur_style = -1;
  return ok && nf_trainer_styles_select (t, 0, error);
}

/* Style s into the losses and the model. */
static gboolean
use_style (NfTrainer *t, int s, GError **error)
{
  if (s == t->cur_style)
    return TRUE;
  if (!nf_style_targets_load (t->loss, t->loss_targets[s], error)
      || !nf_style_targets_load (t->eval, t->eval_targets[s], error)
      || !nf_model_set_style (t->model, s, error))
    return FALSE;
  /* the preview loss keeps --style-weight: its figures compare across the styles */
  nf_perceptual_set_style_weight (t->loss, t->style_weight[s]);
  t->cur_style = s;
  return TRUE;
}

gboolean
nf_trainer_styles_select (NfTrainer *t, guint64 batch_index, GError **error)
{
  return t->n_styles == 0 || use_style (t, (int) (batch_index % (guint64) t->n_styles),
      error);
}

gboolean
nf_trainer_style_loss_on_batch (NfTrainer *t, int s, guint64 index, NfTrainLosses *losses,
    GError **error)
{
  if (s < 0 || s >= MAX (t->n_styles, 1) || (t->n_styles == 0 && s != 0)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "style %d: the network holds %d", s,
        MAX (t->n_styles, 1));
    return FALSE;
  }
  if (t->n_styles > 0 && !use_style (t, s, error))
    return FALSE;
  NfBatch *b = nf_dataset_make_batch (t->ds, &t->spec, index, error);
  if (!b)
    return FALSE;
  gboolean ok = nf_trainer_batch_losses (t, b, FALSE, FALSE, losses, error);
  nf_batch_free (b);
  return ok;
}
