/* test-gpu-train-device.c — the device paths of a GPU training step (issue 18.3, 18.4),
 * piece by piece, on "cuda":
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
 *               random gradients.
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


int
main (void)
{
  GError *e = NULL;
  if (nf_gpu_test_probe () == 0)
    return 77;
  /* a GPU is there: everything from here on must work (failures, not skips) */
  NfCudaConfig cfg = {.precision = NF_CUDA_FP32,.device = 0,.heuristic_algos = TRUE };
  must ((be = nf_cuda_backend_new (&cfg, &e)) != NULL, e, "nf_cuda_backend_new");
  must ((ct = nf_cuda_train_new (be, &e)) != NULL, e, "nf_cuda_train_new");
  nf_rng_seed (&rng, 20240611);

  test_values ();
  test_bn_fold (64, 64, 3, FALSE, FALSE);
  test_bn_fold (7, 5, 9, FALSE, TRUE);
  test_bn_fold (64, 64, 3, TRUE, FALSE);
  test_bn_fold (6, 3, 3, TRUE, TRUE);
  test_bn_fold (300, 1, 1, FALSE, TRUE);

  nf_cuda_train_free (ct);
  nf_backend_free (be);
  printf ("\n%d checks, %d failed\n", n_cases, n_failed);
  return n_failed ? 1 : 0;
}
