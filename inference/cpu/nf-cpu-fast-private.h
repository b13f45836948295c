/* nf-cpu-fast-private.h — what the files of the fast CPU backend "cpu" share.
 *
 * Activation layout (chosen by measurement, see nf-cpu-fast.c):
 *   c > 4   oneDNN's blocked nChw8c: [n][c/8][y][x][8], channels padded to a multiple
 *           of 8 with zeros (every kernel writes zeros into the padded lanes);
 *   c <= 4  plain NCHW (the network's 3-channel input and output; oneDNN's first-layer
 *           convolution reads nchw directly).
 * Every buffer has room for a halo of up to NF_CPU_MAX_HALO pixels around each plane.
 * The halo a stored value actually has is recorded in the buffer at write time: the
 * interior starts at (halo, halo) of a (h + 2 halo) x (w + 2 halo) plane, planes and
 * images packed densely. A convolution with padding p reads a source with a halo of
 * exactly p (filled in place with the reflection, or zeros) and then convolves with
 * padding 0, so reflection padding costs no extra pass over the tensor. Producers learn
 * which halo their consumer wants from a hint table keyed by the writer (the NfOpCall,
 * or the buffer for uploads): the consumer records it on the first frame, the producer
 * honours it from the second frame on. A mismatch is never wrong, only slower (the
 * consumer copies into a padded scratch buffer).
 *
 * Not thread-safe: one backend runs one op at a time (shared scratch buffers).
 * Not part of the library's public API.
 */
#pragma once

#include <oneapi/dnnl/dnnl.h>

#include "nf-backend.h"
#include "nf-error.h"

G_BEGIN_DECLS

#define NF_CPU_MAX_HALO 4

typedef struct {
  float *data;                  /* 64-byte aligned */
  size_t capacity;              /* floats */
  NfShape s;
  int vec;                      /* 8: nChw8c; 1: nchw */
  int planes;                   /* per image: ceil (c / 8) blocks, or c planes */
  int halo;                     /* halo of the value stored now */
  const void *writer;           /* who wrote it (hint key) */
} NfCpuBuf;

typedef struct {
  NfBackend parent;
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  GHashTable *hints;            /* writer key -> GINT_TO_POINTER (halo + 1) */
  float *pad_scratch;           /* padded copies of conv inputs (allocated when needed) */
  size_t pad_scratch_n;         /* floats */
  int pad_idle;                 /* convolutions since the scratch was last needed */
  void *dnnl_scratch;           /* oneDNN's user scratchpad, shared by all primitives */
  size_t dnnl_scratch_bytes;
  gboolean avx2;                /* this CPU has AVX2 + FMA */
  /* "cpu-bf16": oneDNN convolutions with bf16 source and weights, fp32 accumulation and
   * output (nf-dnnl-conv.c); everything else stays fp32 */
  gboolean bf16;
  guint16 *bf16_src;            /* the convolution's source as bf16 nChw16c */
  size_t bf16_src_n;            /* floats' worth of room (2 bf16 each) */
  float *bf16_dst;              /* its fp32 nChw16c output before the nChw8c shuffle */
  size_t bf16_dst_n;
  /* training (backward passes) */
  GHashTable *bwd_states;       /* NfOpCall* -> oneDNN backward primitives (lazy) */
  float *bwd_dy, *bwd_dx;       /* dense copies of dL/dy, padded dL/dx of convolutions */
  size_t bwd_dy_n, bwd_dx_n;    /* floats */
} NfCpuBackend;

/* ---- layout ---------------------------------------------------------------- */

static inline int
nf_cpu_vec (NfShape s)
{
  return s.c > 4 ? 8 : 1;
}

/* The oneDNN memory format of an activation with c channels (the layout above). */
static inline dnnl_format_tag_t
nf_cpu_dnnl_tag (int c)
{
  return c > 4 ? dnnl_nChw8c : dnnl_nchw;
}

static inline int
nf_cpu_planes (NfShape s)
{
  return s.c > 4 ? (s.c + 7) / 8 : s.c;
}

/* Floats of a buffer of shape s stored with halo h. */
static inline size_t
nf_cpu_numel (NfShape s, int h)
{
  return (size_t) s.n * nf_cpu_planes (s) * (s.h + 2 * h) * (s.w + 2 * h) * nf_cpu_vec (s);
}

/* A strided view of one stored value: rows of w*vec contiguous floats. */
typedef struct {
  float *base;                  /* (n=0, plane=0, y=0, x=0) of the interior */
  int n, c, h, w, vec, planes, halo;
  size_t row;                   /* floats between rows */
  size_t plane;                 /* floats between planes */
} NfCpuView;

static inline NfCpuView
nf_cpu_view_of (float *data, NfShape s, int halo)
{
  NfCpuView v;
  v.n = s.n;
  v.c = s.c;
  v.h = s.h;
  v.w = s.w;
  v.vec = nf_cpu_vec (s);
  v.planes = nf_cpu_planes (s);
  v.halo = halo;
  v.row = (size_t) (s.w + 2 * halo) * v.vec;
  v.plane = v.row * (s.h + 2 * halo);
  v.base = data + v.row * halo + (size_t) halo * v.vec;
  return v;
}

static inline NfCpuView
nf_cpu_view (const NfCpuBuf *b)
{
  return nf_cpu_view_of (b->data, b->s, b->halo);
}

/* Start of row y of plane p of image n (y may be in the halo: -halo..h+halo-1). */
static inline float *
nf_cpu_row (const NfCpuView *v, int n, int p, int y)
{
  return v->base + ((size_t) n * v->planes + p) * v->plane + (ptrdiff_t) y * (ptrdiff_t) v->row;
}

/* Address of channel c of pixel (y, x) of image n. */
static inline float *
nf_cpu_at (const NfCpuView *v, int n, int c, int y, int x)
{
  if (v->vec == 8)
    return nf_cpu_row (v, n, c >> 3, y) + (size_t) x * 8 + (c & 7);
  return nf_cpu_row (v, n, c, y) + x;
}

/* Whether a loop over this many floats of work is worth a parallel region (thread
 * wake-up costs microseconds, or a whole time slice on a busy machine). */
static inline gboolean
nf_cpu_par (size_t floats)
{
  return floats >= (1 << 15);
}

/* ---- shared helpers (nf-cpu-fast.c) ------------------------------------------ */

/* Checks that a buffer holds the shape an op expects. */
gboolean nf_cpu_check_buf (const NfCpuBuf *b, NfShape s, const char *what, GError **error);
/* Marks out as written by writer with the halo its consumer asked for; returns it. */
NfCpuView nf_cpu_begin_write (NfCpuBackend *be, NfCpuBuf *out, const void *writer);
/* Writes with a given halo (oneDNN outputs are dense). */
NfCpuView nf_cpu_begin_write_halo (NfCpuBuf *out, const void *writer, int halo);
/* Records that whoever writes the value now in x should leave a halo of p. */
void nf_cpu_want_halo (NfCpuBackend *be, const NfCpuBuf *x, int p);
/* Grows oneDNN's shared scratchpad to at least bytes (at prepare time). */
gboolean nf_cpu_reserve_dnnl_scratch (NfCpuBackend *be, size_t bytes, GError **error);
/* The input of a convolution with padding p: x itself when it has a halo of exactly p
 * (the halo is filled in place), else a padded copy in the shared scratch (grown on
 * demand, released after a while without use: once the halos have settled, style
 * networks need it on the first frame only). The result is a dense (h+2p) x (w+2p)
 * tensor in x's layout. NULL + error when out of memory. */
float *nf_cpu_padded_input (NfCpuBackend *be, NfCpuBuf *x, int p, NfPadMode mode,
    GError **error);

/* The same without recording a halo wish (backward passes read values with a halo the
 * forward consumer chose; they must not change it). */
float *nf_cpu_padded_input_quiet (NfCpuBackend *be, NfCpuBuf *x, int p, NfPadMode mode,
    GError **error);
/* Grows *buf (holding *n floats) to at least need floats; NULL + error when out of
 * memory. */
float *nf_cpu_scratch (float **buf, size_t *n, size_t need, GError **error);
/* Zeros the padded channel lanes of row y of image n (nChw8c with c % 8 != 0). */
void nf_cpu_zero_pad_lanes_row (const NfCpuView *v, int n, int y);

/* ---- forward ops that are not convolutions ---------------------------------------- */

/* The backend table's forward entries (nf-cpu-fast.c); shapes are call->in[j] and
 * call->out. */
#define NF_CPU_FWD(name) gboolean name (NfBackend *be, NfOpCall *call, void *const *in, \
    void *out, GError **error)
/* nf-cpu-fast-ops.c */
NF_CPU_FWD (nf_cpu_relu);               /* x (N, C, H, W) -> y (N, C, H, W) */
NF_CPU_FWD (nf_cpu_add);                /* a, b (N, C, H, W) -> y (N, C, H, W) */
NF_CPU_FWD (nf_cpu_tanh_scale);         /* x (N, C, H, W) -> y (N, C, H, W) */
NF_CPU_FWD (nf_cpu_clamp);              /* x (N, C, H, W) -> y (N, C, H, W) */
NF_CPU_FWD (nf_cpu_concat);             /* x_i (N, C_i, H, W) -> y (N, sum C_i, H, W) */
NF_CPU_FWD (nf_cpu_upsample_nearest);   /* x (N, C, H, W) -> y (N, C, H*f, W*f) */
NF_CPU_FWD (nf_cpu_pixel_shuffle);      /* x (N, C*r*r, H, W) -> y (N, C, H*r, W*r) */
NF_CPU_FWD (nf_cpu_pool2d);             /* x (N, C, H, W) -> y (N, C, Ho, Wo), k x k
                                         * windows at stride s, no padding */
/* nf-cpu-fast-norm.c */
NF_CPU_FWD (nf_cpu_instance_norm);      /* x (N, C, H, W) -> y (N, C, H, W) */

/* ---- bf16 (nf-cpu-bf16.c) ------------------------------------------------------ */

/* Whether oneDNN runs bf16 natively here (avx512_core_bf16 or AMX; NF_CPU_NO_BF16=1 says
 * no, for tests of the fallback). */
gboolean nf_cpu_has_native_bf16 (void);
/* oneDNN's effective ISA, e.g. "avx512_core_bf16". */
const char *nf_cpu_isa_name (void);
/* Whether bf16 convolutions run on channels-last (nhwc) activations rather than
 * nChw16c: where oneDNN has AMX (only nhwc gets its AMX kernels); NF_CPU_BF16_LAYOUT=
 * blocked or channels-last overrides (tests run both). */
gboolean nf_cpu_bf16_channels_last (void);
/* Dense fp32 nChw8c (n, c, h, w) -> dense bf16 nChw16c (lanes past c zero) or, with
 * channels_last, nhwc (n, h, w, c). */
void nf_cpu_bf16_pack (const float *src, int n, int c, int h, int w, gboolean channels_last,
    guint16 *dst);
/* Dense fp32 nChw16c, or nhwc with channels_last -> dense fp32 nChw8c (halo 0). */
void nf_cpu_bf16_unpack (const float *src, int n, int c, int h, int w,
    gboolean channels_last, float *dst);

/* PyTorch ReflectionPad2d index (edge not repeated), for -n < i < 2n - 1. */
static inline int
nf_cpu_reflect (int i, int n)
{
  if (i < 0)
    return -i;
  if (i >= n)
    return 2 * (n - 1) - i;
  return i;
}

/* ---- backward passes (training) -------------------------------------------------- */

/* nf-dnnl-conv-backward.c: conv2d and conv_transpose2d through oneDNN backward-data and
 * backward-weights primitives, created at the first backward of a planned call. */
gboolean nf_cpu_conv_backward (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error);
void nf_dnnl_conv_backward_free (gpointer state);

/* nf-cpu-fast-backward.c: the other ops, OpenMP loops on the blocked layout. */
#define NF_CPU_BWD(name) gboolean name (NfBackend *be, NfOpCall *call, void *const *in, \
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias, \
    GError **error)
NF_CPU_BWD (nf_cpu_instance_norm_backward);
NF_CPU_BWD (nf_cpu_relu_backward);
NF_CPU_BWD (nf_cpu_add_backward);
NF_CPU_BWD (nf_cpu_concat_backward);
NF_CPU_BWD (nf_cpu_upsample_nearest_backward);
NF_CPU_BWD (nf_cpu_pixel_shuffle_backward);
NF_CPU_BWD (nf_cpu_tanh_scale_backward);
NF_CPU_BWD (nf_cpu_clamp_backward);
NF_CPU_BWD (nf_cpu_pool2d_backward);

/* ---- convolutions --------------------------------------------------------------- */

/* nf-dnnl-conv.c: conv2d and conv_transpose2d through oneDNN. */
gboolean nf_dnnl_conv_prepare (NfCpuBackend *be, NfOpCall *call, GError **error);
gboolean nf_dnnl_conv_forward (NfCpuBackend *be, NfOpCall *call, NfCpuBuf *x, NfCpuBuf *y,
    GError **error);
void nf_dnnl_conv_release (NfCpuBackend *be, NfOpCall *call);

/* nf-cpu-direct-conv.c: direct conv2d for few output channels (cout <= 4). */
#define NF_CPU_DIRECT_MAX_COUT 4
gboolean nf_direct_conv_prepare (NfCpuBackend *be, NfOpCall *call, GError **error);
gboolean nf_direct_conv_forward (NfCpuBackend *be, NfOpCall *call, NfCpuBuf *x, NfCpuBuf *y,
    GError **error);
void nf_direct_conv_release (NfCpuBackend *be, NfOpCall *call);

/* nf-cpu-blocked-conv.c: direct convolution into nChw8c outputs: conv_transpose2d as
 * stride-1 phases, and conv2d from sources of <= 4 channels (the first layer). */
gboolean nf_blocked_conv_supported (const NfOp *op);
gboolean nf_blocked_deconv_prepare (NfCpuBackend *be, NfOpCall *call, GError **error);
gboolean nf_blocked_conv2d_prepare (NfCpuBackend *be, NfOpCall *call, GError **error);
gboolean nf_blocked_conv_forward (NfCpuBackend *be, NfOpCall *call, NfCpuBuf *x, NfCpuBuf *y,
    GError **error);
void nf_blocked_conv_release (NfCpuBackend *be, NfOpCall *call);

/* What kind of state a prepared op holds (first field of every state struct). */
typedef enum {
  NF_CPU_STATE_DNNL = 1,
  NF_CPU_STATE_DIRECT,
  NF_CPU_STATE_BLOCKED,
} NfCpuStateKind;

G_END_DECLS
