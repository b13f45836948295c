/* nf-evaluate-style.c — nf-evaluate's style task (usage and definitions in nf-evaluate.c
 * and nf-eval.h), for models of one style and multi-style models.
 *
 * What it does: loads the VGG loss network once; per model, picks the painting and the
 * held-out photos, scores each photo (nf_eval_style_image) and prints the per-photo table
 * and a summary line against the project's bars:
 *   "  LABEL: content loss C (bar <= 1.5e+05: met); style loss S, unstyled U, ratio R ..."
 * A model of one style is scored against --style-image, else the painting it was trained
 * on (LABEL: its name). A multi-style model (cond_instance_norm, nf-model.h) is scored
 * once per style (or only --style's), each style run alone (a one-hot mix) against its
 * own painting (LABEL: NAME/STYLE): the recipe's painting of that style when the file is
 * there, else ../shared/data/styles/STYLE.{jpg,png,jpeg} (the style names are the
 * paintings' file stems); --style-image only together with --style.
 * Also the style choice of the other tasks (nfe_select_style).
 * What it does not: the scores' arithmetic (nf-eval.c), sr or flicker (nf-evaluate.c).
 */
#include <string.h>

#include "nf-error.h"
#include "nf-eval.h"
#include "nf-evaluate-private.h"
#include "nf-resize.h"
#include "nf-vgg.h"

#define LOSSNET_FILE "vgg16-conv1_1-conv3_3.safetensors"
#define CONTENT_BAR 1.5e5
#define STYLE_BAR (1.0 / 3.0)

static char *
default_lossnet (void)
{
  const char *env = g_getenv ("NF_LOSSNET");
  if (env && *env)
    return g_strdup (env);
  char *shared = nf_shared_data_dir ();
  char *p = g_build_filename (shared, "lossnets", LOSSNET_FILE, NULL);
  g_free (shared);
  return p;
}

/* The model's name metadata, else "model". */
static const char *
model_name (const NfModel *m)
{
  const char *name = nf_model_get_metadata (m, "name");
  return name ? name : "model";
}

/* The style of `style` (a name or an index) in multi-style model m, else a usage error. */
static int
style_index (const NfModel *m, const char *path, const char *style)
{
  if (m->n_styles == 0)
    nfe_usage_error ("--style %s: %s has one style (no cond_instance_norm); --style is for "
        "multi-style models", style, path);
  int i = nf_model_style_index (m, style);
  if (i < 0) {
    char *names = g_strjoinv (", ", m->style_names);
    nfe_usage_error ("--style %s: %s has no such style (its styles: %s; or an index 0..%d)",
        style, path, names, m->n_styles - 1);
  }
  return i;
}

char *
nfe_select_style (NfModel *m, const char *path, const char *style)
{
  if (!style)
    return m->n_styles > 0 ? g_strdup_printf ("%s/%s", model_name (m), m->style_names[0])
        : g_strdup (model_name (m));
  int i = style_index (m, path, style);
  GError *e = NULL;
  if (!nf_model_set_style (m, i, &e))
    nfe_fail (e);
  return g_strdup_printf ("%s/%s", model_name (m), m->style_names[i]);
}

/* The file stem of path (g_free). */
static char *
stem (const char *path)
{
  char *b = g_path_get_basename (path), *dot = strrchr (b, '.');
  if (dot && dot != b)
    *dot = '\0';
  return b;
}

/* The painting of style i of multi-style model m (g_free): the recipe's file of that
 * style when it exists and carries the style's name, else the shared styles folder's
 * file of that name; NULL + error naming what was tried. */
static char *
painting_of (const NfModel *m, const NfRecipe *r, int i, GError **error)
{
  const char *name = m->style_names[i];
  GString *tried = g_string_new (NULL);
  if (r && r->style_images && (int) g_strv_length (r->style_images) == m->n_styles) {
    const char *p = r->style_images[i];
    char *s = stem (p);
    gboolean same = g_str_equal (s, name);
    g_free (s);
    if (same && g_file_test (p, G_FILE_TEST_IS_REGULAR)) {
      g_string_free (tried, TRUE);
      return g_strdup (p);
    }
    g_string_append_printf (tried, "%s (the recipe's%s), ", p, same ? "" : ", another name");
  }
  static const char *const ext[] = { ".jpg", ".png", ".jpeg" };
  char *shared = nf_shared_data_dir ();
  char *dir = g_build_filename (shared, "styles", NULL);
  g_free (shared);
  char *found = NULL;
  for (guint k = 0; !found && k < G_N_ELEMENTS (ext); k++) {
    char *file = g_strconcat (name, ext[k], NULL);
    char *p = g_build_filename (dir, file, NULL);
    g_free (file);
    if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
      found = p;
    else
      g_free (p);
  }
  if (!found)
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "no painting for style %d (%s): tried %s%s/%s"
        ".{jpg,png,jpeg}; give --style %s --style-image FILE", i, name, tried->str, dir, name,
        name);
  g_string_free (tried, TRUE);
  g_free (dir);
  return found;
}

/* Scores m as it is set (one style) against painting: the header, the per-photo table,
 * the summary line. */
static void
score (NfModel *m, const char *path, const char *label, const char *painting,
    const NfRecipe *r, NfVgg *vgg, NfBackend *be, const NfPerceptualSpec *ps, FILE *csv,
    const NfeStyleOptions *o)
{
  GError *e = NULL;
  int style_size = o->style_size > 0 ? o->style_size : r ? r->style_size : 256;
  int sw, sh, tw, th;
  float *sfull = nf_load_planar (painting, &sw, &sh, &e);
  if (!sfull)
    nfe_fail (e);
  nf_resize_fit (sw, sh, style_size, &tw, &th);
  float *srgb = nf_alloc_floats ((size_t) 3 * tw * th);
  nf_resize_planar (sfull, 3, sh, sw, srgb, th, tw);
  nf_free (sfull);
  NfPerceptual *p = nf_perceptual_new (vgg, be, ps, &e);
  if (!p || !nf_perceptual_set_style (p, srgb, tw, th, &e))
    nfe_fail (e);
  nf_free (srgb);
  NfDataset *ds = nfe_images_for (r, TRUE);
  int n = nf_dataset_size (ds);
  if (o->max_images > 0)
    n = MIN (n, o->max_images);
  char *sb = g_path_get_basename (painting);
  printf ("%s (%s), style %s at %d px, %d photos at %d px, loss network %s:\n", path, label,
      sb, style_size, n, o->size, vgg->arch);
  printf ("  %-28s %11s %11s %11s %7s\n", "photo", "content", "style", "unstyled", "ratio");
  double mc = 0, ms = 0, mu = 0;
  int scored = 0;
  for (int i = 0; i < n; i++) {
    int w, h, ow, oh;
    float *photo = nf_load_planar (nf_dataset_path (ds, i), &w, &h, &e);
    NfStyleScores s;
    float *out = NULL;
    if (!photo || !nf_eval_style_image (m, be, p, photo, w, h, o->size, &s, &out, &ow, &oh,
            &e)) {
      fprintf (stderr, "nf-evaluate: skipping %s: %s\n", nf_dataset_path (ds, i), e->message);
      g_clear_error (&e);
      nf_free (photo);
      continue;
    }
    char *b = g_path_get_basename (nf_dataset_path (ds, i));
    printf ("  %-28s %11.5g %11.5g %11.5g %7.3f\n", b, s.content, s.style, s.unstyled,
        s.style / s.unstyled);
    if (csv)
      fprintf (csv, "%s,%s,%d,%d,%.9g,%.9g,%.9g\n", label, b, s.w, s.h, s.content, s.style,
          s.unstyled);
    nfe_save_output (label, nf_dataset_path (ds, i), out, ow, oh);
    mc += s.content;
    ms += s.style;
    mu += s.unstyled;
    scored++;
    g_free (b);
    nf_free (out);
    nf_free (photo);
  }
  if (scored) {
    mc /= scored;
    ms /= scored;
    mu /= scored;
    printf ("  %-28s %11.5g %11.5g %11.5g %7.3f\n", "mean", mc, ms, mu, ms / mu);
    printf ("  %s: content loss %.5g (bar <= %.3g: %s); style loss %.5g, unstyled %.5g, "
        "ratio %.3f (bar <= 1/3: %s)\n", label, mc, CONTENT_BAR, mc <= CONTENT_BAR ? "met"
        : "NOT met", ms, mu, ms / mu, ms <= STYLE_BAR * mu ? "met" : "NOT met");
  }
  g_free (sb);
  nf_perceptual_free (p);
  nf_dataset_free (ds);
}

/* One model: every style it is scored in. */
static void
eval_model (const char *path, NfVgg *vgg, NfBackend *be, const NfPerceptualSpec *ps,
    FILE *csv, const NfeStyleOptions *o)
{
  GError *e = NULL;
  NfModel *m = nf_model_load (path, &e);
  if (!m)
    nfe_fail (e);
  if (m->task != NF_TASK_STYLE)
    nfe_usage_error ("%s is a %s model, not style", path, nf_task_name (m->task));
  NfRecipe *r = nfe_model_recipe (m);
  if (m->n_styles == 0) {
    if (o->style)
      style_index (m, path, o->style);  /* the usage error */
    const char *painting = o->style_image ? o->style_image : r ? r->style_image : NULL;
    if (!painting)
      nfe_usage_error ("%s does not say which painting it was trained on; give "
          "--style-image", path);
    score (m, path, model_name (m), painting, r, vgg, be, ps, csv, o);
  } else {
    if (o->style_image && !o->style)
      nfe_usage_error ("--style-image: %s holds %d styles, each scored against its own "
          "painting; give --style NAME with --style-image", path, m->n_styles);
    int first = o->style ? style_index (m, path, o->style) : 0;
    int last = o->style ? first : m->n_styles - 1;
    for (int i = first; i <= last; i++) {
      char *painting = o->style_image ? g_strdup (o->style_image) : painting_of (m, r, i, &e);
      if (!painting || !nf_model_set_style (m, i, &e))
        nfe_fail (e);
      char *label = g_strdup_printf ("%s/%s", model_name (m), m->style_names[i]);
      score (m, path, label, painting, r, vgg, be, ps, csv, o);
      g_free (label);
      g_free (painting);
    }
  }
  nf_recipe_free (r);
  nf_model_free (m);
}

int
nfe_eval_style (char **models, NfBackend *be, FILE *csv, const NfeStyleOptions *o)
{
  GError *e = NULL;
  NfPerceptualSpec ps = {.content_layer = "relu2_2",.content_weight = 1.0,.style_weight = 1.0 };
  if (!nf_perceptual_parse_layers (&ps, o->layers ? o->layers : "relu1_2,relu2_2,relu3_3",
          NULL, &e))
    nfe_usage_error ("--layers: %s", e->message);
  const char *layers[NF_PERCEPTUAL_MAX_LAYERS + 2];
  int nl = 0;
  layers[nl++] = "relu2_2";
  for (int i = 0; i < ps.n_style; i++)
    layers[nl++] = ps.style[i].layer;
  layers[nl] = NULL;
  char *lossnet = o->lossnet ? g_strdup (o->lossnet) : default_lossnet ();
  NfVggOptions vo = {.pool = NF_VGG_POOL_MAX,.preprocess = NF_VGG_PREPROCESS_AUTO,
    .layers = layers
  };
  NfVgg *vgg = nf_vgg_load (lossnet, &vo, &e);
  if (!vgg)
    nfe_fail (e);
  if (csv)
    fprintf (csv, "model,image,width,height,content,style,unstyled_style\n");
  for (int mi = 0; models[mi]; mi++)
    eval_model (models[mi], vgg, be, &ps, csv, o);
  nf_vgg_free (vgg);
  g_free (lossnet);
  return 0;
}
