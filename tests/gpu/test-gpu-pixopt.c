/* test-gpu-pixopt.c — the pixel optimiser (nf-pixopt.h) on the GPU against the CPU:
 * content reconstruction, style reconstruction and Gatys transfer, evaluated and
 * optimised on "cuda" (the device path: losses, gradients, preprocessing and TV on the
 * device) and on the CPU ("cpu" when it can train through the loss network, else
 * "cpu-ref").
 *
 * Loss networks: a seeded random VGG (nf_vgg_new_random: blocks of 2, 2, 3 convs, 16, 24
 * and 32 channels, no data needed) at 41x33 with a 37x29 style image, and the real VGG16
 * (conv1_1..conv3_3) at 96x72 with an 80x64 style image when the shared data has it
 * ($NF_SHARED_DATA, else ../shared/data next to the repository). Images are smooth
 * synthetic pictures; the optimised image starts from seeded noise.
 * Layers: content relu2_2; style relu1_2, relu2_2, relu3_3 (weights 1, 0.5, 2); transfer
 * both with content weight 1, style weight 10, TV weight 1.
 * Checked, per network and mode:
 *   one evaluation at the noise image, "cuda" vs CPU:
 *     every loss term (total, content, style, tv, each style layer) relative error <= 1e-5
 *     gradient max|g_cuda - g_cpu| / max|g_cpu| <= 1e-4
 *   the same for "cuda" with host losses (spec.host_losses: the CUDA backend through
 *     upload/download, the losses on the host), which isolates the loss kernels;
 *   that "cuda" really took the device path (nf_pixopt_on_device);
 *   20 L-BFGS iterations (clipped to 0..255 between rounds, as nf-optimize) from the same
 *     noise on both: final losses within 5e-2 relative, and each at least 2x lower
 *     than at the start; then at the CPU's result (small gradients) "cuda" vs CPU again
 *     with the one-evaluation tolerances (loss 1e-5, gradient 1e-4).
 *     Why 5e-2 and not 1e-3: L-BFGS on these non-convex objectives amplifies rounding.
 *     Measured between two CPU backends ("cpu" vs "cpu-ref", this test with "cuda"
 *     swapped for "cpu-ref") on the random VGG over noise seeds 1-5: one evaluation
 *     agrees to 2e-7 (loss) and 5e-7 (gradient), and at the optimised image still to
 *     2.3e-6 and 1.2e-5, but after 20 iterations the losses differ by up to 5.2e-4
 *     (content), 2.1e-2 (style) and 7.9e-3 (transfer). The path check is therefore the
 *     evaluation at the optimised image; the final-loss bar only catches a GPU path
 *     that optimises differently (a wrong gradient makes L-BFGS stall or diverge).
 *   "cuda-fp16", when it can train through the loss network: one evaluation with loss
 *     terms within 2e-2 and the gradient within 5e-2 normalised (first estimates, to be
 *     calibrated on the first GPU run; its dynamic loss scale is printed).
 * Exit: 0 pass, 1 a check failed, 77 no usable GPU (skip, with the reason).
 * Does not: time the 512x512 Gatys run (tests/gpu/run.sh runs nf-optimize for that), or
 * test the losses one by one (test-gpu-train-ops).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-backend.h"
#include "gpu-test-probe.h"
#include "nf-cuda.h"
#include "nf-error.h"
#include "nf-optim.h"
#include "nf-pixopt.h"
#include "nf-tensor.h"
#include "nf-vgg.h"

#ifndef NF_SOURCE_ROOT
#define NF_SOURCE_ROOT "."
#endif

#define TOL_LOSS 1e-5
#define TOL_GRAD 1e-4
#define TOL_LBFGS 5e-2
#define TOL_GRAD_OPT 1e-4
#define TOL_LOSS_FP16 2e-2
#define TOL_GRAD_FP16 5e-2
#define LBFGS_ITERS 20

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

typedef enum { MODE_CONTENT, MODE_STYLE, MODE_TRANSFER } Mode;
static const char *mode_names[] = { "content", "style", "transfer" };

static const NfLayerWeight style_layers[] = {
  {"relu1_2", 1.0}, {"relu2_2", 0.5}, {"relu3_3", 2.0},
};

/* A smooth synthetic picture (1, 3, h, w) in 0..255; phase tells pictures apart. */
static void
synthetic (float *rgb, int w, int h, float phase)
{
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        rgb[((size_t) c * h + y) * w + x] = 127.5f + 100.0f * sinf (0.4f * x * (c + 1)
            + 0.3f * y + phase) * cosf (0.25f * y - 0.1f * c * x + 0.5f * phase);
}

typedef struct {
  const char *name;
  NfVgg *vgg;
  int w, h, sw, sh;
  float *content, *style;       // (1, 3, h, w), (1, 3, sh, sw)
} Case;

static NfPixoptSpec
spec_for (const Case *c, Mode m, NfBackend *be)
{
  NfPixoptSpec s = {.vgg = c->vgg,.be = be,.width = c->w,.height = c->h };
  if (m != MODE_STYLE) {
    s.content_rgb = c->content;
    s.content_layer = "relu2_2";
    s.content_weight = 1.0;
  }
  if (m != MODE_CONTENT) {
    s.style_rgb = c->style;
    s.style_width = c->sw;
    s.style_height = c->sh;
    s.n_style_layers = G_N_ELEMENTS (style_layers);
    s.style_layers = style_layers;
    s.style_weight = m == MODE_TRANSFER ? 10.0 : 1.0;
    s.tv_weight = m == MODE_TRANSFER ? 1.0 : 0.0;
  }
  return s;
}

static double
rel (double a, double b)
{
  return fabs (a - b) / MAX (fabs (b), 1e-30);
}

/* Worst relative error over the loss terms of a against the reference r (terms that
 * are zero on both sides are equal; a non-finite term is infinitely wrong). */
static double
losses_err (const NfPixoptLosses *a, const NfPixoptLosses *r, int n_style)
{
  double pa[4 + NF_PIXOPT_MAX_LAYERS] = { a->total, a->content, a->style, a->tv };
  double pr[4 + NF_PIXOPT_MAX_LAYERS] = { r->total, r->content, r->style, r->tv };
  for (int i = 0; i < n_style; i++) {
    pa[4 + i] = a->style_layer[i];
    pr[4 + i] = r->style_layer[i];
  }
  double e = 0;
  for (int i = 0; i < 4 + n_style; i++) {
    if (!isfinite (pa[i]) || !isfinite (pr[i]))
      return INFINITY;
    e = MAX (e, rel (pa[i], pr[i]));
  }
  return e;
}

static double
grad_err (const float *a, const float *r, size_t n)
{
  double d = 0, m = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite (a[i]))
      return INFINITY;
    d = MAX (d, fabs ((double) a[i] - r[i]));
    m = MAX (m, fabs ((double) r[i]));
  }
  return d / MAX (m, 1e-30);
}

/* One evaluation of loss + gradient at rgb; FALSE (and a failure) on an error. */
static gboolean
evaluate (NfPixoptSpec *s, const float *rgb, float *grad, NfPixoptLosses *L,
    gboolean *on_device, double *seconds)
{
  GError *e = NULL;
  NfPixopt *p = nf_pixopt_new (s, &e);
  gboolean ok = p != NULL;
  if (ok) {
    gint64 t0 = g_get_monotonic_time ();
    ok = nf_pixopt_eval (p, rgb, grad, L, &e);
    if (seconds)
      *seconds = (g_get_monotonic_time () - t0) / 1e6;
    if (on_device)
      *on_device = nf_pixopt_on_device (p);
  }
  CHECK (ok, "%s on %s: %s", s->style_rgb ? "style/transfer" : "content",
      s->be->iface->name, e ? e->message : "?");
  g_clear_error (&e);
  nf_pixopt_free (p);
  return ok;
}

/* 20 L-BFGS iterations from rgb0 into rgb; the losses before and after. */
static gboolean
optimise (NfPixoptSpec *s, const float *rgb0, float *rgb, NfPixoptLosses *l0,
    NfPixoptLosses *l1, double *seconds)
{
  GError *e = NULL;
  size_t n = (size_t) 3 * s->width * s->height;
  memcpy (rgb, rgb0, n * sizeof (float));
  NfPixopt *p = nf_pixopt_new (s, &e);
  NfLbfgsParams lp;
  nf_lbfgs_params_init (&lp);
  lp.max_iters = LBFGS_ITERS;
  lp.bounds = NF_BOUNDS_CLIP_ROUNDS;
  NfLbfgsResult r;
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = p && nf_pixopt_eval (p, rgb, NULL, l0, &e)
      && nf_pixopt_run (p, rgb, &lp, NULL, NULL, &r, &e);
  for (size_t i = 0; ok && i < n; i++)
    rgb[i] = CLAMP (rgb[i], 0.0f, 255.0f);
  ok = ok && nf_pixopt_eval (p, rgb, NULL, l1, &e);
  *seconds = (g_get_monotonic_time () - t0) / 1e6;
  CHECK (ok, "L-BFGS on %s: %s", s->be->iface->name, e ? e->message : "?");
  if (ok)
    printf ("    %-9s %d iterations, %d evaluations (%s), %.2f s\n", s->be->iface->name,
        r.iters, r.evals, r.why, *seconds);
  g_clear_error (&e);
  nf_pixopt_free (p);
  return ok;
}

static void
run_case (const Case *c, NfBackend *cpu, NfBackend *cuda, NfBackend *fp16)
{
  size_t n = (size_t) 3 * c->w * c->h;
  float *rgb = nf_alloc_floats (n);
  float *g_ref = nf_alloc_floats (n), *g_gpu = nf_alloc_floats (n);
  float *opt_ref = nf_alloc_floats (n), *opt_gpu = nf_alloc_floats (n);
  nf_pixopt_noise (rgb, (size_t) c->w * c->h, 5, 20.0f);
  printf ("== %s: %dx%d (style %dx%d) ==\n", c->name, c->w, c->h, c->sw, c->sh);
  for (Mode m = MODE_CONTENT; m <= MODE_TRANSFER; m++) {
    const char *mn = mode_names[m];
    int ns = m == MODE_CONTENT ? 0 : G_N_ELEMENTS (style_layers);
    NfPixoptSpec s_ref = spec_for (c, m, cpu), s_gpu = spec_for (c, m, cuda);
    NfPixoptLosses L_ref, L_gpu;
    gboolean dev = FALSE;
    double t_gpu = 0;
    if (!evaluate (&s_ref, rgb, g_ref, &L_ref, NULL, NULL))
      continue;
    if (evaluate (&s_gpu, rgb, g_gpu, &L_gpu, &dev, &t_gpu)) {
      double le = losses_err (&L_gpu, &L_ref, ns), ge = grad_err (g_gpu, g_ref, n);
      printf ("  %-8s cuda vs %s: loss %.6e vs %.6e, worst term error %.2e, gradient "
          "error %.2e (%.4f s with planning)\n", mn, cpu->iface->name, L_gpu.total,
          L_ref.total, le, ge, t_gpu);
      CHECK (dev, "%s %s: cuda did not take the device path (a build without the GPU "
          "training kernels?)", c->name, mn);
      CHECK (le <= TOL_LOSS, "%s %s: loss terms differ by %.2e (tolerance %.0e)", c->name, mn,
          le, TOL_LOSS);
      CHECK (ge <= TOL_GRAD, "%s %s: gradient differs by %.2e (tolerance %.0e)", c->name, mn,
          ge, TOL_GRAD);
    }
    NfPixoptSpec s_host = s_gpu;
    s_host.host_losses = TRUE;
    if (evaluate (&s_host, rgb, g_gpu, &L_gpu, &dev, NULL)) {
      double le = losses_err (&L_gpu, &L_ref, ns), ge = grad_err (g_gpu, g_ref, n);
      printf ("  %-8s cuda (host losses) vs %s: worst term error %.2e, gradient error "
          "%.2e\n", mn, cpu->iface->name, le, ge);
      CHECK (!dev, "%s %s: host_losses still took the device path", c->name, mn);
      CHECK (le <= TOL_LOSS && ge <= TOL_GRAD, "%s %s, host losses: loss %.2e, gradient "
          "%.2e", c->name, mn, le, ge);
    }
    if (fp16) {
      NfPixoptSpec s16 = spec_for (c, m, fp16);
      if (evaluate (&s16, rgb, g_gpu, &L_gpu, NULL, NULL)) {
        double le = losses_err (&L_gpu, &L_ref, ns), ge = grad_err (g_gpu, g_ref, n);
        printf ("  %-8s cuda-fp16 vs %s: worst term error %.2e, gradient error %.2e\n", mn,
            cpu->iface->name, le, ge);
        CHECK (le <= TOL_LOSS_FP16 && ge <= TOL_GRAD_FP16, "%s %s, cuda-fp16: loss %.2e "
            "(tolerance %.0e), gradient %.2e (tolerance %.0e)", c->name, mn, le,
            TOL_LOSS_FP16, ge, TOL_GRAD_FP16);
      }
    }

    NfPixoptLosses a0, a1, b0, b1;
    double ta, tb;
    printf ("  %-8s %d L-BFGS iterations:\n", mn, LBFGS_ITERS);
    if (optimise (&s_ref, rgb, opt_ref, &a0, &a1, &ta)
        && optimise (&s_gpu, rgb, opt_gpu, &b0, &b1, &tb)) {
      double r = rel (b1.total, a1.total);
      printf ("    loss %.6e -> %.6e (%s) vs %.6e -> %.6e (cuda): relative difference "
          "%.2e\n", a0.total, a1.total, cpu->iface->name, b0.total, b1.total, r);
      CHECK (r <= TOL_LBFGS, "%s %s: after %d iterations the losses differ by %.2e "
          "(tolerance %.0e)", c->name, mn, LBFGS_ITERS, r, TOL_LBFGS);
      CHECK (a1.total * 2 <= a0.total && b1.total * 2 <= b0.total,
          "%s %s: the loss fell less than 2x", c->name, mn);
    }
    /* the same objective where the CPU's optimisation ended (small gradients) */
    if (evaluate (&s_ref, opt_ref, g_ref, &L_ref, NULL, NULL)
        && evaluate (&s_gpu, opt_ref, g_gpu, &L_gpu, NULL, NULL)) {
      double le = losses_err (&L_gpu, &L_ref, ns), ge = grad_err (g_gpu, g_ref, n);
      printf ("    at the %s's result: worst term error %.2e, gradient error %.2e\n",
          cpu->iface->name, le, ge);
      CHECK (le <= TOL_LOSS && ge <= TOL_GRAD_OPT, "%s %s at the optimised image: loss "
          "%.2e (tolerance %.0e), gradient %.2e (tolerance %.0e)", c->name, mn, le, TOL_LOSS,
          ge, TOL_GRAD_OPT);
    }
  }
  nf_free (rgb);
  nf_free (g_ref);
  nf_free (g_gpu);
  nf_free (opt_ref);
  nf_free (opt_gpu);
}

static void
case_images (Case *c, int w, int h, int sw, int sh)
{
  c->w = w, c->h = h, c->sw = sw, c->sh = sh;
  c->content = nf_alloc_floats ((size_t) 3 * w * h);
  c->style = nf_alloc_floats ((size_t) 3 * sw * sh);
  synthetic (c->content, w, h, 0.0f);
  synthetic (c->style, sw, sh, 1.7f);
}

static void
case_free (Case *c)
{
  nf_vgg_free (c->vgg);
  nf_free (c->content);
  nf_free (c->style);
}

/* A backend that can train through vgg, or NULL (printing why). */
static NfBackend *
trainable (const char *name, const NfVgg *vgg, gboolean required)
{
  GError *e = NULL;
  const NfBackendIface *bi = nf_backend_lookup (name);
  if (!bi || !nf_pixopt_backend_can_train (bi, vgg, &e)) {
    if (required)
      CHECK (FALSE, "%s cannot optimise pixels: %s", name, e ? e->message : "not built");
    else
      printf ("(%s left out: %s)\n", name, e ? e->message : "not built");
    g_clear_error (&e);
    return NULL;
  }
  NfBackend *be = nf_backend_new (name, &e);
  CHECK (be, "%s: %s", name, e ? e->message : "?");
  g_clear_error (&e);
  return be;
}

int
main (void)
{
  GError *e = NULL;
  int devices = nf_gpu_test_probe ();
  if (devices == 0)
    return 77;

  Case cases[2];
  int n_cases = 0;
  const char *layers[] = { "relu1_2", "relu2_2", "relu3_3", NULL };
  NfVggOptions o = {.pool = NF_VGG_POOL_MAX,.layers = layers };
  const int convs[] = { 2, 2, 3 }, widths[] = { 16, 24, 32 };
  Case *c = &cases[n_cases];
  c->name = "random VGG";
  c->vgg = nf_vgg_new_random (3, convs, widths, &o, 23, &e);
  CHECK (c->vgg, "random VGG: %s", e ? e->message : "?");
  g_clear_error (&e);
  if (c->vgg) {
    case_images (c, 41, 33, 37, 29);
    n_cases++;
  }
  const char *shared = g_getenv ("NF_SHARED_DATA");
  char *path = shared && *shared
      ? g_build_filename (shared, "lossnets", "vgg16-conv1_1-conv3_3.safetensors", NULL)
      : g_build_filename (NF_SOURCE_ROOT, "..", "shared", "data", "lossnets",
      "vgg16-conv1_1-conv3_3.safetensors", NULL);
  if (g_file_test (path, G_FILE_TEST_EXISTS)) {
    c = &cases[n_cases];
    c->name = "VGG16";
    c->vgg = nf_vgg_load (path, &o, &e);
    CHECK (c->vgg, "%s: %s", path, e ? e->message : "?");
    g_clear_error (&e);
    if (c->vgg) {
      case_images (c, 96, 72, 80, 64);
      n_cases++;
    }
  } else {
    printf ("(the real VGG16 left out: %s not found)\n", path);
  }
  g_free (path);

  for (int i = 0; i < n_cases; i++) {
    c = &cases[i];
    NfBackend *cpu = trainable ("cpu", c->vgg, FALSE);
    if (!cpu)
      cpu = trainable ("cpu-ref", c->vgg, TRUE);
    NfBackend *cuda = trainable ("cuda", c->vgg, TRUE);
    NfBackend *fp16 = trainable ("cuda-fp16", c->vgg, FALSE);
    if (cpu && cuda)
      run_case (c, cpu, cuda, fp16);
    nf_backend_free (cpu);
    nf_backend_free (cuda);
    nf_backend_free (fp16);
    case_free (c);
  }
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
