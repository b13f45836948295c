/* test-gpu-convert.c — the GPU pixel conversions (nf-cuda-convert.cu) against the CPU
 * ones the elements use in system memory (gst/nf-convert.c, plain C).
 *
 * For every format (RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, I420, NV12), both
 * backends (fp32 NCHW and fp16 NHWC tensors), odd sizes (1x1, 7x5, 133x71) with row
 * strides larger than the rows, random bytes:
 *  - frame -> tensor, reflection-padded to a larger tensor, against nf_convert_unpack /
 *    nf_convert_yuv_unpack (fp32: within 1e-6; fp16: the CPU value rounded to fp16);
 *  - tensor -> frame with and without the strength blend, with alpha copied 1:1 and
 *    nearest-upscaled x2 (superres), against nf_convert_pack / nf_convert_yuv_pack on
 *    the same (for fp16: fp16-rounded) values, including out-of-range values; at most
 *    1 apart (the arithmetic is the same, operation for operation), and the bytes
 *    between a row's end and its stride must be left untouched.
 * Exit: 0 pass, 1 a case failed, 77 no usable GPU.
 * Does not: test the elements (test-gpu-elements) or networks (test-gpu-ops).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-backend.h"
#include "nf-convert.h"
#include "nf-cuda.h"
#include "nf-cuda-convert.h"

static int n_cases, n_failed;
static NfRng rng;

static const struct {
  const char *name;
  NfCudaPixelFormat gpu;
  NfLayout cpu;
  gboolean yuv, nv12;
} formats[] = {
  {"RGB", NF_CUDA_PIXEL_RGB, NF_LAYOUT_RGB, FALSE, FALSE},
  {"BGR", NF_CUDA_PIXEL_BGR, NF_LAYOUT_BGR, FALSE, FALSE},
  {"RGBx", NF_CUDA_PIXEL_RGBX, NF_LAYOUT_RGBX, FALSE, FALSE},
  {"BGRx", NF_CUDA_PIXEL_BGRX, NF_LAYOUT_BGRX, FALSE, FALSE},
  {"xRGB", NF_CUDA_PIXEL_XRGB, NF_LAYOUT_XRGB, FALSE, FALSE},
  {"xBGR", NF_CUDA_PIXEL_XBGR, NF_LAYOUT_XBGR, FALSE, FALSE},
  {"RGBA", NF_CUDA_PIXEL_RGBA, NF_LAYOUT_RGBA, FALSE, FALSE},
  {"BGRA", NF_CUDA_PIXEL_BGRA, NF_LAYOUT_BGRA, FALSE, FALSE},
  {"I420", NF_CUDA_PIXEL_I420, NF_LAYOUT_RGBX, TRUE, FALSE},
  {"NV12", NF_CUDA_PIXEL_NV12, NF_LAYOUT_RGBX, TRUE, TRUE},
};

/* A frame in host memory and its twin on the device, planes with padded strides. */
typedef struct {
  int w, h, planes;
  int stride[3], rows[3];
  guint8 *host[3];
  guint8 *dev[3];
} Frame;

static gboolean
frame_new (NfBackend *be, int fi, int w, int h, Frame *f, GError **error)
{
  memset (f, 0, sizeof *f);
  f->w = w;
  f->h = h;
  int cw = (w + 1) / 2, ch = (h + 1) / 2;
  if (formats[fi].yuv) {
    f->planes = formats[fi].nv12 ? 2 : 3;
    f->stride[0] = w + 13;
    f->rows[0] = h;
    for (int p = 1; p < f->planes; p++) {
      f->stride[p] = (formats[fi].nv12 ? 2 * cw : cw) + 7;
      f->rows[p] = ch;
    }
  } else {
    f->planes = 1;
    f->stride[0] = w * nf_layout_bytes_per_pixel (formats[fi].cpu) + 9;
    f->rows[0] = h;
  }
  for (int p = 0; p < f->planes; p++) {
    size_t n = (size_t) f->stride[p] * f->rows[p];
    f->host[p] = g_malloc (n);
    f->dev[p] = nf_cuda_device_alloc (be, n, error);
    if (!f->dev[p])
      return FALSE;
  }
  return TRUE;
}

static void
frame_free (NfBackend *be, Frame *f)
{
  for (int p = 0; p < f->planes; p++) {
    g_free (f->host[p]);
    nf_cuda_device_free (be, f->dev[p]);
  }
}

static gboolean
frame_copy (NfBackend *be, Frame *f, gboolean to_device, GError **error)
{
  for (int p = 0; p < f->planes; p++) {
    size_t n = (size_t) f->stride[p] * f->rows[p];
    if (!nf_cuda_copy_2d_async (be, to_device ? (void *) f->dev[p] : (void *) f->host[p], n,
            to_device ? (const void *) f->host[p] : (const void *) f->dev[p], n, n, 1, error))
      return FALSE;
  }
  return be->iface->synchronize (be, error);
}

static NfCudaFrame
cuda_frame (int fi, Frame *f)
{
  NfCudaFrame c = { formats[fi].gpu, f->w, f->h, {NULL, NULL, NULL}, {0, 0, 0} };
  for (int p = 0; p < f->planes; p++) {
    c.data[p] = f->dev[p];
    c.stride[p] = f->stride[p];
  }
  return c;
}

static void
report (gboolean ok, const char *what, const char *detail)
{
  n_cases++;
  if (!ok)
    n_failed++;
  printf ("%-4s %s%s%s\n", ok ? "ok" : "FAIL", what, detail ? "  " : "", detail ? detail : "");
}

static float
as_backend (gboolean fp16, float v)
{
  return fp16 ? nf_half_to_float (nf_float_to_half (v)) : v;
}

/* frame -> tensor on both sides. */
static void
test_unpack (NfBackend *be, gboolean fp16, int fi, int w, int h, const NfYuvMatrix *m)
{
  GError *e = NULL;
  Frame f;
  int pw = w + 3, ph = h + 2;
  NfShape ts = { 1, 3, ph, pw };
  size_t tn = nf_shape_numel (ts);
  float *cpu = nf_alloc_floats (tn), *gpu = nf_alloc_floats (tn);
  void *t = NULL;
  char *what = g_strdup_printf ("%s unpack %s %dx%d -> %dx%d", fp16 ? "fp16" : "fp32",
      formats[fi].name, w, h, pw, ph);
  float scale = 2.0f / 255.0f, offset = -1.0f;
  gboolean ok = frame_new (be, fi, w, h, &f, &e);
  if (ok) {
    for (int p = 0; p < f.planes; p++)
      for (size_t i = 0; i < (size_t) f.stride[p] * f.rows[p]; i++)
        f.host[p][i] = nf_rng_u32 (&rng) & 0xff;
    ok = frame_copy (be, &f, TRUE, &e) && (t = be->iface->alloc (be, ts, &e)) != NULL;
  }
  if (ok) {
    NfCudaFrame cf = cuda_frame (fi, &f);
    NfCudaYuv yuv = { m->kr, m->kb, m->y_off, m->y_scale, m->c_off, m->c_scale };
    ok = nf_cuda_frame_to_tensor (be, &cf, &yuv, t, ts, scale, offset, &e)
        && be->iface->download (be, gpu, t, ts, &e);
  }
  if (ok) {
    if (formats[fi].yuv) {
      nf_convert_yuv_unpack (m, formats[fi].nv12, f.host[0], f.stride[0], f.host[1],
          f.stride[1], formats[fi].nv12 ? NULL : f.host[2], f.stride[2], w, h, cpu, pw, ph,
          scale, offset);
    } else {
      NfConvertScratch *sc = nf_convert_scratch_new (w);
      nf_convert_unpack (&nf_convert_impl_c, sc, formats[fi].cpu, f.host[0], f.stride[0], w,
          h, cpu, pw, ph, NULL, scale, offset);
      nf_convert_scratch_free (sc);
    }
    double d = 0;
    for (size_t i = 0; i < tn; i++)
      d = isnan (gpu[i]) ? INFINITY : MAX (d, fabs (as_backend (fp16, cpu[i]) - gpu[i]));
    char *detail = g_strdup_printf ("max diff %.2e", d);
    report (d <= 1e-6, what, detail);
    g_free (detail);
  } else {
    report (FALSE, what, e ? e->message : "?");
  }
  g_clear_error (&e);
  if (t)
    be->iface->free (be, t);
  frame_free (be, &f);
  nf_free (cpu);
  nf_free (gpu);
  g_free (what);
}

/* tensor (+ blend input) -> frame on both sides. scale: alpha upscaling (superres). */
static void
test_pack (NfBackend *be, gboolean fp16, int fi, int w, int h, int scale, gboolean blend,
    const NfYuvMatrix *m)
{
  GError *e = NULL;
  Frame out, alpha;
  memset (&alpha, 0, sizeof alpha);
  int yw = w + 2, yh = h + 1;
  NfShape ys = { 1, 3, yh, yw };
  size_t yn = nf_shape_numel (ys);
  float *y = nf_alloc_floats (yn), *x = nf_alloc_floats (yn);
  void *ty = NULL, *tx = NULL;
  gboolean has_alpha = nf_layout_has_alpha (formats[fi].cpu) && !formats[fi].yuv;
  int aw = (w + scale - 1) / scale, ah = (h + scale - 1) / scale;
  char *what = g_strdup_printf ("%s pack %s %dx%d%s%s", fp16 ? "fp16" : "fp32",
      formats[fi].name, w, h, blend ? " blend" : "",
      has_alpha && scale > 1 ? " alpha x2" : "");
  /* out-of-range values on purpose: the clamping must agree too */
  for (size_t i = 0; i < yn; i++) {
    y[i] = as_backend (fp16, nf_rng_uniform (&rng) * 1.4f - 0.2f);
    x[i] = as_backend (fp16, nf_rng_uniform (&rng) * 2.0f - 1.0f);
  }
  float ya = 0.7f * 255.0f, xa = blend ? 0.3f * 127.5f : 0.0f, b = blend ? 0.3f * 127.5f : 0.0f;
  gboolean ok = frame_new (be, fi, w, h, &out, &e)
      && (!has_alpha || frame_new (be, fi, aw, ah, &alpha, &e));
  if (ok) {
    for (int p = 0; p < out.planes; p++)
      memset (out.host[p], 0x5a, (size_t) out.stride[p] * out.rows[p]);
    for (int p = 0; p < alpha.planes; p++)
      for (size_t i = 0; i < (size_t) alpha.stride[p] * alpha.rows[p]; i++)
        alpha.host[p][i] = nf_rng_u32 (&rng) & 0xff;
    ok = frame_copy (be, &out, TRUE, &e) && (!has_alpha || frame_copy (be, &alpha, TRUE, &e))
        && (ty = be->iface->alloc (be, ys, &e)) && (tx = be->iface->alloc (be, ys, &e))
        && be->iface->upload (be, ty, y, ys, &e) && be->iface->upload (be, tx, x, ys, &e);
  }
  if (ok) {
    NfCudaFrame cf = cuda_frame (fi, &out), ca = cuda_frame (fi, &alpha);
    NfCudaYuv yuv = { m->kr, m->kb, m->y_off, m->y_scale, m->c_off, m->c_scale };
    ok = nf_cuda_tensor_to_frame (be, ty, ys, blend ? tx : NULL, ys, ya, xa, b,
        has_alpha ? &ca : NULL, scale, &yuv, &cf, &e) && frame_copy (be, &out, FALSE, &e);
  }
  if (ok) {
    Frame ref;
    memset (&ref, 0, sizeof ref);
    ref.planes = out.planes;
    for (int p = 0; p < out.planes; p++) {
      ref.stride[p] = out.stride[p];
      ref.rows[p] = out.rows[p];
      ref.host[p] = g_malloc ((size_t) out.stride[p] * out.rows[p]);
      memset (ref.host[p], 0x5a, (size_t) out.stride[p] * out.rows[p]);
    }
    gsize plane = (gsize) yw * yh;
    if (formats[fi].yuv) {
      nf_convert_yuv_pack (m, formats[fi].nv12, ref.host[0], ref.stride[0], ref.host[1],
          ref.stride[1], formats[fi].nv12 ? NULL : ref.host[2], ref.stride[2], w, h, y, yw,
          plane, blend ? x : NULL, yw, plane, ya, xa, b);
    } else {
      /* the CPU path copies alpha into a tightly packed plane first */
      guint8 *ap = NULL;
      if (has_alpha) {
        int bpp = nf_layout_bytes_per_pixel (formats[fi].cpu);
        ap = g_malloc ((size_t) aw * ah);
        for (int i = 0; i < ah; i++)
          for (int j = 0; j < aw; j++)
            ap[(size_t) i * aw + j] = alpha.host[0][(size_t) i * alpha.stride[0] + j * bpp + 3];
      }
      NfConvertScratch *sc = nf_convert_scratch_new (w);
      nf_convert_pack (&nf_convert_impl_c, sc, formats[fi].cpu, ref.host[0], ref.stride[0], w,
          h, y, yw, plane, blend ? x : NULL, yw, plane, ap, aw, scale, ya, xa, b);
      nf_convert_scratch_free (sc);
      g_free (ap);
    }
    int worst = 0;
    size_t differ = 0;
    for (int p = 0; p < out.planes; p++)
      for (size_t i = 0; i < (size_t) out.stride[p] * out.rows[p]; i++) {
        int d = abs ((int) out.host[p][i] - (int) ref.host[p][i]);
        differ += d != 0;
        worst = MAX (worst, d);
      }
    char *detail = g_strdup_printf ("worst byte diff %d, %zu bytes differ", worst, differ);
    report (worst <= 1, what, detail);
    g_free (detail);
    for (int p = 0; p < ref.planes; p++)
      g_free (ref.host[p]);
  } else {
    report (FALSE, what, e ? e->message : "?");
  }
  g_clear_error (&e);
  if (ty)
    be->iface->free (be, ty);
  if (tx)
    be->iface->free (be, tx);
  frame_free (be, &out);
  if (has_alpha)
    frame_free (be, &alpha);
  nf_free (y);
  nf_free (x);
  g_free (what);
}

int
main (void)
{
  GError *e = NULL;
  if (nf_cuda_device_count (&e) == 0) {
    printf ("SKIP: no usable GPU: %s\n", e->message);
    g_error_free (e);
    return 77;
  }
  nf_rng_seed (&rng, 4242);
  NfYuvMatrix bt601, bt709full;
  nf_yuv_matrix_init (&bt601, 0.299, 0.114, FALSE);
  nf_yuv_matrix_init (&bt709full, 0.2126, 0.0722, TRUE);
  static const int sz[][2] = { {1, 1}, {7, 5}, {133, 71} };
  for (int p = 0; p < 2; p++) {
    NfBackend *be = nf_backend_new (p ? "cuda-fp16" : "cuda", &e);
    if (!be) {
      report (FALSE, "create backend", e->message);
      g_clear_error (&e);
      continue;
    }
    for (guint fi = 0; fi < G_N_ELEMENTS (formats); fi++)
      for (guint s = 0; s < G_N_ELEMENTS (sz); s++) {
        const NfYuvMatrix *m = s % 2 ? &bt709full : &bt601;
        test_unpack (be, p, fi, sz[s][0], sz[s][1], m);
        test_pack (be, p, fi, sz[s][0], sz[s][1], 1, FALSE, m);
        test_pack (be, p, fi, sz[s][0], sz[s][1], 1, TRUE, m);
        test_pack (be, p, fi, sz[s][0], sz[s][1], 2, FALSE, m);
      }
    nf_backend_free (be);
  }
  printf ("%d of %d cases failed\n", n_failed, n_cases);
  return n_failed ? 1 : 0;
}
