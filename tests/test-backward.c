/* test-backward.c — every op's backward against central finite differences, and the
 * engine's whole-network backward (chaining, fan-out accumulation, parameter gradients)
 * on small networks.
 *
 * L = sum(r * y) for a fixed random r, so dL/dy = r. For sampled input and weight
 * elements, dL/dθ ≈ (L(θ+h) - L(θ-h)) / 2h with L accumulated in double; compared to the
 * backend's analytic gradient with a normalised error max|a-n| / max|n|.
 * Does not: test the fast backend's backward (it has none yet) or losses (training/).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "nf-engine.h"
#include "nf-error.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

typedef struct {
  NfBackend *be;
  NfOpCall call;
  NfOp op;
  float *x[3];                  /* inputs */
  NfShape xs[3];
  float *w, *b;
  size_t nw, nb;
  float *r;                     /* dL/dy */
  float *y;
} Case;

static double
loss (Case *c)
{
  void *in[3] = { c->x[0], c->x[1], c->x[2] };
  GError *e = NULL;
  if (!c->be->iface->forward[c->op.type] (c->be, &c->call, in, c->y, &e)) {
    printf ("forward: %s\n", e->message);
    g_error_free (e);
    return NAN;
  }
  double l = 0;
  for (size_t i = 0; i < nf_shape_numel (c->call.out); i++)
    l += (double) c->r[i] * c->y[i];
  return l;
}

/* Central difference of f at p[i] with steps h and h/2. Where they disagree a kink
 * (relu, clamp, max-pool tie) lies within h: *smooth is FALSE and the sample is skipped. */
typedef double (*LossFn) (gpointer ctx);

static double
central_diff (LossFn f, gpointer ctx, float *p, size_t i, double h, gboolean *smooth)
{
  float keep = p[i];
  double d[2];
  for (int k = 0; k < 2; k++) {
    double hh = k ? h / 2 : h;
    p[i] = keep + (float) hh;
    double lp = f (ctx);
    p[i] = keep - (float) hh;
    double lm = f (ctx);
    d[k] = (lp - lm) / (2 * hh);
  }
  p[i] = keep;
  *smooth = fabs (d[0] - d[1]) <= 5e-3 * MAX (1.0, fabs (d[1]));
  return d[1];
}

static double
case_loss (gpointer c)
{
  return loss (c);
}

/* Relative error between analytic a and numeric n over sampled indices of p. */
static double
check_param (Case *c, float *p, size_t n, const float *analytic, double h, NfRng *rng,
    int samples)
{
  int skipped = 0;
  double max_err = 0, max_ref = 1e-8;
  for (int s = 0; s < samples && n > 0; s++) {
    size_t i = samples >= (int) n ? (size_t) s : nf_rng_u32 (rng) % n;
    if (i >= n)
      break;
    gboolean smooth;
    double num = central_diff (case_loss, c, p, i, h, &smooth);
    if (!smooth) {
      skipped++;
      continue;
    }
    double err = fabs (num - analytic[i]);
    if (err > max_err || isnan (err))
      max_err = isnan (err) ? INFINITY : err;
    if (fabs (num) > max_ref)
      max_ref = fabs (num);
  }
  if (skipped > samples / 2)
    return INFINITY;            /* too few smooth samples to say anything */
  return max_err / max_ref;
}

static void
run_case (const char *label, NfOp op, NfShape *xs, int n_in, float x_lo, double tol)
{
  Case c = { 0 };
  GError *e = NULL;
  NfRng rng;
  nf_rng_seed (&rng, 1234 + op.type * 7 + xs[0].h);
  c.be = nf_backend_new ("cpu-ref", NULL);
  c.op = op;
  c.op.n_in = n_in;
  c.call.op = &c.op;
  for (int j = 0; j < n_in; j++) {
    c.xs[j] = xs[j];
    c.call.in[j] = xs[j];
    c.x[j] = nf_alloc_floats (nf_shape_numel (xs[j]));
    for (size_t i = 0; i < nf_shape_numel (xs[j]); i++) {
      /* keep away from kinks: |x| >= x_lo */
      float v = nf_rng_uniform (&rng) * 2 - 1;
      c.x[j][i] = v < 0 ? v - x_lo : v + x_lo;
    }
  }
  if (!nf_op_output_shape (&c.op, xs, &c.call.out, &e)) {
    printf ("FAIL %s: %s\n", label, e->message);
    failures++;
    g_error_free (e);
    return;
  }
  if (op.type == NF_OP_CONV2D || op.type == NF_OP_CONV_TRANSPOSE2D) {
    c.nw = (size_t) op.cin * op.cout * op.k * op.k;
    c.nb = op.cout;
  } else if (op.type == NF_OP_INSTANCE_NORM) {
    c.nw = c.nb = op.c;
  }
  if (c.nw) {
    c.w = nf_alloc_floats (c.nw);
    c.b = nf_alloc_floats (c.nb);
    nf_rng_fill_uniform (&rng, c.w, c.nw, -0.5f, 0.5f);
    nf_rng_fill_uniform (&rng, c.b, c.nb, -0.5f, 0.5f);
    c.op.weight = c.w;
    c.op.bias = c.b;
  }
  size_t ny = nf_shape_numel (c.call.out);
  c.y = nf_alloc_floats (ny);
  c.r = nf_alloc_floats (ny);
  nf_rng_fill_uniform (&rng, c.r, ny, -1.0f, 1.0f);

  /* analytic */
  loss (&c);
  float *dx[3] = { NULL, NULL, NULL };
  for (int j = 0; j < n_in; j++)
    dx[j] = nf_alloc_floats (nf_shape_numel (xs[j]));
  float *dw = c.nw ? nf_alloc_floats (c.nw) : NULL, *db = c.nb ? nf_alloc_floats (c.nb) : NULL;
  void *in[3] = { c.x[0], c.x[1], c.x[2] }, *din[3] = { dx[0], dx[1], dx[2] };
  gboolean ok = c.be->iface->backward[op.type] (c.be, &c.call, in, c.y, c.r, din, dw, db, &e);
  CHECK (ok, "%s backward: %s", label, e ? e->message : "");
  g_clear_error (&e);

  double h = 1e-3;
  double err = 0;
  for (int j = 0; j < n_in; j++) {
    double ej = check_param (&c, c.x[j], nf_shape_numel (xs[j]), dx[j], h, &rng, 60);
    err = MAX (err, ej);
  }
  double ew = c.nw ? check_param (&c, c.w, c.nw, dw, h, &rng, 40) : 0;
  double eb = c.nb ? check_param (&c, c.b, c.nb, db, h, &rng, 20) : 0;
  gboolean pass = err <= tol && ew <= tol && eb <= tol;
  printf ("%s %-44s dx %.1e  dw %.1e  db %.1e  (tol %.0e)\n", pass ? "ok  " : "FAIL", label,
      err, ew, eb, tol);
  if (!pass)
    failures++;
  for (int j = 0; j < n_in; j++) {
    nf_free (c.x[j]);
    nf_free (dx[j]);
  }
  nf_free (c.w);
  nf_free (c.b);
  nf_free (dw);
  nf_free (db);
  nf_free (c.y);
  nf_free (c.r);
  nf_backend_free (c.be);
}

static void
test_ops (void)
{
  int sizes[] = { 1, 7, 13 };
  for (guint si = 0; si < G_N_ELEMENTS (sizes); si++) {
    int s = sizes[si];
    NfShape x = { 2, 3, s, s + 2 };
    char label[128];
#define LABEL(...) (g_snprintf (label, sizeof label, __VA_ARGS__), label)
    struct { int k, stride; NfPadMode pad; } convs[] = {
      { 3, 1, NF_PAD_ZERO }, { 3, 2, NF_PAD_REFLECT }, { 5, 1, NF_PAD_REFLECT }, { 1, 1, NF_PAD_ZERO }
    };
    for (guint i = 0; i < G_N_ELEMENTS (convs); i++) {
      if (convs[i].pad == NF_PAD_REFLECT && convs[i].k / 2 >= s)
        continue;
      NfOp op = { .type = NF_OP_CONV2D, .k = convs[i].k, .stride = convs[i].stride,
        .padding = convs[i].k / 2, .pad_mode = convs[i].pad, .cin = 3, .cout = 4,
        .has_bias = TRUE };
      run_case (LABEL ("conv2d k%d s%d %s %dx%d", op.k, op.stride,
              op.pad_mode == NF_PAD_REFLECT ? "reflect" : "zero", x.w, x.h), op, &x, 1, 0, 2e-3);
      /* Fused ReLU: outputs near zero make finite differences noisy even with the
       * kink test, hence the looser tolerance; relu alone is checked tightly below. */
      op.fuse_relu = TRUE;
      run_case (LABEL ("conv2d k%d s%d +relu %dx%d", op.k, op.stride, x.w, x.h), op, &x, 1, 0,
          3e-2);
    }
    NfOp dc = { .type = NF_OP_CONV_TRANSPOSE2D, .k = 3, .stride = 2, .padding = 1,
      .output_padding = 1, .cin = 3, .cout = 2, .has_bias = TRUE };
    run_case (LABEL ("conv_transpose2d k3 s2 p1 op1 %dx%d", x.w, x.h), dc, &x, 1, 0, 2e-3);
    NfOp dc4 = { .type = NF_OP_CONV_TRANSPOSE2D, .k = 4, .stride = 2, .padding = 1,
      .cin = 3, .cout = 2, .has_bias = TRUE };
    run_case (LABEL ("conv_transpose2d k4 s2 p1 %dx%d", x.w, x.h), dc4, &x, 1, 0, 2e-3);
    if (s > 1) {
      NfOp in = { .type = NF_OP_INSTANCE_NORM, .c = 3, .eps = 1e-5f, .affine = TRUE };
      run_case (LABEL ("instance_norm %dx%d", x.w, x.h), in, &x, 1, 0, 5e-3);
    }
    NfOp relu = { .type = NF_OP_RELU };
    run_case (LABEL ("relu %dx%d", x.w, x.h), relu, &x, 1, 0.05f, 1e-3);
    NfOp add = { .type = NF_OP_ADD };
    NfShape two[2] = { x, x };
    run_case (LABEL ("add %dx%d", x.w, x.h), add, two, 2, 0, 1e-3);
    NfOp cat = { .type = NF_OP_CONCAT };
    NfShape three[3] = { x, { x.n, 2, x.h, x.w }, { x.n, 1, x.h, x.w } };
    run_case (LABEL ("concat of 3 %dx%d", x.w, x.h), cat, three, 3, 0, 1e-3);
    NfOp up = { .type = NF_OP_UPSAMPLE_NEAREST, .factor = 3 };
    run_case (LABEL ("upsample_nearest x3 %dx%d", x.w, x.h), up, &x, 1, 0, 1e-3);
    NfShape x12 = { 1, 12, s, s + 1 };
    NfOp ps = { .type = NF_OP_PIXEL_SHUFFLE, .factor = 2 };
    run_case (LABEL ("pixel_shuffle x2 %dx%d", x12.w, x12.h), ps, &x12, 1, 0, 1e-3);
    NfOp th = { .type = NF_OP_TANH_SCALE, .scale = 150.0f, .offset = 127.5f };
    run_case (LABEL ("tanh_scale %dx%d", x.w, x.h), th, &x, 1, 0, 2e-3);
    NfOp cl = { .type = NF_OP_CLAMP, .min = -0.5f, .max = 0.5f };
    run_case (LABEL ("clamp %dx%d", x.w, x.h), cl, &x, 1, 0, 1e-3);
    if (s >= 2) {
      NfOp ap = { .type = NF_OP_AVG_POOL2D, .k = 2, .stride = 2 };
      run_case (LABEL ("avg_pool2d k2 %dx%d", x.w, x.h), ap, &x, 1, 0, 1e-3);
      NfOp mp = { .type = NF_OP_MAX_POOL2D, .k = 2, .stride = 2 };
      run_case (LABEL ("max_pool2d k2 %dx%d", x.w, x.h), mp, &x, 1, 0, 1e-3);
      if (s >= 3) {
        NfOp mp3 = { .type = NF_OP_MAX_POOL2D, .k = 3, .stride = 2 };
        run_case (LABEL ("max_pool2d k3 s2 %dx%d", x.w, x.h), mp3, &x, 1, 0, 1e-3);
      }
    }
  }
}

/* ---- whole networks through the engine ------------------------------------- */

typedef struct {
  NfModel *m;
  GHashTable *grads;            /* tensor name -> float* */
} GradCtx;

static void *
lookup_grad (const char *name, gpointer user_data)
{
  GradCtx *g = user_data;
  return g_hash_table_lookup (g->grads, name);
}

typedef struct {
  NfEngine *eng;
  const float *x;
  NfShape s;
  const float *r;
  float *y;
} NetCtx;

static double engine_loss (NfEngine *eng, const float *x, NfShape s, const float *r, float *y);

static double
net_loss (gpointer p)
{
  NetCtx *c = p;
  return engine_loss (c->eng, c->x, c->s, c->r, c->y);
}

static double
engine_loss (NfEngine *eng, const float *x, NfShape s, const float *r, float *y)
{
  GError *e = NULL;
  if (!nf_engine_run_host (eng, x, s, y, &e)) {
    printf ("run: %s\n", e->message);
    g_error_free (e);
    return NAN;
  }
  double l = 0;
  NfShape o = nf_engine_output_shape (eng);
  for (size_t i = 0; i < nf_shape_numel (o); i++)
    l += (double) r[i] * y[i];
  return l;
}

static void
test_network (NfArchSpec spec, int h, int w)
{
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&spec, 3, &e);
  CHECK (m != NULL, "model %s: %s", spec.arch, e ? e->message : "");
  if (!m) {
    g_clear_error (&e);
    return;
  }
  NfBackend *be = nf_backend_new ("cpu-ref", NULL);
  NfEngineOptions opts = { .keep_all_values = TRUE, .no_fusion = TRUE };
  NfEngine *eng = nf_engine_new (m, be, &opts);
  NfShape s = { 1, 3, h, w };
  NfRng rng;
  nf_rng_seed (&rng, 99);
  float *x = nf_alloc_floats (nf_shape_numel (s));
  nf_rng_fill_uniform (&rng, x, nf_shape_numel (s), m->in_lo, m->in_hi);
  CHECK (nf_engine_plan (eng, s, &e), "plan: %s", e ? e->message : "");
  g_clear_error (&e);
  NfShape o = nf_engine_output_shape (eng);
  float *r = nf_alloc_floats (nf_shape_numel (o)), *y = nf_alloc_floats (nf_shape_numel (o));
  nf_rng_fill_uniform (&rng, r, nf_shape_numel (o), -1, 1);

  GradCtx ctx = { m, g_hash_table_new (g_str_hash, g_str_equal) };
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, m->tensors);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    NfModelTensor *t = v;
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
      n *= t->dims[d];
    g_hash_table_insert (ctx.grads, k, nf_alloc_floats (n));
  }
  engine_loss (eng, x, s, r, y);
  CHECK (nf_engine_zero_grads (eng, &e), "zero grads");
  g_clear_error (&e);
  memcpy (nf_engine_grad_buffer (eng, m->graph->output), r, nf_shape_numel (o) * 4);
  CHECK (nf_engine_backward (eng, lookup_grad, &ctx, &e), "backward: %s", e ? e->message : "");
  g_clear_error (&e);
  float *dx = nf_alloc_floats (nf_shape_numel (s));
  memcpy (dx, nf_engine_grad_buffer (eng, m->graph->input), nf_shape_numel (s) * 4);

  /* numeric: input pixels and a few weights of the first and last convs */
  double h_in = MAX ((m->in_hi - m->in_lo) * 1e-3, 5e-3);
  double max_err = 0, max_ref = 1e-8;
  NetCtx nc = { eng, x, s, r, y };
  int skipped = 0;
  for (int q = 0; q < 24; q++) {
    size_t i = nf_rng_u32 (&rng) % nf_shape_numel (s);
    gboolean smooth;
    double num = central_diff (net_loss, &nc, x, i, h_in, &smooth);
    if (!smooth) {
      skipped++;
      continue;
    }
    max_err = MAX (max_err, fabs (num - dx[i]));
    max_ref = MAX (max_ref, fabs (num));
  }
  double ex = max_err / max_ref;
  /* (biases of convs followed by instance norm have zero gradient: not sampled) */
  const char *wnames[] = { "conv1.weight", "res1.conv2.weight", "conv_out.weight",
    "deconv3.weight", "deconv3.bias", "conv_up.bias", "in2.weight" };
  double ew = 0;
  for (guint t = 0; t < G_N_ELEMENTS (wnames); t++) {
    NfModelTensor *mt = nf_model_tensor (m, wnames[t]);
    if (!mt || g_str_equal (spec.arch, "sr-johnson"))
      continue;                 /* batch norm folding makes stored weights indirect */
    float *g = g_hash_table_lookup (ctx.grads, wnames[t]);
    size_t n = 1;
    for (int d = 0; d < mt->ndim; d++)
      n *= mt->dims[d];
    double me = 0, mr = 1e-8;
    for (int q = 0; q < 8; q++) {
      size_t i = nf_rng_u32 (&rng) % n;
      gboolean smooth;
      double num = central_diff (net_loss, &nc, mt->data, i, 1e-3, &smooth);
      if (!smooth) {
        skipped++;
        continue;
      }
      me = MAX (me, fabs (num - g[i]));
      mr = MAX (mr, fabs (num));
    }
    if (me / mr > 1e-2)
      printf ("     %s: %s error %.2e (max |numeric| %.2e)\n", spec.arch, wnames[t], me / mr, mr);
    ew = MAX (ew, me / mr);
  }
  double tol = 1e-2;
  gboolean pass = ex <= tol && ew <= tol && skipped < 12;
  printf ("%s network %-12s %dx%d: d/dinput %.1e, d/dweights %.1e (tol %.0e), %d samples "
      "at kinks skipped\n", pass ? "ok  " : "FAIL", spec.arch, w, h, ex, ew, tol, skipped);
  if (!pass)
    failures++;

  g_hash_table_iter_init (&it, ctx.grads);
  while (g_hash_table_iter_next (&it, &k, &v))
    nf_free (v);
  g_hash_table_unref (ctx.grads);
  nf_free (x);
  nf_free (dx);
  nf_free (r);
  nf_free (y);
  nf_engine_free (eng);
  nf_backend_free (be);
  nf_model_free (m);
}

int
main (void)
{
  test_ops ();
  test_network ((NfArchSpec) { "style-slim", .width = 4, .n_res = 1 }, 12, 16);
  test_network ((NfArchSpec) { "sr-subpixel", 2, .width = 6, .n_res = 1 }, 7, 9);
  test_network ((NfArchSpec) { "sr-johnson", 2, .width = 6, .n_res = 1 }, 7, 9);
  printf ("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
