/* test-backward.c — every op's backward against central finite differences, and the
 * engine's whole-network backward (chaining, fan-out accumulation, parameter gradients)
 * on small networks.
 *
 * L = sum(r * y) for a fixed random r, so dL/dy = r. For sampled input and weight
 * elements, dL/dθ ≈ (L(θ+h) - L(θ-h)) / 2h with L accumulated in double; compared to the
 * backend's analytic gradient with a normalised error max|a-n| / max|n|.
 * Every op runs on both CPU backends ("cpu-ref" and the fast "cpu", whose buffers are
 * opaque: everything goes through alloc/upload/download), at odd sizes, with 3 channels
 * (plain layout) and 11 (blocked layout with padded lanes); the fast backend's gradients
 * must also match the reference's within 1e-4.
 * Does not: losses (training/, test-train-losses.c).
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
  float *x[3];                  /* inputs (host) */
  NfShape xs[3];
  void *bx[3], *by;             /* the backend's buffers */
  float *w, *b;
  size_t nw, nb;
  float *r;                     /* dL/dy */
  float *y;
} Case;

/* Forward through the backend (weights re-prepared: finite differences move them). */
static double
loss (Case *c)
{
  GError *e = NULL;
  const NfBackendIface *bi = c->be->iface;
  gboolean ok = TRUE;
  for (int j = 0; j < c->op.n_in && ok; j++)
    ok = bi->upload (c->be, c->bx[j], c->x[j], c->xs[j], &e);
  if (ok && bi->prepare && c->nw) {
    bi->release (c->be, &c->call);
    ok = bi->prepare (c->be, &c->call, &e);
  }
  ok = ok && bi->forward[c->op.type] (c->be, &c->call, c->bx, c->by, &e)
      && bi->download (c->be, c->y, c->by, c->call.out, &e);
  if (!ok) {
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
    double up = p[i];
    double lp = f (ctx);
    p[i] = keep - (float) hh;
    double lm = f (ctx);
    d[k] = (lp - lm) / (up - p[i]);     /* the step float could represent */
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

/* Analytic gradients of one case on one backend (host copies). */
typedef struct {
  float *dx[3], *dw, *db;
  size_t ndx[3];
} Grads;

static void
grads_clear (Grads *g)
{
  for (int j = 0; j < 3; j++)
    nf_free (g->dx[j]);
  nf_free (g->dw);
  nf_free (g->db);
  memset (g, 0, sizeof *g);
}

/* max |a - b| / max |b| over all gradients of two runs of the same case. */
static double
grads_diff (const Grads *a, const Grads *b, size_t nw, size_t nb)
{
  double me = 0, mr = 1e-12;
  for (int j = 0; j < 3; j++)
    for (size_t i = 0; a->dx[j] && i < a->ndx[j]; i++) {
      me = MAX (me, fabs ((double) a->dx[j][i] - b->dx[j][i]));
      mr = MAX (mr, fabs ((double) b->dx[j][i]));
    }
  double ew = 0, rw = 1e-12;
  for (size_t i = 0; a->dw && i < nw; i++) {
    ew = MAX (ew, fabs ((double) a->dw[i] - b->dw[i]));
    rw = MAX (rw, fabs ((double) b->dw[i]));
  }
  for (size_t i = 0; a->db && i < nb; i++) {
    ew = MAX (ew, fabs ((double) a->db[i] - b->db[i]));
    rw = MAX (rw, fabs ((double) b->db[i]));
  }
  return MAX (me / mr, ew / rw);
}

/* Runs one op's backward on a backend and checks it against finite differences of the
 * same backend's forward. Backward runs twice into zeroed buffers: results must
 * accumulate (the analytic gradient is half of what comes back). Fills *out. */
static void
run_case (const char *backend, const char *label, NfOp op, NfShape *xs, int n_in,
    float x_lo, double tol, Grads *out)
{
  Case c = { 0 };
  GError *e = NULL;
  NfRng rng;
  nf_rng_seed (&rng, 1234 + op.type * 7 + xs[0].h + xs[0].c);
  c.be = nf_backend_new (backend, &e);
  if (!c.be) {
    printf ("FAIL %s: %s\n", label, e->message);
    failures++;
    g_error_free (e);
    return;
  }
  const NfBackendIface *bi = c.be->iface;
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
    if (op.type == NF_OP_MAX_POOL2D) {
      /* a shuffle of evenly spaced values: no ties (where the gradient is set-valued
       * and finite differences see a half slope) and none closer than the step */
      size_t n = nf_shape_numel (xs[j]);
      for (size_t i = 0; i < n; i++)
        c.x[j][i] = -1.0f + 2.0f * (float) i / (float) n;
      for (size_t i = n - 1; i > 0; i--) {
        size_t k = nf_rng_u32 (&rng) % (i + 1);
        float t = c.x[j][i];
        c.x[j][i] = c.x[j][k];
        c.x[j][k] = t;
      }
    }
    c.bx[j] = bi->alloc (c.be, xs[j], NULL);
  }
  if (!nf_op_output_shape (&c.op, xs, &c.call.out, &e)) {
    printf ("FAIL %s: %s\n", label, e->message);
    failures++;
    g_error_free (e);
    return;
  }
  c.by = bi->alloc (c.be, c.call.out, NULL);
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
    if (bi->prepare && !bi->prepare (c.be, &c.call, &e)) {
      printf ("FAIL %s: prepare: %s\n", label, e->message);
      failures++;
      g_error_free (e);
      return;
    }
  }
  size_t ny = nf_shape_numel (c.call.out);
  c.y = nf_alloc_floats (ny);
  c.r = nf_alloc_floats (ny);
  nf_rng_fill_uniform (&rng, c.r, ny, -1.0f, 1.0f);

  /* analytic, twice into zeroed buffers */
  Grads g = { 0 };
  loss (&c);
  void *bdy = bi->alloc (c.be, c.call.out, NULL), *bdx[3] = { NULL, NULL, NULL };
  gboolean ok = bi->upload (c.be, bdy, c.r, c.call.out, &e);
  for (int j = 0; j < n_in && ok; j++) {
    bdx[j] = bi->alloc (c.be, xs[j], NULL);
    ok = bi->zero (c.be, bdx[j], xs[j], &e);
    g.ndx[j] = nf_shape_numel (xs[j]);
    g.dx[j] = nf_alloc_floats (g.ndx[j]);
  }
  g.dw = c.nw ? nf_alloc_floats (c.nw) : NULL;
  g.db = c.nb ? nf_alloc_floats (c.nb) : NULL;
  for (int rep = 0; rep < 2 && ok; rep++)
    ok = bi->backward[op.type] (c.be, &c.call, c.bx, c.by, bdy, bdx, g.dw, g.db, &e);
  for (int j = 0; j < n_in && ok; j++) {
    ok = bi->download (c.be, g.dx[j], bdx[j], xs[j], &e);
    for (size_t i = 0; i < g.ndx[j]; i++)
      g.dx[j][i] *= 0.5f;
  }
  for (size_t i = 0; i < c.nw; i++)
    g.dw[i] *= 0.5f;
  for (size_t i = 0; i < c.nb; i++)
    g.db[i] *= 0.5f;
  CHECK (ok, "%s %s backward: %s", backend, label, e ? e->message : "");
  g_clear_error (&e);

  /* max-pool is piecewise linear and exact in float: a small step keeps near-ties
   * (two window values closer than the step) from blurring the difference */
  double h = op.type == NF_OP_MAX_POOL2D ? 1e-4 : 1e-3;
  double err = 0;
  for (int j = 0; j < n_in; j++) {
    double ej = check_param (&c, c.x[j], nf_shape_numel (xs[j]), g.dx[j], h, &rng, 60);
    err = MAX (err, ej);
  }
  double ew = c.nw ? check_param (&c, c.w, c.nw, g.dw, h, &rng, 40) : 0;
  double eb = c.nb ? check_param (&c, c.b, c.nb, g.db, h, &rng, 20) : 0;
  gboolean pass = err <= tol && ew <= tol && eb <= tol;
  printf ("%s %-7s %-46s dx %.1e  dw %.1e  db %.1e  (tol %.0e)\n", pass ? "ok  " : "FAIL",
      backend, label, err, ew, eb, tol);
  if (!pass)
    failures++;
  if (out)
    *out = g;
  else
    grads_clear (&g);
  if (bi->release && c.nw)
    bi->release (c.be, &c.call);
  for (int j = 0; j < n_in; j++) {
    nf_free (c.x[j]);
    bi->free (c.be, c.bx[j]);
    bi->free (c.be, bdx[j]);
  }
  bi->free (c.be, c.by);
  bi->free (c.be, bdy);
  nf_free (c.w);
  nf_free (c.b);
  nf_free (c.y);
  nf_free (c.r);
  nf_backend_free (c.be);
}

/* Both CPU backends against finite differences, and the fast one against the
 * reference (same inputs: the case's RNG seed depends on the op and shape only). */
static void
run_both (const char *label, NfOp op, NfShape *xs, int n_in, float x_lo, double tol)
{
  Grads ref = { 0 }, fast = { 0 };
  run_case ("cpu-ref", label, op, xs, n_in, x_lo, tol, &ref);
  run_case ("cpu", label, op, xs, n_in, x_lo, tol, &fast);
  size_t nw = 0, nb = 0;
  if (op.type == NF_OP_CONV2D || op.type == NF_OP_CONV_TRANSPOSE2D) {
    nw = (size_t) op.cin * op.cout * op.k * op.k;
    nb = op.cout;
  } else if (op.type == NF_OP_INSTANCE_NORM) {
    nw = nb = op.c;
  }
  if (ref.dx[0] && fast.dx[0]) {
    double d = grads_diff (&fast, &ref, nw, nb);
    gboolean pass = d <= 1e-4;
    printf ("%s cpu/ref %-46s max normalised difference %.1e (tol 1e-04)\n",
        pass ? "ok  " : "FAIL", label, d);
    if (!pass)
      failures++;
  }
  grads_clear (&ref);
  grads_clear (&fast);
}

static void
test_ops (void)
{
  int sizes[] = { 1, 7, 13 };
  for (guint si = 0; si < G_N_ELEMENTS (sizes); si++) {
    int s = sizes[si];
    /* 3 channels: plain NCHW in the fast backend; 11: nChw8c with padded lanes */
    int chans[] = { 3, 11 };
    for (guint ci = 0; ci < G_N_ELEMENTS (chans); ci++) {
      int ch = chans[ci];
      NfShape x = { 2, ch, s, s + 2 };
      char label[128];
#define LABEL(...) (g_snprintf (label, sizeof label, __VA_ARGS__), label)
      struct { int k, stride; NfPadMode pad; } convs[] = {
        { 3, 1, NF_PAD_ZERO }, { 3, 2, NF_PAD_REFLECT }, { 5, 1, NF_PAD_REFLECT },
        { 1, 1, NF_PAD_ZERO }
      };
      int couts[] = { 4, 13 };
      for (guint i = 0; i < G_N_ELEMENTS (convs); i++)
        for (guint oi = 0; oi < G_N_ELEMENTS (couts); oi++) {
          if (convs[i].pad == NF_PAD_REFLECT && convs[i].k / 2 >= s)
            continue;
          NfOp op = { .type = NF_OP_CONV2D, .k = convs[i].k, .stride = convs[i].stride,
            .padding = convs[i].k / 2, .pad_mode = convs[i].pad, .cin = ch,
            .cout = couts[oi], .has_bias = TRUE };
          run_both (LABEL ("conv2d %d->%d k%d s%d %s %dx%d", ch, op.cout, op.k, op.stride,
                  op.pad_mode == NF_PAD_REFLECT ? "reflect" : "zero", x.w, x.h),
              op, &x, 1, 0, 2e-3);
          /* Fused ReLU: outputs near zero make finite differences noisy even with the
           * kink test, hence the looser tolerance; relu alone is checked tightly below. */
          op.fuse_relu = TRUE;
          run_both (LABEL ("conv2d %d->%d k%d s%d +relu %dx%d", ch, op.cout, op.k,
                  op.stride, x.w, x.h), op, &x, 1, 0, 3e-2);
        }
      NfOp dc = { .type = NF_OP_CONV_TRANSPOSE2D, .k = 3, .stride = 2, .padding = 1,
        .output_padding = 1, .cin = ch, .cout = ch > 4 ? 6 : 2, .has_bias = TRUE };
      run_both (LABEL ("conv_transpose2d %d->%d k3 s2 p1 op1 %dx%d", ch, dc.cout, x.w, x.h),
          dc, &x, 1, 0, 2e-3);
      NfOp dc4 = { .type = NF_OP_CONV_TRANSPOSE2D, .k = 4, .stride = 2, .padding = 1,
        .cin = ch, .cout = ch > 4 ? 9 : 2, .has_bias = TRUE };
      run_both (LABEL ("conv_transpose2d %d->%d k4 s2 p1 %dx%d", ch, dc4.cout, x.w, x.h),
          dc4, &x, 1, 0, 2e-3);
      if (s > 1) {
        NfOp in = { .type = NF_OP_INSTANCE_NORM, .c = ch, .eps = 1e-5f, .affine = TRUE };
        run_both (LABEL ("instance_norm c%d %dx%d", ch, x.w, x.h), in, &x, 1, 0, 5e-3);
        in.fuse_relu = TRUE;
        run_both (LABEL ("instance_norm c%d +relu %dx%d", ch, x.w, x.h), in, &x, 1, 0, 3e-2);
      }
      NfOp relu = { .type = NF_OP_RELU };
      run_both (LABEL ("relu c%d %dx%d", ch, x.w, x.h), relu, &x, 1, 0.05f, 1e-3);
      NfOp add = { .type = NF_OP_ADD };
      NfShape two[2] = { x, x };
      run_both (LABEL ("add c%d %dx%d", ch, x.w, x.h), add, two, 2, 0, 1e-3);
      NfOp cat = { .type = NF_OP_CONCAT };
      NfShape three[3] = { x, { x.n, 2, x.h, x.w }, { x.n, 8, x.h, x.w } };
      run_both (LABEL ("concat c%d+2+8 %dx%d", ch, x.w, x.h), cat, three, 3, 0, 1e-3);
      NfOp up = { .type = NF_OP_UPSAMPLE_NEAREST, .factor = 3 };
      run_both (LABEL ("upsample_nearest x3 c%d %dx%d", ch, x.w, x.h), up, &x, 1, 0, 1e-3);
      NfShape xps = { 1, ch > 4 ? 36 : 12, s, s + 1 };
      NfOp ps = { .type = NF_OP_PIXEL_SHUFFLE, .factor = 2 };
      run_both (LABEL ("pixel_shuffle x2 c%d %dx%d", xps.c, xps.w, xps.h), ps, &xps, 1, 0,
          1e-3);
      NfOp th = { .type = NF_OP_TANH_SCALE, .scale = 150.0f, .offset = 127.5f };
      run_both (LABEL ("tanh_scale c%d %dx%d", ch, x.w, x.h), th, &x, 1, 0, 2e-3);
      NfOp cl = { .type = NF_OP_CLAMP, .min = -0.5f, .max = 0.5f };
      run_both (LABEL ("clamp c%d %dx%d", ch, x.w, x.h), cl, &x, 1, 0, 1e-3);
      if (s >= 2) {
        NfOp ap = { .type = NF_OP_AVG_POOL2D, .k = 2, .stride = 2 };
        run_both (LABEL ("avg_pool2d k2 c%d %dx%d", ch, x.w, x.h), ap, &x, 1, 0, 1e-3);
        NfOp mp = { .type = NF_OP_MAX_POOL2D, .k = 2, .stride = 2 };
        run_both (LABEL ("max_pool2d k2 c%d %dx%d", ch, x.w, x.h), mp, &x, 1, 0, 1e-3);
        if (s >= 3) {
          NfOp mp3 = { .type = NF_OP_MAX_POOL2D, .k = 3, .stride = 2 };
          run_both (LABEL ("max_pool2d k3 s2 c%d %dx%d", ch, x.w, x.h), mp3, &x, 1, 0, 1e-3);
        }
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
  /* finite differences move weights in place: backends that reorder them at prepare
   * (the fast CPU backend) must see the change */
  if (!nf_engine_weights_changed (eng, &e) || !nf_engine_run_host (eng, x, s, y, &e)) {
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
test_network (const char *backend, NfArchSpec spec, int h, int w)
{
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&spec, 3, &e);
  CHECK (m != NULL, "model %s: %s", spec.arch, e ? e->message : "");
  if (!m) {
    g_clear_error (&e);
    return;
  }
  NfBackend *be = nf_backend_new (backend, NULL);
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
  CHECK (be->iface->upload (be, nf_engine_grad_buffer (eng, m->graph->output), r, o, &e),
      "seed: %s", e ? e->message : "");
  g_clear_error (&e);
  CHECK (nf_engine_backward (eng, lookup_grad, &ctx, &e), "backward: %s", e ? e->message : "");
  g_clear_error (&e);
  float *dx = nf_alloc_floats (nf_shape_numel (s));
  CHECK (be->iface->download (be, dx, nf_engine_grad_buffer (eng, m->graph->input), s, &e),
      "download: %s", e ? e->message : "");
  g_clear_error (&e);

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
  printf ("%s %-7s network %-12s %dx%d: d/dinput %.1e, d/dweights %.1e (tol %.0e), %d "
      "samples at kinks skipped\n", pass ? "ok  " : "FAIL", backend, spec.arch, w, h, ex, ew,
      tol, skipped);
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

/* Input and parameter gradients of one network (fixed seed) on one backend: dx and
 * every tensor's gradient concatenated in sorted-name order. NULL on failure. */
static float *
network_grads (const char *backend, NfArchSpec spec, int h, int w, size_t *n_out)
{
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&spec, 3, &e);
  NfBackend *be = m ? nf_backend_new (backend, &e) : NULL;
  if (!be) {
    printf ("FAIL %s %s: %s\n", backend, spec.arch, e ? e->message : "");
    failures++;
    g_clear_error (&e);
    nf_model_free (m);
    return NULL;
  }
  NfEngineOptions opts = { .keep_all_values = TRUE, .no_fusion = TRUE };
  NfEngine *eng = nf_engine_new (m, be, &opts);
  NfShape s = { 2, 3, h, w };
  NfRng rng;
  nf_rng_seed (&rng, 4242);
  float *x = nf_alloc_floats (nf_shape_numel (s));
  nf_rng_fill_uniform (&rng, x, nf_shape_numel (s), m->in_lo, m->in_hi);
  gboolean ok = nf_engine_plan (eng, s, &e);
  NfShape o = ok ? nf_engine_output_shape (eng) : s;
  float *r = nf_alloc_floats (nf_shape_numel (o)), *y = nf_alloc_floats (nf_shape_numel (o));
  nf_rng_fill_uniform (&rng, r, nf_shape_numel (o), -1, 1);
  GList *names = g_list_sort (g_hash_table_get_keys (m->tensors), (GCompareFunc) strcmp);
  GradCtx ctx = { m, g_hash_table_new (g_str_hash, g_str_equal) };
  size_t total = nf_shape_numel (s);
  for (GList *l = names; l; l = l->next) {
    NfModelTensor *t = g_hash_table_lookup (m->tensors, l->data);
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
      n *= t->dims[d];
    g_hash_table_insert (ctx.grads, l->data, nf_alloc_floats (n));
    total += n;
  }
  float *all = nf_alloc_floats (total);
  ok = ok && nf_engine_run_host (eng, x, s, y, &e) && nf_engine_zero_grads (eng, &e)
      && be->iface->upload (be, nf_engine_grad_buffer (eng, m->graph->output), r, o, &e)
      && nf_engine_backward (eng, lookup_grad, &ctx, &e)
      && be->iface->download (be, all, nf_engine_grad_buffer (eng, m->graph->input), s, &e);
  size_t off = nf_shape_numel (s);
  for (GList *l = names; l; l = l->next) {
    NfModelTensor *t = g_hash_table_lookup (m->tensors, l->data);
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
      n *= t->dims[d];
    float *g = g_hash_table_lookup (ctx.grads, l->data);
    memcpy (all + off, g, n * sizeof (float));
    nf_free (g);
    off += n;
  }
  if (!ok) {
    printf ("FAIL %s %s: %s\n", backend, spec.arch, e ? e->message : "");
    failures++;
    g_clear_error (&e);
    nf_free (all);
    all = NULL;
  }
  *n_out = total;
  g_list_free (names);
  g_hash_table_unref (ctx.grads);
  nf_free (x);
  nf_free (r);
  nf_free (y);
  nf_engine_free (eng);
  nf_backend_free (be);
  nf_model_free (m);
  return all;
}

/* Wider networks (blocked layout, several residual blocks, batch 2), where float
 * finite differences get noisy: the fast backend's gradients against the reference's. */
static void
test_network_fast_vs_ref (NfArchSpec spec, int h, int w)
{
  size_t na = 0, nb = 0;
  float *a = network_grads ("cpu", spec, h, w, &na);
  float *b = network_grads ("cpu-ref", spec, h, w, &nb);
  if (a && b && na == nb) {
    double me = 0, mr = 1e-12;
    for (size_t i = 0; i < na; i++) {
      me = MAX (me, fabs ((double) a[i] - b[i]));
      mr = MAX (mr, fabs ((double) b[i]));
    }
    gboolean pass = me / mr <= 1e-4 && isfinite (me);
    printf ("%s cpu/ref network %-12s w%d %dx%dx2: %zu gradients, max normalised "
        "difference %.1e (tol 1e-04)\n", pass ? "ok  " : "FAIL", spec.arch, spec.width, w, h,
        na, me / mr);
    if (!pass)
      failures++;
  }
  nf_free (a);
  nf_free (b);
}

int
main (void)
{
  test_ops ();
  const char *backends[] = { "cpu-ref", "cpu" };
  for (guint b = 0; b < G_N_ELEMENTS (backends); b++) {
    test_network (backends[b], (NfArchSpec) { "style-slim", .width = 4, .n_res = 1 }, 12, 16);
    test_network (backends[b], (NfArchSpec) { "sr-subpixel", 2, .width = 6, .n_res = 1 }, 7, 9);
    test_network (backends[b], (NfArchSpec) { "sr-johnson", 2, .width = 6, .n_res = 1 }, 7, 9);
    test_network (backends[b], (NfArchSpec) { "sr-light", 3, .width = 5, .n_res = 1 }, 7, 9);
  }
  test_network_fast_vs_ref ((NfArchSpec) { "style-slim", .width = 12, .n_res = 2 }, 20, 24);
  test_network_fast_vs_ref ((NfArchSpec) { "style-full", .width = 8, .n_res = 2 }, 16, 20);
  test_network_fast_vs_ref ((NfArchSpec) { "sr-subpixel", 3, .width = 10, .n_res = 2 }, 9, 11);
  test_network_fast_vs_ref ((NfArchSpec) { "sr-subpixel", 4, .width = 16, .n_res = 1 }, 6, 7);
  test_network_fast_vs_ref ((NfArchSpec) { "sr-light", 2, .n_res = 2 }, 10, 12);
  printf ("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
