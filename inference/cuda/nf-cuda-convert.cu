/* nf-cuda-convert.cu — pixel frames <-> network tensors on the GPU (see
 * nf-cuda-convert.h for the contract).
 *
 * What it does: four kernels, each templated on the tensor layout/type:
 *  - packed RGB family -> tensor: one thread per tensor pixel, reading the reflected
 *    source pixel (so padding costs nothing extra);
 *  - I420/NV12 -> tensor: the same, through the Y'CbCr -> RGB matrix;
 *  - tensor -> packed RGB family: one thread per output pixel, blend and rounding as
 *    nf-convert.c's pack_one (NaN saturates by its sign bit, like ORC), alpha from the
 *    source frame or 255;
 *  - tensor -> I420/NV12: one thread per 2x2 block: four lumas, one chroma pair
 *    (the mean of the block's pixels inside the frame).
 * Every float operation is an explicit round-to-nearest intrinsic (__fmul_rn,
 * __fadd_rn, ...) in the order nf-convert.c computes it, so nvcc cannot contract
 * them into FMAs and the bytes match the CPU path. Launchers check the launch; entry
 * points check formats, sizes and buffers.
 * What it does not: host <-> device copies, or synchronisation.
 */
#include "nf-cuda-convert.h"
#include "nf-cuda-private.h"

/* Byte offsets of R, G, B and the alpha/padding byte in one pixel. */
struct PixelLayout {
  int bpp, r, g, b, a;          /* a: -1 when none */
  bool alpha;                   /* a is alpha (copied) rather than padding (255) */
};

static bool
pixel_layout (NfCudaPixelFormat f, PixelLayout *l)
{
  static const PixelLayout table[] = {
    /* RGB  */ {3, 0, 1, 2, -1, false},
    /* BGR  */ {3, 2, 1, 0, -1, false},
    /* RGBx */ {4, 0, 1, 2, 3, false},
    /* BGRx */ {4, 2, 1, 0, 3, false},
    /* xRGB */ {4, 1, 2, 3, 0, false},
    /* xBGR */ {4, 3, 2, 1, 0, false},
    /* RGBA */ {4, 0, 1, 2, 3, true},
    /* BGRA */ {4, 2, 1, 0, 3, true},
  };
  if ((int) f < 0 || f > NF_CUDA_PIXEL_BGRA)
    return false;
  *l = table[f];
  return true;
}

gboolean
nf_cuda_pixel_format_has_alpha (NfCudaPixelFormat f)
{
  return f == NF_CUDA_PIXEL_RGBA || f == NF_CUDA_PIXEL_BGRA;
}

gboolean
nf_cuda_pixel_format_is_yuv (NfCudaPixelFormat f)
{
  return f == NF_CUDA_PIXEL_I420 || f == NF_CUDA_PIXEL_NV12;
}

/* Matrix constants computed on the host exactly as nf-convert.c computes them. */
struct YuvConst {
  float kr, kb, kg, y_off, y_scale, c_off, c_scale;
  float cr_r, cb_b, iy, ic;     /* unpack */
  float cb_s, cr_s;             /* pack */
};

static YuvConst
yuv_const (const NfCudaYuv *m)
{
  YuvConst k;
  k.kr = m->kr;
  k.kb = m->kb;
  k.kg = 1.0f - m->kr - m->kb;
  k.y_off = m->y_off;
  k.y_scale = m->y_scale;
  k.c_off = m->c_off;
  k.c_scale = m->c_scale;
  k.cr_r = 2.0f * (1.0f - m->kr);
  k.cb_b = 2.0f * (1.0f - m->kb);
  k.iy = 1.0f / m->y_scale;
  k.ic = 1.0f / m->c_scale;
  k.cb_s = 0.5f / (1.0f - m->kb);
  k.cr_s = 0.5f / (1.0f - m->kr);
  return k;
}

__device__ __forceinline__ float
clamp01 (float v)
{
  return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

/* nf-convert.c's pack_one: y*ya + x*xa + b, clamp, round; NaN by its sign. */
__device__ __forceinline__ unsigned char
pack_one (float y, float x, float ya, float xa, float b)
{
  float t = __fmul_rn (y, ya);
  float u = __fmul_rn (x, xa);
  t = __fadd_rn (t, u);
  t = __fadd_rn (t, b);
  if (t != t)
    return (__float_as_uint (t) & 0x80000000u) ? 0 : 0xff;
  if (t < 0.0f)
    return 0;
  if (t > 255.0f)
    t = 255.0f;
  t = __fadd_rn (t, 0.5f);
  return (unsigned char) (int) t;
}

/* nf-convert.c's to_byte. */
__device__ __forceinline__ unsigned char
to_byte (float v)
{
  if (!(v >= 0.0f))
    return 0;
  if (v > 255.0f)
    return 255;
  return (unsigned char) (int) __fadd_rn (v, 0.5f);
}

/* ---- kernels ------------------------------------------------------------------------ */

/* t (1, 3, ph, pw) = src pixel (reflect (ty, h), reflect (tx, w)) * scale + offset. */
template <typename L>
__global__ void
unpack_rgb_kernel (const unsigned char *__restrict__ src, int stride, int w, int h,
    PixelLayout pl, typename L::T *__restrict__ t, NfDims td, float scale, float offset)
{
  size_t n = (size_t) td.h * td.w;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int ty = (int) (i / td.w), tx = (int) (i % td.w);
    const unsigned char *p = src + (size_t) nf_reflect (ty, h) * stride
        + (size_t) nf_reflect (tx, w) * pl.bpp;
    nf_st (t + nf_off<L::nhwc> (td, 0, 0, ty, tx),
        __fadd_rn (__fmul_rn ((float) p[pl.r], scale), offset));
    nf_st (t + nf_off<L::nhwc> (td, 0, 1, ty, tx),
        __fadd_rn (__fmul_rn ((float) p[pl.g], scale), offset));
    nf_st (t + nf_off<L::nhwc> (td, 0, 2, ty, tx),
        __fadd_rn (__fmul_rn ((float) p[pl.b], scale), offset));
  }
}

/* t (1, 3, ph, pw) = RGB of the 4:2:0 frame at the reflected pixel, * s + offset. */
template <typename L>
__global__ void
unpack_yuv_kernel (const unsigned char *__restrict__ yp, int ys,
    const unsigned char *__restrict__ up, int us, const unsigned char *__restrict__ vp,
    int vs, bool nv12, int w, int h, YuvConst k, typename L::T *__restrict__ t, NfDims td,
    float s, float offset)
{
  size_t n = (size_t) td.h * td.w;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int ty = (int) (i / td.w), tx = (int) (i % td.w);
    int sy = nf_reflect (ty, h), sx = nf_reflect (tx, w);
    float Y = (float) yp[(size_t) sy * ys + sx];
    float U, V;
    if (nv12) {
      const unsigned char *c = up + (size_t) (sy / 2) * us + (size_t) (sx / 2) * 2;
      U = (float) c[0];
      V = (float) c[1];
    } else {
      U = (float) up[(size_t) (sy / 2) * us + sx / 2];
      V = (float) vp[(size_t) (sy / 2) * vs + sx / 2];
    }
    float yy = __fmul_rn (__fsub_rn (Y, k.y_off), k.iy);
    float cb = __fmul_rn (__fsub_rn (U, k.c_off), k.ic);
    float cr = __fmul_rn (__fsub_rn (V, k.c_off), k.ic);
    float rr_raw = __fadd_rn (yy, __fmul_rn (k.cr_r, cr));
    float bb_raw = __fadd_rn (yy, __fmul_rn (k.cb_b, cb));
    float rr = clamp01 (rr_raw);
    float bb = clamp01 (bb_raw);
    float gg = clamp01 (__fdiv_rn (__fsub_rn (__fsub_rn (yy, __fmul_rn (k.kr, rr_raw)),
                __fmul_rn (k.kb, bb_raw)), k.kg));
    nf_st (t + nf_off<L::nhwc> (td, 0, 0, ty, tx), __fadd_rn (__fmul_rn (rr, s), offset));
    nf_st (t + nf_off<L::nhwc> (td, 0, 1, ty, tx), __fadd_rn (__fmul_rn (gg, s), offset));
    nf_st (t + nf_off<L::nhwc> (td, 0, 2, ty, tx), __fadd_rn (__fmul_rn (bb, s), offset));
  }
}

/* dst pixel (i, j) = pack (y (i, j), x (i, j)); alpha/padding byte from a or 255. */
template <typename L>
__global__ void
pack_rgb_kernel (const typename L::T *__restrict__ y, NfDims yd,
    const typename L::T *__restrict__ x, NfDims xd, float ya, float xa, float b,
    const unsigned char *__restrict__ a, int a_stride, int a_scale, PixelLayout pl,
    unsigned char *__restrict__ dst, int stride, int w, int h)
{
  size_t n = (size_t) w * h;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int i = (int) (idx / w), j = (int) (idx % w);
    float yv[3], xv[3];
    for (int k = 0; k < 3; k++) {
      yv[k] = nf_ld (y + nf_off<L::nhwc> (yd, 0, k, i, j));
      xv[k] = x ? nf_ld (x + nf_off<L::nhwc> (xd, 0, k, i, j)) : yv[k];
    }
    unsigned char *p = dst + (size_t) i * stride + (size_t) j * pl.bpp;
    p[pl.r] = pack_one (yv[0], xv[0], ya, xa, b);
    p[pl.g] = pack_one (yv[1], xv[1], ya, xa, b);
    p[pl.b] = pack_one (yv[2], xv[2], ya, xa, b);
    if (pl.a >= 0)
      p[pl.a] = a ? a[(size_t) (i / a_scale) * a_stride + (size_t) (j / a_scale) * pl.bpp
          + pl.a] : 0xff;
  }
}

/* One thread per 2x2 block: Y of each pixel inside the frame, the block's mean chroma. */
template <typename L>
__global__ void
pack_yuv_kernel (const typename L::T *__restrict__ y, NfDims yd,
    const typename L::T *__restrict__ x, NfDims xd, float ya, float xa, float b,
    YuvConst k, unsigned char *__restrict__ yp, int ys, unsigned char *__restrict__ up,
    int us, unsigned char *__restrict__ vp, int vs, bool nv12, int w, int h)
{
  int bw = (w + 1) / 2, bh = (h + 1) / 2;
  size_t n = (size_t) bw * bh;
  for (size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x; idx < n;
      idx += (size_t) gridDim.x * blockDim.x) {
    int i0 = (int) (idx / bw) * 2, j0 = (int) (idx % bw) * 2;
    int rows = min (2, h - i0), cols = min (2, w - j0);
    float sum_cb = 0.0f, sum_cr = 0.0f;
    for (int di = 0; di < rows; di++)
      for (int dj = 0; dj < cols; dj++) {
        int i = i0 + di, j = j0 + dj;
        float rgb[3];
        for (int c = 0; c < 3; c++) {
          float yv = nf_ld (y + nf_off<L::nhwc> (yd, 0, c, i, j));
          float xv = x ? nf_ld (x + nf_off<L::nhwc> (xd, 0, c, i, j)) : yv;
          float t = __fadd_rn (__fadd_rn (__fmul_rn (yv, ya), __fmul_rn (xv, xa)), b);
          rgb[c] = __fmul_rn (t >= 0.0f ? (t <= 255.0f ? t : 255.0f) : 0.0f,
              1.0f / 255.0f);
        }
        float yy = __fadd_rn (__fadd_rn (__fmul_rn (k.kr, rgb[0]), __fmul_rn (k.kg, rgb[1])),
            __fmul_rn (k.kb, rgb[2]));
        yp[(size_t) i * ys + j] = to_byte (__fadd_rn (k.y_off, __fmul_rn (k.y_scale, yy)));
        sum_cb = __fadd_rn (sum_cb, __fmul_rn (__fsub_rn (rgb[2], yy), k.cb_s));
        sum_cr = __fadd_rn (sum_cr, __fmul_rn (__fsub_rn (rgb[0], yy), k.cr_s));
      }
    float cnt = (float) (rows * cols);
    unsigned char cbb = to_byte (__fadd_rn (k.c_off, __fdiv_rn (__fmul_rn (k.c_scale, sum_cb),
                cnt)));
    unsigned char crb = to_byte (__fadd_rn (k.c_off, __fdiv_rn (__fmul_rn (k.c_scale, sum_cr),
                cnt)));
    if (nv12) {
      unsigned char *c = up + (size_t) (i0 / 2) * us + (size_t) (j0 / 2) * 2;
      c[0] = cbb;
      c[1] = crb;
    } else {
      up[(size_t) (i0 / 2) * us + j0 / 2] = cbb;
      vp[(size_t) (i0 / 2) * vs + j0 / 2] = crb;
    }
  }
}

/* ---- checks ---------------------------------------------------------------------------- */

static gboolean
check_frame (const NfCudaFrame *f, const char *what, GError **error)
{
  PixelLayout pl;
  gboolean yuv = nf_cuda_pixel_format_is_yuv (f->format);
  int planes = f->format == NF_CUDA_PIXEL_I420 ? 3 : f->format == NF_CUDA_PIXEL_NV12 ? 2 : 1;
  if (!yuv && !pixel_layout (f->format, &pl)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s frame: unknown pixel format %d",
        what, (int) f->format);
    return FALSE;
  }
  if (f->width < 1 || f->height < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s frame is %dx%d", what, f->width,
        f->height);
    return FALSE;
  }
  int row0 = yuv ? f->width : f->width * pl.bpp;
  for (int p = 0; p < planes; p++) {
    int row = p == 0 ? row0 : f->format == NF_CUDA_PIXEL_NV12 ? 2 * ((f->width + 1) / 2)
        : (f->width + 1) / 2;
    if (!f->data[p] || f->stride[p] < row) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "%s frame: plane %d missing or its stride %d is below the row size %d", what, p,
          f->stride[p], row);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
check_tensor (NfCudaBackend *be, const void *t, NfShape s, int w, int h, const char *what,
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

/* ---- entry points ------------------------------------------------------------------------- */

gboolean
nf_cuda_frame_to_tensor (NfBackend *base, const NfCudaFrame *src, const NfCudaYuv *yuv,
    void *dst, NfShape ds, float scale, float offset, GError **error)
{
  if (!nf_cuda_is_backend (base)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "not a CUDA backend");
    return FALSE;
  }
  NfCudaBackend *be = NF_CUDA (base);
  if (!check_frame (src, "input", error)
      || !check_tensor (be, dst, ds, src->width, src->height, "input", error))
    return FALSE;
  NfDims td = nf_dims (ds);
  unsigned blocks = nf_blocks ((size_t) ds.h * ds.w, NF_THREADS);
  cudaStream_t st = be->stream;
  if (nf_cuda_pixel_format_is_yuv (src->format)) {
    if (!yuv) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "a YUV frame needs its matrix");
      return FALSE;
    }
    YuvConst k = yuv_const (yuv);
    bool nv12 = src->format == NF_CUDA_PIXEL_NV12;
    const unsigned char *v = nv12 ? src->data[1] : src->data[2];
    int vs = nv12 ? src->stride[1] : src->stride[2];
    float s = 255.0f * scale;
    if (be->fp16)
      unpack_yuv_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, st>>> (src->data[0],
          src->stride[0], src->data[1], src->stride[1], v, vs, nv12, src->width,
          src->height, k, (__half *) dst, td, s, offset);
    else
      unpack_yuv_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, st>>> (src->data[0],
          src->stride[0], src->data[1], src->stride[1], v, vs, nv12, src->width,
          src->height, k, (float *) dst, td, s, offset);
    return nf_cuda_launch_ok ("unpack_yuv_kernel", error);
  }
  PixelLayout pl;
  pixel_layout (src->format, &pl);
  if (be->fp16)
    unpack_rgb_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, st>>> (src->data[0],
        src->stride[0], src->width, src->height, pl, (__half *) dst, td, scale, offset);
  else
    unpack_rgb_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, st>>> (src->data[0],
        src->stride[0], src->width, src->height, pl, (float *) dst, td, scale, offset);
  return nf_cuda_launch_ok ("unpack_rgb_kernel", error);
}

gboolean
nf_cuda_tensor_to_frame (NfBackend *base, const void *y, NfShape ys, const void *x,
    NfShape xs, float ya, float xa, float b, const NfCudaFrame *alpha, int alpha_scale,
    const NfCudaYuv *yuv, const NfCudaFrame *dst, GError **error)
{
  if (!nf_cuda_is_backend (base)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "not a CUDA backend");
    return FALSE;
  }
  NfCudaBackend *be = NF_CUDA (base);
  if (!check_frame (dst, "output", error)
      || !check_tensor (be, y, ys, dst->width, dst->height, "output", error))
    return FALSE;
  if (!x)
    xa = 0.0f;
  else if (!check_tensor (be, x, xs, dst->width, dst->height, "blend input", error))
    return FALSE;
  if (alpha_scale < 1)
    alpha_scale = 1;
  NfDims yd = nf_dims (ys), xd = nf_dims (x ? xs : ys);
  cudaStream_t st = be->stream;

  if (nf_cuda_pixel_format_is_yuv (dst->format)) {
    if (!yuv) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "a YUV frame needs its matrix");
      return FALSE;
    }
    YuvConst k = yuv_const (yuv);
    bool nv12 = dst->format == NF_CUDA_PIXEL_NV12;
    unsigned char *v = nv12 ? dst->data[1] : dst->data[2];
    int vs = nv12 ? dst->stride[1] : dst->stride[2];
    unsigned blocks = nf_blocks ((size_t) ((dst->width + 1) / 2) * ((dst->height + 1) / 2),
        NF_THREADS);
    if (be->fp16)
      pack_yuv_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, st>>> ((const __half *) y, yd,
          (const __half *) x, xd, ya, xa, b, k, dst->data[0], dst->stride[0], dst->data[1],
          dst->stride[1], v, vs, nv12, dst->width, dst->height);
    else
      pack_yuv_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, st>>> ((const float *) y, yd,
          (const float *) x, xd, ya, xa, b, k, dst->data[0], dst->stride[0], dst->data[1],
          dst->stride[1], v, vs, nv12, dst->width, dst->height);
    return nf_cuda_launch_ok ("pack_yuv_kernel", error);
  }

  PixelLayout pl;
  pixel_layout (dst->format, &pl);
  const unsigned char *a = NULL;
  int a_stride = 0;
  if (pl.alpha && alpha) {
    if (alpha->format != dst->format
        || (int64_t) alpha->width * alpha_scale < dst->width
        || (int64_t) alpha->height * alpha_scale < dst->height || !alpha->data[0]) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "alpha source %dx%d (x%d) does not cover the %dx%d output", alpha->width,
          alpha->height, alpha_scale, dst->width, dst->height);
      return FALSE;
    }
    a = alpha->data[0];
    a_stride = alpha->stride[0];
  }
  unsigned blocks = nf_blocks ((size_t) dst->width * dst->height, NF_THREADS);
  if (be->fp16)
    pack_rgb_kernel<NfF16Nhwc> <<<blocks, NF_THREADS, 0, st>>> ((const __half *) y, yd,
        (const __half *) x, xd, ya, xa, b, a, a_stride, alpha_scale, pl, dst->data[0],
        dst->stride[0], dst->width, dst->height);
  else
    pack_rgb_kernel<NfF32Nchw> <<<blocks, NF_THREADS, 0, st>>> ((const float *) y, yd,
        (const float *) x, xd, ya, xa, b, a, a_stride, alpha_scale, pl, dst->data[0],
        dst->stride[0], dst->width, dst->height);
  return nf_cuda_launch_ok ("pack_rgb_kernel", error);
}
