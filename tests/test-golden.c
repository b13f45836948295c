/* test-golden.c — whole networks against outputs computed by an independent
 * implementation (tests/data/make_golden.py: PyTorch, float64).
 *
 * Cases: every architecture nf-init writes (style-slim, style-full, sr-johnson x2/x4,
 * sr-subpixel x2/x3, sr-light x2/x3/x4, sr-light-y x3 (luma only), style-rt with the
 * fixed input blur; the model files are ours, the expected outputs come from the
 * script's own interpreter of their graph JSON), and a PyTorch fast_neural_style
 * TransformerNet state_dict whose expected output is that nn.Module's own forward.
 * Each model runs on the "cpu-ref" and "cpu" backends, twice on the same engine (the
 * second run must equal the first: no state leaks between frames); the error is
 * max|out - expected| / max|expected|.
 * Tolerances: cpu-ref 1e-4 (plain fp32 loops vs float64: rounding only). cpu 1e-3: oneDNN
 * may pick Winograd or other reduced-precision-accumulation convolution algorithms and
 * sums in a different order; through ~20 layers with instance norm that costs more than
 * plain fp32 rounding, and 1e-3 still catches any wrong index, padding or fusion.
 * Does not: test single ops (test-ops.c) or engine planning (test-engine.c).
 * Skips (77) only when the data files are missing; regenerate them with
 *   python3 tests/data/make_golden.py --nf-init build/inference/tools/nf-init
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "nf-engine.h"
#include "nf-error.h"
#include "nf-model.h"
#include "nf-safetensors.h"

static const char *const cases[] = {
  "style-slim", "style-full", "sr-johnson-x2", "sr-johnson-x4", "sr-subpixel-x2",
  "sr-subpixel-x3", "sr-light-x2", "sr-light-x3", "sr-light-x4", "sr-light-y-x3",
  "style-rt-blur", "transformernet",
};

static const struct {
  const char *name;
  double tol;
} backends[] = {
  { "cpu-ref", 1e-4 },
  { "cpu", 1e-3 },
};

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static const char *
data_dir (void)
{
  const char *d = g_getenv ("NF_TEST_DATA");
  return d && *d ? d : NF_TEST_DATA;
}

/* Reads a (1, 3, H, W) tensor of an io file; NULL on error (reported). */
static float *
read_image_tensor (const NfSafetensors *st, const char *path, const char *name, NfShape *s)
{
  const NfStEntry *e = nf_safetensors_find (st, name);
  CHECK (e && e->ndim == 4 && e->dims[0] == 1 && e->dims[1] == 3,
      "%s: no (1, 3, H, W) tensor \"%s\"", path, name);
  if (!e || e->ndim != 4 || e->dims[0] != 1 || e->dims[1] != 3)
    return NULL;
  *s = (NfShape) { 1, 3, (int) e->dims[2], (int) e->dims[3] };
  GError *err = NULL;
  float *x = nf_safetensors_get_floats (st, e, &err);
  CHECK (x != NULL, "%s: %s", path, err ? err->message : "");
  g_clear_error (&err);
  return x;
}

/* max|a - ref| / max|ref|; NaN anywhere gives NaN. */
static double
norm_error (const float *a, const float *ref, size_t n, size_t *where)
{
  double md = 0, mr = 0;
  *where = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs ((double) a[i] - ref[i]);
    if (!(d <= md)) {
      md = d;
      *where = i;
    }
    mr = fmax (mr, fabs ((double) ref[i]));
  }
  return md / (mr > 0 ? mr : 1.0);
}

static void
run_case (const char *name)
{
  char *model_path = g_strdup_printf ("%s/golden-%s.safetensors", data_dir (), name);
  char *io_path = g_strdup_printf ("%s/golden-%s-io.safetensors", data_dir (), name);
  GError *err = NULL;
  NfModel *m = NULL;
  NfSafetensors *io = NULL;
  float *in = NULL, *want = NULL;
  NfShape in_s, want_s;

  m = nf_model_load (model_path, &err);
  CHECK (m != NULL, "%s: %s", name, err ? err->message : "");
  g_clear_error (&err);
  io = nf_safetensors_load (io_path, &err);
  CHECK (io != NULL, "%s: %s", name, err ? err->message : "");
  g_clear_error (&err);
  if (!m || !io)
    goto out;
  in = read_image_tensor (io, io_path, "input", &in_s);
  want = read_image_tensor (io, io_path, "output", &want_s);
  if (!in || !want)
    goto out;
  CHECK (want_s.h == in_s.h * m->scale && want_s.w == in_s.w * m->scale,
      "%s: expected output %dx%d is not scale %d x input %dx%d", name, want_s.w, want_s.h,
      m->scale, in_s.w, in_s.h);

  for (gsize b = 0; b < G_N_ELEMENTS (backends); b++) {
    NfBackend *be = nf_backend_new (backends[b].name, &err);
    CHECK (be != NULL, "backend %s: %s", backends[b].name, err ? err->message : "");
    g_clear_error (&err);
    if (!be)
      continue;
    NfEngine *e = nf_engine_new (m, be, NULL);
    size_t n = nf_shape_numel (want_s);
    float *out = nf_alloc_floats (n), *out2 = nf_alloc_floats (n);
    gint64 t0 = g_get_monotonic_time ();
    gboolean ok = nf_engine_run_host (e, in, in_s, out, &err);
    double ms = (g_get_monotonic_time () - t0) / 1000.0;
    CHECK (ok, "%s on %s: %s", name, backends[b].name, err ? err->message : "");
    g_clear_error (&err);
    if (ok) {
      NfShape os = nf_engine_output_shape (e);
      ok = nf_shape_equal (os, want_s);
      CHECK (ok, "%s on %s: output %dx%dx%d, expected %dx%dx%d", name, backends[b].name,
          os.c, os.h, os.w, want_s.c, want_s.h, want_s.w);
    }
    if (ok) {
      size_t where;
      double ne = norm_error (out, want, n, &where);
      gboolean again = nf_engine_run_host (e, in, in_s, out2, &err);
      CHECK (again, "%s on %s, second run: %s", name, backends[b].name,
          err ? err->message : "");
      g_clear_error (&err);
      gboolean same = again && memcmp (out, out2, n * sizeof (float)) == 0;
      printf ("%-16s %-8s %3dx%-3d -> %3dx%-3d  error %.2e (tol %.0e)  at [%zu] got %.6g "
          "want %.6g  %s%7.1f ms\n", name, backends[b].name, in_s.w, in_s.h, want_s.w,
          want_s.h, ne, backends[b].tol, where, out[where], want[where],
          same ? "" : "SECOND RUN DIFFERS  ", ms);
      CHECK (ne <= backends[b].tol, "%s on %s: error %.3e above %.0e", name,
          backends[b].name, ne, backends[b].tol);
      CHECK (same, "%s on %s: a second run on the same engine gave a different output",
          name, backends[b].name);
    }
    nf_free (out);
    nf_free (out2);
    nf_engine_free (e);
    nf_backend_free (be);
  }

out:
  nf_free (in);
  nf_free (want);
  nf_safetensors_free (io);
  nf_model_free (m);
  g_free (model_path);
  g_free (io_path);
}

int
main (void)
{
  int present = 0;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    char *p = g_strdup_printf ("%s/golden-%s-io.safetensors", data_dir (), cases[i]);
    present += g_file_test (p, G_FILE_TEST_EXISTS);
    g_free (p);
  }
  if (present == 0) {
    printf ("SKIP: no golden files in %s; make them with\n"
        "  python3 tests/data/make_golden.py --nf-init build/inference/tools/nf-init\n",
        data_dir ());
    return 77;
  }
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (cases[i]);
  printf ("%s (%d failures)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
