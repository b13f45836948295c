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
  int cb_in, cb_out, halo;      /* source halo (zero-filled) */
  gboolean relu;
} BlockedConv;

/* Floats of packed weights for one pass: every pair of output blocks holds
 * cb_in * kh * kw * 8 * 16 floats (a lone last block: * 8). */
static size_t
packed_size (int cb_in, int cb_out, int kh, int kw)
{
  return (size_t) cb_in * kh * kw * 8 * 8 * cb_out;
}

/* w_of (ci, co, ky, kx): the original weight of tap (ky, kx) of this pass. */
static void
pack_pass (Pass *p, int cb_in, int cb_out, int cin, int cout, const float *wt, int k,
    int cy, int cx, int s)
{
  /* Tap t (y) of this phase uses kernel row ky = cy + s * (kh - 1 - t). */
  size_t off = 0;
  for (int ob = 0; ob < cb_out; ob += 2) {
    int width = ob + 1 < cb_out ? 16 : 8;
    for (int cb = 0; cb < cb_in; cb++)
      for (int ty = 0; ty < p->kh; ty++)
        for (int tx = 0; tx < p->kw; tx++)
          for (int l = 0; l < 8; l++)
            for (int j = 0; j < width; j++) {
              int ci = cb * 8 + l, co = ob * 8 + j;
              int ky = cy + s * (p->kh - 1 - ty), kx = cx + s * (p->kw - 1 - tx);
              float v = 0.0f;
              if (ci < cin && co < cout)
                v = wt[(((size_t) ci * cout + co) * k + ky) * k + kx];
              p->w[off++] = v;
            }
  }
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
nf_blocked_deconv_supported (const NfOp *op, NfShape in)
{
  return op->type == NF_OP_CONV_TRANSPOSE2D && op->cin > 4 && op->cout > 4
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
  BlockedConv *b = g_new0 (BlockedConv, 1);
  b->kind = NF_CPU_STATE_BLOCKED;
  b->cb_in = (xs.c + 7) / 8;
  b->cb_out = (ys.c + 7) / 8;
  b->relu = op->fuse_relu;
  b->bias = nf_alloc_floats ((size_t) b->cb_out * 8);
  if (!b->bias)
    goto oom;
  for (int c = 0; c < op->cout && op->bias; c++)
    b->bias[c] = op->bias[c];

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
      ps->w = nf_alloc_floats (packed_size (b->cb_in, b->cb_out, ps->kh, ps->kw));
      if (!ps->w)
        goto oom;
      pack_pass (ps, b->cb_in, b->cb_out, op->cin, op->cout, op->weight, k, cpy, cpx, s);
    }
  if (!nf_cpu_reserve_pad_scratch (be, nf_cpu_numel (xs, b->halo), error)) {
    blocked_free (b);
    return FALSE;
  }
  call->state = b;
  return TRUE;

oom:
  g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "cpu: out of memory for weights of %s",
      op->name ? op->name : "conv_transpose2d");
  blocked_free (b);
  return FALSE;
}

void
nf_blocked_conv_release (NfCpuBackend *be, NfOpCall *call)
{
  blocked_free (call->state);
}

/* ---- kernels ------------------------------------------------------------------------- */

typedef struct {
  const float *src;             /* padded source of image n, block 0, row 0, x 0 */
  size_t srow, splane;          /* floats */
  float *dst;                   /* output of image n, block 0, interior (0, 0) */
  size_t drow, dplane;          /* floats */
  int cb_in, cb_out;
  const float *bias;
  gboolean relu;
} Ctx;

/* T output pixels of one row of one pass for blocks ob (and ob+1 when OB == 2). */
__attribute__((target ("avx2,fma"), always_inline))
static inline void
tile_avx2 (const Ctx *c, const Pass *p, const float *w, int ob, int qy, int qx, const int OB,
    const int T)
{
  __m256 acc[2][12];
  for (int o = 0; o < OB; o++)
    for (int t = 0; t < T; t++)
      acc[o][t] = _mm256_setzero_ps ();
  const int s = p->stride;
  const float *sp = c->src + (size_t) (p->iy_off + qy * s) * c->srow
      + (size_t) (p->ix_off + qx * s) * 8;
  for (int cb = 0; cb < c->cb_in; cb++) {
    const float *sb = sp + cb * c->splane;
    for (int ky = 0; ky < p->kh; ky++) {
      const float *sr = sb + ky * c->srow;
      for (int kx = 0; kx < p->kw; kx++) {
        const float *sx = sr + kx * 8;
        for (int l = 0; l < 8; l++) {
          __m256 w0 = _mm256_load_ps (w);
          __m256 w1 = OB == 2 ? _mm256_load_ps (w + 8) : w0;
          w += 8 * OB;
          for (int t = 0; t < T; t++) {
            __m256 v = _mm256_broadcast_ss (sx + (size_t) t * s * 8 + l);
            acc[0][t] = _mm256_fmadd_ps (v, w0, acc[0][t]);
            if (OB == 2)
              acc[1][t] = _mm256_fmadd_ps (v, w1, acc[1][t]);
          }
        }
      }
    }
  }
  const int oy = p->oy0 + p->step * qy;
  for (int o = 0; o < OB; o++) {
    __m256 b = _mm256_load_ps (c->bias + (ob + o) * 8);
    float *d = c->dst + (ob + o) * c->dplane + (size_t) oy * c->drow;
    for (int t = 0; t < T; t++) {
      __m256 v = _mm256_add_ps (acc[o][t], b);
      if (c->relu)
        v = _mm256_max_ps (_mm256_setzero_ps (), v);
      _mm256_storeu_ps (d + (size_t) (p->ox0 + p->step * (qx + t)) * 8, v);
    }
  }
}

#define ROW_AVX2(OB, T) \
  __attribute__((target ("avx2,fma"))) \
  static void \
  row_avx2_##OB (const Ctx *c, const Pass *p, const float *w, int ob, int qy) \
  { \
    int qx = 0; \
    for (; qx + T <= p->qw; qx += T) \
      tile_avx2 (c, p, w, ob, qy, qx, OB, T); \
    for (; qx < p->qw; qx++) \
      tile_avx2 (c, p, w, ob, qy, qx, OB, 1); \
  }

ROW_AVX2 (2, 6)
ROW_AVX2 (1, 12)

/* Portable: one output pixel, one block pair at a time. */
static void
row_generic (const Ctx *c, const Pass *p, const float *w0, int ob, int qy, int OB)
{
  const int s = p->stride, oy = p->oy0 + p->step * qy;
  for (int qx = 0; qx < p->qw; qx++) {
    float acc[16] = { 0 };
    const float *w = w0;
    const float *sp = c->src + (size_t) (p->iy_off + qy * s) * c->srow
        + (size_t) (p->ix_off + qx * s) * 8;
    for (int cb = 0; cb < c->cb_in; cb++)
      for (int ky = 0; ky < p->kh; ky++)
        for (int kx = 0; kx < p->kw; kx++) {
          const float *sx = sp + cb * c->splane + ky * c->srow + kx * 8;
          for (int l = 0; l < 8; l++) {
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
  float *src = nf_cpu_padded_input (be, x, b->halo, NF_PAD_ZERO);
  NfShape ps = { xs.n, xs.c, xs.h + 2 * b->halo, xs.w + 2 * b->halo };
  NfCpuView sv = nf_cpu_view_of (src, ps, 0);
  NfCpuView yv = nf_cpu_begin_write (be, y, call);
  int n_pairs = (b->cb_out + 1) / 2;
  size_t pair_floats = (size_t) 16 * 8 * b->cb_in;      /* per tap, for a full pair */
  gboolean avx2 = be->avx2;
  for (int i = 0; i < b->n_pass; i++) {
    const Pass *p = &b->pass[i];
    int items = xs.n * p->qh * n_pairs;
#pragma omp parallel for schedule(dynamic, 2)
    for (int it = 0; it < items; it++) {
      int pr = it % n_pairs, r = it / n_pairs;
      int n = r / p->qh, qy = r % p->qh;
      Ctx c = {
        .src = nf_cpu_row (&sv, n, 0, 0), .srow = sv.row, .splane = sv.plane,
        .dst = nf_cpu_row (&yv, n, 0, 0), .drow = yv.row, .dplane = yv.plane,
        .cb_in = b->cb_in, .cb_out = b->cb_out, .bias = b->bias, .relu = b->relu,
      };
      int ob = pr * 2, OB = ob + 1 < b->cb_out ? 2 : 1;
      const float *w = p->w + (size_t) pr * pair_floats * p->kh * p->kw;
      if (avx2 && OB == 2)
        row_avx2_2 (&c, p, w, ob, qy);
      else if (avx2)
        row_avx2_1 (&c, p, w, ob, qy);
      else
        row_generic (&c, p, w, ob, qy, OB);
    }
  }
  return TRUE;
}
