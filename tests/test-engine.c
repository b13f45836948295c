/* test-engine.c — the engine's planning: fusion on/off (ReLU, and the SR tail where the
 * backend fuses it), buffer reuse vs keeping every value, replanning on size changes,
 * and model save/load round trips, on both CPU backends. Does not: check op arithmetic (test-ops.c) or golden outputs (test-golden.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <glib/gstdio.h>

#include "nf-arch.h"
#include "nf-engine.h"
#include "nf-error.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static float *
run (NfModel *m, const char *backend, const NfEngineOptions *opts, const float *in,
    NfShape s, NfShape *out_shape)
{
  GError *e = NULL;
  NfBackend *be = nf_backend_new (backend, &e);
  CHECK (be != NULL, "backend %s: %s", backend, e ? e->message : "");
  if (!be) {
    g_clear_error (&e);
    return NULL;
  }
  NfEngine *eng = nf_engine_new (m, be, opts);
  float *out = NULL;
  if (nf_engine_plan (eng, s, &e)) {
    *out_shape = nf_engine_output_shape (eng);
    out = nf_alloc_floats (nf_shape_numel (*out_shape));
    if (!nf_engine_run_host (eng, in, s, out, &e)) {
      nf_free (out);
      out = NULL;
    }
  }
  CHECK (out != NULL, "run on %s: %s", backend, e ? e->message : "");
  g_clear_error (&e);
  nf_engine_free (eng);
  nf_backend_free (be);
  return out;
}

static double
max_rel_diff (const float *a, const float *b, size_t n)
{
  double md = 0, mr = 1e-6;
  for (size_t i = 0; i < n; i++) {
    double d = fabs ((double) a[i] - b[i]);
    if (!(d <= md))
      md = d;                   /* NaN propagates */
    if (fabs (a[i]) > mr)
      mr = fabs (a[i]);
  }
  return md / mr;
}

static void
test_plan_variants (const char *backend, NfArchSpec spec, int h, int w)
{
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&spec, 7, &e);
  CHECK (m != NULL, "model: %s", e ? e->message : "");
  if (!m)
    return;
  NfShape s = { 1, 3, h, w };
  NfRng rng;
  nf_rng_seed (&rng, 42);
  float *in = nf_alloc_floats (nf_shape_numel (s));
  nf_rng_fill_uniform (&rng, in, nf_shape_numel (s), m->in_lo, m->in_hi);

  NfShape o1, o2, o3;
  NfEngineOptions fused = { 0 }, unfused = { .no_fusion = TRUE }, keep = { .keep_all_values = TRUE };
  float *a = run (m, backend, &fused, in, s, &o1);
  float *b = run (m, backend, &unfused, in, s, &o2);
  float *c = run (m, backend, &keep, in, s, &o3);
  if (a && b && c) {
    size_t n = nf_shape_numel (o1);
    double d1 = max_rel_diff (a, b, n), d2 = max_rel_diff (a, c, n);
    printf ("ok   %-8s %-12s %dx%d: fused vs unfused %.2e, reuse vs keep-all %.2e\n", backend,
        spec.arch, w, h, d1, d2);
    CHECK (d1 <= 1e-6 && d2 == 0.0, "plan variants differ: %g %g", d1, d2);
  }
  nf_free (a);
  nf_free (b);
  nf_free (c);

  /* Replanning: A, B, A on one engine gives what fresh engines give. */
  NfBackend *be = nf_backend_new (backend, NULL);
  NfEngine *eng = nf_engine_new (m, be, NULL);
  NfShape s2 = { 1, 3, h + m->size_multiple * 2, w + m->size_multiple };
  float *in2 = nf_alloc_floats (nf_shape_numel (s2));
  nf_rng_fill_uniform (&rng, in2, nf_shape_numel (s2), m->in_lo, m->in_hi);
  NfShape oa, ob;
  float *fresh_a = run (m, backend, NULL, in, s, &oa);
  float *fresh_b = run (m, backend, NULL, in2, s2, &ob);
  float *ra = nf_alloc_floats (nf_shape_numel (oa)), *rb = nf_alloc_floats (nf_shape_numel (ob));
  gboolean ok = nf_engine_run_host (eng, in, s, ra, &e)
      && nf_engine_run_host (eng, in2, s2, rb, &e)
      && nf_engine_run_host (eng, in, s, ra, &e);
  CHECK (ok, "replan: %s", e ? e->message : "");
  g_clear_error (&e);
  if (ok && fresh_a && fresh_b) {
    CHECK (memcmp (ra, fresh_a, nf_shape_numel (oa) * 4) == 0
        && memcmp (rb, fresh_b, nf_shape_numel (ob) * 4) == 0, "replanned results differ");
    printf ("ok   %-8s %-12s replan %dx%d -> %dx%d -> %dx%d matches fresh engines\n",
        backend, spec.arch, w, h, s2.w, s2.h, w, h);
  }
  nf_free (ra);
  nf_free (rb);
  nf_free (fresh_a);
  nf_free (fresh_b);
  nf_free (in2);

  /* A size the network cannot take is an error, not a crash; the engine stays usable. */
  NfShape tiny = { 1, 3, 1, 1 };
  float tiny_in[3] = { 0 }, tiny_out[3 * 16];
  CHECK (!nf_engine_run_host (eng, tiny_in, tiny, tiny_out, &e), "1x1 accepted");
  if (e)
    printf ("ok   %-8s %-12s 1x1 rejected: %s\n", backend, spec.arch, e->message);
  g_clear_error (&e);
  float *again = nf_alloc_floats (nf_shape_numel (oa));
  CHECK (nf_engine_run_host (eng, in, s, again, &e), "after error: %s", e ? e->message : "");
  g_clear_error (&e);
  nf_free (again);
  nf_engine_free (eng);
  nf_backend_free (be);

  /* Save (f32) and load: same outputs bit for bit. */
  char *dir = g_dir_make_tmp ("nf-engine-XXXXXX", NULL);
  char *path = g_build_filename (dir, "m.safetensors", NULL);
  CHECK (nf_model_save (m, path, NF_DTYPE_F32, &e), "save: %s", e ? e->message : "");
  g_clear_error (&e);
  NfModel *m2 = nf_model_load (path, &e);
  CHECK (m2 != NULL, "load: %s", e ? e->message : "");
  g_clear_error (&e);
  if (m2) {
    CHECK (m2->task == m->task && m2->scale == m->scale && m2->in_hi == m->in_hi
        && m2->out_hi == m->out_hi && m2->graph->n_ops == m->graph->n_ops, "metadata");
    NfShape x1, x2;
    float *r1 = run (m, backend, NULL, in, s, &x1);
    float *r2 = run (m2, backend, NULL, in, s, &x2);
    if (r1 && r2)
      CHECK (memcmp (r1, r2, nf_shape_numel (x1) * 4) == 0, "loaded model differs");
    nf_free (r1);
    nf_free (r2);
    nf_model_free (m2);
  }
  g_unlink (path);
  g_rmdir (dir);
  g_free (path);
  g_free (dir);
  nf_free (in);
  nf_model_free (m);
}

/* The SR tail (pixel_shuffle + nearest-upsampled input, clamp) runs as one op where the
 * backend fuses it (cpu), not on cpu-ref: the add, the upsampling and the clamp are
 * skipped in the plan, and the outputs agree (the plan variants above). */
static void
test_sr_tail (const char *backend, NfArchSpec spec, gboolean want_fused)
{
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&spec, 3, &e);
  NfBackend *be = m ? nf_backend_new (backend, &e) : NULL;
  NfEngine *eng = be ? nf_engine_new (m, be, NULL) : NULL;
  NfShape s = { 1, 3, 10, 12 };
  if (!eng || !nf_engine_plan (eng, s, &e)) {
    CHECK (FALSE, "%s on %s: %s", spec.arch, backend, e ? e->message : "?");
    g_clear_error (&e);
  } else {
    int skipped[NF_OP_COUNT] = { 0 };
    const NfGraph *g = m->graph;
    for (int i = 0; i < g->n_ops; i++)
      skipped[g->ops[i].type] += nf_engine_call_skipped (eng, i);
    gboolean fused = skipped[NF_OP_ADD] == 1 && skipped[NF_OP_UPSAMPLE_NEAREST] == 1
        && skipped[NF_OP_CLAMP] == 1;
    gboolean none = skipped[NF_OP_ADD] + skipped[NF_OP_UPSAMPLE_NEAREST]
        + skipped[NF_OP_CLAMP] == 0;
    CHECK (want_fused ? fused : none, "%s x%d on %s: add/upsample/clamp skipped %d/%d/%d "
        "(want %s)", spec.arch, spec.scale, backend, skipped[NF_OP_ADD],
        skipped[NF_OP_UPSAMPLE_NEAREST], skipped[NF_OP_CLAMP], want_fused ? "1/1/1" : "none");
    printf ("ok   %-8s %-12s x%d: SR tail %s\n", backend, spec.arch, spec.scale,
        fused ? "fused into the shuffle" : "unfused");
  }
  if (eng)
    nf_engine_free (eng);
  if (be)
    nf_backend_free (be);
  nf_model_free (m);
}

int
main (void)
{
  const char *backends[] = { "cpu-ref", "cpu" };
  for (int b = 0; b < 2; b++) {
    test_plan_variants (backends[b], (NfArchSpec) { "style-slim" }, 20, 28);
    test_plan_variants (backends[b], (NfArchSpec) { "sr-johnson", 2 }, 9, 13);
    test_plan_variants (backends[b], (NfArchSpec) { "sr-subpixel", 3 }, 9, 13);
    test_plan_variants (backends[b], (NfArchSpec) { "sr-light", 4 }, 9, 13);
    test_plan_variants (backends[b], (NfArchSpec) { "sr-light-y", 3 }, 9, 13);
    for (int scale = 2; scale <= 4; scale++) {
      test_sr_tail (backends[b], (NfArchSpec) { "sr-light", scale }, b == 1);
      test_sr_tail (backends[b], (NfArchSpec) { "sr-light-y", scale }, b == 1);
    }
  }
  printf ("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
