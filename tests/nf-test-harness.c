/* nf-test-harness.c — random inputs, one op through a backend with NaN-filled outputs,
 * sentinels and guard bytes, the normalised error, one comparison case and the counts,
 * for the op-by-op backend tests. See nf-test-harness.h; it picks no cases.
 */
#include "nf-test-harness.h"

#include <math.h>
#include <stdio.h>

#include "nf-tensor.h"

void
nf_test_round_to_half (float *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    x[i] = nf_half_to_float (nf_float_to_half (x[i]));
}

float *
nf_test_random (NfTestRandom *r, size_t n, float lo, float hi)
{
  float *x = nf_alloc_floats (n);
  nf_rng_fill_uniform (&r->rng, x, n, lo, hi);
  if (r->round_half)
    nf_test_round_to_half (x, n);
  return x;
}

void
nf_test_random_params (NfTestRandom *r, const NfOp *op, float **w, size_t *nw, float **b,
    size_t *nb)
{
  *w = *b = NULL;
  *nw = *nb = 0;
  if (op->type == NF_OP_CONV2D || op->type == NF_OP_CONV_TRANSPOSE2D) {
    float bound = 1.0f / sqrtf ((float) (op->cin * op->k * op->k));
    *nw = (size_t) op->cin * op->cout * op->k * op->k;
    *w = nf_test_random (r, *nw, -bound, bound);
    if (op->has_bias) {
      *nb = op->cout;
      *b = nf_test_random (r, *nb, -0.5f, 0.5f);
    }
  } else if (op->type == NF_OP_INSTANCE_NORM && op->affine) {
    *nw = *nb = op->c;
    *w = nf_test_random (r, op->c, 0.5f, 1.5f);
    *b = nf_test_random (r, op->c, -0.5f, 0.5f);
  }
}

static void
round_tensors_to_half (GHashTable *tensors)
{
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, tensors);
  while (g_hash_table_iter_next (&it, NULL, &v)) {
    NfModelTensor *t = v;
    nf_test_round_to_half (t->data, nf_model_tensor_numel (t));
  }
}

gboolean
nf_test_model_round_to_half (NfModel *m, GError **error)
{
  round_tensors_to_half (m->tensors);
  if (!nf_model_bind (m, error))
    return FALSE;
  round_tensors_to_half (m->folded);
  return TRUE;
}

float *
nf_test_run_forward (NfTestBe *b, const NfOp *op, const NfShape *in_s,
    float *const *in_host, NfShape out_s, int repeats, char **why)
{
  GError *e = NULL;
  void *in[NF_OP_MAX_INPUTS] = { 0 };
  void *out = NULL;
  float *res = NULL;
  NfOpCall call = { .op = op, .out = out_s };
  gboolean prepared = FALSE;
  size_t on = nf_shape_numel (out_s);
  float *nan_fill = nf_alloc_floats (on);
  for (size_t i = 0; i < on; i++)
    nan_fill[i] = NAN;

  for (int i = 0; i < op->n_in; i++) {
    call.in[i] = in_s[i];
    if (!(in[i] = b->iface->alloc (b->be, in_s[i], &e)))
      goto fail;
  }
  if (!(out = b->iface->alloc (b->be, out_s, &e)))
    goto fail;
  if (b->iface->prepare) {
    if (!b->iface->prepare (b->be, &call, &e))
      goto fail;
    prepared = TRUE;
  }
  for (int r = 0; r < repeats; r++) {
    for (int i = 0; i < op->n_in; i++)
      if (!b->iface->upload (b->be, in[i], in_host[i], in_s[i], &e))
        goto fail;
    if (!b->iface->upload (b->be, out, nan_fill, out_s, &e))
      goto fail;
    if (!b->iface->forward[op->type] (b->be, &call, in, out, &e))
      goto fail;
  }
  if (b->iface->synchronize && !b->iface->synchronize (b->be, &e))
    goto fail;
  if (b->buffer_ok) {
    for (int i = 0; i < op->n_in; i++)
      if (!b->buffer_ok (b->be, in[i], &e))
        goto fail;
    if (!b->buffer_ok (b->be, out, &e))
      goto fail;
  }
  res = nf_alloc_floats (on + NF_TEST_N_SENTINEL);
  for (int i = 0; i < NF_TEST_N_SENTINEL; i++)
    res[on + i] = NF_TEST_SENTINEL;
  if (!b->iface->download (b->be, res, out, out_s, &e)) {
    nf_free (res);
    res = NULL;
    goto fail;
  }
  for (int i = 0; i < NF_TEST_N_SENTINEL; i++)
    if (res[on + i] != NF_TEST_SENTINEL) {
      *why = g_strdup_printf ("%s: download wrote past the end", b->iface->name);
      nf_free (res);
      res = NULL;
      break;
    }
  goto done;

fail:
  *why = g_strdup_printf ("%s: %s", b->iface->name, e ? e->message : "?");
  g_clear_error (&e);
done:
  if (prepared && b->iface->release)
    b->iface->release (b->be, &call);
  for (int i = 0; i < op->n_in; i++)
    if (in[i])
      b->iface->free (b->be, in[i]);
  if (out)
    b->iface->free (b->be, out);
  nf_free (nan_fill);
  return res;
}

NfTestResult
nf_test_compare_op (NfTestRandom *r, NfTestBe *ref, NfTestBe *be, NfOp op,
    const NfShape *in_s, float lo, float hi, int repeats, double tol, int desc_width,
    const char *desc)
{
  NfShape out_s;
  GError *e = NULL;
  if (!nf_op_output_shape (&op, in_s, &out_s, &e)) {
    g_error_free (e);
    return NF_TEST_NOT_A_CASE;
  }
  float *in_host[NF_OP_MAX_INPUTS] = { 0 };
  for (int i = 0; i < op.n_in; i++)
    in_host[i] = nf_test_random (r, nf_shape_numel (in_s[i]), lo, hi);
  float *w, *b;
  size_t nw, nb;
  nf_test_random_params (r, &op, &w, &nw, &b, &nb);
  op.weight = w;
  op.bias = b;

  char *why = NULL;
  float *yr = nf_test_run_forward (ref, &op, in_s, in_host, out_s, 1, &why);
  float *y = yr ? nf_test_run_forward (be, &op, in_s, in_host, out_s, repeats, &why) : NULL;
  double err = (yr && y) ? nf_test_norm_err (yr, y, nf_shape_numel (out_s)) : INFINITY;
  if (yr && y && isinf (err))
    why = g_strdup ("NaN in an output (element left unwritten?)");
  gboolean ok = yr && y && err <= tol;
  printf ("%-4s %-*s n%d %3dx%-3d -> %2dx%3dx%-3d err %.2e (tol %.0e)%s%s\n",
      ok ? "ok" : "FAIL", desc_width, desc, in_s[0].n, in_s[0].h, in_s[0].w, out_s.c,
      out_s.h, out_s.w, err, tol, why ? "  " : "", why ? why : "");
  g_free (why);
  for (int i = 0; i < op.n_in; i++)
    nf_free (in_host[i]);
  nf_free (w);
  nf_free (b);
  nf_free (yr);
  nf_free (y);
  return ok ? NF_TEST_PASSED : NF_TEST_FAILED;
}

void
nf_test_count (NfTestCounts *c, NfTestResult r)
{
  c->cases += r != NF_TEST_NOT_A_CASE;
  c->failed += r == NF_TEST_FAILED;
}

void
nf_test_expect (NfTestCounts *c, gboolean cond, const char *what, const GError *e)
{
  c->cases++;
  if (!cond)
    c->failed++;
  printf ("%-4s %s%s%s\n", cond ? "ok" : "FAIL", what, e ? ": " : "", e ? e->message : "");
}

double
nf_test_max_abs (const float *x, size_t n)
{
  double m = 0;
  for (size_t i = 0; i < n; i++)
    m = MAX (m, fabs (x[i]));
  return m;
}

double
nf_test_abs_err (const float *ref, const float *got, size_t n)
{
  double d = 0;
  for (size_t i = 0; i < n; i++) {
    if (isnan (ref[i]) || isnan (got[i]))
      return INFINITY;
    d = MAX (d, fabs ((double) ref[i] - got[i]));
  }
  return d;
}

double
nf_test_norm_err (const float *ref, const float *got, size_t n)
{
  return nf_test_abs_err (ref, got, n) / (nf_test_max_abs (ref, n) + 1e-6);
}
