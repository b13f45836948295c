/* nf-tensor.h — shapes and host float buffers shared by the whole library.
 *
 * What it does: the 4-D shape type used everywhere (N, C, H, W), element counts,
 * 64-byte aligned host allocation, and a small deterministic PRNG (so seeded weights
 * and test inputs are the same on every machine).
 * What it does not: own device memory (backends do), or know about layouts other
 * than NCHW (backends convert in upload/download).
 */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct {
  int n, c, h, w;
} NfShape;

static inline size_t
nf_shape_numel (NfShape s)
{
  return (size_t) s.n * s.c * s.h * s.w;
}

static inline gboolean
nf_shape_equal (NfShape a, NfShape b)
{
  return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
}

/* Host float buffer, 64-byte aligned, zero-filled. Free with nf_free(). */
float *nf_alloc_floats (size_t n);
void *nf_alloc_aligned (size_t bytes);
void nf_free (void *p);

/* PCG32: deterministic across platforms. */
typedef struct {
  uint64_t state, inc;
} NfRng;

void nf_rng_seed (NfRng *rng, uint64_t seed);
uint32_t nf_rng_u32 (NfRng *rng);
float nf_rng_uniform (NfRng *rng);      /* [0, 1) */
float nf_rng_normal (NfRng *rng);       /* N(0, 1), Box-Muller */
void nf_rng_fill_uniform (NfRng *rng, float *x, size_t n, float lo, float hi);

/* Index i of a signal of length n continued by mirror reflection (no edge repeat, as
 * reflection padding does): ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ... */
static inline int
nf_reflect_index (int i, int n)
{
  if (n == 1)
    return 0;
  int period = 2 * (n - 1);
  i %= period;
  if (i < 0)
    i += period;
  return i < n ? i : period - i;
}

/* IEEE half and bfloat16 <-> float: F16/BF16 safetensors, the GPU path, cpu-bf16. */
float nf_half_to_float (uint16_t h);
uint16_t nf_float_to_half (float f);
float nf_bf16_to_float (uint16_t h);
uint16_t nf_float_to_bf16 (float f);  /* round to nearest even; NaN stays NaN */

G_END_DECLS
