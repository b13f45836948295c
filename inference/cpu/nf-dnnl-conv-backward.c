/* nf-dnnl-conv-backward.c — backward passes of conv2d and conv_transpose2d in the fast
 * CPU backend, through oneDNN's backward-data and backward-weights primitives.
 *
 * What it does: at the first backward of a planned call, creates a forward-training
 * primitive descriptor (the hint oneDNN wants), a backward-data and a backward-weights
 * primitive for the call's fixed shapes, in the backend's activation layout (nChw8c for
 * c > 4, nchw otherwise) where oneDNN has fast kernels for it (else in the layout it
 * chooses, with reorders in and out), weights in whatever format oneDNN prefers, and the
 * reorders between that format and the op's own (conv2d oihw, conv_transpose2d iohw). The
 * primitives live until the call is released (the engine re-prepares after every
 * optimiser step; oneDNN's primitive cache makes re-creation cheap).
 * Per backward:
 *   dL/dy      dense copy (ReLU undone where the op had one fused) unless already dense;
 *   dW, db     backward-weights on the padded source the forward pass read (conv2d pads
 *              by giving the source a halo, nf-cpu-fast.c), reordered to the op's
 *              layout and ADDED to the caller's buffers;
 *   dL/dx      backward-data into a dense padded scratch, then folded into the caller's
 *              buffer: the interior is added, the halo is added at the reflected position
 *              (reflection padding) or dropped (zero padding).
 * bf16 (backend "cpu-bf16"): conv2d's backward-data and backward-weights each run with
 * bf16 dL/dy, weights and source and fp32 accumulation where oneDNN has a fast bf16
 * kernel for the shape (jit_bf16:avx512_core_bf16 for every shape the networks use; a
 * shape with only its reference loop stays fp32 for that primitive). The layout adapters
 * convert fp32 -> bf16 on the way in (oneDNN reorders, round to nearest even); dL/dx,
 * dL/dW and dL/db come out in fp32 and accumulate into the caller's fp32 buffers, so the
 * master weights and their gradients stay fp32. Transposed convolutions stay fp32, as in
 * the forward pass. NF_CPU_BF16_FP32_BACKWARD=1 keeps cpu-bf16's backward passes in fp32
 * (tests measure the bf16 backward's own error with it).
 * The descriptors, reorders and scratchpads come from nf-dnnl-conv-desc.h (shared with
 * the forward pass).
 * What it does not: forward (nf-dnnl-conv.c and the direct kernels), groups or dilation.
 */
#include <string.h>

#include "nf-dnnl-conv-desc.h"

/* A tensor in the backend's layout (user) and the one a primitive chose (prim), with
 * the reorder between them; reorder is NULL and prim == user when they agree. */
typedef struct {
  dnnl_memory_t user, prim;
  dnnl_primitive_t reorder;
  gboolean to_user;                     /* direction: prim -> user (an output) */
} Adapter;

typedef struct {
  dnnl_primitive_t bwd_data, bwd_wei;
  Adapter data_dy, data_dx, wei_dy, wei_src;
  dnnl_primitive_t wei_to_prim;         /* op weights -> bwd_data's format */
  dnnl_primitive_t dw_to_user;          /* bwd_wei's diff-weights format -> op layout */
  dnnl_memory_t wei_user, wei_prim, dw_prim, dw_user, db;
  dnnl_memory_t scratch_data, scratch_wei;
  float *dw_plain;                      /* (op weight layout) */
  float *db_plain;                      /* (cout) */
  size_t n_wei;
  int pad;                              /* conv2d: halo of the source */
  gboolean deconv;
  gboolean bf16_data, bf16_wei;         /* cpu-bf16: which primitive runs in bf16 */
  gboolean dy_shared;                   /* both primitives read dL/dy reordered the same */
} DnnlConvBwd;

#define CHECK(expr, what) NF_DNNL_CONV_CHECK (expr, "backward ", what)

static void
adapter_clear (Adapter *a)
{
  if (a->reorder)
    dnnl_primitive_destroy (a->reorder);
  if (a->prim && a->prim != a->user)
    dnnl_memory_destroy (a->prim);
  if (a->user)
    dnnl_memory_destroy (a->user);
  memset (a, 0, sizeof *a);
}

void
nf_dnnl_conv_backward_free (gpointer state)
{
  DnnlConvBwd *d = state;
  if (!d)
    return;
  adapter_clear (&d->data_dy);
  adapter_clear (&d->data_dx);
  adapter_clear (&d->wei_dy);
  adapter_clear (&d->wei_src);
  dnnl_primitive_t prims[] = { d->bwd_data, d->bwd_wei, d->wei_to_prim, d->dw_to_user };
  for (guint i = 0; i < G_N_ELEMENTS (prims); i++)
    if (prims[i])
      dnnl_primitive_destroy (prims[i]);
  dnnl_memory_t mems[] = { d->wei_user, d->wei_prim, d->dw_prim, d->dw_user, d->db,
    d->scratch_data, d->scratch_wei };
  for (guint i = 0; i < G_N_ELEMENTS (mems); i++)
    if (mems[i])
      dnnl_memory_destroy (mems[i]);
  nf_free (d->dw_plain);
  nf_free (d->db_plain);
  g_free (d);
}

static gboolean
reorder_create (NfCpuBackend *be, const NfOp *op, const dnnl_memory_desc_t *from,
    const dnnl_memory_desc_t *to, dnnl_primitive_t *prim, GError **error)
{
  return nf_dnnl_conv_reorder_create (be, op, "backward ", from, to, prim, error);
}

/* user: the backend's layout; prim: what the primitive descriptor chose. */
static gboolean
adapter_init (NfCpuBackend *be, const NfOp *op, Adapter *a, const dnnl_memory_desc_t *user,
    const dnnl_memory_desc_t *prim, gboolean to_user, GError **error)
{
  a->to_user = to_user;
  CHECK (dnnl_memory_create (&a->user, user, be->engine, DNNL_MEMORY_NONE), "tensor memory");
  if (dnnl_memory_desc_equal (user, prim)) {
    a->prim = a->user;
    return TRUE;
  }
  CHECK (dnnl_memory_create (&a->prim, prim, be->engine, DNNL_MEMORY_ALLOCATE),
      "tensor memory");
  return to_user ? reorder_create (be, op, prim, user, &a->reorder, error)
      : reorder_create (be, op, user, prim, &a->reorder, error);
fail:
  return FALSE;
}

/* Points the adapter at the backend's buffer; an input is reordered into the
 * primitive's layout now, an output after the primitive ran (adapter_finish). */
static gboolean
adapter_bind (NfCpuBackend *be, const NfOp *op, Adapter *a, void *data, GError **error)
{
  CHECK (dnnl_memory_set_data_handle (a->user, data), "tensor handle");
  if (a->reorder && !a->to_user) {
    dnnl_exec_arg_t args[2] = { {DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->prim} };
    CHECK (dnnl_primitive_execute (a->reorder, be->stream, 2, args), "layout reorder");
  }
  return TRUE;
fail:
  return FALSE;
}

static gboolean
adapter_finish (NfCpuBackend *be, const NfOp *op, Adapter *a, GError **error)
{
  if (a->reorder && a->to_user) {
    dnnl_exec_arg_t args[2] = { {DNNL_ARG_FROM, a->prim}, {DNNL_ARG_TO, a->user} };
    CHECK (dnnl_primitive_execute (a->reorder, be->stream, 2, args), "layout reorder");
  }
  return TRUE;
fail:
  return FALSE;
}

/* The backward primitive descriptors of one convolution with activations and weights of
 * type dt (f32; or bf16, with diff_src, diff_weights and diff_bias in f32), every layout
 * left to oneDNN: pds[0] the forward-training hint (kept until the primitives exist),
 * pds[1] backward-data, pds[2] backward-weights. */
static gboolean
bwd_pds (NfCpuBackend *be, const NfOp *op, const NfDnnlConvGeom *g, dnnl_data_type_t dt,
    dnnl_primitive_attr_t attr, dnnl_primitive_desc_t pds[3], GError **error)
{
  dnnl_memory_desc_t src_any, dst_any, wei_any, dsrc_any, dwei_any, bias_md;
  const char *what = NULL;
  const dnnl_format_tag_t any = dnnl_format_tag_any;
  CHECK (nf_dnnl_conv_md (g, NF_DNNL_SRC, dt, any, &src_any), "source descriptor");
  CHECK (nf_dnnl_conv_md (g, NF_DNNL_SRC, dnnl_f32, any, &dsrc_any),
      "source-gradient descriptor");
  CHECK (nf_dnnl_conv_md (g, NF_DNNL_DST, dt, any, &dst_any), "destination descriptor");
  CHECK (nf_dnnl_conv_md (g, NF_DNNL_WEI, dt, any, &wei_any), "weights descriptor");
  CHECK (nf_dnnl_conv_md (g, NF_DNNL_WEI, dnnl_f32, any, &dwei_any),
      "weight-gradient descriptor");
  CHECK (nf_dnnl_conv_md (g, NF_DNNL_BIAS, dnnl_f32, dnnl_x, &bias_md), "bias descriptor");

  /* Activations in "any" layout: oneDNN has fast kernels for blocked layouts only
   * (with a 3-channel nchw gradient it falls back to a reference loop 100x slower);
   * adapters reorder between its choice and ours where they differ. */
  const dnnl_memory_desc_t *bias = op->bias ? &bias_md : NULL;
  CHECK (nf_dnnl_conv_pd (be->engine, g, NF_DNNL_FWD_TRAINING, &src_any, &wei_any, bias,
          &dst_any, attr, NULL, &pds[0], &what), what);
  CHECK (nf_dnnl_conv_pd (be->engine, g, NF_DNNL_BWD_DATA, &dsrc_any, &wei_any, NULL,
          &dst_any, attr, pds[0], &pds[1], &what), what);
  CHECK (nf_dnnl_conv_pd (be->engine, g, NF_DNNL_BWD_WEIGHTS, &src_any, &dwei_any, bias,
          &dst_any, attr, pds[0], &pds[2], &what), what);
  return TRUE;
fail:
  return FALSE;
}

static void
pds_destroy (dnnl_primitive_desc_t pds[3])
{
  for (int i = 0; i < 3; i++)
    if (pds[i])
      dnnl_primitive_desc_destroy (pds[i]);
}

static DnnlConvBwd *
bwd_create (NfCpuBackend *be, NfOpCall *call, GError **error)
{
  const NfOp *op = call->op;
  NfShape xs = call->in[0], ys = call->out;
  DnnlConvBwd *d = g_new0 (DnnlConvBwd, 1);
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t f32[3] = { NULL }, b16[3] = { NULL };
  NfDnnlConvGeom g;
  nf_dnnl_conv_geom (op, xs, ys, &g);
  d->deconv = g.deconv;
  d->pad = g.pad;
  d->n_wei = (size_t) op->cout * op->cin * op->k * op->k;

  dnnl_memory_desc_t src_md, dst_md, user_wei_md, bias_md;
  CHECK (nf_dnnl_conv_md (&g, NF_DNNL_SRC, dnnl_f32, nf_cpu_dnnl_tag (xs.c), &src_md),
      "source descriptor");
  CHECK (nf_dnnl_conv_md (&g, NF_DNNL_DST, dnnl_f32, nf_cpu_dnnl_tag (ys.c), &dst_md),
      "destination descriptor");
  CHECK (nf_dnnl_conv_md (&g, NF_DNNL_WEI, dnnl_f32, nf_dnnl_conv_user_wei_tag (&g),
          &user_wei_md), "weights descriptor");
  CHECK (nf_dnnl_conv_md (&g, NF_DNNL_BIAS, dnnl_f32, dnnl_x, &bias_md), "bias descriptor");
  CHECK (dnnl_primitive_attr_create (&attr), "attribute creation");
  CHECK (dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user),
      "scratchpad mode");

  /* cpu-bf16: each of the two primitives in bf16 where oneDNN has a fast bf16 kernel for
   * this shape, else in fp32 (its bf16 reference loop is ~100x slower). */
  const char *idata = NULL, *iwei = NULL;
  if (be->bf16 && !d->deconv && !g_getenv ("NF_CPU_BF16_FP32_BACKWARD")) {
    GError *bf16_error = NULL;
    if (bwd_pds (be, op, &g, dnnl_bf16, attr, b16, &bf16_error)) {
      d->bf16_data = nf_dnnl_impl_is_fast (b16[1], &idata);
      d->bf16_wei = nf_dnnl_impl_is_fast (b16[2], &iwei);
    } else {
      g_debug ("cpu-bf16: no bf16 backward for %s %s: %s", nf_op_type_name (op->type),
          op->name ? op->name : "", bf16_error->message);
      g_clear_error (&bf16_error);
    }
    if (!d->bf16_data || !d->bf16_wei)
      g_debug ("cpu-bf16: backward %s %s: oneDNN has data %s, weights %s in bf16; "
          "fp32 for %s", nf_op_type_name (op->type), op->name ? op->name : "",
          idata ? idata : "-", iwei ? iwei : "-", !d->bf16_data && !d->bf16_wei ? "both"
          : !d->bf16_data ? "data" : "weights");
  }
  if ((!d->bf16_data || !d->bf16_wei)
      && !bwd_pds (be, op, &g, dnnl_f32, attr, f32, error))
    goto fail;
  dnnl_primitive_desc_t dpd = d->bf16_data ? b16[1] : f32[1];
  dnnl_primitive_desc_t wpd = d->bf16_wei ? b16[2] : f32[2];
  nf_dnnl_impl_is_fast (dpd, &idata);
  nf_dnnl_impl_is_fast (wpd, &iwei);
  g_debug ("cpu: backward %s %s %dx%dx%dx%d -> %dx%dx%dx%d: data %s%s, weights %s%s",
      nf_op_type_name (op->type), op->name ? op->name : "", xs.n, xs.c, xs.h, xs.w,
      ys.n, ys.c, ys.h, ys.w, idata ? idata : "?", d->bf16_data ? " (bf16)" : "",
      iwei ? iwei : "?", d->bf16_wei ? " (bf16)" : "");
  CHECK (dnnl_primitive_create (&d->bwd_data, dpd), "backward-data primitive");
  CHECK (dnnl_primitive_create (&d->bwd_wei, wpd), "backward-weights primitive");

  /* weights for backward-data (converted to bf16 by the reorder where it runs in bf16),
   * and diff-weights (always fp32) back to the op's layout */
  const dnnl_memory_desc_t *q_wei = dnnl_primitive_desc_query_md (dpd, dnnl_query_weights_md, 0);
  const dnnl_memory_desc_t *q_dw = dnnl_primitive_desc_query_md (wpd,
      dnnl_query_diff_weights_md, 0);
  CHECK (dnnl_memory_create (&d->wei_user, &user_wei_md, be->engine, DNNL_MEMORY_NONE),
      "weights memory");
  CHECK (dnnl_memory_create (&d->wei_prim, q_wei, be->engine, DNNL_MEMORY_ALLOCATE),
      "weights memory");
  CHECK (dnnl_memory_create (&d->dw_prim, q_dw, be->engine, DNNL_MEMORY_ALLOCATE),
      "weight-gradient memory");
  d->dw_plain = nf_alloc_floats (d->n_wei);
  d->db_plain = nf_alloc_floats (op->cout);
  if (!d->dw_plain || !d->db_plain) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "cpu: out of memory");
    goto fail;
  }
  CHECK (dnnl_memory_create (&d->dw_user, &user_wei_md, be->engine, d->dw_plain),
      "weight-gradient memory");
  if (op->bias)
    CHECK (dnnl_memory_create (&d->db, &bias_md, be->engine, d->db_plain), "bias memory");
  if (!reorder_create (be, op, &user_wei_md, q_wei, &d->wei_to_prim, error)
      || !reorder_create (be, op, q_dw, &user_wei_md, &d->dw_to_user, error))
    goto fail;
  /* (in bf16 the input adapters also convert fp32 -> bf16) */
  if (!adapter_init (be, op, &d->data_dy, &dst_md,
          dnnl_primitive_desc_query_md (dpd, dnnl_query_diff_dst_md, 0), FALSE, error)
      || !adapter_init (be, op, &d->data_dx, &src_md,
          dnnl_primitive_desc_query_md (dpd, dnnl_query_diff_src_md, 0), TRUE, error)
      || !adapter_init (be, op, &d->wei_dy, &dst_md,
          dnnl_primitive_desc_query_md (wpd, dnnl_query_diff_dst_md, 0), FALSE, error)
      || !adapter_init (be, op, &d->wei_src, &src_md,
          dnnl_primitive_desc_query_md (wpd, dnnl_query_src_md, 0), FALSE, error))
    goto fail;
  d->dy_shared = d->data_dy.reorder && d->wei_dy.reorder
      && dnnl_memory_desc_equal (dnnl_primitive_desc_query_md (dpd, dnnl_query_diff_dst_md, 0),
          dnnl_primitive_desc_query_md (wpd, dnnl_query_diff_dst_md, 0));
  if (!nf_dnnl_conv_scratch_memory (be, op, "backward ", dpd, &d->scratch_data, error)
      || !nf_dnnl_conv_scratch_memory (be, op, "backward ", wpd, &d->scratch_wei, error))
    goto fail;

  pds_destroy (f32);
  pds_destroy (b16);
  dnnl_primitive_attr_destroy (attr);
  return d;

fail:
  pds_destroy (f32);
  pds_destroy (b16);
  if (attr)
    dnnl_primitive_attr_destroy (attr);
  nf_dnnl_conv_backward_free (d);
  return NULL;
}


/* dL/dy as a dense tensor: the buffer itself when it has no halo and no ReLU was fused,
 * else a copy in the backend's scratch with the ReLU undone (zero where y <= 0). */
static float *
dense_dout (NfCpuBackend *be, const NfOp *op, NfCpuBuf *y, NfCpuBuf *dy, GError **error)
{
  if (dy->halo == 0 && !op->fuse_relu)
    return dy->data;
  float *s = nf_cpu_scratch (&be->bwd_dy, &be->bwd_dy_n, nf_cpu_numel (dy->s, 0), error);
  if (!s)
    return NULL;
  NfCpuView g = nf_cpu_view (dy), yv = nf_cpu_view (y), d = nf_cpu_view_of (s, dy->s, 0);
  size_t len = (size_t) g.w * g.vec;
  int rows = g.n * g.planes * g.h;
  gboolean relu = op->fuse_relu;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * len))
  for (int r = 0; r < rows; r++) {
    int yy = r % g.h, t = r / g.h;
    int n = t / g.planes, pl = t % g.planes;
    const float *gr = nf_cpu_row (&g, n, pl, yy), *yr = nf_cpu_row (&yv, n, pl, yy);
    float *dr = nf_cpu_row (&d, n, pl, yy);
    for (size_t i = 0; i < len; i++)
      dr[i] = (relu && yr[i] <= 0.0f) ? 0.0f : gr[i];
  }
  return s;
}

/* dx += the padded gradient s (halo p): interior added in place, halo added at the
 * reflected position (reflect) or dropped (zero padding). One task per (image, channel
 * block): reflected rows land in the same plane. */
static void
fold_padded_grad (NfCpuBuf *dxb, const float *s, int p, NfPadMode mode)
{
  NfCpuView dx = nf_cpu_view (dxb), sv = nf_cpu_view_of ((float *) s, dxb->s, p);
  int vec = dx.vec, h = dx.h, w = dx.w, np = dx.n * dx.planes;
  gboolean reflect = mode == NF_PAD_REFLECT && p > 0;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) np * h * w * vec))
  for (int t = 0; t < np; t++) {
    int n = t / dx.planes, pl = t % dx.planes;
    for (int sy = (reflect ? -p : 0); sy < (reflect ? h + p : h); sy++) {
      const float *sr = nf_cpu_row (&sv, n, pl, sy);
      float *dr = nf_cpu_row (&dx, n, pl, nf_cpu_reflect (sy, h));
      for (size_t i = 0; i < (size_t) w * vec; i++)
        dr[i] += sr[i];
      if (!reflect)
        continue;
      for (int j = 1; j <= p; j++)
        for (int l = 0; l < vec; l++) {
          dr[(size_t) j * vec + l] += sr[-(ptrdiff_t) j * vec + l];
          dr[(size_t) (w - 1 - j) * vec + l] += sr[(size_t) (w - 1 + j) * vec + l];
        }
    }
    if (pl == dx.planes - 1)
      for (int yy = 0; yy < h; yy++)
        nf_cpu_zero_pad_lanes_row (&dx, n, yy);
  }
}

gboolean
nf_cpu_conv_backward (NfBackend *base, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  NfCpuBackend *be = (NfCpuBackend *) base;
  const NfOp *op = call->op;
  NfCpuBuf *x = in[0], *y = (NfCpuBuf *) out, *dy = (NfCpuBuf *) dout;
  NfCpuBuf *dx = din ? din[0] : NULL;
  float *dw = dweight, *db = op->bias ? dbias : NULL;
  if (!nf_cpu_check_buf (x, call->in[0], "input", error)
      || !nf_cpu_check_buf (y, call->out, "output", error)
      || !nf_cpu_check_buf (dy, call->out, "output gradient", error)
      || (dx && !nf_cpu_check_buf (dx, call->in[0], "input gradient", error)))
    return FALSE;
  if (!op->weight) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "cpu: %s %s has no weights bound",
        nf_op_type_name (op->type), op->name ? op->name : "");
    return FALSE;
  }
  if (!dx && !dw && !db)
    return TRUE;
  DnnlConvBwd *d = g_hash_table_lookup (be->bwd_states, call);
  if (!d) {
    d = bwd_create (be, call, error);
    if (!d)
      return FALSE;
    g_hash_table_insert (be->bwd_states, call, d);
  }
  float *g = dense_dout (be, op, y, dy, error);
  if (!g)
    return FALSE;
  gboolean dy_done = FALSE;             /* d->wei_dy.prim holds g in its layout */

  if (dw || db) {
    float *src = d->deconv ? nf_cpu_padded_input_quiet (be, x, 0, op->pad_mode, error)
        : nf_cpu_padded_input (be, x, d->pad, op->pad_mode, error);
    if (!src)
      return FALSE;
    if (!adapter_bind (be, op, &d->wei_src, src, error)
        || !adapter_bind (be, op, &d->wei_dy, g, error))
      return FALSE;
    dnnl_exec_arg_t args[5];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SRC, d->wei_src.prim };
    args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_DIFF_DST, d->wei_dy.prim };
    args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_DIFF_WEIGHTS, d->dw_prim };
    if (d->db)
      args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_DIFF_BIAS, d->db };
    if (d->scratch_wei) {
      CHECK (dnnl_memory_set_data_handle (d->scratch_wei, be->dnnl_scratch), "scratchpad");
      args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SCRATCHPAD, d->scratch_wei };
    }
    CHECK (dnnl_primitive_execute (d->bwd_wei, be->stream, n, args), "weights execution");
    dy_done = d->dy_shared;
    dnnl_exec_arg_t rargs[2] = { {DNNL_ARG_FROM, d->dw_prim}, {DNNL_ARG_TO, d->dw_user} };
    CHECK (dnnl_primitive_execute (d->dw_to_user, be->stream, 2, rargs), "weights reorder");
    CHECK (dnnl_stream_wait (be->stream), "weights execution");
    if (dw)
      for (size_t i = 0; i < d->n_wei; i++)
        dw[i] += d->dw_plain[i];
    if (db)
      for (int i = 0; i < op->cout; i++)
        db[i] += d->db_plain[i];
  }

  if (dx) {
    float *s = nf_cpu_scratch (&be->bwd_dx, &be->bwd_dx_n, nf_cpu_numel (x->s, d->pad), error);
    if (!s)
      return FALSE;
    CHECK (dnnl_memory_set_data_handle (d->wei_user, (void *) op->weight), "weights handle");
    dnnl_exec_arg_t rargs[2] = { {DNNL_ARG_FROM, d->wei_user}, {DNNL_ARG_TO, d->wei_prim} };
    CHECK (dnnl_primitive_execute (d->wei_to_prim, be->stream, 2, rargs), "weights reorder");
    /* dL/dy as backward-weights read it, when that is the layout wanted here too */
    if ((!dy_done && !adapter_bind (be, op, &d->data_dy, g, error))
        || !adapter_bind (be, op, &d->data_dx, s, error))
      return FALSE;
    dnnl_exec_arg_t args[4];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_DIFF_DST, dy_done ? d->wei_dy.prim
          : d->data_dy.prim };
    args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_WEIGHTS, d->wei_prim };
    args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_DIFF_SRC, d->data_dx.prim };
    if (d->scratch_data) {
      CHECK (dnnl_memory_set_data_handle (d->scratch_data, be->dnnl_scratch), "scratchpad");
      args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SCRATCHPAD, d->scratch_data };
    }
    CHECK (dnnl_primitive_execute (d->bwd_data, be->stream, n, args), "data execution");
    if (!adapter_finish (be, op, &d->data_dx, error))
      return FALSE;
    CHECK (dnnl_stream_wait (be->stream), "data execution");
    fold_padded_grad (dx, s, d->pad, op->pad_mode);
  }
  return TRUE;

fail:
  return FALSE;
}
