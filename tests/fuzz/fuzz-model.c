/* fuzz-model.c — libFuzzer target: a model file's bytes through the whole loader, then
 * an engine plan and (when cheap) a run at a tiny size on the cpu-ref backend.
 *
 * Per input: nf_model_load_bytes (safetensors container, header JSON, graph JSON and
 * its validation, metadata, tensor names/shapes/dtypes, batch-norm folding, the
 * declared scale checked against the graph); a model that loads is planned for a
 * 1x3xSxS input, S = 8 rounded up to the graph's size multiple, and run when its
 * convolutions cost under FLOP_LIMIT. A load, plan or run that fails must give a
 * GError with a message; anything else (a crash, a sanitizer report, a leak, a GLib critical or
 * warning) is a finding.
 * What it does not: other backends (oneDNN/CUDA; cpu-ref is the reference every other
 * backend is tested against) or large sizes: plans whose activations exceed
 * ACT_LIMIT floats are not allocated (shape inference still runs), so the fuzzer
 * spends its time in the parsers rather than in memset.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <glib.h>

#include "nf-backend.h"
#include "nf-engine.h"
#include "nf-model.h"

#define ACT_LIMIT (16u << 20)   /* floats of all activations together (64 MB) */
#define FLOP_LIMIT 2.0e6        /* convolution FLOPs of one run (the seeds need < 1e6) */

static NfBackend *backend;
/* How far inputs got (printed at exit when NF_FUZZ_STATS is set): a corpus that never
 * reaches the engine would fuzz the container parser only. */
static guint64 n_inputs, n_loaded, n_planned, n_run, n_costly;

static void
print_stats (void)
{
  g_printerr ("fuzz-model: %" G_GUINT64_FORMAT " inputs, %" G_GUINT64_FORMAT " loaded, %"
      G_GUINT64_FORMAT " planned, %" G_GUINT64_FORMAT " run, %" G_GUINT64_FORMAT
      " not run (over FLOP_LIMIT)\n", n_inputs, n_loaded, n_planned, n_run, n_costly);
}

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  /* A critical or warning means the library misused an API on bad input: fatal. */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  GError *e = NULL;
  backend = nf_backend_new ("cpu-ref", &e);
  if (!backend) {
    g_printerr ("fuzz-model: no cpu-ref backend: %s\n", e->message);
    abort ();
  }
  if (g_getenv ("NF_FUZZ_STATS"))
    atexit (print_stats);
  return 0;
}

static void
expect_error (GError *e, const char *what)
{
  if (!e || !e->message || !*e->message) {
    g_printerr ("fuzz-model: %s failed without an error message\n", what);
    abort ();
  }
  g_error_free (e);
}

/* Plans (and runs when cheap) m for a side x side input. */
static void
plan_and_run (NfModel *m, int side)
{
  NfShape in = { 1, 3, side, side };
  const NfGraph *g = m->graph;
  NfShape *shapes = g_new0 (NfShape, g->n_values);
  GError *e = NULL;
  gboolean fits = nf_graph_infer_shapes (g, in, shapes, &e);
  double floats = 0.0;
  for (int v = 0; fits && v < g->n_values; v++)
    floats += (double) nf_shape_numel (shapes[v]);
  g_free (shapes);
  if (!fits)
    g_clear_error (&e);
  else if (floats > ACT_LIMIT)
    return;

  NfEngine *eng = nf_engine_new (m, backend, NULL);
  if (!nf_engine_plan (eng, in, &e)) {
    expect_error (e, "nf_engine_plan");
    nf_engine_free (eng);
    return;
  }
  n_planned++;
  if (!fits) {
    g_printerr ("fuzz-model: the engine planned a graph whose shapes do not infer\n");
    abort ();
  }
  double flops = 0.0;
  for (int i = 0; i < nf_engine_n_calls (eng); i++) {
    const NfOpCall *c = nf_engine_call (eng, i);
    flops += nf_op_flops (c->op, c->in, c->out);
  }
  if (flops <= FLOP_LIMIT) {
    NfShape os = nf_engine_output_shape (eng);
    float *x = g_new (float, nf_shape_numel (in));
    float *y = g_new (float, nf_shape_numel (os));
    for (size_t i = 0; i < nf_shape_numel (in); i++)
      x[i] = m->in_lo + (m->in_hi - m->in_lo) * (float) (i % 7) / 6.0f;
    if (nf_engine_run_host (eng, x, in, y, &e))
      n_run++;
    else
      expect_error (e, "nf_engine_run_host");
    g_free (x);
    g_free (y);
  } else
    n_costly++;
  nf_engine_free (eng);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *e = NULL;
  n_inputs++;
  NfModel *m = nf_model_load_bytes (data, size, &e);
  if (!m) {
    expect_error (e, "nf_model_load_bytes");
    return 0;
  }
  n_loaded++;
  int sm = m->size_multiple;
  if (sm >= 1 && sm <= 64)
    plan_and_run (m, (8 + sm - 1) / sm * sm);
  nf_model_free (m);
  return 0;
}
