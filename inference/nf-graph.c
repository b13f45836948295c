/* nf-graph.c — parsing, validating, serialising and shape-inferring network graphs.
 *
 * What it does: turns the graph JSON of a model file into an NfGraph (and back),
 * checks every op's parameters and references, and computes value shapes for an input
 * size with errors that say which op cannot take which size.
 * What it does not: weights (nf-model.c) or execution (nf-engine.c).
 */
#include "nf-graph.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "nf-error.h"

static const char *const op_names[NF_OP_COUNT] = {
  [NF_OP_CONV2D] = "conv2d",
  [NF_OP_CONV_TRANSPOSE2D] = "conv_transpose2d",
  [NF_OP_INSTANCE_NORM] = "instance_norm",
  [NF_OP_BATCH_NORM] = "batch_norm",
  [NF_OP_RELU] = "relu",
  [NF_OP_ADD] = "add",
  [NF_OP_CONCAT] = "concat",
  [NF_OP_UPSAMPLE_NEAREST] = "upsample_nearest",
  [NF_OP_PIXEL_SHUFFLE] = "pixel_shuffle",
  [NF_OP_TANH_SCALE] = "tanh_scale",
  [NF_OP_CLAMP] = "clamp",
  [NF_OP_AVG_POOL2D] = "avg_pool2d",
  [NF_OP_MAX_POOL2D] = "max_pool2d",
  [NF_OP_COND_INSTANCE_NORM] = "cond_instance_norm",
};

const char *
nf_op_type_name (NfOpType t)
{
  return (t >= 0 && t < NF_OP_COUNT) ? op_names[t] : "unknown";
}

gboolean
nf_op_type_from_name (const char *s, NfOpType *out)
{
  for (int i = 0; i < NF_OP_COUNT; i++)
    if (g_strcmp0 (s, op_names[i]) == 0) {
      *out = (NfOpType) i;
      return TRUE;
    }
  return FALSE;
}

static gboolean
op_has_weights (NfOpType t)
{
  return t == NF_OP_CONV2D || t == NF_OP_CONV_TRANSPOSE2D || t == NF_OP_INSTANCE_NORM
      || t == NF_OP_BATCH_NORM || t == NF_OP_COND_INSTANCE_NORM;
}

void
nf_graph_free (NfGraph *g)
{
  if (!g)
    return;
  for (int i = 0; i < g->n_values; i++)
    g_free (g->value_names[i]);
  g_free (g->value_names);
  for (int i = 0; i < g->n_ops; i++)
    g_free (g->ops[i].name);
  g_free (g->ops);
  g_free (g);
}

NfGraph *
nf_graph_copy (const NfGraph *g)
{
  NfGraph *c = g_new0 (NfGraph, 1);
  *c = *g;
  c->value_names = g_new0 (char *, g->n_values);
  for (int i = 0; i < g->n_values; i++)
    c->value_names[i] = g_strdup (g->value_names[i]);
  c->ops = g_new0 (NfOp, g->n_ops > 0 ? g->n_ops : 1);
  memcpy (c->ops, g->ops, sizeof (NfOp) * g->n_ops);
  for (int i = 0; i < g->n_ops; i++)
    c->ops[i].name = g_strdup (g->ops[i].name);
  return c;
}

int
nf_graph_n_styles (const NfGraph *g, GError **error)
{
  int n = 0, first = -1;
  for (int i = 0; i < g->n_ops; i++) {
    const NfOp *op = &g->ops[i];
    if (op->type != NF_OP_COND_INSTANCE_NORM)
      continue;
    if (first >= 0 && op->styles != n) {
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
          "graph op %d (cond_instance_norm %s) holds %d styles but op %d (%s) holds %d: "
          "one style mix drives every cond_instance_norm, so they must agree", i,
          op->name ? op->name : "", op->styles, first,
          g->ops[first].name ? g->ops[first].name : "", n);
      return -1;
    }
    if (first < 0) {
      first = i;
      n = op->styles;
    }
  }
  return n;
}

int
nf_graph_n_consumers (const NfGraph *g, int v)
{
  int n = 0;
  for (int i = 0; i < g->n_ops; i++)
    for (int j = 0; j < g->ops[i].n_in; j++)
      if (g->ops[i].in[j] == v)
        n++;
  return n;
}

/* ---- validation of one op's parameters ---------------------------------- */

static gboolean
validate_op (const NfOp *op, int index, GError **error)
{
  const char *what = nf_op_type_name (op->type);
  const char *name = op->name ? op->name : "";
#define FAIL(...) do { \
    char *msg_ = g_strdup_printf (__VA_ARGS__); \
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "graph op %d (%s%s%s): %s", index, \
        what, *name ? " " : "", name, msg_); \
    g_free (msg_); return FALSE; } while (0)

  if (op_has_weights (op->type) && (!op->name || !*op->name))
    FAIL ("needs a \"name\" (the prefix of its tensors)");

  int want_in = 1;
  if (op->type == NF_OP_ADD)
    want_in = 2;
  if (op->type == NF_OP_CONCAT) {
    if (op->n_in < 2)
      FAIL ("concat needs at least 2 inputs");
  } else if (op->n_in != want_in) {
    FAIL ("expects %d input%s, got %d", want_in, want_in > 1 ? "s" : "", op->n_in);
  }

  switch (op->type) {
    case NF_OP_CONV2D:
    case NF_OP_CONV_TRANSPOSE2D:
      if (op->k < 1 || op->k > 31)
        FAIL ("kernel size k=%d out of range 1..31", op->k);
      if (op->stride < 1 || op->stride > 16)
        FAIL ("stride=%d out of range 1..16", op->stride);
      if (op->cin < 1 || op->cout < 1 || op->cin > 65536 || op->cout > 65536)
        FAIL ("cin=%d, cout=%d must be 1..65536", op->cin, op->cout);
      if (op->padding < 0 || op->padding > op->k)
        FAIL ("padding=%d out of range 0..k", op->padding);
      if (op->type == NF_OP_CONV_TRANSPOSE2D
          && (op->output_padding < 0 || op->output_padding >= op->stride))
        FAIL ("output_padding=%d must be 0..stride-1", op->output_padding);
      break;
    case NF_OP_INSTANCE_NORM:
    case NF_OP_BATCH_NORM:
    case NF_OP_COND_INSTANCE_NORM:
      if (op->c < 1 || op->c > 65536)
        FAIL ("channel count c=%d out of range", op->c);
      if (!(op->eps > 0.0f && op->eps < 1.0f))
        FAIL ("eps=%g must be in (0, 1)", op->eps);
      if (op->type == NF_OP_COND_INSTANCE_NORM && (op->styles < 1 || op->styles > 1024))
        FAIL ("styles=%d out of range 1..1024 (the number of styles it holds rows for)",
            op->styles);
      break;
    case NF_OP_UPSAMPLE_NEAREST:
    case NF_OP_PIXEL_SHUFFLE:
      if (op->factor < 1 || op->factor > 8)
        FAIL ("factor=%d out of range 1..8", op->factor);
      break;
    case NF_OP_AVG_POOL2D:
    case NF_OP_MAX_POOL2D:
      if (op->k < 1 || op->k > 16 || op->stride < 1 || op->stride > 16)
        FAIL ("k=%d, stride=%d out of range 1..16", op->k, op->stride);
      break;
    case NF_OP_CLAMP:
      if (!(op->min <= op->max))
        FAIL ("min=%g is above max=%g", op->min, op->max);
      break;
    case NF_OP_TANH_SCALE:
      if (!(op->scale == op->scale) || !(op->offset == op->offset))
        FAIL ("scale/offset must be numbers");
      break;
    default:
      break;
  }
  return TRUE;
#undef FAIL
}

/* ---- JSON -> graph -------------------------------------------------------- */

typedef struct {
  GPtrArray *names;             /* value names */
  GHashTable *ids;              /* name -> id+1 */
} ValueTable;

static int
value_lookup (ValueTable *vt, const char *name)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (vt->ids, name)) - 1;
}

static int
value_define (ValueTable *vt, const char *name)
{
  int id = (int) vt->names->len;
  g_ptr_array_add (vt->names, g_strdup (name));
  g_hash_table_insert (vt->ids, g_strdup (name), GINT_TO_POINTER (id + 1));
  return id;
}

static gboolean
get_int (JsonObject *o, const char *key, int def, int *out, int index, GError **error)
{
  if (!json_object_has_member (o, key)) {
    *out = def;
    return TRUE;
  }
  JsonNode *n = json_object_get_member (o, key);
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph op %d: \"%s\" must be an integer", index, key);
    return FALSE;
  }
  gint64 v = json_node_get_int (n);
  if (v < -1000000 || v > 1000000) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph op %d: \"%s\"=%" G_GINT64_FORMAT " is out of range", index, key, v);
    return FALSE;
  }
  *out = (int) v;
  return TRUE;
}

static gboolean
get_float (JsonObject *o, const char *key, float def, float *out, int index, GError **error)
{
  if (!json_object_has_member (o, key)) {
    *out = def;
    return TRUE;
  }
  JsonNode *n = json_object_get_member (o, key);
  GType t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph op %d: \"%s\" must be a number", index, key);
    return FALSE;
  }
  *out = (float) json_node_get_double (n);
  return TRUE;
}

static gboolean
get_bool (JsonObject *o, const char *key, gboolean def, gboolean *out, int index,
    GError **error)
{
  if (!json_object_has_member (o, key)) {
    *out = def;
    return TRUE;
  }
  JsonNode *n = json_object_get_member (o, key);
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph op %d: \"%s\" must be true or false", index, key);
    return FALSE;
  }
  *out = json_node_get_boolean (n);
  return TRUE;
}

static const char *
get_string (JsonObject *o, const char *key)
{
  if (!json_object_has_member (o, key))
    return NULL;
  JsonNode *n = json_object_get_member (o, key);
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
parse_op (JsonObject *o, int index, ValueTable *vt, NfOp *op, GError **error)
{
  const char *type = get_string (o, "op");
  if (!type) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph op %d: missing \"op\" (a string such as \"conv2d\")", index);
    return FALSE;
  }
  if (!nf_op_type_from_name (type, &op->type)) {
    GString *known = g_string_new (NULL);
    for (int i = 0; i < NF_OP_COUNT; i++)
      g_string_append_printf (known, "%s%s", i ? ", " : "", op_names[i]);
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph op %d: unknown op \"%s\" (known: %s)", index, type, known->str);
    g_string_free (known, TRUE);
    return FALSE;
  }
  const char *name = get_string (o, "name");
  if (json_object_has_member (o, "name") && !name) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "graph op %d: \"name\" must be a string",
        index);
    return FALSE;
  }
  op->name = g_strdup (name);

  /* inputs */
  JsonNode *in = json_object_get_member (o, "in");
  const char *in_names[NF_OP_MAX_INPUTS];
  int n_in = 0;
  if (in && JSON_NODE_HOLDS_VALUE (in) && json_node_get_value_type (in) == G_TYPE_STRING) {
    in_names[n_in++] = json_node_get_string (in);
  } else if (in && JSON_NODE_HOLDS_ARRAY (in)) {
    JsonArray *a = json_node_get_array (in);
    guint len = json_array_get_length (a);
    if (len > NF_OP_MAX_INPUTS) {
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
          "graph op %d (%s): more than %d inputs", index, type, NF_OP_MAX_INPUTS);
      return FALSE;
    }
    for (guint i = 0; i < len; i++) {
      JsonNode *e = json_array_get_element (a, i);
      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING) {
        g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
            "graph op %d (%s): \"in\" must list value names", index, type);
        return FALSE;
      }
      in_names[n_in++] = json_node_get_string (e);
    }
  } else {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph op %d (%s): missing \"in\" (a value name or a list of them)", index, type);
    return FALSE;
  }
  op->n_in = n_in;
  for (int i = 0; i < n_in; i++) {
    int id = value_lookup (vt, in_names[i]);
    if (id < 0) {
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
          "graph op %d (%s): input \"%s\" is not the graph input nor produced by an "
          "earlier op", index, type, in_names[i]);
      return FALSE;
    }
    op->in[i] = id;
  }

  const char *out = get_string (o, "out");
  if (!out || !*out) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph op %d (%s): missing \"out\" (the name of the value it produces)", index, type);
    return FALSE;
  }
  if (value_lookup (vt, out) >= 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph op %d (%s): value \"%s\" is produced twice", index, type, out);
    return FALSE;
  }
  op->out = value_define (vt, out);

  int k = 0;
  if (!get_int (o, "k", 1, &k, index, error))
    return FALSE;
  op->k = k;
  const char *pad = get_string (o, "pad");
  op->pad_mode = NF_PAD_ZERO;
  gboolean pad_none = FALSE;
  if (pad) {
    if (g_str_equal (pad, "reflect"))
      op->pad_mode = NF_PAD_REFLECT;
    else if (g_str_equal (pad, "none"))
      pad_none = TRUE;
    else if (!g_str_equal (pad, "zero")) {
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
          "graph op %d (%s): pad \"%s\" unknown (zero, reflect or none)", index, type, pad);
      return FALSE;
    }
  }
  int def_stride = (op->type == NF_OP_AVG_POOL2D || op->type == NF_OP_MAX_POOL2D) ? k : 1;
  int def_pad = op->type == NF_OP_CONV2D && !pad_none ? k / 2 : 0;
  if (!get_int (o, "stride", def_stride, &op->stride, index, error)
      || !get_int (o, "padding", def_pad, &op->padding, index, error)
      || !get_int (o, "output_padding", 0, &op->output_padding, index, error)
      || !get_int (o, "cin", 0, &op->cin, index, error)
      || !get_int (o, "cout", 0, &op->cout, index, error)
      || !get_int (o, "c", 0, &op->c, index, error)
      || !get_int (o, "factor", 1, &op->factor, index, error)
      || !get_int (o, "styles", 0, &op->styles, index, error)
      || !get_float (o, "eps", 1e-5f, &op->eps, index, error)
      || !get_bool (o, "affine", TRUE, &op->affine, index, error)
      || !get_bool (o, "bias", TRUE, &op->has_bias, index, error)
      || !get_float (o, "scale", 1.0f, &op->scale, index, error)
      || !get_float (o, "offset", 0.0f, &op->offset, index, error)
      || !get_float (o, "min", 0.0f, &op->min, index, error)
      || !get_float (o, "max", 255.0f, &op->max, index, error))
    return FALSE;
  if (pad_none)
    op->padding = 0;
  return validate_op (op, index, error);
}

NfGraph *
nf_graph_from_json (const char *json, GError **error)
{
  if (!json) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "graph: no JSON given");
    return NULL;
  }
  JsonParser *parser = json_parser_new ();
  GError *jerr = NULL;
  if (!json_parser_load_from_data (parser, json, -1, &jerr)) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "graph: not valid JSON: %s", jerr->message);
    g_error_free (jerr);
    g_object_unref (parser);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (parser);
  NfGraph *g = NULL;
  ValueTable vt = { g_ptr_array_new_with_free_func (g_free),
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL)
  };
  GArray *ops = g_array_new (FALSE, TRUE, sizeof (NfOp));

  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "graph: the JSON must be an object");
    goto out;
  }
  JsonObject *o = json_node_get_object (root);
  const char *input = get_string (o, "input");
  const char *output = get_string (o, "output");
  if (!input || !output) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph: \"input\" and \"output\" (value names) are required");
    goto out;
  }
  JsonNode *ops_node = json_object_get_member (o, "ops");
  if (!ops_node || !JSON_NODE_HOLDS_ARRAY (ops_node)) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "graph: \"ops\" must be a list of ops");
    goto out;
  }
  JsonArray *arr = json_node_get_array (ops_node);
  guint n = json_array_get_length (arr);
  if (n == 0 || n > 100000) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "graph: has %u ops (needs 1..100000)", n);
    goto out;
  }
  int input_id = value_define (&vt, input);
  for (guint i = 0; i < n; i++) {
    JsonNode *e = json_array_get_element (arr, i);
    NfOp op = { 0 };
    if (!JSON_NODE_HOLDS_OBJECT (e)) {
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "graph op %u: not a JSON object", i);
      goto out;
    }
    gboolean ok = parse_op (json_node_get_object (e), (int) i, &vt, &op, error);
    g_array_append_val (ops, op);       /* owned even on failure, for cleanup */
    if (!ok)
      goto out;
  }
  int output_id = value_lookup (&vt, output);
  if (output_id < 0 || output_id == input_id) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "graph: output \"%s\" is not produced by any op", output);
    goto out;
  }
  NfGraph view = {.n_ops = (int) ops->len,.ops = (NfOp *) ops->data };
  if (nf_graph_n_styles (&view, error) < 0)
    goto out;
  g = g_new0 (NfGraph, 1);
  g->n_values = (int) vt.names->len;
  g->value_names = g_new0 (char *, g->n_values);
  for (int i = 0; i < g->n_values; i++)
    g->value_names[i] = g_strdup (g_ptr_array_index (vt.names, i));
  g->input = input_id;
  g->output = output_id;
  g->n_ops = (int) ops->len;
  g->ops = (NfOp *) g_array_free (ops, FALSE);
  ops = NULL;

out:
  if (ops) {
    for (guint i = 0; i < ops->len; i++)
      g_free (g_array_index (ops, NfOp, i).name);
    g_array_free (ops, TRUE);
  }
  g_ptr_array_unref (vt.names);
  g_hash_table_unref (vt.ids);
  g_object_unref (parser);
  return g;
}

/* ---- graph -> JSON -------------------------------------------------------- */

char *
nf_graph_to_json (const NfGraph *g)
{
  JsonBuilder *b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "input");
  json_builder_add_string_value (b, g->value_names[g->input]);
  json_builder_set_member_name (b, "output");
  json_builder_add_string_value (b, g->value_names[g->output]);
  json_builder_set_member_name (b, "ops");
  json_builder_begin_array (b);
  for (int i = 0; i < g->n_ops; i++) {
    const NfOp *op = &g->ops[i];
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "op");
    json_builder_add_string_value (b, nf_op_type_name (op->type));
    if (op->name) {
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, op->name);
    }
    json_builder_set_member_name (b, "in");
    if (op->type == NF_OP_ADD || op->type == NF_OP_CONCAT) {
      json_builder_begin_array (b);
      for (int j = 0; j < op->n_in; j++)
        json_builder_add_string_value (b, g->value_names[op->in[j]]);
      json_builder_end_array (b);
    } else {
      json_builder_add_string_value (b, g->value_names[op->in[0]]);
    }
    json_builder_set_member_name (b, "out");
    json_builder_add_string_value (b, g->value_names[op->out]);
#define INT(key, v) do { json_builder_set_member_name (b, key); \
      json_builder_add_int_value (b, v); } while (0)
#define DBL(key, v) do { json_builder_set_member_name (b, key); \
      json_builder_add_double_value (b, v); } while (0)
    switch (op->type) {
      case NF_OP_CONV2D:
      case NF_OP_CONV_TRANSPOSE2D:
        INT ("k", op->k);
        INT ("stride", op->stride);
        if (op->type == NF_OP_CONV2D) {
          json_builder_set_member_name (b, "pad");
          json_builder_add_string_value (b, op->pad_mode == NF_PAD_REFLECT ? "reflect" : "zero");
        }
        INT ("padding", op->padding);
        if (op->type == NF_OP_CONV_TRANSPOSE2D)
          INT ("output_padding", op->output_padding);
        INT ("cin", op->cin);
        INT ("cout", op->cout);
        if (!op->has_bias) {
          json_builder_set_member_name (b, "bias");
          json_builder_add_boolean_value (b, FALSE);
        }
        break;
      case NF_OP_INSTANCE_NORM:
      case NF_OP_BATCH_NORM:
      case NF_OP_COND_INSTANCE_NORM:
        INT ("c", op->c);
        DBL ("eps", op->eps);
        if (op->type == NF_OP_INSTANCE_NORM) {
          json_builder_set_member_name (b, "affine");
          json_builder_add_boolean_value (b, op->affine);
        }
        if (op->type == NF_OP_COND_INSTANCE_NORM)
          INT ("styles", op->styles);
        break;
      case NF_OP_UPSAMPLE_NEAREST:
      case NF_OP_PIXEL_SHUFFLE:
        INT ("factor", op->factor);
        break;
      case NF_OP_TANH_SCALE:
        DBL ("scale", op->scale);
        DBL ("offset", op->offset);
        break;
      case NF_OP_CLAMP:
        DBL ("min", op->min);
        DBL ("max", op->max);
        break;
      case NF_OP_AVG_POOL2D:
      case NF_OP_MAX_POOL2D:
        INT ("k", op->k);
        INT ("stride", op->stride);
        break;
      default:
        break;
    }
#undef INT
#undef DBL
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  JsonGenerator *gen = json_generator_new ();
  JsonNode *root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  char *s = json_generator_to_data (gen, NULL);
  json_node_unref (root);
  g_object_unref (gen);
  g_object_unref (b);
  return s;
}

/* ---- shapes --------------------------------------------------------------- */

gboolean
nf_op_output_shape (const NfOp *op, const NfShape *in, NfShape *out, GError **error)
{
  NfShape x = in[0];
  NfShape y = x;
  const char *what = nf_op_type_name (op->type);
  const char *name = op->name ? op->name : "";
#define FAIL(...) do { char *m_ = g_strdup_printf (__VA_ARGS__); \
    g_set_error (error, NF_ERROR, NF_ERROR_SHAPE, "%s%s%s: %s", what, *name ? " " : "", \
        name, m_); g_free (m_); return FALSE; } while (0)
  if (x.n < 1 || x.c < 1 || x.h < 1 || x.w < 1)
    FAIL ("input %dx%dx%dx%d is empty", x.n, x.c, x.h, x.w);

  switch (op->type) {
    case NF_OP_CONV2D:{
      if (x.c != op->cin)
        FAIL ("expects %d input channels, got %d", op->cin, x.c);
      if (op->pad_mode == NF_PAD_REFLECT && (op->padding >= x.h || op->padding >= x.w))
        FAIL ("reflection padding %d needs an input larger than %dx%d", op->padding, x.w,
            x.h);
      int hp = x.h + 2 * op->padding, wp = x.w + 2 * op->padding;
      if (hp < op->k || wp < op->k)
        FAIL ("input %dx%d is smaller than the %dx%d kernel", x.w, x.h, op->k, op->k);
      y.c = op->cout;
      y.h = (hp - op->k) / op->stride + 1;
      y.w = (wp - op->k) / op->stride + 1;
      break;
    }
    case NF_OP_CONV_TRANSPOSE2D:
      if (x.c != op->cin)
        FAIL ("expects %d input channels, got %d", op->cin, x.c);
      y.c = op->cout;
      y.h = (x.h - 1) * op->stride - 2 * op->padding + op->k + op->output_padding;
      y.w = (x.w - 1) * op->stride - 2 * op->padding + op->k + op->output_padding;
      if (y.h < 1 || y.w < 1)
        FAIL ("output would be empty for a %dx%d input", x.w, x.h);
      break;
    case NF_OP_INSTANCE_NORM:
    case NF_OP_BATCH_NORM:
    case NF_OP_COND_INSTANCE_NORM:
      if (x.c != op->c)
        FAIL ("expects %d channels, got %d", op->c, x.c);
      break;
    case NF_OP_ADD:
      if (!nf_shape_equal (in[0], in[1]))
        FAIL ("input shapes differ: %dx%dx%dx%d and %dx%dx%dx%d", in[0].n, in[0].c, in[0].h,
            in[0].w, in[1].n, in[1].c, in[1].h, in[1].w);
      break;
    case NF_OP_CONCAT:
      y.c = 0;
      for (int i = 0; i < op->n_in; i++) {
        if (in[i].n != x.n || in[i].h != x.h || in[i].w != x.w)
          FAIL ("input %d has size %dx%d, input 0 has %dx%d", i, in[i].w, in[i].h, x.w, x.h);
        y.c += in[i].c;
      }
      break;
    case NF_OP_UPSAMPLE_NEAREST:
      y.h = x.h * op->factor;
      y.w = x.w * op->factor;
      break;
    case NF_OP_PIXEL_SHUFFLE:
      if (x.c % (op->factor * op->factor))
        FAIL ("%d channels are not a multiple of factor^2=%d", x.c, op->factor * op->factor);
      y.c = x.c / (op->factor * op->factor);
      y.h = x.h * op->factor;
      y.w = x.w * op->factor;
      break;
    case NF_OP_AVG_POOL2D:
    case NF_OP_MAX_POOL2D:
      if (x.h < op->k || x.w < op->k)
        FAIL ("input %dx%d is smaller than the %dx%d window", x.w, x.h, op->k, op->k);
      y.h = (x.h - op->k) / op->stride + 1;
      y.w = (x.w - op->k) / op->stride + 1;
      break;
    default:
      break;
  }
  if ((double) y.n * y.c * y.h * y.w > 4.0e9)
    FAIL ("output %dx%dx%dx%d is too large", y.n, y.c, y.h, y.w);
  *out = y;
  return TRUE;
#undef FAIL
}

gboolean
nf_graph_infer_shapes (const NfGraph *g, NfShape input, NfShape *shapes, GError **error)
{
  for (int i = 0; i < g->n_values; i++)
    shapes[i] = (NfShape) { 0, 0, 0, 0 };
  shapes[g->input] = input;
  for (int i = 0; i < g->n_ops; i++) {
    const NfOp *op = &g->ops[i];
    NfShape in[NF_OP_MAX_INPUTS];
    for (int j = 0; j < op->n_in; j++)
      in[j] = shapes[op->in[j]];
    GError *e = NULL;
    if (!nf_op_output_shape (op, in, &shapes[op->out], &e)) {
      g_set_error (error, NF_ERROR, NF_ERROR_SHAPE,
          "input %dx%d (WxH): op %d %s", input.w, input.h, i, e->message);
      g_error_free (e);
      return FALSE;
    }
  }
  return TRUE;
}

double
nf_op_flops (const NfOp *op, const NfShape *in, NfShape out)
{
  switch (op->type) {
    case NF_OP_CONV2D:
      return 2.0 * out.n * out.c * out.h * out.w * (double) op->cin * op->k * op->k;
    case NF_OP_CONV_TRANSPOSE2D:
      return 2.0 * in[0].n * in[0].c * in[0].h * in[0].w * (double) op->cout * op->k * op->k;
    default:
      return 0.0;
  }
}

/* ---- builder ------------------------------------------------------------- */

struct NfGraphBuilder {
  ValueTable vt;
  GArray *ops;
  int input;
};

NfGraphBuilder *
nf_graph_builder_new (const char *input_name)
{
  NfGraphBuilder *b = g_new0 (NfGraphBuilder, 1);
  b->vt.names = g_ptr_array_new_with_free_func (g_free);
  b->vt.ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  b->ops = g_array_new (FALSE, TRUE, sizeof (NfOp));
  b->input = value_define (&b->vt, input_name);
  return b;
}

int
nf_graph_builder_add (NfGraphBuilder *b, const NfOp *tmpl, const char *name, const int *in,
    int n_in, const char *out_name)
{
  NfOp op = *tmpl;
  op.name = g_strdup (name);
  op.n_in = n_in;
  for (int i = 0; i < n_in; i++)
    op.in[i] = in[i];
  char *auto_name = NULL;
  if (!out_name)
    out_name = auto_name = g_strdup_printf ("v%u", b->vt.names->len);
  op.out = value_define (&b->vt, out_name);
  g_free (auto_name);
  op.weight = op.bias = op.mix = NULL;
  op.fuse_relu = FALSE;
  g_array_append_val (b->ops, op);
  return op.out;
}

NfGraph *
nf_graph_builder_finish (NfGraphBuilder *b, int output_value)
{
  NfGraph *g = g_new0 (NfGraph, 1);
  g->n_values = (int) b->vt.names->len;
  g->value_names = g_new0 (char *, g->n_values);
  for (int i = 0; i < g->n_values; i++)
    g->value_names[i] = g_strdup (g_ptr_array_index (b->vt.names, i));
  g->input = b->input;
  g->output = output_value;
  g->n_ops = (int) b->ops->len;
  g->ops = (NfOp *) g_array_free (b->ops, FALSE);
  g_ptr_array_unref (b->vt.names);
  g_hash_table_unref (b->vt.ids);
  g_free (b);
  return g;
}
