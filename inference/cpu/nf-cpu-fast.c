/* nf-cpu-fast.c — the fast CPU backend "cpu": its tables, buffers, halos, transfers and
 * the choice of convolution.
 *
 * What it does: the backend tables; creation (oneDNN engine and stream, AVX2 detection)
 * and destruction; activations in nChw8c (channels > 4) or NCHW (channels <= 4, the
 * network's image ends) with a per-value halo that lets the next convolution pad in place
 * (see nf-cpu-fast-private.h): allocation, the halo hints, filling halos (reflection or
 * zeros), padded copies and the shared scratch buffers; upload/download to and from host
 * NCHW; zeroed gradient buffers. Convolutions: nf-dnnl-conv.c (oneDNN, most conv2d),
 * nf-cpu-direct-conv.c (conv2d to <= 4 channels), nf-cpu-blocked-conv.c
 * (conv_transpose2d, and the first conv2d when it has <= 16 outputs); this file picks one
 * at prepare.
 * Why nChw8c: oneDNN's AVX2 convolutions run fastest on it (nhwc and nchw were 1.6-2x
 * slower on the 3x3 convolutions that dominate every network here).
 * Environment (for tests and comparisons): NF_CPU_NO_AVX2=1 runs the portable kernels;
 * NF_CPU_DNNL_ONLY=1 sends every convolution with > 4 outputs to oneDNN.
 * The bf16 variant "cpu-bf16" is the same table with bf16 convolutions (nf-dnnl-conv.c).
 * What it does not: the other ops' arithmetic: nf-cpu-fast-ops.c (relu, add, tanh_scale,
 * clamp, concat, nearest upsampling, pixel shuffle, pooling) and nf-cpu-fast-norm.c
 * (instance norm; cond_instance_norm through nf-cond-norm.c); backward passes
 * (nf-dnnl-conv-backward.c for convolutions, nf-cpu-fast-backward.c for the rest);
 * batch_norm (folded at load); running two ops of one backend at the same time.
 */
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
  /* convolutions: cpu_conv; the rest: nf-cpu-fast-ops.c, nf-cpu-fast-norm.c */ \
  .forward = { \
    [NF_OP_CONV2D] = cpu_conv, \
    [NF_OP_CONV_TRANSPOSE2D] = cpu_conv, \
    [NF_OP_INSTANCE_NORM] = nf_cpu_instance_norm, \
    [NF_OP_RELU] = nf_cpu_relu, \
    [NF_OP_ADD] = nf_cpu_add, \
    [NF_OP_CONCAT] = nf_cpu_concat, \
    [NF_OP_UPSAMPLE_NEAREST] = nf_cpu_upsample_nearest, \
    [NF_OP_PIXEL_SHUFFLE] = nf_cpu_pixel_shuffle, \
    [NF_OP_TANH_SCALE] = nf_cpu_tanh_scale, \
    [NF_OP_CLAMP] = nf_cpu_clamp, \
    [NF_OP_AVG_POOL2D] = nf_cpu_pool2d, \
    [NF_OP_MAX_POOL2D] = nf_cpu_pool2d, \
    [NF_OP_COND_INSTANCE_NORM] = nf_cond_norm_forward_host, /* nf_cpu_instance_norm */ \
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
  .zero = cpu_zero, \
  .fuses_sr_tail = TRUE,

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
