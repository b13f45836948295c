/* test-gpu-backward.c — the CUDA backends' backward passes against cpu-ref's, op by op
 * and network by network (training, issue 7).
 *
 * Ops: every op type the CUDA backends train through (batch_norm is folded at load, so
 * none), at odd sizes (1, 7, 13 rows, two more columns, batch 2), 3 and 11 channels,
 * every padding mode (zero, reflect — also pads wider than the image), stride 1 and 2,
 * with and without bias, ReLU unfused (plus a few fused-ReLU cases in fp32, the
 * contract's other branch). Each case runs forward + backward through the backend
 * interface on "cpu-ref" and on the GPU backend with the same random inputs, weights
 * and output gradient, and compares din (every input), dweight and dbias (device fp32
 * buffers in the model's layout, with sentinel floats after the end). On the GPU the
 * backward runs twice into the same buffers, which must then hold twice the first
 * result (gradients accumulate), and the guard bytes after every device buffer must be
 * intact. Error: max|gpu - ref| / (max|ref| + 1e-6) per tensor, against 1e-5 (fp32)
 * and 3e-3 (fp16, whose reference gets the inputs, weights and output gradient rounded
 * to half first, so the comparison measures the kernels and the half storage of the
 * results).
 * Networks: every shipped architecture (style-full, style-slim, sr-johnson x2/x4,
 * sr-subpixel x2/x3/x4) at small widths, and style-full and sr-subpixel x4 at their own
 * widths, planned for training (keep_all_values, no_fusion) on both backends, one
 * forward and nf_engine_backward with the same output gradient; the input gradient and
 * every parameter gradient are compared, each tensor normalised by the larger of its
 * own max|ref| and 1% of the largest gradient of the network (biases of convolutions
 * followed by instance norm have gradients that are zero in exact arithmetic: only
 * rounding noise is left there), against 1e-4 (fp32) and 5e-2 (fp16: a first estimate
 * through a dozen half-precision layers, to be calibrated on the first GPU run).
 * NF_GPU_TEST_PRECISION=fp32|fp16 limits the run to one backend (gpu-test-backends.h).
 * Random inputs and parameters, sentinels and the errors: ../nf-test-harness.h.
 * Exit: 0 pass, 1 a case failed, 77 no usable GPU (skip, with the reason).
 * Does not: check the gradients themselves against finite differences (test-backward
 * does that for cpu-ref), or time anything.
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

static float *
host_zeros (size_t n)
{
  float *x = nf_alloc_floats (n ? n : 1);
  memset (x, 0, (n ? n : 1) * sizeof (float));
  return x;
}

/* ---- parameter-gradient buffers: host floats (cpu-ref) or device floats (GPU) ------- */

/* n zeroed floats followed by NF_TEST_N_SENTINEL sentinels; on the GPU's device for GPU
 * backends (nf_cuda_device_alloc + a copy on the backend's stream). */
static float *
param_buf_new (NfTestBe *b, size_t n, GError **error)
{
  float *host = host_zeros (n + NF_TEST_N_SENTINEL);
  for (int i = 0; i < NF_TEST_N_SENTINEL; i++)
    host[n + i] = NF_TEST_SENTINEL;
  if (!nf_cuda_is_backend (b->be))
    return host;
  size_t bytes = (n + NF_TEST_N_SENTINEL) * sizeof (float);
  float *dev = nf_cuda_device_alloc (b->be, bytes, error);
  gboolean ok = dev && nf_cuda_copy_2d_async (b->be, dev, bytes, host, bytes, bytes, 1, error)
      && b->iface->synchronize (b->be, error);
  nf_free (host);
  if (!ok && dev) {
    nf_cuda_device_free (b->be, dev);
    dev = NULL;
  }
  return dev;
}

static void
param_buf_free (NfTestBe *b, float *p)
{
  if (!p)
    return;
  if (nf_cuda_is_backend (b->be))
    nf_cuda_device_free (b->be, p);
  else
    nf_free (p);
}

/* Copies n floats of p to host (new), checking the sentinels after them. */
static float *
param_buf_read (NfTestBe *b, const float *p, size_t n, GError **error)
{
  float *host = nf_alloc_floats (n + NF_TEST_N_SENTINEL);
  size_t bytes = (n + NF_TEST_N_SENTINEL) * sizeof (float);
  if (nf_cuda_is_backend (b->be)) {
    if (!b->iface->synchronize (b->be, error)
        || !nf_cuda_copy_2d_async (b->be, host, bytes, p, bytes, bytes, 1, error)
        || !b->iface->synchronize (b->be, error)) {
      nf_free (host);
      return NULL;
    }
  } else {
    memcpy (host, p, bytes);
  }
  for (int i = 0; i < NF_TEST_N_SENTINEL; i++)
    if (host[n + i] != NF_TEST_SENTINEL) {
      g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
          "a parameter gradient was written past its end (float %d after it)", i);
      nf_free (host);
      return NULL;
    }
  return host;
}

/* ---- one op ------------------------------------------------------------------------------ */

/* Gradients of one op, on the host. */
typedef struct {
  float *dx[NF_OP_MAX_INPUTS];
  float *dw, *db;
} Grads;

static void
grads_clear (Grads *g, int n_in)
{
  for (int j = 0; j < n_in; j++)
    nf_free (g->dx[j]);
  nf_free (g->dw);
  nf_free (g->db);
  memset (g, 0, sizeof *g);
}

typedef struct {
  NfOp op;
  NfShape in_s[NF_OP_MAX_INPUTS];
  NfShape out_s;
  float *x[NF_OP_MAX_INPUTS];   /* inputs (host) */
  float *dy;                    /* dL/d(out) (host) */
  size_t nw, nb;                /* parameter sizes (0: none) */
  gboolean alias_din;           /* add: both input gradients in one buffer */
} OpCase;

/* Forward then `reps` backward passes on one backend; g[r] gets the gradients after
 * pass r + 1. FALSE + *why on failure. */
static gboolean
run_backward (NfTestBe *b, OpCase *c, int reps, Grads *g, char **why)
{
  GError *e = NULL;
  const NfOp *op = &c->op;
  const NfBackendIface *bi = b->iface;
  void *in[NF_OP_MAX_INPUTS] = { 0 }, *din[NF_OP_MAX_INPUTS] = { 0 };
  void *out = NULL, *dout = NULL;
  float *dw = NULL, *db = NULL;
  NfOpCall call = { .op = op, .out = c->out_s };
  gboolean prepared = FALSE, ok = FALSE, gpu = nf_cuda_is_backend (b->be);
  int n_din = c->alias_din ? 1 : op->n_in;

  for (int j = 0; j < op->n_in; j++) {
    call.in[j] = c->in_s[j];
    if (!(in[j] = bi->alloc (b->be, c->in_s[j], &e)))
      goto done;
  }
  for (int j = 0; j < n_din; j++)
    if (!(din[j] = bi->alloc (b->be, c->in_s[j], &e))
        || !bi->zero (b->be, din[j], c->in_s[j], &e))
      goto done;
  if (c->alias_din)
    din[1] = din[0];
  if (!(out = bi->alloc (b->be, c->out_s, &e)) || !(dout = bi->alloc (b->be, c->out_s, &e)))
    goto done;
  if (c->nw && !(dw = param_buf_new (b, c->nw, &e)))
    goto done;
  if (c->nb && !(db = param_buf_new (b, c->nb, &e)))
    goto done;
  if (bi->prepare) {
    if (!bi->prepare (b->be, &call, &e))
      goto done;
    prepared = TRUE;
  }
  for (int j = 0; j < op->n_in; j++)
    if (!bi->upload (b->be, in[j], c->x[j], c->in_s[j], &e))
      goto done;
  if (!bi->forward[op->type] (b->be, &call, in, out, &e)
      || !bi->upload (b->be, dout, c->dy, c->out_s, &e))
    goto done;
  for (int r = 0; r < reps; r++) {
    if (!bi->backward[op->type]) {
      g_set_error (&e, NF_ERROR, NF_ERROR_UNSUPPORTED, "no backward for %s",
          nf_op_type_name (op->type));
      goto done;
    }
    if (!bi->backward[op->type] (b->be, &call, in, out, dout, din, dw, db, &e))
      goto done;
    if (bi->synchronize && !bi->synchronize (b->be, &e))
      goto done;
    for (int j = 0; j < n_din; j++) {
      g[r].dx[j] = nf_alloc_floats (nf_shape_numel (c->in_s[j]));
      if (!bi->download (b->be, g[r].dx[j], din[j], c->in_s[j], &e))
        goto done;
    }
    if (dw && !(g[r].dw = param_buf_read (b, dw, c->nw, &e)))
      goto done;
    if (db && !(g[r].db = param_buf_read (b, db, c->nb, &e)))
      goto done;
  }
  if (gpu) {
    for (int j = 0; j < op->n_in; j++)
      if (!nf_cuda_buffer_guard_ok (b->be, in[j], &e))
        goto done;
    for (int j = 0; j < n_din; j++)
      if (!nf_cuda_buffer_guard_ok (b->be, din[j], &e))
        goto done;
    if (!nf_cuda_buffer_guard_ok (b->be, out, &e) || !nf_cuda_buffer_guard_ok (b->be, dout, &e))
      goto done;
  }
  ok = TRUE;

done:
  if (!ok)
    *why = g_strdup_printf ("%s: %s", bi->name, e ? e->message : "?");
  g_clear_error (&e);
  if (prepared && bi->release)
    bi->release (b->be, &call);
  for (int j = 0; j < op->n_in; j++)
    if (in[j])
      bi->free (b->be, in[j]);
  for (int j = 0; j < n_din; j++)
    if (din[j])
      bi->free (b->be, din[j]);
  if (out)
    bi->free (b->be, out);
  if (dout)
    bi->free (b->be, dout);
  param_buf_free (b, dw);
  param_buf_free (b, db);
  return ok;
}

/* Largest error over the gradients of a and b (ref). scale_a multiplies a. */
static double
grads_err (const OpCase *c, const Grads *ref, const Grads *got, double scale_ref)
{
  double err = 0;
  int n_din = c->alias_din ? 1 : c->op.n_in;
  for (int j = 0; j < n_din; j++) {
    size_t n = nf_shape_numel (c->in_s[j]);
    float *r = nf_alloc_floats (n);
    for (size_t i = 0; i < n; i++)
      r[i] = (float) (scale_ref * ref->dx[j][i]);
    err = MAX (err, nf_test_norm_err (r, got->dx[j], n));
    nf_free (r);
  }
  const float *rp[2] = { ref->dw, ref->db }, *gp[2] = { got->dw, got->db };
  size_t np[2] = { c->nw, c->nb };
  for (int k = 0; k < 2; k++) {
    if (!np[k])
      continue;
    float *r = nf_alloc_floats (np[k]);
    for (size_t i = 0; i < np[k]; i++)
      r[i] = (float) (scale_ref * rp[k][i]);
    err = MAX (err, nf_test_norm_err (r, gp[k], np[k]));
    nf_free (r);
  }
  return err;
}

static void
check_op (NfTestBe *ref, NfTestBe *gpu, NfOp op, const NfShape *in_s, const char *desc, float lo,
    float hi, gboolean alias_din)
{
  OpCase c = { .op = op, .alias_din = alias_din };
  GError *e = NULL;
  memcpy (c.in_s, in_s, sizeof (NfShape) * op.n_in);
  if (!nf_op_output_shape (&c.op, c.in_s, &c.out_s, &e)) {
    g_error_free (e);           /* a combination the op cannot take: not a case */
    return;
  }
  counts.cases++;
  for (int j = 0; j < op.n_in; j++)
    c.x[j] = nf_test_random (&rnd, nf_shape_numel (in_s[j]), lo, hi);
  c.dy = nf_test_random (&rnd, nf_shape_numel (c.out_s), -1.0f, 1.0f);
  float *w, *b;
  nf_test_random_params (&rnd, &op, &w, &c.nw, &b, &c.nb);
  c.op.weight = w;
  c.op.bias = b;

  char *why = NULL;
  Grads gr[1] = { 0 }, gg[2] = { 0 };
  gboolean ran = run_backward (ref, &c, 1, gr, &why) && run_backward (gpu, &c, 2, gg, &why);
  double err = ran ? grads_err (&c, &gr[0], &gg[0], 1.0) : INFINITY;
  double acc = ran ? grads_err (&c, &gr[0], &gg[1], 2.0) : INFINITY;
  gboolean ok = ran && err <= tol_op && acc <= tol_op;
  if (!ok)
    counts.failed++;
  printf ("%-4s %-48s n%d %2dx%-2d -> %2dx%2dx%-2d err %.2e, twice %.2e (tol %.0e)%s%s\n",
      ok ? "ok" : "FAIL", desc, in_s[0].n, in_s[0].h, in_s[0].w, c.out_s.c, c.out_s.h,
      c.out_s.w, err, acc, tol_op, why ? "  " : "", why ? why : "");
  g_free (why);
  grads_clear (&gr[0], op.n_in);
  grads_clear (&gg[0], op.n_in);
  grads_clear (&gg[1], op.n_in);
  for (int j = 0; j < op.n_in; j++)
    nf_free (c.x[j]);
  nf_free (c.dy);
  nf_free (w);
  nf_free (b);
}

static void
test_ops (NfTestBe *ref, NfTestBe *gpu)
{
  static const int sizes[] = { 1, 7, 13 };
  static const int chans[] = { 3, 11 };
  char d[160];
#define DESC(...) (g_snprintf (d, sizeof d, __VA_ARGS__), d)
  for (guint si = 0; si < G_N_ELEMENTS (sizes); si++)
    for (guint ci = 0; ci < G_N_ELEMENTS (chans); ci++) {
      int s = sizes[si], ch = chans[ci];
      NfShape x = { 2, ch, s, s + 2 };
      static const struct {
        int k, stride;
        NfPadMode pad;
        gboolean bias;
      } convs[] = {
        { 3, 1, NF_PAD_ZERO, TRUE }, { 3, 2, NF_PAD_REFLECT, TRUE },
        { 5, 1, NF_PAD_REFLECT, TRUE }, { 1, 1, NF_PAD_ZERO, TRUE },
        { 3, 2, NF_PAD_ZERO, TRUE }, { 3, 1, NF_PAD_REFLECT, FALSE },
        { 9, 1, NF_PAD_REFLECT, TRUE }, { 4, 2, NF_PAD_ZERO, TRUE },
      };
      static const int couts[] = { 4, 13 };
      for (guint i = 0; i < G_N_ELEMENTS (convs); i++)
        for (guint oi = 0; oi < G_N_ELEMENTS (couts); oi++) {
          if (convs[i].k == 9 && s != 13)
            continue;
          NfOp op = { .type = NF_OP_CONV2D, .name = "conv", .n_in = 1, .k = convs[i].k,
            .stride = convs[i].stride, .padding = convs[i].k / 2, .pad_mode = convs[i].pad,
            .cin = ch, .cout = couts[oi], .has_bias = convs[i].bias
          };
          check_op (ref, gpu, op, &x, DESC ("conv2d %d->%d k%d s%d %s p%d%s", ch, op.cout,
                  op.k, op.stride, op.pad_mode == NF_PAD_REFLECT ? "reflect" : "zero",
                  op.padding, op.has_bias ? "" : " nobias"), -1.0f, 1.0f, FALSE);
        }
      static const struct {
        int k, stride, padding, output_padding, cout;
        gboolean bias;
      } deconvs[] = {
        { 3, 2, 1, 1, 4, TRUE }, { 4, 2, 1, 0, 13, TRUE }, { 3, 1, 1, 0, 13, FALSE },
        { 1, 2, 0, 1, 4, TRUE }, { 5, 3, 1, 2, 6, TRUE },
      };
      for (guint i = 0; i < G_N_ELEMENTS (deconvs); i++) {
        NfOp op = { .type = NF_OP_CONV_TRANSPOSE2D, .name = "deconv", .n_in = 1,
          .k = deconvs[i].k, .stride = deconvs[i].stride, .padding = deconvs[i].padding,
          .output_padding = deconvs[i].output_padding, .cin = ch, .cout = deconvs[i].cout,
          .has_bias = deconvs[i].bias
        };
        check_op (ref, gpu, op, &x, DESC ("conv_transpose2d %d->%d k%d s%d p%d op%d%s", ch,
                op.cout, op.k, op.stride, op.padding, op.output_padding,
                op.has_bias ? "" : " nobias"), -1.0f, 1.0f, FALSE);
      }
      NfOp in = { .type = NF_OP_INSTANCE_NORM, .name = "in", .n_in = 1, .c = ch, .eps = 1e-5f,
        .affine = TRUE
      };
      /* an offset larger than the spread tests the shifted statistics */
      check_op (ref, gpu, in, &x, DESC ("instance_norm c%d affine", ch), 4.0f, 6.0f, FALSE);
      NfOp in_plain = { .type = NF_OP_INSTANCE_NORM, .name = "in", .n_in = 1, .c = ch,
        .eps = 1e-3f, .affine = FALSE
      };
      check_op (ref, gpu, in_plain, &x, DESC ("instance_norm c%d no affine eps 1e-3", ch),
          -1.0f, 1.0f, FALSE);
      NfOp relu = { .type = NF_OP_RELU, .n_in = 1 };
      check_op (ref, gpu, relu, &x, DESC ("relu c%d", ch), -1.0f, 1.0f, FALSE);
      NfOp add = { .type = NF_OP_ADD, .n_in = 2 };
      NfShape two[2] = { x, x };
      check_op (ref, gpu, add, two, DESC ("add c%d", ch), -1.0f, 1.0f, FALSE);
      check_op (ref, gpu, add, two, DESC ("add c%d, both gradients in one buffer", ch), -1.0f,
          1.0f, TRUE);
      NfOp cat = { .type = NF_OP_CONCAT, .n_in = 3 };
      NfShape three[3] = { x, { x.n, 2, x.h, x.w }, { x.n, 8, x.h, x.w } };
      check_op (ref, gpu, cat, three, DESC ("concat %d+2+8", ch), -1.0f, 1.0f, FALSE);
      for (int f = 2; f <= 3; f++) {
        NfOp up = { .type = NF_OP_UPSAMPLE_NEAREST, .n_in = 1, .factor = f };
        check_op (ref, gpu, up, &x, DESC ("upsample_nearest c%d x%d", ch, f), -1.0f, 1.0f,
            FALSE);
      }
      for (int r = 2; r <= 3; r++) {
        NfShape xps = { 2, r * r * (ch > 4 ? 4 : 1), s, s + 1 };
        NfOp ps = { .type = NF_OP_PIXEL_SHUFFLE, .n_in = 1, .factor = r };
        check_op (ref, gpu, ps, &xps, DESC ("pixel_shuffle c%d x%d", xps.c, r), -1.0f, 1.0f,
            FALSE);
      }
      NfOp th = { .type = NF_OP_TANH_SCALE, .n_in = 1, .scale = 150.0f, .offset = 127.5f };
      check_op (ref, gpu, th, &x, DESC ("tanh_scale c%d 150*tanh+127.5", ch), -3.0f, 3.0f,
          FALSE);
      NfOp cl = { .type = NF_OP_CLAMP, .n_in = 1, .min = -0.5f, .max = 0.5f };
      check_op (ref, gpu, cl, &x, DESC ("clamp c%d [-0.5, 0.5]", ch), -1.0f, 1.0f, FALSE);
      for (int t = 0; t < 2; t++)
        for (int k = 2; k <= 3; k++) {
          NfOp pool = { .type = t ? NF_OP_MAX_POOL2D : NF_OP_AVG_POOL2D, .n_in = 1, .k = k,
            .stride = 2
          };
          check_op (ref, gpu, pool, &x, DESC ("%s c%d k%d s2", t ? "max_pool2d" : "avg_pool2d",
                  ch, k), -1.0f, 1.0f, FALSE);
        }

      if (fp16)
        continue;               /* fused ReLU masks flip where half rounding crosses 0 */
      NfOp cr = { .type = NF_OP_CONV2D, .name = "conv", .n_in = 1, .k = 3, .stride = 1,
        .padding = 1, .pad_mode = NF_PAD_REFLECT, .cin = ch, .cout = 13, .has_bias = TRUE,
        .fuse_relu = TRUE
      };
      check_op (ref, gpu, cr, &x, DESC ("conv2d %d->13 k3 s1 reflect +relu", ch), -1.0f, 1.0f,
          FALSE);
      NfOp dr = { .type = NF_OP_CONV_TRANSPOSE2D, .name = "deconv", .n_in = 1, .k = 3,
        .stride = 2, .padding = 1, .output_padding = 1, .cin = ch, .cout = 4, .has_bias = TRUE,
        .fuse_relu = TRUE
      };
      check_op (ref, gpu, dr, &x, DESC ("conv_transpose2d %d->4 k3 s2 +relu", ch), -1.0f, 1.0f,
          FALSE);
      in.fuse_relu = TRUE;
      check_op (ref, gpu, in, &x, DESC ("instance_norm c%d affine +relu", ch), 4.0f, 6.0f,
          FALSE);
      add.fuse_relu = TRUE;
      check_op (ref, gpu, add, two, DESC ("add c%d +relu", ch), -1.0f, 1.0f, FALSE);
      NfShape xps = { 2, 4 * ch, s, s + 1 };
      NfOp psr = { .type = NF_OP_PIXEL_SHUFFLE, .n_in = 1, .factor = 2, .fuse_relu = TRUE };
      check_op (ref, gpu, psr, &xps, DESC ("pixel_shuffle c%d x2 +relu", xps.c), -1.0f, 1.0f,
          FALSE);
    }
#undef DESC
}

/* ---- whole networks through nf_engine_backward ------------------------------------------ */

typedef struct {
  NfTestBe *b;
  GHashTable *grads;            /* tensor name -> float* (host or device) */
} ParamCtx;

static void *
param_grad (const char *name, gpointer user_data)
{
  ParamCtx *c = user_data;
  return g_hash_table_lookup (c->grads, name);
}

/* The input gradient then every tensor's gradient (sorted names), concatenated; the
 * tensor boundaries in *offsets (n_names + 1 entries, owned by the caller). */
static float *
net_grads (NfTestBe *b, NfModel *m, NfShape s, const float *x, const float *r, GList *names,
    size_t *total, size_t *offsets, char **why)
{
  GError *e = NULL;
  NfEngineOptions opts = { .keep_all_values = TRUE, .no_fusion = TRUE };
  NfEngine *eng = nf_engine_new (m, b->be, &opts);
  ParamCtx ctx = { b, g_hash_table_new (g_str_hash, g_str_equal) };
  float *all = NULL;
  gboolean ok = nf_engine_plan (eng, s, &e);
  size_t off = nf_shape_numel (s);
  int t = 0;
  offsets[t++] = 0;
  for (GList *l = names; ok && l; l = l->next) {
    NfModelTensor *mt = g_hash_table_lookup (m->tensors, l->data);
    size_t n = nf_model_tensor_numel (mt);
    float *p = param_buf_new (b, n, &e);
    ok = p != NULL;
    if (ok)
      g_hash_table_insert (ctx.grads, l->data, p);
    offsets[t++] = off;
    off += n;
  }
  offsets[t] = off;
  *total = off;
  if (ok) {
    NfShape o = nf_engine_output_shape (eng);
    ok = b->iface->upload (b->be, nf_engine_input_buffer (eng), x, s, &e)
        && nf_engine_run (eng, &e) && nf_engine_zero_grads (eng, &e)
        && b->iface->upload (b->be, nf_engine_grad_buffer (eng, m->graph->output), r, o, &e)
        && nf_engine_backward (eng, param_grad, &ctx, &e);
  }
  if (ok) {
    all = nf_alloc_floats (off);
    ok = b->iface->download (b->be, all, nf_engine_grad_buffer (eng, m->graph->input), s, &e);
    t = 1;
    for (GList *l = names; ok && l; l = l->next, t++) {
      float *g = param_buf_read (b, g_hash_table_lookup (ctx.grads, l->data),
          offsets[t + 1] - offsets[t], &e);
      ok = g != NULL;
      if (ok)
        memcpy (all + offsets[t], g, (offsets[t + 1] - offsets[t]) * sizeof (float));
      nf_free (g);
    }
    if (ok && nf_cuda_is_backend (b->be))
      ok = nf_cuda_buffer_guard_ok (b->be, nf_engine_grad_buffer (eng, m->graph->input), &e);
  }
  if (!ok) {
    *why = g_strdup_printf ("%s: %s", b->iface->name, e ? e->message : "?");
    nf_free (all);
    all = NULL;
  }
  g_clear_error (&e);
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, ctx.grads);
  while (g_hash_table_iter_next (&it, NULL, &v))
    param_buf_free (b, v);
  g_hash_table_unref (ctx.grads);
  nf_engine_free (eng);
  return all;
}

static void
net_case (NfTestBe *ref, NfTestBe *gpu, NfArchSpec spec, const char *label, NfShape s, guint64 seed)
{
  GError *e = NULL;
  char *why = NULL;
  NfModel *m = nf_arch_new_model (&spec, seed, &e);
  counts.cases++;
  if (!m) {
    counts.failed++;
    printf ("FAIL net %s: %s\n", label, e->message);
    g_error_free (e);
    return;
  }
  /* fp16: the reference runs the weights the GPU runs */
  if (fp16 && !nf_test_model_round_to_half (m, &e)) {
    counts.failed++;
    printf ("FAIL net %s: %s\n", label, e->message);
    g_error_free (e);
    nf_model_free (m);
    return;
  }
  GList *names = g_list_sort (g_hash_table_get_keys (m->tensors), (GCompareFunc) strcmp);
  int n_names = g_list_length (names);
  const char **label_of = g_new0 (const char *, n_names + 1);  /* 0: the input */
  label_of[0] = "input";
  int t = 1;
  for (GList *l = names; l; l = l->next)
    label_of[t++] = l->data;
  size_t *off = g_new0 (size_t, n_names + 2);
  NfShape *shapes = g_new0 (NfShape, m->graph->n_values);
  NfShape o = { 0, 0, 0, 0 };
  if (nf_graph_infer_shapes (m->graph, s, shapes, &e))
    o = shapes[m->graph->output];
  else
    why = g_strdup_printf ("shapes: %s", e->message);
  g_clear_error (&e);
  g_free (shapes);
  float *x = nf_test_random (&rnd, nf_shape_numel (s), m->in_lo, m->in_hi);
  float *r = nf_test_random (&rnd, MAX (nf_shape_numel (o), 1), -1.0f, 1.0f);
  size_t nr = 0, ng = 0;
  float *gr = why ? NULL : net_grads (ref, m, s, x, r, names, &nr, off, &why);
  float *gg = gr ? net_grads (gpu, m, s, x, r, names, &ng, off, &why) : NULL;
  double worst = INFINITY;
  const char *worst_name = "?";
  if (gr && gg && nr == ng) {
    double global = nf_test_max_abs (gr, nr);
    worst = 0;
    for (t = 0; t <= n_names; t++) {
      size_t a = off[t], z = off[t + 1];
      double denom = MAX (nf_test_max_abs (gr + a, z - a), 1e-2 * global) + 1e-12;
      double err = nf_test_abs_err (gr + a, gg + a, z - a) / denom;
      if (err > worst || isnan (err)) {
        worst = isnan (err) ? INFINITY : err;
        worst_name = label_of[t];
      }
      if (!(err <= tol_net))
        printf ("     %s: %s error %.2e (max |ref| %.2e)\n", label, label_of[t], err,
            nf_test_max_abs (gr + a, z - a));
    }
  }
  gboolean ok = gr && gg && worst <= tol_net;
  if (!ok)
    counts.failed++;
  printf ("%-4s net %-22s n%d %3dx%-3d %2d tensors, %7zu gradients, worst %.2e (%s) "
      "(tol %.0e)%s%s\n", ok ? "ok" : "FAIL", label, s.n, s.h, s.w, n_names, nr, worst,
      worst_name, tol_net, why ? "  " : "", why ? why : "");
  g_free (why);
  g_free (off);
  g_free (label_of);
  g_list_free (names);
  nf_free (x);
  nf_free (r);
  nf_free (gr);
  nf_free (gg);
  nf_model_free (m);
}

static void
test_nets (NfTestBe *ref, NfTestBe *gpu)
{
  static const struct {
    const char *label;
    NfArchSpec spec;
    NfShape s;
  } nets[] = {
    {"style-full w8 r1", {"style-full", 0, 8, 1}, {2, 3, 16, 20}},
    {"style-slim w4 r1", {"style-slim", 0, 4, 1}, {2, 3, 12, 16}},
    {"sr-johnson x2 w6 r1", {"sr-johnson", 2, 6, 1}, {2, 3, 7, 9}},
    {"sr-johnson x4 w6 r1", {"sr-johnson", 4, 6, 1}, {1, 3, 5, 6}},
    {"sr-subpixel x2 w6 r1", {"sr-subpixel", 2, 6, 1}, {2, 3, 7, 9}},
    {"sr-subpixel x3 w10 r2", {"sr-subpixel", 3, 10, 2}, {1, 3, 9, 11}},
    {"sr-subpixel x4 w16 r1", {"sr-subpixel", 4, 16, 1}, {1, 3, 6, 7}},
    {"style-full", {"style-full", 0, 0, 0}, {1, 3, 32, 36}},
    {"style-slim", {"style-slim", 0, 0, 0}, {2, 3, 20, 24}},
    {"sr-subpixel x4", {"sr-subpixel", 4, 0, 0}, {1, 3, 11, 13}},
  };
  for (guint i = 0; i < G_N_ELEMENTS (nets); i++)
    net_case (ref, gpu, nets[i].spec, nets[i].label, nets[i].s, 300 + i);
}

/* ---- bad calls are errors ------------------------------------------------------------------ */

static void
test_errors (NfTestBe *gpu)
{
  GError *e = NULL;
  NfShape s = { 1, 4, 5, 5 }, t = { 1, 4, 6, 5 };
  void *a = gpu->iface->alloc (gpu->be, s, &e);
  void *y = gpu->iface->alloc (gpu->be, s, &e);
  void *bad = gpu->iface->alloc (gpu->be, t, &e);
  NfOp relu = { .type = NF_OP_RELU, .n_in = 1 };
  NfOpCall call = { .op = &relu, .in = { s }, .out = s };
  void *in[1] = { a }, *din[1] = { bad };
  gboolean r = gpu->iface->backward[NF_OP_RELU] (gpu->be, &call, in, y, y, din, NULL, NULL,
      &e);
  nf_test_expect (&counts, !r && e, "an input gradient of the wrong shape is an error", e);
  g_clear_error (&e);
  din[0] = a;
  r = gpu->iface->backward[NF_OP_RELU] (gpu->be, &call, in, y, bad, din, NULL, NULL, &e);
  nf_test_expect (&counts, !r && e, "an output gradient of the wrong shape is an error", e);
  g_clear_error (&e);
  NfOp conv = { .type = NF_OP_CONV2D, .n_in = 1, .cin = 4, .cout = 4, .k = 3, .stride = 1,
    .padding = 1
  };
  NfOpCall cc = { .op = &conv, .in = { s }, .out = s };
  r = gpu->iface->backward[NF_OP_CONV2D] (gpu->be, &cc, in, y, y, din, NULL, NULL, &e);
  nf_test_expect (&counts, !r && e, "a convolution backward without prepare is an error", e);
  g_clear_error (&e);
  gpu->iface->free (gpu->be, a);
  gpu->iface->free (gpu->be, y);
  gpu->iface->free (gpu->be, bad);
}

static void
run_backend (NfTestBe *ref, NfTestBe *gpu, gboolean fp16_backend, gint64 t0)
{
  fp16 = rnd.round_half = fp16_backend;
  tol_op = fp16 ? 3e-3 : 1e-5;
  tol_net = fp16 ? 5e-2 : 1e-4;
  printf ("== %s: backward ==\n", nf_cuda_backend_description (gpu->be));
  nf_rng_seed (&rnd.rng, 20170101 + fp16);
  test_ops (ref, gpu);
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
