/* condnorm-runner.h — what the cond_instance_norm tests share (test-condnorm.c on the
 * CPU backends, gpu/test-gpu-condnorm.c on CUDA): one op run forward and backward on a
 * backend through its own buffers, the expected values computed independently here (rows
 * mixed in double, instance norm in double), error measures.
 * The including file defines `static int failures` before including it.
 * What it does not: any checking policy (tolerances are the tests').
 */
#pragma once

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-backend.h"
#include "nf-error.h"

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

typedef struct {
  NfBackend *be;
  NfOp op;
  NfOpCall call;
  void *bx, *by;
} Runner;

static inline gboolean
runner_init (Runner *r, NfBackend *be, const NfOp *op, NfShape s)
{
  GError *e = NULL;
  memset (r, 0, sizeof *r);
  r->be = be;
  r->op = *op;
  r->op.n_in = 1;
  r->call.op = &r->op;
  r->call.in[0] = s;
  r->call.out = s;
  r->bx = be->iface->alloc (be, s, NULL);
  r->by = be->iface->alloc (be, s, NULL);
  if (be->iface->prepare && !be->iface->prepare (be, &r->call, &e)) {
    printf ("FAIL prepare on %s: %s\n", be->iface->name, e->message);
    failures++;
    g_error_free (e);
    return FALSE;
  }
  return r->bx && r->by;
}

/* Also on a runner that runner_init failed or never saw (zero-initialised). */
static inline void
runner_clear (Runner *r)
{
  if (!r->be)
    return;
  if (r->be->iface->release)
    r->be->iface->release (r->be, &r->call);
  if (r->bx)
    r->be->iface->free (r->be, r->bx);
  if (r->by)
    r->be->iface->free (r->be, r->by);
}

static inline gboolean
runner_forward (Runner *r, const float *x, float *y)
{
  GError *e = NULL;
  const NfBackendIface *bi = r->be->iface;
  NfShape s = r->call.in[0];
  gboolean ok = bi->upload (r->be, r->bx, x, s, &e)
      && bi->forward[r->op.type] (r->be, &r->call, &r->bx, r->by, &e)
      && bi->download (r->be, y, r->by, s, &e);
  if (!ok) {
    printf ("FAIL forward on %s: %s\n", bi->name, e->message);
    failures++;
    g_error_free (e);
  }
  return ok;
}

/* Forward, then backward of L = sum (dy * y) twice into zeroed buffers (the results
 * accumulate: the analytic gradient is half of what comes back). dw, db (N, c) zeroed
 * here; dx (s). */
static inline gboolean
runner_backward (Runner *r, const float *x, const float *dy, float *dx, float *dw, float *db,
    size_t nw)
{
  GError *e = NULL;
  const NfBackendIface *bi = r->be->iface;
  NfShape s = r->call.in[0];
  size_t n = nf_shape_numel (s);
  float *y = nf_alloc_floats (n);
  void *bdy = bi->alloc (r->be, s, NULL), *bdx = bi->alloc (r->be, s, NULL);
  memset (dw, 0, nw * sizeof (float));
  memset (db, 0, nw * sizeof (float));
  gboolean ok = runner_forward (r, x, y) && bi->upload (r->be, bdy, dy, s, &e)
      && bi->zero (r->be, bdx, s, &e);
  for (int rep = 0; rep < 2 && ok; rep++)
    ok = bi->backward[r->op.type] (r->be, &r->call, &r->bx, r->by, bdy, &bdx, dw, db, &e);
  ok = ok && bi->download (r->be, dx, bdx, s, &e);
  if (!ok && e) {
    printf ("FAIL backward on %s: %s\n", bi->name, e->message);
    failures++;
    g_error_free (e);
  }
  for (size_t i = 0; ok && i < n; i++)
    dx[i] *= 0.5f;
  for (size_t i = 0; ok && i < nw; i++) {
    dw[i] *= 0.5f;
    db[i] *= 0.5f;
  }
  bi->free (r->be, bdy);
  bi->free (r->be, bdx);
  nf_free (y);
  return ok;
}

/* ---- the expected values ---------------------------------------------------------------- */

/* Rows (N, c) mixed by mix (N), then instance norm, in double (biased variance). */
static inline void
naive_forward (const float *x, NfShape s, const float *w, const float *b, const float *mix,
    int n_styles, float eps, gboolean relu, float *y)
{
  size_t hw = (size_t) s.h * s.w;
  for (int n = 0; n < s.n; n++)
    for (int c = 0; c < s.c; c++) {
      double g = 0, be = 0;
      for (int i = 0; i < n_styles; i++) {
        g += (double) mix[i] * w[i * s.c + c];
        be += (double) mix[i] * b[i * s.c + c];
      }
      const float *xp = x + ((size_t) n * s.c + c) * hw;
      float *yp = y + ((size_t) n * s.c + c) * hw;
      double mean = 0, var = 0;
      for (size_t i = 0; i < hw; i++)
        mean += xp[i];
      mean /= hw;
      for (size_t i = 0; i < hw; i++)
        var += (xp[i] - mean) * (xp[i] - mean);
      double inv = 1.0 / sqrt (var / hw + eps);
      for (size_t i = 0; i < hw; i++) {
        double v = (xp[i] - mean) * inv * g + be;
        yp[i] = (float) (relu && v < 0 ? 0 : v);
      }
    }
}

/* max |a - b| / max(|b|, 1e-12) */
static inline double
rel_err (const float *a, const float *b, size_t n)
{
  double me = 0, mr = 1e-12;
  for (size_t i = 0; i < n; i++) {
    double d = fabs ((double) a[i] - b[i]);
    me = isnan (d) ? INFINITY : MAX (me, d);
    mr = MAX (mr, fabs ((double) b[i]));
  }
  return me / mr;
}

static inline gboolean
same_bits (const float *a, const float *b, size_t n)
{
  return memcmp (a, b, n * sizeof (float)) == 0;
}

#define N_STYLES 3

/* A cond op of c channels with random rows in w, b (N_STYLES, c); mix set by the caller. */
static inline NfOp
cond_op (int c, float *w, float *b, const float *mix, NfRng *rng)
{
  nf_rng_fill_uniform (rng, w, (size_t) N_STYLES * c, -1.5f, 1.5f);
  nf_rng_fill_uniform (rng, b, (size_t) N_STYLES * c, -1.0f, 1.0f);
  NfOp op = {.type = NF_OP_COND_INSTANCE_NORM,.name = "cin",.c = c,.eps = 1e-5f,
    .styles = N_STYLES,.weight = w,.bias = b,.mix = mix
  };
  return op;
}
