/* test-cpu-bf16.c — the "cpu-bf16" backend against the fp32 "cpu" backend.
 *
 * Checks:
 *  - nf_float_to_bf16 rounds to nearest even (exact cases, ties, NaN, infinities) and
 *    round-trips every bf16 value;
 *  - on a CPU without native bf16 (or with NF_CPU_NO_BF16=1) creating cpu-bf16 fails
 *    with an error that names the ISA and the fp32 alternative;
 *  - every standard architecture with seeded weights: the bf16 output differs from fp32
 *    (so bf16 really ran) but by less than bf16 arithmetic allows (relative RMS error
 *    below 3e-2; measured 2e-3..8e-3), in both activation layouts of the bf16
 *    convolutions (nChw16c blocks and channels-last, NF_CPU_BF16_LAYOUT), and the
 *    AVX-512 BF16 packing gives the same bits as the portable one in each;
 *  - every shipped model in weights/ on the bundled photo gst/samples/chelsea.jpg: PSNR
 *    of the 8-bit bf16 output against the fp32 one of at least 53 dB. Measured on that
 *    photo and two of ../shared/data/photos: 55.8-64.5 dB (8-bit outputs differ by at
 *    most 2 levels); a convolution with misplaced channel lanes gives ~10-20 dB.
 * Skips (77) what needs native bf16 on CPUs without it.
 * Does not: time anything (nf-bench prints fp32 and bf16 side by side).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-image.h"
#include "nf-model.h"
#include "nf-tensor.h"

#define MIN_PSNR_DB 53.0
#define MAX_REL_RMS 3e-2

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static float
from_bits (guint32 u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static void
test_rounding (void)
{
  CHECK (nf_float_to_bf16 (1.0f) == 0x3f80, "1.0 -> 0x3f80");
  CHECK (nf_float_to_bf16 (-2.0f) == 0xc000, "-2.0 -> 0xc000");
  /* 1 + 2^-8 lies half way between 1 and 1 + 2^-7: ties to even (down) */
  CHECK (nf_float_to_bf16 (from_bits (0x3f808000)) == 0x3f80, "tie rounds to even, down");
  /* 1 + 3 * 2^-8: half way between 1 + 2^-7 (odd) and 1 + 2^-6: up to even */
  CHECK (nf_float_to_bf16 (from_bits (0x3f818000)) == 0x3f82, "tie rounds to even, up");
  CHECK (nf_float_to_bf16 (from_bits (0x3f808001)) == 0x3f81, "above the tie rounds up");
  CHECK (nf_float_to_bf16 (from_bits (0x3f807fff)) == 0x3f80, "below the tie rounds down");
  CHECK (nf_float_to_bf16 (INFINITY) == 0x7f80 && nf_float_to_bf16 (-INFINITY) == 0xff80,
      "infinities");
  guint16 nan = nf_float_to_bf16 (NAN);
  CHECK ((nan & 0x7f80) == 0x7f80 && (nan & 0x7f), "NaN stays NaN (0x%04x)", nan);
  CHECK (nf_float_to_bf16 (from_bits (0x7f7fffff)) == 0x7f80, "FLT_MAX rounds to infinity");
  int bad = 0;
  for (guint32 h = 0; h < 0x10000; h++) {
    float f = nf_bf16_to_float ((guint16) h);
    if (!isnan (f) && nf_float_to_bf16 (f) != h)
      bad++;
  }
  CHECK (bad == 0, "%d bf16 values do not round-trip", bad);
}

static void
test_no_native (void)
{
  g_setenv ("NF_CPU_NO_BF16", "1", TRUE);
  GError *e = NULL;
  NfBackend *be = nf_backend_new ("cpu-bf16", &e);
  CHECK (!be && e && strstr (e->message, "bf16") && strstr (e->message, "cpu"),
      "without native bf16, cpu-bf16 is a clear error (%s)", e ? e->message : "created");
  if (e)
    printf ("expected error: %s\n", e->message);
  g_clear_error (&e);
  nf_backend_free (be);
  g_unsetenv ("NF_CPU_NO_BF16");
}

static float *
run (NfModel *m, const char *backend, const float *x, NfShape s, NfShape *os)
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
  CHECK (y, "%s: %s", backend, e ? e->message : "no engine");
  g_clear_error (&e);
  nf_engine_free (eng);
  nf_backend_free (be);
  return y;
}

static void
test_architectures (void)
{
  const NfArchSpec specs[] = {
    {"style-full", 0, 0, 0}, {"style-slim", 0, 0, 0}, {"style-rt", 0, 0, 0},
    {"sr-johnson", 2, 0, 0},
    {"sr-johnson", 4, 0, 0}, {"sr-subpixel", 2, 0, 0}, {"sr-subpixel", 3, 0, 0},
    {"sr-subpixel", 4, 0, 0}, {"sr-light", 2, 0, 0}, {"sr-light", 3, 0, 0},
    {"sr-light", 4, 0, 0},
  };
  for (guint a = 0; a < G_N_ELEMENTS (specs); a++) {
    GError *e = NULL;
    NfModel *m = nf_arch_new_model (&specs[a], 7, &e);
    CHECK (m, "%s: %s", specs[a].arch, e ? e->message : "");
    g_clear_error (&e);
    if (!m)
      continue;
    NfShape s = { 1, 3, 36, 52 }, os;
    float *x = nf_alloc_floats (nf_shape_numel (s));
    NfRng rng;
    nf_rng_seed (&rng, 11 + a);
    nf_rng_fill_uniform (&rng, x, nf_shape_numel (s), m->in_lo, m->in_hi);
    float *y32 = run (m, "cpu", x, s, &os);
    for (int l = 0; l < 2; l++) {       /* both activation layouts of the bf16 convs */
      const char *layout = l ? "channels-last" : "blocked";
      g_setenv ("NF_CPU_BF16_LAYOUT", layout, TRUE);
      float *y16 = run (m, "cpu-bf16", x, s, &os);
      g_setenv ("NF_CPU_BF16_PORTABLE", "1", TRUE);
      float *yp = run (m, "cpu-bf16", x, s, &os);
      g_unsetenv ("NF_CPU_BF16_PORTABLE");
      g_unsetenv ("NF_CPU_BF16_LAYOUT");
      if (y32 && y16 && yp) {
        size_t n = nf_shape_numel (os);
        double d2 = 0, r2 = 0;
        for (size_t i = 0; i < n; i++) {
          d2 += ((double) y16[i] - y32[i]) * ((double) y16[i] - y32[i]);
          r2 += (double) y32[i] * y32[i];
        }
        double rel = sqrt (d2 / MAX (r2, 1e-30));
        printf ("%s x%d, %s: bf16 vs fp32 relative RMS error %.2e\n", specs[a].arch,
            MAX (specs[a].scale, 1), layout, rel);
        CHECK (rel > 1e-6 && rel < MAX_REL_RMS, "%s x%d, %s: relative RMS error %.2e (bf16 "
            "should differ from fp32, by less than %.0e)", specs[a].arch,
            MAX (specs[a].scale, 1), layout, rel, MAX_REL_RMS);
        CHECK (memcmp (y16, yp, n * sizeof (float)) == 0, "%s, %s: AVX-512 BF16 packing and "
            "the portable one differ", specs[a].arch, layout);
      }
      nf_free (y16);
      nf_free (yp);
    }
    nf_free (y32);
    nf_free (x);
    nf_model_free (m);
  }
}

static double
psnr_8bit (const NfImage *a, const NfImage *b)
{
  double se = 0;
  size_t n = (size_t) a->width * a->height * 3;
  for (size_t i = 0; i < n; i++)
    se += ((double) a->rgb[i] - b->rgb[i]) * ((double) a->rgb[i] - b->rgb[i]);
  return se == 0 ? INFINITY : 10.0 * log10 (255.0 * 255.0 * n / se);
}

static NfImage *
run_image (NfModel *m, const char *backend, const NfImage *in)
{
  NfShape s = { 1, 3, in->height, in->width }, os;
  float *x = nf_alloc_floats (nf_shape_numel (s));
  nf_image_to_planar (in, x, m->in_lo, m->in_hi);
  float *y = run (m, backend, x, s, &os);
  nf_free (x);
  if (!y)
    return NULL;
  NfImage *out = nf_image_new (os.w, os.h);
  nf_image_from_planar (out, y, m->out_lo, m->out_hi);
  nf_free (y);
  return out;
}

static void
test_shipped_models (const char *root)
{
  char *photo = g_build_filename (root, "gst", "samples", "chelsea.jpg", NULL);
  char *wdir = g_build_filename (root, "weights", NULL);
  GError *e = NULL;
  NfImage *img = nf_image_load (photo, &e);
  GDir *dir = g_dir_open (wdir, 0, &e);
  CHECK (img && dir, "%s", e ? e->message : "");
  g_clear_error (&e);
  int models = 0;
  const char *name;
  while (img && dir && (name = g_dir_read_name (dir))) {
    if (!g_str_has_suffix (name, ".safetensors"))
      continue;
    char *path = g_build_filename (wdir, name, NULL);
    NfModel *m = nf_model_load (path, &e);
    CHECK (m, "%s: %s", name, e ? e->message : "");
    g_clear_error (&e);
    if (m) {
      NfImage *a = run_image (m, "cpu", img), *b = run_image (m, "cpu-bf16", img);
      if (a && b) {
        double p = psnr_8bit (a, b);
        printf ("%-40s bf16 vs fp32 on chelsea.jpg: PSNR %.2f dB\n", name, p);
        CHECK (p >= MIN_PSNR_DB, "%s: PSNR %.2f dB of bf16 against fp32 (at least %.0f)",
            name, p, MIN_PSNR_DB);
        models++;
      }
      nf_image_free (a);
      nf_image_free (b);
      nf_model_free (m);
    }
    g_free (path);
  }
  CHECK (models >= 9, "scored %d shipped models (want every one, at least 9)", models);
  if (dir)
    g_dir_close (dir);
  nf_image_free (img);
  g_free (wdir);
  g_free (photo);
}

int
main (void)
{
  test_rounding ();
  test_no_native ();
  GError *e = NULL;
  NfBackend *be = nf_backend_new ("cpu-bf16", &e);
  if (!be) {
    printf ("SKIP the bf16 comparisons: %s\n", e->message);
    g_error_free (e);
    if (failures)
      printf ("%d check(s) failed\n", failures);
    return failures ? 1 : 77;
  }
  nf_backend_free (be);
  test_architectures ();
  test_shipped_models (NF_SOURCE_ROOT);
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
