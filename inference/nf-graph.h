/* nf-graph.h — the network as a list of ops over named values.
 *
 * JSON form (the "graph" metadata key of a model file, format_version 1):
 *   {"input": "x", "output": "y", "ops": [ OP, ... ]}
 * Ops run in list order; each reads values produced earlier (or the input) and
 * produces one new value. Every op has "op", "in" (a name, or a list for add/concat),
 * "out"; ops with weights have "name" (the tensor prefix: NAME.weight, NAME.bias, ...).
 *   conv2d            k, stride (1), pad "zero"|"reflect"|"none" ("zero"),
 *                     padding (k/2), cin, cout, bias (true)
 *                     tensors NAME.weight (cout, cin, k, k), NAME.bias (cout)
 *   conv_transpose2d  k, stride, padding (0), output_padding (0), cin, cout, bias (true)
 *                     tensors NAME.weight (cin, cout, k, k)  [PyTorch layout]
 *   instance_norm     c, eps (1e-5), affine (true): NAME.weight, NAME.bias (c)
 *   cond_instance_norm  c, eps (1e-5), styles (N, 1..1024): conditional instance norm
 *                     (Dumoulin et al. 2017, one network for N styles): instance_norm
 *                     whose scale and shift are the rows of NAME.weight, NAME.bias
 *                     (N, c) mixed by the model's run-time style weights m (N):
 *                     gamma = sum_i m_i weight[i], beta = sum_i m_i bias[i]. Any finite
 *                     weights are taken as they are (not normalised): a one-hot m is
 *                     style i, a convex m (m_i >= 0, sum 1) blends styles, others
 *                     extrapolate. Every cond_instance_norm of a graph has the same N;
 *                     the style names are the model's "styles" metadata (nf-model.h)
 *   batch_norm        c, eps (1e-5): NAME.weight, NAME.bias, NAME.running_mean,
 *                     NAME.running_var (c); folded into the producing conv2d at load
 *   relu, tanh_scale (scale, offset: y = scale*tanh(x) + offset),
 *   clamp (min, max), add (in: [a, b]), concat (in: [a, b, ...], along channels),
 *   upsample_nearest (factor), pixel_shuffle (factor),
 *   avg_pool2d / max_pool2d (k, stride (k))
 *
 * What it does: parse, validate (names defined before use, one producer per value,
 * parameters in range), serialise back to JSON, infer every value's shape from an input
 * shape with a clear error when a size does not fit.
 * What it does not: hold weights (nf-model) or run anything (nf-engine).
 */
#pragma once

#include <glib.h>

#include "nf-tensor.h"

G_BEGIN_DECLS

typedef enum {
  NF_OP_CONV2D,
  NF_OP_CONV_TRANSPOSE2D,
  NF_OP_INSTANCE_NORM,
  NF_OP_BATCH_NORM,
  NF_OP_RELU,
  NF_OP_ADD,
  NF_OP_CONCAT,
  NF_OP_UPSAMPLE_NEAREST,
  NF_OP_PIXEL_SHUFFLE,
  NF_OP_TANH_SCALE,
  NF_OP_CLAMP,
  NF_OP_AVG_POOL2D,
  NF_OP_MAX_POOL2D,
  NF_OP_COND_INSTANCE_NORM,
  NF_OP_COUNT
} NfOpType;

typedef enum {
  NF_PAD_ZERO,
  NF_PAD_REFLECT,
} NfPadMode;

#define NF_OP_MAX_INPUTS 8

typedef struct {
  NfOpType type;
  char *name;                   /* tensor prefix; NULL for ops without weights */
  int n_in;
  int in[NF_OP_MAX_INPUTS];     /* value ids */
  int out;                      /* value id */

  /* conv2d, conv_transpose2d, pooling */
  int k, stride, padding, output_padding, cin, cout;
  NfPadMode pad_mode;
  gboolean has_bias;
  /* instance_norm, batch_norm, cond_instance_norm */
  int c;
  float eps;
  gboolean affine;
  /* cond_instance_norm: number of styles N (rows of its weight and bias) */
  int styles;
  /* upsample_nearest, pixel_shuffle */
  int factor;
  /* tanh_scale */
  float scale, offset;
  /* clamp */
  float min, max;

  /* Filled when a model binds weights (pointers into the model's storage). */
  const float *weight;          /* conv: (cout, cin, k, k); deconv: (cin, cout, k, k); norm: (c);
                                 * cond_instance_norm: (N, c) */
  const float *bias;            /* (cout) or (c); cond_instance_norm: (N, c) */
  /* cond_instance_norm: the style weights (N) it mixes its rows with, read at every run
   * (the model's style mix, nf-model.h); NULL: not bound, an error at run time. */
  const float *mix;
  /* Set by the engine planner: apply ReLU to this op's output in the same pass.
   * The engine sets it only on conv2d, conv_transpose2d and (cond_)instance_norm ops
   * whose output has the relu as its only consumer. */
  gboolean fuse_relu;
  /* Set by the engine planner on a pixel_shuffle whose output is added to a nearest
   * upsampling by the same factor (the SR networks' skip), where the backend fuses
   * that (NfBackendIface.fuses_sr_tail): n_in becomes 2, in[1] the upsampling's source,
   * and the op writes shuffle (in[0]) + nearest (in[1]) in one pass; with fuse_clamp
   * also clamped to [min, max] (a clamp that was the add's only consumer). */
  gboolean fuse_skip_add, fuse_clamp;
} NfOp;

typedef struct {
  int n_values;
  char **value_names;           /* n_values */
  int input;                    /* value id of the graph input */
  int output;                   /* value id of the graph output */
  int n_ops;
  NfOp *ops;
} NfGraph;

const char *nf_op_type_name (NfOpType t);
gboolean nf_op_type_from_name (const char *s, NfOpType *out);

NfGraph *nf_graph_from_json (const char *json, GError **error);
char *nf_graph_to_json (const NfGraph *g);
NfGraph *nf_graph_copy (const NfGraph *g);
void nf_graph_free (NfGraph *g);

/* Shapes of every value for an input shape (shapes: n_values entries). */
gboolean nf_graph_infer_shapes (const NfGraph *g, NfShape input, NfShape *shapes,
    GError **error);
/* Shape of one op's output from its input shapes. */
gboolean nf_op_output_shape (const NfOp *op, const NfShape *in, NfShape *out, GError **error);

/* Multiply-accumulates x2 of one op at given input shapes (conv/deconv only; others 0). */
double nf_op_flops (const NfOp *op, const NfShape *in, NfShape out);

/* The number of styles N of the graph's cond_instance_norm ops: 0 when it has none, -1 +
 * error when two of them disagree (one style mix drives them all). */
int nf_graph_n_styles (const NfGraph *g, GError **error);

/* Number of ops consuming value v. */
int nf_graph_n_consumers (const NfGraph *g, int v);

/* Building graphs in C (the architecture builders and the trainer use this). */
typedef struct NfGraphBuilder NfGraphBuilder;
NfGraphBuilder *nf_graph_builder_new (const char *input_name);
/* Adds an op; returns the id of its output value. The op's in/out fields are set from
 * the value names; other fields are copied from tmpl. */
int nf_graph_builder_add (NfGraphBuilder *b, const NfOp *tmpl, const char *name,
    const int *in, int n_in, const char *out_name);
NfGraph *nf_graph_builder_finish (NfGraphBuilder *b, int output_value);

G_END_DECLS
