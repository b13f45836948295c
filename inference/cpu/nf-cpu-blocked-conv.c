/* nf-cpu-blocked-conv.c — direct convolution on nChw8c for conv_transpose2d.
 *
 * What it does: conv_transpose2d (stride s) as s*s ordinary stride-1 convolutions, one
 * per output phase (oy mod s, ox mod s), each with the taps of the kernel that reach
 * that phase, written straight into the interleaved output (and with the halo the
 * consumer asked for). oneDNN 2.6's AVX2 deconvolution computes the strided case at
 * about 5 GFLOP/s; this runs at the speed of a direct convolution.
 * The kernel (AVX2 + FMA) keeps 2 output blocks x 6 pixels (or 1 x 12) in 12
 * registers, broadcasts each input value once for 16 output channels, and streams the
 * packed weights [block pair][in block][ky][kx][in lane][16 out lanes]. Bias and ReLU
 * are applied on the way out; padded output lanes get zeros (their weights and bias are
 * zero). A portable C path serves CPUs without AVX2.
 * What it does not: layouts with <= 4 channels (nf-dnnl-conv.c keeps those), groups,
 * dilation.
 */
#include <immintrin.h>
#include <string.h>

#include "nf-cpu-fast-private.h"

/* One stride-1 (or stride-s) convolution pass over a padded nChw8c source. */
typedef struct {
  int kh, kw, stride;           /* taps and source step per output pixel */
  int iy_off, ix_off;           /* padded-source position of output (0, 0)'s first tap */
  int oy0, ox0, step;           /* output (q) lands at (oy0 + step*qy, ox0 + step*qx) */
  int qh, qw;                   /* outputs of this pass */
  float *w;                     /* packed weights (see top), 64-byte aligned */
} Pass;

typedef struct {
  NfCpuStateKind kind;          /* NF_CPU_STATE_BLOCKED */
  int n_pass;
  Pass pass[16];                /* s*s phases (s <= 4) */
  float *bias;                  /* (cout blocks * 8), zero-padded */
  int planes, lanes;            /* source: blocks x 8 lanes (nChw8c), or channels x 1 */
  int cb_out, halo;             /* output blocks; the halo the source needs */
  NfPadMode mode;               /* how the halo is filled */
  gboolean relu;
} BlockedConv;

/* Floats of packed weights for one pass: every pair of output blocks holds
 * planes * kh * kw * lanes * 16 floats (a lone last block: * 8). */
static size_t
packed_size (const BlockedConv *b, int kh, int kw)
{
  return (size_t) b->planes * kh * kw * b->lanes * 8 * b->cb_out;
}

/* Packs the weights of one pass. conv_transpose2d (cin, cout, k, k): tap t (y) of phase
 * c' uses kernel row ky = c' + s * (kh - 1 - t). conv2d (cout, cin, k, k): tap t is
 * row t (deconv FALSE). */
static void
pack_pass (const BlockedConv *b, Pass *p, const NfOp *op, gboolean deconv, int cy, int cx)
{
  size_t off = 0;
  int k = op->k, s = op->stride;
  for (int ob = 0; ob < b->cb_out; ob += 2) {
    int width = ob + 1 < b->cb_out ? 16 : 8;
    for (int pl = 0; pl < b->planes; pl++)
      for (int ty = 0; ty < p->kh; ty++)
        for (int tx = 0; tx < p->kw; tx++)
          for (int l = 0; l < b->lanes; l++)
            for (int j = 0; j < width; j++) {
              int ci = pl * b->lanes + l, co = ob * 8 + j;
              float v = 0.0f;
              if (ci < op->cin && co < op->cout && deconv) {
                int ky = cy + s * (p->kh - 1 - ty), kx = cx + s * (p->kw - 1 - tx);
                v = op->weight[(((size_t) ci * op->cout + co) * k + ky) * k + kx];
              } else if (ci < op->cin && co < op->cout) {
                v = op->weight[(((size_t) co * op->cin + ci) * k + ty) * k + tx];
              }
              p->w[off++] = v;
            }
  }
}

static BlockedConv *
blocked_new (const NfOp *op, NfShape xs, NfShape ys)
{
  BlockedConv *b = g_new0 (BlockedConv, 1);
  b->kind = NF_CPU_STATE_BLOCKED;
  b->planes = nf_cpu_planes (xs);
  b->lanes = nf_cpu_vec (xs);
  b->cb_out = (ys.c + 7) / 8;
  b->relu = op->fuse_relu;
  b->mode = NF_PAD_ZERO;
  b->bias = nf_alloc_floats ((size_t) b->cb_out * 8);
  for (int c = 0; b->bias && c < op->cout && op->bias; c++)
    b->bias[c] = op->bias[c];
  return b;
}

static void
blocked_free (BlockedConv *b)
{
  if (!b)
    return;
  for (int i = 0; i < b->n_pass; i++)
    nf_free (b->pass[i].w);
  nf_free (b->bias);
  g_free (b);
}

gboolean
nf_blocked_conv_supported (const NfOp *op)
{
  /* conv2d: only where it beat oneDNN (measured on Zen 3, one thread: 3->16 9x9 at
   * 640x360 86 vs 69 GFLOP/s; from 32 output channels, or 3x3, oneDNN is as fast or
   * faster). */
  if (op->type == NF_OP_CONV2D)
    return op->cin <= 4 && op->cout > 4 && op->cout <= 16 && op->k >= 5;
  return op->type == NF_OP_CONV_TRANSPOSE2D && op->cout > 4
      && op->stride >= 1 && op->stride <= 4 && op->padding >= 0
      && op->output_padding >= 0 && op->output_padding < op->stride + 4
      && op->k >= 1 && op->k <= 16;
}

gboolean
nf_blocked_deconv_prepare (NfCpuBackend *be, NfOpCall *call, GError **error)
{
  const NfOp *op = call->op;
  NfShape xs = call->in[0], ys = call->out;
  int s = op->stride, k = op->k, p = op->padding;
  BlockedConv *b = blocked_new (op, xs, ys);
  if (!b->bias)
    goto oom;

  /* Phase c (per axis): oy = s*q + c. With c' = (c + p) mod s and carry = (c + p) div s,
   * the taps are ky = c' + s*j (j < nj) reading iy = q + carry - j, i.e. a stride-1
   * correlation with nj taps starting at iy = q - (nj - 1 - carry). */
  int halo = 0;                 /* zero halo needed before/after the input, per axis */
  for (int axis = 0; axis < 2; axis++) {
    int in_n = axis ? xs.w : xs.h, out_n = axis ? ys.w : ys.h;
    for (int c = 0; c < s && c < out_n; c++) {
      int cprime = (c + p) % s, carry = (c + p) / s;
      int nj = cprime < k ? (k - cprime + s - 1) / s : 0;
      int nq = (out_n - c + s - 1) / s;
      if (nj == 0)
        continue;
      halo = MAX (halo, nj - 1 - carry);                /* before: iy = q - (nj-1-carry) */
      halo = MAX (halo, (nq - 1) + carry - (in_n - 1)); /* after: iy = q + carry */
    }
  }
  b->halo = halo;

  for (int cy = 0; cy < s; cy++)
    for (int cx = 0; cx < s; cx++) {
      int cpy = (cy + p) % s, cay = (cy + p) / s, cpx = (cx + p) % s, cax = (cx + p) / s;
      int njy = cpy < k ? (k - cpy + s - 1) / s : 0;
      int njx = cpx < k ? (k - cpx + s - 1) / s : 0;
      int qh = ys.h > cy ? (ys.h - cy + s - 1) / s : 0;
      int qw = ys.w > cx ? (ys.w - cx + s - 1) / s : 0;
      if (qh == 0 || qw == 0)
        continue;
      Pass *ps = &b->pass[b->n_pass++];
      ps->kh = njy;             /* 0 when no tap reaches this phase: bias alone */
      ps->kw = njx;
      ps->stride = 1;
      ps->iy_off = b->halo - (njy - 1 - cay);
      ps->ix_off = b->halo - (njx - 1 - cax);
      ps->oy0 = cy;
      ps->ox0 = cx;
      ps->step = s;
      ps->qh = qh;
      ps->qw = qw;
      ps->w = nf_alloc_floats (packed_size (b, ps->kh, ps->kw));
      if (!ps->w)
        goto oom;
      pack_pass (b, ps, op, TRUE, cpy, cpx);
    }
  call->state = b;
  return TRUE;

oom:
  g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "cpu: out of memory for weights of %s",
      op->name ? op->name : "conv_transpose2d");
  blocked_free (b);
  return FALSE;
}

gboolean
nf_blocked_conv2d_prepare (NfCpuBackend *be, NfOpCall *call, GError **error)
{
  const NfOp *op = call->op;
  NfShape xs = call->in[0], ys = call->out;
  BlockedConv *b = blocked_new (op, xs, ys);
  b->halo = op->padding;
  b->mode = op->pad_mode;
  Pass *ps = &b->pass[b->n_pass++];
  *ps = (Pass) { .kh = op->k, .kw = op->k, .stride = op->stride, .step = 1,
    .qh = ys.h, .qw = ys.w
  };
  ps->w = nf_alloc_floats (packed_size (b, op->k, op->k));
  if (!b->bias || !ps->w) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "cpu: out of memory for weights of %s",
        op->name ? op->name : "conv2d");
    blocked_free (b);
    return FALSE;
  }
  pack_pass (b, ps, op, FALSE, 0, 0);
  call->state = b;
  return TRUE;
}

void
nf_blocked_conv_release (NfCpuBackend *be, NfOpCall *call)
{
  blocked_free (call->state);
}

/* ---- kernels ------------------------------------------------------------------------- */

typedef struct {
  const float *src;             /* padded source of image n, plane 0, row 0, x 0 */
  size_t srow, splane;          /* floats */
  float *dst;                   /* output of image n, block 0, interior (0, 0) */
  size_t drow, dplane;          /* floats */
  int planes, cb_out;
  const float *bias;
  gboolean relu;
} Ctx;

/* T output pixels of one row of one pass for blocks ob (and ob+1 when OB == 2), over
 * source planes pl0..pl1-1 of L lanes each: starts from zero (first) or from the
 * partial sums in the output, and adds bias and ReLU after the last chunk. w: this
 * pair's weights at plane pl0. */
__attribute__((target ("avx2,fma"), always_inline))
static inline void
tile_avx2 (const Ctx *c, const Pass *p, const float *w, int ob, int qy, int qx, int pl0,
    int pl1, gboolean first, gboolean last, const int OB, const int T, const int L)
{
  __m256 acc[2][12];
  const int oy = p->oy0 + p->step * qy;
  float *d0 = c->dst + ob * c->dplane + (size_t) oy * c->drow
      + (size_t) (p->ox0 + p->step * qx) * 8;
  const size_t dpix = (size_t) p->step * 8;
  for (int o = 0; o < OB; o++)
    for (int t = 0; t < T; t++)
      acc[o][t] = first ? _mm256_setzero_ps ()
          : _mm256_loadu_ps (d0 + o * c->dplane + t * dpix);
  const int s = p->stride;
  const float *sp = c->src + (size_t) (p->iy_off + qy * s) * c->srow
      + (size_t) (p->ix_off + qx * s) * L;
  for (int pl = pl0; pl < pl1; pl++) {
    const float *sb = sp + pl * c->splane;
    for (int ky = 0; ky < p->kh; ky++) {
      const float *sr = sb + ky * c->srow;
      for (int kx = 0; kx < p->kw; kx++) {
        const float *sx = sr + kx * L;
#pragma GCC unroll 8
        for (int l = 0; l < L; l++) {
          __m256 w0 = _mm256_load_ps (w + l * 8 * OB);
          __m256 w1 = OB == 2 ? _mm256_load_ps (w + l * 8 * OB + 8) : w0;
          for (int t = 0; t < T; t++) {
            __m256 v = _mm256_broadcast_ss (sx + (size_t) t * s * L + l);
            acc[0][t] = _mm256_fmadd_ps (v, w0, acc[0][t]);
            if (OB == 2)
              acc[1][t] = _mm256_fmadd_ps (v, w1, acc[1][t]);
          }
        }
        w += L * 8 * OB;
      }
    }
  }
  for (int o = 0; o < OB; o++) {
    __m256 b = _mm256_load_ps (c->bias + (ob + o) * 8);
    for (int t = 0; t < T; t++) {
      __m256 v = acc[o][t];
      if (last) {
        v = _mm256_add_ps (v, b);
        if (c->relu)
          v = _mm256_max_ps (_mm256_setzero_ps (), v);
      }
      _mm256_storeu_ps (d0 + o * c->dplane + t * dpix, v);
    }
  }
}

/* One output row of one pass for one block pair: source planes in chunks whose weights
 * stay in L1 while the row is swept (partial sums go through the output). */
#define ROW_AVX2(OB, T, L) \
  __attribute__((target ("avx2,fma"))) \
  static void \
  row_avx2_##OB##_##L (const Ctx *c, const Pass *p, const float *w, int ob, int qy) \
  { \
    size_t per_pl = (size_t) p->kh * p->kw * L * 8 * OB; \
    int chunk = per_pl ? MAX (1, (int) (16384 / (per_pl * sizeof (float)))) : c->planes; \
    for (int pl0 = 0; pl0 < c->planes; pl0 += chunk) { \
      int pl1 = MIN (pl0 + chunk, c->planes); \
      gboolean first = pl0 == 0, last = pl1 == c->planes; \
      const float *wc = w + pl0 * per_pl; \
      int qx = 0; \
      for (; qx + T <= p->qw; qx += T) \
        tile_avx2 (c, p, wc, ob, qy, qx, pl0, pl1, first, last, OB, T, L); \
      for (; qx < p->qw; qx++) \
        tile_avx2 (c, p, wc, ob, qy, qx, pl0, pl1, first, last, OB, 1, L); \
    } \
  }

ROW_AVX2 (2, 6, 8)
ROW_AVX2 (1, 12, 8)
ROW_AVX2 (2, 6, 1)
ROW_AVX2 (1, 12, 1)

/* Portable: one output pixel, one block pair at a time. */
static void
row_generic (const Ctx *c, const Pass *p, const float *w0, int ob, int qy, int OB, int L)
{
  const int s = p->stride, oy = p->oy0 + p->step * qy;
  for (int qx = 0; qx < p->qw; qx++) {
    float acc[16] = { 0 };
    const float *w = w0;
    const float *sp = c->src + (size_t) (p->iy_off + qy * s) * c->srow
        + (size_t) (p->ix_off + qx * s) * L;
    for (int pl = 0; pl < c->planes; pl++)
      for (int ky = 0; ky < p->kh; ky++)
        for (int kx = 0; kx < p->kw; kx++) {
          const float *sx = sp + pl * c->splane + ky * c->srow + kx * L;
          for (int l = 0; l < L; l++) {
            float v = sx[l];
            for (int j = 0; j < 8 * OB; j++)
              acc[j] += v * w[j];
            w += 8 * OB;
          }
        }
    for (int o = 0; o < OB; o++) {
      float *d = c->dst + (ob + o) * c->dplane + (size_t) oy * c->drow
          + (size_t) (p->ox0 + p->step * qx) * 8;
      for (int j = 0; j < 8; j++) {
        float v = acc[o * 8 + j] + c->bias[(ob + o) * 8 + j];
        d[j] = c->relu && v < 0.0f ? 0.0f : v;
      }
    }
  }
}

gboolean
nf_blocked_conv_forward (NfCpuBackend *be, NfOpCall *call, NfCpuBuf *x, NfCpuBuf *y,
    GError **error)
{
  const BlockedConv *b = call->state;
  NfShape xs = call->in[0];
  float *src = nf_cpu_padded_input (be, x, b->halo, b->mode, error);
  if (!src)
    return FALSE;
  NfShape ps = { xs.n, xs.c, xs.h + 2 * b->halo, xs.w + 2 * b->halo };
  NfCpuView sv = nf_cpu_view_of (src, ps, 0);
  NfCpuView yv = nf_cpu_begin_write (be, y, call);
  int n_pairs = (b->cb_out + 1) / 2, L = b->lanes;
  gboolean avx2 = be->avx2;
  /* One parallel region over (phase, image, row, block pair). */
  int first_item[G_N_ELEMENTS (b->pass) + 1];
  first_item[0] = 0;
  for (int i = 0; i < b->n_pass; i++)
    first_item[i + 1] = first_item[i] + xs.n * b->pass[i].qh * n_pairs;
  int items = first_item[b->n_pass];
  size_t work = nf_shape_numel (call->out) * b->planes * L;
#pragma omp parallel for schedule(dynamic, 2) if (nf_cpu_par (work))
  for (int it = 0; it < items; it++) {
    int i = 0;
    while (it >= first_item[i + 1])
      i++;
    const Pass *p = &b->pass[i];
    int j = it - first_item[i];
    int pr = j % n_pairs, r = j / n_pairs;
    int n = r / p->qh, qy = r % p->qh;
    Ctx c = {
      .src = nf_cpu_row (&sv, n, 0, 0), .srow = sv.row, .splane = sv.plane,
      .dst = nf_cpu_row (&yv, n, 0, 0), .drow = yv.row, .dplane = yv.plane,
      .planes = b->planes, .cb_out = b->cb_out, .bias = b->bias, .relu = b->relu,
    };
    int ob = pr * 2, OB = ob + 1 < b->cb_out ? 2 : 1;
    const float *w = p->w + pr * (size_t) b->planes * p->kh * p->kw * L * 16;
    if (!avx2)
      row_generic (&c, p, w, ob, qy, OB, L);
    else if (L == 8 && OB == 2)
      row_avx2_2_8 (&c, p, w, ob, qy);
    else if (L == 8)
      row_avx2_1_8 (&c, p, w, ob, qy);
    else if (OB == 2)
      row_avx2_2_1 (&c, p, w, ob, qy);
    else
      row_avx2_1_1 (&c, p, w, ob, qy);
  }
  return TRUE;
}
