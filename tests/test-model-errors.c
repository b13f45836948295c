/* test-model-errors.c — every way a model file can be wrong above the container level
 * (graph JSON, format version, task/scale/range metadata, missing/extra/misshaped
 * tensors, NaN weights, batch norm in the wrong place) gives a GError naming the
 * problem, and valid files (ours and a TransformerNet state_dict) load.
 * Run under valgrind by the test suite, so error paths must not leak.
 * Does not: test the safetensors container itself (test-safetensors.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-error.h"
#include "nf-model.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

typedef struct {
  const char *skip_tensor;      /* leave this tensor out */
  const char *reshape_tensor;   /* store this tensor with a wrong shape */
  const char *extra_tensor;     /* add an unused tensor */
  const char *nan_tensor;       /* put a NaN in this tensor */
  const char *meta_key[4];      /* metadata overrides (value NULL: remove) */
  const char *meta_value[4];
} Variant;

/* Serialises model m (its stored graph and tensors) with the variant's changes. */
static GBytes *
model_bytes (NfModel *m, const Variant *v)
{
  NfStWriter *w = nf_st_writer_new ();
  char *graph = nf_graph_to_json (m->source_graph);
  GHashTable *meta = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_hash_table_insert (meta, "graph", graph);
  g_hash_table_insert (meta, "format_version", g_strdup ("1"));
  g_hash_table_insert (meta, "task", g_strdup (nf_task_name (m->task)));
  g_hash_table_insert (meta, "scale", g_strdup_printf ("%d", m->scale));
  for (int i = 0; i < 4 && v->meta_key[i]; i++) {
    if (v->meta_value[i])
      g_hash_table_insert (meta, (gpointer) v->meta_key[i], g_strdup (v->meta_value[i]));
    else
      g_hash_table_remove (meta, v->meta_key[i]);
  }
  GHashTableIter it;
  gpointer k, val;
  g_hash_table_iter_init (&it, meta);
  while (g_hash_table_iter_next (&it, &k, &val))
    nf_st_writer_set_metadata (w, k, val);
  g_hash_table_iter_init (&it, m->tensors);
  while (g_hash_table_iter_next (&it, &k, &val)) {
    NfModelTensor *t = val;
    if (v->skip_tensor && g_str_equal (k, v->skip_tensor))
      continue;
    int64_t dims[4];
    memcpy (dims, t->dims, sizeof dims);
    if (v->reshape_tensor && g_str_equal (k, v->reshape_tensor))
      dims[0] += 1;
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
      n *= dims[d];
    float *data = nf_alloc_floats (n);
    size_t have = 1;
    for (int d = 0; d < t->ndim; d++)
      have *= t->dims[d];
    memcpy (data, t->data, MIN (n, have) * sizeof (float));
    if (v->nan_tensor && g_str_equal (k, v->nan_tensor))
      data[0] = NAN;
    nf_st_writer_add (w, k, NF_DTYPE_F32, t->ndim, dims, data);
    nf_free (data);
  }
  if (v->extra_tensor) {
    int64_t d = 4;
    float x[4] = { 1, 2, 3, 4 };
    nf_st_writer_add (w, v->extra_tensor, NF_DTYPE_F32, 1, &d, x);
  }
  GBytes *b = nf_st_writer_to_bytes (w);
  nf_st_writer_free (w);
  g_hash_table_unref (meta);
  return b;
}

static void
expect (NfModel *m, const Variant *v, const char *what, const char *substring)
{
  GBytes *b = model_bytes (m, v);
  gsize len;
  const guint8 *data = g_bytes_get_data (b, &len);
  GError *e = NULL;
  NfModel *loaded = nf_model_load_bytes (data, len, &e);
  if (!substring) {
    CHECK (loaded != NULL, "%s: valid file rejected: %s", what, e ? e->message : "");
    if (loaded)
      printf ("ok   %s: loads\n", what);
  } else {
    CHECK (loaded == NULL, "%s: accepted", what);
    CHECK (e && e->domain == NF_ERROR, "%s: no NF_ERROR", what);
    if (e) {
      CHECK (strstr (e->message, substring) != NULL, "%s: \"%s\" lacks \"%s\"", what,
          e->message, substring);
      printf ("ok   %s: %s\n", what, e->message);
    }
  }
  g_clear_error (&e);
  nf_model_free (loaded);
  g_bytes_unref (b);
}

#define V(...) (&(Variant) { __VA_ARGS__ })

int
main (void)
{
  NfArchSpec slim = { "style-slim" }, srj = { "sr-johnson", 2 }, srs = { "sr-subpixel", 2 };
  NfModel *style = nf_arch_new_model (&slim, 1, NULL);
  NfModel *sr = nf_arch_new_model (&srj, 1, NULL);
  NfModel *sub = nf_arch_new_model (&srs, 1, NULL);

  expect (style, V (0), "style-slim as written", NULL);
  expect (sr, V (0), "sr-johnson x2 with batch norm", NULL);
  expect (sub, V (0), "sr-subpixel x2", NULL);

  expect (style, V (.skip_tensor = "res2.conv1.weight"), "missing tensor",
      "\"res2.conv1.weight\" is missing");
  expect (style, V (.skip_tensor = "in3.bias"), "missing norm tensor", "\"in3.bias\" is missing");
  expect (sr, V (.skip_tensor = "res1.bn1.running_var"), "missing running_var",
      "running_var\" is missing");
  expect (style, V (.reshape_tensor = "conv1.weight"), "misshaped conv weight",
      "has shape (17, 3, 9, 9) but conv2d conv1 needs (16, 3, 9, 9)");
  expect (style, V (.reshape_tensor = "in1.weight"), "misshaped norm weight", "needs (16)");
  expect (style, V (.extra_tensor = "conv9.weight"), "unused tensor",
      "\"conv9.weight\" is not used");
  expect (style, V (.nan_tensor = "res1.conv2.bias"), "NaN weight", "NaN");

  expect (style, V (.meta_key = { "graph" }, .meta_value = { "{\"input\": " }),
      "truncated graph JSON", "not valid JSON");
  expect (style, V (.meta_key = { "graph" }, .meta_value = { "{\"input\": \"x\", \"output\":"
              " \"y\", \"ops\": [{\"op\": \"conv2d\", \"name\": \"conv1\", \"in\": \"x\","
              " \"out\": \"y\", \"k\": 9, \"cin\": 3, \"cout\": 16}]}" }),
      "graph that leaves tensors unused", "is not used by any op");
  expect (style, V (.meta_key = { "graph" }, .meta_value = { "{\"input\": \"x\", \"output\":"
              " \"y\", \"ops\": [{\"op\": \"swish\", \"in\": \"x\", \"out\": \"y\"}]}" }),
      "unknown op", "unknown op \"swish\"");
  expect (style, V (.meta_key = { "graph" }, .meta_value = { NULL }), "no graph",
      "no \"graph\"");
  expect (style, V (.meta_key = { "format_version" }, .meta_value = { "2" }),
      "future format version", "format_version \"2\" is not supported");
  expect (style, V (.meta_key = { "format_version" }, .meta_value = { NULL }),
      "missing format version", "(missing)");
  expect (style, V (.meta_key = { "task" }, .meta_value = { "denoise" }), "unknown task",
      "unknown task \"denoise\"");
  expect (sr, V (.meta_key = { "scale" }, .meta_value = { NULL }), "superres without scale",
      "needs a \"scale\"");
  expect (sr, V (.meta_key = { "scale" }, .meta_value = { "4" }), "scale that lies",
      "declares scale 4 but its graph turns");
  expect (sr, V (.meta_key = { "scale" }, .meta_value = { "two" }), "scale not a number",
      "not an integer");
  expect (style, V (.meta_key = { "input_range" }, .meta_value = { "0-255" }), "bad range",
      "input_range \"0-255\"");
  expect (style, V (.meta_key = { "output_range" }, .meta_value = { "1..0" }),
      "reversed range", "output_range");

  /* batch_norm after an add cannot be folded */
  const char *bn_graph = "{\"input\": \"x\", \"output\": \"y\", \"ops\": ["
      "{\"op\": \"conv2d\", \"name\": \"conv1\", \"in\": \"x\", \"out\": \"c\", \"k\": 3,"
      " \"cin\": 3, \"cout\": 3},"
      "{\"op\": \"add\", \"in\": [\"c\", \"x\"], \"out\": \"s\"},"
      "{\"op\": \"batch_norm\", \"name\": \"bn\", \"in\": \"s\", \"out\": \"y\", \"c\": 3}]}";
  GError *e = NULL;
  NfGraph *g = nf_graph_from_json (bn_graph, &e);
  CHECK (g != NULL, "bn graph: %s", e ? e->message : "");
  g_clear_error (&e);
  if (g) {
    NfModel *bm = nf_model_new_for_graph (g, NF_TASK_STYLE, 1, &e);
    CHECK (bm == NULL && e && strstr (e->message, "must directly follow a conv2d"),
        "bn after add: %s", e ? e->message : "accepted");
    if (e)
      printf ("ok   batch norm after add: %s\n", e->message);
    g_clear_error (&e);
    nf_model_free (bm);
    nf_graph_free (g);
  }

  /* A 1-channel network is not an image filter. */
  const char *grey = "{\"input\": \"x\", \"output\": \"y\", \"ops\": ["
      "{\"op\": \"conv2d\", \"name\": \"conv1\", \"in\": \"x\", \"out\": \"y\", \"k\": 3,"
      " \"cin\": 1, \"cout\": 3}]}";
  g = nf_graph_from_json (grey, NULL);
  NfModel *gm = nf_model_new_for_graph (g, NF_TASK_STYLE, 1, NULL);
  expect (gm, V (0), "one-channel input", "3 input channels");
  nf_model_free (gm);
  nf_graph_free (g);

  /* Loading a file that does not exist names it. */
  CHECK (nf_model_load ("/nonexistent/model.safetensors", &e) == NULL && e
      && strstr (e->message, "/nonexistent/model.safetensors"), "missing file");
  if (e)
    printf ("ok   missing file: %s\n", e->message);
  g_clear_error (&e);

  nf_model_free (style);
  nf_model_free (sr);
  nf_model_free (sub);
  printf ("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
