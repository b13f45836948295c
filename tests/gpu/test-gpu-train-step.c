/* test-gpu-train-step.c — one training step on the GPU against the same step on the
 * reference CPU backend: the trainer (nf-trainer.h) end to end, same recipe, seed,
 * batch and initial weights, on "cpu-ref" and on "cuda" (and "cuda-fp16" when that
 * backend can train).
 *
 * Fixtures need no data files: synthetic photos, a synthetic painting and a random
 * two-block VGG (nf_vgg_new_random) written to a temporary folder. Cases: style-slim,
 * style-full (content + Gram + TV), sr-subpixel x2 (mix: pixel + perceptual + TV),
 * sr-johnson x4 (perceptual + TV, batch norm trained through its chain rule), at the
 * architectures' own widths, 32 px crops, batch 2. Batch norm uses unit statistics:
 * statistics from the first batch of an untrained sr-johnson include near-constant
 * channels whose 1 / sqrt(var) amplifies rounding differences (measured: 5.7e-3
 * normalised gradient error between cpu and cpu-ref with data statistics, 2e-7 with
 * unit ones), which would test the conditioning of that init, not the step.
 * Checked after one step:
 *   losses (total, content, style, pixel, tv)     relative error <= 1e-5 (fp16: 2e-2)
 *   Adam's first moment m = (1 - beta1) * grad    max|gpu - ref| / max|ref| <= 1e-4
 *     (the gradient itself; fp16: 5e-2)
 *   parameters after the Adam step                max|gpu - ref| / max|ref| <= 1e-4
 *     over the parameters whose gradient is determined (|m_ref| >= 1e-3 max|m_ref|;
 *     fp16: 5e-3); every other parameter within Adam's step bound 2 lr of the reference.
 * Why the split: Adam's first step is lr * g / (|g| + eps), about lr * sign(g), so a
 * gradient that is zero in exact arithmetic (a conv bias followed by instance norm) is
 * rounding noise whose sign differs between backends and moves its parameter by +-lr
 * (measured between cpu and cpu-ref: 1.4e-3 normalised). Those parameters can only be
 * checked against the step bound; the gradient check above covers them.
 * The fp16 tolerances are first estimates, to be calibrated on the first GPU run.
 * The step's device paths (issue 18.3, 18.4), per case on "cuda" (and on "cuda-fp16"
 * for style-slim and sr-johnson with unit statistics):
 * three steps with the weights refreshed on the device (the default) against three
 * with the old host round trip (NF_GPU_TRAIN_REPREPARE=1: download, host refold, every
 * op re-prepared; batch-norm chain rule on the host), sr-johnson also with statistics
 * from data (uploaded to the device for the refold), style-rt-multi (one style) for the
 * cond_instance_norm rows:
 *   losses of every step                           relative error <= 1e-6 (fp16: 1e-2)
 *   parameters and Adam's m after three steps      as above, 1e-5 (fp16: 5e-3), the
 *     parameters with a noise-level gradient within 3 steps x 2 lr
 *   the exported weight file of the device path    every parameter equal, bit for bit, to
 *     its checkpointed host parameters (the host copy is brought up to date for both)
 *   steps 2 and 3 of the device path (nf_cuda_counters): no allocation, no free, one
 *     stream synchronisation (cuda-fp16: two, the gradient's finiteness check); the old
 *     path's counts are printed beside them.
 * Exit: 0 pass, 1 a check failed, 77 no usable GPU (skip, with the reason).
 * Does not: time the step (nf-train --benchmark), test ops one by one (test-gpu-ops,
 * the backward tests), or run several GPUs.
 */
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gpu-test-probe.h"
#include "nf-cuda.h"
#include "nf-error.h"
#include "nf-image.h"
#include "nf-model.h"
#include "nf-optim.h"
#include "nf-recipe.h"
#include "nf-trainer.h"
#include "nf-vgg.h"
#include "../nf-test-files.h"

#define LR 1e-3

static int failures = 0;
static char *root, *data_dir, *style_png, *vgg_path;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

/* ---- fixtures (as in tests/test-train-nets.c) ---------------------------------------- */

static void
write_pattern (const char *path, int w, int h, guint64 seed)
{
  GRand *g = g_rand_new_with_seed ((guint32) seed);
  double f[3][4];
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < 4; k++)
      f[c][k] = 0.05 + 0.3 * g_rand_double (g);
  g_rand_free (g);
  NfImage *img = nf_image_new (w, h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        double v = 128 + 60 * sin (f[c][0] * x + f[c][1] * y) + 50 * cos (f[c][2] * x * 0.7
            - f[c][3] * y) + ((x / 9 + y / 13 + c) % 3 == 0 ? 25 : -10);
        img->rgb[((size_t) y * w + x) * 3 + c] = (uint8_t) CLAMP (v, 0, 255);
      }
  nf_image_save (img, path, NULL);
  nf_image_free (img);
}

static gboolean
make_fixtures (void)
{
  GError *e = NULL;
  if (!(root = g_dir_make_tmp ("nf-test-gpu-train-XXXXXX", &e))) {
    printf ("FAIL tmp: %s\n", e->message);
    return FALSE;
  }
  data_dir = g_build_filename (root, "photos", NULL);
  g_mkdir (data_dir, 0755);
  for (int i = 0; i < 6; i++) {
    char *n = g_strdup_printf ("p%d.png", i);
    char *p = g_build_filename (data_dir, n, NULL);
    write_pattern (p, 72 + 4 * i, 64 + 6 * i, 100 + i);
    g_free (p);
    g_free (n);
  }
  style_png = g_build_filename (root, "style.png", NULL);
  write_pattern (style_png, 48, 40, 7);
  if (!(vgg_path = nf_test_write_random_vgg (root, &e))) {
    printf ("FAIL random VGG: %s\n", e->message);
    return FALSE;
  }
  return TRUE;
}


/* ---- one step on one backend --------------------------------------------------------- */

typedef struct {
  const char *task, *arch;
  int scale;
  const char *loss;             /* sr: perceptual | mix */
  const char *bn_stats;         /* NULL: unit */
} Case;

#define MAX_STEPS 3

typedef struct {
  NfTrainLosses L;              /* of the last step */
  int export_mismatch;          /* parameters whose exported tensor differs from the host's */
  char *export_first;           /* the first of them (or why the file did not load) */
  NfTrainLosses Ls[MAX_STEPS];
  NfParams *p;                  /* copy of params | grads | m | v after the steps */
  NfCudaCounters per[MAX_STEPS];        /* allocs, frees, syncs of each step */
  char *weights;                /* the exported weight file (run_steps with export) */
} Result;

static NfParams *
params_copy (const NfParams *p)
{
  NfParams *c = g_new0 (NfParams, 1);
  c->n = p->n;
  c->mem = g_memdup2 (p->mem, 4 * p->n * sizeof (float));
  c->params = c->mem;
  c->m = c->mem + 2 * p->n;
  return c;
}

/* steps steps of case c on backend; reprepare: the old host round trip after each
 * step (NF_GPU_TRAIN_REPREPARE=1 while the trainer is made); export: the weight file to
 * res->weights after the checkpoint. */
static gboolean
run_steps (const Case *c, const char *backend, int steps, gboolean reprepare,
    gboolean export, Result *res)
{
  NfRecipe *r = nf_recipe_new (c->task, NULL);
  g_free (r->arch);
  r->arch = g_strdup (c->arch);
  r->scale = c->scale;
  g_strfreev (r->data);
  r->data = g_new0 (char *, 2);
  r->data[0] = g_strdup (data_dir);
  g_free (r->split);
  r->split = g_strdup ("all");
  r->lossnet = g_strdup (vgg_path);
  g_free (r->style_layers);
  r->style_layers = g_strdup ("relu1_2,relu2_2");
  r->crop = 32;
  r->batch = 2;
  r->iters = 10;
  r->warmup = 0;
  r->lr = LR;
  g_free (r->bn_stats);
  r->bn_stats = g_strdup (c->bn_stats ? c->bn_stats : "unit");
  g_free (r->anneal);
  r->anneal = g_strdup ("none");
  r->style_size = 40;
  r->preview_count = 0;
  if (c->loss) {
    g_free (r->loss);
    r->loss = g_strdup (c->loss);
  }
  r->run_dir = g_strdup_printf ("%s/%s-%s-x%d-%s-%d%s", root, backend, c->arch, c->scale,
      r->bn_stats, steps, reprepare ? "-reprepare" : "");
  if (g_str_equal (c->task, "style"))
    r->style_image = g_strdup (style_png);
  g_free (r->backend);
  r->backend = g_strdup (backend);
  GError *e = NULL;
  NfTrainer *t = NULL;
  if (reprepare)
    g_setenv ("NF_GPU_TRAIN_REPREPARE", "1", TRUE);
  gboolean ok = nf_recipe_finalize (r, &e) && (t = nf_trainer_new (r, NULL, &e));
  g_unsetenv ("NF_GPU_TRAIN_REPREPARE");
  for (int k = 0; ok && k < steps; k++) {
    NfCudaCounters a, b;
    nf_cuda_counters (&a);
    ok = nf_trainer_step (t, &res->Ls[k], &e);
    nf_cuda_counters (&b);
    res->per[k] = (NfCudaCounters) { b.allocs - a.allocs, b.frees - a.frees,
      b.syncs - a.syncs };
    res->L = res->Ls[k];
  }
  /* the checkpoint brings the parameters (device path) and Adam's moments to the host */
  ok = ok && nf_trainer_save_checkpoint (t, &e);
  if (ok && export) {
    res->weights = g_strdup_printf ("%s/model.safetensors", r->run_dir);
    ok = nf_trainer_export (t, res->weights, &e);
    NfModel *fm = ok ? nf_model_load (res->weights, &e) : NULL;
    ok = fm != NULL;
    const NfParams *hp = nf_trainer_params (t);
    for (guint i = 0; fm && i < hp->views->len; i++) {
      const NfParamView *v = &g_array_index (hp->views, NfParamView, i);
      NfModelTensor *ft = nf_model_tensor (fm, v->name);
      if (!ft || memcmp (ft->data, hp->params + v->offset, v->count * sizeof (float)) != 0) {
        if (!res->export_mismatch++)
          res->export_first = g_strdup (v->name);
      }
    }
    nf_model_free (fm);
  }
  if (ok)
    res->p = params_copy (nf_trainer_params (t));
  else
    printf ("FAIL %s on %s%s: %s\n", c->arch, backend, reprepare ? " (re-prepare path)" : "",
        e ? e->message : "?");
  g_clear_error (&e);
  nf_trainer_free (t);
  nf_recipe_free (r);
  return ok;
}

static double
rel (double a, double ref)
{
  double d = fabs (a - ref), s = fabs (ref);
  return d == 0 ? 0 : d / (s > 1e-30 ? s : 1e-30);
}

/* max|a - ref| / max|ref| over the parameters whose reference gradient (m) is at least
 * 1e-3 of the largest; *n_loose gets how many of the others differ by more than
 * Adam's bound 2 lr (+ 0.1 %). */
static double
param_err (const NfParams *a, const NfParams *ref, double lr, size_t *n_loose)
{
  double mm = 0, md = 0, mr = 0;
  for (size_t i = 0; i < ref->n; i++)
    mm = MAX (mm, fabs ((double) ref->m[i]));
  *n_loose = 0;
  for (size_t i = 0; i < ref->n; i++) {
    double d = fabs ((double) a->params[i] - ref->params[i]);
    mr = MAX (mr, fabs ((double) ref->params[i]));
    if (fabs ((double) ref->m[i]) >= 1e-3 * mm)
      md = MAX (md, d);
    else if (d > 2 * lr * 1.001)
      (*n_loose)++;
  }
  return md / (mr > 0 ? mr : 1e-30);
}

/* max|a - ref| / max|ref| over n floats */
static double
norm_err (const float *a, const float *ref, size_t n)
{
  double md = 0, mr = 0;
  for (size_t i = 0; i < n; i++) {
    md = MAX (md, fabs ((double) a[i] - ref[i]));
    mr = MAX (mr, fabs ((double) ref[i]));
  }
  return md / (mr > 0 ? mr : 1e-30);
}

static gboolean
one_step (const Case *c, const char *backend, Result *res)
{
  return run_steps (c, backend, 1, FALSE, FALSE, res);
}

static void
result_clear (Result *r)
{
  if (r->p) {
    g_free (r->p->mem);
    g_free (r->p);
  }
  g_free (r->weights);
  g_free (r->export_first);
  memset (r, 0, sizeof *r);
}

static void
compare (const Case *c, const char *backend, const Result *ref, double tol_loss,
    double tol_grad, double tol_param)
{
  Result g = { 0 };
  if (!one_step (c, backend, &g)) {
    failures++;
    return;
  }
  const char *names[5] = { "total", "content", "style", "pixel", "tv" };
  double a[5] = { g.L.total, g.L.content, g.L.style, g.L.pixel, g.L.tv };
  double b[5] = { ref->L.total, ref->L.content, ref->L.style, ref->L.pixel, ref->L.tv };
  double worst = 0;
  for (int i = 0; i < 5; i++) {
    double e = rel (a[i], b[i]);
    worst = MAX (worst, e);
    CHECK (e <= tol_loss, "%s x%d %s: loss %s %.9g vs cpu-ref %.9g (rel %.2e > %.0e)",
        c->arch, c->scale, backend, names[i], a[i], b[i], e, tol_loss);
  }
  CHECK (g.p->n == ref->p->n, "parameter counts differ");
  if (g.p->n == ref->p->n) {
    double em = norm_err (g.p->m, ref->p->m, g.p->n);
    size_t n_loose;
    double ep = param_err (g.p, ref->p, LR, &n_loose);
    CHECK (em <= tol_grad, "%s x%d %s: gradient (Adam m) normalised error %.2e > %.0e",
        c->arch, c->scale, backend, em, tol_grad);
    CHECK (ep <= tol_param, "%s x%d %s: parameters after the step: normalised error %.2e "
        "> %.0e", c->arch, c->scale, backend, ep, tol_param);
    CHECK (n_loose == 0, "%s x%d %s: %zu parameters with a noise-level gradient moved by "
        "more than 2 lr", c->arch, c->scale, backend, n_loose);
    printf ("%-12s x%d %-9s losses rel %.2e (total %.6g), grad %.2e, params %.2e\n", c->arch,
        c->scale, backend, worst, g.L.total, em, ep);
  }
  result_clear (&g);
}

/* MAX_STEPS steps with the weights refreshed on the device against the old host round
 * trip, on the same backend (see the header). */
static void
compare_paths (const Case *c, const char *backend, double tol_loss, double tol_param)
{
  Result d = { 0 }, h = { 0 };
  const char *st = c->bn_stats ? c->bn_stats : "unit";
  if (!run_steps (c, backend, MAX_STEPS, FALSE, TRUE, &d)
      || !run_steps (c, backend, MAX_STEPS, TRUE, FALSE, &h)) {
    failures++;
    result_clear (&d);
    result_clear (&h);
    return;
  }
  double worst = 0;
  for (int k = 0; k < MAX_STEPS; k++) {
    double a[5] = { d.Ls[k].total, d.Ls[k].content, d.Ls[k].style, d.Ls[k].pixel,
      d.Ls[k].tv };
    double b[5] = { h.Ls[k].total, h.Ls[k].content, h.Ls[k].style, h.Ls[k].pixel,
      h.Ls[k].tv };
    for (int i = 0; i < 5; i++)
      worst = MAX (worst, rel (a[i], b[i]));
  }
  CHECK (worst <= tol_loss, "%s x%d %s (%s statistics): losses of the device path vs the "
      "re-prepare path: rel %.2e > %.0e", c->arch, c->scale, backend, st, worst, tol_loss);
  size_t n_loose = 0;
  double em = norm_err (d.p->m, h.p->m, d.p->n);
  double ep = param_err (d.p, h.p, MAX_STEPS * LR, &n_loose);
  CHECK (em <= tol_param && ep <= tol_param, "%s x%d %s (%s statistics): after %d steps the "
      "device path's Adam m differs by %.2e, its parameters by %.2e (> %.0e) from the "
      "re-prepare path's", c->arch, c->scale, backend, st, MAX_STEPS, em, ep, tol_param);
  CHECK (n_loose == 0, "%s x%d %s: %zu parameters with a noise-level gradient apart by more "
      "than %d x 2 lr", c->arch, c->scale, backend, n_loose, MAX_STEPS);
  CHECK (d.export_mismatch == 0, "%s x%d %s: %d parameters of the exported weight file "
      "(first %s) differ from the checkpointed host parameters", c->arch, c->scale, backend,
      d.export_mismatch, d.export_first ? d.export_first : "?");
  guint64 max_syncs = g_str_equal (backend, "cuda-fp16") ? 2 : 1;
  for (int k = 1; k < MAX_STEPS; k++)
    CHECK (d.per[k].allocs == 0 && d.per[k].frees == 0 && d.per[k].syncs <= max_syncs,
        "%s x%d %s: step %d of the device path made %" G_GUINT64_FORMAT " allocations, %"
        G_GUINT64_FORMAT " frees and %" G_GUINT64_FORMAT " synchronisations (0, 0, <= %"
        G_GUINT64_FORMAT " expected)", c->arch, c->scale, backend, k + 1, d.per[k].allocs,
        d.per[k].frees, d.per[k].syncs, max_syncs);
  printf ("%-12s x%d %-9s %-4s device vs re-prepare path, %d steps: losses rel %.2e, m %.2e, "
      "params %.2e; per step (allocs/frees/syncs) device %" G_GUINT64_FORMAT "/%"
      G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT ", re-prepare %" G_GUINT64_FORMAT "/%"
      G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "\n", c->arch, c->scale, backend, st,
      MAX_STEPS, worst, em, ep, d.per[MAX_STEPS - 1].allocs, d.per[MAX_STEPS - 1].frees,
      d.per[MAX_STEPS - 1].syncs, h.per[MAX_STEPS - 1].allocs, h.per[MAX_STEPS - 1].frees,
      h.per[MAX_STEPS - 1].syncs);
  result_clear (&d);
  result_clear (&h);
}

int
main (void)
{
  GError *e = NULL;
  int devices = nf_gpu_test_probe ();
  if (devices == 0)
    return 77;
  /* a GPU is there: the CUDA backend must be able to train (a failure, not a skip) */
  if (!nf_trainer_choose_backend ("cuda", "cuda", NULL, &e)) {
    printf ("FAIL: %s\n", e->message);
    return 1;
  }
  char *why16 = NULL;
  if (!nf_trainer_choose_backend ("cuda", "cuda-fp16", NULL, &e)) {
    why16 = g_strdup (e->message);
    g_clear_error (&e);
  }
  if (!make_fixtures ())
    return 1;
  const Case cases[] = {
    {"style", "style-slim", 1, NULL},
    {"style", "style-full", 1, NULL},
    {"sr", "sr-subpixel", 2, "mix"},
    {"sr", "sr-johnson", 4, "perceptual"},
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    Result ref = { 0 };
    if (!one_step (&cases[i], "cpu-ref", &ref)) {
      failures++;
      continue;
    }
    compare (&cases[i], "cuda", &ref, 1e-5, 1e-4, 1e-4);
    if (!why16)
      compare (&cases[i], "cuda-fp16", &ref, 2e-2, 5e-2, 5e-3);
    result_clear (&ref);
  }
  /* the device paths of the step against the old host round trip (issue 18.3, 18.4) */
  const Case paths[] = {
    {"style", "style-slim", 1, NULL, NULL},
    {"sr", "sr-subpixel", 2, "mix", NULL},
    {"sr", "sr-johnson", 4, "perceptual", NULL},
    {"sr", "sr-johnson", 4, "perceptual", "data"},
    {"style", "style-rt-multi", 1, NULL, NULL},       /* cond_instance_norm rows */
  };
  gint64 t0 = g_get_monotonic_time ();
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++) {
    compare_paths (&paths[i], "cuda", 1e-6, 1e-5);
    /* fp16: the conversion kernel on a padded first layer and instance norms
     * (style-slim), and on batch-norm folds and transposed convolutions (sr-johnson) */
    if (!why16 && (i == 0 || i == 2))
      compare_paths (&paths[i], "cuda-fp16", 1e-2, 5e-3);
  }
  printf ("device vs re-prepare paths: %.1f s\n", (g_get_monotonic_time () - t0) / 1e6);
  if (why16)
    printf ("cuda-fp16 not tested: %s\n", why16);
  g_free (why16);
  nf_test_rm_tree (root);
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
