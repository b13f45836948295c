/* nf-cpu-bf16.c — the layout and precision conversions around the bf16 convolutions of
 * the "cpu-bf16" backend, and whether this CPU computes bf16 natively.
 *
 * What it does: the rest of the fast backend keeps fp32 nChw8c, but oneDNN's native bf16
 * convolutions want another layout: on CPUs with AMX (Sapphire Rapids and later) only
 * channels-last (nhwc) bf16 gets the AMX kernels (brgconv:avx512_core_amx_bf16, 7-9x
 * the avx512_core_bf16 kernel there for the networks' 16-128-channel 3x3 convolutions),
 * elsewhere oneDNN's 16-lane blocks (nChw16c; on avx512_core_bf16 alone the two layouts
 * measured the same). nf_cpu_bf16_channels_last says which. A bf16 convolution reads its
 * padded fp32 source through nf_cpu_bf16_pack (fp32 nChw8c -> bf16 nChw16c or nhwc,
 * round to nearest even) and its fp32 output (same layout) goes back through
 * nf_cpu_bf16_unpack (-> fp32 nChw8c). Both are plain memory passes, OpenMP over rows,
 * with AVX-512 BF16 instructions where the CPU has them (the backend only exists there)
 * and a portable loop otherwise (tests compare the two).
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

gboolean
nf_cpu_bf16_channels_last (void)
{
  const char *env = g_getenv ("NF_CPU_BF16_LAYOUT");
  if (env && strcmp (env, "blocked") == 0)
    return FALSE;
  if (env && strcmp (env, "channels-last") == 0)
    return TRUE;
  return dnnl_get_effective_cpu_isa () == dnnl_cpu_isa_avx512_core_amx;
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
    have = __builtin_cpu_supports ("avx512bf16") && __builtin_cpu_supports ("avx512vl")
        && __builtin_cpu_supports ("avx512bw");
  }
  return have && !g_getenv ("NF_CPU_BF16_PORTABLE");
}

/* The first `lanes` (1..8) of each 8-float pixel of s -> bf16 at d, d_step apart. */
__attribute__((target ("avx512f,avx512bf16,avx512vl,avx512bw")))
static void
pack8_avx512 (const float *s, guint16 *d, int pixels, size_t d_step, int lanes)
{
  __mmask8 m = (__mmask8) ((1u << lanes) - 1);
  for (int x = 0; x < pixels; x++) {
    __m128i b = (__m128i) _mm256_cvtneps_pbh (_mm256_loadu_ps (s + (size_t) x * 8));
    if (lanes == 8)
      _mm_storeu_si128 ((__m128i *) (d + (size_t) x * d_step), b);
    else
      _mm_mask_storeu_epi16 (d + (size_t) x * d_step, m, b);
  }
}

static void
pack8_portable (const float *s, guint16 *d, int pixels, size_t d_step, int lanes)
{
  for (int x = 0; x < pixels; x++)
    for (int l = 0; l < lanes; l++)
      d[(size_t) x * d_step + l] = nf_float_to_bf16 (s[(size_t) x * 8 + l]);
}

void
nf_cpu_bf16_pack (const float *src, int n, int c, int h, int w, gboolean channels_last,
    guint16 *dst)
{
  int p8 = (c + 7) / 8, p16 = (c + 15) / 16;
  size_t plane8 = (size_t) h * w * 8, plane16 = (size_t) h * w * 16;
  gboolean fast = use_avx512_bf16 ();
  if (channels_last) {          /* one thread per row: its pixels' channels are adjacent */
#pragma omp parallel for collapse(2) schedule(static) if (nf_cpu_par ((size_t) n * p8 * plane8))
    for (int i = 0; i < n; i++)
      for (int y = 0; y < h; y++)
        for (int b = 0; b < p8; b++) {
          const float *s = src + ((size_t) i * p8 + b) * plane8 + (size_t) y * w * 8;
          guint16 *d = dst + ((size_t) i * h + y) * w * c + (size_t) b * 8;
          int lanes = MIN (8, c - 8 * b);
          if (fast)
            pack8_avx512 (s, d, w, c, lanes);
          else
            pack8_portable (s, d, w, c, lanes);
        }
    return;
  }
#pragma omp parallel for collapse(3) schedule(static) if (nf_cpu_par ((size_t) n * p8 * plane8))
  for (int i = 0; i < n; i++)
    for (int b = 0; b < p16; b++)
      for (int y = 0; y < h; y++) {
        guint16 *d = dst + ((size_t) i * p16 + b) * plane16 + (size_t) y * w * 16;
        for (int half = 0; half < 2; half++) {  /* one thread writes both: no line sharing */
          int b8 = 2 * b + half;
          if (b8 >= p8) {       /* the upper half past c: zeros */
            for (int x = 0; x < w; x++)
              memset (d + (size_t) x * 16 + 8, 0, 8 * sizeof (guint16));
            continue;
          }
          const float *s = src + ((size_t) i * p8 + b8) * plane8 + (size_t) y * w * 8;
          if (fast)
            pack8_avx512 (s, d + half * 8, w, 16, 8);
          else
            pack8_portable (s, d + half * 8, w, 16, 8);
        }
      }
}

void
nf_cpu_bf16_unpack (const float *src, int n, int c, int h, int w, gboolean channels_last,
    float *dst)
{
  int p8 = (c + 7) / 8, p16 = (c + 15) / 16;
  size_t plane8 = (size_t) h * w * 8, plane16 = (size_t) h * w * 16;
#pragma omp parallel for collapse(3) schedule(static) if (nf_cpu_par ((size_t) n * p8 * plane8))
  for (int i = 0; i < n; i++)
    for (int b = 0; b < p8; b++)
      for (int y = 0; y < h; y++) {
        float *d = dst + ((size_t) i * p8 + b) * plane8 + (size_t) y * w * 8;
        if (channels_last) {
          const float *s = src + ((size_t) i * h + y) * w * c + (size_t) b * 8;
          int lanes = MIN (8, c - 8 * b);
          for (int x = 0; x < w; x++) {
            memcpy (d + (size_t) x * 8, s + (size_t) x * c, lanes * sizeof (float));
            if (lanes < 8)      /* nChw8c keeps the lanes past c zero */
              memset (d + (size_t) x * 8 + lanes, 0, (8 - lanes) * sizeof (float));
          }
          continue;
        }
        const float *s = src + ((size_t) i * p16 + b / 2) * plane16 + (size_t) y * w * 16
            + (b & 1) * 8;
        for (int x = 0; x < w; x++)
          memcpy (d + (size_t) x * 8, s + (size_t) x * 16, 8 * sizeof (float));
      }
}
