/* nf-cuda-bias-grad.h — how the bias gradient db[c] += sum over (n, y, x) of dy is cut
 * into work for the GPU: plain C (and C++ for nvcc), so tests/gpu/test-cuda-bias-grad-plan.c
 * checks on the host that the cut covers every element once.
 *
 * Two stages, both deterministic (a fixed partition and fixed summation orders, no
 * atomics), sums in double:
 *  1. blocks spread over the whole tensor (about 4 per SM) each write partial sums:
 *     NHWC (fp16): the tensor is rows = N*H*W rows of C contiguous values; a block takes
 *       rows_per_block rows; its threads cover tiles of the C columns (all of them when
 *       C <= threads), g = threads / tile-width rows at a time, so consecutive threads read
 *       consecutive addresses: partial[block * C + c];
 *     NCHW (fp32): N*C planes of H*W contiguous values, each cut into chunks; a block
 *       sums one chunk: partial[(n * C + c) * chunks + chunk];
 *  2. one thread per channel adds its partials in order: partial[(i * C + c) * inner + j]
 *     over i < outer, j < inner (NHWC: outer = blocks, inner = 1; NCHW: outer = N,
 *     inner = chunks), then db[c] += the sum.
 * (Before, one block per output channel read the whole tensor: 3 blocks for an RGB output
 * layer on a 132-SM GPU, strided reads in NHWC.)
 * What it does not: launch anything (nf-cuda-bias-grad.cu).
 */
#pragma once

#include <stddef.h>

#include "nf-tensor.h"

#ifdef __CUDACC__
#define NF_CUDA_HD __host__ __device__ __forceinline__
#else
#define NF_CUDA_HD static inline
#endif

#define NF_BIAS_GRAD_THREADS 256

typedef struct {
  int nhwc;                     /* layout: 1 NHWC, 0 NCHW */
  int c;                        /* channels */
  int threads;                  /* per block of stage 1 */
  unsigned blocks;              /* of stage 1 (0: empty tensor, nothing to do) */
  size_t rows, rows_per_block;  /* NHWC: N*H*W rows of c values */
  size_t hw, chunk, chunks;     /* NCHW: N*C planes of hw values, chunks of chunk values */
  size_t n_partial;             /* doubles written by stage 1 */
  size_t outer, inner;          /* stage 2: partial[(i * c + ch) * inner + j] */
} NfBiasGradPlan;

/* NHWC stage 1, column tile starting at c0: its width cw (columns the threads cover) and
 * g, the rows read at once (thread t reads column c0 + t % cw of rows t / cw + k g, when
 * t / cw < g). */
NF_CUDA_HD void
nf_bias_grad_tile (const NfBiasGradPlan *p, int c0, int *cw, int *g)
{
  int w = p->c - c0;
  *cw = w < p->threads ? w : p->threads;
  *g = p->threads / *cw;
}

/* The plan for dy of shape s in the given layout on a GPU with sms multiprocessors. */
static inline NfBiasGradPlan
nf_bias_grad_plan (NfShape s, int nhwc, int sms)
{
  NfBiasGradPlan p;
  size_t target = (size_t) (sms > 0 ? sms : 1) * 4;
  p.nhwc = nhwc;
  p.c = s.c;
  p.threads = NF_BIAS_GRAD_THREADS;
  p.rows = (size_t) s.n * s.h * s.w;
  p.hw = (size_t) s.h * s.w;
  p.rows_per_block = p.chunk = p.chunks = 0;
  p.blocks = 0;
  p.n_partial = 0;
  p.outer = p.inner = 0;
  if (s.n <= 0 || s.c <= 0 || p.hw == 0)
    return p;
  if (nhwc) {
    size_t per = (p.rows + target - 1) / target;
    p.rows_per_block = per < 32 ? 32 : per;
    p.blocks = (unsigned) ((p.rows + p.rows_per_block - 1) / p.rows_per_block);
    p.n_partial = (size_t) p.blocks * p.c;
    p.outer = p.blocks;
    p.inner = 1;
  } else {
    size_t planes = (size_t) s.n * s.c;
    size_t want = (target + planes - 1) / planes;        /* chunks per plane wanted */
    size_t chunk = (p.hw + want - 1) / want;
    p.chunk = chunk < 1024 ? 1024 : chunk;
    p.chunks = (p.hw + p.chunk - 1) / p.chunk;
    p.blocks = (unsigned) (planes * p.chunks);
    p.n_partial = p.blocks;
    p.outer = (size_t) s.n;
    p.inner = p.chunks;
  }
  return p;
}
