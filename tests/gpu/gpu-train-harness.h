/* gpu-train-harness.h — what the GPU training-arithmetic tests share
 * (test-gpu-train-ops.c, test-gpu-train-device.c): one test per executable, so the state
 * lives here as file statics of the including test.
 *
 *   state        the "cuda" backend under test (be), its NfCudaTrain (ct), a seeded
 *                generator (rng), checks run and failed (n_cases, n_failed)
 *   reporting    report (an error against a tolerance; NaN fails), check (a condition),
 *                must (a call that must succeed: the test stops otherwise), must_fail (a
 *                call that must fail with a GError)
 *   errors       norm_err (max|got - ref| / max|ref|, NaN when got holds one), rel_err
 *   buffers      host_random; dev_up / dev_down: n floats on the device followed by
 *                N_SENTINEL sentinel floats, which dev_down checks; dev_free
 * What it does not: choose cases or tolerances, or create be / ct (the tests' main).
 */
#pragma once

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nf-backend.h"
#include "nf-error.h"
#include "nf-train-gpu.h"
#include "cuda/nf-cuda-train.h"

#define SENTINEL 12345.0f
#define N_SENTINEL 16

static int n_cases, n_failed;
static NfRng rng;
static NfBackend *be;
static NfCudaTrain *ct;

/* ---- reporting ---------------------------------------------------------------------- */

static inline void
report (const char *what, double err, double tol)
{
  n_cases++;
  gboolean ok = err <= tol;     /* NaN fails */
  if (!ok)
    n_failed++;
  printf ("%s %-58s err %.3e (tol %.0e)\n", ok ? "ok  " : "FAIL", what, err, tol);
}

static inline void
check (const char *what, gboolean ok, const char *detail)
{
  n_cases++;
  if (!ok)
    n_failed++;
  printf ("%s %-58s %s\n", ok ? "ok  " : "FAIL", what, detail ? detail : "");
}

/* A call that must succeed: on failure the test stops (nothing after it is meaningful). */
static inline void
must (gboolean ok, GError *e, const char *what)
{
  if (ok)
    return;
  printf ("FAIL %s: %s\n", what, e ? e->message : "(no message)");
  exit (1);
}

/* A call that must fail with a GError. */
static inline void
must_fail (const char *what, gboolean ok, GError **e)
{
  char *msg = g_strdup_printf ("-> %s", *e ? (*e)->message : "no error set");
  check (what, !ok && *e, msg);
  g_free (msg);
  g_clear_error (e);
}

static inline double
norm_err (const float *got, const float *ref, size_t n)
{
  double md = 0.0, mr = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs ((double) got[i] - ref[i]);
    if (!(d == d))
      return NAN;
    md = fmax (md, d);
    mr = fmax (mr, fabs ((double) ref[i]));
  }
  return md / (mr > 0 ? mr : 1e-30);
}

static inline double
rel_err (double got, double ref)
{
  return fabs (got - ref) / fmax (fabs (ref), 1e-30);
}

/* ---- device buffers with sentinels -------------------------------------------------------- */

static inline float *
host_random (size_t n, float lo, float hi)
{
  float *x = nf_alloc_floats (n);
  nf_rng_fill_uniform (&rng, x, n, lo, hi);
  return x;
}

/* n floats (+ sentinels) on the device, holding host (n) */
static inline float *
dev_up (const float *host, size_t n)
{
  GError *e = NULL;
  float *d = nf_gpu_alloc_floats (be, n + N_SENTINEL, &e);
  must (d != NULL, e, "nf_gpu_alloc_floats");
  float *tmp = g_new (float, n + N_SENTINEL);
  memcpy (tmp, host, n * sizeof (float));
  for (int i = 0; i < N_SENTINEL; i++)
    tmp[n + i] = SENTINEL;
  must (nf_gpu_copy (be, d, tmp, (n + N_SENTINEL) * sizeof (float), &e)
      && nf_gpu_sync (be, &e), e, "upload");
  g_free (tmp);
  return d;
}

/* The n floats of d on the host (g_free); the sentinels after them must be intact. */
static inline float *
dev_down (const float *d, size_t n, const char *what)
{
  GError *e = NULL;
  float *h = g_new (float, n + N_SENTINEL);
  must (nf_gpu_sync (be, &e) && nf_gpu_copy (be, h, d, (n + N_SENTINEL) * sizeof (float), &e)
      && nf_gpu_sync (be, &e), e, "download");
  gboolean ok = TRUE;
  for (int i = 0; i < N_SENTINEL; i++)
    ok = ok && h[n + i] == SENTINEL;
  if (!ok) {
    char *w = g_strdup_printf ("%s: sentinels after the buffer", what);
    check (w, FALSE, "overwritten");
    g_free (w);
  }
  return h;
}

static inline void
dev_free (void *d)
{
  nf_gpu_free (be, d);
}
