/* test-gpu-ops.c — the CUDA backends ("cuda" fp32 NCHW, "cuda-fp16" fp16 NHWC) against
 * the reference "cpu-ref", op by op and network by network.
 *
 * Every op type (batch_norm is folded at load, so none) over several parameter sets,
 * odd sizes (1, 7, 33, 133; batch 1 and 2), fresh random inputs and weights (never
 * zeros), through the backend interface directly (create, alloc, upload, prepare,
 * forward twice, download). Output buffers start as NaN, downloads land in host
 * buffers with sentinel floats after the end, and the guard bytes after every device
 * buffer must be intact afterwards. Then every shipped architecture (style-full,
 * style-slim, sr-johnson x2/x4, sr-subpixel x2/x3/x4, seeded weights) through nf_engine
 * with ReLU fusion, at two small sizes. The error is normalised: max|gpu - ref| /
 * (max|ref| + 1e-6), against 1e-5 for fp32 and 2e-3 for fp16. For fp16 the reference
 * gets the inputs and weights rounded to fp16 first, so the comparison measures the
 * kernels, not the rounding of the data handed to them. Random inputs, the run of one
 * op, sentinels, guard bytes and the error: ../nf-test-harness.h (shared with test-ops).
 * Exit: 0 pass, 1 a case failed, 77 no usable GPU (skip, with the reason).
 * Does not: time anything (gpu-bench), or test pixel conversion (test-gpu-convert).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "gpu-test-backends.h"
#include "nf-cuda.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-test-harness.h"

static NfTestCounts counts;
static NfTestRandom rnd;        /* rounds to fp16 when the backend under test runs fp16 */
static gboolean fp16;           /* the backend under test runs fp16 */
static double tol_op, tol_net;

/* One case; the GPU runs it twice (the second run reuses every prepared state). */
static void
check_op (NfTestBe *ref, NfTestBe *gpu, NfOp op, const NfShape *in_s, const char *desc,
    float lo, float hi)
{
  NfTestResult res = nf_test_compare_op (&rnd, ref, gpu, op, in_s, lo, hi, 2, tol_op, 46,
      desc);
  nf_test_count (&counts, res);
}

typedef struct {
  int h, w, n;
} Size;

static const Size sizes[] = {
  {1, 1, 1}, {7, 7, 1}, {7, 7, 2}, {33, 7, 1}, {7, 33, 2}, {133, 133, 1},
};

static void
unary (NfTestBe *ref, NfTestBe *gpu, NfOp op, int c, const char *desc, gboolean with_big, float lo,
    float hi)
{
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    if (sizes[i].h == 133 && !with_big)
      continue;
    NfShape s = { sizes[i].n, c, sizes[i].h, sizes[i].w };
    check_op (ref, gpu, op, &s, desc, lo, hi);
  }
}

static void
test_convs (NfTestBe *ref, NfTestBe *gpu)
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
    { 64, 64, 3, 1, 1, NF_PAD_REFLECT, TRUE, TRUE, TRUE },
    { 3, 32, 9, 1, 4, NF_PAD_REFLECT, TRUE, TRUE, TRUE },
    { 16, 3, 9, 1, 4, NF_PAD_REFLECT, FALSE, TRUE, TRUE },
    { 33, 3, 9, 2, 4, NF_PAD_ZERO, TRUE, TRUE, FALSE },
    { 16, 1, 3, 1, 1, NF_PAD_REFLECT, TRUE, TRUE, FALSE },
    { 16, 2, 5, 1, 2, NF_PAD_ZERO, FALSE, TRUE, FALSE },
    { 40, 4, 9, 1, 4, NF_PAD_REFLECT, FALSE, FALSE, FALSE },
    { 5, 6, 3, 1, 1, NF_PAD_REFLECT, FALSE, TRUE, FALSE },
    /* few input channels with zero padding: fp16 stages them for the channel padding
     * alone (nf_cuda_conv_input_channels) */
    { 3, 16, 3, 1, 1, NF_PAD_ZERO, TRUE, TRUE, FALSE },
    { 1, 8, 5, 2, 2, NF_PAD_ZERO, FALSE, TRUE, FALSE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cs); i++) {
    NfOp op = { .type = NF_OP_CONV2D, .name = "conv", .n_in = 1, .cin = cs[i].cin,
      .cout = cs[i].cout, .k = cs[i].k, .stride = cs[i].stride, .padding = cs[i].padding,
      .pad_mode = cs[i].mode, .has_bias = cs[i].bias, .fuse_relu = cs[i].relu
    };
    char *desc = g_strdup_printf ("conv2d %d->%d k%d s%d %s p%d%s%s", op.cin, op.cout, op.k,
        op.stride, op.pad_mode == NF_PAD_REFLECT ? "reflect" : "zero", op.padding,
        op.has_bias ? "" : " nobias", op.fuse_relu ? " relu" : "");
    unary (ref, gpu, op, op.cin, desc, cs[i].big, -1.0f, 1.0f);
    g_free (desc);
  }

  static const struct {
    int cin, cout, k, stride, padding, output_padding;
    gboolean relu, bias;
  } ds[] = {
    { 16, 16, 3, 2, 1, 1, FALSE, TRUE },
    { 64, 64, 3, 2, 1, 1, TRUE, FALSE },
    { 16, 16, 4, 2, 1, 0, FALSE, TRUE },
    { 3, 16, 3, 2, 1, 1, TRUE, TRUE },
    { 33, 3, 4, 2, 1, 0, FALSE, TRUE },
    { 16, 8, 3, 1, 1, 0, FALSE, TRUE },
    { 16, 16, 1, 2, 0, 1, TRUE, TRUE },
    { 16, 24, 5, 3, 1, 2, FALSE, TRUE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (ds); i++) {
    NfOp op = { .type = NF_OP_CONV_TRANSPOSE2D, .name = "deconv", .n_in = 1,
      .cin = ds[i].cin, .cout = ds[i].cout, .k = ds[i].k, .stride = ds[i].stride,
      .padding = ds[i].padding, .output_padding = ds[i].output_padding,
      .has_bias = ds[i].bias, .fuse_relu = ds[i].relu
    };
    char *desc = g_strdup_printf ("conv_transpose2d %d->%d k%d s%d p%d op%d%s%s", op.cin,
        op.cout, op.k, op.stride, op.padding, op.output_padding,
        op.has_bias ? "" : " nobias", op.fuse_relu ? " relu" : "");
    unary (ref, gpu, op, op.cin, desc, i < 2, -1.0f, 1.0f);
    g_free (desc);
  }
}

static void
test_others (NfTestBe *ref, NfTestBe *gpu)
{
  static const int chans[] = { 3, 16, 33 };
  for (guint i = 0; i < G_N_ELEMENTS (chans); i++) {
    int c = chans[i];
    char *d;
    for (int relu = 0; relu < 2; relu++) {
      NfOp op = { .type = NF_OP_INSTANCE_NORM, .name = "in", .n_in = 1, .c = c,
        .eps = 1e-5f, .affine = TRUE, .fuse_relu = relu
      };
      d = g_strdup_printf ("instance_norm c%d affine%s", c, relu ? " relu" : "");
      /* an offset larger than the spread tests the shifted statistics */
      unary (ref, gpu, op, c, d, TRUE, 4.0f, 6.0f);
      g_free (d);
    }
    NfOp in_plain = { .type = NF_OP_INSTANCE_NORM, .name = "in", .n_in = 1, .c = c,
      .eps = 1e-3f, .affine = FALSE
    };
    d = g_strdup_printf ("instance_norm c%d no affine eps 1e-3", c);
    unary (ref, gpu, in_plain, c, d, FALSE, -1.0f, 1.0f);
    g_free (d);

    NfOp relu = { .type = NF_OP_RELU, .n_in = 1 };
    d = g_strdup_printf ("relu c%d", c);
    unary (ref, gpu, relu, c, d, i == 2, -1.0f, 1.0f);
    g_free (d);

    NfOp th = { .type = NF_OP_TANH_SCALE, .n_in = 1, .scale = 127.5f, .offset = 127.5f };
    d = g_strdup_printf ("tanh_scale c%d 127.5*tanh+127.5", c);
    unary (ref, gpu, th, c, d, i == 0, -4.0f, 4.0f);
    g_free (d);

    NfOp cl = { .type = NF_OP_CLAMP, .n_in = 1, .min = -0.3f, .max = 0.5f };
    d = g_strdup_printf ("clamp c%d [-0.3, 0.5]", c);
    unary (ref, gpu, cl, c, d, i == 0, -1.0f, 1.0f);
    g_free (d);

    for (int f = 2; f <= 3; f++) {
      NfOp up = { .type = NF_OP_UPSAMPLE_NEAREST, .n_in = 1, .factor = f };
      d = g_strdup_printf ("upsample_nearest c%d x%d", c, f);
      unary (ref, gpu, up, c, d, i == 1, -1.0f, 1.0f);
      g_free (d);
    }
    for (int t = 0; t < 2; t++)
      for (int ks = 0; ks < 2; ks++) {
        NfOp pool = { .type = t ? NF_OP_MAX_POOL2D : NF_OP_AVG_POOL2D, .n_in = 1,
          .k = ks ? 3 : 2, .stride = 2
        };
        d = g_strdup_printf ("%s c%d k%d s2", t ? "max_pool2d" : "avg_pool2d", c, pool.k);
        unary (ref, gpu, pool, c, d, i == 1, -1.0f, 1.0f);
        g_free (d);
      }
    for (int relu = 0; relu < 2; relu++) {
      NfOp add = { .type = NF_OP_ADD, .n_in = 2, .fuse_relu = relu };
      d = g_strdup_printf ("add c%d%s", c, relu ? " relu" : "");
      for (guint j = 0; j < G_N_ELEMENTS (sizes); j++) {
        NfShape s[2] = { {sizes[j].n, c, sizes[j].h, sizes[j].w},
        {sizes[j].n, c, sizes[j].h, sizes[j].w}
        };
        check_op (ref, gpu, add, s, d, -1.0f, 1.0f);
      }
      g_free (d);
    }
  }

  static const struct {
    int c, r;
  } ps[] = { {12, 2}, {64, 2}, {27, 3}, {48, 4} };
  for (guint i = 0; i < G_N_ELEMENTS (ps); i++) {
    NfOp op = { .type = NF_OP_PIXEL_SHUFFLE, .n_in = 1, .factor = ps[i].r };
    char *d = g_strdup_printf ("pixel_shuffle c%d r%d", ps[i].c, ps[i].r);
    unary (ref, gpu, op, ps[i].c, d, i == 0, -1.0f, 1.0f);
    g_free (d);
  }

  static const int cats[][3] = { {16, 16, 0}, {3, 16, 0}, {5, 12, 0}, {16, 5, 3} };
  for (guint i = 0; i < G_N_ELEMENTS (cats); i++) {
    int n_in = cats[i][2] ? 3 : 2;
    NfOp op = { .type = NF_OP_CONCAT, .n_in = n_in };
    char *d = n_in == 3
        ? g_strdup_printf ("concat %d+%d+%d", cats[i][0], cats[i][1], cats[i][2])
        : g_strdup_printf ("concat %d+%d", cats[i][0], cats[i][1]);
    for (guint j = 0; j < G_N_ELEMENTS (sizes); j++) {
      NfShape s[3];
      for (int k = 0; k < n_in; k++)
        s[k] = (NfShape) { sizes[j].n, cats[i][k], sizes[j].h, sizes[j].w };
      check_op (ref, gpu, op, s, d, -1.0f, 1.0f);
    }
    g_free (d);
  }
}

/* ---- whole networks through nf_engine ------------------------------------------------ */

static void
net_case (NfTestBe *ref, NfTestBe *gpu, const NfArchSpec *spec, const char *label, NfShape in_s,
    guint64 seed)
{
  GError *e = NULL;
  gboolean ok = FALSE;
  float *x = NULL, *yr = NULL, *yg = NULL;
  NfEngine *er = NULL, *eg = NULL;
  double err = INFINITY;
  NfShape out_s = { 0 };
  NfModel *m = nf_arch_new_model (spec, seed, &e);
  counts.cases++;
  if (!m)
    goto out;
  /* fp16: the reference runs the weights the GPU runs */
  if (fp16 && !nf_test_model_round_to_half (m, &e))
    goto out;
  er = nf_engine_new (m, ref->be, NULL);
  eg = nf_engine_new (m, gpu->be, NULL);
  if (!nf_engine_plan (er, in_s, &e) || !nf_engine_plan (eg, in_s, &e))
    goto out;
  out_s = nf_engine_output_shape (er);
  size_t on = nf_shape_numel (out_s);
  x = nf_test_random (&rnd, nf_shape_numel (in_s), m->in_lo, m->in_hi);
  yr = nf_alloc_floats (on);
  yg = nf_alloc_floats (on);
  if (!nf_engine_run_host (er, x, in_s, yr, &e))
    goto out;
  for (int r = 0; r < 2; r++)   /* the second run reuses every prepared state */
    if (!nf_engine_run_host (eg, x, in_s, yg, &e))
      goto out;
  err = nf_test_norm_err (yr, yg, on);
  ok = err <= tol_net;
  if (ok && !gpu->buffer_ok (gpu->be, nf_engine_output_buffer (eg), &e))
    ok = FALSE;
out:
  if (!ok)
    counts.failed++;
  printf ("%-4s net %-40s n%d %3dx%-3d -> %2dx%3dx%-3d err %.2e (tol %.0e)%s%s\n",
      ok ? "ok" : "FAIL", label, in_s.n, in_s.h, in_s.w, out_s.c, out_s.h, out_s.w, err,
      tol_net, e ? "  " : "", e ? e->message : "");
  g_clear_error (&e);
  nf_engine_free (er);
  nf_engine_free (eg);
  nf_model_free (m);
  nf_free (x);
  nf_free (yr);
  nf_free (yg);
}

static void
test_nets (NfTestBe *ref, NfTestBe *gpu)
{
  static const struct {
    const char *label;
    NfArchSpec spec;
  } nets[] = {
    {"style-full", {"style-full", 0, 0, 0}},
    {"style-slim", {"style-slim", 0, 0, 0}},
    {"sr-johnson-x2", {"sr-johnson", 2, 0, 0}},
    {"sr-johnson-x4", {"sr-johnson", 4, 0, 0}},
    {"sr-subpixel-x2", {"sr-subpixel", 2, 0, 0}},
    {"sr-subpixel-x3", {"sr-subpixel", 3, 0, 0}},
    {"sr-subpixel-x4", {"sr-subpixel", 4, 0, 0}},
  };
  for (guint i = 0; i < G_N_ELEMENTS (nets); i++) {
    gboolean style = g_str_has_prefix (nets[i].label, "style");
    /* style networks need multiples of 4; the SR ones take any size */
    net_case (ref, gpu, &nets[i].spec, nets[i].label,
        style ? (NfShape) { 1, 3, 44, 68 } : (NfShape) { 1, 3, 23, 37 }, 100 + i);
    net_case (ref, gpu, &nets[i].spec, nets[i].label,
        style ? (NfShape) { 2, 3, 36, 20 } : (NfShape) { 1, 3, 7, 33 }, 200 + i);
  }
}

/* ---- bad input is an error, never a crash ------------------------------------------ */

static void
test_errors (NfTestBe *gpu)
{
  GError *e = NULL;
  NfOp bn = { .type = NF_OP_BATCH_NORM };
  nf_test_expect (&counts, !gpu->iface->supports_op (gpu->be, &bn), "batch_norm is not claimed",
      NULL);

  NfShape s = { 1, 16, 5, 5 }, t = { 1, 16, 6, 5 };
  void *a = gpu->iface->alloc (gpu->be, s, &e);
  void *b = gpu->iface->alloc (gpu->be, t, &e);
  NfOp relu = { .type = NF_OP_RELU, .n_in = 1 };
  NfOpCall call = { .op = &relu, .in = { s }, .out = s };
  void *in[1] = { a };
  gboolean r = gpu->iface->forward[NF_OP_RELU] (gpu->be, &call, in, b, &e);
  nf_test_expect (&counts, !r && e, "relu into a buffer of the wrong shape is an error", e);
  g_clear_error (&e);
  float host[4] = { 1, 2, 3, 4 };
  void *bogus = host;
  in[0] = bogus;
  r = gpu->iface->forward[NF_OP_RELU] (gpu->be, &call, in, a, &e);
  nf_test_expect (&counts, !r && e, "a pointer that is not a backend buffer is an error", e);
  g_clear_error (&e);
  NfOp conv = { .type = NF_OP_CONV2D, .n_in = 1, .cin = 16, .cout = 4, .k = 3, .stride = 1,
    .padding = 1
  };
  NfOpCall cc = { .op = &conv, .in = { s }, .out = { 1, 4, 5, 5 } };
  r = gpu->iface->prepare (gpu->be, &cc, &e);
  nf_test_expect (&counts, !r && e, "a convolution without weights fails to prepare", e);
  g_clear_error (&e);
  gpu->iface->free (gpu->be, a);
  gpu->iface->free (gpu->be, b);
}

static void
run_backend (NfTestBe *ref, NfTestBe *gpu, gboolean fp16_backend, gint64 t0)
{
  fp16 = rnd.round_half = fp16_backend;
  tol_op = fp16 ? 2e-3 : 1e-5;
  tol_net = fp16 ? 2e-3 : 1e-5;
  printf ("== %s ==\n", nf_cuda_backend_description (gpu->be));
  nf_rng_seed (&rnd.rng, 20160327 + fp16);
  printf ("-- convolutions --\n");
  test_convs (ref, gpu);
  printf ("-- other ops (%.1f s so far) --\n", (g_get_monotonic_time () - t0) / 1e6);
  test_others (ref, gpu);
  printf ("-- shipped architectures (%.1f s so far) --\n",
      (g_get_monotonic_time () - t0) / 1e6);
  test_nets (ref, gpu);
  test_errors (gpu);
}

int
main (int argc, char **argv)
{
  return nf_gpu_test_main (run_backend, &counts);
}
