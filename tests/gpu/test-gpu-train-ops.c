/* test-gpu-train-ops.c — the GPU training arithmetic (training/cuda/nf-cuda-train.h)
 * against its host twins, function by function, on the "cuda" backend.
 *
 *   losses      nf_cuda_loss_mse / _gram / _tv vs nf_loss_content / nf_loss_gram_ref /
 *               nf_loss_tv, nf_cuda_gram vs nf_gram_ref: values (relative error) and
 *               gradients (normalised error max|gpu - ref| / max|ref|) within 1e-5, on
 *               odd shapes (Gram at C = 64, 128 and H x W = 17 x 13, 1 x 1, 33 x 9),
 *               gradients ACCUMULATED (twice) into random buffers as large as the
 *               gradient (so an error in the added part shows), NULL grad
 *               (value only) and NULL loss (gradient only);
 *   elements    preprocessing (caffe-bgr and torch) and its backward vs nf-vgg.c (the
 *               backward must overwrite a NaN-filled buffer), affine (in place too),
 *               all_finite with a NaN, +Inf and -Inf planted;
 *   Adam        3 steps vs nf_adam_step (plain and with weight decay, and grad_scale
 *               1/1024 on gradients scaled by 1024), expected bit-identical, 1e-6 bar;
 *   mixed       fp32 NCHW -> fp16 NHWC with a scale vs nf_float_to_half bit for bit,
 *               and back (exact round trip on fp16-representable values), overflow to
 *               Inf caught by all_finite;
 *   group       nf_cuda_group_allreduce_mean over every GPU present (one rank: the
 *               identity, bit for bit; two or more: the mean, one thread per rank);
 *   errors      NULL pointers, bad shapes, a non-permutation, a CPU backend, a group
 *               larger than the machine: GErrors, no crash.
 * Every device buffer carries 16 sentinel floats after its end, checked after each call.
 * Exit: 0 pass, 1 a check failed, 77 no usable GPU (skip, with the reason).
 * Does not: run networks (test-gpu-backward, test-gpu-train-step), the step's device
 * paths (deferred loss values, batch-norm refold, weights updated on the device:
 * test-gpu-train-device) or time anything.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gpu-test-probe.h"
#include "gpu-train-harness.h"
#include "nf-cuda.h"
#include "nf-losses.h"
#include "nf-optim.h"
#include "nf-vgg.h"

#define TOL 1e-5

/* Random values in +-max|g|: the gradient buffer's prior contents, as large as what
 * the loss adds, so that the accumulation check also sees errors in the added part. */
static float *
grad_start (const float *g, size_t n)
{
  float m = 0.0f;
  for (size_t i = 0; i < n; i++)
    m = fmaxf (m, fabsf (g[i]));
  float *x = nf_alloc_floats (n);
  nf_rng_fill_uniform (&rng, x, n, -m, m);
  return x;
}

/* ---- losses ---------------------------------------------------------------------------- */

static void
test_mse (size_t n)
{
  GError *e = NULL;
  char w[128];
  float *f = host_random (n, -2, 3), *p = host_random (n, -1, 1);
  double weight = 0.7;
  float *gz = g_new0 (float, n);
  nf_loss_content (f, p, n, weight, gz);
  float *g0 = grad_start (gz, n), *gref = g_memdup2 (g0, n * sizeof (float));
  g_free (gz);
  float *df = dev_up (f, n), *dp = dev_up (p, n), *dg = dev_up (g0, n);

  double lref = nf_loss_content (f, p, n, weight, gref);
  nf_loss_content (f, p, n, weight, gref);                  /* accumulated twice */
  double l1 = 0, l2 = 0, l3 = 0;
  must (nf_cuda_loss_mse (ct, df, dp, n, weight, dg, &l1, &e), e, "nf_cuda_loss_mse");
  must (nf_cuda_loss_mse (ct, df, dp, n, weight, dg, NULL, &e), e, "nf_cuda_loss_mse (NULL loss)");
  must (nf_cuda_loss_mse (ct, df, dp, n, weight, NULL, &l2, &e), e, "nf_cuda_loss_mse (NULL grad)");
  must (nf_cuda_loss_mse (ct, df, dp, n, weight, NULL, &l3, &e), e, "nf_cuda_loss_mse (again)");
  float *g = dev_down (dg, n, "mse grad");
  snprintf (w, sizeof w, "mse n=%zu value", n);
  report (w, rel_err (l1, lref), TOL);
  snprintf (w, sizeof w, "mse n=%zu value, NULL grad", n);
  report (w, rel_err (l2, lref), TOL);
  snprintf (w, sizeof w, "mse n=%zu value repeatable", n);
  report (w, rel_err (l3, l2), 0.0);
  snprintf (w, sizeof w, "mse n=%zu grad accumulated x2 (one with NULL loss)", n);
  report (w, norm_err (g, gref, n), TOL);
  g_free (g);
  nf_free (f);
  nf_free (p);
  nf_free (g0);
  g_free (gref);
  dev_free (df);
  dev_free (dp);
  dev_free (dg);
}

static void
test_gram (NfShape s)
{
  GError *e = NULL;
  char w[160];
  size_t n = nf_shape_numel (s), cc = (size_t) s.c * s.c;
  float *f = host_random (n, 0, 2);                           // (N, C, H, W) relu-like
  /* the target: the Gram of an unrelated image, so G - T does not cancel */
  NfShape one = { 1, s.c, s.h, s.w };
  float *other = host_random (nf_shape_numel (one), 0, 1);
  float *t = nf_alloc_floats (cc);                            // (C, C)
  nf_gram_ref (other, one, t);
  float *gram_ref = nf_alloc_floats ((size_t) s.n * cc);      // (N, C, C)
  nf_gram_ref (f, s, gram_ref);
  double weight = 3.0;
  float *gz = g_new0 (float, n);
  nf_loss_gram_ref (f, s, t, weight, gz);
  float *g0 = grad_start (gz, n), *gref = g_memdup2 (g0, n * sizeof (float));
  g_free (gz);
  double lref = nf_loss_gram_ref (f, s, t, weight, gref);
  nf_loss_gram_ref (f, s, t, weight, gref);                   /* accumulated twice */

  float *df = dev_up (f, n), *dt = dev_up (t, cc), *dg = dev_up (g0, n);
  float *zeros = g_new0 (float, (size_t) s.n * cc);
  float *dgram = dev_up (zeros, (size_t) s.n * cc);
  g_free (zeros);

  must (nf_cuda_gram (ct, df, s, dgram, &e), e, "nf_cuda_gram");
  float *gram = dev_down (dgram, (size_t) s.n * cc, "gram");
  snprintf (w, sizeof w, "gram (%d,%d,%d,%d) vs nf_gram_ref", s.n, s.c, s.h, s.w);
  report (w, norm_err (gram, gram_ref, (size_t) s.n * cc), TOL);

  double l1 = 0, l2 = 0;
  must (nf_cuda_loss_gram (ct, df, s, dt, weight, dg, &l1, &e), e, "nf_cuda_loss_gram");
  must (nf_cuda_loss_gram (ct, df, s, dt, weight, dg, NULL, &e), e,
      "nf_cuda_loss_gram (NULL loss)");
  must (nf_cuda_loss_gram (ct, df, s, dt, weight, NULL, &l2, &e), e,
      "nf_cuda_loss_gram (NULL grad)");
  float *g = dev_down (dg, n, "gram loss grad");
  snprintf (w, sizeof w, "gram loss (%d,%d,%d,%d) value", s.n, s.c, s.h, s.w);
  report (w, rel_err (l1, lref), TOL);
  snprintf (w, sizeof w, "gram loss (%d,%d,%d,%d) value, NULL grad", s.n, s.c, s.h, s.w);
  report (w, rel_err (l2, lref), TOL);
  snprintf (w, sizeof w, "gram loss (%d,%d,%d,%d) grad accumulated x2", s.n, s.c, s.h, s.w);
  report (w, norm_err (g, gref, n), TOL);
  /* the target must not have been touched */
  float *t_after = dev_down (dt, cc, "gram target");
  report ("gram loss leaves the target unchanged", norm_err (t_after, t, cc), 0.0);

  g_free (t_after);
  g_free (g);
  g_free (gram);
  nf_free (f);
  nf_free (other);
  nf_free (t);
  nf_free (gram_ref);
  nf_free (g0);
  g_free (gref);
  dev_free (df);
  dev_free (dt);
  dev_free (dg);
  dev_free (dgram);
}

static void
test_tv (NfShape s)
{
  GError *e = NULL;
  char w[128];
  size_t n = nf_shape_numel (s);
  float *x = host_random (n, 0, 255);
  double weight = 1.5e-2;
  float *gz = g_new0 (float, n);
  nf_loss_tv (x, s, weight, gz);
  float *g0 = grad_start (gz, n), *gref = g_memdup2 (g0, n * sizeof (float));
  g_free (gz);
  double lref = nf_loss_tv (x, s, weight, gref);
  nf_loss_tv (x, s, weight, gref);
  float *dx = dev_up (x, n), *dg = dev_up (g0, n);
  double l1 = 0, l2 = 0;
  must (nf_cuda_loss_tv (ct, dx, s, weight, dg, &l1, &e), e, "nf_cuda_loss_tv");
  must (nf_cuda_loss_tv (ct, dx, s, weight, dg, NULL, &e), e, "nf_cuda_loss_tv (NULL loss)");
  must (nf_cuda_loss_tv (ct, dx, s, weight, NULL, &l2, &e), e, "nf_cuda_loss_tv (NULL grad)");
  float *g = dev_down (dg, n, "tv grad");
  snprintf (w, sizeof w, "tv (%d,%d,%d,%d) value", s.n, s.c, s.h, s.w);
  report (w, lref == 0.0 ? fabs (l1) : rel_err (l1, lref), TOL);
  snprintf (w, sizeof w, "tv (%d,%d,%d,%d) value, NULL grad", s.n, s.c, s.h, s.w);
  report (w, lref == 0.0 ? fabs (l2) : rel_err (l2, lref), TOL);
  snprintf (w, sizeof w, "tv (%d,%d,%d,%d) grad accumulated x2", s.n, s.c, s.h, s.w);
  report (w, norm_err (g, gref, n), TOL);
  g_free (g);
  nf_free (x);
  nf_free (g0);
  g_free (gref);
  dev_free (dx);
  dev_free (dg);
}

/* ---- element-wise ------------------------------------------------------------------------ */

static void
test_preprocess (const char *name, const int perm[3], const float scale[3],
    const float shift[3], int nb, size_t hw)
{
  GError *e = NULL;
  char w[128];
  NfVgg v;
  memset (&v, 0, sizeof v);
  memcpy (v.perm, perm, sizeof v.perm);
  memcpy (v.scale, scale, sizeof v.scale);
  memcpy (v.shift, shift, sizeof v.shift);
  size_t n = (size_t) nb * 3 * hw;
  float *rgb = host_random (n, 0, 255), *xref = nf_alloc_floats (n);
  nf_vgg_preprocess (&v, rgb, xref, nb, hw);
  float *dy = host_random (n, -1, 1), *dref = nf_alloc_floats (n);
  nf_vgg_preprocess_backward (&v, dy, dref, nb, hw);
  float *nans = nf_alloc_floats (n);
  for (size_t i = 0; i < n; i++)
    nans[i] = NAN;

  float *drgb_in = dev_up (rgb, n), *dx = dev_up (nans, n), *ddy = dev_up (dy, n),
      *ddr = dev_up (nans, n);
  must (nf_cuda_vgg_preprocess (ct, perm, scale, shift, drgb_in, dx, nb, hw, &e), e,
      "nf_cuda_vgg_preprocess");
  must (nf_cuda_vgg_preprocess_backward (ct, perm, scale, ddy, ddr, nb, hw, &e), e,
      "nf_cuda_vgg_preprocess_backward");
  float *x = dev_down (dx, n, "preprocess"), *d = dev_down (ddr, n, "preprocess backward");
  snprintf (w, sizeof w, "preprocess %s n=%d hw=%zu", name, nb, hw);
  report (w, norm_err (x, xref, n), 1e-6);
  snprintf (w, sizeof w, "preprocess backward %s (overwrites NaNs)", name);
  report (w, norm_err (d, dref, n), 1e-6);
  g_free (x);
  g_free (d);
  nf_free (rgb);
  nf_free (xref);
  nf_free (dy);
  nf_free (dref);
  nf_free (nans);
  dev_free (drgb_in);
  dev_free (dx);
  dev_free (ddy);
  dev_free (ddr);
}

static void
test_affine (void)
{
  GError *e = NULL;
  size_t n = 70001;
  float a = 127.5f, b = 127.5f;
  float *x = host_random (n, -1, 1), *ref = nf_alloc_floats (n);
  for (size_t i = 0; i < n; i++)
    ref[i] = a * x[i] + b;
  float *dx = dev_up (x, n), *dy = dev_up (x, n);
  must (nf_cuda_affine (ct, dx, dy, n, a, b, &e), e, "nf_cuda_affine");
  must (nf_cuda_affine (ct, dx, dx, n, a, b, &e), e, "nf_cuda_affine (in place)");
  float *y = dev_down (dy, n, "affine"), *yi = dev_down (dx, n, "affine in place");
  report ("affine y = a x + b", norm_err (y, ref, n), 1e-6);
  report ("affine in place", norm_err (yi, ref, n), 1e-6);
  g_free (y);
  g_free (yi);
  nf_free (x);
  nf_free (ref);
  dev_free (dx);
  dev_free (dy);
}

static void
test_all_finite (void)
{
  GError *e = NULL;
  size_t n = 100003;
  float *x = host_random (n, -1e30f, 1e30f);
  struct { const char *name; size_t at; float v; gboolean expect; } cases[] = {
    { "all_finite: finite data", 0, 0.0f, TRUE },
    { "all_finite: NaN in the middle", 77777, NAN, FALSE },
    { "all_finite: +Inf at the end", n - 1, INFINITY, FALSE },
    { "all_finite: -Inf at the start", 0, -INFINITY, FALSE },
  };
  for (guint k = 0; k < G_N_ELEMENTS (cases); k++) {
    float keep = x[cases[k].at];
    if (!cases[k].expect)
      x[cases[k].at] = cases[k].v;
    float *d = dev_up (x, n);
    gboolean fin = !cases[k].expect;
    must (nf_cuda_all_finite (ct, d, n, &fin, &e), e, "nf_cuda_all_finite");
    check (cases[k].name, fin == cases[k].expect, fin ? "finite" : "not finite");
    x[cases[k].at] = keep;
    dev_free (d);
  }
  nf_free (x);
}

/* ---- Adam ----------------------------------------------------------------------------------- */

static void
test_adam (size_t n, float wd, float loss_scale)
{
  GError *e = NULL;
  char w[128];
  NfParams *p = nf_params_new ();
  int64_t dims[1] = { (int64_t) n };
  nf_params_add (p, "w", 1, dims);
  must (nf_params_alloc (p, &e), e, "nf_params_alloc");
  nf_rng_fill_uniform (&rng, p->params, n, -1, 1);
  NfAdam a;
  nf_adam_init (&a, 1e-3f);
  a.weight_decay = wd;
  float *zeros = g_new0 (float, n);
  float *dw = dev_up (p->params, n), *dm = dev_up (zeros, n), *dv = dev_up (zeros, n);
  float *scaled = nf_alloc_floats (n);
  for (int step = 0; step < 3; step++) {
    for (size_t i = 0; i < n; i++)
      p->grads[i] = 0.1f * nf_rng_normal (&rng);
    for (size_t i = 0; i < n; i++)
      scaled[i] = p->grads[i] * loss_scale;                   // exact: a power of two
    float *dg = dev_up (scaled, n);
    nf_adam_step (&a, p);
    must (nf_cuda_adam_step (ct, dw, dg, dm, dv, n, a.lr, a.beta1, a.beta2, a.eps,
            a.weight_decay, a.t, 1.0f / loss_scale, &e), e, "nf_cuda_adam_step");
    dev_free (dg);
  }
  float *gw = dev_down (dw, n, "adam params"), *gm = dev_down (dm, n, "adam m"),
      *gv = dev_down (dv, n, "adam v");
  size_t same = 0;
  for (size_t i = 0; i < n; i++)
    same += gw[i] == p->params[i];
  snprintf (w, sizeof w, "adam 3 steps n=%zu wd=%g scale=%g params", n, wd, loss_scale);
  report (w, norm_err (gw, p->params, n), 1e-6);
  snprintf (w, sizeof w, "adam 3 steps n=%zu wd=%g scale=%g m", n, wd, loss_scale);
  report (w, norm_err (gm, p->m, n), 1e-6);
  snprintf (w, sizeof w, "adam 3 steps n=%zu wd=%g scale=%g v", n, wd, loss_scale);
  report (w, norm_err (gv, p->v, n), 1e-6);
  printf ("     (%zu of %zu parameters bit-identical to nf_adam_step)\n", same, n);
  g_free (gw);
  g_free (gm);
  g_free (gv);
  g_free (zeros);
  nf_free (scaled);
  nf_params_free (p);
  dev_free (dw);
  dev_free (dm);
  dev_free (dv);
}

/* ---- mixed precision ---------------------------------------------------------------------------- */

static void
test_mixed (NfShape s, float scale)
{
  GError *e = NULL;
  char w[128];
  size_t n = nf_shape_numel (s);
  /* values k / 8 with |k| <= 512: exact in fp16 after scaling by a power of two up to
   * 512 (|k| * scale / 8 <= 32768 < 65504, 10 significant bits) */
  float *x = nf_alloc_floats (n);
  for (size_t i = 0; i < n; i++)
    x[i] = (float) ((int) (nf_rng_u32 (&rng) % 1025) - 512) / 8.0f;
  float *r = host_random (n, -3, 3);                          // general values
  size_t hbytes = (n * 2 + 3) / 4;                            // halves in floats
  float *dx = dev_up (x, n), *dr = dev_up (r, n);
  float *zeros = g_new0 (float, hbytes + 1);
  float *dh = dev_up (zeros, hbytes), *dhr = dev_up (zeros, hbytes);
  g_free (zeros);
  float *dback = dev_up (r, n);

  must (nf_cuda_f32_nchw_to_f16_nhwc (ct, dr, dhr, s, scale, &e), e, "to f16 (general)");
  must (nf_cuda_f32_nchw_to_f16_nhwc (ct, dx, dh, s, scale, &e), e, "to f16");
  must (nf_cuda_f16_nhwc_to_f32_nchw (ct, dh, dback, s, 1.0f / scale, &e), e, "to f32");
  float *hr = dev_down (dhr, hbytes, "f16 general");
  float *back = dev_down (dback, n, "f32 round trip");
  const uint16_t *h = (const uint16_t *) hr;
  size_t bad = 0;
  for (int b = 0; b < s.n; b++)
    for (int c = 0; c < s.c; c++)
      for (int y = 0; y < s.h; y++)
        for (int xx = 0; xx < s.w; xx++) {
          size_t nchw = (((size_t) b * s.c + c) * s.h + y) * s.w + xx;
          size_t nhwc = (((size_t) b * s.h + y) * s.w + xx) * s.c + c;
          bad += h[nhwc] != nf_float_to_half (r[nchw] * scale);
        }
  snprintf (w, sizeof w, "f32 NCHW -> f16 NHWC x%g (%d,%d,%d,%d) bits", scale, s.n, s.c,
      s.h, s.w);
  char *d = g_strdup_printf ("%zu of %zu differ from nf_float_to_half", bad, n);
  check (w, bad == 0, d);
  g_free (d);
  snprintf (w, sizeof w, "f16 NHWC -> f32 NCHW x1/%g round trip (exact values)", scale);
  report (w, norm_err (back, x, n), 0.0);

  /* overflow: 70000 is beyond fp16's 65504, so the scaled copy holds Inf and the
   * copy back is not finite */
  float big = 70000.0f / scale;
  float *dbig = dev_up (&big, 1), *dbh = dev_up (&big, 1), *dbb = dev_up (&big, 1);
  NfShape one = { 1, 1, 1, 1 };
  gboolean fin = TRUE;
  must (nf_cuda_f32_nchw_to_f16_nhwc (ct, dbig, dbh, one, scale, &e)
      && nf_cuda_f16_nhwc_to_f32_nchw (ct, dbh, dbb, one, 1.0f, &e)
      && nf_cuda_all_finite (ct, dbb, 1, &fin, &e), e, "overflow copy");
  check ("f16 overflow becomes Inf (all_finite FALSE)", !fin, NULL);

  g_free (hr);
  g_free (back);
  nf_free (x);
  nf_free (r);
  dev_free (dx);
  dev_free (dr);
  dev_free (dh);
  dev_free (dhr);
  dev_free (dback);
  dev_free (dbig);
  dev_free (dbh);
  dev_free (dbb);
}

/* ---- several GPUs ---------------------------------------------------------------------------------- */

typedef struct {
  NfCudaGroup *g;
  int rank;
  NfBackend *be;
  NfCudaTrain *ct;
  float *d;
  size_t n;
  gboolean ok;
  GError *error;
} Rank;

static gpointer
rank_allreduce (gpointer p)
{
  Rank *r = p;
  r->ok = nf_cuda_group_allreduce_mean (r->g, r->rank, r->ct, r->d, r->n, &r->error)
      && nf_gpu_sync (r->be, &r->error);
  return NULL;
}

static void
test_group (int devices)
{
  GError *e = NULL;
  size_t n = 100003;
#ifndef NF_HAVE_NCCL
  if (devices > 1) {
    NfCudaGroup *g2 = nf_cuda_group_new (2, &e);
    must_fail ("group of 2 without NCCL is an error", g2 != NULL, &e);
    nf_cuda_group_free (g2);
    devices = 1;
  }
#endif
  int k = devices;
  NfCudaGroup *g = nf_cuda_group_new (k, &e);
  must (g != NULL, e, "nf_cuda_group_new");
  check ("group size", nf_cuda_group_size (g) == k, NULL);
  Rank *ranks = g_new0 (Rank, k);
  float **host = g_new0 (float *, k);
  float *mean = g_new0 (float, n);
  for (int r = 0; r < k; r++) {
    host[r] = host_random (n, -1, 1);
    for (size_t i = 0; i < n; i++)
      mean[i] += host[r][i] / k;
    ranks[r] = (Rank) { .g = g, .rank = r, .n = n };
    if (r == 0) {
      ranks[r].be = be;
      ranks[r].ct = ct;
    } else {
      NfCudaConfig cfg = { .precision = NF_CUDA_FP32, .device = r, .heuristic_algos = TRUE };
      must ((ranks[r].be = nf_cuda_backend_new (&cfg, &e)) != NULL, e, "backend on rank");
      must ((ranks[r].ct = nf_cuda_train_new (ranks[r].be, &e)) != NULL, e, "train on rank");
    }
    must ((ranks[r].d = nf_gpu_alloc_floats (ranks[r].be, n, &e)) != NULL
        && nf_gpu_copy (ranks[r].be, ranks[r].d, host[r], n * sizeof (float), &e)
        && nf_gpu_sync (ranks[r].be, &e), e, "rank buffer");
  }
  if (k == 1) {
    rank_allreduce (&ranks[0]);
  } else {
    GThread **th = g_new0 (GThread *, k);
    for (int r = 0; r < k; r++)
      th[r] = g_thread_new ("rank", rank_allreduce, &ranks[r]);
    for (int r = 0; r < k; r++)
      g_thread_join (th[r]);
    g_free (th);
  }
  for (int r = 0; r < k; r++) {
    char w[128];
    snprintf (w, sizeof w, "allreduce mean, %d rank%s, rank %d", k, k == 1 ? "" : "s", r);
    if (!ranks[r].ok) {
      check (w, FALSE, ranks[r].error ? ranks[r].error->message : "failed");
      g_clear_error (&ranks[r].error);
      continue;
    }
    float *got = g_new (float, n);
    must (nf_gpu_copy (ranks[r].be, got, ranks[r].d, n * sizeof (float), &e)
        && nf_gpu_sync (ranks[r].be, &e), e, "rank download");
    /* one rank: the identity, bit for bit; more: the sum's order is NCCL's */
    report (w, norm_err (got, k == 1 ? host[0] : mean, n), k == 1 ? 0.0 : 1e-6);
    g_free (got);
  }
  GError *e2 = NULL;
  gboolean ok = nf_cuda_group_allreduce_mean (g, k, ct, ranks[0].d, n, &e2);
  must_fail ("allreduce with a rank outside the group", ok, &e2);
  for (int r = 0; r < k; r++) {
    nf_gpu_free (ranks[r].be, ranks[r].d);
    nf_free (host[r]);
    if (r > 0) {
      nf_cuda_train_free (ranks[r].ct);
      nf_backend_free (ranks[r].be);
    }
  }
  nf_cuda_group_free (g);
  g_free (ranks);
  g_free (host);
  g_free (mean);

  NfCudaGroup *too = nf_cuda_group_new (devices + 1, &e);
  must_fail ("group larger than the machine", too != NULL, &e);
  nf_cuda_group_free (too);
}

/* ---- argument errors ---------------------------------------------------------------------------------- */

static void
test_errors (void)
{
  GError *e = NULL;
  float one = 1.0f;
  float *d = dev_up (&one, 1);
  double l;
  NfShape bad = { 1, 0, 3, 3 }, s = { 1, 1, 1, 1 };
  must_fail ("mse with NULL f", nf_cuda_loss_mse (ct, NULL, d, 1, 1, d, &l, &e), &e);
  must_fail ("mse with no elements", nf_cuda_loss_mse (ct, d, d, 0, 1, d, &l, &e), &e);
  must_fail ("gram with C = 0", nf_cuda_gram (ct, d, bad, d, &e), &e);
  must_fail ("gram loss with NULL target", nf_cuda_loss_gram (ct, d, s, NULL, 1, d, &l, &e),
      &e);
  must_fail ("tv with C = 0", nf_cuda_loss_tv (ct, d, bad, 1, d, &l, &e), &e);
  int perm[3] = { 0, 0, 2 };
  float sc[3] = { 1, 1, 1 }, sh[3] = { 0, 0, 0 };
  must_fail ("preprocess with a non-permutation",
      nf_cuda_vgg_preprocess (ct, perm, sc, sh, d, d, 1, 1, &e), &e);
  must_fail ("adam with step 0",
      nf_cuda_adam_step (ct, d, d, d, d, 1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 0, 1, &e), &e);
  must_fail ("all_finite with NULL data", nf_cuda_all_finite (ct, NULL, 1, NULL, &e), &e);
  NfBackend *cpu = nf_backend_new ("cpu-ref", &e);
  must (cpu != NULL, e, "cpu-ref backend");
  NfCudaTrain *bad_ct = nf_cuda_train_new (cpu, &e);
  must_fail ("training state on a CPU backend", bad_ct != NULL, &e);
  nf_cuda_train_free (bad_ct);
  nf_backend_free (cpu);
  float *h = dev_down (d, 1, "errors");
  check ("failed calls left the buffer alone", h[0] == 1.0f, NULL);
  g_free (h);
  dev_free (d);
}

int
main (void)
{
  GError *e = NULL;
  int devices = nf_gpu_test_probe ();
  if (devices == 0)
    return 77;
  /* a GPU is there: everything from here on must work (failures, not skips) */
  NfCudaConfig cfg = { .precision = NF_CUDA_FP32, .device = 0, .heuristic_algos = TRUE };
  must ((be = nf_cuda_backend_new (&cfg, &e)) != NULL, e, "nf_cuda_backend_new");
  must ((ct = nf_cuda_train_new (be, &e)) != NULL, e, "nf_cuda_train_new");
  check ("nf_cuda_train_backend", nf_cuda_train_backend (ct) == be, NULL);
  nf_rng_seed (&rng, 20240607);

  size_t mse_n[] = { 1, 7, 133, 100003, 1u << 21 };
  for (guint i = 0; i < G_N_ELEMENTS (mse_n); i++)
    test_mse (mse_n[i]);

  NfShape grams[] = {
    { 1, 64, 17, 13 }, { 2, 128, 17, 13 }, { 3, 7, 1, 1 }, { 2, 3, 33, 9 }, { 1, 1, 5, 5 },
    { 2, 64, 64, 48 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (grams); i++)
    test_gram (grams[i]);

  NfShape tvs[] = { { 2, 3, 17, 13 }, { 1, 1, 1, 7 }, { 1, 2, 5, 1 }, { 3, 4, 33, 65 },
    { 1, 1, 1, 1 } };
  for (guint i = 0; i < G_N_ELEMENTS (tvs); i++)
    test_tv (tvs[i]);

  static const int caffe_perm[3] = { 2, 1, 0 }, torch_perm[3] = { 0, 1, 2 };
  static const float caffe_scale[3] = { 1, 1, 1 },
      caffe_shift[3] = { -103.939f, -116.779f, -123.68f };
  float torch_scale[3], torch_shift[3];
  static const float mean[3] = { 0.485f, 0.456f, 0.406f }, sd[3] = { 0.229f, 0.224f, 0.225f };
  for (int c = 0; c < 3; c++) {
    torch_scale[c] = 1.0f / (255.0f * sd[c]);
    torch_shift[c] = -mean[c] / sd[c];
  }
  test_preprocess ("caffe-bgr", caffe_perm, caffe_scale, caffe_shift, 2, 17 * 13);
  test_preprocess ("torch", torch_perm, torch_scale, torch_shift, 3, 33 * 7);
  test_preprocess ("caffe-bgr", caffe_perm, caffe_scale, caffe_shift, 1, 1);
  test_affine ();
  test_all_finite ();

  test_adam (100003, 0.0f, 1.0f);
  test_adam (4099, 0.01f, 1.0f);
  test_adam (100003, 0.0f, 1024.0f);

  NfShape mixed[] = { { 2, 5, 7, 3 }, { 1, 64, 17, 13 }, { 1, 3, 1, 1 } };
  for (guint i = 0; i < G_N_ELEMENTS (mixed); i++)
    test_mixed (mixed[i], i == 1 ? 512.0f : 8.0f);

  test_group (devices);
  test_errors ();

  nf_cuda_train_free (ct);
  nf_backend_free (be);
  printf ("\n%d checks, %d failed\n", n_cases, n_failed);
  return n_failed ? 1 : 0;
}
