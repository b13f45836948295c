/* nf-stabilize-motion.c — the global-translation search of the stabilisation (see
 * nf-stabilize-motion.h) and the CPU's grey planes and sums.
 *
 * What it does: the plan (plane sizes, radius, margins), the two-level search that
 * asks its caller for the sums, and the plain C loops that make those sums on the CPU.
 * What it does not: move the stabiliser's state (nf-stabilize.c), or anything on the
 * GPU (nf-cuda-steps.cu makes its sums there).
 */
#include "nf-stabilize-motion.h"

#include <math.h>

gboolean
nf_motion_plan (int w, int h, int search, NfMotionPlan *plan)
{
  int radius = MIN (search, NF_MOTION_SEARCH) / NF_MOTION_COARSE;
  if (radius < 1)
    return FALSE;
  plan->w = w;
  plan->h = h;
  plan->cw = w / NF_MOTION_COARSE;
  plan->ch = h / NF_MOTION_COARSE;
  plan->radius = radius;
  plan->margin = radius * NF_MOTION_COARSE + NF_MOTION_REFINE;
  /* at least 8 coarse rows and columns to compare, 16 grey ones */
  return plan->cw - 2 * radius >= 8 && plan->ch - 2 * radius >= 8
      && w - 2 * plan->margin >= 16 && h - 2 * plan->margin >= 16;
}

void
nf_motion_region (const NfMotionPlan *plan, gboolean coarse, NfMotionRegion *r)
{
  if (coarse) {
    *r = (NfMotionRegion) {
    plan->radius, plan->ch - plan->radius, plan->radius, plan->cw - plan->radius, 1};
  } else {
    *r = (NfMotionRegion) {
    plan->margin, plan->h - plan->margin, plan->margin, plan->w - plan->margin,
          NF_MOTION_STEP};
  }
}

gboolean
nf_motion_find (const NfMotionPlan *plan, NfMotionSadFn sad, gpointer user, int *dx,
    int *dy, GError **error)
{
  int dxy[2 * NF_MOTION_MAX_CANDIDATES];
  double sums[NF_MOTION_MAX_CANDIDATES];
  int R = plan->radius, n = 0;
  *dx = *dy = 0;

  /* coarse: (0, 0) first, so that a tie keeps the camera still */
  dxy[n++] = 0;
  dxy[n++] = 0;
  for (int v = -R; v <= R; v++)
    for (int u = -R; u <= R; u++)
      if (u || v) {
        dxy[n++] = u;
        dxy[n++] = v;
      }
  n /= 2;
  if (!sad (user, TRUE, dxy, n, sums, error))
    return FALSE;
  int best = 0;
  for (int k = 1; k < n; k++)
    if (sums[k] < sums[best])
      best = k;
  int cu = dxy[2 * best] * NF_MOTION_COARSE, cv = dxy[2 * best + 1] * NF_MOTION_COARSE;

  /* fine: (0, 0), then around the coarse best */
  n = 0;
  dxy[n++] = 0;
  dxy[n++] = 0;
  for (int b = -NF_MOTION_REFINE; b <= NF_MOTION_REFINE; b++)
    for (int a = -NF_MOTION_REFINE; a <= NF_MOTION_REFINE; a++)
      if (cu + a || cv + b) {
        dxy[n++] = cu + a;
        dxy[n++] = cv + b;
      }
  n /= 2;
  if (!sad (user, FALSE, dxy, n, sums, error))
    return FALSE;
  best = 0;
  for (int k = 1; k < n; k++)
    if (sums[k] < sums[best])
      best = k;
  if (best > 0 && sums[best] < NF_MOTION_GAIN * sums[0]) {
    *dx = dxy[2 * best];
    *dy = dxy[2 * best + 1];
  }
  return TRUE;
}

void
nf_motion_grey (const float *x, int xw, gsize x_plane, int w, int h, float k, float *g)
{
  float s = k / 3.0f;
  for (int i = 0; i < h; i++) {
    const float *r = x + (gsize) i * xw, *gr = r + x_plane, *b = gr + x_plane;
    float *d = g + (gsize) i * w;
    for (int j = 0; j < w; j++)
      d[j] = (r[j] + gr[j] + b[j]) * s;
  }
}

void
nf_motion_coarsen (const float *g, int w, int h, float *c, int cw, int ch)
{
  const int F = NF_MOTION_COARSE;
  g_return_if_fail (cw * F <= w && ch * F <= h);
  for (int I = 0; I < ch; I++)
    for (int J = 0; J < cw; J++) {
      float s = 0.0f;
      for (int a = 0; a < F; a++)
        for (int b = 0; b < F; b++)
          s += g[(gsize) (I * F + a) * w + J * F + b];
      c[(gsize) I * cw + J] = s / (float) (F * F);
    }
}

double
nf_motion_sad_cpu (const float *a, const float *b, int w, const NfMotionRegion *r, int dx,
    int dy)
{
  double sum = 0.0;
  for (int i = r->i0; i < r->i1; i += r->step) {
    const float *ar = a + (gsize) i * w, *br = b + (gsize) (i - dy) * w - dx;
    float row = 0.0f;
    for (int j = r->j0; j < r->j1; j += r->step)
      row += fabsf (ar[j] - br[j]);
    sum += row;
  }
  return sum;
}

typedef struct {
  const NfMotionPlan *plan;
  const float *ga, *gb, *ca, *cb;
} CpuPlanes;

static gboolean
sad_cpu (gpointer user, gboolean coarse, const int *dxy, int n, double *sums, GError **error)
{
  const CpuPlanes *p = user;
  NfMotionRegion r;
  nf_motion_region (p->plan, coarse, &r);
  for (int k = 0; k < n; k++)
    sums[k] = nf_motion_sad_cpu (coarse ? p->ca : p->ga, coarse ? p->cb : p->gb,
        coarse ? p->plan->cw : p->plan->w, &r, dxy[2 * k], dxy[2 * k + 1]);
  return TRUE;
}

void
nf_motion_find_cpu (const NfMotionPlan *plan, const float *ga, const float *gb,
    const float *ca, const float *cb, int *dx, int *dy)
{
  CpuPlanes p = { plan, ga, gb, ca, cb };
  nf_motion_find (plan, sad_cpu, &p, dx, dy, NULL);     /* the CPU's sums do not fail */
}
