/* nf-optim.h — optimisers: L-BFGS (through liblbfgs) for pixels, Adam for weights.
 *
 * L-BFGS minimises f(x) over a flat double vector. Bounds (pixels in 0..255) are kept
 * the way the lesson does with scipy's fmin_l_bfgs_b: L-BFGS runs in rounds of
 * round_iters iterations and x is clipped into [lo, hi] between rounds (the curvature
 * memory restarts with each round, as it does when the lesson calls fmin_l_bfgs_b
 * again). Within a round x may leave the box slightly; the objective is evaluated where
 * x is. NF_BOUNDS_NONE runs one unbounded L-BFGS of max_iters iterations.
 *
 * Adam works on "parameters, gradients and optimiser state in one flat buffer with
 * named views" (as llm.c): an NfParams holds params | grads | m | v back to back, and
 * each tensor is a named view (offset, count) into all four, so a step is one loop and
 * L-BFGS or a checkpoint sees one flat vector.
 *
 * What it does not: compute objectives (the caller's callback does), schedules (the
 * training tools set lr per step).
 */
#pragma once

#include <glib.h>

#include "nf-tensor.h"

G_BEGIN_DECLS

/* ---- L-BFGS ------------------------------------------------------------------------ */

typedef enum {
  NF_BOUNDS_NONE,
  NF_BOUNDS_CLIP_ROUNDS,        /* rounds of round_iters, clip to [lo, hi] in between */
} NfBoundsMode;

typedef struct {
  int max_iters;                /* total L-BFGS iterations (all rounds) */
  int history;                  /* corrections kept (m), default 10 */
  double epsilon;               /* stop when |g| < epsilon * max(1, |x|); default 1e-10 */
  NfBoundsMode bounds;
  double lo, hi;                /* the box for NF_BOUNDS_CLIP_ROUNDS */
  int round_iters;              /* iterations per round (default 20) */
} NfLbfgsParams;

void nf_lbfgs_params_init (NfLbfgsParams *p);

/* f(x) into *fx and its gradient into g (n values). FALSE + error stops the run. */
typedef gboolean (*NfEvalFn) (gpointer user, const double *x, double *g, size_t n,
    double *fx, GError **error);
/* After each iteration (1-based over all rounds): FALSE stops the run early. */
typedef gboolean (*NfIterFn) (gpointer user, int iter, const double *x, size_t n, double fx,
    int evals);

typedef struct {
  int iters;                    /* iterations done */
  int evals;                    /* objective evaluations */
  double fx;                    /* last objective value */
  int status;                   /* liblbfgs's last return code */
  const char *why;              /* why it stopped, in words */
} NfLbfgsResult;

/* Minimises in place. Returns FALSE only when the callback failed (error set) or the
 * arguments are bad; stopping on a line-search failure (flat or noisy objective) is a
 * normal end, reported in result->why. */
gboolean nf_lbfgs_minimize (double *x, size_t n, const NfLbfgsParams *p, NfEvalFn eval,
    NfIterFn iter, gpointer user, NfLbfgsResult *result, GError **error);

/* ---- flat parameter buffer + Adam -------------------------------------------------- */

typedef struct {
  char *name;
  size_t offset, count;
  int ndim;
  int64_t dims[4];
} NfParamView;

typedef struct {
  size_t n;                     /* total parameter count */
  float *mem;                   /* 4n floats: params | grads | m | v */
  float *params, *grads, *m, *v;
  GArray *views;                /* NfParamView */
} NfParams;

NfParams *nf_params_new (void);
/* Declares a tensor (before nf_params_alloc); returns its index. */
int nf_params_add (NfParams *p, const char *name, int ndim, const int64_t *dims);
/* Allocates the flat buffer, zero-filled. */
gboolean nf_params_alloc (NfParams *p, GError **error);
const NfParamView *nf_params_find (const NfParams *p, const char *name);
float *nf_params_data (NfParams *p, const char *name);       /* NULL if unknown */
float *nf_params_grad (NfParams *p, const char *name);
void nf_params_zero_grads (NfParams *p);
void nf_params_free (NfParams *p);

typedef struct {
  float lr;                     /* 1e-3 */
  float beta1, beta2;           /* 0.9, 0.999 */
  float eps;                    /* 1e-8 */
  float weight_decay;           /* 0: plain Adam; > 0: decoupled (AdamW) */
  int t;                        /* steps taken */
} NfAdam;

void nf_adam_init (NfAdam *a, float lr);
/* One step over the whole buffer from p->grads (bias-corrected). */
void nf_adam_step (NfAdam *a, NfParams *p);

G_END_DECLS
