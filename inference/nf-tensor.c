/* nf-tensor.c — aligned host allocation, the PCG32 generator, half-float conversion.
 * Does not: any tensor arithmetic (that lives in the backends). */
#include "nf-tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void *
nf_alloc_aligned (size_t bytes)
{
  void *p = NULL;
  size_t rounded = (bytes + 63) & ~(size_t) 63;
  if (rounded == 0)
    rounded = 64;
  if (posix_memalign (&p, 64, rounded) != 0)
    return NULL;
  memset (p, 0, rounded);
  return p;
}

float *
nf_alloc_floats (size_t n)
{
  return nf_alloc_aligned (n * sizeof (float));
}

void
nf_free (void *p)
{
  free (p);
}

void
nf_rng_seed (NfRng *rng, uint64_t seed)
{
  rng->state = 0;
  rng->inc = (seed << 1u) | 1u;
  nf_rng_u32 (rng);
  rng->state += 0x853c49e6748fea9bULL ^ seed;
  nf_rng_u32 (rng);
}

uint32_t
nf_rng_u32 (NfRng *rng)
{
  uint64_t old = rng->state;
  rng->state = old * 6364136223846793005ULL + rng->inc;
  uint32_t xorshifted = (uint32_t) (((old >> 18u) ^ old) >> 27u);
  uint32_t rot = (uint32_t) (old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float
nf_rng_uniform (NfRng *rng)
{
  return (nf_rng_u32 (rng) >> 8) * (1.0f / 16777216.0f);
}

float
nf_rng_normal (NfRng *rng)
{
  float u1 = nf_rng_uniform (rng);
  float u2 = nf_rng_uniform (rng);
  if (u1 < 1e-12f)
    u1 = 1e-12f;
  return sqrtf (-2.0f * logf (u1)) * cosf (6.2831853071795864f * u2);
}

void
nf_rng_fill_uniform (NfRng *rng, float *x, size_t n, float lo, float hi)
{
  for (size_t i = 0; i < n; i++)
    x[i] = lo + (hi - lo) * nf_rng_uniform (rng);
}

float
nf_half_to_float (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {                    /* subnormal */
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        exp--;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

uint16_t
nf_float_to_half (float f)
{
  uint32_t x;
  memcpy (&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = (int32_t) ((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff)
    return (uint16_t) (sign | 0x7c00 | (mant ? 0x200 : 0));
  if (exp >= 31)
    return (uint16_t) (sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10)
      return (uint16_t) sign;
    mant |= 0x800000;
    uint32_t shift = (uint32_t) (14 - exp);
    uint32_t half_mant = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1)))
      half_mant++;
    return (uint16_t) (sign | half_mant);
  }
  uint32_t h = sign | ((uint32_t) exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
    h++;                        /* may carry into the exponent: correct */
  return (uint16_t) h;
}

float
nf_bf16_to_float (uint16_t h)
{
  uint32_t bits = (uint32_t) h << 16;
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

uint16_t
nf_float_to_bf16 (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t) ((u >> 16) | 0x40);       /* NaN stays a (quiet) NaN */
  u += 0x7fffu + ((u >> 16) & 1u);      /* round to nearest, ties to even */
  return (uint16_t) (u >> 16);
}
