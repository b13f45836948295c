/* nf-dnnl-conv-desc.h — the oneDNN descriptors of one conv2d or conv_transpose2d call,
 * built in one place for the forward pass (nf-dnnl-conv.c) and the backward passes
 * (nf-dnnl-conv-backward.c) of the fast CPU backend.
 *
 * Geometry (NfDnnlConvGeom): conv2d reads a source that carries its own halo of p =
 * padding ((h + 2p) x (w + 2p)) and convolves with padding 0, so reflection and zero
 * padding take one path; conv_transpose2d is oneDNN's deconvolution with padding p on the
 * left and p - output_padding on the right. Weights as oneDNN counts them: (cout, cin, k,
 * k); stored by the op as conv2d (cout, cin, k, k) = oihw, conv_transpose2d (cin, cout, k,
 * k) = iohw.
 * Primitive descriptors (nf_dnnl_conv_pd): forward inference, forward training (the hint
 * the backward passes want), backward data and backward weights, of a convolution or a
 * deconvolution as the op is. Also the reorders, the user scratchpad and the
 * "is this oneDNN's fast kernel or its reference loop" check that both files need.
 * Errors: "cpu: oneDNN <pass><step> failed for <op type> <op name>: <status>", pass ""
 * (forward) or "backward ".
 * What it does not: create the convolution primitives, hold their state, or run them.
 */
#pragma once

#include "nf-cpu-fast-private.h"

G_BEGIN_DECLS

typedef struct {
  dnnl_dims_t src;              /* (N, Cin, H + 2p, W + 2p) */
  dnnl_dims_t dst;              /* (N, Cout, Ho, Wo) */
  dnnl_dims_t wei;              /* (Cout, Cin, k, k) */
  dnnl_dims_t bias;             /* (Cout) */
  dnnl_dims_t strides, pad_l, pad_r;
  int pad;                      /* conv2d: the halo p of the source; 0 for conv_transpose2d */
  gboolean deconv;              /* conv_transpose2d */
} NfDnnlConvGeom;

typedef enum {
  NF_DNNL_SRC, NF_DNNL_DST, NF_DNNL_WEI, NF_DNNL_BIAS
} NfDnnlConvTensor;

typedef enum {
  NF_DNNL_FWD_INFERENCE, NF_DNNL_FWD_TRAINING, NF_DNNL_BWD_DATA, NF_DNNL_BWD_WEIGHTS
} NfDnnlConvPass;

/* The geometry of op from input shape xs to output shape ys. */
void nf_dnnl_conv_geom (const NfOp *op, NfShape xs, NfShape ys, NfDnnlConvGeom *g);

/* A memory descriptor of one of the call's tensors (the bias is 1-D: give dnnl_x). */
dnnl_status_t nf_dnnl_conv_md (const NfDnnlConvGeom *g, NfDnnlConvTensor which,
    dnnl_data_type_t dt, dnnl_format_tag_t tag, dnnl_memory_desc_t *md);

/* The format of the weights as the op stores them: iohw (conv_transpose2d) or oihw. */
static inline dnnl_format_tag_t
nf_dnnl_conv_user_wei_tag (const NfDnnlConvGeom *g)
{
  return g->deconv ? dnnl_iohw : dnnl_oihw;
}

/* One primitive descriptor of the call:
 *   forward passes     src, wei, bias (NULL: none), dst
 *   NF_DNNL_BWD_DATA   src = diff_src, wei, dst = diff_dst (bias unused)
 *   NF_DNNL_BWD_WEIGHTS src, wei = diff_weights, bias = diff_bias (NULL: none),
 *                      dst = diff_dst
 * hint: the forward-training descriptor for the backward passes, else NULL. On failure
 * *what names the step (for the caller's message). */
dnnl_status_t nf_dnnl_conv_pd (dnnl_engine_t engine, const NfDnnlConvGeom *g,
    NfDnnlConvPass pass, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
    const dnnl_memory_desc_t *bias, const dnnl_memory_desc_t *dst,
    const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
    dnnl_primitive_desc_t *pd, const char **what);

/* Sets error to "cpu: oneDNN <pass><what> failed for <op>: <status>"; FALSE. */
gboolean nf_dnnl_conv_error (GError **error, const NfOp *op, const char *pass,
    const char *what, dnnl_status_t st);

/* CHECK of both files: on failure sets error (the local GError **error and const NfOp *op)
 * and jumps to the local label fail. */
#define NF_DNNL_CONV_CHECK(expr, pass, what) G_STMT_START { \
    dnnl_status_t st_ = (expr); \
    if (st_ != dnnl_success) { \
      nf_dnnl_conv_error (error, op, pass, what, st_); \
      goto fail; \
    } \
  } G_STMT_END

/* Whether pd is one of oneDNN's fast implementations, not its plain reference loop
 * (~100x slower); *impl its name (NULL when oneDNN does not say). */
gboolean nf_dnnl_impl_is_fast (const_dnnl_primitive_desc_t pd, const char **impl);

/* A reorder primitive between two layouts of the weights. */
gboolean nf_dnnl_conv_reorder_create (NfCpuBackend *be, const NfOp *op, const char *pass,
    const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_t *prim,
    GError **error);

/* A memory object for the scratchpad pd asks for (NULL when it needs none), reserving
 * room in the backend's shared scratchpad. */
gboolean nf_dnnl_conv_scratch_memory (NfCpuBackend *be, const NfOp *op, const char *pass,
    const_dnnl_primitive_desc_t pd, dnnl_memory_t *mem, GError **error);

G_END_DECLS
