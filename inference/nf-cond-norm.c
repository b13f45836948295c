/* nf-cond-norm.c — cond_instance_norm through instance_norm: the mix of the style rows,
 * and forward/backward on the host backends (see nf-cond-norm.h).
 *
 * What it does: mixes op->weight, op->bias (N, c) by op->mix (N) in double; runs the
 * backend's instance_norm on the same call with an affine instance_norm op that holds the
 * mixed rows (the call keeps its identity: the fast backend keys its buffer layout hints
 * on it); scatters the gradient of the mixed rows back to the N rows.
 * What it does not: device memory (the CUDA backend has its own entry points).
 */
#include "nf-cond-norm.h"

#include <string.h>

#include "nf-error.h"

gboolean
nf_cond_norm_mix (const NfOp *op, float *gamma, float *beta, GError **error)
{
  if (!op->mix || !op->weight || !op->bias || op->styles < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "cond_instance_norm %s: no %s bound (load it through a model)",
        op->name ? op->name : "", op->mix ? "weights" : "style mix");
    return FALSE;
  }
  for (int c = 0; c < op->c; c++) {
    double g = 0.0, b = 0.0;
    for (int i = 0; i < op->styles; i++) {
      g += (double) op->mix[i] * op->weight[(size_t) i * op->c + c];
      b += (double) op->mix[i] * op->bias[(size_t) i * op->c + c];
    }
    gamma[c] = (float) g;
    beta[c] = (float) b;
  }
  return TRUE;
}

void
nf_cond_norm_scatter (const NfOp *op, const float *dgamma, const float *dbeta,
    float *dweight, float *dbias)
{
  for (int i = 0; i < op->styles; i++) {
    float m = op->mix[i];
    if (m == 0.0f)
      continue;                 /* exact zeros: rows of styles not in the mix */
    for (int c = 0; c < op->c; c++) {
      if (dweight)
        dweight[(size_t) i * op->c + c] += m * dgamma[c];
      if (dbias)
        dbias[(size_t) i * op->c + c] += m * dbeta[c];
    }
  }
}

/* The instance_norm op standing for op with mixed rows gamma, beta. */
static NfOp
as_instance_norm (const NfOp *op, const float *gamma, const float *beta)
{
  NfOp in = *op;
  in.type = NF_OP_INSTANCE_NORM;
  in.affine = TRUE;
  in.weight = gamma;
  in.bias = beta;
  in.mix = NULL;
  in.styles = 0;
  return in;
}

gboolean
nf_cond_norm_forward_host (NfBackend *be, NfOpCall *call, void *const *in, void *out,
    GError **error)
{
  NfForwardFn fwd = be->iface->forward[NF_OP_INSTANCE_NORM];
  const NfOp *op = call->op;
  if (!fwd) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
        "backend %s has no instance_norm for cond_instance_norm", be->iface->name);
    return FALSE;
  }
  float *rows = g_new (float, 2 * (size_t) op->c);      // gamma (c), beta (c)
  gboolean ok = nf_cond_norm_mix (op, rows, rows + op->c, error);
  if (ok) {
    NfOp tmp = as_instance_norm (op, rows, rows + op->c);
    call->op = &tmp;
    ok = fwd (be, call, in, out, error);
    call->op = op;
  }
  g_free (rows);
  return ok;
}

gboolean
nf_cond_norm_backward_host (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error)
{
  NfBackwardFn bwd = be->iface->backward[NF_OP_INSTANCE_NORM];
  const NfOp *op = call->op;
  if (!bwd) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
        "backend %s has no instance_norm backward for cond_instance_norm", be->iface->name);
    return FALSE;
  }
  size_t c = (size_t) op->c;
  float *rows = g_new0 (float, 4 * c);  // gamma, beta, dL/dgamma, dL/dbeta (c each)
  gboolean ok = nf_cond_norm_mix (op, rows, rows + c, error);
  if (ok) {
    NfOp tmp = as_instance_norm (op, rows, rows + c);
    call->op = &tmp;
    ok = bwd (be, call, in, out, dout, din, dweight ? rows + 2 * c : NULL,
        dbias ? rows + 3 * c : NULL, error);
    call->op = op;
  }
  if (ok)
    nf_cond_norm_scatter (op, rows + 2 * c, rows + 3 * c, dweight, dbias);
  g_free (rows);
  return ok;
}
