/* nf-dnnl-conv.c — conv2d and conv_transpose2d of the fast CPU backend through oneDNN.
 *
 * What it does: at prepare, for the fixed shapes of one NfOpCall, creates one oneDNN
 * primitive (convolution or deconvolution, forward inference, bias, ReLU post-op when
 * the engine fused it, user-managed scratchpad shared by all primitives of the
 * backend), reorders the weights once into the format the primitive prefers, and
 * reserves the shared padding scratch. At forward it only points the memory objects at
 * the buffers and executes.
 * conv2d pads itself: the source is a (h+2p) x (w+2p) tensor (the input's own halo
 * filled in place, or a padded copy; nf-cpu-fast.c) convolved with padding 0, so
 * reflection and zero padding take the same path.
 * Weights: conv2d (cout, cin, k, k) = oihw; conv_transpose2d (cin, cout, k, k) = oneDNN
 * deconvolution weights in tag iohw; output_padding becomes a smaller right padding.
 * bf16 (backend "cpu-bf16"): a conv2d between blocked activations (more than 4 channels
 * in and out) runs with bf16 source and weights and fp32 accumulation, bias and output,
 * in oneDNN's 16-lane blocks: the source is packed to bf16 nChw16c and the fp32 nChw16c
 * output unpacked to nChw8c (nf-cpu-bf16.c). Where oneDNN offers only its reference
 * implementation for a shape, that convolution stays fp32 (the reference is ~100x
 * slower). Transposed convolutions stay fp32.
 * What it does not: convolutions with at most 4 output channels (nf-cpu-direct-conv.c
 * is faster there), dilation or groups (no op uses them).
 */
#include <string.h>

#include <oneapi/dnnl/dnnl_debug.h>

#include "nf-cpu-fast-private.h"

typedef struct {
  NfCpuStateKind kind;          /* NF_CPU_STATE_DNNL */
  dnnl_primitive_t prim;
  dnnl_memory_t src, wei, bias, dst, scratch;
  float *bias_copy;
  int pad;                      /* conv2d: the halo the source must have */
  gboolean bf16;                /* bf16 source/weights in nChw16c (see above) */
  NfPadMode mode;
  gboolean deconv;
} DnnlConv;

#define CHECK(expr, what) G_STMT_START { \
    dnnl_status_t st_ = (expr); \
    if (st_ != dnnl_success) { \
      g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "cpu: oneDNN %s failed for %s %s: %s", \
          what, nf_op_type_name (op->type), op->name ? op->name : "", dnnl_status2str (st_)); \
      goto fail; \
    } \
  } G_STMT_END

static void
dnnl_conv_free (DnnlConv *d)
{
  if (!d)
    return;
  if (d->prim)
    dnnl_primitive_destroy (d->prim);
  if (d->src)
    dnnl_memory_destroy (d->src);
  if (d->wei)
    dnnl_memory_destroy (d->wei);
  if (d->bias)
    dnnl_memory_destroy (d->bias);
  if (d->dst)
    dnnl_memory_destroy (d->dst);
  if (d->scratch)
    dnnl_memory_destroy (d->scratch);
  nf_free (d->bias_copy);
  g_free (d);
}

gboolean
nf_dnnl_conv_prepare (NfCpuBackend *be, NfOpCall *call, GError **error)
{
  const NfOp *op = call->op;
  NfShape xs = call->in[0], ys = call->out;
  DnnlConv *d = g_new0 (DnnlConv, 1);
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t post = NULL;
  dnnl_primitive_desc_t pd = NULL, rpd = NULL;
  dnnl_primitive_t reorder = NULL;
  dnnl_memory_t user_wei = NULL;
  d->kind = NF_CPU_STATE_DNNL;
  d->deconv = op->type == NF_OP_CONV_TRANSPOSE2D;
  d->mode = op->pad_mode;
  d->pad = d->deconv ? 0 : op->padding;

  dnnl_memory_desc_t src_md, wei_md, user_wei_md, bias_md, dst_md;
  dnnl_dims_t src_dims = { xs.n, xs.c, xs.h + 2 * d->pad, xs.w + 2 * d->pad };
  dnnl_dims_t dst_dims = { ys.n, ys.c, ys.h, ys.w };
  dnnl_dims_t wei_dims = { op->cout, op->cin, op->k, op->k };
  dnnl_dims_t bias_dims = { op->cout };
  dnnl_dims_t strides = { op->stride, op->stride };
  d->bf16 = be->bf16 && !d->deconv && xs.c > 4 && ys.c > 4;
retry:;
  dnnl_data_type_t in_dt = d->bf16 ? dnnl_bf16 : dnnl_f32;
  CHECK (dnnl_memory_desc_init_by_tag (&src_md, 4, src_dims, in_dt, d->bf16 ? dnnl_nChw16c
          : nf_cpu_dnnl_tag (xs.c)), "source descriptor");
  CHECK (dnnl_memory_desc_init_by_tag (&dst_md, 4, dst_dims, dnnl_f32, d->bf16 ? dnnl_nChw16c
          : nf_cpu_dnnl_tag (ys.c)), "destination descriptor");
  CHECK (dnnl_memory_desc_init_by_tag (&wei_md, 4, wei_dims, in_dt, dnnl_format_tag_any),
      "weights descriptor");
  CHECK (dnnl_memory_desc_init_by_tag (&user_wei_md, 4, wei_dims, dnnl_f32,
          d->deconv ? dnnl_iohw : dnnl_oihw), "weights descriptor");
  CHECK (dnnl_memory_desc_init_by_tag (&bias_md, 1, bias_dims, dnnl_f32, dnnl_x),
      "bias descriptor");

  if (!attr)
    CHECK (dnnl_primitive_attr_create (&attr), "attribute creation");
  CHECK (dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user),
      "scratchpad mode");
  if (op->fuse_relu && !post) {
    CHECK (dnnl_post_ops_create (&post), "post-op creation");
    CHECK (dnnl_post_ops_append_eltwise (post, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f),
        "ReLU post-op");
    CHECK (dnnl_primitive_attr_set_post_ops (attr, post), "post-ops");
  }

  if (d->deconv) {
    dnnl_deconvolution_desc_t desc;
    dnnl_dims_t pl = { op->padding, op->padding };
    dnnl_dims_t pr = { op->padding - op->output_padding, op->padding - op->output_padding };
    CHECK (dnnl_deconvolution_forward_desc_init (&desc, dnnl_forward_inference,
            dnnl_deconvolution_direct, &src_md, &wei_md, op->bias ? &bias_md : NULL, &dst_md,
            strides, pl, pr), "deconvolution descriptor");
    CHECK (dnnl_primitive_desc_create (&pd, &desc, attr, be->engine, NULL),
        "deconvolution primitive descriptor");
  } else {
    dnnl_convolution_desc_t desc;
    dnnl_dims_t zero = { 0, 0 };
    CHECK (dnnl_convolution_forward_desc_init (&desc, dnnl_forward_inference,
            dnnl_convolution_direct, &src_md, &wei_md, op->bias ? &bias_md : NULL, &dst_md,
            strides, zero, zero), "convolution descriptor");
    CHECK (dnnl_primitive_desc_create (&pd, &desc, attr, be->engine, NULL),
        "convolution primitive descriptor");
  }
  const char *impl = NULL;
  dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &impl);
  if (d->bf16 && (!impl || g_str_has_prefix (impl, "ref"))) {
    g_debug ("cpu-bf16: %s %s has only oneDNN's %s in bf16; it runs in fp32",
        nf_op_type_name (op->type), op->name ? op->name : "", impl ? impl : "?");
    dnnl_primitive_desc_destroy (pd);
    pd = NULL;
    d->bf16 = FALSE;
    goto retry;
  }
  g_debug ("cpu: %s %s %dx%dx%dx%d -> %dx%dx%dx%d k%d s%d: oneDNN %s",
      nf_op_type_name (op->type), op->name ? op->name : "", xs.n, xs.c, xs.h, xs.w,
      ys.n, ys.c, ys.h, ys.w, op->k, op->stride, impl ? impl : "?");
  CHECK (dnnl_primitive_create (&d->prim, pd), "primitive creation");

  /* Weights: reorder once into the primitive's format. */
  const dnnl_memory_desc_t *q_wei = dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  CHECK (dnnl_memory_create (&d->wei, q_wei, be->engine, DNNL_MEMORY_ALLOCATE),
      "weights memory");
  CHECK (dnnl_memory_create (&user_wei, &user_wei_md, be->engine, (void *) op->weight),
      "user weights memory");
  CHECK (dnnl_reorder_primitive_desc_create (&rpd, &user_wei_md, be->engine, q_wei,
          be->engine, NULL), "weights reorder descriptor");
  CHECK (dnnl_primitive_create (&reorder, rpd), "weights reorder");
  dnnl_exec_arg_t rargs[2] = { {DNNL_ARG_FROM, user_wei}, {DNNL_ARG_TO, d->wei} };
  CHECK (dnnl_primitive_execute (reorder, be->stream, 2, rargs), "weights reorder");
  CHECK (dnnl_stream_wait (be->stream), "weights reorder");

  if (op->bias) {
    d->bias_copy = nf_alloc_floats (op->cout);
    if (!d->bias_copy) {
      g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "cpu: out of memory");
      goto fail;
    }
    memcpy (d->bias_copy, op->bias, op->cout * sizeof (float));
    CHECK (dnnl_memory_create (&d->bias, &bias_md, be->engine, d->bias_copy), "bias memory");
  }
  CHECK (dnnl_memory_create (&d->src, dnnl_primitive_desc_query_md (pd, dnnl_query_src_md, 0),
          be->engine, DNNL_MEMORY_NONE), "source memory");
  CHECK (dnnl_memory_create (&d->dst, dnnl_primitive_desc_query_md (pd, dnnl_query_dst_md, 0),
          be->engine, DNNL_MEMORY_NONE), "destination memory");
  if (d->bf16) {                /* the packed source and the 16-lane output */
    size_t src_n = (size_t) xs.n * ((xs.c + 15) / 16) * 16 * src_dims[2] * src_dims[3];
    size_t dst_n = (size_t) ys.n * ((ys.c + 15) / 16) * 16 * ys.h * ys.w;
    float *bs = (float *) be->bf16_src;
    if (!nf_cpu_scratch (&bs, &be->bf16_src_n, (src_n + 1) / 2, error)
        || !nf_cpu_scratch (&be->bf16_dst, &be->bf16_dst_n, dst_n, error)) {
      be->bf16_src = (guint16 *) bs;
      goto fail;
    }
    be->bf16_src = (guint16 *) bs;
  }
  const dnnl_memory_desc_t *q_scr = dnnl_primitive_desc_query_md (pd,
      dnnl_query_scratchpad_md, 0);
  if (q_scr && dnnl_memory_desc_get_size (q_scr) > 0) {
    if (!nf_cpu_reserve_dnnl_scratch (be, dnnl_memory_desc_get_size (q_scr), error))
      goto fail;
    CHECK (dnnl_memory_create (&d->scratch, q_scr, be->engine, DNNL_MEMORY_NONE),
        "scratchpad memory");
  }

  dnnl_primitive_destroy (reorder);
  dnnl_primitive_desc_destroy (rpd);
  dnnl_memory_destroy (user_wei);
  dnnl_primitive_desc_destroy (pd);
  dnnl_primitive_attr_destroy (attr);
  if (post)
    dnnl_post_ops_destroy (post);
  call->state = d;
  return TRUE;

fail:
  if (reorder)
    dnnl_primitive_destroy (reorder);
  if (rpd)
    dnnl_primitive_desc_destroy (rpd);
  if (user_wei)
    dnnl_memory_destroy (user_wei);
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  if (attr)
    dnnl_primitive_attr_destroy (attr);
  if (post)
    dnnl_post_ops_destroy (post);
  dnnl_conv_free (d);
  return FALSE;
}

gboolean
nf_dnnl_conv_forward (NfCpuBackend *be, NfOpCall *call, NfCpuBuf *x, NfCpuBuf *y,
    GError **error)
{
  const NfOp *op = call->op;
  DnnlConv *d = call->state;
  float *src = nf_cpu_padded_input (be, x, d->pad, d->mode, error);
  if (!src)
    return FALSE;
  nf_cpu_begin_write_halo (y, call, 0);
  dnnl_exec_arg_t args[5];
  int n = 0;
  NfShape xs = call->in[0];
  if (d->bf16) {
    nf_cpu_bf16_pack (src, xs.n, xs.c, xs.h + 2 * d->pad, xs.w + 2 * d->pad, be->bf16_src);
    CHECK (dnnl_memory_set_data_handle (d->src, be->bf16_src), "source handle");
    CHECK (dnnl_memory_set_data_handle (d->dst, be->bf16_dst), "destination handle");
  } else {
    CHECK (dnnl_memory_set_data_handle (d->src, src), "source handle");
    CHECK (dnnl_memory_set_data_handle (d->dst, y->data), "destination handle");
  }
  args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SRC, d->src };
  args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_WEIGHTS, d->wei };
  args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_DST, d->dst };
  if (d->bias)
    args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_BIAS, d->bias };
  if (d->scratch) {
    CHECK (dnnl_memory_set_data_handle (d->scratch, be->dnnl_scratch), "scratchpad handle");
    args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SCRATCHPAD, d->scratch };
  }
  CHECK (dnnl_primitive_execute (d->prim, be->stream, n, args), "execution");
  CHECK (dnnl_stream_wait (be->stream), "execution");
  if (d->bf16)
    nf_cpu_bf16_unpack (be->bf16_dst, call->out.n, call->out.c, call->out.h, call->out.w,
        y->data);
  return TRUE;

fail:
  return FALSE;
}

void
nf_dnnl_conv_release (NfCpuBackend *be, NfOpCall *call)
{
  dnnl_conv_free (call->state);
}
