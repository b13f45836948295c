/* nf-cuda-convert.h — pixel frames on the GPU <-> the network's tensors, on a CUDA
 * backend's stream.
 *
 * What it does: 8-bit frames (packed RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA; planar
 * I420; semi-planar NV12; any row stride; plane pointers in device memory) to a
 * (1, 3, ph, pw) tensor in the backend's layout and type (NCHW float or NHWC half),
 * reflection-padded to the tensor's size, value = byte * scale + offset (Y'CbCr
 * straight to RGB with the given matrix); and back, with the blend with the input
 * fused in: byte = clamp (round (y * ya + x * xa + b)) (x: the network's input tensor,
 * for neuralstyle's strength; NULL when xa is 0), alpha copied from a source frame
 * (nearest-upscaled by alpha_scale) or 255, chroma of 4:2:0 outputs the mean of each
 * 2x2 block. The arithmetic is gst/nf-convert.c's, operation for operation (no fused
 * multiply-adds), so the GPU and CPU paths give the same bytes.
 * What it does not: copy frames between host and device (the element stages them), or
 * synchronise (the caller does, through the backend).
 */
#pragma once

#include <glib.h>

#include "nf-backend.h"

G_BEGIN_DECLS

typedef enum {
  NF_CUDA_PIXEL_RGB,
  NF_CUDA_PIXEL_BGR,
  NF_CUDA_PIXEL_RGBX,
  NF_CUDA_PIXEL_BGRX,
  NF_CUDA_PIXEL_XRGB,
  NF_CUDA_PIXEL_XBGR,
  NF_CUDA_PIXEL_RGBA,
  NF_CUDA_PIXEL_BGRA,
  NF_CUDA_PIXEL_I420,
  NF_CUDA_PIXEL_NV12,
} NfCudaPixelFormat;

/* A frame whose planes are device memory. I420: Y, U, V; NV12: Y, interleaved UV;
 * packed formats: plane 0 only. Chroma planes have (height + 1) / 2 rows. */
typedef struct {
  NfCudaPixelFormat format;
  int width, height;
  guint8 *data[3];
  int stride[3];                /* bytes from one row to the next */
} NfCudaFrame;

/* Y'CbCr matrix and range (as gst/nf-convert.h's NfYuvMatrix): Y byte = y_off +
 * y_scale * Y', Cb byte = c_off + c_scale * Cb'; kr, kb the luma weights. */
typedef struct {
  float kr, kb;
  float y_off, y_scale;
  float c_off, c_scale;
} NfCudaYuv;

gboolean nf_cuda_pixel_format_has_alpha (NfCudaPixelFormat f);
gboolean nf_cuda_pixel_format_is_yuv (NfCudaPixelFormat f);

/* src (w x h) -> dst, a buffer of be of shape ds = (1, 3, ph, pw), ph >= h, pw >= w;
 * yuv: the matrix for I420/NV12 (ignored otherwise). Queued on be's stream. */
gboolean nf_cuda_frame_to_tensor (NfBackend *be, const NfCudaFrame *src,
    const NfCudaYuv *yuv, void *dst, NfShape ds, float scale, float offset,
    GError **error);

/* y (buffer of be, shape ys = (1, 3, >= h, >= w)) [+ x (shape xs, same bound)] ->
 * dst (w x h). alpha: the frame whose alpha bytes go to dst's (formats with alpha; NULL
 * writes 255), read at (i / alpha_scale, j / alpha_scale). Queued on be's stream. */
gboolean nf_cuda_tensor_to_frame (NfBackend *be, const void *y, NfShape ys, const void *x,
    NfShape xs, float ya, float xa, float b, const NfCudaFrame *alpha, int alpha_scale,
    const NfCudaYuv *yuv, const NfCudaFrame *dst, GError **error);

G_END_DECLS
