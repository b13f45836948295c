/* test-train-losses.c — the trainer's losses, preprocessing and optimisers.
 *
 * Gradients: central finite differences (steps h and h/2, loss in double) at sampled
 * elements of small random tensors with odd sizes, compared with the analytic
 * gradient as max|a - n| / max|n| (normalised error) for content, Gram (reference and
 * fast), TV and the VGG preprocessing (caffe-bgr and torch). Fast vs reference: Gram
 * matrices and Gram-loss gradients at a realistic size (64 x 37x41), max error
 * relative to the largest entry. Optimisers: L-BFGS on Rosenbrock's function in 2-D and
 * 10-D must reach (1, ..., 1) to 1e-6; clipping rounds must end on the box; Adam must
 * converge on a quadratic over two named views of one flat buffer.
 * Does not: test the loss network (test-train-vgg.c).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-error.h"
#include "nf-losses.h"
#include "nf-optim.h"
#include "nf-vgg.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

typedef double (*LossFn) (gpointer ctx);

/* Normalised error of grad against central differences of f at up to max_samples
 * elements of p (spread evenly). */
static double
fd_error (LossFn f, gpointer ctx, float *p, size_t n, const float *grad, double h,
    int max_samples)
{
  double max_diff = 0.0, max_ref = 0.0;
  size_t step = n > (size_t) max_samples ? n / max_samples : 1;
  for (size_t i = 0; i < n; i += step) {
    float keep = p[i];
    double d[2];
    for (int k = 0; k < 2; k++) {
      double hh = k ? h / 2 : h;
      p[i] = keep + (float) hh;
      double lp = f (ctx);
      p[i] = keep - (float) hh;
      double lm = f (ctx);
      /* the actual float step, not the intended one */
      d[k] = (lp - lm) / ((double) (keep + (float) hh) - (double) (keep - (float) hh));
    }
    p[i] = keep;
    /* Richardson extrapolation of the two central differences */
    double num = (4.0 * d[1] - d[0]) / 3.0;
    max_diff = MAX (max_diff, fabs (num - grad[i]));
    max_ref = MAX (max_ref, fabs (num));
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

static void
fill (NfRng *rng, float *x, size_t n, float lo, float hi)
{
  nf_rng_fill_uniform (rng, x, n, lo, hi);
}

/* ---- content ---------------------------------------------------------------------- */

typedef struct {
  float *f, *p;
  size_t n;
  NfShape s;
  float *target;
  const NfVgg *vgg;
  float *r;
  float *tmp;
  gboolean fast;
} Ctx;

static double
content_loss (gpointer c)
{
  Ctx *x = c;
  return nf_loss_content (x->f, x->p, x->n, 1.0, NULL);
}

static void
test_content (NfRng *rng)
{
  NfShape s = { 2, 5, 7, 9 };
  size_t n = nf_shape_numel (s);
  Ctx c = { nf_alloc_floats (n), nf_alloc_floats (n), n, s };
  fill (rng, c.f, n, -2, 3);
  fill (rng, c.p, n, -2, 3);
  float *g = nf_alloc_floats (n);
  double w = 0.7;
  nf_loss_content (c.f, c.p, n, w, g);
  for (size_t i = 0; i < n; i++)
    g[i] /= (float) w;
  double err = fd_error (content_loss, &c, c.f, n, g, 1e-2, 200);
  printf ("content loss (2,5,7,9): gradient vs finite differences %.2e (threshold 1e-3)\n",
      err);
  CHECK (err < 1e-3, "content gradient error %.2e", err);
  nf_free (c.f);
  nf_free (c.p);
  nf_free (g);
}

/* ---- pixel loss with a chroma weight ------------------------------------------------ */

static double chroma_w;

static double
chroma_loss (gpointer c)
{
  Ctx *x = c;
  return nf_loss_pixel_chroma (x->f, x->p, x->s, chroma_w, 1.0, NULL);
}

/* weight 1: nf_loss_content exactly (up to rounding); weight 0: the mean squared BT.601
 * luma difference over the unit luma vector, 3 values per pixel; the gradient against
 * finite differences at 0.25 */
static void
test_pixel_chroma (NfRng *rng)
{
  NfShape s = { 2, 3, 5, 7 };
  size_t n = nf_shape_numel (s), hw = 35;
  Ctx c = { nf_alloc_floats (n), nf_alloc_floats (n), n, s };
  fill (rng, c.f, n, 0, 255);
  fill (rng, c.p, n, 0, 255);
  double plain = nf_loss_content (c.f, c.p, n, 1.0, NULL);
  double one = nf_loss_pixel_chroma (c.f, c.p, s, 1.0, 1.0, NULL);
  double luma = 0, len2 = 0.299 * 0.299 + 0.587 * 0.587 + 0.114 * 0.114;
  for (int b = 0; b < 2; b++)
    for (size_t i = 0; i < hw; i++) {
      const float *f = c.f + b * 3 * hw + i, *p = c.p + b * 3 * hw + i;
      double y = 0.299 * (f[0] - p[0]) + 0.587 * (f[hw] - p[hw]) + 0.114 * (f[2 * hw]
          - p[2 * hw]);
      luma += y * y / len2;
    }
  luma /= (double) n;
  double zero = nf_loss_pixel_chroma (c.f, c.p, s, 0.0, 1.0, NULL);
  CHECK (fabs (one - plain) < 1e-9 * plain && fabs (zero - luma) < 1e-6 * luma,
      "chroma weight 1: %.9g vs MSE %.9g; 0: %.9g vs luma %.9g", one, plain, zero, luma);
  float *g = nf_alloc_floats (n);
  memset (g, 0, n * sizeof (float));
  chroma_w = 0.25;
  double w = 0.5;
  nf_loss_pixel_chroma (c.f, c.p, s, chroma_w, w, g);
  for (size_t i = 0; i < n; i++)
    g[i] /= (float) w;
  double err = fd_error (chroma_loss, &c, c.f, n, g, 1e-1, 200);
  printf ("pixel loss, chroma weight 0.25: gradient vs finite differences %.2e (threshold "
      "1e-3); weight 1 = MSE, 0 = luma part\n", err);
  CHECK (err < 1e-3, "chroma-weighted pixel gradient error %.2e", err);
  nf_free (c.f);
  nf_free (c.p);
  nf_free (g);
}

/* ---- Gram ------------------------------------------------------------------------- */

static double
gram_loss (gpointer c)
{
  Ctx *x = c;
  if (!x->fast)
    return nf_loss_gram_ref (x->f, x->s, x->target, 1.0, NULL);
  double l = 0;
  nf_loss_gram (x->f, x->s, x->target, 1.0, NULL, &l, NULL);
  return l;
}

static void
test_gram (NfRng *rng)
{
  GError *e = NULL;
  /* finite differences, reference and fast */
  NfShape s = { 2, 5, 7, 3 };
  size_t n = nf_shape_numel (s);
  Ctx c = { nf_alloc_floats (n), NULL, n, s };
  c.target = nf_alloc_floats (s.c * s.c);
  fill (rng, c.f, n, 0, 3);
  /* a target that is a Gram matrix of other features, as in training */
  float *other = nf_alloc_floats (n / 2);
  fill (rng, other, n / 2, 0, 3);
  nf_gram_ref (other, (NfShape) { 1, s.c, s.h, s.w }, c.target);
  for (int fast = 0; fast < 2; fast++) {
    c.fast = fast;
    float *g = nf_alloc_floats (n);
    double w = 1.3, l;
    if (fast) {
      gboolean ok = nf_loss_gram (c.f, s, c.target, w, g, &l, &e);
      CHECK (ok, "nf_loss_gram: %s", e ? e->message : "?");
      g_clear_error (&e);
    } else {
      l = nf_loss_gram_ref (c.f, s, c.target, w, g);
    }
    for (size_t i = 0; i < n; i++)
      g[i] /= (float) w;
    double err = fd_error (gram_loss, &c, c.f, n, g, 1e-2, 210);
    printf ("gram loss %s (2,5,7,3): loss %.4f, gradient vs finite differences %.2e "
        "(threshold 1e-3)\n", fast ? "fast" : "ref ", l, err);
    CHECK (err < 1e-3, "gram %s gradient error %.2e", fast ? "fast" : "ref", err);
    nf_free (g);
  }
  nf_free (c.f);
  nf_free (c.target);
  nf_free (other);

  /* fast vs reference at a realistic size (relu1_2 of a small crop) */
  NfShape b = { 1, 64, 37, 41 };
  size_t nb = nf_shape_numel (b);
  float *f = nf_alloc_floats (nb), *t = nf_alloc_floats (64 * 64);
  float *g1 = nf_alloc_floats (64 * 64), *g2 = nf_alloc_floats (64 * 64);
  fill (rng, f, nb, 0, 50);
  nf_gram_ref (f, b, g1);
  gboolean ok = nf_gram (f, b, g2, &e);
  CHECK (ok, "nf_gram: %s", e ? e->message : "?");
  g_clear_error (&e);
  double md = 0, mr = 0;
  for (int i = 0; i < 64 * 64; i++) {
    md = MAX (md, fabs ((double) g1[i] - g2[i]));
    mr = MAX (mr, fabs ((double) g1[i]));
  }
  printf ("gram fast vs ref (1,64,37,41): max error %.2e of max %.3e = %.2e (threshold "
      "1e-5)\n", md, mr, md / mr);
  CHECK (md / mr < 1e-5, "gram fast vs ref %.2e", md / mr);
  for (int i = 0; i < 64 * 64; i++)
    t[i] = g1[i] * (i % 3 ? 0.8f : 1.1f);
  float *d1 = nf_alloc_floats (nb), *d2 = nf_alloc_floats (nb);
  double l1 = nf_loss_gram_ref (f, b, t, 2.0, d1), l2 = 0;
  ok = nf_loss_gram (f, b, t, 2.0, d2, &l2, &e);
  CHECK (ok, "nf_loss_gram: %s", e ? e->message : "?");
  g_clear_error (&e);
  md = mr = 0;
  for (size_t i = 0; i < nb; i++) {
    md = MAX (md, fabs ((double) d1[i] - d2[i]));
    mr = MAX (mr, fabs ((double) d1[i]));
  }
  printf ("gram loss fast vs ref (1,64,37,41): loss %.6e vs %.6e (rel %.1e), gradient max "
      "error %.2e (thresholds 1e-5, 1e-4)\n", l2, l1, fabs (l2 - l1) / l1, md / mr);
  CHECK (fabs (l2 - l1) / l1 < 1e-5, "gram loss fast vs ref %.2e", fabs (l2 - l1) / l1);
  CHECK (md / mr < 1e-4, "gram grad fast vs ref %.2e", md / mr);
  nf_free (f);
  nf_free (t);
  nf_free (g1);
  nf_free (g2);
  nf_free (d1);
  nf_free (d2);
}

/* ---- total variation -------------------------------------------------------------- */

static double
tv_loss (gpointer c)
{
  Ctx *x = c;
  return nf_loss_tv (x->f, x->s, 1.0, NULL);
}

static void
test_tv (NfRng *rng)
{
  NfShape shapes[] = { {1, 3, 7, 5}, {2, 1, 1, 9}, {1, 2, 6, 1} };
  for (guint k = 0; k < G_N_ELEMENTS (shapes); k++) {
    NfShape s = shapes[k];
    size_t n = nf_shape_numel (s);
    Ctx c = { nf_alloc_floats (n), NULL, n, s };
    fill (rng, c.f, n, 0, 255);
    float *g = nf_alloc_floats (n);
    nf_loss_tv (c.f, s, 0.5, g);
    for (size_t i = 0; i < n; i++)
      g[i] *= 2.0f;
    double err = fd_error (tv_loss, &c, c.f, n, g, 0.5, 200);
    printf ("tv loss (%d,%d,%d,%d): gradient vs finite differences %.2e (threshold 1e-3)\n",
        s.n, s.c, s.h, s.w, err);
    CHECK (err < 1e-3, "tv gradient error %.2e", err);
    nf_free (c.f);
    nf_free (g);
  }
}

/* ---- preprocessing ---------------------------------------------------------------- */

static double
pre_loss (gpointer c)
{
  Ctx *x = c;
  nf_vgg_preprocess (x->vgg, x->f, x->tmp, x->s.n, (size_t) x->s.h * x->s.w);
  double l = 0;
  for (size_t i = 0; i < x->n; i++)
    l += (double) x->r[i] * x->tmp[i] + 0.01 * (double) x->tmp[i] * x->tmp[i];
  return l;
}

static void
test_preprocess (NfRng *rng)
{
  GError *e = NULL;
  const int convs[] = { 1 }, widths[] = { 4 };
  for (int torch = 0; torch < 2; torch++) {
    NfVggOptions o = { .preprocess = torch ? NF_VGG_PREPROCESS_TORCH
          : NF_VGG_PREPROCESS_CAFFE_BGR };
    NfVgg *v = nf_vgg_new_random (1, convs, widths, &o, 3, &e);
    CHECK (v, "random vgg: %s", e ? e->message : "?");
    if (!v) {
      g_clear_error (&e);
      continue;
    }
    NfShape s = { 2, 3, 5, 7 };
    size_t n = nf_shape_numel (s), hw = (size_t) s.h * s.w;
    Ctx c = { nf_alloc_floats (n), NULL, n, s };
    c.vgg = v;
    c.r = nf_alloc_floats (n);
    c.tmp = nf_alloc_floats (n);
    fill (rng, c.f, n, 0, 255);
    fill (rng, c.r, n, -1, 1);
    /* dL/dx = r + 0.02 x */
    float *x = nf_alloc_floats (n), *dx = nf_alloc_floats (n), *g = nf_alloc_floats (n);
    nf_vgg_preprocess (v, c.f, x, s.n, hw);
    for (size_t i = 0; i < n; i++)
      dx[i] = c.r[i] + 0.02f * x[i];
    nf_vgg_preprocess_backward (v, dx, g, s.n, hw);
    double err = fd_error (pre_loss, &c, c.f, n, g, 0.5, 210);
    /* round trip, and the channel order */
    float *back = nf_alloc_floats (n);
    nf_vgg_deprocess (v, x, back, s.n, hw);
    double rt = 0;
    for (size_t i = 0; i < n; i++)
      rt = MAX (rt, fabs ((double) back[i] - c.f[i]));
    /* caffe: network channel 0 is blue (image channel 2) minus 103.939 */
    double expect0 = torch ? (c.f[0] / 255.0 - 0.485) / 0.229 : c.f[2 * hw] - 103.939;
    printf ("preprocess %s: gradient vs finite differences %.2e (threshold 1e-3), round trip "
        "%.1e (threshold 1e-3), x[0] %.4f expected %.4f\n", torch ? "torch    " : "caffe-bgr",
        err, rt, x[0], expect0);
    CHECK (err < 1e-3, "preprocess gradient error %.2e", err);
    CHECK (rt < 1e-3, "round trip %.2e", rt);
    CHECK (fabs (x[0] - expect0) < 1e-3, "channel mapping: %f vs %f", x[0], expect0);
    nf_free (c.f);
    nf_free (c.r);
    nf_free (c.tmp);
    nf_free (x);
    nf_free (dx);
    nf_free (g);
    nf_free (back);
    nf_vgg_free (v);
  }
}

/* ---- optimisers ------------------------------------------------------------------- */

static gboolean
rosenbrock (gpointer user, const double *x, double *g, size_t n, double *fx, GError **error)
{
  double f = 0;
  memset (g, 0, n * sizeof (double));
  for (size_t i = 0; i + 1 < n; i++) {
    double a = x[i + 1] - x[i] * x[i], b = 1 - x[i];
    f += 100 * a * a + b * b;
    g[i] += -400 * a * x[i] - 2 * b;
    g[i + 1] += 200 * a;
  }
  *fx = f;
  return TRUE;
}

static void
test_lbfgs (void)
{
  for (int dim = 2; dim <= 10; dim += 8) {
    double x[10];
    for (int i = 0; i < dim; i++)
      x[i] = i % 2 ? 1.0 : -1.2;
    NfLbfgsParams p;
    nf_lbfgs_params_init (&p);
    p.max_iters = 2000;
    p.epsilon = 1e-12;
    NfLbfgsResult r;
    GError *e = NULL;
    gboolean ok = nf_lbfgs_minimize (x, dim, &p, rosenbrock, NULL, NULL, &r, &e);
    CHECK (ok, "lbfgs: %s", e ? e->message : "?");
    g_clear_error (&e);
    double err = 0;
    for (int i = 0; i < dim; i++)
      err = MAX (err, fabs (x[i] - 1.0));
    printf ("L-BFGS Rosenbrock %d-D: max |x - 1| = %.2e (threshold 1e-6), f = %.2e, "
        "%d iterations, %d evaluations, %s\n", dim, err, r.fx, r.iters, r.evals, r.why);
    CHECK (err < 1e-6, "rosenbrock %d-D error %.2e", dim, err);
  }
}

static gboolean
quad_outside (gpointer user, const double *x, double *g, size_t n, double *fx, GError **error)
{
  /* minimum at (-5, 3, 300, 100): two coordinates outside 0..255 */
  static const double t[4] = { -5, 3, 300, 100 };
  double f = 0;
  for (size_t i = 0; i < n; i++) {
    f += (i + 1) * (x[i] - t[i]) * (x[i] - t[i]);
    g[i] = 2 * (i + 1) * (x[i] - t[i]);
  }
  *fx = f;
  return TRUE;
}

static void
test_lbfgs_bounds (void)
{
  double x[4] = { 128, 128, 128, 128 };
  NfLbfgsParams p;
  nf_lbfgs_params_init (&p);
  p.bounds = NF_BOUNDS_CLIP_ROUNDS;
  p.round_iters = 5;
  p.max_iters = 100;
  NfLbfgsResult r;
  gboolean ok = nf_lbfgs_minimize (x, 4, &p, quad_outside, NULL, NULL, &r, NULL);
  double err = fabs (x[0] - 0) + fabs (x[1] - 3) + fabs (x[2] - 255) + fabs (x[3] - 100);
  printf ("L-BFGS clipped to 0..255: x = (%.4f, %.4f, %.4f, %.4f), expected (0, 3, 255, "
      "100), error %.1e (threshold 1e-4), %d iterations\n", x[0], x[1], x[2], x[3], err,
      r.iters);
  CHECK (ok && err < 1e-4, "bounded quadratic error %.2e", err);
}

static void
test_adam (NfRng *rng)
{
  NfParams *p = nf_params_new ();
  int64_t d1[2] = { 3, 5 }, d2[1] = { 7 };
  nf_params_add (p, "a.weight", 2, d1);
  nf_params_add (p, "a.bias", 1, d2);
  GError *e = NULL;
  gboolean ok = nf_params_alloc (p, &e);
  CHECK (ok, "alloc: %s", e ? e->message : "?");
  float *w = nf_params_data (p, "a.weight"), *b = nf_params_data (p, "a.bias");
  CHECK (w && b && nf_params_find (p, "a.bias")->offset % 16 == 0
      && nf_params_data (p, "nope") == NULL, "views");
  float target[22], scale[22];
  fill (rng, target, 22, -2, 2);
  fill (rng, scale, 22, 0.1f, 10);
  fill (rng, w, 15, -3, 3);
  fill (rng, b, 7, -3, 3);
  NfAdam adam;
  nf_adam_init (&adam, 0.05f);
  double f = 0;
  for (int step = 0; step < 3000; step++) {
    nf_params_zero_grads (p);
    float *gw = nf_params_grad (p, "a.weight"), *gb = nf_params_grad (p, "a.bias");
    f = 0;
    for (int i = 0; i < 22; i++) {
      float *x = i < 15 ? &w[i] : &b[i - 15], *g = i < 15 ? &gw[i] : &gb[i - 15];
      float d = *x - target[i];
      f += scale[i] * d * d;
      *g = 2 * scale[i] * d;
    }
    if (step == 2000)
      adam.lr = 0.005f;         /* anneal, as the training tools do */
    nf_adam_step (&adam, p);
  }
  double err = 0;
  for (int i = 0; i < 22; i++)
    err = MAX (err, fabs ((i < 15 ? w[i] : b[i - 15]) - target[i]));
  printf ("Adam on a quadratic (22 parameters in 2 views): max |x - x*| = %.2e (threshold "
      "1e-3), f = %.2e after %d steps\n", err, f, adam.t);
  CHECK (err < 1e-3, "adam error %.2e", err);
  nf_params_free (p);
}

int
main (void)
{
  NfRng rng;
  nf_rng_seed (&rng, 20240521);
  test_content (&rng);
  test_pixel_chroma (&rng);
  test_gram (&rng);
  test_tv (&rng);
  test_preprocess (&rng);
  test_lbfgs ();
  test_lbfgs_bounds ();
  test_adam (&rng);
  if (failures)
    printf ("%d check(s) failed\n", failures);
  else
    printf ("all checks passed\n");
  return failures ? 1 : 0;
}
