/* test-gpu-train-host.c — what of the GPU training step's new device paths runs on the
 * host, on any machine (suite cuda-host):
 *   - the batch-norm fold arithmetic the kernels of training/cuda/nf-cuda-bn.cu run
 *     (training/cuda/nf-cuda-bn-fold.h), here serially on the host, against
 *     nf-trainnet.c itself with random weights, gammas, betas and statistics, on an
 *     sr-johnson x4 (convolutions and stride-2 transposed convolutions folded, none with
 *     a bias) and on a small graph whose folded convolution and transposed convolution
 *     have biases (the db term): W' and b' bit for bit
 *     against the refold in the model's folded tensors; dW, db, dgamma, dbeta bit for bit
 *     against nf_trainnet_bn_chain_rule (the serial sum runs in the host's order); and
 *     nf_bn_fold_index enumerating each output channel's weights exactly once, in the
 *     channel nf_bn_fold_channel gives;
 *   - with the GPU training kernels in the build (NF_HAVE_CUDA_TRAIN): the table of where
 *     each weighted op's weights are on the device (nf_trainnet_weight_sources) for every
 *     architecture, on cpu-ref: every op of the run graph holding weights appears once,
 *     in graph order, with the element counts of its tensors; a convolution with batch
 *     norm folded in points to its fold, every other to the offsets of its own parameter
 *     views.
 * Exit: 0 pass, 1 a check failed.
 * Does not: run anything on a GPU (test-gpu-train-device.c runs the kernels against the
 * same host code; test-gpu-train-step.c the whole step).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-error.h"
#include "nf-trainnet-private.h"
#include "../../training/cuda/nf-cuda-bn-fold.h"
#ifdef NF_HAVE_CUDA_TRAIN
#include "nf-train-device-cuda.h"
#endif

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static guint32 rng_state = 12345;

static float
urand (float lo, float hi)
{
  rng_state = rng_state * 1664525u + 1013904223u;
  return lo + (hi - lo) * (float) ((rng_state >> 8) / 16777216.0);
}

static float *
tensor (NfModel *m, const char *prefix, const char *suffix)
{
  char *k = g_strconcat (prefix, ".", suffix, NULL);
  NfModelTensor *t = nf_model_tensor (m, k);
  g_free (k);
  return t ? t->data : NULL;
}

static float *
grad_of (NfParams *p, const char *prefix, const char *suffix)
{
  char *k = g_strconcat (prefix, ".", suffix, NULL);
  float *g = nf_params_grad (p, k);
  g_free (k);
  return g;
}

static gboolean
same_bits (const float *a, const float *b, size_t n, size_t *where)
{
  for (size_t i = 0; i < n; i++)
    if (memcmp (&a[i], &b[i], sizeof (float)) != 0) {
      *where = i;
      return FALSE;
    }
  return TRUE;
}

/* Every (co, j) of nf_bn_fold_index lands on a distinct element of channel co. */
static void
test_fold_index (int cout, int cin, int kk, int transposed)
{
  NfBnFoldGeom g = {.cout = cout,.cin = cin,.kk = kk,.transposed = transposed };
  size_t n = nf_bn_fold_numel (&g), per = (size_t) cin * kk;
  guint8 *seen = g_new0 (guint8, n);
  gboolean ok = TRUE;
  for (int co = 0; co < cout; co++)
    for (size_t j = 0; j < per; j++) {
      size_t i = nf_bn_fold_index (&g, co, j);
      if (i >= n || seen[i] || nf_bn_fold_channel (&g, i) != co)
        ok = FALSE;
      else
        seen[i] = 1;
    }
  CHECK (ok, "fold index %s %dx%dx%d: not a one-to-one map onto each channel's weights",
      transposed ? "conv_transpose2d" : "conv2d", cout, cin, kk);
  g_free (seen);
}

/* conv a (3 -> 5, bias) -> bn a -> relu -> transposed conv b (5 -> 4, stride 2, bias)
 * -> bn b -> conv c (4 -> 3, no bias) -> bn c */
static NfModel *
biased_folds (GError **error)
{
  NfGraphBuilder *b = nf_graph_builder_new ("x");
  int v = 0;
  NfOp ca = {.type = NF_OP_CONV2D,.k = 3,.stride = 1,.padding = 1,.pad_mode = NF_PAD_REFLECT,
    .cin = 3,.cout = 5,.has_bias = TRUE };
  NfOp na = {.type = NF_OP_BATCH_NORM,.c = 5,.eps = 1e-5f };
  NfOp r = {.type = NF_OP_RELU };
  NfOp cb = {.type = NF_OP_CONV_TRANSPOSE2D,.k = 3,.stride = 2,.padding = 1,
    .output_padding = 1,.cin = 5,.cout = 4,.has_bias = TRUE };
  NfOp nb = {.type = NF_OP_BATCH_NORM,.c = 4,.eps = 1e-3f };
  NfOp cc = {.type = NF_OP_CONV2D,.k = 1,.stride = 1,.cin = 4,.cout = 3 };
  NfOp nc = {.type = NF_OP_BATCH_NORM,.c = 3,.eps = 1e-5f };
  v = nf_graph_builder_add (b, &ca, "ca", &v, 1, "ca");
  v = nf_graph_builder_add (b, &na, "na", &v, 1, "na");
  v = nf_graph_builder_add (b, &r, NULL, &v, 1, "na.relu");
  v = nf_graph_builder_add (b, &cb, "cb", &v, 1, "cb");
  v = nf_graph_builder_add (b, &nb, "nb", &v, 1, "nb");
  v = nf_graph_builder_add (b, &cc, "cc", &v, 1, "cc");
  v = nf_graph_builder_add (b, &nc, "nc", &v, 1, "nc");
  NfGraph *g = nf_graph_builder_finish (b, v);
  NfModel *m = nf_model_new_for_graph (g, NF_TASK_OTHER, 1, error);
  nf_graph_free (g);
  return m;
}

static void
test_fold_arithmetic (const char *what, NfModel *m, int want_folds, int want_transposed,
    int want_biased)
{
  GError *e = NULL;
  NfBackend *be = nf_backend_new ("cpu-ref", &e);
  NfTrainNet *t = m && be ? nf_trainnet_new (m, be, &e) : NULL;
  if (!t) {
    printf ("FAIL %s on cpu-ref: %s\n", what, e ? e->message : "?");
    failures++;
    g_clear_error (&e);
    nf_model_free (m);
    nf_backend_free (be);
    return;
  }
  NfParams *p = nf_trainnet_params (t);
  /* random parameters (gammas of either sign) and statistics, then the host refold */
  for (size_t i = 0; i < p->n; i++)
    p->params[i] = urand (-1.0f, 1.0f);
  for (guint f = 0; f < t->bns->len; f++) {
    const NfOp *bn = g_array_index (t->bns, BnFold, f).bn;
    float *mean = tensor (m, bn->name, "running_mean"), *var = tensor (m, bn->name,
        "running_var");
    for (int c = 0; c < bn->c; c++) {
      mean[c] = urand (-2.0f, 2.0f);
      var[c] = urand (0.01f, 3.0f);
    }
  }
  CHECK (nf_trainnet_sync (t, &e), "sync: %s", e ? e->message : "");
  g_clear_error (&e);
  CHECK ((int) t->bns->len == want_folds, "%s has %u folds, %d expected", what, t->bns->len,
      want_folds);

  int n_transposed = 0, n_biased = 0;
  for (guint f = 0; f < t->bns->len; f++) {
    BnFold *b = &g_array_index (t->bns, BnFold, f);
    const NfOp *bn = b->bn, *conv = b->conv;
    NfBnFoldGeom g = {.cout = conv->cout,.cin = conv->cin,.kk = conv->k * conv->k,
      .transposed = conv->type == NF_OP_CONV_TRANSPOSE2D,.eps = bn->eps };
    n_transposed += g.transposed;
    test_fold_index (g.cout, g.cin, g.kk, g.transposed);
    size_t nw = nf_bn_fold_numel (&g), c = (size_t) g.cout, where = 0;
    CHECK (nw == b->nw, "%s: %zu weights, the fold says %zu", conv->name, nw, b->nw);
    const float *w = tensor (m, conv->name, "weight");
    const float *cb = conv->has_bias ? tensor (m, conv->name, "bias") : NULL;
    n_biased += cb != NULL;
    const float *gamma = tensor (m, bn->name, "weight"), *beta = tensor (m, bn->name, "bias");
    const float *mean = tensor (m, bn->name, "running_mean");
    const float *var = tensor (m, bn->name, "running_var");

    /* refold, as bn_refold_kernel computes it per element */
    float *fw = g_new (float, nw), *fb = g_new (float, c);
    for (size_t i = 0; i < nw; i++) {
      int co = nf_bn_fold_channel (&g, i);
      fw[i] = nf_bn_fold_weight (w[i], nf_bn_fold_scale (gamma[co], var[co], g.eps));
    }
    for (size_t co = 0; co < c; co++)
      fb[co] = nf_bn_fold_bias (cb ? cb[co] : 0.0f, mean[co], beta[co],
          nf_bn_fold_scale (gamma[co], var[co], g.eps));
    CHECK (same_bits (fw, b->fw->data, nw, &where), "%s: W'[%zu] %.9g, the host refold "
        "%.9g", conv->name, where, fw[where], b->fw->data[where]);
    CHECK (same_bits (fb, b->fb->data, c, &where), "%s: b'[%zu] %.9g, the host refold %.9g",
        conv->name, where, fb[where], b->fb->data[where]);

    /* chain rule from random dW', db' onto random existing gradients */
    for (size_t i = 0; i < nw; i++)
      b->gw[i] = urand (-1.0f, 1.0f);
    for (size_t co = 0; co < c; co++)
      b->gb[co] = urand (-1.0f, 1.0f);
    for (size_t i = 0; i < p->n; i++)
      p->grads[i] = urand (-0.5f, 0.5f);
    float *g0 = g_memdup2 (p->grads, p->n * sizeof (float));
    /* the host chain rule over this fold alone: the others' dW', db' zero */
    for (guint o = 0; o < t->bns->len; o++)
      if (o != f) {
        BnFold *ob = &g_array_index (t->bns, BnFold, o);
        memset (ob->gw, 0, ob->nw * sizeof (float));
        memset (ob->gb, 0, ob->conv->cout * sizeof (float));
      }
    nf_trainnet_bn_chain_rule (t);
    size_t fs = sizeof (float);
    float *dw = g_memdup2 (g0 + (grad_of (p, conv->name, "weight") - p->grads), nw * fs);
    float *dgamma = g_memdup2 (g0 + (grad_of (p, bn->name, "weight") - p->grads), c * fs);
    float *dbeta = g_memdup2 (g0 + (grad_of (p, bn->name, "bias") - p->grads), c * fs);
    float *db = cb ? g_memdup2 (g0 + (grad_of (p, conv->name, "bias") - p->grads), c * fs)
        : NULL;
    /* as bn_chain_rule_kernel: per channel, its weights in nf_bn_fold_index order */
    for (int co = 0; co < g.cout; co++) {
      double s = nf_bn_fold_scale (gamma[co], var[co], g.eps), acc = 0.0;
      for (size_t j = 0; j < (size_t) g.cin * g.kk; j++) {
        size_t k = nf_bn_fold_index (&g, co, j);
        acc += (double) b->gw[k] * (double) w[k];
        dw[k] = nf_bn_fold_dw (dw[k], b->gw[k], s);
      }
      double inv = nf_bn_fold_inv_std (var[co], g.eps);
      dgamma[co] = nf_bn_fold_dgamma (dgamma[co], acc, b->gb[co], cb ? cb[co] : 0.0f,
          mean[co], inv);
      dbeta[co] = dbeta[co] + b->gb[co];
      if (db)
        db[co] = nf_bn_fold_db (db[co], b->gb[co], gamma[co], inv);
    }
    CHECK (same_bits (dw, grad_of (p, conv->name, "weight"), nw, &where),
        "%s: dW[%zu] differs from nf_trainnet_bn_chain_rule", conv->name, where);
    CHECK (same_bits (dgamma, grad_of (p, bn->name, "weight"), c, &where),
        "%s: dgamma[%zu] differs from nf_trainnet_bn_chain_rule", bn->name, where);
    CHECK (same_bits (dbeta, grad_of (p, bn->name, "bias"), c, &where),
        "%s: dbeta[%zu] differs from nf_trainnet_bn_chain_rule", bn->name, where);
    if (db)
      CHECK (same_bits (db, grad_of (p, conv->name, "bias"), c, &where),
          "%s: db[%zu] differs from nf_trainnet_bn_chain_rule", conv->name, where);
    g_free (fw);
    g_free (fb);
    g_free (g0);
    g_free (dw);
    g_free (dgamma);
    g_free (dbeta);
    g_free (db);
  }
  CHECK (n_transposed == want_transposed && n_biased == want_biased, "%s: %d transposed "
      "folds and %d with a bias, %d and %d expected", what, n_transposed, n_biased,
      want_transposed, want_biased);
  printf ("batch-norm fold arithmetic, %s: %u folds (%d transposed, %d with a bias) "
      "bit-identical to nf-trainnet.c\n", what, t->bns->len, n_transposed, n_biased);
  nf_trainnet_free (t);
  nf_model_free (m);
  nf_backend_free (be);
}

#ifdef NF_HAVE_CUDA_TRAIN
static size_t
numel_of (NfModel *m, const char *name, const char *suffix)
{
  char *k = g_strconcat (name, ".", suffix, NULL);
  NfModelTensor *t = g_hash_table_lookup (m->folded, k);
  if (!t)
    t = nf_model_tensor (m, k);
  g_free (k);
  size_t n = t ? 1 : 0;
  for (int d = 0; t && d < t->ndim; d++)
    n *= (size_t) t->dims[d];
  return n;
}

static void
test_sources (const char *arch, double input_blur, NfBackend *be)
{
  GError *e = NULL;
  NfModel *m = NULL;
  int scale = 0;
  if (g_str_has_prefix (arch, "sr"))
    for (int s = 2; s <= 4 && !m; s++) {
      NfArchSpec spec = {.arch = arch,.scale = s };
      g_clear_error (&e);
      if ((m = nf_arch_new_model (&spec, 3, &e)))
        scale = s;
    }
  else {
    NfArchSpec spec = {.arch = arch,.input_blur = input_blur };
    m = nf_arch_new_model (&spec, 3, &e);
  }
  NfTrainNet *t = m ? nf_trainnet_new (m, be, &e) : NULL;
  int n = 0;
  NfTrainWeightSource *src = t ? nf_trainnet_weight_sources (t, &n, &e) : NULL;
  if (!src) {
    printf ("FAIL %s: %s\n", arch, e ? e->message : "?");
    failures++;
    g_clear_error (&e);
    nf_trainnet_free (t);
    nf_model_free (m);
    return;
  }
  const NfGraph *g = m->graph;
  NfParams *p = nf_trainnet_params (t);
  int k = 0, folds = 0;
  for (int i = 0; i < g->n_ops; i++) {
    const NfOp *op = &g->ops[i];
    if (!op->weight && !op->bias)
      continue;
    if (nf_arch_op_is_fixed (op)) {
      /* a fixed op (input blur, sr-light-y's colour convs) keeps what its plan uploaded:
       * no source, no parameters */
      CHECK (!(k < n && src[k].op == i), "%s: fixed op %d (%s) has a weight source", arch,
          i, op->name);
      continue;
    }
    CHECK (k < n && src[k].op == i, "%s: op %d (%s) holds weights and has no source, or "
        "not in graph order", arch, i, op->name);
    if (k >= n || src[k].op != i)
      continue;
    const NfTrainWeightSource *s = &src[k++];
    CHECK (s->nw == numel_of (m, op->name, "weight"), "%s %s: %zu weights, the tensor has "
        "%zu", arch, op->name, s->nw, numel_of (m, op->name, "weight"));
    CHECK (s->nb == (op->bias ? numel_of (m, op->name, "bias") : 0), "%s %s: bias of %zu",
        arch, op->name, s->nb);
    int fold = -1;
    for (guint f = 0; f < t->bns->len; f++)
      if (g_str_equal (g_array_index (t->bns, BnFold, f).conv->name, op->name))
        fold = (int) f;
    CHECK (s->fold == fold, "%s %s: fold %d, expected %d", arch, op->name, s->fold, fold);
    if (fold >= 0) {
      folds++;
      continue;
    }
    char *wk = g_strconcat (op->name, ".weight", NULL), *bk = g_strconcat (op->name, ".bias",
        NULL);
    const NfParamView *wv = nf_params_find (p, wk), *bv = nf_params_find (p, bk);
    CHECK (wv && s->w == wv->offset && s->w + s->nw <= p->n, "%s %s: weight at offset "
        "%zu, its view at %zu", arch, op->name, s->w, wv ? wv->offset : 0);
    CHECK (s->nb == 0 || (bv && s->b == bv->offset && s->b + s->nb <= p->n), "%s %s: bias "
        "at offset %zu", arch, op->name, s->b);
    g_free (wk);
    g_free (bk);
  }
  CHECK (k == n, "%s: %d sources for %d weighted ops", arch, n, k);
  CHECK (folds == (int) t->bns->len, "%s: %d folded convolutions, %u folds", arch, folds,
      t->bns->len);
  char sc[16] = "";
  if (scale)
    g_snprintf (sc, sizeof sc, " x%d", scale);
  printf ("weight sources %-12s%s: %d ops, %d with batch norm folded in\n", arch, sc, n,
      folds);
  g_free (src);
  nf_trainnet_free (t);
  nf_model_free (m);
}
#endif

int
main (void)
{
  GError *e0 = NULL;
  NfArchSpec spec = {.arch = "sr-johnson",.scale = 4,.width = 6,.n_res = 1 };
  NfModel *mj = nf_arch_new_model (&spec, 17, &e0), *mb = mj ? biased_folds (&e0) : NULL;
  if (!mb) {
    printf ("FAIL the models: %s\n", e0->message);
    return 1;
  }
  /* folds: conv1, res1.bn1, res1.bn2, up1, up2 */
  test_fold_arithmetic ("sr-johnson x4", mj, 5, 2, 0);
  test_fold_arithmetic ("biased folds", mb, 3, 1, 2);
  test_fold_index (5, 3, 9, 0);
  test_fold_index (5, 3, 9, 1);
  test_fold_index (1, 1, 1, 1);
#ifdef NF_HAVE_CUDA_TRAIN
  GError *e = NULL;
  NfBackend *be = nf_backend_new ("cpu-ref", &e);
  if (!be) {
    printf ("FAIL cpu-ref: %s\n", e->message);
    return 1;
  }
  for (const char *const *a = nf_arch_names (); *a; a++)
    test_sources (*a, 0, be);
  test_sources ("style-rt", 1.0, be);   /* with the fixed input blur */
  nf_backend_free (be);
#else
  printf ("weight sources: not built (no GPU training kernels in this build)\n");
#endif
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
