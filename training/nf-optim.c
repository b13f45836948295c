/* nf-optim.c — L-BFGS through liblbfgs (with the lesson's clip-between-rounds bounds)
 * and Adam over one flat parameter buffer with named views.
 *
 * What it does: wraps lbfgs() so that objectives report errors through GError, counts
 * iterations and evaluations across rounds, clips into the box between rounds; lays
 * out params | grads | m | v in one 64-byte aligned allocation for Adam.
 * What it does not: line searches of its own (liblbfgs's Moré-Thuente is used), or
 * learning-rate schedules.
 */
#include "nf-optim.h"

#include <lbfgs.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "nf-error.h"

void
nf_lbfgs_params_init (NfLbfgsParams *p)
{
  memset (p, 0, sizeof (*p));
  p->max_iters = 100;
  p->history = 10;
  p->epsilon = 1e-10;
  p->bounds = NF_BOUNDS_NONE;
  p->lo = 0.0;
  p->hi = 255.0;
  p->round_iters = 20;
}

typedef struct {
  NfEvalFn eval;
  NfIterFn iter;
  gpointer user;
  GError *error;
  int evals;
  int base;                     /* iterations of earlier rounds */
  int k;                        /* iterations of this round */
  gboolean canceled;
} Ctx;

static lbfgsfloatval_t
evaluate (void *inst, const lbfgsfloatval_t *x, lbfgsfloatval_t *g, const int n,
    const lbfgsfloatval_t step)
{
  Ctx *c = inst;
  double fx = 0.0;
  if (!c->error) {
    c->evals++;
    if (c->eval (c->user, x, g, (size_t) n, &fx, &c->error))
      return fx;
  }
  /* Failed: make the line search give up quickly (the error is reported after). */
  memset (g, 0, sizeof (double) * n);
  return 1e300;
}

static int
progress (void *inst, const lbfgsfloatval_t *x, const lbfgsfloatval_t *g,
    const lbfgsfloatval_t fx, const lbfgsfloatval_t xnorm, const lbfgsfloatval_t gnorm,
    const lbfgsfloatval_t step, int n, int k, int ls)
{
  Ctx *c = inst;
  c->k = k;
  if (c->error)
    return 1;
  if (c->iter && !c->iter (c->user, c->base + k, x, (size_t) n, fx, c->evals)) {
    c->canceled = TRUE;
    return 1;
  }
  return 0;
}

static const char *
status_text (int s)
{
  switch (s) {
    case LBFGS_SUCCESS:
      return "converged (gradient below epsilon)";
    case LBFGS_STOP:
      return "converged (no further decrease)";
    case LBFGS_ALREADY_MINIMIZED:
      return "already at a minimum";
    case LBFGSERR_MAXIMUMITERATION:
      return "reached the iteration limit";
    case LBFGSERR_ROUNDING_ERROR:
      return "line search stopped by rounding errors (at float precision)";
    case LBFGSERR_MINIMUMSTEP:
    case LBFGSERR_MAXIMUMSTEP:
      return "line search step out of range";
    case LBFGSERR_MAXIMUMLINESEARCH:
      return "line search found no decrease";
    case LBFGSERR_INCREASEGRADIENT:
      return "not a descent direction (noisy gradient)";
    case LBFGSERR_CANCELED:
      return "stopped by the caller";
    default:
      return "liblbfgs error";
  }
}

gboolean
nf_lbfgs_minimize (double *x, size_t n, const NfLbfgsParams *p, NfEvalFn eval,
    NfIterFn iter, gpointer user, NfLbfgsResult *result, GError **error)
{
  NfLbfgsResult dummy;
  if (!result)
    result = &dummy;
  memset (result, 0, sizeof (*result));
  if (n == 0 || n > INT_MAX || p->max_iters < 1 || p->history < 1
      || (p->bounds == NF_BOUNDS_CLIP_ROUNDS && (p->round_iters < 1 || !(p->lo < p->hi)))) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "L-BFGS: bad arguments (n %zu, iterations %d, history %d, round %d, box %g..%g)",
        n, p->max_iters, p->history, p->round_iters, p->lo, p->hi);
    return FALSE;
  }
  lbfgs_parameter_t lp;
  lbfgs_parameter_init (&lp);
  lp.m = p->history;
  lp.epsilon = p->epsilon;
  lp.linesearch = LBFGS_LINESEARCH_MORETHUENTE;

  /* liblbfgs may be built with SSE and then wants its own aligned vector. */
  lbfgsfloatval_t *xv = lbfgs_malloc ((int) n);
  if (!xv) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "L-BFGS: out of memory for %zu values",
        n);
    return FALSE;
  }
  memcpy (xv, x, sizeof (double) * n);

  /* x at the start of a round: a round that ends (after clipping) where it started
   * has converged on the box. */
  double *start = p->bounds == NF_BOUNDS_CLIP_ROUNDS ? g_try_new (double, n) : NULL;
  if (p->bounds == NF_BOUNDS_CLIP_ROUNDS && !start) {
    lbfgs_free (xv);
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND, "L-BFGS: out of memory for %zu values",
        n);
    return FALSE;
  }
  Ctx c = { .eval = eval, .iter = iter, .user = user };
  int done = 0, status = LBFGSERR_MAXIMUMITERATION;
  gboolean on_box = FALSE;
  double fx = NAN;
  while (done < p->max_iters) {
    int left = p->max_iters - done;
    lp.max_iterations = p->bounds == NF_BOUNDS_CLIP_ROUNDS ? MIN (p->round_iters, left) : left;
    c.base = done;
    c.k = 0;
    if (start)
      memcpy (start, xv, sizeof (double) * n);
    status = lbfgs ((int) n, xv, &fx, evaluate, progress, &c, &lp);
    done += c.k;
    if (c.error || c.canceled)
      break;
    gboolean clipped = FALSE;
    if (p->bounds == NF_BOUNDS_CLIP_ROUNDS)
      for (size_t i = 0; i < n; i++) {
        if (xv[i] < p->lo) {
          xv[i] = p->lo;
          clipped = TRUE;
        } else if (xv[i] > p->hi) {
          xv[i] = p->hi;
          clipped = TRUE;
        }
      }
    if (p->bounds == NF_BOUNDS_NONE)
      break;
    if (clipped) {
      double moved = 0.0;
      for (size_t i = 0; i < n; i++)
        moved = MAX (moved, fabs (xv[i] - start[i]));
      if (moved <= 1e-9 * (p->hi - p->lo)) {
        on_box = TRUE;
        break;
      }
    }
    if (status == LBFGSERR_MAXIMUMITERATION)
      continue;
    /* Converged, or the line search gave up: another round helps only if clipping
     * moved x, and only if this round made progress. */
    if (!clipped || c.k == 0)
      break;
  }
  memcpy (x, xv, sizeof (double) * n);
  lbfgs_free (xv);
  g_free (start);
  result->iters = done;
  result->evals = c.evals;
  result->fx = fx;
  result->status = status;
  result->why = on_box ? "converged on the bounds (clipping undid the whole round)"
      : status_text (c.canceled ? LBFGSERR_CANCELED : status);
  if (c.error) {
    g_propagate_prefixed_error (error, c.error, "L-BFGS iteration %d: ", done + 1);
    return FALSE;
  }
  return TRUE;
}

/* ---- flat parameter buffer ----------------------------------------------------------- */

NfParams *
nf_params_new (void)
{
  NfParams *p = g_new0 (NfParams, 1);
  p->views = g_array_new (FALSE, TRUE, sizeof (NfParamView));
  return p;
}

int
nf_params_add (NfParams *p, const char *name, int ndim, const int64_t *dims)
{
  NfParamView v = { .name = g_strdup (name), .offset = p->n, .count = 1, .ndim = ndim };
  for (int i = 0; i < ndim && i < 4; i++) {
    v.dims[i] = dims[i];
    v.count *= (size_t) dims[i];
  }
  /* keep every view 16-float (64-byte) aligned */
  p->n += (v.count + 15) & ~(size_t) 15;
  g_array_append_val (p->views, v);
  return (int) p->views->len - 1;
}

gboolean
nf_params_alloc (NfParams *p, GError **error)
{
  nf_free (p->mem);
  p->mem = nf_alloc_floats (4 * MAX (p->n, 1));
  if (!p->mem) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
        "out of memory for %zu parameters (with gradients and Adam state)", p->n);
    return FALSE;
  }
  p->params = p->mem;
  p->grads = p->mem + p->n;
  p->m = p->mem + 2 * p->n;
  p->v = p->mem + 3 * p->n;
  return TRUE;
}

const NfParamView *
nf_params_find (const NfParams *p, const char *name)
{
  for (guint i = 0; i < p->views->len; i++) {
    const NfParamView *v = &g_array_index (p->views, NfParamView, i);
    if (g_str_equal (v->name, name))
      return v;
  }
  return NULL;
}

float *
nf_params_data (NfParams *p, const char *name)
{
  const NfParamView *v = nf_params_find (p, name);
  return v && p->params ? p->params + v->offset : NULL;
}

float *
nf_params_grad (NfParams *p, const char *name)
{
  const NfParamView *v = nf_params_find (p, name);
  return v && p->grads ? p->grads + v->offset : NULL;
}

void
nf_params_zero_grads (NfParams *p)
{
  if (p->grads)
    memset (p->grads, 0, sizeof (float) * p->n);
}

void
nf_params_free (NfParams *p)
{
  if (!p)
    return;
  for (guint i = 0; i < p->views->len; i++)
    g_free (g_array_index (p->views, NfParamView, i).name);
  g_array_free (p->views, TRUE);
  nf_free (p->mem);
  g_free (p);
}

/* ---- Adam ---------------------------------------------------------------------------- */

void
nf_adam_init (NfAdam *a, float lr)
{
  a->lr = lr;
  a->beta1 = 0.9f;
  a->beta2 = 0.999f;
  a->eps = 1e-8f;
  a->weight_decay = 0.0f;
  a->t = 0;
}

void
nf_adam_step (NfAdam *a, NfParams *p)
{
  a->t++;
  float b1 = a->beta1, b2 = a->beta2;
  float c1 = 1.0f - powf (b1, (float) a->t), c2 = 1.0f - powf (b2, (float) a->t);
  float lr = a->lr, eps = a->eps, wd = a->weight_decay;
  float *w = p->params, *g = p->grads, *m = p->m, *v = p->v;
  size_t n = p->n;
#pragma omp parallel for simd if (n > 65536) schedule(static)
  for (size_t i = 0; i < n; i++) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    float mh = m[i] / c1, vh = v[i] / c2;
    w[i] -= lr * (mh / (sqrtf (vh) + eps) + wd * w[i]);
  }
}
