/* nf-cpu-fast.c — the fast CPU backend "cpu": buffers, transfers and every op that is
 * not a convolution, as OpenMP loops over oneDNN's blocked layout.
 *
 * What it does: the backend table; activations in nChw8c (channels > 4) or NCHW
 * (channels <= 4, the network's image ends) with a per-value halo that lets the next
 * convolution pad in place (see nf-cpu-fast-private.h); upload/download to and from
 * host NCHW; instance norm (one pass of shifted sums for the statistics, per row in
 * float, across rows in double; biased variance; ReLU fused), relu, add, concat,
 * nearest upsampling, pixel shuffle, tanh_scale, clamp and pooling, each writing zeros
 * into the padded channel lanes. Hot loops have AVX2 versions chosen at run time.
 * Convolutions: nf-dnnl-conv.c (oneDNN, most conv2d), nf-cpu-direct-conv.c (conv2d to
 * <= 4 channels), nf-cpu-blocked-conv.c (conv_transpose2d, and the first conv2d when it
 * has <= 16 outputs); this file picks one at prepare.
 * Why nChw8c: oneDNN's AVX2 convolutions run fastest on it (nhwc and nchw were 1.6-2x
 * slower on the 3x3 convolutions that dominate every network here).
 * Environment (for tests and comparisons): NF_CPU_NO_AVX2=1 runs the portable kernels;
 * NF_CPU_DNNL_ONLY=1 sends every convolution with > 4 outputs to oneDNN.
 * Backward passes: nf-dnnl-conv-backward.c (convolutions) and nf-cpu-fast-backward.c.
 * cond_instance_norm: nf-cond-norm.c mixes the style rows and runs this file's instance
 * norm (forward and backward) with them.
 * The bf16 variant "cpu-bf16" is the same table with bf16 convolutions (nf-dnnl-conv.c).
 * What it does not: batch_norm (folded at load), or running two ops of one backend at the
 * same time.
 */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "nf-cpu-fast-private.h"
#include "nf-cond-norm.h"

/* ---- backend lifetime -------------------------------------------------------- */

static NfBackend *
cpu_create (GError **error)
{
  NfCpuBackend *be = g_new0 (NfCpuBackend, 1);
  be->parent.iface = &nf_backend_cpu;
  dnnl_status_t st = dnnl_engine_create (&be->engine, dnnl_cpu, 0);
  if (st == dnnl_success)
    st = dnnl_stream_create (&be->stream, be->engine, dnnl_stream_default_flags);
  if (st != dnnl_success) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
        "cpu: could not create the oneDNN CPU engine (status %d)", (int) st);
    if (be->engine)
      dnnl_engine_destroy (be->engine);
    g_free (be);
    return NULL;
  }
  be->hints = g_hash_table_new (g_direct_hash, g_direct_equal);
  be->bwd_states = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
      nf_dnnl_conv_backward_free);
  __builtin_cpu_init ();
  be->avx2 = __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
  /* Tests run the portable kernels with NF_CPU_NO_AVX2=1 (and DNNL_MAX_CPU_ISA=SSE41). */
  if (g_getenv ("NF_CPU_NO_AVX2"))
    be->avx2 = FALSE;
  return &be->parent;
}

static NfBackend *
cpu_bf16_create (GError **error)
{
  if (!nf_cpu_has_native_bf16 ()) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "cpu-bf16: this CPU has no native "
        "bf16 arithmetic (oneDNN's ISA here: %s%s; bf16 needs avx512_core_bf16 or AMX); use "
        "the fp32 backend cpu", nf_cpu_isa_name (), g_getenv ("NF_CPU_NO_BF16")
        ? ", but NF_CPU_NO_BF16 is set" : "");
    return NULL;
  }
  NfBackend *base = cpu_create (error);
  if (!base)
    return NULL;
  NfCpuBackend *be = (NfCpuBackend *) base;
  be->bf16 = TRUE;
  be->parent.iface = &nf_backend_cpu_bf16;
  return base;
}

static void
cpu_destroy (NfBackend *base)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  if (!be)
    return;
  dnnl_stream_destroy (be->stream);
  dnnl_engine_destroy (be->engine);
  g_hash_table_destroy (be->hints);
  nf_free (be->pad_scratch);
  nf_free (be->dnnl_scratch);
  g_hash_table_destroy (be->bwd_states);
  nf_free (be->bwd_dy);
  nf_free (be->bwd_dx);
  nf_free (be->bf16_src);
  nf_free (be->bf16_dst);
  g_free (be);
}

static gboolean
cpu_supports_op (NfBackend *be, const NfOp *op)
{
  return op->type != NF_OP_BATCH_NORM && op->type < NF_OP_COUNT;
}

/* ---- buffers ------------------------------------------------------------------ */

static void *
cpu_alloc (NfBackend *base, NfShape s, GError **error)
{
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "cpu: cannot allocate an empty %dx%dx%dx%d activation", s.n, s.c, s.h, s.w);
    return NULL;
  }
  NfCpuBuf *b = g_new0 (NfCpuBuf, 1);
  b->s = s;
  b->vec = nf_cpu_vec (s);
  b->planes = nf_cpu_planes (s);
  b->capacity = nf_cpu_numel (s, NF_CPU_MAX_HALO);
  b->data = nf_alloc_floats (b->capacity);
  if (!b->data) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
        "cpu: out of memory for a %dx%dx%dx%d activation", s.n, s.c, s.h, s.w);
    g_free (b);
    return NULL;
  }
  return b;
}

static void
cpu_free (NfBackend *base, void *buf)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  NfCpuBuf *b = buf;
  if (!b)
    return;
  g_hash_table_remove (be->hints, b);
  nf_free (b->data);
  g_free (b);
}

/* Gradient buffers: all zeros, dense (halo 0), padded lanes included. */
static gboolean
cpu_zero (NfBackend *base, void *buf, NfShape s, GError **error)
{
  NfCpuBuf *b = buf;
  if (!nf_cpu_check_buf (b, s, "zero", error))
    return FALSE;
  size_t n = nf_cpu_numel (s, 0);
#pragma omp parallel for schedule(static) if (nf_cpu_par (n))
  for (size_t i = 0; i < n; i += 4096)
    memset (b->data + i, 0, MIN ((size_t) 4096, n - i) * sizeof (float));
  b->halo = 0;
  b->writer = NULL;
  return TRUE;
}

gboolean
nf_cpu_check_buf (const NfCpuBuf *b, NfShape s, const char *what, GError **error)
{
  if (!b || !nf_shape_equal (b->s, s)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "cpu: %s: buffer of shape %dx%dx%dx%d where %dx%dx%dx%d was expected", what,
        b ? b->s.n : 0, b ? b->s.c : 0, b ? b->s.h : 0, b ? b->s.w : 0, s.n, s.c, s.h, s.w);
    return FALSE;
  }
  return TRUE;
}

NfCpuView
nf_cpu_begin_write_halo (NfCpuBuf *out, const void *writer, int halo)
{
  out->halo = halo;
  out->writer = writer;
  return nf_cpu_view (out);
}

NfCpuView
nf_cpu_begin_write (NfCpuBackend *be, NfCpuBuf *out, const void *writer)
{
  int halo = GPOINTER_TO_INT (g_hash_table_lookup (be->hints, writer)) - 1;
  if (halo < 0 || halo > NF_CPU_MAX_HALO)
    halo = 0;
  return nf_cpu_begin_write_halo (out, writer, halo);
}

void
nf_cpu_want_halo (NfCpuBackend *be, const NfCpuBuf *x, int p)
{
  if (x->writer && p >= 0 && p <= NF_CPU_MAX_HALO)
    g_hash_table_insert (be->hints, (gpointer) x->writer, GINT_TO_POINTER (p + 1));
}

gboolean
nf_cpu_reserve_dnnl_scratch (NfCpuBackend *be, size_t bytes, GError **error)
{
  if (bytes <= be->dnnl_scratch_bytes)
    return TRUE;
  void *p = nf_alloc_aligned (bytes);
  if (!p) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
        "cpu: out of memory for a %zu MB oneDNN scratchpad", bytes >> 20);
    return FALSE;
  }
  nf_free (be->dnnl_scratch);
  be->dnnl_scratch = p;
  be->dnnl_scratch_bytes = bytes;
  return TRUE;
}

/* Fills the halo of width p around every plane of v: reflection (PyTorch
 * ReflectionPad2d, edge not repeated; p < h and p < w) or zeros. */
static void
fill_border (const NfCpuView *v, int p, NfPadMode mode)
{
  if (p == 0)
    return;
  int vec = v->vec, h = v->h, w = v->w;
  size_t full = (size_t) (w + 2 * p) * vec;
  int total = v->n * v->planes;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) total * 2 * p * (h + w) * vec))
  for (int t = 0; t < total; t++) {
    int n = t / v->planes, pl = t % v->planes;
    for (int y = 0; y < h; y++) {
      float *r = nf_cpu_row (v, n, pl, y);
      for (int j = 1; j <= p; j++) {
        float *l = r - (ptrdiff_t) j * vec, *rr = r + (size_t) (w - 1 + j) * vec;
        if (mode == NF_PAD_REFLECT) {
          memcpy (l, r + (size_t) j * vec, vec * sizeof (float));
          memcpy (rr, r + (size_t) (w - 1 - j) * vec, vec * sizeof (float));
        } else {
          memset (l, 0, vec * sizeof (float));
          memset (rr, 0, vec * sizeof (float));
        }
      }
    }
    for (int j = 1; j <= p; j++) {
      float *top = nf_cpu_row (v, n, pl, -j) - (size_t) p * vec;
      float *bot = nf_cpu_row (v, n, pl, h - 1 + j) - (size_t) p * vec;
      if (mode == NF_PAD_REFLECT) {
        memcpy (top, nf_cpu_row (v, n, pl, j) - (size_t) p * vec, full * sizeof (float));
        memcpy (bot, nf_cpu_row (v, n, pl, h - 1 - j) - (size_t) p * vec, full * sizeof (float));
      } else {
        memset (top, 0, full * sizeof (float));
        memset (bot, 0, full * sizeof (float));
      }
    }
  }
}

/* Copies the interior of src into dst (same shape, any halos). */
static void
copy_interior (const NfCpuView *dst, const NfCpuView *src)
{
  int rows = src->n * src->planes * src->h;
  size_t len = (size_t) src->w * src->vec * sizeof (float);
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * src->w * src->vec))
  for (int r = 0; r < rows; r++) {
    int y = r % src->h, t = r / src->h;
    int n = t / src->planes, pl = t % src->planes;
    memcpy (nf_cpu_row (dst, n, pl, y), nf_cpu_row (src, n, pl, y), len);
  }
}

/* Convolutions without a copy after which the padding scratch is released. */
#define PAD_SCRATCH_IDLE 64

static float *
padded_input (NfCpuBackend *be, NfCpuBuf *x, int p, NfPadMode mode, gboolean hint,
    GError **error)
{
  if (hint)
    nf_cpu_want_halo (be, x, p);
  if (x->halo == p) {
    NfCpuView v = nf_cpu_view (x);
    fill_border (&v, p, mode);
    if (be->pad_scratch && ++be->pad_idle > PAD_SCRATCH_IDLE) {
      g_clear_pointer (&be->pad_scratch, nf_free);
      be->pad_scratch_n = 0;
    }
    return x->data;
  }
  size_t need = nf_cpu_numel (x->s, p);
  be->pad_idle = 0;
  if (need > be->pad_scratch_n) {
    nf_free (be->pad_scratch);
    be->pad_scratch_n = 0;
    be->pad_scratch = nf_alloc_floats (need);
    if (!be->pad_scratch) {
      g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
          "cpu: out of memory for a %zu MB padding buffer", need * sizeof (float) >> 20);
      return NULL;
    }
    be->pad_scratch_n = need;
  }
  NfCpuView src = nf_cpu_view (x);
  NfCpuView dst = nf_cpu_view_of (be->pad_scratch, x->s, p);
  copy_interior (&dst, &src);
  fill_border (&dst, p, mode);
  return be->pad_scratch;
}

float *
nf_cpu_padded_input (NfCpuBackend *be, NfCpuBuf *x, int p, NfPadMode mode, GError **error)
{
  return padded_input (be, x, p, mode, TRUE, error);
}

float *
nf_cpu_padded_input_quiet (NfCpuBackend *be, NfCpuBuf *x, int p, NfPadMode mode,
    GError **error)
{
  return padded_input (be, x, p, mode, FALSE, error);
}

float *
nf_cpu_scratch (float **buf, size_t *n, size_t need, GError **error)
{
  if (need <= *n)
    return *buf;
  nf_free (*buf);
  *n = 0;
  *buf = nf_alloc_floats (need);
  if (!*buf) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
        "cpu: out of memory for a %zu MB scratch buffer", need * sizeof (float) >> 20);
    return NULL;
  }
  *n = need;
  return *buf;
}

/* ---- transfers ------------------------------------------------------------------ */

static gboolean
cpu_upload (NfBackend *base, void *dst, const float *src, NfShape s, GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  NfCpuBuf *b = dst;
  if (!nf_cpu_check_buf (b, s, "upload", error))
    return FALSE;
  NfCpuView v = nf_cpu_begin_write (be, b, b);
  size_t hw = (size_t) s.h * s.w;
  int rows = s.n * v.planes * s.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * s.w * v.vec))
  for (int r = 0; r < rows; r++) {
    int y = r % s.h, t = r / s.h;
    int n = t / v.planes, pl = t % v.planes;
    float *d = nf_cpu_row (&v, n, pl, y);
    if (v.vec == 1) {
      memcpy (d, src + ((size_t) n * s.c + pl) * hw + (size_t) y * s.w, s.w * sizeof (float));
      continue;
    }
    for (int l = 0; l < 8; l++) {
      int c = pl * 8 + l;
      if (c < s.c) {
        const float *sp = src + ((size_t) n * s.c + c) * hw + (size_t) y * s.w;
        for (int x = 0; x < s.w; x++)
          d[(size_t) x * 8 + l] = sp[x];
      } else {
        for (int x = 0; x < s.w; x++)
          d[(size_t) x * 8 + l] = 0.0f;
      }
    }
  }
  return TRUE;
}

static gboolean
cpu_download (NfBackend *base, float *dst, const void *src, NfShape s, GError **error)
{
  const NfCpuBuf *b = src;
  if (!nf_cpu_check_buf (b, s, "download", error))
    return FALSE;
  NfCpuView v = nf_cpu_view (b);
  size_t hw = (size_t) s.h * s.w;
  int rows = s.n * v.planes * s.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * s.w * v.vec))
  for (int r = 0; r < rows; r++) {
    int y = r % s.h, t = r / s.h;
    int n = t / v.planes, pl = t % v.planes;
    const float *sp = nf_cpu_row (&v, n, pl, y);
    if (v.vec == 1) {
      memcpy (dst + ((size_t) n * s.c + pl) * hw + (size_t) y * s.w, sp, s.w * sizeof (float));
      continue;
    }
    for (int l = 0; l < 8 && pl * 8 + l < s.c; l++) {
      float *d = dst + ((size_t) n * s.c + pl * 8 + l) * hw + (size_t) y * s.w;
      for (int x = 0; x < s.w; x++)
        d[x] = sp[(size_t) x * 8 + l];
    }
  }
  return TRUE;
}

/* Zeros the padded channel lanes of row y (all rows: y < 0) of the last block. */
void
nf_cpu_zero_pad_lanes_row (const NfCpuView *v, int n, int y)
{
  if (v->vec != 8 || v->c % 8 == 0)
    return;
  int first = v->c % 8;
  float *r = nf_cpu_row (v, n, v->planes - 1, y);
  for (int x = 0; x < v->w; x++)
    for (int l = first; l < 8; l++)
      r[(size_t) x * 8 + l] = 0.0f;
}

/* ---- elementwise ops ------------------------------------------------------------ */

/* Vectorisable tanh: 1 - 2 / (exp(2|x|) + 1) with a Cephes exp polynomial; absolute
 * error below 2e-7. */
static inline float
tanh_fast (float x)
{
  float a = fabsf (x);
  a = a < 9.0f ? a : 9.0f;
  float t = -2.0f * a;                          /* exp(t), t in [-18, 0] */
  float fn = t * 1.44269504088896341f + 12582912.0f;
  fn -= 12582912.0f;                            /* round to nearest */
  float r = t - fn * 0.693359375f;
  r = r + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float e = p * r * r + r + 1.0f;
  union { float f; int32_t i; } sc;
  sc.i = ((int32_t) fn + 127) << 23;
  e *= sc.f;
  float y = (1.0f - e) / (1.0f + e);
  return x < 0.0f ? -y : y;
}

/* The same in AVX2, 8 at a time. */
__attribute__((target ("avx2,fma")))
static inline __m256
tanh_avx2 (__m256 x)
{
  const __m256 sign = _mm256_set1_ps (-0.0f);
  __m256 a = _mm256_min_ps (_mm256_andnot_ps (sign, x), _mm256_set1_ps (9.0f));
  __m256 t = _mm256_mul_ps (a, _mm256_set1_ps (-2.0f));
  __m256 fn = _mm256_round_ps (_mm256_mul_ps (t, _mm256_set1_ps (1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps (fn, _mm256_set1_ps (0.693359375f), t);
  r = _mm256_fmadd_ps (fn, _mm256_set1_ps (2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps (1.9875691500e-4f);
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.3981999507e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (8.3334519073e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (4.1665795894e-2f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.6666665459e-1f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (5.0000001201e-1f));
  __m256 e = _mm256_fmadd_ps (_mm256_mul_ps (p, r), r, _mm256_add_ps (r, _mm256_set1_ps (1.0f)));
  __m256i ei = _mm256_slli_epi32 (_mm256_add_epi32 (_mm256_cvtps_epi32 (fn),
          _mm256_set1_epi32 (127)), 23);
  e = _mm256_mul_ps (e, _mm256_castsi256_ps (ei));
  __m256 one = _mm256_set1_ps (1.0f);
  __m256 y = _mm256_div_ps (_mm256_sub_ps (one, e), _mm256_add_ps (one, e));
  return _mm256_or_ps (y, _mm256_and_ps (x, sign));
}

enum { EW_RELU, EW_ADD, EW_ADD_RELU, EW_TANH, EW_CLAMP };

static inline void
ew_row_body (int kind, float *restrict y, const float *restrict a, const float *restrict b,
    size_t len, float p0, float p1)
{
  switch (kind) {
    case EW_RELU:
      for (size_t i = 0; i < len; i++)
        y[i] = a[i] > 0.0f ? a[i] : 0.0f;
      break;
    case EW_ADD:
      for (size_t i = 0; i < len; i++)
        y[i] = a[i] + b[i];
      break;
    case EW_ADD_RELU:
      for (size_t i = 0; i < len; i++) {
        float s = a[i] + b[i];
        y[i] = s > 0.0f ? s : 0.0f;
      }
      break;
    case EW_TANH:
      for (size_t i = 0; i < len; i++)
        y[i] = p0 * tanh_fast (a[i]) + p1;
      break;
    case EW_CLAMP:
      for (size_t i = 0; i < len; i++) {
        float v = a[i] < p0 ? p0 : a[i];
        y[i] = v > p1 ? p1 : v;
      }
      break;
  }
}

__attribute__((target ("avx2,fma")))
static void
ew_row_avx2 (int kind, float *restrict y, const float *restrict a, const float *restrict b,
    size_t len, float p0, float p1)
{
  if (kind == EW_TANH) {
    size_t i = 0;
    __m256 sc = _mm256_set1_ps (p0), off = _mm256_set1_ps (p1);
    for (; i + 8 <= len; i += 8)
      _mm256_storeu_ps (y + i, _mm256_fmadd_ps (sc, tanh_avx2 (_mm256_loadu_ps (a + i)), off));
    ew_row_body (kind, y + i, a + i, b, len - i, p0, p1);
    return;
  }
  ew_row_body (kind, y, a, b, len, p0, p1);
}

static void
ew_row_sse (int kind, float *restrict y, const float *restrict a, const float *restrict b,
    size_t len, float p0, float p1)
{
  ew_row_body (kind, y, a, b, len, p0, p1);
}

static gboolean
elementwise (NfBackend *base, NfOpCall *call, void *const *in, void *out, int kind,
    float p0, float p1, GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  NfCpuBuf *xa = in[0], *xb = kind == EW_ADD || kind == EW_ADD_RELU ? in[1] : NULL;
  NfCpuBuf *yb = out;
  if (!nf_cpu_check_buf (xa, call->in[0], "input", error)
      || (xb && !nf_cpu_check_buf (xb, call->in[1], "second input", error))
      || !nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView a = nf_cpu_view (xa), b = xb ? nf_cpu_view (xb) : a;
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  size_t len = (size_t) y.w * y.vec;
  int rows = y.n * y.planes * y.h;
  gboolean avx2 = be->avx2;
  gboolean fix_lanes = (kind == EW_TANH || kind == EW_CLAMP);
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * len))
  for (int r = 0; r < rows; r++) {
    int yy = r % y.h, t = r / y.h;
    int n = t / y.planes, pl = t % y.planes;
    float *yr = nf_cpu_row (&y, n, pl, yy);
    const float *ar = nf_cpu_row (&a, n, pl, yy), *br = nf_cpu_row (&b, n, pl, yy);
    if (avx2)
      ew_row_avx2 (kind, yr, ar, br, len, p0, p1);
    else
      ew_row_sse (kind, yr, ar, br, len, p0, p1);
    if (fix_lanes && pl == y.planes - 1)
      nf_cpu_zero_pad_lanes_row (&y, n, yy);
  }
  return TRUE;
}

static gboolean
cpu_relu (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  return elementwise (be, call, in, out, EW_RELU, 0, 0, error);
}

static gboolean
cpu_add (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  return elementwise (be, call, in, out, call->op->fuse_relu ? EW_ADD_RELU : EW_ADD, 0, 0,
      error);
}

static gboolean
cpu_tanh_scale (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  return elementwise (be, call, in, out, EW_TANH, call->op->scale, call->op->offset, error);
}

static gboolean
cpu_clamp (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  return elementwise (be, call, in, out, EW_CLAMP, call->op->min, call->op->max, error);
}

/* ---- instance norm -------------------------------------------------------------- */

/* Sums of (x - k) and (x - k)^2 over one row, per lane (8 lanes; plain rows use
 * lanes as 8 interleaved partial sums of the same channel). */
static inline void
stats_row_body (const float *restrict r, size_t len, const float *restrict k,
    float *restrict s, float *restrict q)
{
  float sv[8] = { 0 }, qv[8] = { 0 };
  size_t i = 0;
  for (; i + 8 <= len; i += 8)
    for (int l = 0; l < 8; l++) {
      float d = r[i + l] - k[l];
      sv[l] += d;
      qv[l] += d * d;
    }
  for (; i < len; i++) {
    float d = r[i] - k[0];
    sv[0] += d;
    qv[0] += d * d;
  }
  for (int l = 0; l < 8; l++) {
    s[l] = sv[l];
    q[l] = qv[l];
  }
}

__attribute__((target ("avx2,fma")))
static void
stats_row_avx2 (const float *r, size_t len, const float *k, float *s, float *q)
{
  __m256 kv = _mm256_loadu_ps (k);
  __m256 s0 = _mm256_setzero_ps (), s1 = s0, s2 = s0, s3 = s0;
  __m256 q0 = s0, q1 = s0, q2 = s0, q3 = s0;
  size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    __m256 d0 = _mm256_sub_ps (_mm256_loadu_ps (r + i), kv);
    __m256 d1 = _mm256_sub_ps (_mm256_loadu_ps (r + i + 8), kv);
    __m256 d2 = _mm256_sub_ps (_mm256_loadu_ps (r + i + 16), kv);
    __m256 d3 = _mm256_sub_ps (_mm256_loadu_ps (r + i + 24), kv);
    s0 = _mm256_add_ps (s0, d0);
    s1 = _mm256_add_ps (s1, d1);
    s2 = _mm256_add_ps (s2, d2);
    s3 = _mm256_add_ps (s3, d3);
    q0 = _mm256_fmadd_ps (d0, d0, q0);
    q1 = _mm256_fmadd_ps (d1, d1, q1);
    q2 = _mm256_fmadd_ps (d2, d2, q2);
    q3 = _mm256_fmadd_ps (d3, d3, q3);
  }
  for (; i + 8 <= len; i += 8) {
    __m256 d0 = _mm256_sub_ps (_mm256_loadu_ps (r + i), kv);
    s0 = _mm256_add_ps (s0, d0);
    q0 = _mm256_fmadd_ps (d0, d0, q0);
  }
  _mm256_storeu_ps (s, _mm256_add_ps (_mm256_add_ps (s0, s1), _mm256_add_ps (s2, s3)));
  _mm256_storeu_ps (q, _mm256_add_ps (_mm256_add_ps (q0, q1), _mm256_add_ps (q2, q3)));
  for (; i < len; i++) {          /* plain rows: the tail goes to lane 0 */
    float d = r[i] - k[0];
    s[0] += d;
    q[0] += d * d;
  }
}

static void
stats_row_sse (const float *r, size_t len, const float *k, float *s, float *q)
{
  stats_row_body (r, len, k, s, q);
}

/* y = max((x - m) * a + b, 0) (relu) or (x - m) * a + b, per lane. Subtracting the
 * mean first keeps the result exact where the spread is tiny next to the mean. */
static inline void
norm_row_body (float *restrict y, const float *restrict x, size_t len,
    const float *restrict m, const float *restrict a, const float *restrict b, gboolean relu)
{
  if (relu) {
    for (size_t i = 0; i < len; i += 8)
      for (int l = 0; l < 8; l++) {
        float v = (x[i + l] - m[l]) * a[l] + b[l];
        y[i + l] = v > 0.0f ? v : 0.0f;
      }
  } else {
    for (size_t i = 0; i < len; i += 8)
      for (int l = 0; l < 8; l++)
        y[i + l] = (x[i + l] - m[l]) * a[l] + b[l];
  }
}

__attribute__((target ("avx2,fma")))
static void
norm_row_avx2 (float *y, const float *x, size_t len, const float *m, const float *a,
    const float *b, gboolean relu)
{
  __m256 mv = _mm256_loadu_ps (m), av = _mm256_loadu_ps (a), bv = _mm256_loadu_ps (b);
  __m256 zero = _mm256_setzero_ps ();
  if (relu) {
    for (size_t i = 0; i < len; i += 8) {
      __m256 v = _mm256_fmadd_ps (_mm256_sub_ps (_mm256_loadu_ps (x + i), mv), av, bv);
      _mm256_storeu_ps (y + i, _mm256_max_ps (zero, v));     /* NaN stays NaN */
    }
  } else {
    for (size_t i = 0; i < len; i += 8)
      _mm256_storeu_ps (y + i, _mm256_fmadd_ps (_mm256_sub_ps (_mm256_loadu_ps (x + i), mv),
              av, bv));
  }
}

static void
norm_row_sse (float *y, const float *x, size_t len, const float *m, const float *a,
    const float *b, gboolean relu)
{
  norm_row_body (y, x, len, m, a, b, relu);
}

/* Per (n, c): y = (x - mean) / sqrt(var + eps) * w[c] + b[c], biased variance,
 * optionally followed by ReLU. One pass for the statistics: shifted sums (shift = the
 * first pixel of each channel) accumulated per row in float, across rows in double. */
static gboolean
cpu_instance_norm (NfBackend *base, NfOpCall *call, void *const *in, void *out,
    GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  const NfOp *op = call->op;
  NfCpuBuf *xb = in[0], *yb = out;
  if (!nf_cpu_check_buf (xb, call->in[0], "input", error)
      || !nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView x = nf_cpu_view (xb);
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  int vec = x.vec, h = x.h, np = x.n * x.planes;
  size_t len = (size_t) x.w * vec;
  /* Plain rows shorter than 8 floats or not a multiple of 8 use a scalar tail; the
   * normalise loop works on whole vectors of 8 only for blocked rows. */
  gboolean avx2 = be->avx2;
  int chunks = MIN (h, 16);
  /* per (plane, chunk): 8 sums, 8 squares, in double; then per plane: a[8], b[8],
   * k[8] (the shift), m[8] (the mean) */
  double *part = g_new0 (double, (size_t) np * chunks * 16);
  float *coef = g_new0 (float, (size_t) np * 32);

  for (int t = 0; t < np; t++) {
    float *k = coef + (size_t) t * 32 + 16;
    const float *r0 = nf_cpu_row (&x, t / x.planes, t % x.planes, 0);
    for (int l = 0; l < 8; l++)
      k[l] = vec == 8 ? r0[l] : r0[0];
  }

#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) np * h * len))
  for (int tc = 0; tc < np * chunks; tc++) {
    int t = tc / chunks, ch = tc % chunks;
    int y0 = (int) ((long) h * ch / chunks), y1 = (int) ((long) h * (ch + 1) / chunks);
    const float *k = coef + (size_t) t * 32 + 16;
    double *ps = part + (size_t) tc * 16;
    for (int yy = y0; yy < y1; yy++) {
      float s[8], q[8];
      const float *r = nf_cpu_row (&x, t / x.planes, t % x.planes, yy);
      if (avx2)
        stats_row_avx2 (r, len, k, s, q);
      else
        stats_row_sse (r, len, k, s, q);
      for (int l = 0; l < 8; l++) {
        ps[l] += s[l];
        ps[8 + l] += q[l];
      }
    }
  }

  double cnt = (double) x.h * x.w;
  for (int t = 0; t < np; t++) {
    int pl = t % x.planes;
    float *a = coef + (size_t) t * 32, *b = a + 8, *mu = a + 24;
    const float *k = a + 16;
    double s[8] = { 0 }, q[8] = { 0 };
    for (int ch = 0; ch < chunks; ch++) {
      const double *ps = part + ((size_t) t * chunks + ch) * 16;
      for (int l = 0; l < 8; l++) {
        s[l] += ps[l];
        q[l] += ps[8 + l];
      }
    }
    if (vec == 1) {             /* the 8 lanes were partial sums of one channel */
      for (int l = 1; l < 8; l++) {
        s[0] += s[l];
        q[0] += q[l];
      }
    }
    for (int l = 0; l < 8; l++) {
      int c = vec == 8 ? pl * 8 + l : pl;
      if ((vec == 1 && l > 0) || c >= x.c) {
        a[l] = b[l] = mu[l] = 0.0f;
        continue;
      }
      double m = s[l] / cnt;                    /* mean of x - k */
      double var = q[l] / cnt - m * m;
      if (var < 0.0)
        var = 0.0;
      double inv = 1.0 / sqrt (var + op->eps);
      double w = (op->affine && op->weight) ? op->weight[c] : 1.0;
      double bb = (op->affine && op->bias) ? op->bias[c] : 0.0;
      a[l] = (float) (inv * w);
      b[l] = (float) bb;
      mu[l] = (float) (m + k[l]);
    }
    if (vec == 1)
      for (int l = 1; l < 8; l++) {
        a[l] = a[0];
        b[l] = b[0];
        mu[l] = mu[0];
      }
  }

  int rows = np * h;
  gboolean relu = op->fuse_relu;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * len))
  for (int r = 0; r < rows; r++) {
    int yy = r % h, t = r / h;
    const float *a = coef + (size_t) t * 32, *b = a + 8, *mu = a + 24;
    const float *xr = nf_cpu_row (&x, t / x.planes, t % x.planes, yy);
    float *yr = nf_cpu_row (&y, t / x.planes, t % x.planes, yy);
    size_t main_len = len & ~(size_t) 7;
    if (avx2)
      norm_row_avx2 (yr, xr, main_len, mu, a, b, relu);
    else
      norm_row_sse (yr, xr, main_len, mu, a, b, relu);
    for (size_t i = main_len; i < len; i++) {     /* plain rows only */
      float v = (xr[i] - mu[0]) * a[0] + b[0];
      yr[i] = relu && v < 0.0f ? 0.0f : v;
    }
  }
  g_free (part);
  g_free (coef);
  return TRUE;
}

/* ---- data movement ---------------------------------------------------------------- */

/* y (N, sum Ci, H, W): inputs stacked along channels. Whole blocks are copied row by
 * row when the channel offsets fall on block boundaries; otherwise channel by
 * channel. */
static gboolean
cpu_concat (NfBackend *base, NfOpCall *call, void *const *in, void *out, GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  const NfOp *op = call->op;
  NfCpuBuf *yb = out;
  for (int i = 0; i < op->n_in; i++)
    if (!nf_cpu_check_buf (in[i], call->in[i], "input", error))
      return FALSE;
  if (!nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  int c0 = 0;
  for (int i = 0; i < op->n_in; i++) {
    NfCpuView x = nf_cpu_view ((NfCpuBuf *) in[i]);
    gboolean blocks = y.vec == 8 && x.vec == 8 && c0 % 8 == 0
        && (x.c % 8 == 0 || i == op->n_in - 1);
    if (blocks) {
      int rows = x.n * x.planes * x.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * x.w * 8))
      for (int r = 0; r < rows; r++) {
        int yy = r % x.h, t = r / x.h;
        int n = t / x.planes, pl = t % x.planes;
        memcpy (nf_cpu_row (&y, n, c0 / 8 + pl, yy), nf_cpu_row (&x, n, pl, yy),
            (size_t) x.w * 8 * sizeof (float));
      }
    } else {
      int rows = x.n * x.c * x.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * x.w))
      for (int r = 0; r < rows; r++) {
        int yy = r % x.h, t = r / x.h;
        int n = t / x.c, c = t % x.c;
        const float *s = nf_cpu_at (&x, n, c, yy, 0);
        float *d = nf_cpu_at (&y, n, c0 + c, yy, 0);
        for (int xx = 0; xx < x.w; xx++)
          d[(size_t) xx * y.vec] = s[(size_t) xx * x.vec];
      }
    }
    c0 += x.c;
  }
  for (int n = 0; n < y.n; n++)
    for (int yy = 0; yy < y.h; yy++)
      nf_cpu_zero_pad_lanes_row (&y, n, yy);
  return TRUE;
}

static gboolean
cpu_upsample_nearest (NfBackend *base, NfOpCall *call, void *const *in, void *out,
    GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  NfCpuBuf *xb = in[0], *yb = out;
  if (!nf_cpu_check_buf (xb, call->in[0], "input", error)
      || !nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView x = nf_cpu_view (xb);
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  int f = call->op->factor, vec = x.vec;
  int rows = x.n * x.planes * x.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * y.w * vec))
  for (int r = 0; r < rows; r++) {
    int iy = r % x.h, t = r / x.h;
    int n = t / x.planes, pl = t % x.planes;
    const float *s = nf_cpu_row (&x, n, pl, iy);
    float *d = nf_cpu_row (&y, n, pl, iy * f);
    if (vec == 8) {
      for (int ix = 0; ix < x.w; ix++)
        for (int j = 0; j < f; j++)
          for (int l = 0; l < 8; l++)
            d[((size_t) ix * f + j) * 8 + l] = s[(size_t) ix * 8 + l];
    } else {
      for (int ix = 0; ix < x.w; ix++)
        for (int j = 0; j < f; j++)
          d[(size_t) ix * f + j] = s[ix];
    }
    for (int i = 1; i < f; i++)
      memcpy (nf_cpu_row (&y, n, pl, iy * f + i), d, (size_t) y.w * vec * sizeof (float));
  }
  return TRUE;
}

/* y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w] (PyTorch pixel_shuffle). */
static gboolean
cpu_pixel_shuffle (NfBackend *base, NfOpCall *call, void *const *in, void *out,
    GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  NfCpuBuf *xb = in[0], *yb = out;
  if (!nf_cpu_check_buf (xb, call->in[0], "input", error)
      || !nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView x = nf_cpu_view (xb);
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  int rf = call->op->factor;
  gboolean relu = call->op->fuse_relu;
  int rows = y.n * y.c * y.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * y.w))
  for (int r = 0; r < rows; r++) {
    int oy = r % y.h, t = r / y.h;
    int n = t / y.c, c = t % y.c;
    int i = oy % rf, iy = oy / rf;
    for (int j = 0; j < rf; j++) {
      const float *s = nf_cpu_at (&x, n, c * rf * rf + i * rf + j, iy, 0);
      float *d = nf_cpu_at (&y, n, c, oy, j);
      size_t ds = (size_t) rf * y.vec, ss = x.vec;
      if (relu) {
        for (int ix = 0; ix < x.w; ix++) {
          float v = s[ix * ss];
          d[ix * ds] = v > 0.0f ? v : 0.0f;
        }
      } else {
        for (int ix = 0; ix < x.w; ix++)
          d[ix * ds] = s[ix * ss];
      }
    }
  }
  for (int n = 0; n < y.n; n++)
    for (int yy = 0; yy < y.h; yy++)
      nf_cpu_zero_pad_lanes_row (&y, n, yy);
  return TRUE;
}

static gboolean
cpu_pool2d (NfBackend *base, NfOpCall *call, void *const *in, void *out, GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  const NfOp *op = call->op;
  NfCpuBuf *xb = in[0], *yb = out;
  if (!nf_cpu_check_buf (xb, call->in[0], "input", error)
      || !nf_cpu_check_buf (yb, call->out, "output", error))
    return FALSE;
  NfCpuView x = nf_cpu_view (xb);
  NfCpuView y = nf_cpu_begin_write (be, yb, call);
  int k = op->k, s = op->stride, vec = x.vec;
  gboolean is_max = op->type == NF_OP_MAX_POOL2D, relu = op->fuse_relu;
  float inv = 1.0f / (float) (k * k);
  int rows = y.n * y.planes * y.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * y.w * vec * k * k))
  for (int r = 0; r < rows; r++) {
    int oy = r % y.h, t = r / y.h;
    int n = t / y.planes, pl = t % y.planes;
    float *d = nf_cpu_row (&y, n, pl, oy);
    for (int ox = 0; ox < y.w; ox++) {
      float acc[8];
      for (int l = 0; l < vec; l++)
        acc[l] = is_max ? -INFINITY : 0.0f;
      for (int ky = 0; ky < k; ky++) {
        const float *sr = nf_cpu_row (&x, n, pl, oy * s + ky) + (size_t) ox * s * vec;
        for (int kx = 0; kx < k; kx++)
          for (int l = 0; l < vec; l++) {
            float v = sr[kx * vec + l];
            if (is_max)
              acc[l] = v > acc[l] ? v : acc[l];
            else
              acc[l] += v;
          }
      }
      for (int l = 0; l < vec; l++) {
        float v = is_max ? acc[l] : acc[l] * inv;
        d[(size_t) ox * vec + l] = relu && v < 0.0f ? 0.0f : v;
      }
    }
  }
  return TRUE;
}

/* ---- convolutions ---------------------------------------------------------------- */

static gboolean
use_direct (const NfOp *op)
{
  return op->type == NF_OP_CONV2D && op->cout <= NF_CPU_DIRECT_MAX_COUT;
}

static gboolean
cpu_prepare (NfBackend *base, NfOpCall *call, GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  const NfOp *op = call->op;
  call->state = NULL;
  if (op->type != NF_OP_CONV2D && op->type != NF_OP_CONV_TRANSPOSE2D)
    return TRUE;
  if (!op->weight) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "cpu: %s %s has no weights bound",
        nf_op_type_name (op->type), op->name ? op->name : "");
    return FALSE;
  }
  if (use_direct (op))
    return nf_direct_conv_prepare (be, call, error);
  if (nf_blocked_conv_supported (op) && !g_getenv ("NF_CPU_DNNL_ONLY"))
    return op->type == NF_OP_CONV2D ? nf_blocked_conv2d_prepare (be, call, error)
        : nf_blocked_deconv_prepare (be, call, error);
  return nf_dnnl_conv_prepare (be, call, error);
}

static void
cpu_release (NfBackend *base, NfOpCall *call)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  g_hash_table_remove (be->hints, call);
  g_hash_table_remove (be->bwd_states, call);
  if (!call->state)
    return;
  switch (*(NfCpuStateKind *) call->state) {
    case NF_CPU_STATE_DIRECT:
      nf_direct_conv_release (be, call);
      break;
    case NF_CPU_STATE_BLOCKED:
      nf_blocked_conv_release (be, call);
      break;
    default:
      nf_dnnl_conv_release (be, call);
      break;
  }
  call->state = NULL;
}

static gboolean
cpu_conv (NfBackend *base, NfOpCall *call, void *const *in, void *out, GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  if (!nf_cpu_check_buf (in[0], call->in[0], "input", error)
      || !nf_cpu_check_buf (out, call->out, "output", error))
    return FALSE;
  if (!call->state) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "cpu: %s %s was not prepared", nf_op_type_name (call->op->type),
        call->op->name ? call->op->name : "");
    return FALSE;
  }
  switch (*(NfCpuStateKind *) call->state) {
    case NF_CPU_STATE_DIRECT:
      return nf_direct_conv_forward (be, call, in[0], out, error);
    case NF_CPU_STATE_BLOCKED:
      return nf_blocked_conv_forward (be, call, in[0], out, error);
    default:
      return nf_dnnl_conv_forward (be, call, in[0], out, error);
  }
}

/* The entries the fp32 and bf16 tables share (they differ in name and creation). */
#define NF_CPU_FAST_ENTRIES \
  .destroy = cpu_destroy, \
  .supports_op = cpu_supports_op, \
  .alloc = cpu_alloc, \
  .free = cpu_free, \
  .upload = cpu_upload, \
  .download = cpu_download, \
  .prepare = cpu_prepare, \
  .release = cpu_release, \
  .forward = { \
    [NF_OP_CONV2D] = cpu_conv, \
    [NF_OP_CONV_TRANSPOSE2D] = cpu_conv, \
    [NF_OP_INSTANCE_NORM] = cpu_instance_norm, \
    [NF_OP_RELU] = cpu_relu, \
    [NF_OP_ADD] = cpu_add, \
    [NF_OP_CONCAT] = cpu_concat, \
    [NF_OP_UPSAMPLE_NEAREST] = cpu_upsample_nearest, \
    [NF_OP_PIXEL_SHUFFLE] = cpu_pixel_shuffle, \
    [NF_OP_TANH_SCALE] = cpu_tanh_scale, \
    [NF_OP_CLAMP] = cpu_clamp, \
    [NF_OP_AVG_POOL2D] = cpu_pool2d, \
    [NF_OP_MAX_POOL2D] = cpu_pool2d, \
    [NF_OP_COND_INSTANCE_NORM] = nf_cond_norm_forward_host, /* cpu_instance_norm */ \
  }, \
  /* nf-dnnl-conv-backward.c (convolutions), nf-cpu-fast-backward.c (the rest) */ \
  .backward = { \
    [NF_OP_CONV2D] = nf_cpu_conv_backward, \
    [NF_OP_CONV_TRANSPOSE2D] = nf_cpu_conv_backward, \
    [NF_OP_INSTANCE_NORM] = nf_cpu_instance_norm_backward, \
    [NF_OP_RELU] = nf_cpu_relu_backward, \
    [NF_OP_ADD] = nf_cpu_add_backward, \
    [NF_OP_CONCAT] = nf_cpu_concat_backward, \
    [NF_OP_UPSAMPLE_NEAREST] = nf_cpu_upsample_nearest_backward, \
    [NF_OP_PIXEL_SHUFFLE] = nf_cpu_pixel_shuffle_backward, \
    [NF_OP_TANH_SCALE] = nf_cpu_tanh_scale_backward, \
    [NF_OP_CLAMP] = nf_cpu_clamp_backward, \
    [NF_OP_AVG_POOL2D] = nf_cpu_pool2d_backward, \
    [NF_OP_MAX_POOL2D] = nf_cpu_pool2d_backward, \
    [NF_OP_COND_INSTANCE_NORM] = nf_cond_norm_backward_host, \
  }, \
  .zero = cpu_zero,

const NfBackendIface nf_backend_cpu = {
  .name = "cpu",
  .create = cpu_create,
  NF_CPU_FAST_ENTRIES
};

/* bf16 convolutions (nf-dnnl-conv.c); only where the CPU computes bf16 natively. */
const NfBackendIface nf_backend_cpu_bf16 = {
  .name = "cpu-bf16",
  .create = cpu_bf16_create,
  NF_CPU_FAST_ENTRIES
};
