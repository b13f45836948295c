/* nf-luma-core.c — the luma core of a luma-only super-resolution model (sr-light-y): the
 * same network without its fixed RGB ends, so a caller that has the luma plane (a
 * Y'CbCr frame) runs it on that plane alone.
 *
 * What it does: recognises a model whose graph is
 *   x (N, 3, H, W) -> rgb_to_y (fixed) -> ... -> y_to_rgb (fixed, each sub-pixel channel
 *   copied to R, G and B) -> pixel_shuffle -> + upsample_nearest (x) [-> clamp]
 * (nf-arch.c's sr-light-y) and builds the model
 *   Y (N, 1, H, W) -> ... -> pixel_shuffle -> + upsample_nearest (Y) [-> clamp]
 * with the same ops in between and copies of their weights. Adding the same dY to R, G
 * and B adds dY to the luma and leaves the chroma alone, so on a Y'CbCr frame the
 * core's output is the full network's luma (exactly, before the clamp; the full network
 * clamps R, G and B, the core clamps Y) and the chroma is the input's.
 * What it does not: convert pixels or upsample chroma (the element does), or change
 * the model it reads.
 */
#include <string.h>

#include "nf-arch.h"
#include "nf-error.h"
#include "nf-luma-core.h"

/* The op that consumes value v, when exactly one does; else -1. */
static int
sole_consumer (const NfGraph *g, int v)
{
  int found = -1;
  for (int i = 0; i < g->n_ops; i++)
    for (int j = 0; j < g->ops[i].n_in; j++)
      if (g->ops[i].in[j] == v) {
        if (found >= 0 && found != i)
          return -1;
        found = i;
      }
  return found;
}

static int
find_conv (const NfGraph *g, const char *name)
{
  for (int i = 0; i < g->n_ops; i++)
    if (g->ops[i].type == NF_OP_CONV2D && g->ops[i].name
        && g_str_equal (g->ops[i].name, name))
      return i;
  return -1;
}

/* Whether the y_to_rgb weights (3 ss, ss, 1, 1) copy sub-pixel k to channel c ss + k. */
static gboolean
copies_luma (NfModel *m, const NfOp *op)
{
  char *key = g_strconcat (op->name, ".weight", NULL);
  NfModelTensor *t = nf_model_tensor (m, key);
  g_free (key);
  int ss = op->cin;
  if (!t || op->k != 1 || op->cout != 3 * ss || op->has_bias)
    return FALSE;
  for (int o = 0; o < 3 * ss; o++)
    for (int i = 0; i < ss; i++)
      if (t->data[(size_t) o * ss + i] != (i == o % ss ? 1.0f : 0.0f))
        return FALSE;
  return TRUE;
}

/* Whether the rgb_to_y weights (1, 3, 1, 1), without bias, are BT.601's luma. */
static gboolean
is_bt601_luma (NfModel *m, const NfOp *op)
{
  char *key = g_strconcat (op->name, ".weight", NULL);
  NfModelTensor *t = nf_model_tensor (m, key);
  g_free (key);
  return t && !op->has_bias && t->data[0] == 0.299f && t->data[1] == 0.587f
      && t->data[2] == 0.114f;
}

/* The ops of the pattern in the header comment; FALSE when g is not of that form. */
static gboolean
match (NfModel *m, const NfGraph *g, int *ry, int *yr, int *up)
{
  *ry = find_conv (g, NF_ARCH_RGB_TO_Y);
  *yr = find_conv (g, NF_ARCH_Y_TO_RGB);
  if (*ry < 0 || *yr < 0)
    return FALSE;
  const NfOp *a = &g->ops[*ry], *b = &g->ops[*yr];
  if (a->in[0] != g->input || a->cin != 3 || a->cout != 1 || a->k != 1
      || !is_bt601_luma (m, a) || !copies_luma (m, b))
    return FALSE;
  /* the input feeds rgb_to_y and one nearest upsampling, nothing else */
  *up = -1;
  for (int i = 0; i < g->n_ops; i++)
    for (int j = 0; j < g->ops[i].n_in; j++)
      if (g->ops[i].in[j] == g->input && i != *ry) {
        if (*up >= 0 || g->ops[i].type != NF_OP_UPSAMPLE_NEAREST)
          return FALSE;
        *up = i;
      }
  if (*up < 0 || g->ops[*up].factor != m->scale)
    return FALSE;
  /* y_to_rgb -> pixel_shuffle -> add (with the upsampling) [-> clamp] -> output */
  int ps = sole_consumer (g, b->out);
  if (ps < 0 || g->ops[ps].type != NF_OP_PIXEL_SHUFFLE || g->ops[ps].factor != m->scale)
    return FALSE;
  int add = sole_consumer (g, g->ops[ps].out);
  if (add < 0 || add != sole_consumer (g, g->ops[*up].out) || g->ops[add].type != NF_OP_ADD)
    return FALSE;
  int last = add;
  if (g->output != g->ops[add].out) {
    last = sole_consumer (g, g->ops[add].out);
    if (last < 0 || g->ops[last].type != NF_OP_CLAMP || g->output != g->ops[last].out)
      return FALSE;
  }
  return TRUE;
}

/* Copies every tensor of core's ops from m (same names and sizes). */
static gboolean
copy_weights (NfModel *core, NfModel *m, GError **error)
{
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, core->tensors);
  while (g_hash_table_iter_next (&it, &key, &value)) {
    NfModelTensor *dst = value, *src = nf_model_tensor (m, key);
    size_t n = nf_model_tensor_numel (dst);
    if (!src || nf_model_tensor_numel (src) != n) {
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "luma core: tensor %s %s in the model",
          (const char *) key, src ? "has another size" : "is missing");
      return FALSE;
    }
    memcpy (dst->data, src->data, n * sizeof (float));
  }
  return TRUE;
}

NfModel *
nf_model_luma_core (NfModel *m, GError **error)
{
  const NfGraph *g = m->source_graph;
  int ry, yr, up;
  if (m->task != NF_TASK_SUPERRES || !match (m, g, &ry, &yr, &up))
    return NULL;

  int *map = g_new (int, g->n_values);          /* source value -> core value */
  for (int v = 0; v < g->n_values; v++)
    map[v] = -1;
  NfGraphBuilder *b = nf_graph_builder_new (g->value_names[g->input]);
  map[g->input] = 0;            /* the builder's input: Y (N, 1, H, W) */
  map[g->ops[ry].out] = 0;
  for (int i = 0; i < g->n_ops; i++) {
    const NfOp *op = &g->ops[i];
    if (i == ry)
      continue;
    if (i == yr) {              /* the luma sub-pixels themselves */
      map[op->out] = map[op->in[0]];
      continue;
    }
    int in[NF_OP_MAX_INPUTS];
    for (int j = 0; j < op->n_in; j++)
      in[j] = map[op->in[j]];
    map[op->out] = nf_graph_builder_add (b, op, op->name, in, op->n_in,
        g->value_names[op->out]);
  }
  NfGraph *cg = nf_graph_builder_finish (b, map[g->output]);
  g_free (map);

  NfModel *core = cg ? nf_model_new_for_graph (cg, m->task, m->scale, error) : NULL;
  nf_graph_free (cg);
  if (!core || !copy_weights (core, m, error) || !nf_model_bind (core, error)) {
    nf_model_free (core);
    return NULL;
  }
  core->in_lo = m->in_lo;
  core->in_hi = m->in_hi;
  core->out_lo = m->out_lo;
  core->out_hi = m->out_hi;
  core->size_multiple = m->size_multiple;
  const char *name = nf_model_get_metadata (m, "name");
  if (name)
    nf_model_set_metadata (core, "name", name);
  return core;
}
