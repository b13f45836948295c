/* nf-cuda-steps.cu — the steps on a network's output before it becomes pixels, on the
 * GPU: temporal stabilisation and preserve-color (see nf-cuda-steps.h).
 *
 * What it does: three stabilisation kernels on the backend's stream, templated on its
 * layout and type (fp32 NCHW, fp16 NHWC) as nf-cuda-convert.cu's: the weight of each
 * input pixel (the 3x3 mean of the max-channel |x - ref|, nf_stabilize_weight), then
 * ref and the kept output updated with those weights; and one preserve-color kernel
 * (nf_preserve_color_pixel) that writes its result to a buffer of its own, so the kept
 * output stays the network's. The formulas are the CPU path's (nf-stabilize.h,
 * nf-preserve-color.h); the sums run in another order, so the two paths agree within
 * float rounding, not bit for bit. The state (ref, the kept output, the weights)
 * lives in buffers of the backend, grown when the frame size changes.
 * What it does not: pixel conversion (nf-cuda-convert.cu), decide when to reset (the
 * element does), or synchronise.
 */
#include "nf-cuda-steps.h"

#include <string.h>

#include "nf-cuda-private.h"
#include "nf-preserve-color.h"

struct NfCudaSteps {
  NfBackend *be;                /* the backend every buffer below belongs to; NULL: none */
  gboolean valid;               /* ref and prev hold a frame */
  int scale;
  NfShape xs, ys;               /* shapes of ref and prev (the network input / output) */
  void *ref;                    /* xs, levels, the backend's layout and type */
  void *prev;                   /* ys, the kept output */
  float *a;                     /* (h, w) device floats: the weight of the past */
  size_t a_bytes;
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
  s->be->iface->free (s->be, s->color);
  nf_cuda_device_free (s->be, s->a);
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

/* a (h, w) = nf_stabilize_weight (3x3 mean over the pixels inside the frame of
 * max_c |x * k - ref|); 0 on the first frame. */
template <typename L>
__global__ void
stab_weight_kernel (const typename L::T *__restrict__ x, NfDims xd,
    const typename L::T *__restrict__ ref, int w, int h, float k, NfStabilizeParams p,
    bool first, float *__restrict__ a)
{
  size_t n = (size_t) w * h;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    if (first) {
      a[idx] = 0.0f;
      continue;
    }
    int i = (int) (idx / w), j = (int) (idx % w);
    float sum = 0.0f;
    int cnt = 0;
    for (int ii = max (i - 1, 0); ii <= min (i + 1, h - 1); ii++)
      for (int jj = max (j - 1, 0); jj <= min (j + 1, w - 1); jj++) {
        float m = 0.0f;
        for (int c = 0; c < 3; c++) {
          size_t o = nf_off<L::nhwc> (xd, 0, c, ii, jj);
          m = fmaxf (m, fabsf (nf_ld (x + o) * k - nf_ld (ref + o)));
        }
        sum += m;
        cnt++;
      }
    a[idx] = nf_stabilize_weight (&p, sum / (float) cnt);
  }
}

/* ref = a * ref + (1 - a) * x * k over the w x h input pixels (ref = x * k on the
 * first frame, never reading what ref held). */
template <typename L>
__global__ void
stab_ref_kernel (const typename L::T *__restrict__ x, NfDims xd, typename L::T *__restrict__ ref,
    const float *__restrict__ a, int w, int h, float k, bool first)
{
  size_t n = (size_t) w * h;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int i = (int) (idx / w), j = (int) (idx % w);
    float av = a[idx];
    for (int c = 0; c < 3; c++) {
      size_t o = nf_off<L::nhwc> (xd, 0, c, i, j);
      float xv = nf_ld (x + o) * k;
      nf_st (ref + o, first ? xv : av * nf_ld (ref + o) + (1.0f - av) * xv);
    }
  }
}

/* prev = a * prev + (1 - a) * y over the ow x oh output pixels, a of the input pixel
 * each comes from (prev = y on the first frame). */
template <typename L>
__global__ void
stab_blend_kernel (const typename L::T *__restrict__ y, NfDims yd,
    typename L::T *__restrict__ prev, const float *__restrict__ a, int w, int scale, int ow,
    int oh, bool first)
{
  size_t n = (size_t) ow * oh;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int i = (int) (idx / ow), j = (int) (idx % ow);
    float av = a[(size_t) (i / scale) * w + j / scale];
    for (int c = 0; c < 3; c++) {
      size_t o = nf_off<L::nhwc> (yd, 0, c, i, j);
      float yv = nf_ld (y + o);
      nf_st (prev + o, first ? yv : av * nf_ld (prev + o) + (1.0f - av) * yv);
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
  unsigned in_blocks = nf_blocks ((size_t) w * h, NF_THREADS);
  unsigned out_blocks = nf_blocks ((size_t) w * scale * h * scale, NF_THREADS);
  if (be->fp16) {
    typedef NfF16Nhwc L;
    stab_weight_kernel<L> <<<in_blocks, NF_THREADS, 0, st>>> ((const __half *) x, xd,
        (const __half *) s->ref, w, h, x_to_levels, *p, first, s->a);
    stab_ref_kernel<L> <<<in_blocks, NF_THREADS, 0, st>>> ((const __half *) x, xd,
        (__half *) s->ref, s->a, w, h, x_to_levels, first);
    stab_blend_kernel<L> <<<out_blocks, NF_THREADS, 0, st>>> ((const __half *) y, yd,
        (__half *) s->prev, s->a, w, scale, w * scale, h * scale, first);
  } else {
    typedef NfF32Nchw L;
    stab_weight_kernel<L> <<<in_blocks, NF_THREADS, 0, st>>> ((const float *) x, xd,
        (const float *) s->ref, w, h, x_to_levels, *p, first, s->a);
    stab_ref_kernel<L> <<<in_blocks, NF_THREADS, 0, st>>> ((const float *) x, xd,
        (float *) s->ref, s->a, w, h, x_to_levels, first);
    stab_blend_kernel<L> <<<out_blocks, NF_THREADS, 0, st>>> ((const float *) y, yd,
        (float *) s->prev, s->a, w, scale, w * scale, h * scale, first);
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
