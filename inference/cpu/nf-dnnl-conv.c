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
 * in the layout oneDNN's fast bf16 kernels want (channels-last where the CPU has AMX,
 * else 16-lane blocks; nf_cpu_bf16_channels_last): the source is packed to bf16 in that
 * layout and the fp32 output in it unpacked to nChw8c (nf-cpu-bf16.c). Where oneDNN offers only its reference
 * implementation for a shape, that convolution stays fp32 (the reference is ~100x
 * slower). Transposed convolutions stay fp32.
 * The descriptors, reorders and scratchpad come from nf-dnnl-conv-desc.h (shared with
 * the backward passes).
 * What it does not: convolutions with at most 4 output channels (nf-cpu-direct-conv.c
 * is faster there), dilation or groups (no op uses them).
 */
#include <string.h>

#include "nf-dnnl-conv-desc.h"

typedef struct {
  NfCpuStateKind kind;          /* NF_CPU_STATE_DNNL */
  dnnl_primitive_t prim;
  dnnl_memory_t src, wei, bias, dst, scratch;
  float *bias_copy;
  int pad;                      /* conv2d: the halo the source must have */
  gboolean bf16;                /* bf16 source/weights (see above) */
  gboolean channels_last;       /* bf16 activations in nhwc, else nChw16c */
  NfPadMode mode;
  gboolean deconv;
} DnnlConv;

#define CHECK(expr, what) NF_DNNL_CONV_CHECK (expr, "", what)

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
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t reorder = NULL;
  dnnl_memory_t user_wei = NULL;
  const char *what = NULL;
  NfDnnlConvGeom g;
  nf_dnnl_conv_geom (op, xs, ys, &g);
  d->kind = NF_CPU_STATE_DNNL;
  d->deconv = g.deconv;
  d->mode = op->pad_mode;
  d->pad = g.pad;

  dnnl_memory_desc_t src_md, wei_md, user_wei_md, bias_md, dst_md;
  d->bf16 = be->bf16 && !d->deconv && xs.c > 4 && ys.c > 4;
  d->channels_last = d->bf16 && nf_cpu_bf16_channels_last ();
retry:;
  dnnl_data_type_t in_dt = d->bf16 ? dnnl_bf16 : dnnl_f32;
  dnnl_format_tag_t bf16_tag = d->channels_last ? dnnl_nhwc : dnnl_nChw16c;
  CHECK (nf_dnnl_conv_md (&g, NF_DNNL_SRC, in_dt, d->bf16 ? bf16_tag
          : nf_cpu_dnnl_tag (xs.c), &src_md), "source descriptor");
  CHECK (nf_dnnl_conv_md (&g, NF_DNNL_DST, dnnl_f32, d->bf16 ? bf16_tag
          : nf_cpu_dnnl_tag (ys.c), &dst_md), "destination descriptor");
  CHECK (nf_dnnl_conv_md (&g, NF_DNNL_WEI, in_dt, dnnl_format_tag_any, &wei_md),
      "weights descriptor");
  CHECK (nf_dnnl_conv_md (&g, NF_DNNL_WEI, dnnl_f32, nf_dnnl_conv_user_wei_tag (&g),
          &user_wei_md), "weights descriptor");
  CHECK (nf_dnnl_conv_md (&g, NF_DNNL_BIAS, dnnl_f32, dnnl_x, &bias_md), "bias descriptor");

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
  CHECK (nf_dnnl_conv_pd (be->engine, &g, NF_DNNL_FWD_INFERENCE, &src_md, &wei_md,
          op->bias ? &bias_md : NULL, &dst_md, attr, NULL, &pd, &what), what);
  const char *impl = NULL;
  if (!nf_dnnl_impl_is_fast (pd, &impl) && d->bf16) {
    g_debug ("cpu-bf16: %s %s has only oneDNN's %s in bf16; it runs in fp32",
        nf_op_type_name (op->type), op->name ? op->name : "", impl ? impl : "?");
    dnnl_primitive_desc_destroy (pd);
    pd = NULL;
    d->bf16 = d->channels_last = FALSE;
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
  if (!nf_dnnl_conv_reorder_create (be, op, "", &user_wei_md, q_wei, &reorder, error))
    goto fail;
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
  if (d->bf16) {                /* the packed source and the output (16-lane blocks are
                                 * the larger of the two layouts) */
    size_t src_n = (size_t) xs.n * ((xs.c + 15) / 16) * 16 * g.src[2] * g.src[3];
    size_t dst_n = (size_t) ys.n * ((ys.c + 15) / 16) * 16 * ys.h * ys.w;
    float *bs = (float *) be->bf16_src;
    if (!nf_cpu_scratch (&bs, &be->bf16_src_n, (src_n + 1) / 2, error)
        || !nf_cpu_scratch (&be->bf16_dst, &be->bf16_dst_n, dst_n, error)) {
      be->bf16_src = (guint16 *) bs;
      goto fail;
    }
    be->bf16_src = (guint16 *) bs;
  }
  if (!nf_dnnl_conv_scratch_memory (be, op, "", pd, &d->scratch, error))
    goto fail;

  dnnl_primitive_destroy (reorder);
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
    nf_cpu_bf16_pack (src, xs.n, xs.c, xs.h + 2 * d->pad, xs.w + 2 * d->pad,
        d->channels_last, be->bf16_src);
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
        d->channels_last, y->data);
  return TRUE;

fail:
  return FALSE;
}

void
nf_dnnl_conv_release (NfCpuBackend *be, NfOpCall *call)
{
  dnnl_conv_free (call->state);
}
