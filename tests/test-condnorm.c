/* test-condnorm.c — cond_instance_norm (conditional instance norm: one network, several
 * styles) on the CPU backends, and the styles of a model.
 *
 * - forward on cpu-ref, cpu and cpu-bf16 (where the CPU has native bf16) against an
 *   independent computation here (rows mixed in double, then instance norm in double),
 *   with non-convex mixes, odd sizes, plain (3 channels) and blocked (13, 16, 24)
 *   layouts, a 1x1 image and a fused ReLU;
 * - the mixing rules: a one-hot mix is exactly instance_norm with that style's row, a
 *   50/50 mix exactly instance_norm with the mean of the two rows, and (the op being
 *   affine in its rows) the mean of the two styles' outputs;
 * - backward against central finite differences (input, every row of weight and bias),
 *   accumulation, exact zeros for the rows of styles outside the mix, and the fast
 *   backend's gradients against the reference's;
 * - a model: default names and mix, a new mix taking effect at the next run without
 *   replanning, fast against reference on a whole network (ReLU fused), names written and
 *   read back through a file, lookups, and every error (bad mixes, bad "styles"
 *   metadata, graphs whose cond ops disagree).
 * - style-rt-multi: its tensors are style-rt's with (N, c) norm rows, and with one style's
 *   rows set to a style-rt network's, that style gives exactly style-rt's output.
 * Does not: CUDA (tests/gpu/test-gpu-condnorm.c), the trainer (test-train-nets.c), the
 * element (test-gst-style-mix.c).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "nf-arch.h"
#include "nf-engine.h"
#include "nf-model.h"

static int failures = 0;

#include "condnorm-runner.h"

/* ---- forward and the mixing rules -------------------------------------------------------- */

static void
test_forward (const char *backend, NfBackend *be)
{
  static const NfShape shapes[] = { {2, 13, 7, 9}, {1, 16, 5, 5}, {1, 3, 11, 6},
    {1, 24, 33, 17}, {2, 5, 1, 1}
  };
  NfRng rng;
  nf_rng_seed (&rng, 17);
  for (guint k = 0; k < G_N_ELEMENTS (shapes); k++) {
    NfShape s = shapes[k];
    size_t n = nf_shape_numel (s);
    float *x = nf_alloc_floats (n), *y = nf_alloc_floats (n), *ref = nf_alloc_floats (n);
    float *w = g_new (float, N_STYLES * s.c), *b = g_new (float, N_STYLES * s.c);
    float mix[N_STYLES] = { 0.7f, -0.2f, 0.5f };        /* not convex */
    nf_rng_fill_uniform (&rng, x, n, -3.0f, 5.0f);
    for (int relu = 0; relu < 2; relu++) {
      NfOp op = cond_op (s.c, w, b, mix, &rng);
      op.fuse_relu = relu;
      Runner r = { 0 };
      if (runner_init (&r, be, &op, s) && runner_forward (&r, x, y)) {
        naive_forward (x, s, w, b, mix, N_STYLES, op.eps, relu, ref);
        double err = rel_err (y, ref, n);
        CHECK (err < 2e-5, "%s forward %dx%dx%dx%d relu %d: error %.3g", backend, s.n, s.c,
            s.h, s.w, relu, err);
      }
      runner_clear (&r);
    }
    nf_free (x);
    nf_free (y);
    nf_free (ref);
    g_free (w);
    g_free (b);
  }
}

/* instance_norm with rows g, b on the same backend. */
static gboolean
plain_norm (NfBackend *be, NfShape s, const float *x, const float *g, const float *b,
    float *y)
{
  NfOp op = {.type = NF_OP_INSTANCE_NORM,.name = "in",.c = s.c,.eps = 1e-5f,.affine = TRUE,
    .weight = g,.bias = b
  };
  Runner r = { 0 };
  gboolean ok = runner_init (&r, be, &op, s) && runner_forward (&r, x, y);
  runner_clear (&r);
  return ok;
}

static void
test_mix_rules (const char *backend, NfBackend *be)
{
  NfShape s = { 2, 13, 9, 7 };
  size_t n = nf_shape_numel (s);
  int c = s.c;
  NfRng rng;
  nf_rng_seed (&rng, 29);
  float *x = nf_alloc_floats (n), *y = nf_alloc_floats (n), *ref = nf_alloc_floats (n);
  float *y0 = nf_alloc_floats (n), *y2 = nf_alloc_floats (n);
  float *w = g_new (float, N_STYLES * c), *b = g_new (float, N_STYLES * c);
  float *mg = g_new (float, c), *mb = g_new (float, c);
  float mix[N_STYLES] = { 0 };
  nf_rng_fill_uniform (&rng, x, n, -2.0f, 2.0f);
  NfOp op = cond_op (c, w, b, mix, &rng);
  Runner r = { 0 };
  if (!runner_init (&r, be, &op, s))
    return;
  /* one-hot: exactly instance_norm with that style's row */
  for (int i = 0; i < N_STYLES; i++) {
    memset (mix, 0, sizeof mix);
    mix[i] = 1.0f;
    if (runner_forward (&r, x, y) && plain_norm (be, s, x, w + i * c, b + i * c, ref))
      CHECK (same_bits (y, ref, n), "%s one-hot style %d differs from instance_norm with "
          "its row (error %.3g)", backend, i, rel_err (y, ref, n));
    if (i == 0)
      memcpy (y0, y, n * sizeof (float));
    if (i == 2)
      memcpy (y2, y, n * sizeof (float));
  }
  CHECK (rel_err (y0, y2, n) > 0.1, "%s: styles 0 and 2 give the same output", backend);
  /* 50/50: exactly instance_norm with the mean rows, and the mean of the two outputs */
  memset (mix, 0, sizeof mix);
  mix[0] = mix[2] = 0.5f;
  for (int k = 0; k < c; k++) {
    mg[k] = (float) (((double) w[k] + w[2 * c + k]) / 2);
    mb[k] = (float) (((double) b[k] + b[2 * c + k]) / 2);
  }
  if (runner_forward (&r, x, y) && plain_norm (be, s, x, mg, mb, ref)) {
    CHECK (same_bits (y, ref, n), "%s 50/50 differs from instance_norm with the mean rows "
        "(error %.3g)", backend, rel_err (y, ref, n));
    for (size_t i = 0; i < n; i++)
      ref[i] = 0.5f * (y0[i] + y2[i]);
    double err = rel_err (y, ref, n);
    CHECK (err < 1e-5, "%s 50/50 is not the mean of the two styles' outputs (%.3g)", backend,
        err);
    CHECK (rel_err (y, y0, n) > 0.05, "%s 50/50 equals style 0", backend);
  }
  runner_clear (&r);
  nf_free (x);
  nf_free (y);
  nf_free (ref);
  nf_free (y0);
  nf_free (y2);
  g_free (w);
  g_free (b);
  g_free (mg);
  g_free (mb);
}

/* ---- backward ---------------------------------------------------------------------------- */

typedef struct {
  Runner *r;
  const float *x, *dy;
  float *y;
} FdCtx;

static double
fd_loss (FdCtx *f)
{
  size_t n = nf_shape_numel (f->r->call.out);
  if (!runner_forward (f->r, f->x, f->y))
    return NAN;
  double l = 0;
  for (size_t i = 0; i < n; i++)
    l += (double) f->dy[i] * f->y[i];
  return l;
}

/* Central difference at p[i]. */
static double
fd (FdCtx *f, float *p, size_t i, double h)
{
  float keep = p[i];
  p[i] = keep + (float) h;
  double up = p[i], lp = fd_loss (f);
  p[i] = keep - (float) h;
  double lm = fd_loss (f);
  double d = (lp - lm) / (up - p[i]);
  p[i] = keep;
  return d;
}

/* max |analytic - numeric| / max |numeric| over every element of p (n). */
static double
fd_check (FdCtx *f, float *p, size_t n, const float *analytic, size_t stride)
{
  double me = 0, mr = 1e-8;
  for (size_t i = 0; i < n; i += stride) {
    double num = fd (f, p, i, 1e-2);
    me = MAX (me, fabs (num - analytic[i]));
    mr = MAX (mr, fabs (num));
  }
  return me / mr;
}

/* Analytic gradients on backend be: dx (s), dw, db (N_STYLES, c); returns FALSE on error.
 * Checks them against finite differences (fd_on) and returns them for comparisons. */
static gboolean
backward_case (const char *backend, NfBackend *be, NfShape s, gboolean fd_on, float *dx,
    float *dw, float *db)
{
  size_t n = nf_shape_numel (s), nw = (size_t) N_STYLES * s.c;
  NfRng rng;
  nf_rng_seed (&rng, 41 + s.c);
  float *x = nf_alloc_floats (n), *dy = nf_alloc_floats (n), *y = nf_alloc_floats (n);
  float *w = g_new (float, nw), *b = g_new (float, nw);
  float mix[N_STYLES] = { 0.8f, 0.0f, -0.3f };  /* style 1 is not in the mix */
  nf_rng_fill_uniform (&rng, x, n, -2.0f, 2.0f);
  nf_rng_fill_uniform (&rng, dy, n, -1.0f, 1.0f);
  NfOp op = cond_op (s.c, w, b, mix, &rng);
  Runner r = { 0 };
  gboolean ok = runner_init (&r, be, &op, s) && runner_backward (&r, x, dy, dx, dw, db, nw);
  if (ok) {
    gboolean zero = TRUE;
    for (int k = 0; k < s.c; k++)
      zero = zero && dw[s.c + k] == 0.0f && db[s.c + k] == 0.0f;
    CHECK (zero, "%s: the rows of a style outside the mix got a gradient", backend);
  }
  if (ok && fd_on) {
    FdCtx f = {.r = &r,.x = x,.dy = dy,.y = y };
    double ex = fd_check (&f, x, n, dx, MAX (1, n / 97));
    double ew = fd_check (&f, w, nw, dw, 1);
    double eb = fd_check (&f, b, nw, db, 1);
    CHECK (ex < 2e-3 && ew < 2e-3 && eb < 2e-3, "%s backward %dx%dx%dx%d vs finite "
        "differences: dx %.3g, dweight %.3g, dbias %.3g", backend, s.n, s.c, s.h, s.w, ex,
        ew, eb);
  }
  runner_clear (&r);
  nf_free (x);
  nf_free (dy);
  nf_free (y);
  g_free (w);
  g_free (b);
  return ok;
}

static void
test_backward (NfBackend *ref, NfBackend *fast)
{
  static const NfShape shapes[] = { {2, 3, 7, 5}, {1, 13, 6, 9}, {2, 16, 4, 4} };
  for (guint k = 0; k < G_N_ELEMENTS (shapes); k++) {
    NfShape s = shapes[k];
    size_t n = nf_shape_numel (s), nw = (size_t) N_STYLES * s.c;
    float *g[2][3];
    NfBackend *bes[2] = { ref, fast };
    gboolean ok = TRUE;
    for (int j = 0; j < 2; j++) {
      g[j][0] = nf_alloc_floats (n);
      g[j][1] = nf_alloc_floats (nw);
      g[j][2] = nf_alloc_floats (nw);
      ok = backward_case (bes[j]->iface->name, bes[j], s, TRUE, g[j][0], g[j][1], g[j][2])
          && ok;
    }
    if (ok) {
      double e = MAX (rel_err (g[1][0], g[0][0], n), MAX (rel_err (g[1][1], g[0][1], nw),
              rel_err (g[1][2], g[0][2], nw)));
      CHECK (e < 1e-4, "cpu vs cpu-ref gradients %dx%dx%dx%d: %.3g", s.n, s.c, s.h, s.w, e);
    }
    for (int j = 0; j < 2; j++)
      for (int i = 0; i < 3; i++)
        nf_free (g[j][i]);
  }
}

/* ---- a model ----------------------------------------------------------------------------- */

/* x (3) -> conv 3x3 (8) -> cond_instance_norm (8, N) -> relu -> conv 3x3 (3) */
static const char *graph_json =
    "{\"input\": \"x\", \"output\": \"y\", \"ops\": ["
    "{\"op\": \"conv2d\", \"name\": \"c1\", \"in\": \"x\", \"out\": \"c1\", \"k\": 3, "
    "\"pad\": \"reflect\", \"cin\": 3, \"cout\": 8},"
    "{\"op\": \"cond_instance_norm\", \"name\": \"n1\", \"in\": \"c1\", \"out\": \"n1\", "
    "\"c\": 8, \"styles\": %d},"
    "{\"op\": \"relu\", \"in\": \"n1\", \"out\": \"r1\"},"
    "{\"op\": \"conv2d\", \"name\": \"c2\", \"in\": \"r1\", \"out\": \"y\", \"k\": 3, "
    "\"pad\": \"reflect\", \"cin\": 8, \"cout\": 3}]}";

static NfModel *
make_model (int n_styles)
{
  GError *e = NULL;
  char *json = g_strdup_printf (graph_json, n_styles);
  NfGraph *g = nf_graph_from_json (json, &e);
  g_free (json);
  if (!g) {
    printf ("FAIL graph: %s\n", e->message);
    failures++;
    g_error_free (e);
    return NULL;
  }
  NfModel *m = nf_model_new_for_graph (g, NF_TASK_STYLE, 1, &e);
  nf_graph_free (g);
  if (!m) {
    printf ("FAIL model: %s\n", e->message);
    failures++;
    g_error_free (e);
    return NULL;
  }
  NfRng rng;
  nf_rng_seed (&rng, 5);
  const char *names[] = { "c1.weight", "c1.bias", "n1.weight", "n1.bias", "c2.weight",
    "c2.bias"
  };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    NfModelTensor *t = nf_model_tensor (m, names[i]);
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
      n *= (size_t) t->dims[d];
    nf_rng_fill_uniform (&rng, t->data, n, -0.8f, 0.8f);
  }
  nf_model_bind (m, NULL);
  return m;
}

static gboolean
run_model (NfModel *m, NfEngine *e, const float *x, NfShape s, float *y)
{
  GError *err = NULL;
  if (!nf_engine_run_host (e, x, s, y, &err)) {
    printf ("FAIL run: %s\n", err->message);
    failures++;
    g_error_free (err);
    return FALSE;
  }
  return TRUE;
}

static void
test_model (NfBackend *ref, NfBackend *fast)
{
  GError *e = NULL;
  NfModel *m = make_model (N_STYLES);
  if (!m)
    return;
  CHECK (m->n_styles == N_STYLES && g_str_equal (m->style_names[2], "2")
      && m->style_mix[0] == 1.0f && m->style_mix[1] == 0.0f, "default styles and mix");
  NfShape s = { 1, 3, 12, 16 };
  size_t n = nf_shape_numel (s);
  NfRng rng;
  nf_rng_seed (&rng, 3);
  float *x = nf_alloc_floats (n), *ya = nf_alloc_floats (n), *yb = nf_alloc_floats (n);
  float *yr = nf_alloc_floats (n);
  nf_rng_fill_uniform (&rng, x, n, 0.0f, 1.0f);
  NfEngine *eng = nf_engine_new (m, fast, NULL);
  float mix_b[N_STYLES] = { 0.25f, 0.0f, 0.75f };
  if (run_model (m, eng, x, s, ya) && nf_model_set_style_mix (m, mix_b, N_STYLES, &e)) {
    CHECK (nf_engine_is_planned_for (eng, s), "a new mix replanned the engine");
    NfEngine *fresh = nf_engine_new (m, fast, NULL), *re = nf_engine_new (m, ref, NULL);
    if (run_model (m, eng, x, s, yb) && run_model (m, fresh, x, s, yr))
      CHECK (same_bits (yb, yr, n), "a new mix on a planned engine differs from a fresh "
          "engine's run");
    CHECK (rel_err (ya, yb, n) > 0.05, "the mix changed nothing");
    if (run_model (m, re, x, s, yr))
      CHECK (rel_err (yb, yr, n) < 1e-4, "network on cpu vs cpu-ref: %.3g",
          rel_err (yb, yr, n));
    nf_engine_free (fresh);
    nf_engine_free (re);
  }
  g_clear_error (&e);

  /* mix errors leave the mix as it was */
  float bad[N_STYLES] = { 0.5f, NAN, 0.5f };
  CHECK (!nf_model_set_style_mix (m, bad, N_STYLES, &e) && e, "a NaN weight was accepted");
  g_clear_error (&e);
  CHECK (!nf_model_set_style_mix (m, mix_b, 2, &e) && e, "a mix of 2 for 3 styles");
  g_clear_error (&e);
  CHECK (!nf_model_set_style (m, 3, &e) && e, "style 3 of 3 was accepted");
  g_clear_error (&e);
  CHECK (m->style_mix[0] == 0.25f && m->style_mix[2] == 0.75f, "a failed set changed the mix");

  /* names through a file */
  const char *names[] = { "starry_night", "great_wave", "the_scream", NULL };
  const char *bad_names[][4] = { {"a", "b", NULL}, {"a", "a", "b", NULL},
  {"a", "b:c", "d", NULL}, {"a", "", "d", NULL}, {"a", "b,c", "d", NULL}
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad_names); i++) {
    CHECK (!nf_model_set_style_names (m, bad_names[i], &e) && e, "bad names %u accepted", i);
    g_clear_error (&e);
  }
  CHECK (nf_model_set_style_names (m, names, &e), "names: %s", e ? e->message : "");
  g_clear_error (&e);
  char *dir = g_dir_make_tmp ("condnorm-XXXXXX", NULL);
  char *path = g_build_filename (dir, "m.safetensors", NULL);
  CHECK (nf_model_save (m, path, NF_DTYPE_F32, &e), "save: %s", e ? e->message : "");
  g_clear_error (&e);
  NfModel *back = nf_model_load (path, &e);
  CHECK (back, "load: %s", e ? e->message : "");
  g_clear_error (&e);
  if (back) {
    CHECK (back->n_styles == N_STYLES && g_str_equal (back->style_names[1], "great_wave")
        && nf_model_style_index (back, "the_scream") == 2
        && nf_model_style_index (back, "1") == 1 && nf_model_style_index (back, "3") < 0
        && nf_model_style_index (back, "nope") < 0 && back->style_mix[0] == 1.0f,
        "names, lookups or the default mix after loading");
    nf_model_set_style_mix (back, mix_b, N_STYLES, NULL);
    NfEngine *be2 = nf_engine_new (back, fast, NULL);
    if (run_model (back, be2, x, s, yr))
      CHECK (same_bits (yb, yr, n), "the loaded model runs differently");
    nf_engine_free (be2);
    nf_model_free (back);
  }
  /* bad "styles" metadata: each is an error naming it */
  const char *bad_md[] = { "[\"a\", \"b\"]", "[\"a\", \"a\", \"b\"]", "{\"a\": 1}",
    "[\"a\", 2, \"b\"]", "not json", "[\"a\", \"b:1\", \"c\"]"
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad_md); i++) {
    nf_model_set_metadata (m, "styles", bad_md[i]);
    CHECK (nf_model_save (m, path, NF_DTYPE_F32, NULL), "save");
    NfModel *b2 = nf_model_load (path, &e);
    CHECK (!b2 && e && strstr (e->message, "styles"), "metadata styles=%s: %s", bad_md[i],
        e ? e->message : "loaded");
    g_clear_error (&e);
    nf_model_free (b2);
  }
  g_unlink (path);
  g_rmdir (dir);
  g_free (path);
  g_free (dir);
  nf_engine_free (eng);
  nf_model_free (m);
  nf_free (x);
  nf_free (ya);
  nf_free (yb);
  nf_free (yr);
}

/* Graph-level rules: styles in range, every cond op the same N, JSON round trip. */
static void
test_graph (void)
{
  GError *e = NULL;
  const char *two =
      "{\"input\": \"x\", \"output\": \"b\", \"ops\": ["
      "{\"op\": \"cond_instance_norm\", \"name\": \"a\", \"in\": \"x\", \"out\": \"a\", "
      "\"c\": 3, \"styles\": 4},"
      "{\"op\": \"cond_instance_norm\", \"name\": \"b\", \"in\": \"a\", \"out\": \"b\", "
      "\"c\": 3, \"styles\": %d}]}";
  char *j = g_strdup_printf (two, 5);
  NfGraph *g = nf_graph_from_json (j, &e);
  CHECK (!g && e && strstr (e->message, "styles"), "cond ops disagreeing on N: %s",
      e ? e->message : "accepted");
  g_clear_error (&e);
  g_free (j);
  for (int bad = 0; bad < 3; bad++) {
    j = g_strdup_printf (two, bad == 0 ? 0 : bad == 1 ? 1025 : -2);
    g = nf_graph_from_json (j, &e);
    CHECK (!g && e, "styles out of range accepted");
    g_clear_error (&e);
    g_free (j);
  }
  j = g_strdup_printf (two, 4);
  g = nf_graph_from_json (j, &e);
  CHECK (g && nf_graph_n_styles (g, NULL) == 4, "two cond ops of 4 styles: %s",
      e ? e->message : "");
  if (g) {
    char *out = nf_graph_to_json (g);
    NfGraph *g2 = nf_graph_from_json (out, NULL);
    CHECK (g2 && g2->ops[1].type == NF_OP_COND_INSTANCE_NORM && g2->ops[1].styles == 4
        && g2->ops[1].c == 3, "round trip: %s", out);
    nf_graph_free (g2);
    g_free (out);
    /* a model of it: tensors (4, 3), and a mix bound into both ops */
    NfModel *m = nf_model_new_for_graph (g, NF_TASK_OTHER, 1, &e);
    CHECK (m && nf_model_tensor (m, "b.bias")->ndim == 2
        && nf_model_tensor (m, "b.bias")->dims[0] == 4 && m->graph->ops[0].mix == m->style_mix
        && m->graph->ops[1].mix == m->style_mix, "model of two cond ops");
    nf_model_free (m);
  }
  g_clear_error (&e);
  nf_graph_free (g);
  g_free (j);
  /* a single-style model may name its style; two names are an error */
  NfModel *m = make_model (1);
  if (m) {
    const char *one[] = { "starry_night", NULL }, *pair[] = { "a", "b", NULL };
    CHECK (nf_model_set_style_names (m, one, &e), "one name for one style");
    g_clear_error (&e);
    CHECK (!nf_model_set_style_names (m, pair, &e), "two names for one style");
    g_clear_error (&e);
    nf_model_free (m);
  }
}

/* style-rt-multi against style-rt: same convolutions, one style's rows = style-rt's norms. */
static void
test_arch (NfBackend *fast)
{
  GError *e = NULL;
  NfArchSpec one = {.arch = "style-rt" }, multi = {.arch = "style-rt-multi",.styles = 2 };
  NfArchSpec dflt = {.arch = "style-rt-multi" }, bad1 = {.arch = "style-rt",.styles = 2 };
  NfArchSpec bad2 = {.arch = "style-rt-multi",.styles = 1025 };
  NfModel *a = nf_arch_new_model (&one, 1, &e), *m = nf_arch_new_model (&multi, 2, &e);
  NfModel *d = nf_arch_new_model (&dflt, 2, &e);
  CHECK (a && m && d, "models: %s", e ? e->message : "");
  g_clear_error (&e);
  CHECK (!nf_arch_build_graph (&bad1, &e) && e, "style-rt with 2 styles accepted");
  g_clear_error (&e);
  CHECK (!nf_arch_build_graph (&bad2, &e) && e, "1025 styles accepted");
  g_clear_error (&e);
  if (!a || !m || !d)
    goto out;
  CHECK (d->n_styles == 8 && m->n_styles == 2, "styles: default %d, asked 2: %d",
      d->n_styles, m->n_styles);
  CHECK (g_hash_table_size (a->tensors) == g_hash_table_size (m->tensors),
      "style-rt has %u tensors, style-rt-multi %u", g_hash_table_size (a->tensors),
      g_hash_table_size (m->tensors));
  GHashTableIter it;
  gpointer key, val;
  g_hash_table_iter_init (&it, a->tensors);
  while (g_hash_table_iter_next (&it, &key, &val)) {
    NfModelTensor *src = val, *dst = nf_model_tensor (m, key);
    size_t n = 1;
    for (int k = 0; k < src->ndim; k++)
      n *= (size_t) src->dims[k];
    gboolean norm = dst && dst->ndim == 2;
    CHECK (dst && (norm ? dst->dims[0] == 2 && dst->dims[1] == (int64_t) n
            : dst->ndim == src->ndim), "tensor %s", (const char *) key);
    if (dst)                    /* a norm's rows: style 1 is style-rt's */
      memcpy (dst->data + (norm ? n : 0), src->data, n * sizeof (float));
  }
  nf_model_bind (m, NULL);
  nf_model_set_style (m, 1, NULL);
  NfShape s = { 1, 3, 36, 44 };
  size_t n = nf_shape_numel (s);
  float *x = nf_alloc_floats (n), *ya = nf_alloc_floats (n), *ym = nf_alloc_floats (n);
  NfRng rng;
  nf_rng_seed (&rng, 9);
  nf_rng_fill_uniform (&rng, x, n, 0.0f, 255.0f);
  NfEngine *ea = nf_engine_new (a, fast, NULL), *em = nf_engine_new (m, fast, NULL);
  if (run_model (a, ea, x, s, ya) && run_model (m, em, x, s, ym))
    CHECK (same_bits (ya, ym, n), "style 1 of style-rt-multi differs from style-rt (%.3g)",
        rel_err (ym, ya, n));
  nf_model_set_style (m, 0, NULL);
  if (run_model (m, em, x, s, ym))
    CHECK (rel_err (ym, ya, n) > 1e-3, "style 0 gives style 1's output");
  nf_engine_free (ea);
  nf_engine_free (em);
  nf_free (x);
  nf_free (ya);
  nf_free (ym);
out:
  nf_model_free (a);
  nf_model_free (m);
  nf_model_free (d);
}

int
main (void)
{
  GError *e = NULL;
  NfBackend *ref = nf_backend_new ("cpu-ref", &e), *fast = nf_backend_new ("cpu", &e);
  if (!ref || !fast) {
    printf ("FAIL backends: %s\n", e->message);
    return 1;
  }
  NfBackend *bf16 = nf_backend_new ("cpu-bf16", NULL);
  NfBackend *bes[3] = { ref, fast, bf16 };
  for (int i = 0; i < 3; i++) {
    if (!bes[i]) {
      printf ("cpu-bf16: no native bf16 on this CPU, its cases skipped\n");
      continue;
    }
    test_forward (bes[i]->iface->name, bes[i]);
    test_mix_rules (bes[i]->iface->name, bes[i]);
  }
  test_backward (ref, fast);
  test_model (ref, fast);
  test_graph ();
  test_arch (fast);
  nf_backend_free (ref);
  nf_backend_free (fast);
  if (bf16)
    nf_backend_free (bf16);
  if (failures) {
    printf ("%d failure(s)\n", failures);
    return 1;
  }
  printf ("test-condnorm: all passed\n");
  return 0;
}
