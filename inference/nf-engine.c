/* nf-engine.c — plans a model for one input shape on one backend, then runs it.
 *
 * What it does: shape inference, ReLU fusion (into conv2d, conv_transpose2d and
 * (cond_)instance_norm when the relu is the only consumer), per-op backend preparation,
 * activation allocation with reuse of same-shaped buffers whose values are dead (or
 * every value kept, for training), per-op timing, and the host convenience call that
 * replans when the input size changes.
 * What it does not: any arithmetic (the backend does), pixel conversion (gst/).
 */
#include "nf-engine.h"

#include <string.h>

#include "nf-error.h"

struct NfEngine {
  NfModel *model;
  NfBackend *be;
  NfEngineOptions opts;

  gboolean planned;
  NfShape input_shape;
  int n_ops, n_values;
  NfOp *ops;                    /* engine's copy of the graph's ops (fuse flags) */
  NfOpCall *calls;              /* n_ops */
  gboolean *skip;               /* n_ops: relu fused into its producer */
  gboolean *prepared;           /* n_ops: backend prepare succeeded (release owed) */
  NfShape *shapes;              /* n_values */
  void **value_buf;             /* n_values: buffer holding each value */
  GPtrArray *allocations;       /* distinct buffers to free */
  gboolean timing;
  double *op_ms;                /* n_ops */
  void **grad_buf;              /* n_values, training only, allocated on first backward */
};

NfEngine *
nf_engine_new (NfModel *model, NfBackend *be, const NfEngineOptions *opts)
{
  NfEngine *e = g_new0 (NfEngine, 1);
  e->model = model;
  e->be = be;
  if (opts)
    e->opts = *opts;
  return e;
}

static void
unplan (NfEngine *e)
{
  if (e->calls && e->be->iface->release)
    for (int i = 0; i < e->n_ops; i++)
      if (e->prepared[i])
        e->be->iface->release (e->be, &e->calls[i]);
  if (e->grad_buf) {
    for (int v = 0; v < e->n_values; v++)
      if (e->grad_buf[v])
        e->be->iface->free (e->be, e->grad_buf[v]);
    g_clear_pointer (&e->grad_buf, g_free);
  }
  if (e->allocations) {
    for (guint i = 0; i < e->allocations->len; i++)
      e->be->iface->free (e->be, g_ptr_array_index (e->allocations, i));
    g_ptr_array_unref (e->allocations);
    e->allocations = NULL;
  }
  g_clear_pointer (&e->ops, g_free);
  g_clear_pointer (&e->calls, g_free);
  g_clear_pointer (&e->skip, g_free);
  g_clear_pointer (&e->prepared, g_free);
  g_clear_pointer (&e->shapes, g_free);
  g_clear_pointer (&e->value_buf, g_free);
  g_clear_pointer (&e->op_ms, g_free);
  e->planned = FALSE;
}

void
nf_engine_free (NfEngine *e)
{
  if (!e)
    return;
  unplan (e);
  g_free (e);
}

static gboolean
fusable (NfOpType t)
{
  return t == NF_OP_CONV2D || t == NF_OP_CONV_TRANSPOSE2D || t == NF_OP_INSTANCE_NORM
      || t == NF_OP_COND_INSTANCE_NORM;
}

/* The op that reads value v (its only consumer), or -1. */
static int
only_consumer (const NfGraph *g, int v)
{
  if (nf_graph_n_consumers (g, v) != 1)
    return -1;
  for (int i = 0; i < g->n_ops; i++)
    for (int j = 0; j < g->ops[i].n_in; j++)
      if (g->ops[i].in[j] == v)
        return i;
  return -1;
}

/* An SR network's tail, y = clamp (pixel_shuffle (a) + upsample_nearest (x)), as one
 * pass of the shuffle (NfOp.fuse_skip_add, fuse_clamp): the add, the upsampling and the
 * clamp are skipped, and their values share the shuffle's buffer. Each intermediate
 * value must have its one consumer in the pattern and not be the graph's output. */
static void
fuse_sr_tails (NfEngine *e, const NfGraph *g, const int *producer, int *root)
{
  for (int i = 0; i < g->n_ops; i++) {
    NfOp *ps = &e->ops[i];
    if (ps->type != NF_OP_PIXEL_SHUFFLE || ps->fuse_relu || e->skip[i]
        || ps->out == g->output)
      continue;
    int a = only_consumer (g, ps->out);
    if (a < 0 || e->ops[a].type != NF_OP_ADD || e->ops[a].n_in != 2 || e->skip[a])
      continue;
    int other = e->ops[a].in[0] == ps->out ? e->ops[a].in[1] : e->ops[a].in[0];
    int up = producer[other];
    if (other == ps->out || up < 0 || e->ops[up].type != NF_OP_UPSAMPLE_NEAREST
        || e->ops[up].factor != ps->factor || nf_graph_n_consumers (g, other) != 1
        || other == g->output || e->skip[up])
      continue;
    ps->n_in = 2;
    ps->in[1] = e->ops[up].in[0];
    ps->fuse_skip_add = TRUE;
    e->skip[a] = e->skip[up] = TRUE;
    root[e->ops[a].out] = root[ps->out];
    int sum = e->ops[a].out, c = sum == g->output ? -1 : only_consumer (g, sum);
    if (c >= 0 && e->ops[c].type == NF_OP_CLAMP && !e->skip[c]) {
      ps->fuse_clamp = TRUE;
      ps->min = e->ops[c].min;
      ps->max = e->ops[c].max;
      e->skip[c] = TRUE;
      root[e->ops[c].out] = root[ps->out];
    }
  }
}

/* A free buffer of exactly this shape, or a new one. */
typedef struct {
  void *buf;
  NfShape shape;
} FreeBuf;

static void *
take_buffer (NfEngine *e, GArray *free_list, NfShape s, GError **error)
{
  for (guint i = 0; i < free_list->len; i++) {
    FreeBuf *f = &g_array_index (free_list, FreeBuf, i);
    if (nf_shape_equal (f->shape, s)) {
      void *b = f->buf;
      g_array_remove_index_fast (free_list, i);
      return b;
    }
  }
  void *b = e->be->iface->alloc (e->be, s, error);
  if (b)
    g_ptr_array_add (e->allocations, b);
  return b;
}

gboolean
nf_engine_plan (NfEngine *e, NfShape input, GError **error)
{
  const NfGraph *g = e->model->graph;
  unplan (e);
  e->n_ops = g->n_ops;
  e->n_values = g->n_values;
  e->ops = g_new0 (NfOp, g->n_ops);
  memcpy (e->ops, g->ops, sizeof (NfOp) * g->n_ops);
  e->calls = g_new0 (NfOpCall, g->n_ops);
  e->skip = g_new0 (gboolean, g->n_ops);
  e->prepared = g_new0 (gboolean, g->n_ops);
  e->shapes = g_new0 (NfShape, g->n_values);
  e->value_buf = g_new0 (void *, g->n_values);
  e->op_ms = g_new0 (double, g->n_ops);
  e->allocations = g_ptr_array_new ();

  for (int i = 0; i < g->n_ops; i++)
    if (!e->be->iface->supports_op (e->be, &e->ops[i])
        || !e->be->iface->forward[e->ops[i].type]) {
      g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
          "backend %s cannot run op %d (%s)", e->be->iface->name, i,
          nf_op_type_name (e->ops[i].type));
      goto fail;
    }

  if (!nf_graph_infer_shapes (g, input, e->shapes, error))
    goto fail;

  /* Fusion: root[v] is the value whose buffer holds v. */
  int *root = g_new0 (int, g->n_values);
  int *producer = g_new0 (int, g->n_values);
  for (int v = 0; v < g->n_values; v++) {
    root[v] = v;
    producer[v] = -1;
  }
  for (int i = 0; i < g->n_ops; i++)
    producer[g->ops[i].out] = i;
  if (!e->opts.no_fusion) {
    for (int i = 0; i < g->n_ops; i++) {
      NfOp *op = &e->ops[i];
      if (op->type != NF_OP_RELU)
        continue;
      int v = op->in[0];
      int p = producer[v];
      if (p < 0 || !fusable (e->ops[p].type) || e->ops[p].fuse_relu
          || nf_graph_n_consumers (g, v) != 1 || v == g->output || v == g->input)
        continue;
      e->ops[p].fuse_relu = TRUE;
      e->skip[i] = TRUE;
      root[op->out] = root[v];
    }
    if (e->be->iface->fuses_sr_tail)
      fuse_sr_tails (e, g, producer, root);
  }

  /* Last op reading each buffer (by root value). */
  int *last_use = g_new0 (int, g->n_values);
  for (int v = 0; v < g->n_values; v++)
    last_use[v] = -1;
  for (int i = 0; i < g->n_ops; i++) {
    if (e->skip[i])
      continue;
    for (int j = 0; j < e->ops[i].n_in; j++)
      last_use[root[e->ops[i].in[j]]] = i;
  }

  gboolean ok = TRUE;
  GArray *free_list = g_array_new (FALSE, FALSE, sizeof (FreeBuf));
  int out_root = root[g->output];
  e->value_buf[g->input] = take_buffer (e, free_list, input, error);
  ok = e->value_buf[g->input] != NULL;
  for (int i = 0; ok && i < g->n_ops; i++) {
    NfOp *op = &e->ops[i];
    NfOpCall *call = &e->calls[i];
    call->op = op;
    for (int j = 0; j < op->n_in; j++)
      call->in[j] = e->shapes[op->in[j]];
    call->out = e->shapes[op->out];
    if (e->skip[i]) {
      e->value_buf[op->out] = e->value_buf[root[op->out]];
      continue;                 /* nothing to prepare */
    }
    e->value_buf[op->out] = take_buffer (e, free_list, call->out, error);
    if (!e->value_buf[op->out]) {
      ok = FALSE;
      break;
    }
    if (e->be->iface->prepare) {
      if (!e->be->iface->prepare (e->be, call, error)) {
        ok = FALSE;
        break;
      }
      e->prepared[i] = TRUE;
    }
    if (e->opts.keep_all_values)
      continue;
    /* Release buffers whose last reader was this op (never input or output). */
    for (int j = 0; j < op->n_in; j++) {
      int r = root[op->in[j]];
      if (last_use[r] == i && r != out_root && r != g->input) {
        FreeBuf f = { e->value_buf[r], e->shapes[r] };
        gboolean dup = FALSE;
        for (guint q = 0; q < free_list->len; q++)
          dup |= g_array_index (free_list, FreeBuf, q).buf == f.buf;
        if (!dup)
          g_array_append_val (free_list, f);
      }
    }
    if (last_use[op->out] < 0 && op->out != out_root) {
      FreeBuf f = { e->value_buf[op->out], call->out };
      g_array_append_val (free_list, f);
    }
  }
  g_array_free (free_list, TRUE);
  g_free (root);
  g_free (producer);
  g_free (last_use);
  if (!ok)
    goto fail;
  e->input_shape = input;
  e->planned = TRUE;
  return TRUE;

fail:
  g_prefix_error (error, "planning %dx%d on %s: ", input.w, input.h, e->be->iface->name);
  unplan (e);
  return FALSE;
}

gboolean
nf_engine_is_planned_for (NfEngine *e, NfShape input)
{
  return e->planned && nf_shape_equal (e->input_shape, input);
}

NfShape
nf_engine_output_shape (NfEngine *e)
{
  return e->planned ? e->shapes[e->model->graph->output] : (NfShape) { 0, 0, 0, 0 };
}

NfShape
nf_engine_value_shape (NfEngine *e, int value)
{
  return e->planned ? e->shapes[value] : (NfShape) { 0, 0, 0, 0 };
}

void *
nf_engine_input_buffer (NfEngine *e)
{
  return e->planned ? e->value_buf[e->model->graph->input] : NULL;
}

void *
nf_engine_output_buffer (NfEngine *e)
{
  return e->planned ? e->value_buf[e->model->graph->output] : NULL;
}

void *
nf_engine_value_buffer (NfEngine *e, int value)
{
  return e->planned ? e->value_buf[value] : NULL;
}

gboolean
nf_engine_run (NfEngine *e, GError **error)
{
  if (!e->planned) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "engine run before plan");
    return FALSE;
  }
  for (int i = 0; i < e->n_ops; i++) {
    if (e->skip[i])
      continue;
    NfOpCall *call = &e->calls[i];
    const NfOp *op = call->op;
    void *in[NF_OP_MAX_INPUTS];
    for (int j = 0; j < op->n_in; j++)
      in[j] = e->value_buf[op->in[j]];
    gint64 t0 = e->timing ? g_get_monotonic_time () : 0;
    if (!e->be->iface->forward[op->type] (e->be, call, in, e->value_buf[op->out], error)) {
      g_prefix_error (error, "op %d (%s%s%s): ", i, nf_op_type_name (op->type),
          op->name ? " " : "", op->name ? op->name : "");
      return FALSE;
    }
    if (e->timing) {
      if (e->be->iface->synchronize && !e->be->iface->synchronize (e->be, error))
        return FALSE;
      e->op_ms[i] = (g_get_monotonic_time () - t0) / 1000.0;
    }
  }
  return TRUE;
}

gboolean
nf_engine_run_host (NfEngine *e, const float *in, NfShape s, float *out, GError **error)
{
  if (!nf_engine_is_planned_for (e, s) && !nf_engine_plan (e, s, error))
    return FALSE;
  if (!e->be->iface->upload (e->be, nf_engine_input_buffer (e), in, s, error))
    return FALSE;
  if (!nf_engine_run (e, error))
    return FALSE;
  return e->be->iface->download (e->be, out, nf_engine_output_buffer (e),
      nf_engine_output_shape (e), error);
}

static gboolean
ensure_grad_buffers (NfEngine *e, GError **error)
{
  if (e->grad_buf)
    return TRUE;
  e->grad_buf = g_new0 (void *, e->n_values);
  for (int v = 0; v < e->n_values; v++) {
    if (nf_shape_numel (e->shapes[v]) == 0)
      continue;                 /* value left unused by batch-norm folding */
    e->grad_buf[v] = e->be->iface->alloc (e->be, e->shapes[v], error);
    if (!e->grad_buf[v])
      return FALSE;
    if (e->be->iface->zero && !e->be->iface->zero (e->be, e->grad_buf[v], e->shapes[v], error))
      return FALSE;
  }
  return TRUE;
}

void *
nf_engine_grad_buffer (NfEngine *e, int value)
{
  if (!e->planned || value < 0 || value >= e->n_values)
    return NULL;
  if (!ensure_grad_buffers (e, NULL))
    return NULL;
  return e->grad_buf[value];
}

gboolean
nf_engine_zero_grads (NfEngine *e, GError **error)
{
  if (!e->planned) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "engine not planned");
    return FALSE;
  }
  if (!e->be->iface->zero) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
        "backend %s cannot train (no gradient buffers)", e->be->iface->name);
    return FALSE;
  }
  if (!ensure_grad_buffers (e, error))
    return FALSE;
  for (int v = 0; v < e->n_values; v++)
    if (e->grad_buf[v] && !e->be->iface->zero (e->be, e->grad_buf[v], e->shapes[v], error))
      return FALSE;
  return TRUE;
}

gboolean
nf_engine_backward (NfEngine *e, NfParamGradFn param_grad, gpointer user_data,
    GError **error)
{
  const NfBackendIface *bi = e->be->iface;
  if (!e->planned || !e->opts.keep_all_values || !e->opts.no_fusion) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "backward needs an engine planned with keep_all_values and no_fusion");
    return FALSE;
  }
  if (!bi->zero) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
        "backend %s cannot train (no gradient buffers)", bi->name);
    return FALSE;
  }
  if (!ensure_grad_buffers (e, error))
    return FALSE;
  for (int i = e->n_ops - 1; i >= 0; i--) {
    NfOpCall *call = &e->calls[i];
    const NfOp *op = call->op;
    if (!bi->backward[op->type]) {
      g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
          "backend %s has no backward for op %d (%s)", bi->name, i,
          nf_op_type_name (op->type));
      return FALSE;
    }
    void *in[NF_OP_MAX_INPUTS], *din[NF_OP_MAX_INPUTS];
    for (int j = 0; j < op->n_in; j++) {
      in[j] = e->value_buf[op->in[j]];
      din[j] = e->grad_buf[op->in[j]];
    }
    void *dw = NULL, *db = NULL;
    if (param_grad && op->name && op->weight) {
      char *wk = g_strconcat (op->name, ".weight", NULL);
      char *bk = g_strconcat (op->name, ".bias", NULL);
      dw = param_grad (wk, user_data);
      db = op->bias ? param_grad (bk, user_data) : NULL;
      g_free (wk);
      g_free (bk);
    }
    if (!bi->backward[op->type] (e->be, call, in, e->value_buf[op->out],
            e->grad_buf[op->out], din, dw, db, error)) {
      g_prefix_error (error, "backward of op %d (%s): ", i, nf_op_type_name (op->type));
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
nf_engine_weights_changed (NfEngine *e, GError **error)
{
  if (!e->planned)
    return TRUE;
  const NfGraph *g = e->model->graph;
  if (g->n_ops != e->n_ops) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "the model's graph changed shape since planning; plan again");
    return FALSE;
  }
  for (int i = 0; i < e->n_ops; i++) {
    e->ops[i].weight = g->ops[i].weight;
    e->ops[i].bias = g->ops[i].bias;
    e->ops[i].mix = g->ops[i].mix;
    if (!e->ops[i].name || !e->prepared[i])
      continue;
    e->be->iface->release (e->be, &e->calls[i]);
    e->prepared[i] = FALSE;
    if (!e->be->iface->prepare (e->be, &e->calls[i], error))
      return FALSE;
    e->prepared[i] = TRUE;
  }
  return TRUE;
}

void
nf_engine_set_timing (NfEngine *e, gboolean on)
{
  e->timing = on;
}

double
nf_engine_op_ms (NfEngine *e, int op_index)
{
  return (e->planned && op_index >= 0 && op_index < e->n_ops) ? e->op_ms[op_index] : 0.0;
}

int
nf_engine_n_calls (NfEngine *e)
{
  return e->planned ? e->n_ops : 0;
}

const NfOpCall *
nf_engine_call (NfEngine *e, int i)
{
  return (e->planned && i >= 0 && i < e->n_ops) ? &e->calls[i] : NULL;
}

gboolean
nf_engine_call_skipped (NfEngine *e, int i)
{
  return (e->planned && i >= 0 && i < e->n_ops) ? e->skip[i] : FALSE;
}
