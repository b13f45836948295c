/* test-graph.c — graph JSON parsing, validation errors, serialisation round trip,
 * shape inference and the architecture builders.
 * Does not: run any op (test-ops.c, test-engine.c). */
#include <stdio.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-error.h"
#include "nf-graph.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static void
expect_error (const char *json, const char *substring)
{
  GError *e = NULL;
  NfGraph *g = nf_graph_from_json (json, &e);
  CHECK (g == NULL, "graph accepted: %s", json);
  nf_graph_free (g);
  if (e) {
    CHECK (e->domain == NF_ERROR && e->code == NF_ERROR_GRAPH, "wrong error kind");
    CHECK (strstr (e->message, substring) != NULL, "message \"%s\" lacks \"%s\"",
        e->message, substring);
    printf ("ok   rejected: %s\n", e->message);
    g_error_free (e);
  } else {
    CHECK (FALSE, "no GError set for %s", json);
  }
}

static const char *valid_json =
    "{\"input\": \"x\", \"output\": \"y\", \"ops\": ["
    "{\"op\": \"conv2d\", \"name\": \"conv1\", \"in\": \"x\", \"out\": \"c1\", \"k\": 9,"
    " \"stride\": 1, \"pad\": \"reflect\", \"cin\": 3, \"cout\": 8},"
    "{\"op\": \"instance_norm\", \"name\": \"in1\", \"in\": \"c1\", \"out\": \"n1\", \"c\": 8},"
    "{\"op\": \"relu\", \"in\": \"n1\", \"out\": \"r1\"},"
    "{\"op\": \"conv2d\", \"name\": \"conv2\", \"in\": \"r1\", \"out\": \"c2\", \"k\": 3,"
    " \"stride\": 2, \"cin\": 8, \"cout\": 8},"
    "{\"op\": \"upsample_nearest\", \"in\": \"c2\", \"out\": \"u\", \"factor\": 2},"
    "{\"op\": \"add\", \"in\": [\"u\", \"r1\"], \"out\": \"s\"},"
    "{\"op\": \"concat\", \"in\": [\"s\", \"r1\"], \"out\": \"cat\"},"
    "{\"op\": \"conv_transpose2d\", \"name\": \"up\", \"in\": \"cat\", \"out\": \"d\", \"k\": 3,"
    " \"stride\": 2, \"padding\": 1, \"output_padding\": 1, \"cin\": 16, \"cout\": 12},"
    "{\"op\": \"pixel_shuffle\", \"in\": \"d\", \"out\": \"p\", \"factor\": 2},"
    "{\"op\": \"max_pool2d\", \"in\": \"p\", \"out\": \"mp\", \"k\": 2},"
    "{\"op\": \"avg_pool2d\", \"in\": \"mp\", \"out\": \"ap\", \"k\": 2},"
    "{\"op\": \"tanh_scale\", \"in\": \"ap\", \"out\": \"t\", \"scale\": 150, \"offset\": 127.5},"
    "{\"op\": \"clamp\", \"in\": \"t\", \"out\": \"y\", \"min\": 0, \"max\": 255}]}";

static void
test_valid_and_round_trip (void)
{
  GError *e = NULL;
  NfGraph *g = nf_graph_from_json (valid_json, &e);
  CHECK (g != NULL, "valid graph rejected: %s", e ? e->message : "");
  if (!g) {
    g_clear_error (&e);
    return;
  }
  CHECK (g->n_ops == 13, "n_ops %d", g->n_ops);
  CHECK (g->ops[0].pad_mode == NF_PAD_REFLECT && g->ops[0].padding == 4, "conv1 padding");
  CHECK (g->ops[3].padding == 1 && g->ops[3].pad_mode == NF_PAD_ZERO, "conv2 default pad");
  CHECK (g->ops[9].stride == 2, "pool default stride = k");
  CHECK (g->ops[11].scale == 150.0f && g->ops[11].offset == 127.5f, "tanh_scale params");

  NfShape shapes[64];
  NfShape y;
  CHECK (nf_graph_infer_shapes (g, (NfShape) { 2, 3, 32, 16 }, shapes, &e), "infer: %s",
      e ? e->message : "");
  y = shapes[g->output];
  CHECK (y.n == 2 && y.c == 3 && y.h == 32 && y.w == 16, "output %dx%dx%dx%d", y.n, y.c, y.h,
      y.w);
  g_clear_error (&e);
  /* Odd size: the add after stride 2 + upsample must fail with a clear message. */
  CHECK (!nf_graph_infer_shapes (g, (NfShape) { 1, 3, 33, 17 }, shapes, &e),
      "odd size accepted");
  if (e) {
    CHECK (strstr (e->message, "add") && strstr (e->message, "differ"), "msg: %s", e->message);
    printf ("ok   odd size: %s\n", e->message);
    g_clear_error (&e);
  }

  char *json = nf_graph_to_json (g);
  NfGraph *g2 = nf_graph_from_json (json, &e);
  CHECK (g2 != NULL, "round trip parse: %s", e ? e->message : "");
  if (g2) {
    char *json2 = nf_graph_to_json (g2);
    CHECK (g_str_equal (json, json2), "round trip differs:\n%s\n%s", json, json2);
    CHECK (g2->n_ops == g->n_ops && g2->n_values == g->n_values, "sizes");
    for (int i = 0; i < g->n_ops && i < g2->n_ops; i++) {
      NfOp a = g->ops[i], b = g2->ops[i];
      CHECK (a.type == b.type && a.k == b.k && a.stride == b.stride && a.padding == b.padding
          && a.cin == b.cin && a.cout == b.cout && a.c == b.c && a.factor == b.factor
          && a.pad_mode == b.pad_mode && a.n_in == b.n_in && a.out == b.out
          && a.output_padding == b.output_padding && a.scale == b.scale
          && a.min == b.min && a.max == b.max, "op %d differs after round trip", i);
    }
    g_free (json2);
    nf_graph_free (g2);
  }
  g_free (json);
  nf_graph_free (g);
}

static void
test_errors (void)
{
  expect_error ("not json", "not valid JSON");
  expect_error ("[1, 2]", "must be an object");
  expect_error ("{\"output\": \"y\", \"ops\": []}", "\"input\" and \"output\"");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": {}}", "must be a list");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": []}", "has 0 ops");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [42]}", "not a JSON object");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"in\": \"x\", \"out\": \"y\"}]}",
      "missing \"op\"");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"gelu\", \"in\": \"x\","
      " \"out\": \"y\"}]}", "unknown op \"gelu\"");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"relu\", \"out\": \"y\"}]}",
      "missing \"in\"");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"relu\", \"in\": \"z\","
      " \"out\": \"y\"}]}", "input \"z\" is not");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"relu\", \"in\": \"x\"}]}",
      "missing \"out\"");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"relu\", \"in\": \"x\","
      " \"out\": \"y\"}, {\"op\": \"relu\", \"in\": \"x\", \"out\": \"y\"}]}", "produced twice");
  expect_error ("{\"input\": \"x\", \"output\": \"q\", \"ops\": [{\"op\": \"relu\", \"in\": \"x\","
      " \"out\": \"y\"}]}", "output \"q\" is not produced");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"conv2d\", \"in\": \"x\","
      " \"out\": \"y\", \"k\": 3, \"cin\": 3, \"cout\": 3}]}", "needs a \"name\"");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"conv2d\", \"name\": \"c\","
      " \"in\": \"x\", \"out\": \"y\", \"k\": \"3\", \"cin\": 3, \"cout\": 3}]}",
      "\"k\" must be an integer");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"conv2d\", \"name\": \"c\","
      " \"in\": \"x\", \"out\": \"y\", \"k\": 0, \"cin\": 3, \"cout\": 3}]}", "out of range");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"conv2d\", \"name\": \"c\","
      " \"in\": \"x\", \"out\": \"y\", \"k\": 3, \"cout\": 3}]}", "cin=0");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"conv2d\", \"name\": \"c\","
      " \"in\": \"x\", \"out\": \"y\", \"k\": 3, \"cin\": 3, \"cout\": 3, \"pad\": \"mirror\"}]}",
      "pad \"mirror\" unknown");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"add\", \"in\": \"x\","
      " \"out\": \"y\"}]}", "expects 2 inputs");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"instance_norm\","
      " \"name\": \"n\", \"in\": \"x\", \"out\": \"y\", \"c\": 3, \"eps\": -1}]}", "eps");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"clamp\", \"in\": \"x\","
      " \"out\": \"y\", \"min\": 2, \"max\": 1}]}", "above max");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"upsample_nearest\","
      " \"in\": \"x\", \"out\": \"y\", \"factor\": 0}]}", "factor=0");
  expect_error ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [{\"op\": \"relu\", \"in\": [1],"
      " \"out\": \"y\"}]}", "must list value names");
}

static void
test_arch (void)
{
  struct {
    NfArchSpec spec;
    int h, w, oh, ow;
    int params;
  } cases[] = {
    { { "style-full" }, 36, 52, 36, 52, 1679235 },
    { { "style-slim" }, 36, 52, 36, 52, 0 },
    { { "sr-johnson", 2 }, 20, 28, 40, 56, 0 },
    { { "sr-johnson", 4 }, 20, 28, 80, 112, 0 },
    { { "sr-subpixel", 2 }, 21, 27, 42, 54, 0 },
    { { "sr-subpixel", 3 }, 21, 27, 63, 81, 0 },
    { { "sr-subpixel", 4 }, 7, 9, 28, 36, 0 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GError *e = NULL;
    NfModel *m = nf_arch_new_model (&cases[i].spec, 1, &e);
    CHECK (m != NULL, "%s: %s", cases[i].spec.arch, e ? e->message : "");
    if (!m) {
      g_clear_error (&e);
      continue;
    }
    NfShape *shapes = g_new0 (NfShape, m->graph->n_values);
    gboolean ok = nf_graph_infer_shapes (m->graph, (NfShape) { 1, 3, cases[i].h, cases[i].w },
        shapes, &e);
    CHECK (ok, "%s infer: %s", cases[i].spec.arch, e ? e->message : "");
    NfShape y = shapes[m->graph->output];
    CHECK (y.c == 3 && y.h == cases[i].oh && y.w == cases[i].ow, "%s x%d: out %dx%d",
        cases[i].spec.arch, cases[i].spec.scale, y.w, y.h);
    size_t params = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init (&it, m->tensors);
    while (g_hash_table_iter_next (&it, &k, &v)) {
      NfModelTensor *t = v;
      size_t n = 1;
      for (int d = 0; d < t->ndim; d++)
        n *= t->dims[d];
      params += n;
    }
    printf ("ok   %-12s x%d: %dx%d -> %dx%d, %zu parameters, %d ops run (%d stored), "
        "size multiple %d\n", cases[i].spec.arch, cases[i].spec.scale ? cases[i].spec.scale : 1,
        cases[i].w, cases[i].h, y.w, y.h, params, m->graph->n_ops, m->source_graph->n_ops,
        m->size_multiple);
    if (cases[i].params)        /* TransformerNet's parameter count */
      CHECK ((int) params == cases[i].params, "params %zu != %d", params, cases[i].params);
    g_clear_error (&e);
    g_free (shapes);
    nf_model_free (m);
  }
  GError *e = NULL;
  NfArchSpec bad = { "sr-johnson", 3 };
  CHECK (nf_arch_new_model (&bad, 1, &e) == NULL && e, "sr-johnson x3 accepted");
  g_clear_error (&e);
  NfArchSpec unknown = { "resnet" };
  CHECK (nf_arch_new_model (&unknown, 1, &e) == NULL && e && strstr (e->message, "known"),
      "unknown arch");
  g_clear_error (&e);
  /* A kernel larger than the input is a shape error, not a crash. */
  NfArchSpec slim = { "style-slim" };
  NfModel *m = nf_arch_new_model (&slim, 1, NULL);
  NfShape *shapes = g_new0 (NfShape, m->graph->n_values);
  CHECK (!nf_graph_infer_shapes (m->graph, (NfShape) { 1, 3, 4, 4 }, shapes, &e), "4x4 ok?");
  if (e)
    printf ("ok   tiny input: %s\n", e->message);
  g_clear_error (&e);
  g_free (shapes);
  nf_model_free (m);
}

int
main (void)
{
  test_valid_and_round_trip ();
  test_errors ();
  test_arch ();
  printf ("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
