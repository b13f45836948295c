/* test-luma-core.c — the luma core of a luma-only SR model (nf_model_luma_core), which
 * the elements run on the Y plane of I420/NV12 frames.
 *
 * Checks:
 *   - sr-light-y at x2, x3, x4 (seeded weights) and the shipped sr-light-x2: a core
 *     exists, takes (1, 1, H, W) and gives (1, 1, sH, sW); on a random RGB image its
 *     output on the image's BT.601 luma equals the luma of the full model's output
 *     wherever the full model clamped nothing (|diff| < 1e-5, cpu-ref), and on cpu
 *     (and cpu-bf16 where native) it agrees with cpu-ref;
 *   - models of other forms have no core and no error: sr-light (RGB), sr-subpixel,
 *     style-rt; nor an sr-light-y whose y_to_rgb weights are not the luma copy or whose
 *     rgb_to_y weights are not BT.601's luma.
 * Does not: check the element's Y-plane path (test-gst-elements) or quality.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-luma-core.h"
#include "nf-model.h"
#include "nf-tensor.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

/* model (x) on backend into a new buffer (*os: its shape); NULL on an error. */
static float *
run_on (const char *backend, NfModel *m, const float *x, NfShape s, NfShape *os)
{
  GError *e = NULL;
  NfBackend *be = nf_backend_new (backend, &e);
  NfEngine *eng = be ? nf_engine_new (m, be, NULL) : NULL;
  float *y = NULL;
  if (eng && nf_engine_plan (eng, s, &e)) {
    *os = nf_engine_output_shape (eng);
    y = nf_alloc_floats (nf_shape_numel (*os));
    if (!nf_engine_run_host (eng, x, s, y, &e))
      g_clear_pointer (&y, nf_free);
  }
  if (!y && !g_error_matches (e, NF_ERROR, NF_ERROR_UNSUPPORTED))
    CHECK (FALSE, "%s: %s", backend, e ? e->message : "no engine");
  g_clear_error (&e);
  nf_engine_free (eng);
  nf_backend_free (be);
  return y;
}

static void
check_core (NfModel *m, const char *what)
{
  GError *e = NULL;
  NfModel *core = nf_model_luma_core (m, &e);
  CHECK (core, "%s: no luma core (%s)", what, e ? e->message : "not recognised");
  g_clear_error (&e);
  if (!core)
    return;
  int s = m->scale, h = 23, w = 31;
  NfShape rs = { 1, 3, h, w }, ys = { 1, 1, h, w }, ros, yos;
  float *x = nf_alloc_floats (nf_shape_numel (rs)), *xy = nf_alloc_floats (h * w);
  NfRng rng;
  nf_rng_seed (&rng, 5 + s);
  nf_rng_fill_uniform (&rng, x, nf_shape_numel (rs), 0.1f, 0.9f);
  for (int i = 0; i < h * w; i++)
    xy[i] = 0.299f * x[i] + 0.587f * x[h * w + i] + 0.114f * x[2 * h * w + i];
  float *full = run_on ("cpu-ref", m, x, rs, &ros);
  float *luma = run_on ("cpu-ref", core, xy, ys, &yos);
  CHECK (yos.c == 1 && yos.h == s * h && yos.w == s * w, "%s: core output %dx%dx%d", what,
      yos.c, yos.h, yos.w);
  if (full && luma) {
    size_t n = (size_t) s * h * s * w, used = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
      float r = full[i], g = full[n + i], b = full[2 * n + i];
      if (r <= 0 || r >= 1 || g <= 0 || g >= 1 || b <= 0 || b >= 1)
        continue;               /* clamped in RGB: the core clamps Y instead */
      used++;
      worst = MAX (worst, fabs (0.299 * r + 0.587 * g + 0.114 * b - luma[i]));
    }
    printf ("%s: core vs the full model's luma on %zu of %zu pixels: max |diff| %.2e\n",
        what, used, n, worst);
    CHECK (used > n / 2 && worst < 1e-5, "%s: %zu pixels, max diff %.2e", what, used, worst);
  }
  const char *fast[] = { "cpu", "cpu-bf16" };
  for (int k = 0; k < 2 && luma; k++) {
    float *y = run_on (fast[k], core, xy, ys, &yos);
    if (!y)
      continue;                 /* cpu-bf16 without native bf16 */
    double worst = 0;
    for (size_t i = 0; i < nf_shape_numel (yos); i++)
      worst = MAX (worst, fabs (y[i] - luma[i]));
    printf ("%s: core on %s vs cpu-ref: max |diff| %.2e\n", what, fast[k], worst);
    CHECK (worst < (k ? 2e-2 : 1e-4), "%s: %s differs from cpu-ref by %.2e", what, fast[k],
        worst);
    nf_free (y);
  }
  nf_free (full);
  nf_free (luma);
  nf_free (x);
  nf_free (xy);
  nf_model_free (core);
}

static NfModel *
arch_model (const char *arch, int scale)
{
  NfArchSpec spec = {.arch = arch,.scale = scale };
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&spec, 3, &e);
  CHECK (m, "%s: %s", arch, e ? e->message : "");
  g_clear_error (&e);
  return m;
}

static void
check_no_core (NfModel *m, const char *what)
{
  GError *e = NULL;
  NfModel *core = nf_model_luma_core (m, &e);
  CHECK (!core && !e, "%s: %s", what, core ? "has a luma core" : e->message);
  g_clear_error (&e);
  nf_model_free (core);
}

int
main (void)
{
  for (int s = 2; s <= 4; s++) {
    NfModel *m = arch_model ("sr-light-y", s);
    char *what = g_strdup_printf ("sr-light-y x%d", s);
    if (m)
      check_core (m, what);
    g_free (what);
    nf_model_free (m);
  }
  char *path = g_build_filename (NF_SOURCE_ROOT, "weights", "sr-light-x2.safetensors", NULL);
  GError *e = NULL;
  NfModel *shipped = nf_model_load (path, &e);
  CHECK (shipped, "%s: %s", path, e ? e->message : "");
  g_clear_error (&e);
  if (shipped)
    check_core (shipped, "weights/sr-light-x2");
  nf_model_free (shipped);
  g_free (path);

  const struct { const char *arch; int scale; } others[] = {
    {"sr-light", 2}, {"sr-subpixel", 2}, {"style-rt", 0},
  };
  for (guint i = 0; i < G_N_ELEMENTS (others); i++) {
    NfModel *m = arch_model (others[i].arch, others[i].scale);
    if (m)
      check_no_core (m, others[i].arch);
    nf_model_free (m);
  }
  NfModel *m = arch_model ("sr-light-y", 2);
  NfModelTensor *t = m ? nf_model_tensor (m, NF_ARCH_Y_TO_RGB ".weight") : NULL;
  CHECK (t, "sr-light-y has a %s tensor", NF_ARCH_Y_TO_RGB);
  if (t) {
    t->data[0] = 0.5f;          /* R no longer gets the whole luma step */
    check_no_core (m, "sr-light-y with other y_to_rgb weights");
  }
  nf_model_free (m);
  m = arch_model ("sr-light-y", 2);
  t = m ? nf_model_tensor (m, NF_ARCH_RGB_TO_Y ".weight") : NULL;
  if (t) {
    t->data[0] = 0.2126f;       /* BT.709's red: not the luma the element reads */
    check_no_core (m, "sr-light-y with other rgb_to_y weights");
  }
  nf_model_free (m);

  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
