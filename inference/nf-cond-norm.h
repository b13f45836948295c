/* nf-cond-norm.h — cond_instance_norm (nf-graph.h) in terms of instance_norm: the style
 * rows mixed by the op's run-time weights, and the path of the host backends.
 *
 *   gamma[c] = sum_i m_i weight[i, c],  beta[c] = sum_i m_i bias[i, c]   (m = op->mix)
 *   y = instance_norm (x; gamma, beta)
 *   dweight[i, c] += m_i dL/dgamma[c],  dbias[i, c] += m_i dL/dbeta[c]
 *
 * What it does: the mix (sums in double), and forward/backward for backends whose
 * parameters and gradients live in host memory (cpu-ref, cpu, cpu-bf16): they run the
 * backend's own instance_norm entries (so the fast backend's kernels, its fused ReLU
 * and its fp32 statistics on cpu-bf16) with the mixed rows. The mix is computed at
 * every run, so changing the model's style mix needs no replanning.
 * What it does not: the CUDA path (inference/cuda/nf-cuda-cond-norm.cu keeps the rows on
 * the device and mixes them there), or choose the mix (nf-model.h).
 */
#pragma once

#include "nf-backend.h"

G_BEGIN_DECLS

/* gamma, beta (op->c each) for op's current mix; FALSE + error when no mix is bound or
 * the op has no weights. */
gboolean nf_cond_norm_mix (const NfOp *op, float *gamma, float *beta, GError **error);

/* dweight[i, c] += mix[i] * dgamma[c] (and the same for the bias), host memory; either
 * destination may be NULL. */
void nf_cond_norm_scatter (const NfOp *op, const float *dgamma, const float *dbeta,
    float *dweight, float *dbias);

/* Forward / backward of a cond_instance_norm call on a host backend (through its
 * instance_norm entries; an error when it has none). */
gboolean nf_cond_norm_forward_host (NfBackend *be, NfOpCall *call, void *const *in,
    void *out, GError **error);
gboolean nf_cond_norm_backward_host (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error);

G_END_DECLS
