/* nf-cuda-steps.cu — the steps on a network's output before it becomes pixels, on the
 * GPU: temporal stabilisation and preserve-color (see nf-cuda-steps.h).
 *
 * What it does: the camera-motion search's planes and sums (grey and coarse planes of
 * x and ref, one kernel for the sums of every candidate shift, copied back for
 * nf_motion_find: two waits on the stream per frame, for about a hundred doubles);
 * three stabilisation kernels on the backend's stream, templated on its layout and type
 * (fp32 NCHW, fp16 NHWC) as nf-cuda-convert.cu's: the weight of each input pixel (the
 * 3x3 mean of the max-channel |x - ref moved by the shift|, nf_stabilize_weight), then
 * ref and the kept output updated with those weights (into second buffers, swapped in,
 * when the state moved); and one preserve-color kernel
 * (nf_preserve_color_pixel) that writes its result to a buffer of its own, so the kept
 * output stays the network's. The formulas are the CPU path's (nf-stabilize.h,
 * nf-preserve-color.h); the sums run in another order, so the two paths agree within
 * float rounding, not bit for bit. The state (ref, the kept output, the weights)
 * lives in buffers of the backend, grown when the frame size changes.
 * What it does not: pixel conversion (nf-cuda-convert.cu), decide when to reset (the
 * element does), or synchronise beyond the motion search's two small copies.
 */
#include "nf-cuda-steps.h"

#include <string.h>

#include "nf-cuda-private.h"
#include "nf-preserve-color.h"
#include "nf-stabilize-motion.h"

struct NfCudaSteps {
  NfBackend *be;                /* the backend every buffer below belongs to; NULL: none */
  gboolean valid;               /* ref and prev hold a frame */
  int scale;
  NfShape xs, ys;               /* shapes of ref and prev (the network input / output) */
  void *ref;                    /* xs, levels, the backend's layout and type */
  void *prev;                   /* ys, the kept output */
  void *ref2, *prev2;           /* where a moved state is written (then swapped in) */
  NfShape xs2, ys2;
  float *a;                     /* (h, w) device floats: the weight of the past */
  size_t a_bytes;
  float *grey;                  /* (2, h, w): grey planes of x and ref, then (2, ch, cw)
                                 * their coarse planes (motion search) */
  size_t grey_bytes;
  double *sums;                 /* (NF_MOTION_MAX_CANDIDATES) the search's sums */
  int dx, dy;                   /* the last frame's camera motion */
  void *color;                  /* cs: preserve-color's result */
  NfShape cs;
};

NfCudaSteps *
nf_cuda_steps_new (void)
{
  return g_new0 (NfCudaSteps, 1);
}

void
nf_cuda_steps_release (NfCudaSteps *s)
{
  if (!s || !s->be)
    return;
  s->be->iface->free (s->be, s->ref);
  s->be->iface->free (s->be, s->prev);
  s->be->iface->free (s->be, s->ref2);
  s->be->iface->free (s->be, s->prev2);
  s->be->iface->free (s->be, s->color);
  nf_cuda_device_free (s->be, s->a);
  nf_cuda_device_free (s->be, s->grey);
  nf_cuda_device_free (s->be, s->sums);
  memset (s, 0, sizeof *s);
}

void
nf_cuda_steps_free (NfCudaSteps *s)
{
  nf_cuda_steps_release (s);
  g_free (s);
}

void
nf_cuda_steps_reset (NfCudaSteps *s)
{
  s->valid = FALSE;
}

/* ---- kernels --------------------------------------------------------------------------- */

/* g (h, w) = k * (x0 + x1 + x2) / 3 (nf_motion_grey). */
template <typename L>
__global__ void
grey_kernel (const typename L::T *__restrict__ x, NfDims xd, int w, int h, float k,
    float *__restrict__ g)
{
  size_t n = (size_t) w * h;
  float s = k / 3.0f;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int i = (int) (idx / w), j = (int) (idx % w);
    g[idx] = (nf_ld (x + nf_off<L::nhwc> (xd, 0, 0, i, j))
        + nf_ld (x + nf_off<L::nhwc> (xd, 0, 1, i, j))
        + nf_ld (x + nf_off<L::nhwc> (xd, 0, 2, i, j))) * s;
  }
}

/* c (ch, cw) = the NF_MOTION_COARSE-box means of g (h, w) (nf_motion_coarsen). */
__global__ void
coarsen_kernel (const float *__restrict__ g, int w, float *__restrict__ c, int cw, int ch)
{
  const int F = NF_MOTION_COARSE;
  size_t n = (size_t) cw * ch;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int I = (int) (idx / cw), J = (int) (idx % cw);
    float s = 0.0f;
    for (int a = 0; a < F; a++)
      for (int b = 0; b < F; b++)
        s += g[(size_t) (I * F + a) * w + J * F + b];
    c[idx] = s / (float) (F * F);
  }
}

struct MotionCandidates {
  int dxy[2 * NF_MOTION_MAX_CANDIDATES];
};

/* sums[k] += the sum over region r of |a(i, j) - b(i - dy_k, j - dx_k)|, k = blockIdx.y
 * (nf_motion_sad_cpu); planes of row length w; sums zeroed before. */
__global__ void
sad_kernel (const float *__restrict__ a, const float *__restrict__ b, int w,
    NfMotionRegion r, MotionCandidates cand, double *__restrict__ sums)
{
  __shared__ float part[NF_THREADS];
  int k = blockIdx.y, dx = cand.dxy[2 * k], dy = cand.dxy[2 * k + 1];
  int rows = (r.i1 - r.i0 + r.step - 1) / r.step, cols = (r.j1 - r.j0 + r.step - 1) / r.step;
  size_t n = (size_t) rows * cols;
  float s = 0.0f;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int i = r.i0 + (int) (idx / cols) * r.step, j = r.j0 + (int) (idx % cols) * r.step;
    s += fabsf (a[(size_t) i * w + j] - b[(size_t) (i - dy) * w + j - dx]);
  }
  part[threadIdx.x] = s;
  __syncthreads ();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if ((int) threadIdx.x < half)
      part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads ();
  }
  if (threadIdx.x == 0)
    atomicAdd (&sums[k], (double) part[0]);
}

/* a (h, w) = nf_stabilize_weight (3x3 mean over the pixels inside the frame of
 * max_c |x * k - ref(i - dy, j - dx)|), a neighbour whose source is outside counting
 * p.hi, and 0 where the pixel's own source is outside; 0 on the first frame. */
template <typename L>
__global__ void
stab_weight_kernel (const typename L::T *__restrict__ x, NfDims xd,
    const typename L::T *__restrict__ ref, int w, int h, int dx, int dy, float k,
    NfStabilizeParams p, bool first, float *__restrict__ a)
{
  size_t n = (size_t) w * h;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int i = (int) (idx / w), j = (int) (idx % w);
    if (first || i - dy < 0 || i - dy >= h || j - dx < 0 || j - dx >= w) {
      a[idx] = 0.0f;
      continue;
    }
    float sum = 0.0f;
    int cnt = 0;
    for (int ii = max (i - 1, 0); ii <= min (i + 1, h - 1); ii++)
      for (int jj = max (j - 1, 0); jj <= min (j + 1, w - 1); jj++) {
        int si = ii - dy, sj = jj - dx;
        float m = 0.0f;
        if (si < 0 || si >= h || sj < 0 || sj >= w)
          m = p.hi;
        else
          for (int c = 0; c < 3; c++)
            m = fmaxf (m, fabsf (nf_ld (x + nf_off<L::nhwc> (xd, 0, c, ii, jj)) * k
                    - nf_ld (ref + nf_off<L::nhwc> (xd, 0, c, si, sj))));
        sum += m;
        cnt++;
      }
    a[idx] = nf_stabilize_weight (&p, sum / (float) cnt);
  }
}

/* ref_out = a * ref_in(i - dy, j - dx) + (1 - a) * x * k over the w x h input pixels
 * (x * k on the first frame and where a is 0, never reading ref_in there). ref_in and
 * ref_out are the same buffer when the state does not move. */
template <typename L>
__global__ void
stab_ref_kernel (const typename L::T *__restrict__ x, NfDims xd, const typename L::T *ref_in,
    typename L::T *ref_out, const float *__restrict__ a, int w, int h, int dx, int dy,
    float k, bool first)
{
  size_t n = (size_t) w * h;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int i = (int) (idx / w), j = (int) (idx % w);
    float av = first ? 0.0f : a[idx];
    for (int c = 0; c < 3; c++) {
      float xv = nf_ld (x + nf_off<L::nhwc> (xd, 0, c, i, j)) * k;
      float past = av > 0.0f ? nf_ld (ref_in + nf_off<L::nhwc> (xd, 0, c, i - dy, j - dx))
          : 0.0f;
      nf_st (ref_out + nf_off<L::nhwc> (xd, 0, c, i, j), av * past + (1.0f - av) * xv);
    }
  }
}

/* prev_out = a * prev_in(i - ody, j - odx) + (1 - a) * y over the ow x oh output pixels,
 * a of the input pixel each comes from (y on the first frame and where a is 0). */
template <typename L>
__global__ void
stab_blend_kernel (const typename L::T *__restrict__ y, NfDims yd, const typename L::T *prev_in,
    typename L::T *prev_out, const float *__restrict__ a, int w, int scale, int ow, int oh,
    int odx, int ody, bool first)
{
  size_t n = (size_t) ow * oh;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int i = (int) (idx / ow), j = (int) (idx % ow);
    float av = first ? 0.0f : a[(size_t) (i / scale) * w + j / scale];
    for (int c = 0; c < 3; c++) {
      float yv = nf_ld (y + nf_off<L::nhwc> (yd, 0, c, i, j));
      float past = av > 0.0f ? nf_ld (prev_in + nf_off<L::nhwc> (yd, 0, c, i - ody, j - odx))
          : 0.0f;
      nf_st (prev_out + nf_off<L::nhwc> (yd, 0, c, i, j), av * past + (1.0f - av) * yv);
    }
  }
}

/* z = nf_preserve_color_pixel (y, x) over w x h pixels. */
template <typename L>
__global__ void
keep_color_kernel (const typename L::T *__restrict__ y, NfDims yd,
    const typename L::T *__restrict__ x, NfDims xd, typename L::T *__restrict__ z, int w,
    int h, float xm, float xb, float kr, float kb)
{
  size_t n = (size_t) w * h;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int i = (int) (idx / w), j = (int) (idx % w);
    float rgb[3], xv[3];
    for (int c = 0; c < 3; c++) {
      rgb[c] = nf_ld (y + nf_off<L::nhwc> (yd, 0, c, i, j));
      xv[c] = nf_ld (x + nf_off<L::nhwc> (xd, 0, c, i, j));
    }
    nf_preserve_color_pixel (rgb, xv, xm, xb, kr, kb);
    for (int c = 0; c < 3; c++)
      nf_st (z + nf_off<L::nhwc> (yd, 0, c, i, j), rgb[c]);
  }
}

/* ---- state ------------------------------------------------------------------------------ */

static gboolean
check_backend (NfCudaSteps *s, NfBackend *be, GError **error)
{
  if (!nf_cuda_is_backend (be)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "not a CUDA backend");
    return FALSE;
  }
  if (s->be && s->be != be) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "the frame steps still hold buffers "
        "of another backend (nf_cuda_steps_release was not called when it went)");
    return FALSE;
  }
  return TRUE;
}

/* *buf: a buffer of be of shape want (*have: its shape), reallocated when it differs. */
static gboolean
ensure_buf (NfBackend *be, void **buf, NfShape *have, NfShape want, GError **error)
{
  if (*buf && nf_shape_equal (*have, want))
    return TRUE;
  be->iface->free (be, *buf);
  *buf = be->iface->alloc (be, want, error);
  *have = want;
  return *buf != NULL;
}

static gboolean
check_image (NfCudaBackend *be, const void *t, NfShape s, int w, int h, const char *what,
    GError **error)
{
  if (s.n != 1 || s.c != 3 || s.w < w || s.h < h) {
    g_set_error (error, NF_ERROR, NF_ERROR_SHAPE,
        "%s tensor %dx%dx%dx%d cannot hold a 3-channel %dx%d image", what, s.n, s.c, s.h,
        s.w, w, h);
    return FALSE;
  }
  return nf_cuda_check_buf (be, t, s, what, error);
}

/* ---- the camera's motion ---------------------------------------------------------------- */

typedef struct {
  NfCudaSteps *s;
  NfCudaBackend *be;
  NfMotionPlan plan;
  float *gx, *gr, *cx, *cr;     /* device planes (in s->grey) */
} SadCtx;

/* nf_motion_find's sums: one kernel for every candidate, the sums copied back (the
 * stream waits for them). */
static gboolean
sad_cuda (gpointer user, gboolean coarse, const int *dxy, int n, double *sums,
    GError **error)
{
  SadCtx *c = (SadCtx *) user;
  cudaStream_t st = c->be->stream;
  NfMotionRegion r;
  nf_motion_region (&c->plan, coarse, &r);
  MotionCandidates cand;
  memcpy (cand.dxy, dxy, sizeof (int) * 2 * n);
  int rows = (r.i1 - r.i0 + r.step - 1) / r.step, cols = (r.j1 - r.j0 + r.step - 1) / r.step;
  dim3 grid (MIN (nf_blocks ((size_t) rows * cols, NF_THREADS), 64u), (unsigned) n);
  NF_CUDA_TRY (cudaMemsetAsync (c->s->sums, 0, sizeof (double) * n, st), error);
  sad_kernel <<<grid, NF_THREADS, 0, st>>> (coarse ? c->cx : c->gx, coarse ? c->cr : c->gr,
      coarse ? c->plan.cw : c->plan.w, r, cand, c->s->sums);
  if (!nf_cuda_launch_ok ("sad_kernel", error))
    return FALSE;
  NF_CUDA_TRY (cudaMemcpyAsync (sums, c->s->sums, sizeof (double) * n,
          cudaMemcpyDeviceToHost, st), error);
  NF_CUDA_TRY (nf_cuda_counted_sync (st), error);
  return TRUE;
}

/* s->dx, s->dy: x's translation against ref ((0, 0) when the search is off or the frame
 * too small to search). */
static gboolean
find_motion (NfCudaSteps *s, NfCudaBackend *be, const NfStabilizeParams *p, const void *x,
    NfDims xd, int w, int h, float k, GError **error)
{
  SadCtx c;
  memset (&c, 0, sizeof c);
  c.s = s;
  c.be = be;
  if (!nf_motion_plan (w, h, p->search, &c.plan))
    return TRUE;
  size_t n = (size_t) w * h, cn = (size_t) c.plan.cw * c.plan.ch;
  size_t bytes = sizeof (float) * 2 * (n + cn);
  if (s->grey_bytes < bytes) {
    nf_cuda_device_free (s->be, s->grey);
    s->grey_bytes = 0;
    if (!(s->grey = (float *) nf_cuda_device_alloc (s->be, bytes, error)))
      return FALSE;
    s->grey_bytes = bytes;
  }
  if (!s->sums && !(s->sums = (double *) nf_cuda_device_alloc (s->be,
              sizeof (double) * NF_MOTION_MAX_CANDIDATES, error)))
    return FALSE;
  c.gx = s->grey;
  c.gr = c.gx + n;
  c.cx = c.gr + n;
  c.cr = c.cx + cn;
  cudaStream_t st = be->stream;
  unsigned blocks = nf_blocks (n, NF_THREADS), cblocks = nf_blocks (cn, NF_THREADS);
  if (be->fp16) {
    grey_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, st>>> ((const __half *) x, xd, w, h, k,
        c.gx);
    grey_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, st>>> ((const __half *) s->ref, xd, w,
        h, 1.0f, c.gr);
  } else {
    grey_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, st>>> ((const float *) x, xd, w, h, k,
        c.gx);
    grey_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, st>>> ((const float *) s->ref, xd, w,
        h, 1.0f, c.gr);
  }
  coarsen_kernel <<<cblocks, NF_THREADS, 0, st>>> (c.gx, w, c.cx, c.plan.cw, c.plan.ch);
  coarsen_kernel <<<cblocks, NF_THREADS, 0, st>>> (c.gr, w, c.cr, c.plan.cw, c.plan.ch);
  if (!nf_cuda_launch_ok ("motion planes", error))
    return FALSE;
  return nf_motion_find (&c.plan, sad_cuda, &c, &s->dx, &s->dy, error);
}

/* ---- entry points ---------------------------------------------------------------------- */

gboolean
nf_cuda_steps_stabilize (NfCudaSteps *s, NfBackend *base, const NfStabilizeParams *p,
    const void *x, NfShape xs, int w, int h, float x_to_levels, const void *y, NfShape ys,
    int scale, const void **out, GError **error)
{
  if (!check_backend (s, base, error))
    return FALSE;
  NfCudaBackend *be = NF_CUDA (base);
  if (w < 1 || h < 1 || scale < 1 || !(p->lo < p->hi)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "stabilize: a %dx%d frame, scale %d, "
        "ramp %g..%g", w, h, scale, p->lo, p->hi);
    return FALSE;
  }
  if (!check_image (be, x, xs, w, h, "stabilize input", error)
      || !check_image (be, y, ys, w * scale, h * scale, "stabilize output", error))
    return FALSE;
  s->be = base;
  if (!nf_shape_equal (xs, s->xs) || !nf_shape_equal (ys, s->ys) || scale != s->scale)
    s->valid = FALSE;
  if (!ensure_buf (base, &s->ref, &s->xs, xs, error)
      || !ensure_buf (base, &s->prev, &s->ys, ys, error)) {
    s->valid = FALSE;
    return FALSE;
  }
  s->scale = scale;
  size_t a_bytes = (size_t) w * h * sizeof (float);
  if (s->a_bytes < a_bytes) {
    nf_cuda_device_free (base, s->a);
    s->a_bytes = 0;
    if (!(s->a = (float *) nf_cuda_device_alloc (base, a_bytes, error))) {
      s->valid = FALSE;
      return FALSE;
    }
    s->a_bytes = a_bytes;
  }

  bool first = !s->valid;
  NfDims xd = nf_dims (xs), yd = nf_dims (ys);
  cudaStream_t st = be->stream;
  s->dx = s->dy = 0;
  if (!first && !find_motion (s, be, p, x, xd, w, h, x_to_levels, error)) {
    s->valid = FALSE;
    return FALSE;
  }
  bool moved = s->dx || s->dy;
  if (moved && (!ensure_buf (base, &s->ref2, &s->xs2, xs, error)
          || !ensure_buf (base, &s->prev2, &s->ys2, ys, error))) {
    s->valid = FALSE;
    return FALSE;
  }
  int dx = s->dx, dy = s->dy;
  unsigned in_blocks = nf_blocks ((size_t) w * h, NF_THREADS);
  unsigned out_blocks = nf_blocks ((size_t) w * scale * h * scale, NF_THREADS);
  void *ref_out = moved ? s->ref2 : s->ref, *prev_out = moved ? s->prev2 : s->prev;
  if (be->fp16) {
    typedef NfF16Nhwc L;
    stab_weight_kernel<L> <<<in_blocks, NF_THREADS, 0, st>>> ((const __half *) x, xd,
        (const __half *) s->ref, w, h, dx, dy, x_to_levels, *p, first, s->a);
    stab_ref_kernel<L> <<<in_blocks, NF_THREADS, 0, st>>> ((const __half *) x, xd,
        (const __half *) s->ref, (__half *) ref_out, s->a, w, h, dx, dy, x_to_levels, first);
    stab_blend_kernel<L> <<<out_blocks, NF_THREADS, 0, st>>> ((const __half *) y, yd,
        (const __half *) s->prev, (__half *) prev_out, s->a, w, scale, w * scale,
        h * scale, dx * scale, dy * scale, first);
  } else {
    typedef NfF32Nchw L;
    stab_weight_kernel<L> <<<in_blocks, NF_THREADS, 0, st>>> ((const float *) x, xd,
        (const float *) s->ref, w, h, dx, dy, x_to_levels, *p, first, s->a);
    stab_ref_kernel<L> <<<in_blocks, NF_THREADS, 0, st>>> ((const float *) x, xd,
        (const float *) s->ref, (float *) ref_out, s->a, w, h, dx, dy, x_to_levels, first);
    stab_blend_kernel<L> <<<out_blocks, NF_THREADS, 0, st>>> ((const float *) y, yd,
        (const float *) s->prev, (float *) prev_out, s->a, w, scale, w * scale, h * scale,
        dx * scale, dy * scale, first);
  }
  if (moved) {                  /* the new state becomes the state */
    void *t = s->ref;
    s->ref = s->ref2;
    s->ref2 = t;
    t = s->prev;
    s->prev = s->prev2;
    s->prev2 = t;
  }
  if (!nf_cuda_launch_ok ("stabilize kernels", error)) {
    s->valid = FALSE;
    return FALSE;
  }
  s->valid = TRUE;
  *out = s->prev;
  return TRUE;
}

gboolean
nf_cuda_steps_preserve_color (NfCudaSteps *s, NfBackend *base, const void *y, NfShape ys,
    const void *x, NfShape xs, int w, int h, float xm, float xb, float kr, float kb,
    const void **out, GError **error)
{
  if (!check_backend (s, base, error))
    return FALSE;
  NfCudaBackend *be = NF_CUDA (base);
  if (w < 1 || h < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "preserve-color: a %dx%d frame", w, h);
    return FALSE;
  }
  if (!check_image (be, y, ys, w, h, "preserve-color output", error)
      || !check_image (be, x, xs, w, h, "preserve-color input", error))
    return FALSE;
  s->be = base;
  if (!ensure_buf (base, &s->color, &s->cs, ys, error))
    return FALSE;
  NfDims yd = nf_dims (ys), xd = nf_dims (xs);
  unsigned blocks = nf_blocks ((size_t) w * h, NF_THREADS);
  cudaStream_t st = be->stream;
  if (be->fp16)
    keep_color_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, st>>> ((const __half *) y, yd,
        (const __half *) x, xd, (__half *) s->color, w, h, xm, xb, kr, kb);
  else
    keep_color_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, st>>> ((const float *) y, yd,
        (const float *) x, xd, (float *) s->color, w, h, xm, xb, kr, kb);
  if (!nf_cuda_launch_ok ("keep_color_kernel", error))
    return FALSE;
  *out = s->color;
  return TRUE;
}
