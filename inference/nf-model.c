/* nf-model.c — model files: load, validate, fold batch norm, bind weights, save.
 *
 * What it does: builds an NfModel from a safetensors file whose __metadata__ carries a
 * graph (format_version 1), or from a PyTorch fast_neural_style TransformerNet
 * state_dict (recognised by its tensor names); checks every tensor against the graph;
 * checks the declared task/scale against what the graph really does; folds batch_norm
 * into the preceding convolution for running; writes models back.
 * What it does not: run networks (nf-engine.c) or define architectures (nf-arch.c,
 * used here only to rebuild TransformerNet's graph).
 */
#include "nf-model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-error.h"

static void
tensor_free (gpointer p)
{
  NfModelTensor *t = p;
  nf_free (t->data);
  g_free (t);
}

static NfModelTensor *
tensor_new (int ndim, const int64_t *dims)
{
  NfModelTensor *t = g_new0 (NfModelTensor, 1);
  size_t n = 1;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    t->dims[i] = dims[i];
    n *= (size_t) dims[i];
  }
  t->data = nf_alloc_floats (n);
  return t;
}

size_t
nf_model_tensor_numel (const NfModelTensor *t)
{
  size_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= (size_t) t->dims[i];
  return n;
}

const char *
nf_task_name (NfTask t)
{
  switch (t) {
    case NF_TASK_STYLE:
      return "style";
    case NF_TASK_SUPERRES:
      return "superres";
    default:
      return "other";
  }
}

/* ---- what tensors an op needs --------------------------------------------- */

typedef struct {
  const char *suffix;
  int ndim;
  int64_t dims[4];
} TensorSpec;

/* Fills specs for op; returns how many. */
static int
op_tensor_specs (const NfOp *op, TensorSpec *specs)
{
  int n = 0;
  switch (op->type) {
    case NF_OP_CONV2D:
      specs[n++] = (TensorSpec) { "weight", 4, { op->cout, op->cin, op->k, op->k } };
      if (op->has_bias)
        specs[n++] = (TensorSpec) { "bias", 1, { op->cout } };
      break;
    case NF_OP_CONV_TRANSPOSE2D:
      specs[n++] = (TensorSpec) { "weight", 4, { op->cin, op->cout, op->k, op->k } };
      if (op->has_bias)
        specs[n++] = (TensorSpec) { "bias", 1, { op->cout } };
      break;
    case NF_OP_INSTANCE_NORM:
      if (op->affine) {
        specs[n++] = (TensorSpec) { "weight", 1, { op->c } };
        specs[n++] = (TensorSpec) { "bias", 1, { op->c } };
      }
      break;
    case NF_OP_COND_INSTANCE_NORM:   /* one row per style */
      specs[n++] = (TensorSpec) { "weight", 2, { op->styles, op->c } };
      specs[n++] = (TensorSpec) { "bias", 2, { op->styles, op->c } };
      break;
    case NF_OP_BATCH_NORM:
      specs[n++] = (TensorSpec) { "weight", 1, { op->c } };
      specs[n++] = (TensorSpec) { "bias", 1, { op->c } };
      specs[n++] = (TensorSpec) { "running_mean", 1, { op->c } };
      specs[n++] = (TensorSpec) { "running_var", 1, { op->c } };
      break;
    default:
      break;
  }
  return n;
}

static char *
dims_str (int ndim, const int64_t *dims)
{
  GString *s = g_string_new ("(");
  for (int i = 0; i < ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", dims[i]);
  g_string_append (s, ")");
  return g_string_free (s, FALSE);
}

/* ---- lifecycle -------------------------------------------------------------- */

static NfModel *
model_alloc (void)
{
  NfModel *m = g_new0 (NfModel, 1);
  m->tensors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, tensor_free);
  m->folded = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, tensor_free);
  m->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->scale = 1;
  m->in_lo = m->out_lo = 0.0f;
  m->in_hi = m->out_hi = 255.0f;
  m->size_multiple = 1;
  m->task = NF_TASK_OTHER;
  return m;
}

void
nf_model_free (NfModel *m)
{
  if (!m)
    return;
  nf_graph_free (m->graph);
  nf_graph_free (m->source_graph);
  g_hash_table_unref (m->tensors);
  g_hash_table_unref (m->folded);
  g_hash_table_unref (m->metadata);
  g_strfreev (m->style_names);
  g_free (m->style_mix);
  g_free (m);
}

NfModelTensor *
nf_model_tensor (NfModel *m, const char *name)
{
  return g_hash_table_lookup (m->tensors, name);
}

void
nf_model_set_metadata (NfModel *m, const char *key, const char *value)
{
  g_hash_table_insert (m->metadata, g_strdup (key), g_strdup (value));
}

const char *
nf_model_get_metadata (const NfModel *m, const char *key)
{
  return g_hash_table_lookup (m->metadata, key);
}

int
nf_graph_size_multiple (const NfGraph *g)
{
  int m = 1;
  for (int i = 0; i < g->n_ops; i++) {
    const NfOp *op = &g->ops[i];
    if ((op->type == NF_OP_CONV2D || op->type == NF_OP_AVG_POOL2D
            || op->type == NF_OP_MAX_POOL2D) && op->stride > 1 && m < 1024)
      m *= op->stride;
  }
  return m;
}

/* ---- batch-norm folding and binding ----------------------------------------- */

static const float *
lookup_data (NfModel *m, const char *prefix, const char *suffix)
{
  char *key = g_strconcat (prefix, ".", suffix, NULL);
  NfModelTensor *t = g_hash_table_lookup (m->folded, key);
  if (!t)
    t = g_hash_table_lookup (m->tensors, key);
  g_free (key);
  return t ? t->data : NULL;
}

/* Folds batch_norm op b (index bi) of graph g into the conv producing its input. */
static gboolean
fold_one (NfModel *m, NfGraph *g, int bi, GError **error)
{
  NfOp *bn = &g->ops[bi];
  int v = bn->in[0];
  int pi = -1;
  for (int i = 0; i < bi; i++)
    if (g->ops[i].out == v)
      pi = i;
  if (pi < 0 || (g->ops[pi].type != NF_OP_CONV2D
          && g->ops[pi].type != NF_OP_CONV_TRANSPOSE2D)
      || nf_graph_n_consumers (g, v) != 1 || v == g->output) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "batch_norm %s must directly follow a conv2d or conv_transpose2d whose output "
        "it alone reads (it is folded into that convolution)", bn->name);
    return FALSE;
  }
  NfOp *conv = &g->ops[pi];
  const float *gamma = lookup_data (m, bn->name, "weight");
  const float *beta = lookup_data (m, bn->name, "bias");
  const float *mean = lookup_data (m, bn->name, "running_mean");
  const float *var = lookup_data (m, bn->name, "running_var");
  const float *w = lookup_data (m, conv->name, "weight");
  const float *b = conv->has_bias ? lookup_data (m, conv->name, "bias") : NULL;
  g_assert (gamma && beta && mean && var && w);

  int cout = conv->cout, cin = conv->cin, kk = conv->k * conv->k;
  int64_t wd[4];
  if (conv->type == NF_OP_CONV2D) {
    wd[0] = cout; wd[1] = cin;
  } else {
    wd[0] = cin; wd[1] = cout;
  }
  wd[2] = wd[3] = conv->k;
  int64_t bd[1] = { cout };
  NfModelTensor *fw = tensor_new (4, wd);
  NfModelTensor *fb = tensor_new (1, bd);
  for (int co = 0; co < cout; co++) {
    double s = gamma[co] / sqrt ((double) var[co] + bn->eps);
    fb->data[co] = (float) (((b ? b[co] : 0.0) - mean[co]) * s + beta[co]);
    for (int ci = 0; ci < cin; ci++)
      for (int k = 0; k < kk; k++) {
        size_t idx = conv->type == NF_OP_CONV2D ? ((size_t) co * cin + ci) * kk + k
            : ((size_t) ci * cout + co) * kk + k;
        fw->data[idx] = (float) (w[idx] * s);
      }
  }
  g_hash_table_replace (m->folded, g_strconcat (conv->name, ".weight", NULL), fw);
  g_hash_table_replace (m->folded, g_strconcat (conv->name, ".bias", NULL), fb);
  conv->has_bias = TRUE;
  conv->out = bn->out;          /* the conv now produces what the bn produced */
  g_free (bn->name);
  memmove (bn, bn + 1, sizeof (NfOp) * (g->n_ops - bi - 1));
  g->n_ops--;
  return TRUE;
}

gboolean
nf_model_bind (NfModel *m, GError **error)
{
  NfGraph *g = nf_graph_copy (m->source_graph);
  g_hash_table_remove_all (m->folded);
  for (int i = 0; i < g->n_ops;) {
    if (g->ops[i].type == NF_OP_BATCH_NORM) {
      if (!fold_one (m, g, i, error)) {
        nf_graph_free (g);
        return FALSE;
      }
    } else {
      i++;
    }
  }
  if (!nf_model_styles_bind (m, g, error)) {
    nf_graph_free (g);
    return FALSE;
  }
  for (int i = 0; i < g->n_ops; i++) {
    NfOp *op = &g->ops[i];
    op->weight = op->bias = op->mix = NULL;
    if (!op->name)
      continue;
    if (op->type == NF_OP_COND_INSTANCE_NORM) {
      op->weight = lookup_data (m, op->name, "weight");
      op->bias = lookup_data (m, op->name, "bias");
      op->mix = m->style_mix;
    } else if (op->type == NF_OP_CONV2D || op->type == NF_OP_CONV_TRANSPOSE2D
        || (op->type == NF_OP_INSTANCE_NORM && op->affine)) {
      op->weight = lookup_data (m, op->name, "weight");
      if (op->has_bias || op->type == NF_OP_INSTANCE_NORM)
        op->bias = lookup_data (m, op->name, "bias");
    }
  }
  nf_graph_free (m->graph);
  m->graph = g;
  m->size_multiple = nf_graph_size_multiple (g);
  return TRUE;
}

NfModel *
nf_model_new_for_graph (const NfGraph *g, NfTask task, int scale, GError **error)
{
  NfModel *m = model_alloc ();
  m->source_graph = nf_graph_copy (g);
  m->task = task;
  m->scale = scale > 0 ? scale : 1;
  for (int i = 0; i < g->n_ops; i++) {
    TensorSpec specs[4];
    int n = op_tensor_specs (&g->ops[i], specs);
    for (int j = 0; j < n; j++) {
      char *key = g_strconcat (g->ops[i].name, ".", specs[j].suffix, NULL);
      if (g_hash_table_contains (m->tensors, key)) {
        g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
            "two ops share the tensor name \"%s\"", key);
        g_free (key);
        nf_model_free (m);
        return NULL;
      }
      NfModelTensor *t = tensor_new (specs[j].ndim, specs[j].dims);
      if (g_str_equal (specs[j].suffix, "running_var")
          || (g->ops[i].type != NF_OP_CONV2D && g->ops[i].type != NF_OP_CONV_TRANSPOSE2D
              && g_str_equal (specs[j].suffix, "weight")))
        for (size_t q = 0; q < nf_model_tensor_numel (t); q++)
          t->data[q] = 1.0f;
      g_hash_table_insert (m->tensors, key, t);
    }
  }
  if (!nf_model_bind (m, error)) {
    nf_model_free (m);
    return NULL;
  }
  return m;
}

/* ---- metadata parsing --------------------------------------------------------- */

static gboolean
parse_range (const char *s, float *lo, float *hi)
{
  const char *sep = strstr (s, "..");
  if (!sep || sep == s || sep[2] == '\0')
    return FALSE;
  char *a_str = g_strndup (s, sep - s);
  char *end = NULL;
  double a = g_ascii_strtod (a_str, &end);
  gboolean ok = end != a_str && *end == '\0';
  g_free (a_str);
  double b = g_ascii_strtod (sep + 2, &end);
  ok = ok && end != sep + 2 && *end == '\0' && a < b && isfinite (a) && isfinite (b);
  if (!ok)
    return FALSE;
  *lo = (float) a;
  *hi = (float) b;
  return TRUE;
}

/* Checks input 3 channels, output 3 channels, output size = scale x input. */
static gboolean
check_io (NfModel *m, GError **error)
{
  NfGraph *g = m->graph;
  int sm = m->size_multiple;
  int h = sm * 8, w = sm * 12;
  while (h < 24)
    h += sm;
  while (w < 32)
    w += sm;
  NfShape *shapes = g_new0 (NfShape, g->n_values);
  GError *e = NULL;
  gboolean ok = FALSE;
  int cin = 0;
  for (int i = 0; i < g->n_ops && !cin; i++)
    for (int j = 0; j < g->ops[i].n_in; j++)
      if (g->ops[i].in[j] == g->input && (g->ops[i].type == NF_OP_CONV2D
              || g->ops[i].type == NF_OP_CONV_TRANSPOSE2D))
        cin = g->ops[i].cin;
  if (cin != 3) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "the network's input must feed a convolution with 3 input channels (RGB); "
        "it has %d", cin);
    goto out;
  }
  if (!nf_graph_infer_shapes (g, (NfShape) { 1, 3, h, w }, shapes, &e)) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "the graph cannot run: %s", e->message);
    g_error_free (e);
    goto out;
  }
  NfShape o = shapes[g->output];
  if (o.c != 3) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "the network outputs %d channels; an image filter needs 3", o.c);
    goto out;
  }
  if (o.h != h * m->scale || o.w != w * m->scale) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "the model declares scale %d but its graph turns %dx%d into %dx%d",
        m->scale, w, h, o.w, o.h);
    goto out;
  }
  ok = TRUE;
out:
  g_free (shapes);
  return ok;
}

/* ---- TransformerNet import ---------------------------------------------------- */

static gboolean
is_transformer_net (const NfSafetensors *st)
{
  return nf_safetensors_find (st, "conv1.conv2d.weight")
      && nf_safetensors_find (st, "res1.conv1.conv2d.weight")
      && nf_safetensors_find (st, "deconv3.conv2d.weight");
}

/* Our tensor name for a TransformerNet key, or NULL for keys to ignore. */
static char *
transformer_net_rename (const char *key)
{
  if (g_str_has_suffix (key, ".running_mean") || g_str_has_suffix (key, ".running_var")
      || g_str_has_suffix (key, ".num_batches_tracked"))
    return NULL;
  GString *s = g_string_new (key);
  char *p = strstr (s->str, ".conv2d.");
  if (p)
    g_string_erase (s, p - s->str, strlen (".conv2d"));
  return g_string_free (s, FALSE);
}

static NfGraph *
transformer_net_graph (const NfSafetensors *st, GError **error)
{
  const NfStEntry *c1 = nf_safetensors_find (st, "conv1.conv2d.weight");
  int n_res = 0;
  for (;;) {
    char *k = g_strdup_printf ("res%d.conv1.conv2d.weight", n_res + 1);
    gboolean has = nf_safetensors_find (st, k) != NULL;
    g_free (k);
    if (!has)
      break;
    n_res++;
  }
  if (c1->ndim != 4 || c1->dims[0] < 1 || c1->dims[0] > 4096) {
    g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
        "TransformerNet conv1.conv2d.weight has an unexpected shape");
    return NULL;
  }
  NfArchSpec spec = { .arch = "style-full", .width = (int) c1->dims[0], .n_res = n_res };
  return nf_arch_build_graph (&spec, error);
}

/* ---- loading ----------------------------------------------------------------- */

NfModel *
nf_model_from_safetensors (const NfSafetensors *st, GError **error)
{
  NfModel *m = model_alloc ();
  NfGraph *g = NULL;
  gboolean tnet = FALSE;
  GHashTableIter it;
  gpointer k, v;

  GHashTable *md = nf_safetensors_metadata_table (st);
  if (md) {
    g_hash_table_iter_init (&it, md);
    while (g_hash_table_iter_next (&it, &k, &v))
      nf_model_set_metadata (m, k, v);
  }
  const char *graph_json = nf_model_get_metadata (m, "graph");
  if (graph_json) {
    const char *ver = nf_model_get_metadata (m, "format_version");
    if (!ver || strtol (ver, NULL, 10) != NF_FORMAT_VERSION) {
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
          "model format_version \"%s\" is not supported (this build reads version %d)",
          ver ? ver : "(missing)", NF_FORMAT_VERSION);
      goto fail;
    }
    g = nf_graph_from_json (graph_json, error);
    if (!g)
      goto fail;
  } else if (is_transformer_net (st)) {
    tnet = TRUE;
    g = transformer_net_graph (st, error);
    if (!g)
      goto fail;
    if (!nf_model_get_metadata (m, "task"))
      nf_model_set_metadata (m, "task", "style");
  } else {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "the file has no \"graph\" in its metadata and is not a PyTorch "
        "fast_neural_style TransformerNet state_dict");
    goto fail;
  }
  m->source_graph = g;

  /* task, scale, ranges */
  const char *task = nf_model_get_metadata (m, "task");
  if (!task || g_str_equal (task, "style"))
    m->task = task ? NF_TASK_STYLE : NF_TASK_OTHER;
  else if (g_str_equal (task, "superres"))
    m->task = NF_TASK_SUPERRES;
  else {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "unknown task \"%s\" in the model metadata (style or superres)", task);
    goto fail;
  }
  const char *scale = nf_model_get_metadata (m, "scale");
  if (scale) {
    char *end = NULL;
    long s = strtol (scale, &end, 10);
    if (end == scale || *end || s < 1 || s > 8) {
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
          "metadata scale \"%s\" is not an integer 1..8", scale);
      goto fail;
    }
    m->scale = (int) s;
  } else if (m->task == NF_TASK_SUPERRES) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "a superres model needs a \"scale\" in its metadata");
    goto fail;
  }
  const char *keys[2] = { "input_range", "output_range" };
  float *lo[2] = { &m->in_lo, &m->out_lo }, *hi[2] = { &m->in_hi, &m->out_hi };
  for (int i = 0; i < 2; i++) {
    const char *r = nf_model_get_metadata (m, keys[i]);
    if (r && !parse_range (r, lo[i], hi[i])) {
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
          "metadata %s \"%s\" is not of the form LO..HI (e.g. 0..255)", keys[i], r);
      goto fail;
    }
  }

  /* tensors: every needed one present with the right shape, nothing unexplained */
  GHashTable *used = g_hash_table_new (g_str_hash, g_str_equal);
  for (int i = 0; i < g->n_ops; i++) {
    TensorSpec specs[4];
    int n = op_tensor_specs (&g->ops[i], specs);
    for (int j = 0; j < n; j++) {
      char *key = g_strconcat (g->ops[i].name, ".", specs[j].suffix, NULL);
      char *file_key = tnet ? NULL : g_strdup (key);
      if (tnet) {               /* conv weights carry ".conv2d" in TransformerNet */
        const char *dot = strrchr (g->ops[i].name, '.');
        const char *last = dot ? dot + 1 : g->ops[i].name;
        if (g_str_has_prefix (last, "conv") || g_str_has_prefix (last, "deconv"))
          file_key = g_strconcat (g->ops[i].name, ".conv2d.", specs[j].suffix, NULL);
        else
          file_key = g_strdup (key);
      }
      const NfStEntry *e = nf_safetensors_find (st, file_key);
      if (!e) {
        g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
            "tensor \"%s\" is missing (needed by %s %s)", file_key,
            nf_op_type_name (g->ops[i].type), g->ops[i].name);
        g_free (key);
        g_free (file_key);
        g_hash_table_unref (used);
        goto fail;
      }
      gboolean same = e->ndim == specs[j].ndim;
      for (int d = 0; same && d < e->ndim; d++)
        same = e->dims[d] == specs[j].dims[d];
      if (!same) {
        char *a = dims_str (e->ndim, e->dims), *b = dims_str (specs[j].ndim, specs[j].dims);
        g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
            "tensor \"%s\" has shape %s but %s %s needs %s", file_key, a,
            nf_op_type_name (g->ops[i].type), g->ops[i].name, b);
        g_free (a);
        g_free (b);
        g_free (key);
        g_free (file_key);
        g_hash_table_unref (used);
        goto fail;
      }
      GError *ce = NULL;
      float *data = nf_safetensors_get_floats (st, e, &ce);
      if (!data) {
        g_propagate_error (error, ce);
        g_free (key);
        g_free (file_key);
        g_hash_table_unref (used);
        goto fail;
      }
      NfModelTensor *t = g_new0 (NfModelTensor, 1);
      t->ndim = e->ndim;
      for (int d = 0; d < e->ndim; d++)
        t->dims[d] = e->dims[d];
      t->data = data;
      for (size_t q = 0; q < nf_model_tensor_numel (t); q++)
        if (!isfinite (data[q])) {
          g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
              "tensor \"%s\" contains NaN or infinite values", file_key);
          tensor_free (t);
          g_free (key);
          g_free (file_key);
          g_hash_table_unref (used);
          goto fail;
        }
      g_hash_table_insert (m->tensors, key, t);
      g_hash_table_add (used, (gpointer) e->name);
      g_free (file_key);
    }
  }
  for (guint i = 0; i < nf_safetensors_n_tensors (st); i++) {
    const NfStEntry *e = nf_safetensors_entry (st, i);
    if (g_hash_table_contains (used, e->name))
      continue;
    char *renamed = tnet ? transformer_net_rename (e->name) : g_strdup (e->name);
    if (renamed) {
      g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
          "tensor \"%s\" is not used by any op of the graph (wrong model or wrong graph?)",
          e->name);
      g_free (renamed);
      g_hash_table_unref (used);
      goto fail;
    }
  }
  g_hash_table_unref (used);

  if (!nf_model_bind (m, error) || !check_io (m, error))
    goto fail;
  if (tnet) {
    nf_model_set_metadata (m, "input_range", "0..255");
    nf_model_set_metadata (m, "output_range", "0..255");
    nf_model_set_metadata (m, "arch", "transformernet");
  }
  return m;

fail:
  nf_model_free (m);
  return NULL;
}

NfModel *
nf_model_load_bytes (const guint8 *bytes, gsize len, GError **error)
{
  NfSafetensors *st = nf_safetensors_parse (bytes, len, error);
  if (!st)
    return NULL;
  NfModel *m = nf_model_from_safetensors (st, error);
  nf_safetensors_free (st);
  return m;
}

NfModel *
nf_model_load (const char *path, GError **error)
{
  NfSafetensors *st = nf_safetensors_load (path, error);
  if (!st)
    return NULL;
  NfModel *m = nf_model_from_safetensors (st, error);
  nf_safetensors_free (st);
  if (!m)
    g_prefix_error (error, "%s: ", path);
  return m;
}

/* ---- saving ------------------------------------------------------------------- */

gboolean
nf_model_save (NfModel *m, const char *path, NfDtype dtype, GError **error)
{
  NfStWriter *w = nf_st_writer_new ();
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, m->metadata);
  while (g_hash_table_iter_next (&it, &k, &v))
    nf_st_writer_set_metadata (w, k, v);
  char *json = nf_graph_to_json (m->source_graph);
  char *ver = g_strdup_printf ("%d", NF_FORMAT_VERSION);
  char *scale = g_strdup_printf ("%d", m->scale);
  char *in_r = g_strdup_printf ("%g..%g", m->in_lo, m->in_hi);
  char *out_r = g_strdup_printf ("%g..%g", m->out_lo, m->out_hi);
  nf_st_writer_set_metadata (w, "graph", json);
  nf_st_writer_set_metadata (w, "format_version", ver);
  nf_st_writer_set_metadata (w, "task", nf_task_name (m->task));
  nf_st_writer_set_metadata (w, "scale", scale);
  nf_st_writer_set_metadata (w, "input_range", in_r);
  nf_st_writer_set_metadata (w, "output_range", out_r);
  g_free (json);
  g_free (ver);
  g_free (scale);
  g_free (in_r);
  g_free (out_r);

  const NfGraph *g = m->source_graph;
  for (int i = 0; i < g->n_ops; i++) {
    TensorSpec specs[4];
    int n = op_tensor_specs (&g->ops[i], specs);
    for (int j = 0; j < n; j++) {
      char *key = g_strconcat (g->ops[i].name, ".", specs[j].suffix, NULL);
      NfModelTensor *t = g_hash_table_lookup (m->tensors, key);
      if (t)
        nf_st_writer_add (w, key, dtype, t->ndim, t->dims, t->data);
      g_free (key);
    }
  }
  gboolean ok = nf_st_writer_write (w, path, error);
  nf_st_writer_free (w);
  return ok;
}
