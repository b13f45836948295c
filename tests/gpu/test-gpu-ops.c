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
 * kernels, not the rounding of the data handed to them.
 * Exit: 0 pass, 1 a case failed, 77 no usable GPU (skip, with the reason).
 * Does not: time anything (gpu-bench), or test pixel conversion (test-gpu-convert).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "gpu-test-probe.h"
#include "nf-cuda.h"
#include "nf-engine.h"
#include "nf-error.h"

#define SENTINEL 12345.0f
#define N_SENTINEL 16

static int n_cases, n_failed;
static NfRng rng;
static gboolean fp16;           /* the backend under test runs fp16 */
static double tol_op, tol_net;

typedef struct {
  const NfBackendIface *iface;
  NfBackend *be;
} Be;

/* Elements of a model tensor (its dims; NfModelTensor.shape is not filled in). */
static size_t
model_tensor_numel (const NfModelTensor *t)
{
  size_t n = 1;
  for (int d = 0; d < t->ndim; d++)
    n *= (size_t) t->dims[d];
  return n;
}

static void
round_to_half (float *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    x[i] = nf_half_to_float (nf_float_to_half (x[i]));
}

static float *
host_random (size_t n, float lo, float hi)
{
  float *x = nf_alloc_floats (n);
  nf_rng_fill_uniform (&rng, x, n, lo, hi);
  if (fp16)
    round_to_half (x, n);
  return x;
}

/* Runs op on one backend: the downloaded output (numel + sentinels) or NULL + why. */
static float *
run_on (Be *b, const NfOp *op, const NfShape *in_s, float *const *in_host, NfShape out_s,
    int repeats, char **why)
{
  GError *e = NULL;
  void *in[NF_OP_MAX_INPUTS] = { 0 };
  void *out = NULL;
  float *res = NULL;
  NfOpCall call = { .op = op, .out = out_s };
  gboolean prepared = FALSE, gpu = nf_cuda_is_backend (b->be);
  size_t on = nf_shape_numel (out_s);
  float *nan_fill = nf_alloc_floats (on);
  for (size_t i = 0; i < on; i++)
    nan_fill[i] = NAN;

  for (int i = 0; i < op->n_in; i++) {
    call.in[i] = in_s[i];
    if (!(in[i] = b->iface->alloc (b->be, in_s[i], &e)))
      goto fail;
  }
  if (!(out = b->iface->alloc (b->be, out_s, &e)))
    goto fail;
  if (b->iface->prepare) {
    if (!b->iface->prepare (b->be, &call, &e))
      goto fail;
    prepared = TRUE;
  }
  for (int r = 0; r < repeats; r++) {
    for (int i = 0; i < op->n_in; i++)
      if (!b->iface->upload (b->be, in[i], in_host[i], in_s[i], &e))
        goto fail;
    if (!b->iface->upload (b->be, out, nan_fill, out_s, &e))
      goto fail;
    if (!b->iface->forward[op->type] (b->be, &call, in, out, &e))
      goto fail;
  }
  if (b->iface->synchronize && !b->iface->synchronize (b->be, &e))
    goto fail;
  if (gpu) {
    for (int i = 0; i < op->n_in; i++)
      if (!nf_cuda_buffer_guard_ok (b->be, in[i], &e))
        goto fail;
    if (!nf_cuda_buffer_guard_ok (b->be, out, &e))
      goto fail;
  }
  res = nf_alloc_floats (on + N_SENTINEL);
  for (int i = 0; i < N_SENTINEL; i++)
    res[on + i] = SENTINEL;
  if (!b->iface->download (b->be, res, out, out_s, &e)) {
    nf_free (res);
    res = NULL;
    goto fail;
  }
  for (int i = 0; i < N_SENTINEL; i++)
    if (res[on + i] != SENTINEL) {
      *why = g_strdup_printf ("%s: download wrote past the end", b->iface->name);
      nf_free (res);
      res = NULL;
      break;
    }
  goto done;

fail:
  *why = g_strdup_printf ("%s: %s", b->iface->name, e ? e->message : "?");
  g_clear_error (&e);
done:
  if (prepared && b->iface->release)
    b->iface->release (b->be, &call);
  for (int i = 0; i < op->n_in; i++)
    if (in[i])
      b->iface->free (b->be, in[i]);
  if (out)
    b->iface->free (b->be, out);
  nf_free (nan_fill);
  return res;
}

static double
max_abs (const float *x, size_t n)
{
  double m = 0;
  for (size_t i = 0; i < n; i++)
    m = MAX (m, fabs (x[i]));
  return m;
}

/* Normalised error; NaN in either output is infinite error. */
static double
norm_err (const float *ref, const float *got, size_t n)
{
  double d = 0;
  for (size_t i = 0; i < n; i++) {
    if (isnan (ref[i]) || isnan (got[i]))
      return INFINITY;
    d = MAX (d, fabs ((double) ref[i] - got[i]));
  }
  return d / (max_abs (ref, n) + 1e-6);
}

static void
check_op (Be *ref, Be *gpu, NfOp op, const NfShape *in_s, const char *desc, float lo,
    float hi)
{
  NfShape out_s;
  GError *e = NULL;
  if (!nf_op_output_shape (&op, in_s, &out_s, &e)) {
    g_error_free (e);           /* a combination the op cannot take: not a case */
    return;
  }
  n_cases++;
  float *in_host[NF_OP_MAX_INPUTS] = { 0 };
  for (int i = 0; i < op.n_in; i++)
    in_host[i] = host_random (nf_shape_numel (in_s[i]), lo, hi);
  float *w = NULL, *b = NULL;
  if (op.type == NF_OP_CONV2D || op.type == NF_OP_CONV_TRANSPOSE2D) {
    int fan_in = op.cin * op.k * op.k;
    float bound = 1.0f / sqrtf ((float) fan_in);
    w = host_random ((size_t) op.cin * op.cout * op.k * op.k, -bound, bound);
    b = op.has_bias ? host_random (op.cout, -0.5f, 0.5f) : NULL;
  } else if (op.type == NF_OP_INSTANCE_NORM && op.affine) {
    w = host_random (op.c, 0.5f, 1.5f);
    b = host_random (op.c, -0.5f, 0.5f);
  }
  op.weight = w;
  op.bias = b;

  char *why = NULL;
  float *yr = run_on (ref, &op, in_s, in_host, out_s, 1, &why);
  float *yg = yr ? run_on (gpu, &op, in_s, in_host, out_s, 2, &why) : NULL;
  size_t on = nf_shape_numel (out_s);
  double err = (yr && yg) ? norm_err (yr, yg, on) : INFINITY;
  if (yr && yg && isinf (err))
    why = g_strdup ("NaN in an output (element left unwritten?)");
  gboolean ok = yr && yg && err <= tol_op;
  if (!ok)
    n_failed++;
  printf ("%-4s %-46s n%d %3dx%-3d -> %2dx%3dx%-3d err %.2e (tol %.0e)%s%s\n",
      ok ? "ok" : "FAIL", desc, in_s[0].n, in_s[0].h, in_s[0].w, out_s.c, out_s.h, out_s.w,
      err, tol_op, why ? "  " : "", why ? why : "");
  g_free (why);
  for (int i = 0; i < op.n_in; i++)
    nf_free (in_host[i]);
  nf_free (w);
  nf_free (b);
  nf_free (yr);
  nf_free (yg);
}

typedef struct {
  int h, w, n;
} Size;

static const Size sizes[] = {
  {1, 1, 1}, {7, 7, 1}, {7, 7, 2}, {33, 7, 1}, {7, 33, 2}, {133, 133, 1},
};

static void
unary (Be *ref, Be *gpu, NfOp op, int c, const char *desc, gboolean with_big, float lo,
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
test_convs (Be *ref, Be *gpu)
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
test_others (Be *ref, Be *gpu)
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
net_case (Be *ref, Be *gpu, const NfArchSpec *spec, const char *label, NfShape in_s,
    guint64 seed)
{
  GError *e = NULL;
  gboolean ok = FALSE;
  float *x = NULL, *yr = NULL, *yg = NULL;
  NfEngine *er = NULL, *eg = NULL;
  double err = INFINITY;
  NfShape out_s = { 0 };
  NfModel *m = nf_arch_new_model (spec, seed, &e);
  n_cases++;
  if (!m)
    goto out;
  if (fp16) {                   /* the reference runs the weights the GPU runs */
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init (&it, m->tensors);
    while (g_hash_table_iter_next (&it, NULL, &v)) {
      NfModelTensor *t = v;
      round_to_half (t->data, model_tensor_numel (t));
    }
    if (!nf_model_bind (m, &e))
      goto out;
    g_hash_table_iter_init (&it, m->folded);     /* batch norm folded into convs */
    while (g_hash_table_iter_next (&it, NULL, &v)) {
      NfModelTensor *t = v;
      round_to_half (t->data, model_tensor_numel (t));
    }
  }
  er = nf_engine_new (m, ref->be, NULL);
  eg = nf_engine_new (m, gpu->be, NULL);
  if (!nf_engine_plan (er, in_s, &e) || !nf_engine_plan (eg, in_s, &e))
    goto out;
  out_s = nf_engine_output_shape (er);
  size_t on = nf_shape_numel (out_s);
  x = host_random (nf_shape_numel (in_s), m->in_lo, m->in_hi);
  yr = nf_alloc_floats (on);
  yg = nf_alloc_floats (on);
  if (!nf_engine_run_host (er, x, in_s, yr, &e))
    goto out;
  for (int r = 0; r < 2; r++)   /* the second run reuses every prepared state */
    if (!nf_engine_run_host (eg, x, in_s, yg, &e))
      goto out;
  err = norm_err (yr, yg, on);
  ok = err <= tol_net;
  if (ok && !nf_cuda_buffer_guard_ok (gpu->be, nf_engine_output_buffer (eg), &e))
    ok = FALSE;
out:
  if (!ok)
    n_failed++;
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
test_nets (Be *ref, Be *gpu)
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
expect (gboolean cond, const char *what, GError *e)
{
  n_cases++;
  if (!cond)
    n_failed++;
  printf ("%-4s %s%s%s\n", cond ? "ok" : "FAIL", what, e ? ": " : "", e ? e->message : "");
}

static void
test_errors (Be *gpu)
{
  GError *e = NULL;
  NfOp bn = { .type = NF_OP_BATCH_NORM };
  expect (!gpu->iface->supports_op (gpu->be, &bn), "batch_norm is not claimed", NULL);

  NfShape s = { 1, 16, 5, 5 }, t = { 1, 16, 6, 5 };
  void *a = gpu->iface->alloc (gpu->be, s, &e);
  void *b = gpu->iface->alloc (gpu->be, t, &e);
  NfOp relu = { .type = NF_OP_RELU, .n_in = 1 };
  NfOpCall call = { .op = &relu, .in = { s }, .out = s };
  void *in[1] = { a };
  gboolean r = gpu->iface->forward[NF_OP_RELU] (gpu->be, &call, in, b, &e);
  expect (!r && e, "relu into a buffer of the wrong shape is an error", e);
  g_clear_error (&e);
  float host[4] = { 1, 2, 3, 4 };
  void *bogus = host;
  in[0] = bogus;
  r = gpu->iface->forward[NF_OP_RELU] (gpu->be, &call, in, a, &e);
  expect (!r && e, "a pointer that is not a backend buffer is an error", e);
  g_clear_error (&e);
  NfOp conv = { .type = NF_OP_CONV2D, .n_in = 1, .cin = 16, .cout = 4, .k = 3, .stride = 1,
    .padding = 1
  };
  NfOpCall cc = { .op = &conv, .in = { s }, .out = { 1, 4, 5, 5 } };
  r = gpu->iface->prepare (gpu->be, &cc, &e);
  expect (!r && e, "a convolution without weights fails to prepare", e);
  g_clear_error (&e);
  gpu->iface->free (gpu->be, a);
  gpu->iface->free (gpu->be, b);
}

int
main (int argc, char **argv)
{
  GError *e = NULL;
  gint64 t0 = g_get_monotonic_time ();
  int devices = nf_gpu_test_probe ();
  if (devices == 0)
    return 77;
  /* NF_GPU_TEST_PRECISION=fp32|fp16 limits the run to one backend */
  const char *only = g_getenv ("NF_GPU_TEST_PRECISION");
  Be ref = { &nf_backend_cpu_ref, NULL };
  ref.be = ref.iface->create (&e);
  const char *names[2] = { "cuda", "cuda-fp16" };
  for (int p = 0; p < 2; p++) {
    if (only && g_strcmp0 (only, p ? "fp16" : "fp32") != 0)
      continue;
    fp16 = p == 1;
    tol_op = fp16 ? 2e-3 : 1e-5;
    tol_net = fp16 ? 2e-3 : 1e-5;
    Be gpu = { nf_backend_lookup (names[p]), NULL };
    gpu.be = gpu.iface ? gpu.iface->create (&e) : NULL;
    if (!gpu.be) {
      printf ("FAIL cannot create %s: %s\n", names[p], e ? e->message : "not built");
      g_clear_error (&e);
      n_failed++;
      continue;
    }
    printf ("== %s ==\n", nf_cuda_backend_description (gpu.be));
    nf_rng_seed (&rng, 20160327 + p);
    printf ("-- convolutions --\n");
    test_convs (&ref, &gpu);
    printf ("-- other ops (%.1f s so far) --\n", (g_get_monotonic_time () - t0) / 1e6);
    test_others (&ref, &gpu);
    printf ("-- shipped architectures (%.1f s so far) --\n",
        (g_get_monotonic_time () - t0) / 1e6);
    test_nets (&ref, &gpu);
    test_errors (&gpu);
    gpu.iface->destroy (gpu.be);
  }
  ref.iface->destroy (ref.be);
  printf ("%d of %d cases failed (%.1f s)\n", n_failed, n_cases,
      (g_get_monotonic_time () - t0) / 1e6);
  return n_failed ? 1 : 0;
}
