/* nf-dnnl-conv-desc.c — oneDNN descriptors, reorders and scratchpads of the fast CPU
 * backend's convolutions, shared by the forward and backward passes (see
 * nf-dnnl-conv-desc.h). It creates no convolution primitive and runs nothing.
 */
#include "nf-dnnl-conv-desc.h"

#include <oneapi/dnnl/dnnl_debug.h>

void
nf_dnnl_conv_geom (const NfOp *op, NfShape xs, NfShape ys, NfDnnlConvGeom *g)
{
  g->deconv = op->type == NF_OP_CONV_TRANSPOSE2D;
  g->pad = g->deconv ? 0 : op->padding;
  int pl = g->deconv ? op->padding : 0;
  int pr = g->deconv ? op->padding - op->output_padding : 0;
  dnnl_dims_t src = { xs.n, xs.c, xs.h + 2 * g->pad, xs.w + 2 * g->pad };
  dnnl_dims_t dst = { ys.n, ys.c, ys.h, ys.w };
  dnnl_dims_t wei = { op->cout, op->cin, op->k, op->k };
  for (int i = 0; i < 4; i++) {
    g->src[i] = src[i];
    g->dst[i] = dst[i];
    g->wei[i] = wei[i];
  }
  g->bias[0] = op->cout;
  g->strides[0] = g->strides[1] = op->stride;
  g->pad_l[0] = g->pad_l[1] = pl;
  g->pad_r[0] = g->pad_r[1] = pr;
}

dnnl_status_t
nf_dnnl_conv_md (const NfDnnlConvGeom *g, NfDnnlConvTensor which, dnnl_data_type_t dt,
    dnnl_format_tag_t tag, dnnl_memory_desc_t *md)
{
  switch (which) {
    case NF_DNNL_SRC:
      return dnnl_memory_desc_init_by_tag (md, 4, g->src, dt, tag);
    case NF_DNNL_DST:
      return dnnl_memory_desc_init_by_tag (md, 4, g->dst, dt, tag);
    case NF_DNNL_WEI:
      return dnnl_memory_desc_init_by_tag (md, 4, g->wei, dt, tag);
    case NF_DNNL_BIAS:
      return dnnl_memory_desc_init_by_tag (md, 1, g->bias, dt, tag);
  }
  return dnnl_invalid_arguments;
}

dnnl_status_t
nf_dnnl_conv_pd (dnnl_engine_t engine, const NfDnnlConvGeom *g, NfDnnlConvPass pass,
    const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
    const dnnl_memory_desc_t *bias, const dnnl_memory_desc_t *dst,
    const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
    dnnl_primitive_desc_t *pd, const char **what)
{
  /* the steps' names, as the messages have always called them */
  static const char *const desc_what[2][4] = {
    { "convolution descriptor", "forward descriptor", "backward-data descriptor",
      "backward-weights descriptor" },
    { "deconvolution descriptor", "forward descriptor", "backward-data descriptor",
      "backward-weights descriptor" },
  };
  static const char *const pd_what[2][4] = {
    { "convolution primitive descriptor", "forward hint",
      "backward-data primitive descriptor", "backward-weights primitive descriptor" },
    { "deconvolution primitive descriptor", "forward hint",
      "backward-data primitive descriptor", "backward-weights primitive descriptor" },
  };
  /* a deconvolution descriptor is a convolution descriptor (dnnl_types.h) */
  dnnl_convolution_desc_t desc;
  dnnl_status_t st = dnnl_invalid_arguments;
  *what = desc_what[g->deconv][pass];
  switch (pass) {
    case NF_DNNL_FWD_INFERENCE:
    case NF_DNNL_FWD_TRAINING:{
      dnnl_prop_kind_t prop = pass == NF_DNNL_FWD_INFERENCE ? dnnl_forward_inference
          : dnnl_forward_training;
      st = g->deconv ? dnnl_deconvolution_forward_desc_init (&desc, prop,
          dnnl_deconvolution_direct, src, wei, bias, dst, g->strides, g->pad_l, g->pad_r)
          : dnnl_convolution_forward_desc_init (&desc, prop, dnnl_convolution_direct, src,
          wei, bias, dst, g->strides, g->pad_l, g->pad_r);
      break;
    }
    case NF_DNNL_BWD_DATA:
      st = g->deconv ? dnnl_deconvolution_backward_data_desc_init (&desc,
          dnnl_deconvolution_direct, src, wei, dst, g->strides, g->pad_l, g->pad_r)
          : dnnl_convolution_backward_data_desc_init (&desc, dnnl_convolution_direct, src,
          wei, dst, g->strides, g->pad_l, g->pad_r);
      break;
    case NF_DNNL_BWD_WEIGHTS:
      st = g->deconv ? dnnl_deconvolution_backward_weights_desc_init (&desc,
          dnnl_deconvolution_direct, src, wei, bias, dst, g->strides, g->pad_l, g->pad_r)
          : dnnl_convolution_backward_weights_desc_init (&desc, dnnl_convolution_direct,
          src, wei, bias, dst, g->strides, g->pad_l, g->pad_r);
      break;
  }
  if (st != dnnl_success)
    return st;
  *what = pd_what[g->deconv][pass];
  return dnnl_primitive_desc_create (pd, &desc, attr, engine, hint);
}

gboolean
nf_dnnl_conv_error (GError **error, const NfOp *op, const char *pass, const char *what,
    dnnl_status_t st)
{
  g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "cpu: oneDNN %s%s failed for %s %s: %s",
      pass, what, nf_op_type_name (op->type), op->name ? op->name : "",
      dnnl_status2str (st));
  return FALSE;
}

gboolean
nf_dnnl_impl_is_fast (const_dnnl_primitive_desc_t pd, const char **impl)
{
  *impl = NULL;
  dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, impl);
  return *impl && !g_str_has_prefix (*impl, "ref");
}

gboolean
nf_dnnl_conv_reorder_create (NfCpuBackend *be, const NfOp *op, const char *pass,
    const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_t *prim,
    GError **error)
{
  dnnl_primitive_desc_t rpd = NULL;
  NF_DNNL_CONV_CHECK (dnnl_reorder_primitive_desc_create (&rpd, from, be->engine, to,
          be->engine, NULL), pass, "weights reorder descriptor");
  NF_DNNL_CONV_CHECK (dnnl_primitive_create (prim, rpd), pass, "weights reorder");
  dnnl_primitive_desc_destroy (rpd);
  return TRUE;
fail:
  if (rpd)
    dnnl_primitive_desc_destroy (rpd);
  return FALSE;
}

gboolean
nf_dnnl_conv_scratch_memory (NfCpuBackend *be, const NfOp *op, const char *pass,
    const_dnnl_primitive_desc_t pd, dnnl_memory_t *mem, GError **error)
{
  const dnnl_memory_desc_t *q = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  *mem = NULL;
  if (!q || dnnl_memory_desc_get_size (q) == 0)
    return TRUE;
  if (!nf_cpu_reserve_dnnl_scratch (be, dnnl_memory_desc_get_size (q), error))
    return FALSE;
  NF_DNNL_CONV_CHECK (dnnl_memory_create (mem, q, be->engine, DNNL_MEMORY_NONE), pass,
      "scratchpad memory");
  return TRUE;
fail:
  return FALSE;
}
