/* nf-stabilize-motion.h — the camera's motion between two frames for the temporal
 * stabilisation (nf-stabilize.h): one global integer translation, found by block
 * matching on grey planes, so that a panning camera's output is held where the scene is
 * still relative to the camera's motion rather than only where the pixels are still.
 *
 * What it does: the search, shared by the CPU and CUDA paths. The grey plane of a frame
 * is the mean of its three channels in levels; its coarse plane the NF_MOTION_COARSE x
 * NF_MOTION_COARSE box means of it (the blocks wholly inside). With a = the new frame's
 * plane and b = the reference's, a shift (dx, dy) says a(i, j) ~ b(i - dy, j - dx) (the
 * scene moved right and down by dx, dy pixels). The search:
 *   1. coarse: every (u, v) in [-R, R]^2, R = search / NF_MOTION_COARSE, scored by the
 *      sum of |a - b shifted| over the coarse pixels at least R from every border (the
 *      same pixels for every candidate);
 *   2. fine: (0, 0) and the (2 NF_MOTION_REFINE + 1)^2 shifts around NF_MOTION_COARSE x
 *      the coarse best, on the grey planes, every NF_MOTION_STEP-th row and column of the
 *      pixels at least R * NF_MOTION_COARSE + NF_MOTION_REFINE from every border;
 *   3. the fine best is taken when its sum is below NF_MOTION_GAIN x that of (0, 0);
 *      else (0, 0) (a static camera's noise, flat or repetitive content: no shift).
 * The caller gives the sums (nf_motion_find_cpu makes them here, a kernel on the GPU),
 * so the two paths make the same decision from sums that differ only by float rounding.
 * What it does not: rotation, zoom, subpixel shifts or several moving layers (a shift
 * that does not fit a region leaves its input change large there, and the stabiliser
 * then passes that region through fresh, as it does for any motion); nor tell what is
 * fixed in the frame from the scene where both are flat: during a pan, the held output
 * of a letterbox bar or a flat logo moves with the camera (textured ones are passed
 * through fresh). stabilize-motion=false is for such video.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The largest translation the element searches, in input pixels per frame. */
#define NF_MOTION_SEARCH 16
#define NF_MOTION_COARSE 4      /* the coarse plane's box size */
#define NF_MOTION_REFINE 2      /* the fine search's radius around the coarse best */
#define NF_MOTION_STEP 2        /* the fine sums read every second row and column */
#define NF_MOTION_GAIN 0.8f     /* a shift must beat no shift by this factor */
#define NF_MOTION_MAX_CANDIDATES 81     /* (2 R + 1)^2 for R = NF_MOTION_SEARCH / 4 */

typedef struct {
  int w, h;                     /* grey plane */
  int cw, ch;                   /* coarse plane */
  int radius;                   /* coarse search radius, coarse pixels */
  int margin;                   /* fine sums: the border left out, grey pixels */
} NfMotionPlan;

/* The plan for w x h frames and a search of up to `search` pixels (rounded down to a
 * multiple of NF_MOTION_COARSE, at most NF_MOTION_SEARCH). FALSE when search is below
 * NF_MOTION_COARSE or the frame is too small to search (then: no shift). */
gboolean nf_motion_plan (int w, int h, int search, NfMotionPlan * plan);

/* The pixel set of a level: rows i0..i1-1, columns j0..j1-1, every step-th. */
typedef struct {
  int i0, i1, j0, j1, step;
} NfMotionRegion;

void nf_motion_region (const NfMotionPlan * plan, gboolean coarse, NfMotionRegion * r);

/* sums[k] = the sum over the level's region of |a(i, j) - b(i - dxy[2k+1], j - dxy[2k])|,
 * k < n, on the coarse planes or the grey ones. */
typedef gboolean (*NfMotionSadFn) (gpointer user, gboolean coarse, const int *dxy, int n,
    double *sums, GError ** error);

/* The search above: *dx, *dy the shift taken ((0, 0) for none). */
gboolean nf_motion_find (const NfMotionPlan * plan, NfMotionSadFn sad, gpointer user,
    int *dx, int *dy, GError ** error);

/* ---- the CPU's planes and sums ------------------------------------------------------- */

/* g (h, w) = k * (x0 + x1 + x2) / 3 of 3 planes x_plane floats apart, rows xw apart. */
void nf_motion_grey (const float *x, int xw, gsize x_plane, int w, int h, float k, float *g);
/* c (ch, cw) = the NF_MOTION_COARSE-box means of g (h, w). */
void nf_motion_coarsen (const float *g, int w, int h, float *c, int cw, int ch);
/* The sum over r of |a(i, j) - b(i - dy, j - dx)|, planes of row length w. */
double nf_motion_sad_cpu (const float *a, const float *b, int w, const NfMotionRegion * r,
    int dx, int dy);
/* nf_motion_find on the CPU: ga, gb the grey planes (plan->w x plan->h) of the new frame
 * and the reference, ca, cb their coarse planes. */
void nf_motion_find_cpu (const NfMotionPlan * plan, const float *ga, const float *gb,
    const float *ca, const float *cb, int *dx, int *dy);

G_END_DECLS
