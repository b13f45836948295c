/* nf-convert.h — 8-bit RGB pixels <-> the planar float images the networks take.
 *
 * What it does: turns a packed 8-bit RGB-family frame (RGB, BGR, RGBx, BGRx, xRGB,
 * xBGR, RGBA, BGRA; any row stride, any size) into three float planes (R, G, B) of a
 * possibly larger size, reflection-padding the extra columns and rows, with
 * value = byte * scale + offset; and turns float planes back into such a frame with
 * byte = clamp (round (y * ya + x * xa + b)) (y: network output, x: the network input,
 * for a blend), copying the alpha/padding byte from a byte plane (nearest-upscaled
 * when the output is larger). The per-pixel work is done by row kernels with two
 * implementations of identical signature and arithmetic: plain C (always built, the
 * reference) and ORC (nf-convert.orc, when the build has ORC).
 * For I420 and NV12 it converts between Y'CbCr 4:2:0 and float RGB directly with the
 * matrix and range given (plain C).
 * What it does not: pick the matrix from caps (the element does), or run networks.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Bytes 0..2 -> float planes d0..d2 (byte * scale + offset), byte 3 -> da ("3a"),
 * or byte 0 -> da, bytes 1..3 -> d0..d2 ("a3"). */
typedef void (*NfUnpackRowFn) (float *d0, float *d1, float *d2, guint8 *da,
    const guint32 *s, float scale, float offset, int n);
/* Byte k = clamp (round (y_k * ya + x_k * xa + b), 0, 255); the alpha/padding byte
 * from a. "3a": colour in bytes 0..2, a in byte 3; "a3": a in byte 0. */
typedef void (*NfPackRowFn) (guint32 *d, const float *y0, const float *y1,
    const float *y2, const float *x0, const float *x1, const float *x2,
    const guint8 *a, float ya, float xa, float b, int n);

typedef struct {
  const char *name;             /* "c" or "orc" */
  NfUnpackRowFn unpack_3a, unpack_a3;
  NfPackRowFn pack_3a, pack_a3;
} NfConvertImpl;

extern const NfConvertImpl nf_convert_impl_c;
#ifdef NF_HAVE_ORC
extern const NfConvertImpl nf_convert_impl_orc;
#endif
/* ORC when built with it (and NF_CONVERT=c is not set in the environment), else C. */
const NfConvertImpl *nf_convert_impl_default (void);

typedef enum {
  NF_LAYOUT_RGB,
  NF_LAYOUT_BGR,
  NF_LAYOUT_RGBX,
  NF_LAYOUT_BGRX,
  NF_LAYOUT_XRGB,
  NF_LAYOUT_XBGR,
  NF_LAYOUT_RGBA,
  NF_LAYOUT_BGRA,
} NfLayout;

int nf_layout_bytes_per_pixel (NfLayout l);
gboolean nf_layout_has_alpha (NfLayout l);

/* Index in 0..n-1 for a padded index i >= 0: mirrored without repeating the edge
 * (PyTorch's reflection padding), 0 where n is 1. */
static inline int
nf_convert_reflect (int i, int n)
{
  if (n <= 1)
    return 0;
  int period = 2 * (n - 1);
  i %= period;
  return i < n ? i : period - i;
}

/* Work memory for one frame width (row scratch); NULL on allocation failure. */
typedef struct NfConvertScratch NfConvertScratch;
NfConvertScratch *nf_convert_scratch_new (int max_width);
void nf_convert_scratch_free (NfConvertScratch *s);

/* src: w x h pixels of layout l, rows stride bytes apart.
 * planes: 3 planes of pw x ph floats (R, G, B), pw >= w, ph >= h; columns w..pw-1
 * and rows h..ph-1 are filled by reflection (without repeating the edge, as
 * PyTorch's reflection padding), by replication where the image is 1 pixel wide/high.
 * alpha: w x h bytes (row stride w) receiving the alpha/padding byte, or NULL. */
void nf_convert_unpack (const NfConvertImpl *impl, NfConvertScratch *scratch,
    NfLayout l, const guint8 *src, int stride, int w, int h,
    float *planes, int pw, int ph, guint8 *alpha, float scale, float offset);

/* dst: w x h pixels of layout l. y: 3 planes of yw floats per row (plane size
 * y_plane floats); x: the same for the blend input (may be NULL when xa == 0); its
 * pixel (i, j) is used for output (i, j) so it must be the same size as y's used
 * region. alpha: alpha source of (w / alpha_scale) columns, alpha_stride bytes per
 * row, read at (i / alpha_scale, j / alpha_scale); NULL writes 255. */
void nf_convert_pack (const NfConvertImpl *impl, NfConvertScratch *scratch,
    NfLayout l, guint8 *dst, int stride, int w, int h,
    const float *y, int yw, gsize y_plane, const float *x, int xw, gsize x_plane,
    const guint8 *alpha, int alpha_stride, int alpha_scale,
    float ya, float xa, float b);

/* Y'CbCr 4:2:0 (I420: separate U and V planes; NV12: one interleaved UV plane) <->
 * planar float RGB, straight, with no 8-bit RGB in between. Chroma is upsampled by
 * nearest neighbour (each chroma sample covers its 2x2 block) and downsampled by the
 * mean of the block (its pixels inside the image), so a frame that goes through an
 * identity network comes back within rounding. */
typedef struct {
  float kr, kb;                 /* luma weights of R and B (BT.601, BT.709, ...) */
  float y_off, y_scale;         /* Y byte = y_off + y_scale * Y' (Y' in 0..1) */
  float c_off, c_scale;         /* Cb byte = c_off + c_scale * Cb' (Cb' in -0.5..0.5) */
} NfYuvMatrix;

void nf_yuv_matrix_init (NfYuvMatrix * m, double kr, double kb, gboolean full_range);

/* nv12: u is the UV plane and v is ignored. RGB values are written as
 * (rgb in 0..255) * scale + offset, like nf_convert_unpack. */
void nf_convert_yuv_unpack (const NfYuvMatrix * m, gboolean nv12,
    const guint8 * y, int ys, const guint8 * u, int us, const guint8 * v, int vs,
    int w, int h, float *planes, int pw, int ph, float scale, float offset);

/* RGB in 0..255 = clamp (y * ya + x * xa + b) as in nf_convert_pack, then to YUV.
 * u NULL: the luma plane only (the caller fills the chroma, e.g. with the input's). */
void nf_convert_yuv_pack (const NfYuvMatrix * m, gboolean nv12,
    guint8 * y, int ys, guint8 * u, int us, guint8 * v, int vs, int w, int h,
    const float *yp, int yw, gsize y_plane, const float *x, int xw, gsize x_plane,
    float ya, float xa, float b);

G_END_DECLS
