/* test-train-init.c — `nf-train --init FILE`: fine-tuning starts from a weight file.
 *
 * Checks: a file of sr-light x2, built here with the graph builder (not nf-arch.c), is
 * copied tensor for tensor into the trainer's network, which then computes what the file
 * does (outputs compared on the cpu-ref engine); a file that lacks a tensor of the
 * network, or has one of another shape, is refused with a message naming the tensor.
 * Does not: train (test-train-nets.c) or resume from checkpoints (also there).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "nf-engine.h"
#include "nf-error.h"
#include "nf-model.h"
#include "nf-recipe.h"
#include "nf-arch.h"
#include "nf-backend.h"
#include "nf-test-files.h"
#include "nf-trainer.h"

static int failures = 0;
static char *root, *data_dir;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

/* sr-light x2 by hand: 5x5 conv w, n 3x3 convs with ReLU, 3x3 conv to 12 channels,
 * pixel shuffle, + nearest-upsampled input, clamp. conv_up_bias FALSE drops a tensor the
 * network has (a file that must be refused). */
static NfModel *
hand_sr_light (int w, int n, gboolean conv_up_bias, guint64 seed)
{
  NfGraphBuilder *b = nf_graph_builder_new ("x");
  NfOp c1 = { .type = NF_OP_CONV2D, .k = 5, .stride = 1, .padding = 2,
    .pad_mode = NF_PAD_REFLECT, .cin = 3, .cout = w, .has_bias = TRUE };
  int in = 0;
  int v = nf_graph_builder_add (b, &c1, "conv1", &in, 1, "conv1");  // (N, w, H, W)
  NfOp relu = { .type = NF_OP_RELU };
  v = nf_graph_builder_add (b, &relu, NULL, &v, 1, "conv1.relu");
  for (int i = 1; i <= n; i++) {
    char *p = g_strdup_printf ("body%d", i), *pr = g_strconcat (p, ".relu", NULL);
    NfOp c = c1;
    c.k = 3;
    c.padding = 1;
    c.cin = w;
    v = nf_graph_builder_add (b, &c, p, &v, 1, p);               // (N, w, H, W)
    v = nf_graph_builder_add (b, &relu, NULL, &v, 1, pr);
    g_free (p);
    g_free (pr);
  }
  NfOp up = c1;
  up.k = 3;
  up.padding = 1;
  up.cin = w;
  up.cout = 12;
  up.has_bias = conv_up_bias;
  v = nf_graph_builder_add (b, &up, "conv_up", &v, 1, "conv_up");  // (N, 12, H, W)
  NfOp ps = { .type = NF_OP_PIXEL_SHUFFLE, .factor = 2 };
  v = nf_graph_builder_add (b, &ps, NULL, &v, 1, "shuffle");      // (N, 3, 2H, 2W)
  NfOp nn = { .type = NF_OP_UPSAMPLE_NEAREST, .factor = 2 };
  int skip = nf_graph_builder_add (b, &nn, NULL, &in, 1, "x.up"); // (N, 3, 2H, 2W)
  NfOp add = { .type = NF_OP_ADD };
  int pair[2] = { v, skip };
  v = nf_graph_builder_add (b, &add, NULL, pair, 2, "sum");
  NfOp cl = { .type = NF_OP_CLAMP, .min = 0.0f, .max = 1.0f };
  v = nf_graph_builder_add (b, &cl, NULL, &v, 1, "y");
  NfGraph *g = nf_graph_builder_finish (b, v);
  GError *e = NULL;
  NfModel *m = nf_model_new_for_graph (g, NF_TASK_SUPERRES, 2, &e);
  nf_graph_free (g);
  if (!m) {
    printf ("FAIL hand-built sr-light: %s\n", e->message);
    g_error_free (e);
    failures++;
    return NULL;
  }
  m->in_lo = m->out_lo = 0.0f;
  m->in_hi = m->out_hi = 1.0f;
  nf_arch_init_weights (m, seed);
  nf_model_set_metadata (m, "arch", "sr-light");
  return m;
}

/* A trainer of sr-light x2 (w 8, 2 body convs) started from init_path, exported to
 * out_path without a step; FALSE with the trainer's error in *error. */
static gboolean
start_and_export (const char *init_path, const char *run, const char *out_path,
    GError **error)
{
  NfRecipe *r = nf_recipe_new ("sr", NULL);
  g_free (r->arch);
  r->arch = g_strdup ("sr-light");
  r->scale = 2;
  r->width = 8;
  r->n_res = 2;
  g_strfreev (r->data);
  r->data = g_new0 (char *, 2);
  r->data[0] = g_strdup (data_dir);
  g_free (r->split);
  r->split = g_strdup ("all");
  g_free (r->device);
  r->device = g_strdup ("cpu");
  r->crop = 32;
  r->batch = 1;
  r->iters = 10;
  r->warmup = 0;
  r->init = g_strdup (init_path);
  r->run_dir = g_build_filename (root, run, NULL);
  gboolean ok = FALSE;
  NfTrainer *t = NULL;
  if (nf_recipe_finalize (r, error) && (t = nf_trainer_new (r, NULL, error)))
    ok = nf_trainer_export (t, out_path, error);
  nf_trainer_free (t);
  nf_recipe_free (r);
  return ok;
}

/* max |a - b| of the two models' outputs on one seeded 13x11 image (cpu-ref). */
static double
output_difference (NfModel *a, NfModel *b)
{
  NfShape s = { 1, 3, 11, 13 };
  size_t n = 3 * 11 * 13, no = n * 4;
  float *x = g_new (float, n), *ya = g_new (float, no), *yb = g_new (float, no);
  NfRng rng;
  nf_rng_seed (&rng, 3);
  nf_rng_fill_uniform (&rng, x, n, 0.0f, 1.0f);
  GError *e = NULL;
  double d = INFINITY;
  NfBackend *be = nf_backend_new ("cpu-ref", &e);
  NfEngine *ea = be ? nf_engine_new (a, be, NULL) : NULL;
  NfEngine *eb = be ? nf_engine_new (b, be, NULL) : NULL;
  if (ea && eb && nf_engine_run_host (ea, x, s, ya, &e)
      && nf_engine_run_host (eb, x, s, yb, &e)) {
    d = 0;
    for (size_t i = 0; i < no; i++)
      d = MAX (d, fabs ((double) ya[i] - yb[i]));
  } else {
    printf ("FAIL engine: %s\n", e ? e->message : "?");
    g_clear_error (&e);
  }
  if (ea)
    nf_engine_free (ea);
  if (eb)
    nf_engine_free (eb);
  if (be)
    nf_backend_free (be);
  g_free (x);
  g_free (ya);
  g_free (yb);
  return d;
}

static void
test_init (void)
{
  GError *e = NULL;
  NfModel *old = hand_sr_light (8, 2, TRUE, 21);
  char *old_path = g_build_filename (root, "hand.safetensors", NULL);
  char *out_path = g_build_filename (root, "started.safetensors", NULL);
  if (!old || !nf_model_save (old, old_path, NF_DTYPE_F32, &e)) {
    printf ("FAIL save: %s\n", e ? e->message : "?");
    failures++;
    g_clear_error (&e);
    goto out;
  }
  gboolean ok = start_and_export (old_path, "same", out_path, &e);
  CHECK (ok, "--init from a file of the same layout: %s", e ? e->message : "?");
  g_clear_error (&e);
  NfModel *started = ok ? nf_model_load (out_path, &e) : NULL;
  if (started) {
    int differ = 0;
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init (&it, old->tensors);
    while (g_hash_table_iter_next (&it, &key, &val)) {
      NfModelTensor *a = val, *b = nf_model_tensor (started, key);
      size_t n = 1;
      for (int d = 0; d < a->ndim; d++)
        n *= (size_t) a->dims[d];
      differ += !b || memcmp (a->data, b->data, n * sizeof (float)) != 0;
    }
    CHECK (!differ && g_hash_table_size (old->tensors) == g_hash_table_size (started->tensors),
        "%d tensors not copied", differ);
    double d = output_difference (old, started);
    CHECK (d < 1e-6, "the started network's output differs from the file's by %g", d);
    printf ("started from the file: %u tensors copied, output difference %.2g\n",
        g_hash_table_size (started->tensors), d);
    nf_model_free (started);
  } else if (ok) {
    printf ("FAIL load: %s\n", e->message);
    failures++;
    g_clear_error (&e);
  }

  /* a file lacking a tensor that does not start at zero: refused, named */
  NfModel *bad = hand_sr_light (8, 2, FALSE, 23);
  char *bad_path = g_build_filename (root, "no-bias.safetensors", NULL);
  if (bad && nf_model_save (bad, bad_path, NF_DTYPE_F32, &e)) {
    ok = start_and_export (bad_path, "bad", out_path, &e);
    CHECK (!ok && e && strstr (e->message, "conv_up.bias is not in the file"),
        "a file without conv_up.bias: %s", ok ? "accepted" : e ? e->message : "no error");
    if (e)
      printf ("refused as expected: %s\n", e->message);
  }
  g_clear_error (&e);
  nf_model_free (bad);
  g_free (bad_path);

  /* another width: refused (shape) */
  NfModel *wide = hand_sr_light (16, 2, TRUE, 24);
  char *wide_path = g_build_filename (root, "wide.safetensors", NULL);
  if (wide && nf_model_save (wide, wide_path, NF_DTYPE_F32, &e)) {
    ok = start_and_export (wide_path, "wide", out_path, &e);
    CHECK (!ok && e && strstr (e->message, "another shape")
        && strstr (e->message, "conv1."),
        "a file of width 16: %s", ok ? "accepted" : e ? e->message : "no error");
  }
  g_clear_error (&e);
  nf_model_free (wide);
  g_free (wide_path);
out:
  nf_model_free (old);
  g_free (old_path);
  g_free (out_path);
}

int
main (void)
{
  GError *e = NULL;
  root = g_dir_make_tmp ("nf-test-init-XXXXXX", &e);
  if (!root) {
    printf ("FAIL tmp: %s\n", e->message);
    return 1;
  }
  data_dir = g_build_filename (root, "photos", NULL);
  g_mkdir (data_dir, 0755);
  for (int i = 0; i < 2; i++) {
    char *p = g_strdup_printf ("%s/p%d.png", data_dir, i);
    nf_test_write_painting (p, i);
    g_free (p);
  }
  test_init ();
  nf_test_rm_tree (root);
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
