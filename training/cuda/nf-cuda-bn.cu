/* nf-cuda-bn.cu — batch norm folded into a convolution, on the device (nf-cuda-train.h):
 * the refold of the folded weight and bias from the parameters after an optimiser step,
 * and the chain rule from the folded weight's gradient back to the convolution's weight
 * and bias and the batch norm's gamma and beta. With these the GPU trainer keeps a
 * network with batch norm (sr-johnson) on the device between steps, as one without.
 *
 * The arithmetic is nf-cuda-bn-fold.h's (nf-trainnet.c's, in double, IEEE
 * round-to-nearest intrinsics). Refold: one thread per weight element (its channel's
 * factor recomputed, a few double operations), the first cout threads also write b'.
 * Chain rule: one block per output channel: its threads walk the channel's weights
 * (nf_bn_fold_index: contiguous for conv2d, strided for conv_transpose2d), each adds
 * dW' s into dW and its share of sum dW' W in double; the block sums the shares in
 * shared memory (a fixed tree: deterministic) and thread 0 updates dgamma, dbeta, db.
 * Every element belongs to one channel, so no two blocks write the same place.
 * What it does not: batch statistics (frozen, nf-trainnet.h), or decide when to refold
 * (nf-trainnet-gpu.c).
 */
#include "nf-cuda-train-private.h"

#include "nf-error.h"

#define BN_THREADS 256

__global__ void
bn_refold_kernel (NfBnFoldGeom g, const float *__restrict__ w, const float *__restrict__ b,
    const float *__restrict__ gamma, const float *__restrict__ beta,
    const float *__restrict__ mean, const float *__restrict__ var, float *__restrict__ fw,
    float *__restrict__ fb)
{
  size_t n = nf_bn_fold_numel (&g);
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int co = nf_bn_fold_channel (&g, i);
    fw[i] = nf_bn_fold_weight (w[i], nf_bn_fold_scale (gamma[co], var[co], g.eps));
    if (i < (size_t) g.cout) {
      int c = (int) i;
      double s = nf_bn_fold_scale (gamma[c], var[c], g.eps);
      fb[c] = nf_bn_fold_bias (b ? b[c] : 0.0f, mean[c], beta[c], s);
    }
  }
}

/* Block co: output channel co. blockDim.x == BN_THREADS. */
__global__ void
bn_chain_rule_kernel (NfBnFoldGeom g, const float *__restrict__ gw,
    const float *__restrict__ gb, const float *__restrict__ w, const float *__restrict__ b,
    const float *__restrict__ gamma, const float *__restrict__ mean,
    const float *__restrict__ var, float *__restrict__ dw, float *__restrict__ db,
    float *__restrict__ dgamma, float *__restrict__ dbeta)
{
  __shared__ double part[BN_THREADS];
  int co = blockIdx.x;
  size_t per = (size_t) g.cin * g.kk;
  double s = nf_bn_fold_scale (gamma[co], var[co], g.eps);
  double acc = 0.0;
  for (size_t j = threadIdx.x; j < per; j += blockDim.x) {
    size_t k = nf_bn_fold_index (&g, co, j);
    acc = __dadd_rn (acc, __dmul_rn ((double) gw[k], (double) w[k]));
    dw[k] = nf_bn_fold_dw (dw[k], gw[k], s);
  }
  part[threadIdx.x] = acc;
  __syncthreads ();
  for (int o = BN_THREADS / 2; o > 0; o >>= 1) {
    if ((int) threadIdx.x < o)
      part[threadIdx.x] = __dadd_rn (part[threadIdx.x], part[threadIdx.x + o]);
    __syncthreads ();
  }
  if (threadIdx.x == 0) {
    double inv = nf_bn_fold_inv_std (var[co], g.eps);
    float bias = b ? b[co] : 0.0f;
    dgamma[co] = nf_bn_fold_dgamma (dgamma[co], part[0], gb[co], bias, mean[co], inv);
    dbeta[co] = __fadd_rn (dbeta[co], gb[co]);
    if (db)
      db[co] = nf_bn_fold_db (db[co], gb[co], gamma[co], inv);
  }
}

static gboolean
check_geom (const NfBnFoldGeom *g, const char *what, GError **error)
{
  if (g && g->cout >= 1 && g->cin >= 1 && g->kk >= 1)
    return TRUE;
  g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: bad convolution (cout %d, cin %d, "
      "k*k %d)", what, g ? g->cout : 0, g ? g->cin : 0, g ? g->kk : 0);
  return FALSE;
}

gboolean
nf_cuda_bn_refold (NfCudaTrain *ct, const NfBnFoldGeom *g, const float *w, const float *b,
    const float *gamma, const float *beta, const float *mean, const float *var, float *fw,
    float *fb, GError **error)
{
  const char *what = "nf_cuda_bn_refold";
  if (!check_geom (g, what, error) || !nf_ct_need (w, what, error)
      || !nf_ct_need (gamma, what, error) || !nf_ct_need (beta, what, error)
      || !nf_ct_need (mean, what, error) || !nf_ct_need (var, what, error)
      || !nf_ct_need (fw, what, error) || !nf_ct_need (fb, what, error)
      || !nf_ct_enter (ct, error))
    return FALSE;
  size_t n = nf_bn_fold_numel (g);
  bn_refold_kernel<<<nf_blocks (n, NF_THREADS), NF_THREADS, 0, nf_ct_stream (ct)>>> (*g, w,
      b, gamma, beta, mean, var, fw, fb);
  return nf_cuda_launch_ok ("bn_refold_kernel", error);
}

gboolean
nf_cuda_bn_chain_rule (NfCudaTrain *ct, const NfBnFoldGeom *g, const float *gw,
    const float *gb, const float *w, const float *b, const float *gamma, const float *mean,
    const float *var, float *dw, float *db, float *dgamma, float *dbeta, GError **error)
{
  const char *what = "nf_cuda_bn_chain_rule";
  if (!check_geom (g, what, error) || !nf_ct_need (gw, what, error)
      || !nf_ct_need (gb, what, error) || !nf_ct_need (w, what, error)
      || !nf_ct_need (gamma, what, error) || !nf_ct_need (mean, what, error)
      || !nf_ct_need (var, what, error) || !nf_ct_need (dw, what, error)
      || !nf_ct_need (dgamma, what, error) || !nf_ct_need (dbeta, what, error)
      || !nf_ct_enter (ct, error))
    return FALSE;
  if ((b == NULL) != (db == NULL)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: a bias without its gradient, or "
        "a gradient without a bias", what);
    return FALSE;
  }
  bn_chain_rule_kernel<<<g->cout, BN_THREADS, 0, nf_ct_stream (ct)>>> (*g, gw, gb, w, b,
      gamma, mean, var, dw, db, dgamma, dbeta);
  return nf_cuda_launch_ok ("bn_chain_rule_kernel", error);
}
