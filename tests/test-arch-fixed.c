/* test-arch-fixed.c — the ops of an architecture whose weights are part of its design,
 * not learned: the style networks' input blur (--input-blur) and sr-light-y's colour
 * convs (RGB -> luma, luma -> R, G, B).
 *
 * Checks:
 *   - the input blur's weights: diagonal in the channels, each channel summing to 1,
 *     symmetric, a window of 2 ceil(2 sigma) + 1;
 *   - a style-rt with the blur computes what the same network without it computes on the
 *     input blurred by a Gaussian written here (reflected borders), and the same as it
 *     on a flat grey image (cpu-ref), and on cpu what it computes on cpu-ref;
 *   - sr-light-y changes luma only: output minus the nearest-upsampled input is the
 *     same in R, G and B wherever nothing is clamped;
 *   - training (a few CPU steps, a random loss network made here) moves the learned
 *     weights and leaves the fixed ones bit for bit; --init from a file without the blur
 *     gains it, from a file with another blur (or with one, into a recipe without) is
 *     refused by name;
 *   - bad values: an input blur on an SR network or above 3 pixels, refused.
 * Does not: check the CUDA path (tests/gpu) or image quality (nf-evaluate).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-model.h"
#include "nf-recipe.h"
#include "nf-test-files.h"
#include "nf-trainer.h"

static int failures = 0;
static char *root, *data_dir, *style_png, *vgg_path;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static NfModel *
arch_model (const char *arch, int scale, double blur, guint64 seed)
{
  NfArchSpec s = {.arch = arch,.scale = scale,.input_blur = blur };
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&s, seed, &e);
  if (!m) {
    printf ("FAIL %s: %s\n", arch, e->message);
    failures++;
    g_error_free (e);
  }
  return m;
}

/* out = model (x) on backend; FALSE (and a failure) on an error. */
static gboolean
run_on (const char *backend, NfModel *m, const float *x, NfShape s, float *out)
{
  GError *e = NULL;
  NfBackend *be = nf_backend_new (backend, &e);
  NfEngine *en = be ? nf_engine_new (m, be, NULL) : NULL;
  gboolean ok = en && nf_engine_run_host (en, x, s, out, &e);
  if (!ok) {
    printf ("FAIL engine: %s\n", e ? e->message : "?");
    failures++;
    g_clear_error (&e);
  }
  if (en)
    nf_engine_free (en);
  if (be)
    nf_backend_free (be);
  return ok;
}

static gboolean
run (NfModel *m, const float *x, NfShape s, float *out)
{
  return run_on ("cpu-ref", m, x, s, out);
}

static int
reflect (int i, int n)
{
  while (i < 0 || i >= n)
    i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

/* The Gaussian of sigma in a (2 ceil(2 sigma) + 1)^2 window, normalised, reflected
 * borders: written here from the definition, not from nf-arch.c. */
static void
gaussian_blur (const float *x, float *y, int c, int h, int w, double sigma)
{
  int r = (int) ceil (2 * sigma);
  double g[16], sum = 0;
  for (int i = -r; i <= r; i++)
    sum += g[i + r] = exp (-(double) i * i / (2 * sigma * sigma));
  for (int k = 0; k < c; k++)
    for (int yy = 0; yy < h; yy++)
      for (int xx = 0; xx < w; xx++) {
        double acc = 0;
        for (int dy = -r; dy <= r; dy++)
          for (int dx = -r; dx <= r; dx++)
            acc += g[dy + r] * g[dx + r] / (sum * sum)
                * x[((size_t) k * h + reflect (yy + dy, h)) * w + reflect (xx + dx, w)];
        y[((size_t) k * h + yy) * w + xx] = (float) acc;
      }
}

static void
test_blur_weights (void)
{
  const double sigmas[3] = { 0.5, 1.0, 1.7 };
  for (int i = 0; i < 3; i++) {
    int k = 2 * (int) ceil (2 * sigmas[i]) + 1;
    float *t = g_new (float, 9 * k * k);
    nf_arch_fill_input_blur (t, k, sigmas[i]);
    double worst_sum = 0, worst_sym = 0, off = 0;
    for (int co = 0; co < 3; co++)
      for (int ci = 0; ci < 3; ci++) {
        const float *p = t + (size_t) (co * 3 + ci) * k * k;
        double s = 0;
        for (int j = 0; j < k * k; j++) {
          s += p[j];
          worst_sym = MAX (worst_sym, fabs (p[j] - p[k * k - 1 - j]));
        }
        if (co == ci)
          worst_sum = MAX (worst_sum, fabs (s - 1));
        else
          off += fabs (s);
      }
    CHECK (worst_sum < 1e-6 && worst_sym < 1e-7 && off == 0, "sigma %g (k %d): sums off by "
        "%g, asymmetry %g, off-diagonal %g", sigmas[i], k, worst_sum, worst_sym, off);
    g_free (t);
  }
}

static void
test_blur_network (void)
{
  NfModel *mb = arch_model ("style-rt", 1, 1.0, 3), *mp = arch_model ("style-rt", 1, 0, 3);
  if (!mb || !mp)
    goto out;
  /* the same learned weights in both */
  GHashTableIter it;
  gpointer key, val;
  g_hash_table_iter_init (&it, mp->tensors);
  while (g_hash_table_iter_next (&it, &key, &val)) {
    NfModelTensor *d = val, *s = nf_model_tensor (mb, key);
    size_t n = 1;
    for (int i = 0; i < d->ndim; i++)
      n *= (size_t) d->dims[i];
    memcpy (d->data, s->data, n * sizeof (float));
  }
  nf_model_bind (mp, NULL);
  CHECK (nf_model_tensor (mb, NF_ARCH_INPUT_BLUR ".weight")
      && nf_model_tensor (mb, NF_ARCH_INPUT_BLUR ".weight")->dims[3] == 5
      && g_strcmp0 (nf_model_get_metadata (mb, "input_blur"), "1") == 0,
      "style-rt with --input-blur 1: no 5x5 input_blur tensor or metadata");
  const int h = 20, w = 24;
  NfShape s = { 1, 3, h, w };
  size_t n = (size_t) 3 * h * w;
  float *x = g_new (float, n), *xb = g_new (float, n);
  float *yb = g_new (float, n), *yp = g_new (float, n);
  NfRng rng;
  nf_rng_seed (&rng, 9);
  nf_rng_fill_uniform (&rng, x, n, 0.0f, 255.0f);
  gaussian_blur (x, xb, 3, h, w, 1.0);
  double d = 0, moved = 0;
  if (run (mb, x, s, yb) && run (mp, xb, s, yp))
    for (size_t i = 0; i < n; i++)
      d = MAX (d, fabs (yb[i] - yp[i]));
  if (run (mp, x, s, yp))
    for (size_t i = 0; i < n; i++)
      moved = MAX (moved, fabs (yb[i] - yp[i]));
  CHECK (d < 1e-2 && moved > 1.0, "blurred network vs plain network on the blurred input: "
      "%g levels apart (want < 0.01); on the raw input %g (want > 1)", d, moved);
  /* the fast backend's direct conv of a planar source (which skips the zero
   * off-diagonal planes) against cpu-ref */
  float *yf = g_new (float, n);
  double fast = INFINITY;
  if (run (mb, x, s, yb) && run_on ("cpu", mb, x, s, yf)) {
    fast = 0;
    for (size_t i = 0; i < n; i++)
      fast = MAX (fast, fabs (yb[i] - yf[i]));
  }
  CHECK (fast < 1e-2, "the blurred network on cpu differs from cpu-ref by %g levels", fast);
  g_free (yf);
  for (size_t i = 0; i < n; i++)
    x[i] = 117.0f;
  double flat = 0;
  if (run (mb, x, s, yb) && run (mp, x, s, yp))
    for (size_t i = 0; i < n; i++)
      flat = MAX (flat, fabs (yb[i] - yp[i]));
  CHECK (flat < 1e-2, "on a flat image the blur changed the output by %g", flat);
  printf ("input blur: %.2g levels from the reference blur, %.2g on a flat image\n", d, flat);
  g_free (x);
  g_free (xb);
  g_free (yb);
  g_free (yp);
out:
  nf_model_free (mb);
  nf_model_free (mp);
}

static void
test_luma_only (void)
{
  for (int scale = 2; scale <= 4; scale++) {
    NfModel *m = arch_model ("sr-light-y", scale, 0, 10 + scale);
    if (!m)
      continue;
    const int h = 9, w = 11, sh = h * scale, sw = w * scale;
    NfShape s = { 1, 3, h, w };
    size_t n = (size_t) 3 * h * w, no = (size_t) 3 * sh * sw;
    float *x = g_new (float, n), *y = g_new (float, no);
    NfRng rng;
    nf_rng_seed (&rng, 4);
    nf_rng_fill_uniform (&rng, x, n, 0.2f, 0.8f);
    double worst = 0;
    long used = 0;
    if (run (m, x, s, y)) {
      size_t hw = (size_t) sh * sw;
      for (int yy = 0; yy < sh; yy++)
        for (int xx = 0; xx < sw; xx++) {
          size_t o = (size_t) yy * sw + xx, src = (size_t) (yy / scale) * w + xx / scale;
          float d[3];
          gboolean inside = TRUE;
          for (int c = 0; c < 3; c++) {
            float v = y[c * hw + o];
            inside = inside && v > 0.0f && v < 1.0f;
            d[c] = v - x[c * (size_t) h * w + src];
          }
          if (!inside)
            continue;
          used++;
          worst = MAX (worst, MAX (fabs (d[0] - d[1]), fabs (d[0] - d[2])));
        }
    }
    CHECK (used > (long) (sh * sw) / 2 && worst < 1e-5, "sr-light-y x%d: R, G and B changed "
        "by amounts up to %g apart (%ld unclamped pixels)", scale, worst, used);
    g_free (x);
    g_free (y);
    nf_model_free (m);
  }
}

static NfRecipe *
recipe (const char *task, const char *arch, const char *run)
{
  NfRecipe *r = nf_test_recipe (task, arch, data_dir, vgg_path, style_png, root, run);
  r->scale = 2;
  r->iters = 3;
  r->lr = 1e-2;
  r->preview_every = 0;
  if (!g_str_equal (task, "style")) {
    g_free (r->loss);
    r->loss = g_strdup ("pixel");
  }
  return r;
}

/* Trains r for its steps and exports RUN/out.safetensors: the exported model, or NULL
 * with the error in *error. */
static NfModel *
train (NfRecipe *r, GError **error)
{
  NfTrainer *t = NULL;
  NfModel *m = NULL;
  char *out = g_build_filename (r->run_dir, "out.safetensors", NULL);
  if (nf_recipe_finalize (r, error) && (t = nf_trainer_new (r, NULL, error))) {
    NfTrainLosses L;
    gboolean ok = TRUE;
    for (int i = 0; ok && i < r->iters; i++)
      ok = nf_trainer_step (t, &L, error);
    if (ok && nf_trainer_export (t, out, error))
      m = nf_model_load (out, error);
  }
  nf_trainer_free (t);
  g_free (out);
  return m;
}

/* max |a - b| over tensor name of two models (INFINITY when missing). */
static double
tensor_change (NfModel *a, NfModel *b, const char *name)
{
  NfModelTensor *x = nf_model_tensor (a, name), *y = nf_model_tensor (b, name);
  if (!x || !y)
    return INFINITY;
  size_t n = 1;
  for (int i = 0; i < x->ndim; i++)
    n *= (size_t) x->dims[i];
  double d = 0;
  for (size_t i = 0; i < n; i++)
    d = MAX (d, fabs (x->data[i] - y->data[i]));
  return d;
}

static void
test_training (void)
{
  GError *e = NULL;
  /* a style-rt file without the blur, then fine-tuned with --input-blur 1 */
  NfModel *plain = arch_model ("style-rt", 1, 0, 5);
  char *plain_path = g_build_filename (root, "plain.safetensors", NULL);
  if (!plain || !nf_model_save (plain, plain_path, NF_DTYPE_F32, &e)) {
    printf ("FAIL save: %s\n", e ? e->message : "?");
    failures++;
    g_clear_error (&e);
    goto out;
  }
  NfRecipe *r = recipe ("style", "style-rt", "blur");
  r->input_blur = 1.0;
  r->init = g_strdup (plain_path);
  NfModel *ref = arch_model ("style-rt", 1, 1.0, 5);
  NfModel *m = train (r, &e);
  CHECK (m, "training style-rt with --input-blur 1 from a file without it: %s",
      e ? e->message : "?");
  g_clear_error (&e);
  if (m && ref) {
    double blur = tensor_change (m, ref, NF_ARCH_INPUT_BLUR ".weight");
    double conv = tensor_change (m, plain, "conv1.weight");
    CHECK (blur == 0 && conv > 0 && conv < INFINITY, "after 3 steps: input blur moved by "
        "%g (want 0), conv1 by %g (want > 0)", blur, conv);
    printf ("style-rt + input blur, 3 steps: blur moved %g, conv1 %.3g\n", blur, conv);
    /* its file as the start of a run with another blur: refused */
    char *p = g_build_filename (root, "blur", "out.safetensors", NULL);
    NfRecipe *r2 = recipe ("style", "style-rt", "blur-other");
    r2->input_blur = 1.5;
    r2->init = g_strdup (p);
    NfModel *m2 = train (r2, &e);
    CHECK (!m2 && e && strstr (e->message, "input blur"), "--init with another blur: %s",
        m2 ? "accepted" : e ? e->message : "no error");
    if (e)
      printf ("refused as expected: %s\n", e->message);
    g_clear_error (&e);
    nf_model_free (m2);
    nf_recipe_free (r2);
    /* and as the start of a run without one: refused, saying what to give */
    r2 = recipe ("style", "style-rt", "blur-none");
    r2->init = g_strdup (p);
    m2 = train (r2, &e);
    CHECK (!m2 && e && strstr (e->message, "give the recipe --input-blur"),
        "--init of a blurred file without --input-blur: %s",
        m2 ? "accepted" : e ? e->message : "no error");
    g_clear_error (&e);
    nf_model_free (m2);
    nf_recipe_free (r2);
    g_free (p);
  }
  nf_model_free (m);
  nf_model_free (ref);
  nf_recipe_free (r);

  /* sr-light-y: its colour convs stay, its body learns */
  r = recipe ("sr", "sr-light-y", "luma");
  ref = arch_model ("sr-light-y", 2, 0, 1);
  m = train (r, &e);
  CHECK (m && r->chroma_weight == 0, "training sr-light-y: %s (chroma weight %g, want 0)",
      e ? e->message : "ok", r->chroma_weight);
  g_clear_error (&e);
  if (m && ref) {
    double a = tensor_change (m, ref, NF_ARCH_RGB_TO_Y ".weight");
    double b = tensor_change (m, ref, NF_ARCH_Y_TO_RGB ".weight");
    double c = tensor_change (m, ref, "conv_up.weight");
    CHECK (a == 0 && b == 0 && c > 0 && c < INFINITY, "sr-light-y after 3 steps: rgb_to_y "
        "moved %g, y_to_rgb %g (want 0), conv_up %g (want > 0)", a, b, c);
  }
  nf_model_free (m);
  nf_model_free (ref);
  nf_recipe_free (r);

  /* bad values */
  r = recipe ("sr", "sr-light", "bad-sr");
  r->input_blur = 1.0;
  CHECK (!nf_recipe_finalize (r, &e) && e && strstr (e->message, "--input-blur"),
      "an input blur on an SR recipe: %s", e ? e->message : "accepted");
  g_clear_error (&e);
  nf_recipe_free (r);
  r = recipe ("style", "style-rt", "bad-big");
  r->input_blur = 4.0;
  CHECK (!nf_recipe_finalize (r, &e) && e && strstr (e->message, "--input-blur 4"),
      "--input-blur 4: %s", e ? e->message : "accepted");
  g_clear_error (&e);
  nf_recipe_free (r);
  NfArchSpec s = {.arch = "sr-light",.scale = 2,.input_blur = 1.0 };
  NfGraph *g = nf_arch_build_graph (&s, &e);
  CHECK (!g && e && strstr (e->message, "only the style networks"), "sr-light with an input "
      "blur: %s", g ? "built" : e ? e->message : "no error");
  g_clear_error (&e);
  if (g)
    nf_graph_free (g);
out:
  nf_model_free (plain);
  g_free (plain_path);
}

int
main (void)
{
  GError *e = NULL;
  root = g_dir_make_tmp ("nf-test-fixed-XXXXXX", &e);
  if (!root) {
    printf ("FAIL tmp: %s\n", e->message);
    return 1;
  }
  data_dir = g_build_filename (root, "photos", NULL);
  g_mkdir (data_dir, 0755);
  for (int i = 0; i < 3; i++) {
    char *p = g_strdup_printf ("%s/p%d.png", data_dir, i);
    nf_test_write_painting (p, i % 2);
    g_free (p);
  }
  style_png = g_build_filename (root, "style.png", NULL);
  nf_test_write_painting (style_png, 0);
  if (!(vgg_path = nf_test_write_random_vgg (root, &e))) {
    printf ("FAIL random VGG: %s\n", e->message);
    return 1;
  }
  test_blur_weights ();
  test_blur_network ();
  test_luma_only ();
  test_training ();
  nf_test_rm_tree (root);
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
