/* nf-test-files.h — fixture files the training tests share: a small random VGG loss
 * network written to a folder, and removing a temporary folder tree (nf-test-tree.h).
 *
 * Header only (static inline), so each test executable takes what it uses without a
 * library of its own. Also two small synthetic paintings of different texture and colour
 * for the multi-style tests, and the small CPU recipe the trainer tests start from.
 * What it does not: photos (each test draws its own).
 */
#ifndef NF_TEST_FILES_H
#define NF_TEST_FILES_H

#include <glib.h>
#include <glib/gstdio.h>

#include "nf-image.h"
#include "nf-model.h"
#include "nf-recipe.h"
#include "nf-test-tree.h"
#include "nf-vgg.h"

/* A two-block VGG (2 + 2 convs, 8 and 12 channels, seed 5) saved as
 * DIR/vgg-random.safetensors: its path, or NULL + error. */
static inline char *
nf_test_write_random_vgg (const char *dir, GError **error)
{
  int convs[2] = { 2, 2 }, widths[2] = { 8, 12 };
  NfVgg *v = nf_vgg_new_random (2, convs, widths, NULL, 5, error);
  if (!v)
    return NULL;
  char *path = g_build_filename (dir, "vgg-random.safetensors", NULL);
  gboolean ok = nf_model_save (v->model, path, NF_DTYPE_F32, error);
  nf_vgg_free (v);
  if (!ok)
    g_clear_pointer (&path, g_free);
  return path;
}

/* A 48x40 painting at path: a fine red/cyan checker (kind 0) or broad yellow/blue
 * stripes (kind 1). */
static inline void
nf_test_write_painting (const char *path, int kind)
{
  NfImage *img = nf_image_new (48, 40);
  for (int y = 0; y < 40; y++)
    for (int x = 0; x < 48; x++) {
      uint8_t *px = img->rgb + ((size_t) y * 48 + x) * 3;
      gboolean on = kind == 0 ? ((x / 2 + y / 2) % 2) : ((y / 6) % 2);
      px[0] = kind == 0 ? (on ? 230 : 20) : (on ? 240 : 30);
      px[1] = kind == 0 ? (on ? 20 : 220) : (on ? 220 : 40);
      px[2] = kind == 0 ? (on ? 40 : 230) : (on ? 30 : 200);
    }
  nf_image_save (img, path, NULL);
  nf_image_free (img);
}

/* A recipe of task and arch over data_dir (all files), on the CPU, small and quick:
 * 32 px crops, batch 2, no warm-up, constant rate, the random loss network vgg_path with
 * relu1_2 and relu2_2 for style, the painting style_png (style; may be NULL for sr), a
 * 40 px Gram target, one 32 px preview, run folder root/run. Iterations, rate and
 * the rest as nf_recipe_new sets them: the caller changes what its test needs. */
static inline NfRecipe *
nf_test_recipe (const char *task, const char *arch, const char *data_dir,
    const char *vgg_path, const char *style_png, const char *root, const char *run)
{
  NfRecipe *r = nf_recipe_new (task, NULL);
  g_free (r->arch);
  r->arch = g_strdup (arch);
  g_strfreev (r->data);
  r->data = g_new0 (char *, 2);
  r->data[0] = g_strdup (data_dir);
  g_free (r->split);
  r->split = g_strdup ("all");
  r->lossnet = g_strdup (vgg_path);
  g_free (r->style_layers);
  r->style_layers = g_strdup ("relu1_2,relu2_2");
  g_free (r->device);
  r->device = g_strdup ("cpu");
  r->crop = 32;
  r->batch = 2;
  r->warmup = 0;
  g_free (r->anneal);
  r->anneal = g_strdup ("none");
  r->style_size = 40;
  r->preview_count = 1;
  r->preview_size = 32;
  r->run_dir = g_build_filename (root, run, NULL);
  if (g_str_equal (task, "style") && style_png)
    r->style_image = g_strdup (style_png);
  return r;
}

#endif
