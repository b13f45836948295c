/* test-ops.c — the fast CPU backend "cpu" against the reference "cpu-ref", op by op.
 *
 * Every op type (batch_norm is folded at load, so none) over several parameter sets,
 * odd sizes (1, 7, 33, 133), batch 1 and 2, fresh random inputs and weights (never
 * zeros), run through both backends' interfaces directly (create, alloc, upload,
 * prepare, forward, download). The error is normalised: max|fast - ref| / (max|ref| +
 * 1e-6), against a per-op tolerance (summation order differs in convolutions). Output
 * buffers start as NaN (so an element left unwritten shows), downloads land in host
 * buffers with sentinel floats after the end. Convolutions run twice: the first run
 * copies the input into a padded scratch, the second finds the halo it asked for.
 * A second part runs small networks through nf_engine on both backends, with each op
 * between two reflection-padded convolutions, so that every op reads and writes values
 * stored with halos, and ReLU fusion is exercised.
 * Random inputs, the run of one op, sentinels and the error: nf-test-harness.h (shared
 * with the GPU tests).
 * Does not: test backward passes (test-backward.c) or speed (nf-bench).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-test-harness.h"

static NfTestCounts counts;
static NfTestRandom rnd;
/* Second pass: the backend's portable (non-AVX2) kernels, on the ops that have them. */
static gboolean generic_pass;

/* One case: random inputs in [lo, hi] (+ offset for instance norm), random weights;
 * convolutions run twice on the fast backend (the second run finds its halo). */
static void
check_op (NfTestBe *ref, NfTestBe *fast, NfOp op, const NfShape *in_s, double tol,
    const char *desc, float lo, float hi)
{
  gboolean conv = op.type == NF_OP_CONV2D || op.type == NF_OP_CONV_TRANSPOSE2D;
  NfTestResult res = nf_test_compare_op (&rnd, ref, fast, op, in_s, lo, hi, conv ? 2 : 1, tol,
      44, desc);
  nf_test_count (&counts, res);
}

typedef struct {
  int h, w, n;
} Size;

static const Size small_sizes[] = {
  {1, 1, 1}, {7, 7, 1}, {7, 7, 2}, {33, 7, 1}, {7, 33, 2}, {33, 33, 1},
};
static const Size big = { 133, 133, 1 };
static const Size big2 = { 133, 133, 2 };

static NfShape
shape (Size s, int c)
{
  return (NfShape) { s.n, c, s.h, s.w };
}

/* Runs a unary op over the small sizes (and 133x133 when big). */
static void
unary (NfTestBe *ref, NfTestBe *fast, NfOp op, int c, double tol, const char *desc,
    gboolean with_big, float lo, float hi)
{
  for (guint i = 0; i < G_N_ELEMENTS (small_sizes); i++) {
    NfShape s = shape (small_sizes[i], c);
    check_op (ref, fast, op, &s, tol, desc, lo, hi);
  }
  if (with_big && !generic_pass) {
    NfShape s = shape (big, c);
    check_op (ref, fast, op, &s, tol, desc, lo, hi);
  }
}

static void
test_convs (NfTestBe *ref, NfTestBe *fast)
{
  static const struct {
    int cin, cout, k, stride, padding;
    NfPadMode mode;
    gboolean relu, bias, big;
  } cs[] = {
    { 16, 16, 1, 1, 0, NF_PAD_ZERO, FALSE, TRUE, TRUE },
    { 33, 3, 1, 1, 0, NF_PAD_ZERO, TRUE, TRUE, FALSE },
    { 3, 16, 3, 1, 1, NF_PAD_REFLECT, TRUE, TRUE, TRUE },
    { 16, 33, 3, 2, 1, NF_PAD_REFLECT, FALSE, TRUE, FALSE },
    { 33, 16, 3, 1, 1, NF_PAD_ZERO, TRUE, FALSE, FALSE },
    { 16, 16, 3, 2, 0, NF_PAD_ZERO, FALSE, TRUE, FALSE },
    { 16, 3, 3, 1, 1, NF_PAD_REFLECT, FALSE, TRUE, TRUE },
    { 3, 3, 3, 1, 1, NF_PAD_ZERO, TRUE, TRUE, FALSE },
    { 3, 16, 9, 1, 4, NF_PAD_REFLECT, FALSE, TRUE, FALSE },
    { 3, 32, 9, 1, 4, NF_PAD_REFLECT, TRUE, TRUE, FALSE },
    { 16, 3, 9, 1, 4, NF_PAD_REFLECT, FALSE, TRUE, TRUE },
    { 33, 3, 9, 2, 4, NF_PAD_ZERO, TRUE, TRUE, FALSE },
    { 3, 3, 9, 1, 4, NF_PAD_REFLECT, FALSE, TRUE, FALSE },
    { 16, 1, 3, 1, 1, NF_PAD_REFLECT, TRUE, TRUE, FALSE },
    { 16, 2, 5, 1, 2, NF_PAD_ZERO, FALSE, TRUE, FALSE },
    { 40, 4, 9, 1, 4, NF_PAD_REFLECT, FALSE, FALSE, FALSE },
    { 8, 4, 3, 2, 1, NF_PAD_REFLECT, TRUE, TRUE, FALSE },
    { 5, 6, 3, 1, 1, NF_PAD_REFLECT, FALSE, TRUE, FALSE },
    /* sr-light-y's: RGB -> luma (1x1, planar source), 5x5 from one channel, the copy to
     * R, G and B */
    { 3, 1, 1, 1, 0, NF_PAD_ZERO, FALSE, FALSE, TRUE },
    { 3, 2, 1, 1, 0, NF_PAD_ZERO, TRUE, TRUE, FALSE },
    { 1, 16, 5, 1, 2, NF_PAD_REFLECT, TRUE, TRUE, FALSE },
    { 4, 12, 1, 1, 0, NF_PAD_ZERO, FALSE, FALSE, FALSE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cs); i++) {
    if (generic_pass && cs[i].cin > 4 && cs[i].cout > 4)    /* oneDNN */
      continue;
    NfOp op = { .type = NF_OP_CONV2D, .name = "conv", .n_in = 1, .cin = cs[i].cin,
      .cout = cs[i].cout, .k = cs[i].k, .stride = cs[i].stride, .padding = cs[i].padding,
      .pad_mode = cs[i].mode, .has_bias = cs[i].bias, .fuse_relu = cs[i].relu
    };
    char *desc = g_strdup_printf ("conv2d %d->%d k%d s%d %s p%d%s%s", op.cin, op.cout, op.k,
        op.stride, op.pad_mode == NF_PAD_REFLECT ? "reflect" : "zero", op.padding,
        op.has_bias ? "" : " nobias", op.fuse_relu ? " relu" : "");
    unary (ref, fast, op, op.cin, 2e-5, desc, cs[i].big, -1.0f, 1.0f);
    g_free (desc);
  }

  static const struct {
    int cin, cout, k, stride, padding, output_padding;
    gboolean relu, bias;
  } ds[] = {
    { 16, 16, 3, 2, 1, 1, FALSE, TRUE },
    { 16, 16, 3, 2, 1, 1, TRUE, FALSE },
    { 16, 16, 4, 2, 1, 0, FALSE, TRUE },
    { 3, 16, 3, 2, 1, 1, TRUE, TRUE },
    { 33, 3, 4, 2, 1, 0, FALSE, TRUE },
    { 16, 8, 3, 1, 1, 0, FALSE, TRUE },
    { 16, 16, 1, 2, 0, 1, TRUE, TRUE },        /* phases no tap reaches: bias alone */
    { 16, 24, 5, 3, 1, 2, FALSE, TRUE },
    { 8, 8, 2, 2, 0, 0, FALSE, TRUE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (ds); i++) {
    NfOp op = { .type = NF_OP_CONV_TRANSPOSE2D, .name = "deconv", .n_in = 1,
      .cin = ds[i].cin, .cout = ds[i].cout, .k = ds[i].k, .stride = ds[i].stride,
      .padding = ds[i].padding, .output_padding = ds[i].output_padding,
      .has_bias = ds[i].bias, .fuse_relu = ds[i].relu
    };
    char *desc = g_strdup_printf ("conv_transpose2d %d->%d k%d s%d p%d op%d%s%s", op.cin,
        op.cout, op.k, op.stride, op.padding, op.output_padding, op.has_bias ? "" : " nobias",
        op.fuse_relu ? " relu" : "");
    unary (ref, fast, op, op.cin, 2e-5, desc, i == 0, -1.0f, 1.0f);
    g_free (desc);
  }
}

static void
test_others (NfTestBe *ref, NfTestBe *fast)
{
  static const int chans[] = { 3, 16, 33 };
  for (guint i = 0; i < G_N_ELEMENTS (chans); i++) {
    int c = chans[i];
    char *d;
    for (int relu = 0; relu < 2; relu++) {
      NfOp op = { .type = NF_OP_INSTANCE_NORM, .name = "in", .n_in = 1, .c = c, .eps = 1e-5f,
        .affine = TRUE, .fuse_relu = relu
      };
      d = g_strdup_printf ("instance_norm c%d affine%s", c, relu ? " relu" : "");
      /* an offset larger than the spread tests the shifted statistics */
      unary (ref, fast, op, c, 2e-5, d, TRUE, 4.0f, 6.0f);
      g_free (d);
    }
    NfOp in_plain = { .type = NF_OP_INSTANCE_NORM, .name = "in", .n_in = 1, .c = c,
      .eps = 1e-3f, .affine = FALSE
    };
    d = g_strdup_printf ("instance_norm c%d no affine eps 1e-3", c);
    unary (ref, fast, in_plain, c, 2e-5, d, FALSE, -1.0f, 1.0f);
    g_free (d);

    if (!generic_pass) {
      NfOp relu = { .type = NF_OP_RELU, .n_in = 1 };
      d = g_strdup_printf ("relu c%d", c);
      unary (ref, fast, relu, c, 1e-6, d, i == 2, -1.0f, 1.0f);
      g_free (d);
    }

    NfOp th = { .type = NF_OP_TANH_SCALE, .n_in = 1, .scale = 127.5f, .offset = 127.5f };
    d = g_strdup_printf ("tanh_scale c%d 127.5*tanh+127.5", c);
    unary (ref, fast, th, c, 1e-5, d, i == 0, -4.0f, 4.0f);
    g_free (d);
    NfOp th2 = { .type = NF_OP_TANH_SCALE, .n_in = 1, .scale = 0.5f, .offset = 0.0f };
    d = g_strdup_printf ("tanh_scale c%d 0.5*tanh", c);
    unary (ref, fast, th2, c, 1e-5, d, FALSE, -0.01f, 0.01f);
    g_free (d);
    if (generic_pass)
      continue;

    NfOp cl = { .type = NF_OP_CLAMP, .n_in = 1, .min = -0.3f, .max = 0.5f };
    d = g_strdup_printf ("clamp c%d [-0.3, 0.5]", c);
    unary (ref, fast, cl, c, 1e-6, d, i == 0, -1.0f, 1.0f);
    g_free (d);
    NfOp cl2 = { .type = NF_OP_CLAMP, .n_in = 1, .min = 0.2f, .max = 0.7f };
    d = g_strdup_printf ("clamp c%d [0.2, 0.7]", c);
    unary (ref, fast, cl2, c, 1e-6, d, FALSE, -1.0f, 1.0f);
    g_free (d);

    for (int f = 2; f <= 3; f++) {
      NfOp up = { .type = NF_OP_UPSAMPLE_NEAREST, .n_in = 1, .factor = f };
      d = g_strdup_printf ("upsample_nearest c%d x%d", c, f);
      unary (ref, fast, up, c, 1e-6, d, i == 1, -1.0f, 1.0f);
      g_free (d);
    }
    for (int t = 0; t < 2; t++) {
      for (int ks = 0; ks < 2; ks++) {
        NfOp pool = { .type = t ? NF_OP_MAX_POOL2D : NF_OP_AVG_POOL2D, .n_in = 1,
          .k = ks ? 3 : 2, .stride = 2
        };
        d = g_strdup_printf ("%s c%d k%d s2", t ? "max_pool2d" : "avg_pool2d", c, pool.k);
        unary (ref, fast, pool, c, 1e-6, d, i == 1, -1.0f, 1.0f);
        g_free (d);
      }
    }
    for (int relu = 0; relu < 2; relu++) {
      NfOp add = { .type = NF_OP_ADD, .n_in = 2, .fuse_relu = relu };
      d = g_strdup_printf ("add c%d%s", c, relu ? " relu" : "");
      for (guint j = 0; j < G_N_ELEMENTS (small_sizes); j++) {
        NfShape s[2] = { shape (small_sizes[j], c), shape (small_sizes[j], c) };
        check_op (ref, fast, add, s, 1e-6, d, -1.0f, 1.0f);
      }
      if (i == 2 && relu) {
        NfShape s[2] = { shape (big2, c), shape (big2, c) };
        check_op (ref, fast, add, s, 1e-6, d, -1.0f, 1.0f);
      }
      g_free (d);
    }
  }

  static const struct {
    int c, r;
  } ps[] = { {12, 2}, {64, 2}, {27, 3}, {45, 3}, {48, 4} };
  if (generic_pass)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (ps); i++) {
    NfOp op = { .type = NF_OP_PIXEL_SHUFFLE, .n_in = 1, .factor = ps[i].r };
    char *d = g_strdup_printf ("pixel_shuffle c%d r%d", ps[i].c, ps[i].r);
    unary (ref, fast, op, ps[i].c, 1e-6, d, i == 0, -1.0f, 1.0f);
    g_free (d);
  }

  static const int cats[][3] = {
    {16, 16, 0}, {3, 16, 0}, {16, 3, 0}, {5, 12, 0}, {16, 5, 3}, {8, 8, 16}, {3, 3, 3},
  };
  for (guint i = 0; i < G_N_ELEMENTS (cats); i++) {
    int n_in = cats[i][2] ? 3 : 2;
    NfOp op = { .type = NF_OP_CONCAT, .n_in = n_in };
    char *d = n_in == 3
        ? g_strdup_printf ("concat %d+%d+%d", cats[i][0], cats[i][1], cats[i][2])
        : g_strdup_printf ("concat %d+%d", cats[i][0], cats[i][1]);
    for (guint j = 0; j < G_N_ELEMENTS (small_sizes); j++) {
      NfShape s[3];
      for (int k = 0; k < n_in; k++)
        s[k] = shape (small_sizes[j], cats[i][k]);
      check_op (ref, fast, op, s, 1e-6, d, -1.0f, 1.0f);
    }
    g_free (d);
  }
}

/* ---- networks through the engine: every op between padded convolutions ---------- */

static gboolean
engine_case (NfTestBe *ref, NfTestBe *fast, NfGraph *g, NfShape in_s, const char *desc, double tol)
{
  GError *e = NULL;
  gboolean ok = FALSE;
  float *x = NULL, *yr = NULL, *yf[2] = { NULL, NULL };
  NfEngine *er = NULL, *ef = NULL;
  NfModel *m = nf_model_new_for_graph (g, NF_TASK_OTHER, 1, &e);
  double err = INFINITY;
  NfShape out_s = { 0 };
  if (!m)
    goto out;
  nf_arch_init_weights (m, nf_rng_u32 (&rnd.rng));
  er = nf_engine_new (m, ref->be, NULL);
  ef = nf_engine_new (m, fast->be, NULL);
  if (!nf_engine_plan (er, in_s, &e) || !nf_engine_plan (ef, in_s, &e))
    goto out;
  out_s = nf_engine_output_shape (er);
  size_t on = nf_shape_numel (out_s);
  x = nf_test_random (&rnd, nf_shape_numel (in_s), -1.0f, 1.0f);
  yr = nf_alloc_floats (on);
  if (!nf_engine_run_host (er, x, in_s, yr, &e))
    goto out;
  double worst = 0;
  for (int r = 0; r < 2; r++) {     /* the second run uses the halos asked for */
    yf[r] = nf_alloc_floats (on);
    if (!nf_engine_run_host (ef, x, in_s, yf[r], &e))
      goto out;
    worst = MAX (worst, nf_test_norm_err (yr, yf[r], on));
  }
  err = worst;
  ok = err <= tol;
out:
  counts.cases++;
  if (!ok)
    counts.failed++;
  printf ("%-4s engine %-37s n%d %3dx%-3d -> %2dx%3dx%-3d err %.2e (tol %.0e)%s%s\n",
      ok ? "ok" : "FAIL", desc, in_s.n, in_s.h, in_s.w, out_s.c, out_s.h, out_s.w, err, tol,
      e ? "  " : "", e ? e->message : "");
  g_clear_error (&e);
  nf_engine_free (er);
  nf_engine_free (ef);
  nf_model_free (m);
  nf_free (x);
  nf_free (yr);
  nf_free (yf[0]);
  nf_free (yf[1]);
  return ok;
}

static int
add_conv (NfGraphBuilder *b, const char *name, int in, int cin, int cout, int k,
    NfPadMode mode)
{
  NfOp t = { .type = NF_OP_CONV2D, .k = k, .stride = 1, .padding = k / 2, .pad_mode = mode,
    .cin = cin, .cout = cout, .has_bias = TRUE
  };
  return nf_graph_builder_add (b, &t, name, &in, 1, name);
}

static void
test_engine (NfTestBe *ref, NfTestBe *fast)
{
  /* x (3) -> conv3 (C) [-> relu] -> OP -> conv9 reflect (3) and conv3 (16) -> add. */
  static const struct {
    NfOp op;
    int c, c_out;
    const char *desc;
  } ops[] = {
    { {.type = NF_OP_INSTANCE_NORM, .c = 16, .eps = 1e-5f, .affine = TRUE}, 16, 16,
      "instance_norm" },
    { {.type = NF_OP_RELU}, 16, 16, "relu" },
    { {.type = NF_OP_UPSAMPLE_NEAREST, .factor = 2}, 16, 16, "upsample x2" },
    { {.type = NF_OP_PIXEL_SHUFFLE, .factor = 2}, 64, 16, "pixel_shuffle x2" },
    { {.type = NF_OP_TANH_SCALE, .scale = 2.0f, .offset = 0.5f}, 16, 16, "tanh_scale" },
    { {.type = NF_OP_CLAMP, .min = -0.1f, .max = 0.2f}, 16, 16, "clamp" },
    { {.type = NF_OP_AVG_POOL2D, .k = 2, .stride = 2}, 16, 16, "avg_pool2d" },
    { {.type = NF_OP_MAX_POOL2D, .k = 3, .stride = 2}, 16, 16, "max_pool2d" },
    { {.type = NF_OP_CONV2D, .k = 3, .stride = 1, .padding = 1, .pad_mode = NF_PAD_REFLECT,
       .cin = 16, .cout = 16, .has_bias = TRUE}, 16, 16, "conv2d" },
    { {.type = NF_OP_CONV_TRANSPOSE2D, .k = 3, .stride = 2, .padding = 1,
       .output_padding = 1, .cin = 16, .cout = 16}, 16, 16, "conv_transpose2d" },
    { {.type = NF_OP_INSTANCE_NORM, .c = 3, .eps = 1e-5f, .affine = TRUE}, 3, 3,
      "instance_norm c3" },
    { {.type = NF_OP_INSTANCE_NORM, .c = 13, .eps = 1e-5f, .affine = TRUE}, 13, 13,
      "instance_norm c13 (partial block)" },
    { {.type = NF_OP_CONV_TRANSPOSE2D, .k = 4, .stride = 2, .padding = 1, .cin = 13,
       .cout = 21, .has_bias = TRUE}, 13, 21, "conv_transpose2d 13->21" },
    { {.type = NF_OP_ADD}, 16, 16, "add" },
    { {.type = NF_OP_CONCAT}, 16, 32, "concat" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (ops); i++) {
    for (int with_relu = 0; with_relu < 2; with_relu++) {
      NfGraphBuilder *b = nf_graph_builder_new ("x");
      int c = ops[i].c;
      int v = add_conv (b, "pre", 0, 3, c, 3, NF_PAD_REFLECT);
      if (with_relu) {
        NfOp r = { .type = NF_OP_RELU };
        v = nf_graph_builder_add (b, &r, NULL, &v, 1, "pre.relu");
      }
      NfOp op = ops[i].op;
      int in[2] = { v, v };
      if (op.type == NF_OP_ADD || op.type == NF_OP_CONCAT) {
        in[1] = add_conv (b, "pre2", 0, 3, c, 5, NF_PAD_ZERO);
        v = nf_graph_builder_add (b, &op, NULL, in, 2, "mid");
      } else {
        v = nf_graph_builder_add (b, &op, op.type == NF_OP_INSTANCE_NORM
            || op.type == NF_OP_CONV2D || op.type == NF_OP_CONV_TRANSPOSE2D ? "mid" : NULL,
            in, 1, "mid");
      }
      if (with_relu) {
        NfOp r = { .type = NF_OP_RELU };
        v = nf_graph_builder_add (b, &r, NULL, &v, 1, "mid.relu");
      }
      int a = add_conv (b, "post9", v, ops[i].c_out, 3, 9, NF_PAD_REFLECT);
      int p3 = add_conv (b, "post3", v, ops[i].c_out, 3, 3, NF_PAD_REFLECT);
      NfOp addop = { .type = NF_OP_ADD };
      int ins[2] = { a, p3 };
      int y = nf_graph_builder_add (b, &addop, NULL, ins, 2, "y");
      NfGraph *g = nf_graph_builder_finish (b, y);
      char *d = g_strdup_printf ("%s%s", ops[i].desc, with_relu ? " +relu" : "");
      engine_case (ref, fast, g, (NfShape) { 1, 3, 37, 45 }, d, 2e-4);
      engine_case (ref, fast, g, (NfShape) { 2, 3, 19, 23 }, d, 2e-4);
      g_free (d);
      nf_graph_free (g);
    }
  }

  /* The shipped architectures, small. */
  static const NfArchSpec specs[] = {
    {"style-slim", 0, 0, 0}, {"style-full", 0, 0, 1}, {"sr-johnson", 2, 16, 1},
    {"sr-subpixel", 3, 16, 1},
  };
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++) {
    GError *e = NULL;
    /* through nf-arch: sr-johnson's batch_norm is folded by the model */
    NfModel *m = nf_arch_new_model (&specs[i], 7 + i, &e);
    if (!m) {
      printf ("FAIL %s: %s\n", specs[i].arch, e->message);
      g_error_free (e);
      counts.failed++;
      continue;
    }
    NfGraph *g = nf_graph_copy (m->graph);
    nf_model_free (m);
    engine_case (ref, fast, g, (NfShape) { 1, 3, 36, 52 }, specs[i].arch, 5e-4);
    nf_graph_free (g);
  }
}

static void
test_errors (NfTestBe *fast)
{
  GError *e = NULL;
  NfOp bn = { .type = NF_OP_BATCH_NORM };
  counts.cases++;
  if (fast->iface->supports_op (fast->be, &bn)) {
    printf ("FAIL cpu claims to support batch_norm\n");
    counts.failed++;
  }
  /* A buffer of the wrong shape is an error, not a crash. */
  NfShape s = { 1, 16, 5, 5 }, t = { 1, 16, 6, 5 };
  void *a = fast->iface->alloc (fast->be, s, &e);
  void *b = fast->iface->alloc (fast->be, t, &e);
  NfOp relu = { .type = NF_OP_RELU, .n_in = 1 };
  NfOpCall call = { .op = &relu, .in = { s }, .out = s };
  void *in[1] = { a };
  counts.cases++;
  if (fast->iface->forward[NF_OP_RELU] (fast->be, &call, in, b, &e)) {
    printf ("FAIL relu into a buffer of the wrong shape succeeded\n");
    counts.failed++;
  } else {
    printf ("ok   wrong buffer shape: %s\n", e->message);
  }
  g_clear_error (&e);
  fast->iface->free (fast->be, a);
  fast->iface->free (fast->be, b);
}

int
main (void)
{
  GError *e = NULL;
  gint64 t0 = g_get_monotonic_time ();
  NfTestBe ref = { &nf_backend_cpu_ref, NULL }, fast = { &nf_backend_cpu, NULL };
  ref.be = ref.iface->create (&e);
  fast.be = fast.iface->create (&e);
  if (!ref.be || !fast.be) {
    printf ("SKIP: cannot create the backends: %s\n", e ? e->message : "?");
    g_clear_error (&e);
    return 77;
  }
  nf_rng_seed (&rnd.rng, 20160327);
  printf ("-- convolutions --\n");
  test_convs (&ref, &fast);
  printf ("-- other ops (%.1f s so far) --\n", (g_get_monotonic_time () - t0) / 1e6);
  test_others (&ref, &fast);
  printf ("-- networks through nf_engine (%.1f s so far) --\n",
      (g_get_monotonic_time () - t0) / 1e6);
  test_engine (&ref, &fast);
  test_errors (&fast);
  fast.iface->destroy (fast.be);

  /* The same backend without its AVX2 kernels (as on a CPU without AVX2; oneDNN keeps
   * its own dispatch): direct convolutions, transposed convolutions, instance norm,
   * tanh. */
  printf ("-- portable kernels (NF_CPU_NO_AVX2) --\n");
  g_setenv ("NF_CPU_NO_AVX2", "1", TRUE);
  fast.be = fast.iface->create (&e);
  g_unsetenv ("NF_CPU_NO_AVX2");
  if (!fast.be) {
    printf ("FAIL cannot create the backend: %s\n", e->message);
    return 1;
  }
  generic_pass = TRUE;
  test_convs (&ref, &fast);
  test_others (&ref, &fast);
  fast.iface->destroy (fast.be);
  ref.iface->destroy (ref.be);
  printf ("%d of %d cases failed (%.1f s)\n", counts.failed, counts.cases,
      (g_get_monotonic_time () - t0) / 1e6);
  return counts.failed ? 1 : 0;
}
