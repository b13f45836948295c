/* nf-cpu-direct-conv.c — direct conv2d for few output channels (cout <= 4).
 *
 * What it does: the last convolution of every network here (9x9, 16/32/64 -> 3
 * channels), where oneDNN's AVX2 kernels block over 8 output channels and waste most
 * of the machine, or fall back to a reference loop. The source is the padded input
 * (halo of exactly the padding, nf_cpu_padded_input), in nChw8c: the kernel
 * vectorises over the 8 input channels of a block, keeps all cout x T neighbouring
 * output pixels in 16 AVX2 registers, loads each weight vector once per (block, ky, kx)
 * for T pixels and each input vector once for all cout, and reduces the lanes at the
 * end. Bias and ReLU are applied on the way out; the output (NCHW, c <= 4) is written
 * with whatever halo its consumer asked for.
 * A portable C path (same loops, compiled for the baseline x86-64) serves CPUs without
 * AVX2/FMA and sources with <= 4 channels (NCHW).
 * What it does not: more than 4 output channels (nf-dnnl-conv.c), dilation, groups.
 */
#include <immintrin.h>
#include <string.h>

#include "nf-cpu-fast-private.h"

typedef struct {
  NfCpuStateKind kind;          /* NF_CPU_STATE_DIRECT */
  float *w;                     /* (cout, planes, k, k, vec): vec lanes = input channels */
  float bias[NF_CPU_DIRECT_MAX_COUT];
  int cout, planes, vec, k, stride, pad;
  NfPadMode mode;
  gboolean relu;
  guint32 live[NF_CPU_DIRECT_MAX_COUT]; /* planar sources: bit p set when output co has a
                                         * non-zero weight on plane p (a diagonal filter
                                         * such as the style networks' input blur skips
                                         * the rest) */
} DirectConv;

gboolean
nf_direct_conv_prepare (NfCpuBackend *be, NfOpCall *call, GError **error)
{
  const NfOp *op = call->op;
  NfShape xs = call->in[0];
  if (op->cout > NF_CPU_DIRECT_MAX_COUT || op->cin != xs.c) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "cpu: direct convolution %s: unsupported channels %d -> %d",
        op->name ? op->name : "", op->cin, op->cout);
    return FALSE;
  }
  DirectConv *d = g_new0 (DirectConv, 1);
  d->kind = NF_CPU_STATE_DIRECT;
  d->cout = op->cout;
  d->vec = nf_cpu_vec (xs);
  d->planes = nf_cpu_planes (xs);
  d->k = op->k;
  d->stride = op->stride;
  d->pad = op->padding;
  d->mode = op->pad_mode;
  d->relu = op->fuse_relu;
  int k = op->k;
  size_t per_co = (size_t) d->planes * k * k * d->vec;
  d->w = nf_alloc_floats (per_co * d->cout);
  if (!d->w) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "cpu: out of memory for weights of %s",
        op->name ? op->name : "conv2d");
    g_free (d);
    return FALSE;
  }
  for (int co = 0; co < d->cout; co++) {
    d->bias[co] = op->bias ? op->bias[co] : 0.0f;
    for (int ci = 0; ci < op->cin; ci++) {
      int p = d->vec == 8 ? ci / 8 : ci, l = d->vec == 8 ? ci % 8 : 0;
      for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++)
          d->w[co * per_co + (((size_t) p * k + ky) * k + kx) * d->vec + l] =
              op->weight[(((size_t) co * op->cin + ci) * k + ky) * k + kx];
    }
    for (int p = 0; p < d->planes && p < 32; p++)
      for (size_t i = 0; i < (size_t) k * k * d->vec; i++)
        if (d->w[co * per_co + (size_t) p * k * k * d->vec + i] != 0.0f)
          d->live[co] |= 1u << p;
    if (d->planes > 32)
      d->live[co] = ~0u;
  }
  call->state = d;
  return TRUE;
}

void
nf_direct_conv_release (NfCpuBackend *be, NfOpCall *call)
{
  DirectConv *d = call->state;
  if (!d)
    return;
  nf_free (d->w);
  g_free (d);
}

/* ---- AVX2 kernel: nChw8c source ----------------------------------------------------- */

__attribute__((target ("avx2,fma")))
static inline float
hsum256 (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  s = _mm_add_ps (s, _mm_movehl_ps (s, s));
  s = _mm_add_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

/* One output row, T pixels at a time. src: the padded source at (n, block 0, row
 * oy*stride, x 0); out[co]: output row of channel co. COUT and T are constants after
 * inlining, so acc[][] lives in registers (COUT * T + COUT + 1 <= 16). */
__attribute__((target ("avx2,fma"), always_inline))
static inline void
direct_row_avx2_body (const DirectConv *d, const float *src, size_t row, size_t plane,
    float *const *out, int x0, int x1, const int COUT, const int T)
{
  const int k = d->k, s = d->stride, planes = d->planes;
  const size_t wco = (size_t) planes * k * k * 8;
  for (int ox = x0; ox + T <= x1; ox += T) {
    __m256 acc[4][8];
    for (int co = 0; co < COUT; co++)
      for (int t = 0; t < T; t++)
        acc[co][t] = _mm256_setzero_ps ();
    for (int p = 0; p < planes; p++) {
      const float *pb = src + p * plane + (size_t) ox * s * 8;
      const float *wb = d->w + (size_t) p * k * k * 8;
      for (int ky = 0; ky < k; ky++) {
        const float *pr = pb + ky * row;
        const float *wr = wb + (size_t) ky * k * 8;
        for (int kx = 0; kx < k; kx++) {
          __m256 wv[4];
          for (int co = 0; co < COUT; co++)
            wv[co] = _mm256_load_ps (wr + co * wco + kx * 8);
          for (int t = 0; t < T; t++) {
            __m256 v = _mm256_load_ps (pr + (size_t) (t * s + kx) * 8);
            for (int co = 0; co < COUT; co++)
              acc[co][t] = _mm256_fmadd_ps (v, wv[co], acc[co][t]);
          }
        }
      }
    }
    for (int co = 0; co < COUT; co++)
      for (int t = 0; t < T; t++) {
        float v = hsum256 (acc[co][t]) + d->bias[co];
        out[co][ox + t] = d->relu && v < 0.0f ? 0.0f : v;
      }
  }
}

#define DIRECT_ROW(COUT, T) \
  __attribute__((target ("avx2,fma"))) \
  static void \
  direct_row_avx2_##COUT (const DirectConv *d, const float *src, size_t row, size_t plane, \
      float *const *out, int ow) \
  { \
    int main_end = ow / T * T; \
    direct_row_avx2_body (d, src, row, plane, out, 0, main_end, COUT, T); \
    direct_row_avx2_body (d, src, row, plane, out, main_end, ow, COUT, 1); \
  }

DIRECT_ROW (1, 8)
DIRECT_ROW (2, 6)
DIRECT_ROW (3, 4)
DIRECT_ROW (4, 3)

typedef void (*DirectRowFn) (const DirectConv *d, const float *src, size_t row, size_t plane,
    float *const *out, int ow);

/* ---- portable path: any source layout ------------------------------------------------ */

static void
direct_row_generic (const DirectConv *d, const float *src, size_t row, size_t plane,
    float *const *out, int ow)
{
  const int k = d->k, s = d->stride, vec = d->vec;
  const size_t wco = (size_t) d->planes * k * k * vec;
  if (s == 1 && vec == 1) {
    /* a planar source at stride 1 (RGB -> luma, the input blur): row updates the
     * compiler vectorises over x, planes without weights for an output skipped */
    for (int co = 0; co < d->cout; co++) {
      float *o = out[co];
      for (int ox = 0; ox < ow; ox++)
        o[ox] = d->bias[co];
      for (int p = 0; p < d->planes; p++) {
        if (p < 32 && !(d->live[co] & (1u << p)))
          continue;
        for (int ky = 0; ky < k; ky++) {
          const float *pr = src + p * plane + ky * row;
          const float *wr = d->w + co * wco + ((size_t) p * k + ky) * k;
          for (int kx = 0; kx < k; kx++) {
            const float wv = wr[kx], *px = pr + kx;
            for (int ox = 0; ox < ow; ox++)
              o[ox] += wv * px[ox];
          }
        }
      }
      if (d->relu)
        for (int ox = 0; ox < ow; ox++)
          o[ox] = o[ox] < 0.0f ? 0.0f : o[ox];
    }
    return;
  }
  for (int ox = 0; ox < ow; ox++)
    for (int co = 0; co < d->cout; co++) {
      float acc[8] = { 0 };
      for (int p = 0; p < d->planes; p++)
        for (int ky = 0; ky < k; ky++) {
          const float *pr = src + p * plane + ky * row + (size_t) ox * s * vec;
          const float *wr = d->w + co * wco + ((size_t) p * k + ky) * k * vec;
          if (vec == 8) {
            for (int kx = 0; kx < k; kx++)
              for (int l = 0; l < 8; l++)
                acc[l] += pr[kx * 8 + l] * wr[kx * 8 + l];
          } else {
            for (int kx = 0; kx < k; kx++)
              acc[kx & 7] += pr[kx] * wr[kx];
          }
        }
      float v = d->bias[co];
      for (int l = 0; l < 8; l++)
        v += acc[l];
      out[co][ox] = d->relu && v < 0.0f ? 0.0f : v;
    }
}

gboolean
nf_direct_conv_forward (NfCpuBackend *be, NfOpCall *call, NfCpuBuf *x, NfCpuBuf *y,
    GError **error)
{
  const DirectConv *d = call->state;
  NfShape xs = call->in[0], ys = call->out;
  float *src = nf_cpu_padded_input (be, x, d->pad, d->mode, error);
  if (!src)
    return FALSE;
  NfShape ps = { xs.n, xs.c, xs.h + 2 * d->pad, xs.w + 2 * d->pad };
  NfCpuView sv = nf_cpu_view_of (src, ps, 0);
  NfCpuView yv = nf_cpu_begin_write (be, y, call);
  DirectRowFn fn = direct_row_generic;
  if (be->avx2 && d->vec == 8) {
    static const DirectRowFn fns[4] = {
      direct_row_avx2_1, direct_row_avx2_2, direct_row_avx2_3, direct_row_avx2_4
    };
    fn = fns[d->cout - 1];
  }
  int rows = ys.n * ys.h;
  size_t work = nf_shape_numel (ys) * xs.c * d->k * d->k;
#pragma omp parallel for schedule(dynamic, 4) if (nf_cpu_par (work))
  for (int r = 0; r < rows; r++) {
    int n = r / ys.h, oy = r % ys.h;
    float *out[NF_CPU_DIRECT_MAX_COUT];
    for (int co = 0; co < d->cout; co++)
      out[co] = nf_cpu_row (&yv, n, co, oy);
    fn (d, nf_cpu_row (&sv, n, 0, oy * d->stride), sv.row, sv.plane, out, ys.w);
  }
  return TRUE;
}
