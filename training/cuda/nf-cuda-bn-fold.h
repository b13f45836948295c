/* nf-cuda-bn-fold.h — the arithmetic of a batch norm folded into the convolution before
 * it (nf-trainnet.h: W' = W s, b' = (b - mean) s + beta, s = gamma / sqrt (var + eps),
 * and the chain rule back to W, b, gamma, beta), one element or one channel at a time,
 * as plain C inline functions shared by the kernels of nf-cuda-bn.cu and the host test
 * tests/gpu/test-gpu-train-host.c, which runs them against nf-trainnet.c's refold and
 * nf_trainnet_bn_chain_rule.
 *
 * Every operation is the one nf-trainnet.c does, in double and in its order; on the
 * device each is an IEEE round-to-nearest intrinsic (__dadd_rn, __dsub_rn, __dmul_rn,
 * __ddiv_rn, __dsqrt_rn, __fadd_rn), so nvcc cannot contract a multiply and an add into
 * one FMA, and the results are those of the host's ISO C build (which does not contract
 * either):
 * bit-identical for the refold and for dW and db; dgamma sums over a channel's weights
 * in another order (a per-channel reduction), so it may differ in the last bits.
 * Weights are (K, C, k, k) in the model's layout: conv2d (cout, cin, k, k), output channel
 * first; conv_transpose2d (cin, cout, k, k), output channel second.
 * What it does not: launch anything or touch memory beyond its arguments.
 */
#pragma once

#include <stddef.h>

#ifdef __CUDACC__
#define NF_BN_FN static __host__ __device__ __forceinline__
#else
#define NF_BN_FN static inline
#endif

#ifdef __CUDA_ARCH__
#define NF_BN_ADD(a, b) __dadd_rn ((a), (b))
#define NF_BN_SUB(a, b) __dsub_rn ((a), (b))
#define NF_BN_MUL(a, b) __dmul_rn ((a), (b))
#define NF_BN_DIV(a, b) __ddiv_rn ((a), (b))
#define NF_BN_SQRT(a) __dsqrt_rn (a)
#define NF_BN_FADD(a, b) __fadd_rn ((a), (b))
#else
#include <math.h>
#define NF_BN_ADD(a, b) ((a) + (b))
#define NF_BN_SUB(a, b) ((a) - (b))
#define NF_BN_MUL(a, b) ((a) * (b))
#define NF_BN_DIV(a, b) ((a) / (b))
#define NF_BN_SQRT(a) sqrt (a)
#define NF_BN_FADD(a, b) ((a) + (b))
#endif

/* One fold's convolution: cout output channels, cin input channels, kk = k * k. */
typedef struct {
  int cout, cin, kk;
  int transposed;               /* conv_transpose2d: (cin, cout, k, k) */
  float eps;                    /* the batch norm's */
} NfBnFoldGeom;

/* Elements of the weight: cout * cin * kk. */
NF_BN_FN size_t
nf_bn_fold_numel (const NfBnFoldGeom *g)
{
  return (size_t) g->cout * g->cin * g->kk;
}

/* Output channel of weight element i (nf-trainnet.c's out_channel). */
NF_BN_FN int
nf_bn_fold_channel (const NfBnFoldGeom *g, size_t i)
{
  return g->transposed ? (int) ((i / g->kk) % g->cout) : (int) (i / ((size_t) g->kk * g->cin));
}

/* Weight index of element j (0 .. cin * kk - 1) of output channel co: every element of
 * the weight is (co, j) for exactly one pair. */
NF_BN_FN size_t
nf_bn_fold_index (const NfBnFoldGeom *g, int co, size_t j)
{
  if (g->transposed)
    return ((j / g->kk) * g->cout + co) * g->kk + j % g->kk;
  return (size_t) co * g->cin * g->kk + j;
}

/* s = gamma / sqrt (var + eps) (the refold's and dW's factor). */
NF_BN_FN double
nf_bn_fold_scale (float gamma, float var, float eps)
{
  return NF_BN_DIV ((double) gamma, NF_BN_SQRT (NF_BN_ADD ((double) var, (double) eps)));
}

/* 1 / sqrt (var + eps) (dgamma's and db's factor, as the chain rule computes it). */
NF_BN_FN double
nf_bn_fold_inv_std (float var, float eps)
{
  return NF_BN_DIV (1.0, NF_BN_SQRT (NF_BN_ADD ((double) var, (double) eps)));
}

/* W' of one element: w s. */
NF_BN_FN float
nf_bn_fold_weight (float w, double s)
{
  return (float) NF_BN_MUL ((double) w, s);
}

/* b' of one channel: (b - mean) s + beta (b = 0 for a convolution without bias). */
NF_BN_FN float
nf_bn_fold_bias (float b, float mean, float beta, double s)
{
  return (float) NF_BN_ADD (NF_BN_MUL (NF_BN_SUB ((double) b, (double) mean), s),
      (double) beta);
}

/* dW += dW' s for one element (s = nf_bn_fold_scale). */
NF_BN_FN float
nf_bn_fold_dw (float dw, float gw, double s)
{
  return NF_BN_FADD (dw, (float) NF_BN_MUL ((double) gw, s));
}

/* dgamma += (acc + db' (b - mean)) inv, acc = sum over the channel's weights of dW' W
 * (in double), inv = nf_bn_fold_inv_std. */
NF_BN_FN float
nf_bn_fold_dgamma (float dgamma, double acc, float gb, float b, float mean, double inv)
{
  double t = NF_BN_MUL ((double) gb, NF_BN_SUB ((double) b, (double) mean));
  return NF_BN_FADD (dgamma, (float) NF_BN_MUL (NF_BN_ADD (acc, t), inv));
}

/* db += db' (gamma inv). */
NF_BN_FN float
nf_bn_fold_db (float db, float gb, float gamma, double inv)
{
  return NF_BN_FADD (db, (float) NF_BN_MUL ((double) gb, NF_BN_MUL ((double) gamma, inv)));
}
