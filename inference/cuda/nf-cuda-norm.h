/* nf-cuda-norm.h — state of one planned instance_norm, shared by nf-cuda-norm.cu
 * (prepare, forward) and nf-cuda-norm-backward.cu. C++ only, private.
 *
 * What it holds: the affine parameters on the device, and small buffers sized at
 * prepare (per (n, c) and per chunk of pixels) so that neither forward nor backward
 * allocates.
 * What it does not: own scratch memory (none is needed).
 */
#pragma once

#include "nf-cuda-private.h"

typedef struct {
  float *w, *b;                 /* (C) device, NULL when not affine */
  float *partials;              /* (N, C, chunks, 2): sum (x - K), sum (x - K)^2; backward
                                 * reuses it for sum g, sum g * xhat */
  float *ms;                    /* (N, C, 2): mean, scale */
  float *bwd;                   /* (N, C, NF_NORM_BWD): backward's per-plane values */
  int chunks, chunk_pixels;
} NfCudaNorm;

/* Per (n, c) in bwd: the shift K = x[n, c, 0, 0], mean - K, 1 / sqrt(var + eps),
 * sum of g, sum of g * xhat. */
#define NF_NORM_BWD 5

/* Statistics pass 1: partials (N, C, chunks, 2) of x (N, C, H, W) of shape s. */
gboolean nf_cuda_norm_launch_stats (NfCudaBackend *be, NfCudaNorm *st, const void *x,
    NfShape s, GError **error);
