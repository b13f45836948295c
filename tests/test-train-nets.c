/* test-train-nets.c — training the four architectures end to end, checkpoints and
 * resume, the weight file, and the batch-norm chain rule. No shared data needed: the
 * images are synthetic (smooth random patterns written as PNGs to a temporary folder)
 * and the loss network is a seeded random VGG-shaped network (blocks of 2 and 2 convs,
 * 8 and 12 channels) saved as safetensors.
 *
 * Checks:
 *   - the batch-norm treatment of nf-trainnet (BN as a per-channel affine with frozen
 *     statistics, trained through the folded convolution): gradients of conv weights,
 *     gamma and beta of a small sr-johnson (random statistics) against central finite
 *     differences (the closer of two step sizes per element, as ReLU kinks spoil some
 *     estimates), on cpu-ref and on the fast backend;
 *   - style-full, style-slim (32x32 crops), sr-johnson x4 (with its warm-up) and
 *     sr-subpixel x2 (32x32 HR crops, pixel loss), batch 2, on the backend `auto` picks:
 *     the mean loss of three fixed batches falls by a stated factor after 12-16 steps;
 *   - a run stopped after 3 steps (checkpoint, trainer freed) and resumed for 3 more
 *     gives bit-identical parameters and Adam moments to 6 uninterrupted steps (style-slim
 *     and sr-johnson, whose batch-norm statistics come from the first batch; sr-johnson
 *     also stopped at step 0, before those statistics exist);
 *   - the exported weight file loads with nf_model_load, carries the recipe in its
 *     "training" metadata, and runs to the same output as the network in training;
 *   - recipe JSON round trip, learning-rate schedule values, clear errors for a fresh run
 *     over an existing checkpoint and for a weight file given as a checkpoint;
 *   - the training devices (nf-train-device.h): the table each backend gets, the entries
 *     a table must have, --gpus refused on the CPU, and on a machine without a usable
 *     GPU --device cuda refused with the reason that auto gives for its CPU fallback.
 * Does not: test data loading (test-train-data.c) or long runs.
 */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-checkpoint.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-image.h"
#include "nf-recipe.h"
#include "nf-train-device.h"
#include "nf-trainer.h"
#include "nf-trainnet.h"
#include "nf-vgg.h"
#include "nf-test-files.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static char *root, *data_dir, *style_png, *vgg_path;

/* ---- fixtures ------------------------------------------------------------------------- */

static void
write_pattern (const char *path, int w, int h, guint64 seed)
{
  NfRng rng;
  nf_rng_seed (&rng, seed);
  float f[3][4];
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < 4; k++)
      f[c][k] = 0.05f + 0.3f * nf_rng_uniform (&rng);
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
  root = g_dir_make_tmp ("nf-test-nets-XXXXXX", &e);
  if (!root) {
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
  NfImage *st = nf_image_new (48, 40);
  for (int y = 0; y < 40; y++)
    for (int x = 0; x < 48; x++) {
      uint8_t *px = st->rgb + ((size_t) y * 48 + x) * 3;
      px[0] = ((x + y) / 4) % 2 ? 230 : 30;
      px[1] = (x / 3) % 2 ? 200 : 60;
      px[2] = (uint8_t) (4 * y);
    }
  nf_image_save (st, style_png, NULL);
  nf_image_free (st);
  if (!(vgg_path = nf_test_write_random_vgg (root, &e))) {
    printf ("FAIL random VGG: %s\n", e->message);
    return FALSE;
  }
  return TRUE;
}


static NfRecipe *
recipe (const char *task, const char *arch, int scale, const char *run)
{
  /* The CPU backends (deterministic, so resume is bit-identical); the GPU trainer has its
   * own test (tests/gpu/test-gpu-train-step.c). */
  NfRecipe *r = nf_test_recipe (task, arch, data_dir, vgg_path, style_png, root, run);
  r->scale = scale;
  r->iters = 1000;
  return r;
}

static NfTrainer *
trainer (NfRecipe *r, const char *resume)
{
  GError *e = NULL;
  if (!nf_recipe_finalize (r, &e)) {
    printf ("FAIL recipe: %s\n", e->message);
    failures++;
    g_error_free (e);
    return NULL;
  }
  NfTrainer *t = nf_trainer_new (r, resume, &e);
  if (!t) {
    printf ("FAIL trainer: %s\n", e->message);
    failures++;
    g_error_free (e);
  }
  return t;
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

/* Mean loss over batches 1000..1002 (never trained on in these short runs). */
static double
held_loss (NfTrainer *t)
{
  double s = 0;
  for (int i = 0; i < 3; i++) {
    NfTrainLosses L;
    GError *e = NULL;
    if (!nf_trainer_loss_on_batch (t, 1000 + i, &L, &e)) {
      printf ("FAIL loss: %s\n", e->message);
      g_error_free (e);
      failures++;
      return NAN;
    }
    s += L.total / 3;
  }
  return s;
}

/* ---- batch-norm chain rule ---------------------------------------------------------- */

typedef struct {
  NfTrainNet *net;
  NfShape s;
  float *x, *y, *r;
  size_t ny;
} FdCtx;

static double
fd_loss (FdCtx *c)
{
  GError *e = NULL;
  if (!nf_trainnet_sync (c->net, &e) || !nf_trainnet_forward (c->net, c->s, c->x, c->y, &e)) {
    printf ("FAIL fd forward: %s\n", e->message);
    g_error_free (e);
    return NAN;
  }
  double l = 0;
  for (size_t i = 0; i < c->ny; i++)
    l += (double) c->y[i] * c->r[i];
  return l;
}

static void
test_bn_gradients (const char *backend)
{
  GError *e = NULL;
  NfBackend *be = nf_backend_new (backend, &e);
  NfArchSpec spec = {.arch = "sr-johnson",.scale = 2,.width = 6,.n_res = 1 };
  NfModel *m = nf_arch_new_model (&spec, 11, &e);
  NfTrainNet *net = m && be ? nf_trainnet_new (m, be, &e) : NULL;
  if (!net) {
    printf ("FAIL bn net: %s\n", e->message);
    failures++;
    g_error_free (e);
    return;
  }
  CHECK (nf_trainnet_has_batch_norm (net), "sr-johnson has batch norm");
  FdCtx c = {.net = net,.s = { 1, 3, 5, 7 } };
  size_t nx = nf_shape_numel (c.s);
  c.ny = nx * 4;
  c.x = nf_alloc_floats (nx);
  c.y = nf_alloc_floats (c.ny);
  c.r = nf_alloc_floats (c.ny);
  NfRng rng;
  nf_rng_seed (&rng, 3);
  nf_rng_fill_uniform (&rng, c.x, nx, 0.0f, 1.0f);
  nf_rng_fill_uniform (&rng, c.r, c.ny, -1.0f, 1.0f);
  fd_loss (&c);
  if (!nf_trainnet_backward (net, c.r, &e)) {
    printf ("FAIL backward: %s\n", e->message);
    failures++;
    g_error_free (e);
    return;
  }
  NfParams *p = nf_trainnet_params (net);
  float *g = g_memdup2 (p->grads, p->n * sizeof (float));
  const char *names[] = { "conv1.weight", "bn1.weight", "bn1.bias", "res1.conv2.weight",
    "res1.bn2.weight", "res1.bn2.bias", "up1.weight", "up1.bn.weight", "up1.bn.bias",
    "conv_out.weight", "conv_out.bias", NULL
  };
  for (int k = 0; names[k]; k++) {
    const NfParamView *v = nf_params_find (p, names[k]);
    CHECK (v != NULL, "parameter %s exists", names[k]);
    if (!v)
      continue;
    double max_d = 0, max_n = 0;
    size_t step = v->count > 12 ? v->count / 12 : 1;
    for (size_t i = 0; i < v->count; i += step) {
      /* two step sizes; the closer estimate counts (a ReLU kink inside one step spoils
       * that estimate, rarely both) */
      float *w = p->params + v->offset + i, keep = *w;
      double best = INFINITY, num = 0;
      for (int q = 0; q < 2; q++) {
        double h = (q ? 5e-4 : 2e-3) * MAX (1.0, fabs (keep));
        *w = keep + (float) h;
        double lp = fd_loss (&c);
        *w = keep - (float) h;
        double lm = fd_loss (&c);
        *w = keep;
        double n = (lp - lm) / ((double) (keep + (float) h) - (double) (keep - (float) h));
        if (fabs (n - g[v->offset + i]) < best) {
          best = fabs (n - g[v->offset + i]);
          num = n;
        }
      }
      max_d = MAX (max_d, best);
      max_n = MAX (max_n, fabs (num));
    }
    double err = max_n > 0 ? max_d / max_n : max_d;
    CHECK (err < 2e-2, "%s on %s: gradient vs finite differences, normalised error %.2g",
        names[k], backend, err);
    printf ("BN chain rule, %s, %-18s normalised error %.2g\n", backend, names[k], err);
  }
  fd_loss (&c);
  g_free (g);
  nf_free (c.x);
  nf_free (c.y);
  nf_free (c.r);
  nf_trainnet_free (net);
  nf_model_free (m);
  nf_backend_free (be);
}

/* ---- training -------------------------------------------------------------------------- */

static void
test_loss_falls (const char *task, const char *arch, int scale, const char *loss, double lr,
    int warmup, int n, double factor)
{
  char *run = g_strdup_printf ("falls-%s-%d-%s", arch, scale, loss ? loss : "");
  NfRecipe *r = recipe (task, arch, scale, run);
  if (loss) {
    g_free (r->loss);
    r->loss = g_strdup (loss);
  }
  r->lr = lr;
  r->warmup = warmup;
  NfTrainer *t = trainer (r, NULL);
  if (t) {
    gint64 t0 = g_get_monotonic_time ();
    double before = held_loss (t);
    steps (t, n);
    double after = held_loss (t);
    CHECK (after < factor * before, "%s %s: loss %.4g -> %.4g after %d steps, expected a "
        "factor %.2f", arch, loss ? loss : "", before, after, n, factor);
    printf ("%s x%d %s on %s: held-out loss %.4g -> %.4g (x%.3f) after %d steps, %.1f s\n",
        arch, scale, loss ? loss : "", nf_trainer_backend_name (t), before, after,
        after / before, n, (g_get_monotonic_time () - t0) / 1e6);
    if (g_str_equal (arch, "style-slim")) {
      char *png = g_build_filename (r->run_dir, "preview.png", NULL), *summary = NULL;
      GError *e = NULL;
      CHECK (nf_trainer_preview (t, png, &summary, &e) && g_file_test (png,
              G_FILE_TEST_EXISTS), "preview written");
      printf ("preview: %s\n", summary ? summary : e->message);
      g_clear_error (&e);
      g_free (summary);
      g_free (png);
    }
  }
  nf_trainer_free (t);
  nf_recipe_free (r);
  g_free (run);
}

/* The stability term (nf-stability.h) in the trainer: it adds weight x its MSE to the
 * loss and leaves the other terms as they were (the doubled batch runs each crop alone:
 * instance norm is per image); trained on alone, its MSE falls; bad settings are errors. */
static void
test_stability (void)
{
  NfTrainLosses L0 = { 0 }, L1 = { 0 };
  double w = 50.0;
  for (int on = 0; on < 2; on++) {
    char *run = g_strdup_printf ("stability-%d", on);
    NfRecipe *r = recipe ("style", "style-rt", 1, run);
    r->stability_weight = on ? w : 0.0;
    NfTrainer *t = trainer (r, NULL);
    GError *e = NULL;
    if (t && !nf_trainer_loss_on_batch (t, 1000, on ? &L1 : &L0, &e)) {
      printf ("FAIL stability loss: %s\n", e->message);
      failures++;
      g_clear_error (&e);
    }
    nf_trainer_free (t);
    nf_recipe_free (r);
    g_free (run);
  }
  CHECK (L0.stability == 0 && L1.stability > 0, "stability MSE %g (off), %g (on)",
      L0.stability, L1.stability);
  CHECK (fabs (L1.content - L0.content) <= 1e-5 * L0.content
      && fabs (L1.style - L0.style) <= 1e-5 * L0.style, "the doubled batch changed the other "
      "terms: content %.9g vs %.9g, style %.9g vs %.9g", L1.content, L0.content, L1.style,
      L0.style);
  CHECK (fabs (L1.total - (L0.total + w * L1.stability)) <= 1e-6 * L1.total,
      "total %.9g = %.9g + %g x %.9g", L1.total, L0.total, w, L1.stability);
  printf ("stability term: MSE %.4g at initialisation, total %.6g = %.6g + %g x MSE\n",
      L1.stability, L1.total, L0.total, w);

  /* with a still weight too, every other crop is still (noise, no shift) and weighted by
   * it: the batch of 2 has one of each; the still crop's MSE is the noise's alone,
   * smaller */
  double w2 = 300.0;
  NfTrainLosses L2 = { 0 }, L3 = { 0 };
  for (int both = 0; both < 2; both++) {
    NfRecipe *r = recipe ("style", "style-rt", 1, both ? "stability-both" : "stability-off2");
    r->stability_weight = both ? w : 0.0;
    r->stability_still_weight = both ? w2 : 0.0;
    NfTrainer *t = trainer (r, NULL);
    GError *e = NULL;
    if (t && !nf_trainer_loss_on_batch (t, 1000, both ? &L3 : &L2, &e)) {
      printf ("FAIL stability loss: %s\n", e->message);
      failures++;
      g_clear_error (&e);
    }
    nf_trainer_free (t);
    nf_recipe_free (r);
  }
  CHECK (L3.stability > 0 && L3.stability_still > 0 && L3.stability_still < L3.stability
      && L2.stability_still == 0, "still MSE %g, shifted %g (off: %g)", L3.stability_still,
      L3.stability, L2.stability_still);
  CHECK (fabs (L3.total - (L2.total + w * L3.stability + w2 * L3.stability_still))
      <= 1e-6 * L3.total, "total %.9g = %.9g + %g x %.9g + %g x %.9g", L3.total, L2.total, w,
      L3.stability, w2, L3.stability_still);
  printf ("with a still part: shifted MSE %.4g, still MSE %.4g\n", L3.stability,
      L3.stability_still);

  /* trained on alone (no content or style), the network learns to commute with shifts */
  NfRecipe *r = recipe ("style", "style-rt", 1, "stability-alone");
  r->stability_weight = 1e3;
  r->content_weight = 0;
  r->style_weight = 0;
  r->tv_strength = 0;
  r->lr = 1e-2;
  NfTrainer *t = trainer (r, NULL);
  if (t) {
    double before = 0, after = 0;
    NfTrainLosses L;
    GError *e = NULL;
    for (int i = 0; i < 3; i++)
      before += nf_trainer_loss_on_batch (t, 1000 + i, &L, &e) ? L.stability / 3 : NAN;
    steps (t, 15);
    for (int i = 0; i < 3; i++)
      after += nf_trainer_loss_on_batch (t, 1000 + i, &L, &e) ? L.stability / 3 : NAN;
    CHECK (after < 0.7 * before, "stability MSE %.4g -> %.4g after 15 steps on it alone",
        before, after);
    printf ("stability alone: MSE %.4g -> %.4g after 15 steps\n", before, after);
    g_clear_error (&e);
  }
  nf_trainer_free (t);
  nf_recipe_free (r);

  const struct {
    double w, noise;
    int shift;
    double still;
    int jpeg;
  } bad[] = { {-1, 4, 4, 0, 0}, {1, 4, 33, 0, 0}, {1, -1, 4, 0, 0}, {1, 0, 0, 0, 0},
    {0, 4, 4, -1, 0}, {0, 0, 4, 1, 0}, {1, 4, 4, 0, -1}, {1, 4, 4, 0, 96} };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    r = recipe ("style", "style-rt", 1, "stability-bad");
    r->stability_weight = bad[i].w;
    r->stability_noise = bad[i].noise;
    r->stability_shift = bad[i].shift;
    r->stability_still_weight = bad[i].still;
    r->stability_jpeg = bad[i].jpeg;
    GError *e = NULL;
    CHECK (!nf_recipe_finalize (r, &e) && e && strstr (e->message, "stability"),
        "stability weight %g shift %d noise %g still %g jpeg %d accepted", bad[i].w,
        bad[i].shift, bad[i].noise, bad[i].still, bad[i].jpeg);
    g_clear_error (&e);
    nf_recipe_free (r);
  }
}

static gboolean
same_state (NfParams *a, NfParams *b)
{
  return a->n == b->n && !memcmp (a->params, b->params, a->n * sizeof (float))
      && !memcmp (a->m, b->m, a->n * sizeof (float))
      && !memcmp (a->v, b->v, a->n * sizeof (float));
}

static void
test_resume (const char *task, const char *arch, int scale, int stop_at)
{
  char *run_a = g_strdup_printf ("straight-%s-%d", arch, stop_at);
  char *run_b = g_strdup_printf ("stopped-%s-%d", arch, stop_at);
  NfRecipe *ra = recipe (task, arch, scale, run_a), *rb = recipe (task, arch, scale, run_b);
  ra->iters = rb->iters = 6;
  g_free (ra->anneal);
  ra->anneal = g_strdup ("cosine");
  g_free (rb->anneal);
  rb->anneal = g_strdup ("cosine");
  ra->warmup = rb->warmup = 2;
  NfTrainer *a = trainer (ra, NULL), *b = trainer (rb, NULL);
  if (!a || !b)
    return;
  steps (a, 6);
  steps (b, stop_at);
  GError *e = NULL;
  CHECK (nf_trainer_save_checkpoint (b, &e), "checkpoint");
  char *ck = g_strdup (nf_trainer_checkpoint_path (b));
  nf_trainer_free (b);
  NfRecipe *rc = nf_trainer_recipe_from_checkpoint (ck, &e);
  CHECK (rc != NULL, "recipe from checkpoint");
  b = rc ? trainer (rc, ck) : NULL;
  if (b) {
    CHECK (nf_trainer_steps_done (b) == (guint64) stop_at, "resumed at step %d", stop_at);
    steps (b, 6 - stop_at);
    CHECK (same_state (nf_trainer_params (a), nf_trainer_params (b)),
        "%s: %d + %d steps across a checkpoint = 6 straight steps (parameters, Adam moments)",
        arch, stop_at, 6 - stop_at);
    printf ("%s: stopped at step %d and resumed, %s the straight run\n", arch, stop_at,
        same_state (nf_trainer_params (a), nf_trainer_params (b)) ? "is bit-identical to"
        : "DIFFERS from");
    CHECK (!nf_trainer_step (b, NULL, &e) && e, "no step beyond --iters");
    g_clear_error (&e);
  }

  /* the weight file: loads, carries the recipe, runs like the trained network */
  char *out = g_build_filename (ra->run_dir, "model.safetensors", NULL);
  CHECK (nf_trainer_export (a, out, &e), "export");
  NfModel *m = nf_model_load (out, &e);
  CHECK (m != NULL, "exported model loads: %s", e ? e->message : "");
  g_clear_error (&e);
  if (m) {
    const char *tr = nf_model_get_metadata (m, "training");
    JsonNode *n = tr ? json_from_string (tr, NULL) : NULL;
    JsonObject *o = n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
    JsonObject *rec = o && json_object_has_member (o, "recipe")
        ? json_object_get_object_member (o, "recipe") : NULL;
    CHECK (rec && g_str_equal (json_object_get_string_member (rec, "arch"), arch)
        && json_object_get_int_member (rec, "iters") == 6
        && json_object_get_int_member (o, "steps") == 6, "training metadata holds the recipe");
    if (n)
      json_node_unref (n);
    /* same output as the trainer's own model through a fresh engine */
    NfBackend *be = nf_backend_new ("cpu-ref", NULL);
    int ins = g_str_equal (task, "style") ? 16 : 8;
    NfShape s = { 1, 3, ins, ins };
    size_t nx = nf_shape_numel (s), ny = nx * m->scale * m->scale;
    float *x = nf_alloc_floats (nx), *y1 = nf_alloc_floats (ny), *y2 = nf_alloc_floats (ny);
    NfRng rng;
    nf_rng_seed (&rng, 9);
    nf_rng_fill_uniform (&rng, x, nx, m->in_lo, m->in_hi);
    NfArchSpec as = {.arch = arch,.scale = scale };
    NfModel *m2 = nf_arch_new_model (&as, 1, NULL);
    NfCheckpoint *c = nf_checkpoint_open (ck, NULL);
    NfEngine *e1 = nf_engine_new (m, be, NULL);
    nf_engine_run_host (e1, x, s, y1, NULL);
    double ref = 0, d = 0;
    (void) c;
    nf_checkpoint_free (c);
    /* the straight run's parameters into a fresh model */
    NfParams *pa = nf_trainer_params (a);
    for (guint i = 0; i < pa->views->len; i++) {
      const NfParamView *v = &g_array_index (pa->views, NfParamView, i);
      memcpy (nf_model_tensor (m2, v->name)->data, pa->params + v->offset,
          v->count * sizeof (float));
    }
    GHashTableIter it;
    gpointer k, val;
    g_hash_table_iter_init (&it, m->tensors);
    while (g_hash_table_iter_next (&it, &k, &val))
      if (g_str_has_suffix (k, "running_mean") || g_str_has_suffix (k, "running_var"))
        memcpy (nf_model_tensor (m2, k)->data, ((NfModelTensor *) val)->data,
            sizeof (float) * ((NfModelTensor *) val)->dims[0]);
    nf_model_bind (m2, NULL);
    NfEngine *e2 = nf_engine_new (m2, be, NULL);
    nf_engine_run_host (e2, x, s, y2, NULL);
    for (size_t i = 0; i < ny; i++) {
      d = MAX (d, fabs (y1[i] - y2[i]));
      ref = MAX (ref, fabs (y2[i]));
    }
    CHECK (d <= 1e-6 * MAX (ref, 1.0), "exported model output differs by %g", d);
    nf_engine_free (e1);
    nf_engine_free (e2);
    nf_model_free (m2);
    nf_free (x);
    nf_free (y1);
    nf_free (y2);
    nf_backend_free (be);
    nf_model_free (m);
  }
  /* a fresh run over an existing checkpoint is refused; a model is not a checkpoint */
  NfTrainer *again = nf_trainer_new (rb, NULL, &e);
  CHECK (!again && e && strstr (e->message, "resume"), "fresh run over a checkpoint refused");
  if (e)
    printf ("expected error: %s\n", e->message);
  g_clear_error (&e);
  NfCheckpoint *bad = nf_checkpoint_open (out, &e);
  CHECK (!bad && e, "a weight file is not a checkpoint");
  if (e)
    printf ("expected error: %s\n", e->message);
  g_clear_error (&e);
  g_free (out);
  g_free (ck);
  nf_trainer_free (a);
  nf_trainer_free (b);
  nf_recipe_free (ra);
  nf_recipe_free (rb);
  nf_recipe_free (rc);
  g_free (run_a);
  g_free (run_b);
}

static void
test_recipe (void)
{
  NfRecipe *r = recipe ("sr", "sr-subpixel", 3, "recipe");
  GError *e = NULL;
  r->crop = 30;
  CHECK (nf_recipe_finalize (r, &e), "finalize: %s", e ? e->message : "");
  g_clear_error (&e);
  /* the terms only the CPU trainer computes: named, so the GPU trainer can refuse them */
  CHECK (nf_recipe_host_only_term (r) == NULL, "plain sr recipe: host-only term %s",
      nf_recipe_host_only_term (r));
  r->chroma_weight = 0.5;
  CHECK (r->pixel_weight > 0 || nf_recipe_host_only_term (r) == NULL,
      "chroma weight without a pixel loss counted");
  double pw = r->pixel_weight;
  r->pixel_weight = 1.0;
  const char *term = nf_recipe_host_only_term (r);
  CHECK (term && g_str_equal (term, "--chroma-weight"), "chroma weight 0.5: %s",
      term ? term : "none");
  r->chroma_weight = 1.0;
  r->pixel_weight = pw;
  char *j1 = nf_recipe_to_json (r, TRUE);
  NfRecipe *r2 = nf_recipe_new ("sr", NULL);
  CHECK (nf_recipe_update_from_json (r2, j1, &e), "parse back");
  char *j2 = nf_recipe_to_json (r2, TRUE);
  CHECK (g_str_equal (j1, j2), "recipe JSON round trip:\n%s\n%s", j1, j2);
  CHECK (strstr (j1, "\"adam-eps\":1e-08") != NULL, "doubles written as valid JSON: %s", j1);
  r->iters = 100;
  r->warmup = 10;
  g_free (r->anneal);
  r->anneal = g_strdup ("cosine");
  r->lr = 1e-3;
  r->lr_min = 1e-5;
  CHECK (fabs (nf_recipe_lr_at (r, 0) - 1e-4) < 1e-12 && fabs (nf_recipe_lr_at (r, 9) - 1e-3)
      < 1e-12 && fabs (nf_recipe_lr_at (r, 50) - (1e-5 + 0.99e-3 * 0.5)) < 1e-12
      && fabs (nf_recipe_lr_at (r, 100) - 1e-5) < 1e-12, "warm-up and cosine values");
  /* extending the finished 100-step cosine run to 300 steps: the rate ramps over 20 steps
   * from the last one applied (step 99) to the 300-step schedule instead of jumping */
  double last = nf_recipe_lr_at (r, 99);
  r->iters = 300;
  double jump = nf_recipe_lr_at (r, 100);
  r->iters = 100;
  r->rewarmup = 20;
  nf_recipe_mark_extension (r, 100, 100);
  CHECK (r->iters == 100 && r->extend_at == 0, "no extension when iters did not grow");
  r->iters = 300;
  nf_recipe_mark_extension (r, 100, 100);
  CHECK (r->extend_at == 100 && fabs (r->extend_lr - last) < 1e-15, "extension recorded");
  CHECK (fabs (nf_recipe_lr_at (r, 100) - (last + (jump - last) / 20)) < 1e-15
      && nf_recipe_lr_at (r, 109) < 0.6 * nf_recipe_lr_at (r, 120), "ramp values");
  {
    /* the ramp's end meets the schedule, and the fields survive a JSON round trip */
    double f = nf_recipe_lr_at (r, 119);
    NfRecipe *r3 = nf_recipe_copy (r);
    r3->rewarmup = 0;
    CHECK (fabs (f - nf_recipe_lr_at (r3, 119)) < 1e-15 && nf_recipe_lr_at (r3, 100) == jump,
        "ramp ends on the schedule; rewarmup 0 jumps");
    char *j3 = nf_recipe_to_json (r, TRUE);
    NfRecipe *r4 = nf_recipe_new ("sr", NULL);
    CHECK (nf_recipe_update_from_json (r4, j3, &e) && r4->extend_at == 100
        && r4->extend_lr == r->extend_lr && r4->rewarmup == 20, "extension in the JSON: %s", j3);
    g_free (j3);
    nf_recipe_free (r3);
    nf_recipe_free (r4);
  }
  r->iters = 100;
  r->extend_at = 0;
  g_free (r->anneal);
  r->anneal = g_strdup ("step");
  r->lr_step = 30;
  r->lr_gamma = 0.5;
  CHECK (fabs (nf_recipe_lr_at (r, 29) - 1e-3) < 1e-12
      && fabs (nf_recipe_lr_at (r, 61) - 2.5e-4) < 1e-12, "step schedule values");
  g_free (r->loss);
  r->loss = g_strdup ("median");
  CHECK (!nf_recipe_finalize (r, &e) && e && strstr (e->message, "--loss"), "bad --loss");
  g_clear_error (&e);
  g_free (j1);
  g_free (j2);
  nf_recipe_free (r);
  nf_recipe_free (r2);
}

/* The entries every table must have (the others are optional). */
static gboolean
has_required (const NfTrainDevice *d)
{
  return d->name && d->backends[0] && d->net_backward && d->net_weights_updated
      && d->trainer_setup && d->batch_losses && d->optimiser_step
      && (!d->pixopt_init || (d->pixopt_eval && d->pixopt_free));
}

static void
test_devices (void)
{
  GError *e = NULL;
  const char *cpu[2] = { "cpu", "cpu-ref" };
  for (int i = 0; i < 2; i++) {
    NfBackend *be = nf_backend_new (cpu[i], &e);
    CHECK (be && nf_train_device_for (be, &e) == &nf_train_device_cpu,
        "backend %s: not the cpu training device (%s)", cpu[i], e ? e->message : "");
    g_clear_error (&e);
    nf_backend_free (be);
  }
  CHECK (has_required (&nf_train_device_cpu), "the cpu table lacks a required entry");
  CHECK (!nf_train_device_for_name ("no-such-backend") && !nf_train_device_for_name (NULL),
      "a training device for an unknown backend");
#ifdef NF_HAVE_CUDA_TRAIN
  CHECK (nf_train_device_for_name ("cuda") == &nf_train_device_cuda
      && nf_train_device_for_name ("cuda-fp16") == &nf_train_device_cuda
      && has_required (&nf_train_device_cuda), "the cuda table is not complete");
#else
  CHECK (!nf_train_device_for_name ("cuda"), "a cuda training device without training/cuda");
#endif

  /* --gpus is data parallelism on GPUs: a clear refusal on the CPU */
  NfRecipe *r = recipe ("sr", "sr-subpixel", 2, "gpus");
  r->gpus = 2;
  NfTrainer *t = nf_recipe_finalize (r, &e) ? nf_trainer_new (r, NULL, &e) : NULL;
  CHECK (!t && e && strstr (e->message, "--gpus 2 needs the GPU"),
      "--gpus 2 on the CPU: %s", e ? e->message : "accepted");
  g_clear_error (&e);
  nf_trainer_free (t);
  nf_recipe_free (r);

  /* without a usable GPU: --device cuda refused, auto on the CPU saying the same why */
  const char *b = nf_trainer_choose_backend ("cuda", NULL, NULL, &e);
  if (b) {
    printf ("(a GPU is usable here: the refusal of --device cuda is not checked)\n");
  } else {
    const char *why = e && g_str_has_prefix (e->message, "--device cuda: ")
        ? e->message + strlen ("--device cuda: ") : NULL;
    char *note = NULL;
    b = nf_trainer_choose_backend ("auto", "auto", &note, NULL);
    CHECK (why && b && g_str_equal (b, nf_trainer_pick_backend ("auto")) && note
        && strstr (note, why), "device auto without a GPU: %s, note \"%s\", error \"%s\"",
        b ? b : "no backend", note ? note : "", e ? e->message : "");
    g_free (note);
  }
  g_clear_error (&e);
  b = nf_trainer_choose_backend ("cpu", "cuda", NULL, &e);
  CHECK (!b && e, "--device cpu --backend cuda accepted");
  g_clear_error (&e);
}

int
main (void)
{
  if (!make_fixtures ())
    return 1;
  test_recipe ();
  test_devices ();
  test_bn_gradients ("cpu-ref");
  const char *fast = nf_trainer_pick_backend ("auto");
  if (!g_str_equal (fast, "cpu-ref"))
    test_bn_gradients (fast);
  /* lr, warm-up (sr-johnson's tanh saturates for good without one), steps, factor */
  test_loss_falls ("style", "style-slim", 1, NULL, 1e-2, 0, 12, 0.5);
  test_loss_falls ("style", "style-full", 1, NULL, 1e-2, 0, 12, 0.5);
  test_loss_falls ("sr", "sr-johnson", 4, "pixel", 1e-3, 10, 40, 0.8);
  test_loss_falls ("sr", "sr-subpixel", 2, "pixel", 1e-3, 0, 12, 0.5);
  test_stability ();
  test_resume ("style", "style-slim", 1, 3);
  test_resume ("sr", "sr-johnson", 4, 3);
  test_resume ("sr", "sr-johnson", 4, 0);     /* before the batch-norm statistics exist */
  nf_test_rm_tree (root);
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
