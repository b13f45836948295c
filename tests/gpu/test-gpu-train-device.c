/* test-gpu-train-device.c — the device paths of a GPU training step (issue 18.3, 18.4),
 * piece by piece, on "cuda" (and "cuda-fp16" for the weights):
 *
 *   values      losses deferred into an NfCudaValues: nothing written and no
 *               synchronisation until nf_cuda_values_read, which synchronises once and
 *               gives the immediate reads' values bit for bit; the gradients the same as
 *               immediate ones; a queue overflow, an empty read (no synchronisation),
 *               values of another backend;
 *   batch norm  nf_cuda_bn_refold and nf_cuda_bn_chain_rule on conv2d and
 *               conv_transpose2d folds, with and without a conv bias, against the same
 *               arithmetic run serially on the host (nf-cuda-bn-fold.h, itself checked
 *               against nf-trainnet.c by test-gpu-train-host): W', b', dW, db, dbeta bit
 *               for bit, dgamma (its sum in another order) within 1e-6, accumulated into
 *               random gradients;
 *   weights     NfBackendIface.weights_on_device on cuda and cuda-fp16 for a first layer
 *               (3 input channels, reflection padding: cuda-fp16 pads it to 8 channels
 *               with zero weights), a strided conv2d without bias, a conv2d with the
 *               fused bias + ReLU, a conv_transpose2d, an affine instance_norm and a
 *               cond_instance_norm: an op prepared with weights A and handed device
 *               weights B runs as the same op prepared with B (1e-5 of the largest value,
 *               cuda-fp16 2e-3: the same kernels on the same half weights) and as cpu-ref
 *               with B (1e-4, cuda-fp16 2e-2); handed A again, as prepared with A; A and
 *               B give outputs apart by more than 5 % (so a refresh that does nothing
 *               fails); the call allocates, frees and synchronises nothing
 *               (nf_cuda_counters) and leaves the device weights as they were; wrong
 *               counts, host memory, a bias the op lacks, an unprepared call: GErrors.
 * Every device buffer carries 16 sentinel floats after its end (gpu-train-harness.h).
 * Exit: 0 pass, 1 a check failed, 77 no usable GPU (skip, with the reason).
 * Does not: whole training steps (test-gpu-train-step: the device path against the old
 * download + re-prepare path and against cpu-ref), the loss arithmetic itself
 * (test-gpu-train-ops), or the host side of the fold and of the weight table
 * (test-gpu-train-host).
 */
#include "gpu-test-probe.h"
#include "gpu-train-harness.h"
#include "nf-cuda.h"

/* ---- loss values read once ---------------------------------------------------------------------------- */

static void
test_values (void)
{
  GError *e = NULL;
  NfShape s = { 2, 8, 13, 11 };
  size_t n = nf_shape_numel (s), cc = (size_t) s.c * s.c;
  float *f = host_random (n, -2, 2), *q = host_random (n, -1, 1), *t = host_random (cc, 0, 1);
  float *df = dev_up (f, n), *dq = dev_up (q, n), *dt = dev_up (t, cc);
  float *zero = g_new0 (float, n);
  float *dg1 = dev_up (zero, n), *dg2 = dev_up (zero, n);
  double now[3], later[3] = { NAN, NAN, NAN };
  /* immediate reads, gradients into dg1 */
  must (nf_cuda_loss_mse (ct, df, dq, n, 0.5, dg1, &now[0], &e)
      && nf_cuda_loss_gram (ct, df, s, dt, 2.0, dg1, &now[1], &e)
      && nf_cuda_loss_tv (ct, df, s, 3.0, dg1, &now[2], &e), e, "immediate losses");
  NfCudaValues *v = nf_cuda_values_new (be, &e);
  must (v != NULL && nf_cuda_train_defer (ct, v, &e), e, "nf_cuda_values_new / defer");
  NfCudaCounters c0, c1, c2;
  nf_cuda_counters (&c0);
  must (nf_cuda_loss_mse (ct, df, dq, n, 0.5, dg2, &later[0], &e)
      && nf_cuda_loss_gram (ct, df, s, dt, 2.0, dg2, &later[1], &e)
      && nf_cuda_loss_tv (ct, df, s, 3.0, dg2, &later[2], &e), e, "deferred losses");
  nf_cuda_counters (&c1);
  check ("deferred: three values pending", nf_cuda_values_pending (v) == 3, NULL);
  check ("deferred: no synchronisation while queueing", c1.syncs == c0.syncs, NULL);
  check ("deferred: nothing written before the read",
      isnan (later[0]) && isnan (later[1]) && isnan (later[2]), NULL);
  must (nf_cuda_values_read (v, &e), e, "nf_cuda_values_read");
  nf_cuda_counters (&c2);
  char w[96];
  g_snprintf (w, sizeof w, "%" G_GUINT64_FORMAT " synchronisation(s)", c2.syncs - c1.syncs);
  check ("deferred: one synchronisation for the three values", c2.syncs - c1.syncs == 1, w);
  check ("deferred: the queue is empty after the read", nf_cuda_values_pending (v) == 0,
      NULL);
  gboolean same = memcmp (now, later, sizeof now) == 0;
  g_snprintf (w, sizeof w, "%.17g %.17g %.17g vs %.17g %.17g %.17g", later[0], later[1],
      later[2], now[0], now[1], now[2]);
  check ("deferred values = immediate values, bit for bit", same, same ? NULL : w);
  float *g1 = dev_down (dg1, n, "immediate grad"), *g2 = dev_down (dg2, n, "deferred grad");
  check ("deferred gradients = immediate gradients, bit for bit",
      memcmp (g1, g2, n * sizeof (float)) == 0, NULL);
  /* an empty read waits for nothing */
  nf_cuda_counters (&c1);
  must (nf_cuda_values_read (v, &e), e, "empty read");
  nf_cuda_counters (&c2);
  check ("an empty read does not synchronise", c2.syncs == c1.syncs, NULL);
  /* one value more than the queue holds */
  double sink[NF_CUDA_VALUES_MAX + 1];
  gboolean ok = TRUE;
  for (int k = 0; ok && k < NF_CUDA_VALUES_MAX; k++)
    ok = nf_cuda_loss_mse (ct, df, dq, n, 1.0, NULL, &sink[k], &e);
  must (ok, e, "a full queue");
  must_fail ("a value beyond NF_CUDA_VALUES_MAX",
      nf_cuda_loss_mse (ct, df, dq, n, 1.0, NULL, &sink[NF_CUDA_VALUES_MAX], &e), &e);
  nf_cuda_values_drop (v);
  check ("dropped: nothing pending", nf_cuda_values_pending (v) == 0, NULL);
  /* values of another backend */
  NfCudaConfig cfg = { .precision = NF_CUDA_FP32, .device = 0, .heuristic_algos = TRUE };
  NfBackend *other = nf_cuda_backend_new (&cfg, &e);
  must (other != NULL, e, "a second backend");
  NfCudaValues *ov = nf_cuda_values_new (other, &e);
  must (ov != NULL, e, "values of the second backend");
  must_fail ("deferring into the values of another backend", nf_cuda_train_defer (ct, ov, &e),
      &e);
  nf_cuda_values_free (ov);
  nf_backend_free (other);
  must (nf_cuda_train_defer (ct, NULL, &e), e, "back to immediate reads");
  double again = NAN;
  must (nf_cuda_loss_mse (ct, df, dq, n, 0.5, NULL, &again, &e), e, "immediate again");
  check ("immediate reads again after defer (NULL)", again == now[0], NULL);
  nf_cuda_values_free (v);
  g_free (g1);
  g_free (g2);
  g_free (zero);
  nf_free (f);
  nf_free (q);
  nf_free (t);
  dev_free (df);
  dev_free (dq);
  dev_free (dt);
  dev_free (dg1);
  dev_free (dg2);
}

/* ---- batch norm folded into a convolution ------------------------------------------------------------- */

static gboolean
same_bits (const float *a, const float *b, size_t n)
{
  return memcmp (a, b, n * sizeof (float)) == 0;
}

static void
test_bn_fold (int cout, int cin, int k, gboolean transposed, gboolean bias)
{
  GError *e = NULL;
  char w[128];
  NfBnFoldGeom g = {.cout = cout,.cin = cin,.kk = k * k,.transposed = transposed,
    .eps = 1e-5f };
  size_t nw = nf_bn_fold_numel (&g), c = (size_t) cout;
  const char *what = transposed ? "conv_transpose2d" : "conv2d";
  float *W = host_random (nw, -1, 1), *B = bias ? host_random (c, -1, 1) : NULL;
  float *gamma = host_random (c, -2, 2), *beta = host_random (c, -1, 1);
  float *stats = host_random (2 * c, 0.01f, 3), *mean = stats, *var = stats + c;
  for (size_t i = 0; i < c; i++)
    mean[i] -= 1.5f;
  float *gw = host_random (nw, -1, 1), *gb = host_random (c, -1, 1);
  float *dw0 = host_random (nw, -1, 1), *db0 = host_random (c, -1, 1);
  float *dgamma0 = host_random (c, -1, 1), *dbeta0 = host_random (c, -1, 1);
  /* the host twin: nf-cuda-bn-fold.h serially */
  float *fw = g_new (float, nw), *fb = g_new (float, c);
  float *dw = g_memdup2 (dw0, nw * sizeof (float)), *db = g_memdup2 (db0, c * sizeof (float));
  float *dgamma = g_memdup2 (dgamma0, c * sizeof (float));
  float *dbeta = g_memdup2 (dbeta0, c * sizeof (float));
  for (size_t i = 0; i < nw; i++) {
    int co = nf_bn_fold_channel (&g, i);
    fw[i] = nf_bn_fold_weight (W[i], nf_bn_fold_scale (gamma[co], var[co], g.eps));
  }
  for (int co = 0; co < cout; co++) {
    double s = nf_bn_fold_scale (gamma[co], var[co], g.eps), acc = 0.0;
    fb[co] = nf_bn_fold_bias (B ? B[co] : 0.0f, mean[co], beta[co], s);
    for (size_t j = 0; j < (size_t) cin * g.kk; j++) {
      size_t i = nf_bn_fold_index (&g, co, j);
      acc += (double) gw[i] * (double) W[i];
      dw[i] = nf_bn_fold_dw (dw[i], gw[i], s);
    }
    double inv = nf_bn_fold_inv_std (var[co], g.eps);
    dgamma[co] = nf_bn_fold_dgamma (dgamma[co], acc, gb[co], B ? B[co] : 0.0f, mean[co], inv);
    dbeta[co] += gb[co];
    if (B)
      db[co] = nf_bn_fold_db (db[co], gb[co], gamma[co], inv);
  }
  /* the device */
  float *dW = dev_up (W, nw), *dB = B ? dev_up (B, c) : NULL, *dgam = dev_up (gamma, c);
  float *dbet = dev_up (beta, c), *dst = dev_up (stats, 2 * c);
  float *dfw = dev_up (dw0, nw), *dfb = dev_up (db0, c);      /* overwritten */
  float *dgw = dev_up (gw, nw), *dgb = dev_up (gb, c);
  float *ddw = dev_up (dw0, nw), *ddb = B ? dev_up (db0, c) : NULL;
  float *ddg = dev_up (dgamma0, c), *ddbe = dev_up (dbeta0, c);
  must (nf_cuda_bn_refold (ct, &g, dW, dB, dgam, dbet, dst, dst + c, dfw, dfb, &e), e,
      "nf_cuda_bn_refold");
  must (nf_cuda_bn_chain_rule (ct, &g, dgw, dgb, dW, dB, dgam, dst, dst + c, ddw, ddb, ddg,
          ddbe, &e), e, "nf_cuda_bn_chain_rule");
  float *r_fw = dev_down (dfw, nw, "W'"), *r_fb = dev_down (dfb, c, "b'");
  float *r_dw = dev_down (ddw, nw, "dW"), *r_dg = dev_down (ddg, c, "dgamma");
  float *r_dbe = dev_down (ddbe, c, "dbeta"), *r_db = B ? dev_down (ddb, c, "db") : NULL;
  g_snprintf (w, sizeof w, "bn fold %s %dx%dx%dx%d%s: W', b' bit for bit", what, cout, cin,
      k, k, bias ? " +bias" : "");
  check (w, same_bits (r_fw, fw, nw) && same_bits (r_fb, fb, c), NULL);
  g_snprintf (w, sizeof w, "bn fold %s %dx%dx%dx%d%s: dW, db, dbeta bit for bit", what, cout,
      cin, k, k, bias ? " +bias" : "");
  check (w, same_bits (r_dw, dw, nw) && same_bits (r_dbe, dbeta, c)
      && (!B || same_bits (r_db, db, c)), NULL);
  g_snprintf (w, sizeof w, "bn fold %s %dx%dx%dx%d%s: dgamma", what, cout, cin, k, k,
      bias ? " +bias" : "");
  report (w, norm_err (r_dg, dgamma, c), 1e-6);
  GError *e2 = NULL;
  if (!bias)
    must_fail ("bn chain rule: db without a conv bias", nf_cuda_bn_chain_rule (ct, &g, dgw,
            dgb, dW, NULL, dgam, dst, dst + c, ddw, ddg, ddg, ddbe, &e2), &e2);
  float *all[] = { W, B, gamma, beta, stats, gw, gb, dw0, db0, dgamma0, dbeta0 };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    nf_free (all[i]);
  float *mine[] = { fw, fb, dw, db, dgamma, dbeta, r_fw, r_fb, r_dw, r_dg, r_dbe, r_db };
  for (guint i = 0; i < G_N_ELEMENTS (mine); i++)
    g_free (mine[i]);
  float *devs[] = { dW, dB, dgam, dbet, dst, dfw, dfb, dgw, dgb, ddw, ddb, ddg, ddbe };
  for (guint i = 0; i < G_N_ELEMENTS (devs); i++)
    dev_free (devs[i]);
}

/* ---- weights updated on the device (NfBackendIface.weights_on_device) ------------------ */

/* One op prepared on a backend with the given host weights, its input uploaded. */
typedef struct {
  NfBackend *b;
  NfOp op;
  NfOpCall call;
  void *x, *y;
} OpRun;

static void
oprun_clear (OpRun *r)
{
  if (!r->b)
    return;
  if (r->b->iface->release && r->call.state)
    r->b->iface->release (r->b, &r->call);
  if (r->x)
    r->b->iface->free (r->b, r->x);
  if (r->y)
    r->b->iface->free (r->b, r->y);
  memset (r, 0, sizeof *r);
}

static void
oprun_init (OpRun *r, NfBackend *b, const NfOp *op, NfShape in, const float *w,
    const float *bias, const float *x)
{
  GError *e = NULL;
  memset (r, 0, sizeof *r);
  r->b = b;
  r->op = *op;
  r->op.weight = w;
  r->op.bias = bias;
  r->call.op = &r->op;
  r->call.in[0] = in;
  must (nf_op_output_shape (&r->op, r->call.in, &r->call.out, &e), e, "output shape");
  r->x = b->iface->alloc (b, in, &e);
  must (r->x != NULL, e, "input buffer");
  r->y = b->iface->alloc (b, r->call.out, &e);
  must (r->y != NULL, e, "output buffer");
  must (!b->iface->prepare || b->iface->prepare (b, &r->call, &e), e, "prepare");
  must (b->iface->upload (b, r->x, x, in, &e), e, "upload");
}

/* The op's output on the host (nf_free). */
static float *
oprun_forward (OpRun *r)
{
  GError *e = NULL;
  float *y = nf_alloc_floats (nf_shape_numel (r->call.out));
  must (r->b->iface->forward[r->op.type] (r->b, &r->call, &r->x, r->y, &e)
      && r->b->iface->download (r->b, y, r->y, r->call.out, &e), e, "forward");
  return y;
}

/* Weight and bias sizes of op, and random values for them (b NULL without a bias):
 * convolutions +-1/sqrt(cin k k) and +-0.5, norms' scales 0.5..1.5 and shifts +-0.5. */
static void
draw_params (const NfOp *op, float **w, size_t *nw, float **b, size_t *nb)
{
  gboolean conv = op->type == NF_OP_CONV2D || op->type == NF_OP_CONV_TRANSPOSE2D;
  if (conv) {
    float r = 1.0f / sqrtf ((float) op->cin * op->k * op->k);
    *nw = (size_t) op->cin * op->cout * op->k * op->k;
    *nb = op->has_bias ? (size_t) op->cout : 0;
    *w = host_random (*nw, -r, r);
  } else {
    *nw = *nb = (size_t) (op->type == NF_OP_COND_INSTANCE_NORM ? op->styles : 1) * op->c;
    *w = host_random (*nw, 0.5f, 1.5f);
  }
  *b = *nb ? host_random (*nb, -0.5f, 0.5f) : NULL;
}

typedef struct {
  const char *what;
  NfOp op;
  NfShape in;
} WeightCase;

static void
test_weights_case (NfBackend *gb, NfBackend *ref, const WeightCase *c, double tol_same,
    double tol_ref)
{
  GError *e = NULL;
  char w[160];
  const char *bn = gb->iface->name;
  float *wa, *ba, *wb, *bb;
  size_t nw, nb;
  draw_params (&c->op, &wa, &nw, &ba, &nb);
  draw_params (&c->op, &wb, &nw, &bb, &nb);
  float *x = host_random (nf_shape_numel (c->in), -1.0f, 1.0f);
  float *dwa = dev_up (wa, nw), *dwb = dev_up (wb, nw);
  float *dba = nb ? dev_up (ba, nb) : NULL, *dbb = nb ? dev_up (bb, nb) : NULL;

  OpRun fa, fb, fr, r;
  oprun_init (&fa, gb, &c->op, c->in, wa, ba, x);
  oprun_init (&fb, gb, &c->op, c->in, wb, bb, x);
  oprun_init (&fr, ref, &c->op, c->in, wb, bb, x);
  float *ya = oprun_forward (&fa), *yb = oprun_forward (&fb), *yr = oprun_forward (&fr);
  size_t ny = nf_shape_numel (fa.call.out);

  /* prepared with A, handed B, then A again */
  oprun_init (&r, gb, &c->op, c->in, wa, ba, x);
  NfCudaCounters c0, c1;
  nf_cuda_counters (&c0);
  must (gb->iface->weights_on_device (gb, &r.call, dwb, nw, dbb, nb, &e), e,
      "weights_on_device (B)");
  nf_cuda_counters (&c1);
  float *y1 = oprun_forward (&r);
  must (gb->iface->weights_on_device (gb, &r.call, dwa, nw, dba, nb, &e), e,
      "weights_on_device (A)");
  float *y2 = oprun_forward (&r);

  char d[96];
  double ab = norm_err (ya, yb, ny);
  g_snprintf (d, sizeof d, "%.3f apart", ab);
  g_snprintf (w, sizeof w, "%s %s: A and B give other outputs", bn, c->what);
  check (w, ab > 0.05, d);
  g_snprintf (w, sizeof w, "%s %s: A, handed B = prepared with B", bn, c->what);
  report (w, norm_err (y1, yb, ny), tol_same);
  g_snprintf (w, sizeof w, "%s %s: A, handed B = cpu-ref with B", bn, c->what);
  report (w, norm_err (y1, yr, ny), tol_ref);
  g_snprintf (w, sizeof w, "%s %s: then handed A = prepared with A", bn, c->what);
  report (w, norm_err (y2, ya, ny), tol_same);
  g_snprintf (d, sizeof d, "%" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT " / %"
      G_GUINT64_FORMAT, c1.allocs - c0.allocs, c1.frees - c0.frees, c1.syncs - c0.syncs);
  g_snprintf (w, sizeof w, "%s %s: no alloc / free / sync", bn, c->what);
  check (w, c1.allocs == c0.allocs && c1.frees == c0.frees && c1.syncs == c0.syncs, d);
  float *hw = dev_down (dwb, nw, "weights B"), *hb = nb ? dev_down (dbb, nb, "bias B") : NULL;
  g_snprintf (w, sizeof w, "%s %s: device weights left as they were", bn, c->what);
  check (w, memcmp (hw, wb, nw * sizeof (float)) == 0
      && (!nb || memcmp (hb, bb, nb * sizeof (float)) == 0), NULL);

  oprun_clear (&fa);
  oprun_clear (&fb);
  oprun_clear (&fr);
  oprun_clear (&r);
  float *hosts[] = { wa, ba, wb, bb, x, ya, yb, yr, y1, y2 };
  for (guint i = 0; i < G_N_ELEMENTS (hosts); i++)
    nf_free (hosts[i]);
  g_free (hw);
  g_free (hb);
  float *devs[] = { dwa, dwb, dba, dbb };
  for (guint i = 0; i < G_N_ELEMENTS (devs); i++)
    dev_free (devs[i]);
}

/* Calls the entry must refuse (on be, fp32). */
static void
test_weights_errors (const WeightCase *conv, const WeightCase *cond)
{
  GError *e = NULL;
  float *w, *b, *cw, *cb;
  size_t nw, nb, ncw, ncb;
  draw_params (&conv->op, &w, &nw, &b, &nb);
  draw_params (&cond->op, &cw, &ncw, &cb, &ncb);
  float *x = host_random (nf_shape_numel (conv->in), -1.0f, 1.0f);
  float *xc = host_random (nf_shape_numel (cond->in), -1.0f, 1.0f);
  float *dw = dev_up (w, nw), *db = dev_up (b, nb), *dcw = dev_up (cw, ncw);
  float *dcb = dev_up (cb, ncb);
  OpRun r, rc;
  oprun_init (&r, be, &conv->op, conv->in, w, b, x);
  oprun_init (&rc, be, &cond->op, cond->in, cw, cb, xc);
  const NfBackendIface *i = be->iface;
  must_fail ("weights_on_device: one weight too few",
      i->weights_on_device (be, &r.call, dw, nw - 1, db, nb, &e), &e);
  must_fail ("weights_on_device: no bias for an op with one",
      i->weights_on_device (be, &r.call, dw, nw, NULL, 0, &e), &e);
  must_fail ("weights_on_device: host memory",
      i->weights_on_device (be, &r.call, w, nw, db, nb, &e), &e);
  must_fail ("weights_on_device: cond_instance_norm rows too few",
      i->weights_on_device (be, &rc.call, dcw, ncw - 1, dcb, ncb, &e), &e);
  NfOpCall unprepared = r.call;
  unprepared.state = NULL;
  must_fail ("weights_on_device: a call not prepared",
      i->weights_on_device (be, &unprepared, dw, nw, db, nb, &e), &e);
  NfOp relu = {.type = NF_OP_RELU,.n_in = 1 };
  NfOpCall rcall = {.op = &relu,.in = { conv->in },.out = conv->in };
  check ("weights_on_device: an op without weights and none given",
      i->weights_on_device (be, &rcall, NULL, 0, NULL, 0, &e), e ? e->message : NULL);
  g_clear_error (&e);
  must_fail ("weights_on_device: weights for an op without any",
      i->weights_on_device (be, &rcall, dw, nw, NULL, 0, &e), &e);
  oprun_clear (&r);
  oprun_clear (&rc);
  float *hosts[] = { w, b, cw, cb, x, xc };
  for (guint k = 0; k < G_N_ELEMENTS (hosts); k++)
    nf_free (hosts[k]);
  float *devs[] = { dw, db, dcw, dcb };
  for (guint k = 0; k < G_N_ELEMENTS (devs); k++)
    dev_free (devs[k]);
}

static void
test_weights (NfBackend *fp16)
{
  GError *e = NULL;
  static const float mix[3] = { 0.5f, -0.2f, 0.7f };
  const WeightCase cases[] = {
    {"conv2d 3->16 k9 reflect", {.type = NF_OP_CONV2D,.name = "op",.n_in = 1,.k = 9,
            .stride = 1,.padding = 4,.pad_mode = NF_PAD_REFLECT,.cin = 3,.cout = 16,
            .has_bias = TRUE}, {2, 3, 20, 17}},
    {"conv2d 16->8 k3 s2 no bias", {.type = NF_OP_CONV2D,.name = "op",.n_in = 1,.k = 3,
            .stride = 2,.padding = 1,.cin = 16,.cout = 8}, {1, 16, 15, 13}},
    {"conv2d 8->12 k3 bias+relu", {.type = NF_OP_CONV2D,.name = "op",.n_in = 1,.k = 3,
            .stride = 1,.padding = 1,.cin = 8,.cout = 12,.has_bias = TRUE,
            .fuse_relu = TRUE}, {2, 8, 9, 11}},
    {"conv_transpose2d 8->4 k3 s2", {.type = NF_OP_CONV_TRANSPOSE2D,.name = "op",.n_in = 1,
            .k = 3,.stride = 2,.padding = 1,.output_padding = 1,.cin = 8,.cout = 4,
            .has_bias = TRUE}, {2, 8, 9, 7}},
    {"instance_norm 16", {.type = NF_OP_INSTANCE_NORM,.name = "op",.n_in = 1,.c = 16,
            .eps = 1e-5f,.affine = TRUE}, {2, 16, 11, 9}},
    {"cond_instance_norm 3x13", {.type = NF_OP_COND_INSTANCE_NORM,.name = "op",.n_in = 1,
            .c = 13,.eps = 1e-5f,.styles = 3,.mix = mix}, {2, 13, 10, 8}},
  };
  NfBackend *ref = nf_backend_new ("cpu-ref", &e);
  must (ref != NULL, e, "cpu-ref");
  for (guint k = 0; k < G_N_ELEMENTS (cases); k++)
    test_weights_case (be, ref, &cases[k], 1e-5, 1e-4);
  for (guint k = 0; fp16 && k < G_N_ELEMENTS (cases); k++)
    test_weights_case (fp16, ref, &cases[k], 2e-3, 2e-2);
  test_weights_errors (&cases[0], &cases[5]);
  nf_backend_free (ref);
}

int
main (void)
{
  GError *e = NULL;
  if (nf_gpu_test_probe () == 0)
    return 77;
  /* a GPU is there: everything from here on must work (failures, not skips); heuristic
   * algorithms, so that two prepares of one op pick the same */
  NfCudaConfig cfg = {.precision = NF_CUDA_FP32,.device = 0,.heuristic_algos = TRUE };
  must ((be = nf_cuda_backend_new (&cfg, &e)) != NULL, e, "nf_cuda_backend_new");
  must ((ct = nf_cuda_train_new (be, &e)) != NULL, e, "nf_cuda_train_new");
  cfg.precision = NF_CUDA_FP16;
  NfBackend *fp16 = nf_cuda_backend_new (&cfg, &e);
  must (fp16 != NULL, e, "nf_cuda_backend_new (fp16)");
  nf_rng_seed (&rng, 20240611);

  test_values ();
  test_bn_fold (64, 64, 3, FALSE, FALSE);
  test_bn_fold (7, 5, 9, FALSE, TRUE);
  test_bn_fold (64, 64, 3, TRUE, FALSE);
  test_bn_fold (6, 3, 3, TRUE, TRUE);
  test_bn_fold (300, 1, 1, FALSE, TRUE);
  test_weights (fp16);

  nf_backend_free (fp16);
  nf_cuda_train_free (ct);
  nf_backend_free (be);
  printf ("\n%d checks, %d failed\n", n_cases, n_failed);
  return n_failed ? 1 : 0;
}
