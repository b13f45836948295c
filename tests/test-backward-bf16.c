/* test-backward-bf16.c — the "cpu-bf16" backend's backward passes against the fp32 "cpu"
 * backend's (training in bf16).
 *
 * Checks, on the same seeded inputs, weights and dL/dy for both backends:
 *  - conv2d backward on the convolution shapes the networks train (style-slim,
 *    style-full, sr-subpixel x2/x3/x4: the 3-channel first layers, stride-2
 *    downsampling, residual 3x3, upsampling-path 3x3, the 9x9 output layers, the
 *    sub-pixel heads) and odd channel counts (padded lanes): dL/dx, dL/dW and dL/db each
 *    within a relative RMS error of MAX_REL_RMS of fp32's (bf16 inputs, fp32
 *    accumulation: measured 2.0e-3..2.3e-3 for dL/dx and dL/dW, 1.3e-3..2.9e-3 for
 *    dL/db), and, where the convolution has more than 4 channels in and out (bf16 in
 *    both directions on every CPU with native bf16), dL/dx and dL/dW differ from fp32's
 *    by at least MIN_REL_RMS (so bf16 really ran; two fp32 kernels differ by ~1e-7);
 *  - results accumulate (+=): two backward passes into the same buffers give twice one;
 *  - whole networks through the engine, every parameter gradient and dL/dinput: the
 *    bf16 backward's own error (against cpu-bf16 with NF_CPU_BF16_FP32_BACKWARD=1, the
 *    same bf16 forward) within MAX_NET_REL_RMS (measured 3.0e-3..6.2e-3) and above
 *    MIN_REL_RMS; bf16 forward + backward against fp32 within a per-network bound
 *    (measured 0.14 style-slim, 0.12 style-full, 0.045 / 0.031 sr-subpixel x2 / x4: the
 *    bf16 forward dominates, see test_network).
 * A convolution with misplaced channel lanes or a missing accumulation errs by ~1.
 * Skips (77) on CPUs without native bf16 (cpu-bf16 cannot be created there).
 * Does not: check fp32 gradients themselves (test-backward.c, by finite differences),
 * or time anything (nf-train --benchmark; training/README.md).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-model.h"
#include "nf-tensor.h"

/* bounds from what this test measures (avx512_core_bf16, oneDNN 2.6; see above) */
#define MAX_REL_RMS 1e-2
#define MIN_REL_RMS 3e-4
#define MAX_NET_REL_RMS 2e-2

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

/* Relative RMS error ||a - b|| / ||b|| (b the fp32 reference). */
static double
rel_rms (const float *a, const float *b, size_t n)
{
  double e = 0, r = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double) a[i] - b[i];
    e += d * d;
    r += (double) b[i] * b[i];
  }
  return r > 0 ? sqrt (e / r) : (e > 0 ? INFINITY : 0);
}

typedef struct {
  float *dx, *dw, *db;
  size_t ndx, nw, nb;
} ConvGrads;

static void
conv_grads_clear (ConvGrads *g)
{
  nf_free (g->dx);
  nf_free (g->dw);
  nf_free (g->db);
  memset (g, 0, sizeof *g);
}

/* One conv2d's forward then backward (reps times, accumulating) on a backend, from a
 * fixed seed: x ~ U(-1, 1), W ~ U(-1, 1) / sqrt(fan-in), b ~ U(-0.1, 0.1),
 * dL/dy ~ U(-1, 1). FALSE (and a failure counted) on any error. */
static gboolean
conv_grads (const char *backend, NfOp op, NfShape xs, int reps, ConvGrads *g)
{
  GError *e = NULL;
  NfRng rng;
  nf_rng_seed (&rng, 77 + op.cin * 131 + op.cout * 7 + op.k + op.stride * 3);
  NfBackend *be = nf_backend_new (backend, &e);
  if (!be) {
    CHECK (FALSE, "%s: %s", backend, e->message);
    g_error_free (e);
    return FALSE;
  }
  const NfBackendIface *bi = be->iface;
  NfOpCall call = { .op = &op };
  call.in[0] = xs;
  gboolean ok = nf_op_output_shape (&op, &xs, &call.out, &e);
  size_t nx = nf_shape_numel (xs), ny = ok ? nf_shape_numel (call.out) : 0;
  g->ndx = nx;
  g->nw = (size_t) op.cout * op.cin * op.k * op.k;
  g->nb = op.cout;
  float *x = nf_alloc_floats (nx), *w = nf_alloc_floats (g->nw), *b = nf_alloc_floats (g->nb);
  float *r = nf_alloc_floats (MAX (ny, 1));
  nf_rng_fill_uniform (&rng, x, nx, -1, 1);
  float a = 1.0f / sqrtf ((float) op.cin * op.k * op.k);
  nf_rng_fill_uniform (&rng, w, g->nw, -a, a);
  nf_rng_fill_uniform (&rng, b, g->nb, -0.1f, 0.1f);
  nf_rng_fill_uniform (&rng, r, ny, -1, 1);
  op.weight = w;
  op.bias = b;
  g->dx = nf_alloc_floats (nx);
  g->dw = nf_alloc_floats (g->nw);
  g->db = nf_alloc_floats (g->nb);
  void *bx = NULL, *by = NULL, *bdy = NULL, *bdx = NULL;
  gboolean prepared = FALSE;
  if (ok) {
    bx = bi->alloc (be, xs, &e);
    by = bx ? bi->alloc (be, call.out, &e) : NULL;
    bdy = by ? bi->alloc (be, call.out, &e) : NULL;
    bdx = bdy ? bi->alloc (be, xs, &e) : NULL;
    ok = bdx != NULL;
  }
  ok = ok && (prepared = bi->prepare (be, &call, &e))
      && bi->upload (be, bx, x, xs, &e)
      && bi->forward[NF_OP_CONV2D] (be, &call, &bx, by, &e)
      && bi->upload (be, bdy, r, call.out, &e) && bi->zero (be, bdx, xs, &e);
  for (int i = 0; i < reps && ok; i++)
    ok = bi->backward[NF_OP_CONV2D] (be, &call, &bx, by, bdy, &bdx, g->dw, g->db, &e);
  ok = ok && bi->download (be, g->dx, bdx, xs, &e);
  CHECK (ok, "%s conv2d %d->%d k%d s%d: %s", backend, op.cin, op.cout, op.k, op.stride,
      e ? e->message : "");
  g_clear_error (&e);
  if (prepared)
    bi->release (be, &call);
  void *bufs[] = { bx, by, bdy, bdx };
  for (guint i = 0; i < G_N_ELEMENTS (bufs); i++)
    if (bufs[i])
      bi->free (be, bufs[i]);
  nf_backend_free (be);
  nf_free (x);
  nf_free (w);
  nf_free (b);
  nf_free (r);
  if (!ok)
    conv_grads_clear (g);
  return ok;
}

typedef struct {
  const char *what;
  int cin, cout, k, stride, h, w;
} ConvCase;

static void
test_convs (void)
{
  /* batch 2; spatial sizes as a 96-256 px crop reaches each layer, cut down to keep the
   * test short (bf16 error does not depend on the image size, only on the sum length) */
  const ConvCase cases[] = {
    { "style-slim conv1", 3, 16, 9, 1, 40, 36 },
    { "style-slim conv2", 16, 32, 3, 2, 40, 36 },
    { "style-slim conv3", 32, 64, 3, 2, 20, 18 },
    { "style-slim res", 64, 64, 3, 1, 10, 9 },
    { "style-slim deconv1", 64, 32, 3, 1, 20, 18 },
    { "style-slim deconv2", 32, 16, 3, 1, 40, 36 },
    { "style-slim deconv3", 16, 3, 9, 1, 40, 36 },
    { "style-full conv1", 3, 32, 9, 1, 40, 36 },
    { "style-full conv2", 32, 64, 3, 2, 40, 36 },
    { "style-full conv3", 64, 128, 3, 2, 20, 18 },
    { "style-full res", 128, 128, 3, 1, 10, 9 },
    { "style-full deconv1", 128, 64, 3, 1, 20, 18 },
    { "style-full deconv3", 32, 3, 9, 1, 40, 36 },
    { "sr-subpixel conv1", 3, 64, 3, 1, 24, 20 },
    { "sr-subpixel res", 64, 64, 3, 1, 24, 20 },
    { "sr-subpixel x2 conv_up", 64, 12, 3, 1, 24, 20 },
    { "sr-subpixel x3 conv_up", 64, 27, 3, 1, 24, 20 },
    { "sr-subpixel x4 conv_up", 64, 48, 3, 1, 24, 20 },
    { "odd lanes", 11, 13, 3, 1, 13, 15 },
    { "odd lanes s2", 13, 11, 5, 2, 13, 15 },
  };
  printf ("conv2d backward, cpu-bf16 vs cpu: relative RMS error (tol %.0e; bf16 must "
      "differ by >= %.0e where both directions run bf16)\n", MAX_REL_RMS, MIN_REL_RMS);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    const ConvCase *c = &cases[i];
    NfOp op = { .type = NF_OP_CONV2D, .name = (char *) c->what, .k = c->k, .stride = c->stride,
      .padding = c->k / 2, .pad_mode = NF_PAD_REFLECT, .cin = c->cin, .cout = c->cout,
      .has_bias = TRUE };
    NfShape xs = { 2, c->cin, c->h, c->w };
    ConvGrads f = { 0 }, h = { 0 }, h2 = { 0 };
    if (!conv_grads ("cpu", op, xs, 1, &f) || !conv_grads ("cpu-bf16", op, xs, 1, &h)
        || !conv_grads ("cpu-bf16", op, xs, 2, &h2)) {
      conv_grads_clear (&f);
      conv_grads_clear (&h);
      continue;
    }
    double ex = rel_rms (h.dx, f.dx, f.ndx), ew = rel_rms (h.dw, f.dw, f.nw);
    double eb = rel_rms (h.db, f.db, f.nb);
    gboolean bf16 = c->cin > 4 && c->cout > 4;
    gboolean pass = ex <= MAX_REL_RMS && ew <= MAX_REL_RMS && eb <= MAX_REL_RMS
        && (!bf16 || (ex >= MIN_REL_RMS && ew >= MIN_REL_RMS));
    /* twice accumulates: exactly double (the same kernels on the same data) */
    for (size_t j = 0; j < h.ndx; j++)
      h.dx[j] *= 2;
    for (size_t j = 0; j < h.nw; j++)
      h.dw[j] *= 2;
    for (size_t j = 0; j < h.nb; j++)
      h.db[j] *= 2;
    double acc = MAX (MAX (rel_rms (h2.dx, h.dx, h.ndx), rel_rms (h2.dw, h.dw, h.nw)),
        rel_rms (h2.db, h.db, h.nb));
    pass = pass && acc <= 1e-6;
    printf ("%s %-24s %3d->%-3d k%d s%d %2dx%-2d  dx %.1e  dW %.1e  db %.1e%s  "
        "2x accumulated %.0e\n", pass ? "ok  " : "FAIL", c->what, c->cin, c->cout, c->k,
        c->stride, c->w, c->h, ex, ew, eb, bf16 ? "" : "  (may run fp32)", acc);
    if (!pass)
      failures++;
    conv_grads_clear (&f);
    conv_grads_clear (&h);
    conv_grads_clear (&h2);
  }
}

/* ---- whole networks through the engine -------------------------------------- */

static void *
lookup_grad (const char *name, gpointer user_data)
{
  return g_hash_table_lookup (user_data, name);
}

/* dL/dinput and every parameter gradient (sorted by tensor name) of one seeded network
 * on one backend, for L = sum(r * y). NULL on failure. */
static float *
network_grads (const char *backend, NfArchSpec spec, int h, int w, size_t *n_out)
{
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&spec, 5, &e);
  NfBackend *be = m ? nf_backend_new (backend, &e) : NULL;
  if (!be) {
    CHECK (FALSE, "%s %s: %s", backend, spec.arch, e ? e->message : "");
    g_clear_error (&e);
    nf_model_free (m);
    return NULL;
  }
  NfEngineOptions opts = { .keep_all_values = TRUE, .no_fusion = TRUE };
  NfEngine *eng = nf_engine_new (m, be, &opts);
  NfShape s = { 2, 3, h, w };
  NfRng rng;
  nf_rng_seed (&rng, 2024);
  float *x = nf_alloc_floats (nf_shape_numel (s));
  nf_rng_fill_uniform (&rng, x, nf_shape_numel (s), m->in_lo, m->in_hi);
  gboolean ok = nf_engine_plan (eng, s, &e);
  NfShape o = ok ? nf_engine_output_shape (eng) : s;
  float *r = nf_alloc_floats (nf_shape_numel (o)), *y = nf_alloc_floats (nf_shape_numel (o));
  nf_rng_fill_uniform (&rng, r, nf_shape_numel (o), -1, 1);
  GList *names = g_list_sort (g_hash_table_get_keys (m->tensors), (GCompareFunc) strcmp);
  GHashTable *grads = g_hash_table_new (g_str_hash, g_str_equal);
  size_t total = nf_shape_numel (s);
  for (GList *l = names; l; l = l->next) {
    NfModelTensor *t = g_hash_table_lookup (m->tensors, l->data);
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
      n *= t->dims[d];
    g_hash_table_insert (grads, l->data, nf_alloc_floats (n));
    total += n;
  }
  float *all = nf_alloc_floats (total);
  ok = ok && nf_engine_run_host (eng, x, s, y, &e) && nf_engine_zero_grads (eng, &e)
      && be->iface->upload (be, nf_engine_grad_buffer (eng, m->graph->output), r, o, &e)
      && nf_engine_backward (eng, lookup_grad, grads, &e)
      && be->iface->download (be, all, nf_engine_grad_buffer (eng, m->graph->input), s, &e);
  size_t off = nf_shape_numel (s);
  for (GList *l = names; l; l = l->next) {
    NfModelTensor *t = g_hash_table_lookup (m->tensors, l->data);
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
      n *= t->dims[d];
    float *g = g_hash_table_lookup (grads, l->data);
    memcpy (all + off, g, n * sizeof (float));
    nf_free (g);
    off += n;
  }
  if (!ok) {
    CHECK (FALSE, "%s %s: %s", backend, spec.arch, e ? e->message : "");
    g_clear_error (&e);
    nf_free (all);
    all = NULL;
  }
  *n_out = total;
  g_list_free (names);
  g_hash_table_unref (grads);
  nf_free (x);
  nf_free (r);
  nf_free (y);
  nf_engine_free (eng);
  nf_backend_free (be);
  nf_model_free (m);
  return all;
}

/* The bf16 backward's own error: cpu-bf16 against cpu-bf16 with fp32 backward passes
 * (the same bf16 forward); and the whole of bf16 training's error: against fp32 "cpu"
 * (where the bf16 forward dominates: activations that differ by bf16 rounding flip ReLU
 * masks and move instance-norm statistics, and L = sum(r y) with a random r makes every
 * gradient a sum that mostly cancels, so relative errors are large; training accuracy is
 * measured by training, training/README.md). */
static void
test_network (NfArchSpec spec, int h, int w, double max_all)
{
  size_t na = 0, nb = 0, nc = 0;
  float *a = network_grads ("cpu-bf16", spec, h, w, &na);
  g_setenv ("NF_CPU_BF16_FP32_BACKWARD", "1", TRUE);
  float *b = network_grads ("cpu-bf16", spec, h, w, &nb);
  g_unsetenv ("NF_CPU_BF16_FP32_BACKWARD");
  float *c = network_grads ("cpu", spec, h, w, &nc);
  if (a && b && c && na == nb && na == nc) {
    double eb = rel_rms (a, b, na), ea = rel_rms (a, c, na);
    gboolean pass = eb <= MAX_NET_REL_RMS && eb >= MIN_REL_RMS && ea <= max_all;
    printf ("%s network %-11s x%d w%d res%d %dx%dx2, %zu gradients: relative RMS error of "
        "the bf16 backward %.1e (tol %.0e, >= %.0e), of bf16 forward + backward vs fp32 "
        "%.1e (tol %.0e)\n", pass ? "ok  " : "FAIL", spec.arch, spec.scale, spec.width,
        spec.n_res, w, h, na, eb, MAX_NET_REL_RMS, MIN_REL_RMS, ea, max_all);
    if (!pass)
      failures++;
  }
  nf_free (a);
  nf_free (b);
  nf_free (c);
}

int
main (void)
{
  GError *e = NULL;
  NfBackend *probe = nf_backend_new ("cpu-bf16", &e);
  if (!probe) {
    printf ("SKIP: %s\n", e->message);
    g_error_free (e);
    return 77;
  }
  nf_backend_free (probe);
  test_convs ();
  test_network ((NfArchSpec) { "style-slim" }, 48, 40, 0.3);
  test_network ((NfArchSpec) { "style-full", .n_res = 2 }, 32, 28, 0.3);
  test_network ((NfArchSpec) { "sr-subpixel", 2, .n_res = 2 }, 24, 20, 0.1);
  test_network ((NfArchSpec) { "sr-subpixel", 4, .n_res = 1 }, 16, 14, 0.1);
  printf ("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
