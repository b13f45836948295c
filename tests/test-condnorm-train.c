/* test-condnorm-train.c — training one network for two styles (nf-train style --arch
 * style-rt-multi with two --style-image), on the CPU, with synthetic photos, two
 * synthetic paintings and a seeded random VGG-shaped loss network (no shared data).
 *
 * Checks:
 *   - the recipe: repeated --style-image through the option parser (the first is
 *     style-image, the list kept only with several), the JSON round trip, a single-style
 *     recipe's JSON without the list, and the errors (several paintings for an
 *     architecture of one style, two paintings of the same file stem);
 *   - a tiny run (batch 2, 32x32 crops, 24 steps: 12 per style, cycling): the loss of
 *     EACH style on held-out batches falls (by 15 %: 25-28 % measured), the two styles'
 *     outputs grow apart (more than twice their initial difference: 0.08 -> 0.34 levels
 *     measured), the weight file names the styles after the files ("styles" metadata);
 *   - the stability term with two styles: it adds its weighted MSE and leaves the content
 *     and style terms of either style as they were, and steps run with it;
 *   - --style-weights: a style's total grows by (factor - 1) x style weight x its style
 *     loss and nothing else changes, the list survives the JSON round trip, and bad lists
 *     (wrong count, 0, negative, not a number, one style) are refused with a message;
 *     --stability-still-weights likewise with the still part's MSE.
 * Does not: the op's arithmetic (test-condnorm.c), the GPU trainer (refused for now).
 */
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-image.h"
#include "nf-recipe.h"
#include "nf-trainer.h"
#include "nf-trainer-styles.h"
#include "nf-vgg.h"
#include "nf-test-files.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static char *root, *data_dir, *paint[2], *vgg_path;

/* ---- fixtures --------------------------------------------------------------------------- */

/* Smooth random colour patterns (the photos). */
static void
write_photo (const char *path, int w, int h, guint64 seed)
{
  NfRng rng;
  nf_rng_seed (&rng, seed);
  float f[3][2];
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < 2; k++)
      f[c][k] = 0.05f + 0.3f * nf_rng_uniform (&rng);
  NfImage *img = nf_image_new (w, h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        double v = 128 + 70 * sin (f[c][0] * x + f[c][1] * y) + ((x / 7 + y / 11) % 2 ? 20 : -20);
        img->rgb[((size_t) y * w + x) * 3 + c] = (uint8_t) CLAMP (v, 0, 255);
      }
  nf_image_save (img, path, NULL);
  nf_image_free (img);
}

static gboolean
make_fixtures (void)
{
  GError *e = NULL;
  root = g_dir_make_tmp ("nf-test-condnorm-XXXXXX", &e);
  if (!root) {
    printf ("FAIL tmp: %s\n", e->message);
    return FALSE;
  }
  data_dir = g_build_filename (root, "photos", NULL);
  g_mkdir (data_dir, 0755);
  for (int i = 0; i < 6; i++) {
    char *n = g_strdup_printf ("p%d.png", i);
    char *p = g_build_filename (data_dir, n, NULL);
    write_photo (p, 70 + 5 * i, 64 + 4 * i, 300 + i);
    g_free (p);
    g_free (n);
  }
  paint[0] = g_build_filename (root, "checker_red.png", NULL);
  paint[1] = g_build_filename (root, "stripes_blue.png", NULL);
  nf_test_write_painting (paint[0], 0);
  nf_test_write_painting (paint[1], 1);
  if (!(vgg_path = nf_test_write_random_vgg (root, &e))) {
    printf ("FAIL random VGG: %s\n", e->message);
    return FALSE;
  }
  return TRUE;
}


/* A two-style recipe through the option parser, as nf-train reads its command line. */
static NfRecipe *
recipe (const char *arch, const char *run, const char *second)
{
  NfRecipe *r = nf_recipe_new ("style", NULL);
  GOptionEntry *entries = nf_recipe_option_entries (r, FALSE);
  GOptionContext *ctx = g_option_context_new (NULL);
  g_option_context_add_main_entries (ctx, entries, NULL);
  char *run_dir = g_build_filename (root, run, NULL);
  char *argv0[] = { "test", "--arch", (char *) arch, "--style-image", paint[0],
    "--style-image", (char *) second, "--data", data_dir, "--split", "all", "--lossnet",
    vgg_path, "--style-layers", "relu1_2,relu2_2", "--device", "cpu", "--crop", "32",
    "--batch", "2", "--iters", "1000", "--anneal", "none", "--lr", "5e-3", "--style-size",
    "40", "--preview-count", "1", "--preview-size", "32", "--run", run_dir, NULL
  };
  int argc = G_N_ELEMENTS (argv0) - 1;
  char **argv = g_memdup2 (argv0, sizeof argv0);
  if (!second) {                /* one painting: drop the second --style-image */
    memmove (argv + 5, argv + 7, sizeof (char *) * (argc - 6));
    argc -= 2;
  }
  GError *e = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &e)) {
    printf ("FAIL options: %s\n", e->message);
    failures++;
    g_clear_error (&e);
  }
  g_option_context_free (ctx);
  g_free (entries);
  g_free (argv);
  g_free (run_dir);
  return r;
}

/* Mean loss of style s over held-out batches 1000..1002. */
static NfTrainLosses
held (NfTrainer *t, int s)
{
  NfTrainLosses m = { 0 };
  for (int i = 0; i < 3; i++) {
    NfTrainLosses L;
    GError *e = NULL;
    if (!nf_trainer_style_loss_on_batch (t, s, 1000 + i, &L, &e)) {
      printf ("FAIL style %d loss: %s\n", s, e->message);
      failures++;
      g_error_free (e);
      m.total = NAN;
      return m;
    }
    m.total += L.total / 3;
    m.content += L.content / 3;
    m.style += L.style / 3;
    m.stability += L.stability / 3;
    m.stability_still += L.stability_still / 3;
  }
  return m;
}

static gboolean
steps (NfTrainer *t, int n)
{
  GError *e = NULL;
  for (int i = 0; i < n; i++)
    if (!nf_trainer_step (t, NULL, &e)) {
      printf ("FAIL step: %s\n", e->message);
      failures++;
      g_error_free (e);
      return FALSE;
    }
  return TRUE;
}

/* ---- the recipe -------------------------------------------------------------------------- */

static void
test_recipe (void)
{
  GError *e = NULL;
  NfRecipe *r = recipe ("style-rt-multi", "recipe", paint[1]);
  CHECK (nf_recipe_finalize (r, &e), "finalize: %s", e ? e->message : "");
  g_clear_error (&e);
  CHECK (r->style_images && g_strv_length (r->style_images) == 2
      && g_str_equal (r->style_image, r->style_images[0])
      && g_str_has_suffix (r->style_images[1], "stripes_blue.png")
      && nf_recipe_n_styles (r) == 2 && g_str_equal (r->name, "style-rt-multi-2-styles"),
      "two --style-image: %s, %d styles, name %s", r->style_image, nf_recipe_n_styles (r),
      r->name);
  char *json = nf_recipe_to_json (r, TRUE);
  NfRecipe *back = nf_recipe_new ("style", NULL);
  CHECK (nf_recipe_update_from_json (back, json, &e) && back->style_images
      && g_strv_length (back->style_images) == 2
      && g_str_equal (back->style_images[1], r->style_images[1]), "JSON round trip: %s",
      json);
  g_clear_error (&e);
  g_free (json);
  nf_recipe_free (back);
  nf_recipe_free (r);

  r = recipe ("style-rt-multi", "recipe1", NULL);
  CHECK (nf_recipe_finalize (r, &e) && !r->style_images && nf_recipe_n_styles (r) == 1,
      "one --style-image: %s", e ? e->message : "a list kept");
  g_clear_error (&e);
  json = nf_recipe_to_json (r, FALSE);
  CHECK (!strstr (json, "style-images"), "a single-style recipe writes the list: %s", json);
  g_free (json);
  nf_recipe_free (r);

  r = recipe ("style-rt", "recipe-bad", paint[1]);
  CHECK (!nf_recipe_finalize (r, &e) && e && strstr (e->message, "style-rt-multi"),
      "two paintings for style-rt: %s", e ? e->message : "accepted");
  g_clear_error (&e);
  nf_recipe_free (r);
  char *twin = g_build_filename (data_dir, "checker_red.jpg", NULL);
  r = recipe ("style-rt-multi", "recipe-twin", twin);
  CHECK (!nf_recipe_finalize (r, &e) && e && strstr (e->message, "stem"),
      "two paintings of one stem: %s", e ? e->message : "accepted");
  g_clear_error (&e);
  nf_recipe_free (r);
  g_free (twin);
}

/* ---- a tiny run ---------------------------------------------------------------------------- */

/* The network of t's weight file on one photo in style s. */
static float *
run_file (const char *path, int s, NfShape shape, const float *x)
{
  GError *e = NULL;
  NfModel *m = nf_model_load (path, &e);
  NfBackend *be = nf_backend_new ("cpu", &e);
  float *y = NULL;
  if (m && be && nf_model_set_style (m, s, &e)) {
    NfEngine *eng = nf_engine_new (m, be, NULL);
    y = nf_alloc_floats (nf_shape_numel (shape));
    if (!nf_engine_run_host (eng, x, shape, y, &e))
      g_clear_pointer (&y, nf_free);
    nf_engine_free (eng);
  }
  if (!y) {
    printf ("FAIL weight file run: %s\n", e ? e->message : "?");
    failures++;
  }
  g_clear_error (&e);
  nf_model_free (m);
  if (be)
    nf_backend_free (be);
  return y;
}

static void
test_training (void)
{
  GError *e = NULL;
  NfRecipe *r = recipe ("style-rt-multi", "run", paint[1]);
  NfTrainer *t = nf_recipe_finalize (r, &e) ? nf_trainer_new (r, NULL, &e) : NULL;
  if (!t) {
    printf ("FAIL trainer: %s\n", e->message);
    failures++;
    g_error_free (e);
    nf_recipe_free (r);
    return;
  }
  CHECK (nf_trainer_n_styles (t) == 2, "%d styles", nf_trainer_n_styles (t));
  NfTrainLosses b0 = held (t, 0), b1 = held (t, 1);
  CHECK (fabs (b0.style - b1.style) > 0.05 * b0.style, "the two paintings give the same "
      "style loss (%g, %g): their targets are not each their own", b0.style, b1.style);
  NfShape s = { 1, 3, 32, 32 };
  size_t n = nf_shape_numel (s);
  float *x = nf_alloc_floats (n);
  NfRng rng;
  nf_rng_seed (&rng, 8);
  nf_rng_fill_uniform (&rng, x, n, 0.0f, 255.0f);
  char *out = g_build_filename (root, "run", "two.safetensors", NULL);
  double d[2] = { NAN, NAN };   /* mean |style 0 - style 1| before and after training */
  for (int k = 0; k < 2; k++) {
    if (k == 1 && steps (t, 24)) {
      NfTrainLosses a0 = held (t, 0), a1 = held (t, 1);
      printf ("style 0 (checker_red): total %.5g -> %.5g (style %.5g -> %.5g)\n", b0.total,
          a0.total, b0.style, a0.style);
      printf ("style 1 (stripes_blue): total %.5g -> %.5g (style %.5g -> %.5g)\n", b1.total,
          a1.total, b1.style, a1.style);
      CHECK (a0.total < 0.85 * b0.total && a1.total < 0.85 * b1.total, "a style's loss did "
          "not fall by 15%%: %g -> %g, %g -> %g", b0.total, a0.total, b1.total, a1.total);
    }
    CHECK (nf_trainer_export (t, out, &e), "export: %s", e ? e->message : "");
    g_clear_error (&e);
    float *y0 = run_file (out, 0, s, x), *y1 = run_file (out, 1, s, x);
    if (y0 && y1) {
      d[k] = 0;
      for (size_t i = 0; i < n; i++)
        d[k] += fabs ((double) y0[i] - y1[i]) / n;
    }
    nf_free (y0);
    nf_free (y1);
  }
  printf ("the two styles' outputs differ by %.3f levels on average at the start, %.3f "
      "after 24 steps\n", d[0], d[1]);
  /* every style's row starts equal (nf_arch_init_weights), so the outputs only differ
   * once each style has trained towards its own painting */
  CHECK (d[0] < 1e-3 && d[1] > 1.0, "the styles did not grow apart: %.3g -> %.3g levels",
      d[0], d[1]);
  NfModel *m = nf_model_load (out, &e);
  CHECK (m && m->n_styles == 2 && g_str_equal (m->style_names[0], "checker_red")
      && g_str_equal (m->style_names[1], "stripes_blue")
      && strstr (nf_model_get_metadata (m, "styles"), "stripes_blue"), "the weight file's "
      "styles: %s", m ? nf_model_get_metadata (m, "styles") : e->message);
  g_clear_error (&e);
  nf_model_free (m);
  nf_free (x);
  g_free (out);
  nf_trainer_free (t);
  nf_recipe_free (r);
}

/* The stability term with two styles: weight x MSE on top of each style's terms. */
static void
test_stability (void)
{
  GError *e = NULL;
  NfTrainLosses L[2][2];
  double w = 50.0;
  for (int on = 0; on < 2; on++) {
    char *run = g_strdup_printf ("stability-%d", on);
    NfRecipe *r = recipe ("style-rt-multi", run, paint[1]);
    r->stability_weight = on ? w : 0.0;
    NfTrainer *t = nf_recipe_finalize (r, &e) ? nf_trainer_new (r, NULL, &e) : NULL;
    CHECK (t, "trainer: %s", e ? e->message : "");
    g_clear_error (&e);
    for (int s = 0; t && s < 2; s++)
      L[on][s] = held (t, s);
    if (t && on)
      CHECK (steps (t, 4) && isfinite (held (t, 1).total), "steps with the stability term");
    nf_trainer_free (t);
    nf_recipe_free (r);
    g_free (run);
  }
  for (int s = 0; s < 2; s++) {
    NfTrainLosses *off = &L[0][s], *on = &L[1][s];
    CHECK (off->stability == 0 && on->stability > 0, "style %d: stability MSE %g off, %g on",
        s, off->stability, on->stability);
    CHECK (fabs (on->content - off->content) <= 1e-5 * off->content
        && fabs (on->style - off->style) <= 1e-5 * off->style
        && fabs (on->total - (off->total + w * on->stability)) <= 1e-5 * on->total,
        "style %d: the stability term changed the other terms (content %g/%g, style %g/%g, "
        "total %g/%g)", s, on->content, off->content, on->style, off->style, on->total,
        off->total);
  }
}

/* --style-weights: style s's loss is --style-weight x factor s; the list is checked. */
static void
test_style_weights (void)
{
  GError *e = NULL;
  NfTrainLosses L[2][2];
  const char *lists[2] = { NULL, "1,3.5" };
  double sw = 0.0;
  for (int k = 0; k < 2; k++) {
    char *run = g_strdup_printf ("weights-%d", k);
    NfRecipe *r = recipe ("style-rt-multi", run, paint[1]);
    r->style_weights = g_strdup (lists[k]);
    NfTrainer *t = nf_recipe_finalize (r, &e) ? nf_trainer_new (r, NULL, &e) : NULL;
    CHECK (t, "trainer: %s", e ? e->message : "");
    g_clear_error (&e);
    sw = r->style_weight;
    for (int s = 0; t && s < 2; s++)
      L[k][s] = held (t, s);
    if (t && k == 1) {
      char *json = nf_recipe_to_json (r, FALSE);
      NfRecipe *back = nf_recipe_new ("style", NULL);
      CHECK (nf_recipe_update_from_json (back, json, &e) && back->style_weights
          && g_str_equal (back->style_weights, "1,3.5"), "JSON round trip: %s", json);
      g_clear_error (&e);
      nf_recipe_free (back);
      g_free (json);
    }
    nf_trainer_free (t);
    nf_recipe_free (r);
    g_free (run);
  }
  const double f[2] = { 1.0, 3.5 };
  for (int s = 0; s < 2; s++) {
    NfTrainLosses *plain = &L[0][s], *w = &L[1][s];
    double want = plain->total + (f[s] - 1.0) * sw * plain->style;
    CHECK (fabs (w->style - plain->style) <= 1e-6 * plain->style
        && fabs (w->total - want) <= 1e-5 * want, "style %d, factor %g: total %g, want %g "
        "(style %g, plain total %g)", s, f[s], w->total, want, w->style, plain->total);
  }
  const char *bad[] = { "2", "1,2,3", "1,-2", "1,0", "1,x", "1,", "nan,1", NULL };
  for (int i = 0; bad[i]; i++) {
    NfRecipe *r = recipe ("style-rt-multi", "weights-bad", paint[1]);
    r->style_weights = g_strdup (bad[i]);
    CHECK (!nf_recipe_finalize (r, &e) && e && strstr (e->message, "--style-weights"),
        "--style-weights %s is refused: %s", bad[i], e ? e->message : "accepted");
    if (e)
      printf ("expected error: %s\n", e->message);
    g_clear_error (&e);
    nf_recipe_free (r);
  }
  NfRecipe *r = recipe ("style-rt", "weights-one", NULL);
  r->style_weights = g_strdup ("2");
  CHECK (!nf_recipe_finalize (r, &e) && e && strstr (e->message, "style-rt-multi"),
      "--style-weights for one style is refused: %s", e ? e->message : "accepted");
  g_clear_error (&e);
  nf_recipe_free (r);

  /* --stability-still-weights: the still part's weight per style, likewise */
  const double S = 200.0, g[2] = { 1.0, 2.5 };
  NfTrainLosses M[2][2];
  for (int k = 0; k < 2; k++) {
    char *run = g_strdup_printf ("still-weights-%d", k);
    r = recipe ("style-rt-multi", run, paint[1]);
    r->stability_still_weight = S;
    r->still_weights = k ? g_strdup ("1,2.5") : NULL;
    NfTrainer *t = nf_recipe_finalize (r, &e) ? nf_trainer_new (r, NULL, &e) : NULL;
    CHECK (t, "trainer: %s", e ? e->message : "");
    g_clear_error (&e);
    for (int s = 0; t && s < 2; s++)
      M[k][s] = held (t, s);
    nf_trainer_free (t);
    nf_recipe_free (r);
    g_free (run);
  }
  for (int s = 0; s < 2; s++) {
    NfTrainLosses *plain = &M[0][s], *w = &M[1][s];
    double want = plain->total + (g[s] - 1.0) * S * plain->stability_still;
    CHECK (plain->stability_still > 0 && fabs (w->stability_still - plain->stability_still)
        <= 1e-6 * plain->stability_still && fabs (w->total - want) <= 1e-5 * want,
        "still factor %g: total %g, want %g (still MSE %g)", g[s], w->total, want,
        plain->stability_still);
  }
  r = recipe ("style-rt-multi", "still-weights-bad", paint[1]);
  r->still_weights = g_strdup ("1,2,3");
  CHECK (!nf_recipe_finalize (r, &e) && e && strstr (e->message, "--stability-still-weights"),
      "--stability-still-weights 1,2,3 is refused: %s", e ? e->message : "accepted");
  g_clear_error (&e);
  nf_recipe_free (r);
}

int
main (void)
{
  if (!make_fixtures ())
    return 1;
  test_recipe ();
  test_training ();
  test_stability ();
  test_style_weights ();
  nf_test_rm_tree (root);
  if (failures) {
    printf ("%d failure(s)\n", failures);
    return 1;
  }
  printf ("test-condnorm-train: all passed\n");
  return 0;
}
