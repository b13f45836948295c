/* nf-cpu-bf16.c — the layout and precision conversions around the bf16 convolutions of
 * the "cpu-bf16" backend, and whether this CPU computes bf16 natively.
 *
 * What it does: oneDNN's native bf16 convolutions (avx512_core_bf16, AMX) want 16-lane
 * blocks (nChw16c) where the rest of the fast backend keeps fp32 nChw8c, so a bf16
 * convolution reads its padded fp32 source through nf_cpu_bf16_pack (fp32 nChw8c ->
 * bf16 nChw16c, round to nearest even) and its fp32 nChw16c output goes back through
 * nf_cpu_bf16_unpack (-> fp32 nChw8c). Both are plain memory passes, OpenMP over
 * (image, block, row), with AVX-512 BF16 instructions where the CPU has them (the backend
 * only exists there) and a portable loop otherwise (tests compare the two).
 * What it does not: convolve (nf-dnnl-conv.c), or keep activations in bf16 between ops
 * (instance norm, residual adds, upsampling and the output stay fp32).
 */
#include <immintrin.h>
#include <string.h>

#include "nf-cpu-fast-private.h"
#include "nf-tensor.h"

gboolean
nf_cpu_has_native_bf16 (void)
{
  if (g_getenv ("NF_CPU_NO_BF16"))
    return FALSE;
  dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa ();
  return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
}

const char *
nf_cpu_isa_name (void)
{
  switch (dnnl_get_effective_cpu_isa ()) {
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx512_mic:
    case dnnl_cpu_isa_avx512_mic_4ops:
      return "avx512_mic";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

/* AVX-512 BF16 here, unless NF_CPU_BF16_PORTABLE=1 (read at every call, so a test can
 * compare both paths in one process). */
static gboolean
use_avx512_bf16 (void)
{
  static int have = -1;
  if (have < 0) {
    __builtin_cpu_init ();
    have = __builtin_cpu_supports ("avx512bf16") && __builtin_cpu_supports ("avx512vl");
  }
  return have && !g_getenv ("NF_CPU_BF16_PORTABLE");
}

/* 16 lanes: 8 from a and 8 from b (b NULL: zeros) -> 16 bf16 at dst. */
__attribute__((target ("avx512f,avx512bf16,avx512vl")))
static void
pack16_avx512 (const float *a, const float *b, guint16 *dst, int pixels, size_t a_step)
{
  for (int x = 0; x < pixels; x++) {
    __m256 lo = _mm256_loadu_ps (a + (size_t) x * a_step);
    __m256 hi = b ? _mm256_loadu_ps (b + (size_t) x * a_step) : _mm256_setzero_ps ();
    __m128bh l = _mm256_cvtneps_pbh (lo), h = _mm256_cvtneps_pbh (hi);
    _mm_storeu_si128 ((__m128i *) (dst + (size_t) x * 16), (__m128i) l);
    _mm_storeu_si128 ((__m128i *) (dst + (size_t) x * 16 + 8), (__m128i) h);
  }
}

static void
pack16_portable (const float *a, const float *b, guint16 *dst, int pixels, size_t a_step)
{
  for (int x = 0; x < pixels; x++) {
    for (int l = 0; l < 8; l++) {
      dst[(size_t) x * 16 + l] = nf_float_to_bf16 (a[(size_t) x * a_step + l]);
      dst[(size_t) x * 16 + 8 + l] = b ? nf_float_to_bf16 (b[(size_t) x * a_step + l]) : 0;
    }
  }
}

void
nf_cpu_bf16_pack (const float *src, int n, int c, int h, int w, guint16 *dst)
{
  int p8 = (c + 7) / 8, p16 = (c + 15) / 16;
  size_t plane8 = (size_t) h * w * 8, plane16 = (size_t) h * w * 16;
  gboolean fast = use_avx512_bf16 ();
#pragma omp parallel for collapse(3) schedule(static) if (nf_cpu_par ((size_t) n * p8 * plane8))
  for (int i = 0; i < n; i++)
    for (int b = 0; b < p16; b++)
      for (int y = 0; y < h; y++) {
        const float *lo = src + ((size_t) i * p8 + 2 * b) * plane8 + (size_t) y * w * 8;
        const float *hi = 2 * b + 1 < p8 ? lo + plane8 : NULL;
        guint16 *d = dst + ((size_t) i * p16 + b) * plane16 + (size_t) y * w * 16;
        if (fast)
          pack16_avx512 (lo, hi, d, w, 8);
        else
          pack16_portable (lo, hi, d, w, 8);
      }
}

void
nf_cpu_bf16_unpack (const float *src, int n, int c, int h, int w, float *dst)
{
  int p8 = (c + 7) / 8, p16 = (c + 15) / 16;
  size_t plane8 = (size_t) h * w * 8, plane16 = (size_t) h * w * 16;
#pragma omp parallel for collapse(3) schedule(static) if (nf_cpu_par ((size_t) n * p8 * plane8))
  for (int i = 0; i < n; i++)
    for (int b = 0; b < p8; b++)
      for (int y = 0; y < h; y++) {
        const float *s = src + ((size_t) i * p16 + b / 2) * plane16 + (size_t) y * w * 16
            + (b & 1) * 8;
        float *d = dst + ((size_t) i * p8 + b) * plane8 + (size_t) y * w * 8;
        for (int x = 0; x < w; x++)
          memcpy (d + (size_t) x * 8, s + (size_t) x * 16, 8 * sizeof (float));
      }
}
