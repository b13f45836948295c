/* test-train-metrics.c — SR metrics, resampling kernels and the degradation.
 *
 * Against independent references (tests/data/train-metrics-ref.py, numpy and Pillow;
 * values in train-metrics-ref.txt): Y-channel PSNR and SSIM of a closed-form image pair
 * with a 2-pixel shave; bicubic and Lanczos-3 downscaling by 4, 3 and 2 (the standard SR
 * degradation of every shipped scale) and upscaling by 3 at
 * every output pixel whose taps stay inside the image (Pillow renormalises at the
 * borders where MATLAB and we mirror).
 * By hand: kernel values, PSNR of a known MSE, SSIM(x, x) = 1 and SSIM falling with
 * noise, constants and linear ramps kept by resampling, a blurred constant staying
 * constant, the blur's variance (sum k i^2 = sigma^2), degradation sizes, rounding and
 * bad sizes.
 * The standard SR protocol as nf_eval_sr_image assembles it (a shipped-format x2 model on
 * an odd-sized image): HR cropped top-left to a multiple of the scale, LR = bicubic
 * downscale rounded to 8 bit, baseline = bicubic upscale rounded, PSNR-Y with shave =
 * scale - rebuilt here step by step from the parts tested above; blur-bicubic differs.
 * The video degradation: no noise and no JPEG is bicubic; draws repeat with the seed and
 * change with it; JPEG error grows as the quality falls; bad ranges are errors.
 * Does not: test datasets (test-train-data.c) or networks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nf-backend.h"
#include "nf-degrade.h"
#include "nf-eval.h"
#include "nf-model.h"
#include "nf-metrics.h"
#include "nf-resample.h"
#include "nf-tensor.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

/* The closed-form inputs of train-metrics-ref.py, as float32. */
static void
make_img (float *o, int c, int h, int w)
{
  for (int k = 0; k < c; k++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        o[((size_t) k * h + y) * w + x] = (float) (127.5 + 100.0 * sin (0.37 * x + 0.23 * y + k)
            * cos (0.11 * x - 0.19 * y + 0.5 * k));
}

static void
make_pert (float *o, int c, int h, int w)
{
  for (int k = 0; k < c; k++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        o[((size_t) k * h + y) * w + x] = (float) (12.0 * sin (1.3 * x + 0.7 * y + 2 * k)
            + 6.0 * cos (0.9 * y - 0.4 * x));
}

/* Reads "key v1 v2 ..." lines of the reference file. */
static double *
ref_values (const char *text, const char *key, int *n)
{
  *n = 0;
  char **lines = g_strsplit (text, "\n", -1);
  double *vals = NULL;
  size_t kl = strlen (key);
  for (int i = 0; lines[i]; i++) {
    if (strncmp (lines[i], key, kl) || lines[i][kl] != ' ')
      continue;
    char **tok = g_strsplit (lines[i] + kl + 1, " ", -1);
    int m = (int) g_strv_length (tok);
    vals = g_new (double, m);
    for (int j = 0; j < m; j++)
      vals[j] = g_ascii_strtod (tok[j], NULL);
    *n = m;
    g_strfreev (tok);
  }
  g_strfreev (lines);
  return vals;
}

static void
test_reference (const char *text)
{
  int h = 29, w = 23, shave = 2, n;
  size_t np = (size_t) 3 * h * w;
  float *a = nf_alloc_floats (np), *b = nf_alloc_floats (np), *p = nf_alloc_floats (np);
  make_img (a, 3, h, w);
  make_pert (p, 3, h, w);
  for (size_t i = 0; i < np; i++)
    b[i] = CLAMP (a[i] + p[i], 0.0f, 255.0f);
  double *ref = ref_values (text, "psnr_y", &n);
  double psnr = nf_psnr_y (a, b, h, w, shave);
  CHECK (n == 1 && fabs (psnr - ref[0]) < 1e-5, "PSNR-Y %.8f, numpy %.8f", psnr,
      n ? ref[0] : NAN);
  printf ("PSNR-Y %.8f dB (numpy %.8f)\n", psnr, n ? ref[0] : NAN);
  g_free (ref);
  ref = ref_values (text, "ssim_y", &n);
  double ssim = nf_ssim_y (a, b, h, w, shave);
  CHECK (n == 1 && fabs (ssim - ref[0]) < 1e-7, "SSIM-Y %.10f, numpy %.10f", ssim,
      n ? ref[0] : NAN);
  printf ("SSIM-Y %.10f (numpy %.10f)\n", ssim, n ? ref[0] : NAN);
  g_free (ref);
  nf_free (a);
  nf_free (b);
  nf_free (p);

  /* resampling against Pillow, interior pixels */
  const char *names[2] = { "bicubic", "lanczos3" };
  for (int f = 0; f < 2; f++) {
    NfFilter filt = f ? NF_FILTER_LANCZOS3 : NF_FILTER_BICUBIC;
    double sup = f ? 3.0 : 2.0;
    struct {
      const char *key;
      int h, w, oh, ow;
    } cases[4] = { {"down4", 36, 40, 9, 10}, {"down3", 36, 40, 12, 13},
    {"down2", 36, 40, 18, 20}, {"up3", 9, 10, 27, 30} };
    for (int c = 0; c < 4; c++) {
      char *key = g_strdup_printf ("%s %s", cases[c].key, names[f]);
      double *r = ref_values (text, key, &n);
      int ih = cases[c].h, iw = cases[c].w, oh = cases[c].oh, ow = cases[c].ow;
      float *src = nf_alloc_floats ((size_t) ih * iw), *dst = nf_alloc_floats ((size_t) oh * ow);
      make_img (src, 1, ih, iw);
      nf_resample_planar (src, 1, ih, iw, dst, oh, ow, filt);
      double sy = (double) oh / ih, sx = (double) ow / iw;
      double ry = sup / MIN (sy, 1.0), rx = sup / MIN (sx, 1.0);
      double max_err = 0.0;
      int compared = 0;
      for (int y = 0; n == oh * ow && y < oh; y++)
        for (int x = 0; x < ow; x++) {
          double uy = (y + 0.5) / sy - 0.5, ux = (x + 0.5) / sx - 0.5;
          if (uy - ry < -0.5 || uy + ry > ih - 0.5 || ux - rx < -0.5 || ux + rx > iw - 0.5)
            continue;           /* a tap outside: Pillow and MATLAB differ here */
          max_err = MAX (max_err, fabs (dst[(size_t) y * ow + x] - r[(size_t) y * ow + x]));
          compared++;
        }
      CHECK (n == oh * ow && compared >= 4 && max_err < 2e-3,
          "%s: %d values, %d compared, max error %.2g vs Pillow", key, n, compared, max_err);
      printf ("%s: %d interior pixels, max |C - Pillow| = %.2g\n", key, compared, max_err);
      g_free (r);
      g_free (key);
      nf_free (src);
      nf_free (dst);
    }
  }
}

static void
test_by_hand (void)
{
  CHECK (fabs (nf_resample_kernel (NF_FILTER_BICUBIC, 0.0) - 1.0) < 1e-12
      && fabs (nf_resample_kernel (NF_FILTER_BICUBIC, 1.0)) < 1e-12
      && fabs (nf_resample_kernel (NF_FILTER_BICUBIC, 0.5) - 0.5625) < 1e-12
      && fabs (nf_resample_kernel (NF_FILTER_BICUBIC, 1.5) + 0.0625) < 1e-12
      && nf_resample_kernel (NF_FILTER_BICUBIC, 2.5) == 0.0, "bicubic kernel values");
  CHECK (fabs (nf_resample_kernel (NF_FILTER_LANCZOS3, 1.0)) < 1e-12
      && fabs (nf_resample_kernel (NF_FILTER_LANCZOS3, 0.0) - 1.0) < 1e-12
      && nf_resample_kernel (NF_FILTER_LANCZOS3, 3.2) == 0.0, "lanczos kernel values");

  /* PSNR of a known MSE: every Y differs by 2 -> MSE 4 */
  int h = 20, w = 16;
  float *a = nf_alloc_floats ((size_t) h * w), *b = nf_alloc_floats ((size_t) h * w);
  for (int i = 0; i < h * w; i++) {
    a[i] = 100.0f + (i % 7);
    b[i] = a[i] + ((i & 1) ? 2.0f : -2.0f);
  }
  double expect = 10.0 * log10 (255.0 * 255.0 / 4.0);
  CHECK (fabs (nf_psnr_plane (a, b, h, w, 3, 255.0) - expect) < 1e-9, "PSNR of MSE 4");
  CHECK (isinf (nf_psnr_plane (a, a, h, w, 0, 255.0)), "PSNR of equal planes is infinite");
  CHECK (fabs (nf_ssim_plane (a, a, h, w, 2, 255.0) - 1.0) < 1e-12, "SSIM(x, x) = 1");
  CHECK (isnan (nf_ssim_plane (a, b, h, w, 5, 255.0)), "SSIM of a too small window is NaN");
  NfRng rng;
  nf_rng_seed (&rng, 3);
  double prev = 1.0;
  for (int amp = 5; amp <= 40; amp *= 2) {
    for (int i = 0; i < h * w; i++)
      b[i] = a[i] + amp * (nf_rng_uniform (&rng) - 0.5f);
    double s = nf_ssim_plane (a, b, h, w, 0, 255.0);
    CHECK (s < prev, "SSIM falls with noise amplitude %d (%g after %g)", amp, s, prev);
    prev = s;
  }
  nf_free (a);
  nf_free (b);

  /* constants and ramps */
  int ih = 24, iw = 30;
  float *src = nf_alloc_floats ((size_t) ih * iw), *dst = nf_alloc_floats ((size_t) 72 * 90);
  for (int i = 0; i < ih * iw; i++)
    src[i] = 77.0f;
  for (int f = 0; f < 2; f++) {
    NfFilter filt = f ? NF_FILTER_LANCZOS3 : NF_FILTER_BICUBIC;
    nf_resample_planar (src, 1, ih, iw, dst, 6, 10, filt);
    double e = 0;
    for (int i = 0; i < 60; i++)
      e = MAX (e, fabs (dst[i] - 77.0));
    nf_resample_planar (src, 1, ih, iw, dst, 72, 90, filt);
    for (int i = 0; i < 72 * 90; i++)
      e = MAX (e, fabs (dst[i] - 77.0));
    CHECK (e < 1e-4, "%s keeps a constant (error %g)", nf_filter_name (filt), e);
  }
  /* bicubic reproduces a linear ramp away from the borders (x2 up) */
  for (int y = 0; y < ih; y++)
    for (int x = 0; x < iw; x++)
      src[y * iw + x] = 3.0f * x + 2.0f * y + 1.0f;
  nf_resample_planar (src, 1, ih, iw, dst, 2 * ih, 2 * iw, NF_FILTER_BICUBIC);
  double e = 0;
  for (int y = 6; y < 2 * ih - 6; y++)
    for (int x = 6; x < 2 * iw - 6; x++) {
      double u = (x + 0.5) / 2 - 0.5, v = (y + 0.5) / 2 - 0.5;
      e = MAX (e, fabs (dst[y * 2 * iw + x] - (3.0 * u + 2.0 * v + 1.0)));
    }
  CHECK (e < 1e-3, "bicubic x2 of a ramp is the ramp (error %g)", e);

  /* blur: constant stays constant; an impulse spreads with variance sigma^2 */
  float *imp = nf_alloc_floats (41 * 41), *bl = nf_alloc_floats (41 * 41);
  imp[20 * 41 + 20] = 1.0f;
  nf_gaussian_blur_planar (imp, 1, 41, 41, 1.0, bl);
  double sum = 0, var = 0;
  for (int y = 0; y < 41; y++)
    for (int x = 0; x < 41; x++) {
      sum += bl[y * 41 + x];
      var += bl[y * 41 + x] * (x - 20.0) * (x - 20.0);
    }
  CHECK (fabs (sum - 1.0) < 1e-6 && fabs (var - 1.0) < 0.01,
      "blurred impulse: sum %g, variance %g (sigma 1, kernel cut at 3 sigma)", sum, var);

  /* degradation */
  float *hr = nf_alloc_floats ((size_t) 3 * 16 * 12), *lr = nf_alloc_floats ((size_t) 3 * 4 * 3);
  make_img (hr, 3, 16, 12);
  NfDegrade d = { NF_DEGRADE_BLUR_BICUBIC, 1.0, 4 };
  GError *err = NULL;
  CHECK (nf_degrade_planar (&d, hr, 3, 16, 12, lr, &err), "degrade 12x16 by 4");
  gboolean rounded = TRUE;
  for (int i = 0; i < 36; i++)
    rounded = rounded && lr[i] == rintf (lr[i]) && lr[i] >= 0 && lr[i] <= 255;
  CHECK (rounded, "LR values are 8-bit integers");
  CHECK (!nf_degrade_planar (&d, hr, 3, 15, 12, lr, &err) && err, "15 rows do not divide by 4");
  if (err)
    printf ("expected error: %s\n", err->message);
  g_clear_error (&err);
  nf_free (hr);
  nf_free (lr);
  nf_free (imp);
  nf_free (bl);
  nf_free (src);
  nf_free (dst);
}

static double
mse (const float *a, const float *b, size_t n)
{
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
  return s / n;
}

/* The video degradation: bicubic, then seeded noise and JPEG. */
static void
test_video_degradation (void)
{
  int h = 64, w = 96, s = 2;
  size_t nl = (size_t) 3 * (h / s) * (w / s);
  float *hr = nf_alloc_floats ((size_t) 3 * h * w), *bic = nf_alloc_floats (nl);
  float *a = nf_alloc_floats (nl), *b = nf_alloc_floats (nl);
  make_img (hr, 1, h, w);       /* grey (JPEG's 4:2:0 chroma would dominate the error) */
  memcpy (hr + (size_t) h * w, hr, sizeof (float) * h * w);
  memcpy (hr + (size_t) 2 * h * w, hr, sizeof (float) * h * w);
  GError *err = NULL;
  NfDegrade d0 = { NF_DEGRADE_BICUBIC, 1.0, s };
  CHECK (nf_degrade_planar (&d0, hr, 3, h, w, bic, &err), "bicubic");
  NfDegrade v = { NF_DEGRADE_VIDEO, 1.0, s, 0.0, 0, 0, 1 };
  CHECK (nf_degrade_planar (&v, hr, 3, h, w, a, &err) && mse (a, bic, nl) == 0.0,
      "video without noise and JPEG is bicubic");
  v = (NfDegrade) { NF_DEGRADE_VIDEO, 1.0, s, 2.0, 40, 90, 7 };
  CHECK (nf_degrade_planar (&v, hr, 3, h, w, a, &err)
      && nf_degrade_planar (&v, hr, 3, h, w, b, &err) && mse (a, b, nl) == 0.0,
      "the same seed, the same LR");
  gboolean rounded = TRUE;
  for (size_t i = 0; i < nl; i++)
    rounded = rounded && a[i] == rintf (a[i]) && a[i] >= 0 && a[i] <= 255;
  CHECK (rounded, "video LR values are 8-bit integers");
  v.seed = 8;
  CHECK (nf_degrade_planar (&v, hr, 3, h, w, b, &err) && mse (a, b, nl) > 0.0,
      "another seed, another draw");
  double e_q[2];
  int q[2] = { 95, 20 };
  for (int k = 0; k < 2; k++) {
    v = (NfDegrade) { NF_DEGRADE_VIDEO, 1.0, s, 0.0, q[k], q[k], 1 };
    CHECK (nf_degrade_planar (&v, hr, 3, h, w, a, &err), "JPEG %d", q[k]);
    e_q[k] = mse (a, bic, nl);
  }
  CHECK (e_q[0] > 0 && e_q[0] < 4.0 && e_q[1] > 2 * e_q[0], "JPEG error grows as quality "
      "falls: MSE %.3f at 95, %.3f at 20", e_q[0], e_q[1]);
  printf ("video degradation: MSE against bicubic %.3f (JPEG 95), %.3f (JPEG 20)\n", e_q[0],
      e_q[1]);
  v = (NfDegrade) { NF_DEGRADE_VIDEO, 1.0, s, 0.0, 90, 40, 1 };
  CHECK (!nf_degrade_planar (&v, hr, 3, h, w, a, &err) && err, "a reversed quality range");
  g_clear_error (&err);
  NfDegradeKind k;
  CHECK (nf_degrade_kind_from_name ("video", &k) && k == NF_DEGRADE_VIDEO
      && g_str_equal (nf_degrade_kind_name (k), "video"), "video by name");
  nf_free (hr);
  nf_free (bic);
  nf_free (a);
  nf_free (b);
}

static void
round_all (float *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    v[i] = CLAMP (rintf (v[i]), 0.0f, 255.0f);
}

static void
test_protocol (const char *dir)
{
  char *path = g_build_filename (dir, "golden-sr-subpixel-x2.safetensors", NULL);
  GError *err = NULL;
  NfModel *m = nf_model_load (path, &err);
  NfBackend *be = m ? nf_backend_new ("cpu-ref", &err) : NULL;
  CHECK (m && be, "load %s: %s", path, err ? err->message : "");
  g_clear_error (&err);
  if (!m || !be) {
    g_free (path);
    return;
  }
  int w = 53, h = 41, s = 2, cw = 52, ch = 40;  /* odd sides: the crop drops a row/column */
  float *hr = nf_alloc_floats ((size_t) 3 * h * w);
  make_img (hr, 3, h, w);
  NfDegrade d = { NF_DEGRADE_BICUBIC, 1.0, s };
  NfSrScores sc;
  float *out = NULL;
  CHECK (nf_eval_sr_image (m, be, &d, hr, w, h, &sc, &out, &err), "protocol: %s",
      err ? err->message : "");
  g_clear_error (&err);
  /* by hand: top-left crop, bicubic down, round, bicubic up, round, PSNR-Y shave s */
  float *ref = nf_alloc_floats ((size_t) 3 * ch * cw), *lr = nf_alloc_floats ((size_t) 3 * ch
      * cw / 4), *bic = nf_alloc_floats ((size_t) 3 * ch * cw);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < ch; y++)
      memcpy (ref + ((size_t) c * ch + y) * cw, hr + ((size_t) c * h + y) * w,
          sizeof (float) * cw);
  nf_resample_planar (ref, 3, ch, cw, lr, ch / s, cw / s, NF_FILTER_BICUBIC);
  round_all (lr, (size_t) 3 * ch * cw / 4);
  nf_resample_planar (lr, 3, ch / s, cw / s, bic, ch, cw, NF_FILTER_BICUBIC);
  round_all (bic, (size_t) 3 * ch * cw);
  double pb = nf_psnr_y (bic, ref, ch, cw, s);
  CHECK (sc.w == cw && sc.h == ch && fabs (sc.psnr_bicubic - pb) < 1e-9,
      "protocol: scored %dx%d (want %dx%d), bicubic PSNR-Y %.6f (by hand %.6f)", sc.w, sc.h,
      cw, ch, sc.psnr_bicubic, pb);
  double pm = out ? nf_psnr_y (out, ref, ch, cw, s) : 0.0;
  CHECK (out && fabs (sc.psnr - pm) < 1e-9, "protocol: model PSNR-Y %.6f (of its output %.6f)",
      sc.psnr, pm);
  printf ("standard protocol, %dx%d at x%d: bicubic PSNR-Y %.4f dB (by hand %.4f)\n", w, h, s,
      sc.psnr_bicubic, pb);
  NfDegrade db = { NF_DEGRADE_BLUR_BICUBIC, 1.0, s };
  NfSrScores sb;
  CHECK (nf_eval_sr_image (m, be, &db, hr, w, h, &sb, NULL, NULL)
      && sb.psnr_bicubic < sc.psnr_bicubic - 0.5, "blur-bicubic LR is another protocol "
      "(bicubic baseline %.3f vs standard %.3f dB)", sb.psnr_bicubic, sc.psnr_bicubic);
  nf_free (out);
  nf_free (ref);
  nf_free (lr);
  nf_free (bic);
  nf_free (hr);
  nf_backend_free (be);
  nf_model_free (m);
  g_free (path);
}

int
main (void)
{
  const char *dir = g_getenv ("NF_TEST_DATA");
  char *path = g_build_filename (dir ? dir : "tests/data", "train-metrics-ref.txt", NULL);
  char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL)) {
    printf ("FAIL cannot read %s (set NF_TEST_DATA)\n", path);
    return 1;
  }
  test_reference (text);
  test_by_hand ();
  test_protocol (dir ? dir : "tests/data");
  test_video_degradation ();
  g_free (text);
  g_free (path);
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
