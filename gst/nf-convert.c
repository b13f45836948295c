/* nf-convert.c — 8-bit RGB pixels <-> planar float: row kernels and frame loops.
 *
 * What it does: the plain C row kernels (the reference twins of nf-convert.orc: same
 * operations in the same order, so both give the same bytes), the table that picks C
 * or ORC, and the frame-level loops: 3-byte pixels repacked to 4 through a scratch
 * row, unaligned rows bounced through a scratch row, reflection padding of the float
 * planes, nearest-neighbour alpha for upscaled outputs.
 * What it does not: YUV, or anything GStreamer-specific (it is unit-tested on its own).
 */
#include "nf-convert.h"

#include <string.h>

#ifdef NF_HAVE_ORC
#include "nf-convert-orc.h"
#endif

/* ---- plain C row kernels ------------------------------------------------------ */

static inline float
unpack_one (guint32 byte, float scale, float offset)
{
  float f = (float) byte;
  f = f * scale;
  return f + offset;
}

static void
unpack_3a_c (float *d0, float *d1, float *d2, guint8 *da, const guint32 *s,
    float scale, float offset, int n)
{
  for (int i = 0; i < n; i++) {
    guint32 v = s[i];
    d0[i] = unpack_one (v & 0xff, scale, offset);
    d1[i] = unpack_one ((v >> 8) & 0xff, scale, offset);
    d2[i] = unpack_one ((v >> 16) & 0xff, scale, offset);
    da[i] = v >> 24;
  }
}

static void
unpack_a3_c (float *d0, float *d1, float *d2, guint8 *da, const guint32 *s,
    float scale, float offset, int n)
{
  for (int i = 0; i < n; i++) {
    guint32 v = s[i];
    da[i] = v & 0xff;
    d0[i] = unpack_one ((v >> 8) & 0xff, scale, offset);
    d1[i] = unpack_one ((v >> 16) & 0xff, scale, offset);
    d2[i] = unpack_one (v >> 24, scale, offset);
  }
}

/* Same order as the ORC program: y*ya, x*xa, add, add b, max 0, min 255, +0.5,
 * truncate. A NaN passes ORC's maxf/minf and its float->int conversion saturates it
 * by sign (0x7fffffff for +NaN, low byte 0xff; 0x80000000 for -NaN, low byte 0):
 * done the same here, so both give the same bytes for any input. */
static inline guint32
pack_one (float y, float x, float ya, float xa, float b)
{
  float t = y * ya;
  float u = x * xa;
  t = t + u;
  t = t + b;
  if (G_UNLIKELY (t != t)) {
    union { float f; guint32 i; } v = { t };
    return (v.i & 0x80000000u) ? 0 : 0xff;
  }
  if (t < 0.0f)
    return 0;
  if (t > 255.0f)
    t = 255.0f;
  t = t + 0.5f;
  return (guint32) (int) t;
}

static void
pack_3a_c (guint32 *d, const float *y0, const float *y1, const float *y2,
    const float *x0, const float *x1, const float *x2, const guint8 *a,
    float ya, float xa, float b, int n)
{
  for (int i = 0; i < n; i++)
    d[i] = pack_one (y0[i], x0[i], ya, xa, b)
        | pack_one (y1[i], x1[i], ya, xa, b) << 8
        | pack_one (y2[i], x2[i], ya, xa, b) << 16 | (guint32) a[i] << 24;
}

static void
pack_a3_c (guint32 *d, const float *y0, const float *y1, const float *y2,
    const float *x0, const float *x1, const float *x2, const guint8 *a,
    float ya, float xa, float b, int n)
{
  for (int i = 0; i < n; i++)
    d[i] = (guint32) a[i] | pack_one (y0[i], x0[i], ya, xa, b) << 8
        | pack_one (y1[i], x1[i], ya, xa, b) << 16
        | pack_one (y2[i], x2[i], ya, xa, b) << 24;
}

const NfConvertImpl nf_convert_impl_c = {
  "c", unpack_3a_c, unpack_a3_c, pack_3a_c, pack_a3_c,
};

#ifdef NF_HAVE_ORC
const NfConvertImpl nf_convert_impl_orc = {
  "orc", nf_orc_unpack_3a, nf_orc_unpack_a3, nf_orc_pack_3a, nf_orc_pack_a3,
};
#endif

const NfConvertImpl *
nf_convert_impl_default (void)
{
#ifdef NF_HAVE_ORC
  if (g_strcmp0 (g_getenv ("NF_CONVERT"), "c") != 0)
    return &nf_convert_impl_orc;
#endif
  return &nf_convert_impl_c;
}

/* ---- layouts ------------------------------------------------------------------ */

typedef struct {
  int bpp;
  gboolean alpha_first;         /* the alpha/padding byte comes first in memory */
  gboolean bgr;                 /* colour bytes in B, G, R order */
  gboolean has_alpha;
} LayoutInfo;

static const LayoutInfo layouts[] = {
  [NF_LAYOUT_RGB] = {3, FALSE, FALSE, FALSE},
  [NF_LAYOUT_BGR] = {3, FALSE, TRUE, FALSE},
  [NF_LAYOUT_RGBX] = {4, FALSE, FALSE, FALSE},
  [NF_LAYOUT_BGRX] = {4, FALSE, TRUE, FALSE},
  [NF_LAYOUT_XRGB] = {4, TRUE, FALSE, FALSE},
  [NF_LAYOUT_XBGR] = {4, TRUE, TRUE, FALSE},
  [NF_LAYOUT_RGBA] = {4, FALSE, FALSE, TRUE},
  [NF_LAYOUT_BGRA] = {4, FALSE, TRUE, TRUE},
};

int
nf_layout_bytes_per_pixel (NfLayout l)
{
  return layouts[l].bpp;
}

gboolean
nf_layout_has_alpha (NfLayout l)
{
  return layouts[l].has_alpha;
}

/* The kernels see a pixel as a native-endian guint32; on little-endian machines its
 * low byte is the first in memory. Picks the kernel variant and the order in which the
 * R, G, B planes go to the kernel's d0..d2 / y0..y2 for layout l. */
static void
layout_kernel (const LayoutInfo * li, gboolean * a_first, int order[3])
{
  gboolean first = li->alpha_first;
  gboolean bgr = li->bgr;
#if G_BYTE_ORDER == G_BIG_ENDIAN
  first = !first;
  bgr = !bgr;
#endif
  *a_first = first;
  for (int k = 0; k < 3; k++)
    order[k] = bgr ? 2 - k : k;
}

/* ---- scratch ------------------------------------------------------------------ */

struct NfConvertScratch {
  int max_width;
  guint32 *pixels;              /* max_width 4-byte pixels */
  guint8 *bytes;                /* max_width */
  guint8 *opaque;               /* max_width x 0xff */
};

NfConvertScratch *
nf_convert_scratch_new (int max_width)
{
  NfConvertScratch *s = g_try_new0 (NfConvertScratch, 1);
  if (!s)
    return NULL;
  s->max_width = MAX (max_width, 1);
  s->pixels = g_try_new (guint32, s->max_width);
  s->bytes = g_try_malloc (s->max_width);
  s->opaque = g_try_malloc (s->max_width);
  if (!s->pixels || !s->bytes || !s->opaque) {
    nf_convert_scratch_free (s);
    return NULL;
  }
  memset (s->opaque, 0xff, s->max_width);
  return s;
}

void
nf_convert_scratch_free (NfConvertScratch *s)
{
  if (!s)
    return;
  g_free (s->pixels);
  g_free (s->bytes);
  g_free (s->opaque);
  g_free (s);
}

/* ---- frames ------------------------------------------------------------------- */

void
nf_convert_unpack (const NfConvertImpl *impl, NfConvertScratch *scratch,
    NfLayout l, const guint8 *src, int stride, int w, int h,
    float *planes, int pw, int ph, guint8 *alpha, float scale, float offset)
{
  const LayoutInfo *li = &layouts[l];
  gboolean a_first;
  int order[3];
  gsize plane = (gsize) pw * ph;

  g_return_if_fail (w <= scratch->max_width && w <= pw && h <= ph);
  layout_kernel (li, &a_first, order);
  NfUnpackRowFn fn = a_first ? impl->unpack_a3 : impl->unpack_3a;

  for (int i = 0; i < h; i++) {
    const guint8 *row = src + (gsize) i * stride;
    const guint32 *px;
    if (li->bpp == 3) {
      guint8 *p = (guint8 *) scratch->pixels;
      for (int j = 0; j < w; j++) {
        p[4 * j] = row[3 * j];
        p[4 * j + 1] = row[3 * j + 1];
        p[4 * j + 2] = row[3 * j + 2];
        p[4 * j + 3] = 0xff;
      }
      px = scratch->pixels;
    } else if (((guintptr) row & 3) != 0) {
      memcpy (scratch->pixels, row, (gsize) w * 4);
      px = scratch->pixels;
    } else {
      px = (const guint32 *) row;
    }
    float *r = planes + (gsize) i * pw;
    float *d[3] = { r, r + plane, r + 2 * plane };
    fn (d[order[0]], d[order[1]], d[order[2]],
        alpha ? alpha + (gsize) i * w : scratch->bytes, px, scale, offset, w);
    for (int k = 0; k < 3; k++)
      for (int j = w; j < pw; j++)
        d[k][j] = d[k][nf_convert_reflect (j, w)];
  }
  for (int k = 0; k < 3; k++)
    for (int i = h; i < ph; i++)
      memcpy (planes + k * plane + (gsize) i * pw,
          planes + k * plane + (gsize) nf_convert_reflect (i, h) * pw, sizeof (float) * pw);
}

void
nf_convert_pack (const NfConvertImpl *impl, NfConvertScratch *scratch,
    NfLayout l, guint8 *dst, int stride, int w, int h,
    const float *y, int yw, gsize y_plane, const float *x, int xw, gsize x_plane,
    const guint8 *alpha, int alpha_stride, int alpha_scale,
    float ya, float xa, float b)
{
  const LayoutInfo *li = &layouts[l];
  gboolean a_first;
  int order[3];

  g_return_if_fail (w <= scratch->max_width && w <= yw);
  layout_kernel (li, &a_first, order);
  NfPackRowFn fn = a_first ? impl->pack_a3 : impl->pack_3a;
  if (!x) {
    x = y;
    xw = yw;
    x_plane = y_plane;
    xa = 0.0f;
  }
  if (alpha_scale < 1)
    alpha_scale = 1;

  for (int i = 0; i < h; i++) {
    guint8 *row = dst + (gsize) i * stride;
    const float *yr = y + (gsize) i * yw, *xr = x + (gsize) i * xw;
    const float *ys[3] = { yr, yr + y_plane, yr + 2 * y_plane };
    const float *xs[3] = { xr, xr + x_plane, xr + 2 * x_plane };
    const guint8 *a;
    if (!alpha) {
      a = scratch->opaque;
    } else if (alpha_scale == 1) {
      a = alpha + (gsize) i * alpha_stride;
    } else {
      const guint8 *ar = alpha + (gsize) (i / alpha_scale) * alpha_stride;
      for (int j = 0; j < w; j++)
        scratch->bytes[j] = ar[j / alpha_scale];
      a = scratch->bytes;
    }
    gboolean direct = li->bpp == 4 && ((guintptr) row & 3) == 0;
    guint32 *px = direct ? (guint32 *) row : scratch->pixels;
    fn (px, ys[order[0]], ys[order[1]], ys[order[2]], xs[order[0]], xs[order[1]],
        xs[order[2]], a, ya, xa, b, w);
    if (direct)
      continue;
    if (li->bpp == 4) {
      memcpy (row, scratch->pixels, (gsize) w * 4);
    } else {
      const guint8 *p = (const guint8 *) scratch->pixels;
      for (int j = 0; j < w; j++) {
        row[3 * j] = p[4 * j];
        row[3 * j + 1] = p[4 * j + 1];
        row[3 * j + 2] = p[4 * j + 2];
      }
    }
  }
}

/* ---- Y'CbCr 4:2:0 ------------------------------------------------------------- */

void
nf_yuv_matrix_init (NfYuvMatrix *m, double kr, double kb, gboolean full_range)
{
  m->kr = (float) kr;
  m->kb = (float) kb;
  m->y_off = full_range ? 0.0f : 16.0f;
  m->y_scale = full_range ? 255.0f : 219.0f;
  m->c_off = 128.0f;
  m->c_scale = full_range ? 255.0f : 224.0f;
}

static inline float
clamp01 (float v)
{
  return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

static inline guint8
to_byte (float v)
{
  if (!(v >= 0.0f))
    return 0;
  if (v > 255.0f)
    return 255;
  return (guint8) (int) (v + 0.5f);
}

void
nf_convert_yuv_unpack (const NfYuvMatrix *m, gboolean nv12,
    const guint8 *y, int ys, const guint8 *u, int us, const guint8 *v, int vs,
    int w, int h, float *planes, int pw, int ph, float scale, float offset)
{
  gsize plane = (gsize) pw * ph;
  const float kr = m->kr, kb = m->kb, kg = 1.0f - kr - kb;
  const float cr_r = 2.0f * (1.0f - kr), cb_b = 2.0f * (1.0f - kb);
  const float iy = 1.0f / m->y_scale, ic = 1.0f / m->c_scale;
  const float s = 255.0f * scale;

  for (int i = 0; i < h; i++) {
    const guint8 *yr = y + (gsize) i * ys;
    const guint8 *ur = u + (gsize) (i / 2) * us;
    const guint8 *vr = nv12 ? ur + 1 : v + (gsize) (i / 2) * vs;
    int cstep = nv12 ? 2 : 1;
    float *r = planes + (gsize) i * pw, *g = r + plane, *bl = r + 2 * plane;
    for (int j = 0; j < w; j++) {
      float yy = ((float) yr[j] - m->y_off) * iy;
      float cb = ((float) ur[(j / 2) * cstep] - m->c_off) * ic;
      float cr = ((float) vr[(j / 2) * cstep] - m->c_off) * ic;
      float rr = clamp01 (yy + cr_r * cr);
      float bb = clamp01 (yy + cb_b * cb);
      float gg = clamp01 ((yy - kr * (yy + cr_r * cr) - kb * (yy + cb_b * cb)) / kg);
      r[j] = rr * s + offset;
      g[j] = gg * s + offset;
      bl[j] = bb * s + offset;
    }
    for (int k = 0; k < 3; k++) {
      float *d = planes + k * plane + (gsize) i * pw;
      for (int j = w; j < pw; j++)
        d[j] = d[nf_convert_reflect (j, w)];
    }
  }
  for (int k = 0; k < 3; k++)
    for (int i = h; i < ph; i++)
      memcpy (planes + k * plane + (gsize) i * pw,
          planes + k * plane + (gsize) nf_convert_reflect (i, h) * pw, sizeof (float) * pw);
}

void
nf_convert_yuv_pack (const NfYuvMatrix *m, gboolean nv12,
    guint8 *y, int ys, guint8 *u, int us, guint8 *v, int vs, int w, int h,
    const float *yp, int yw, gsize y_plane, const float *x, int xw, gsize x_plane,
    float ya, float xa, float b)
{
  const float kr = m->kr, kb = m->kb, kg = 1.0f - kr - kb;
  const float cb_s = 0.5f / (1.0f - kb), cr_s = 0.5f / (1.0f - kr);

  if (!x) {
    x = yp;
    xw = yw;
    x_plane = y_plane;
    xa = 0.0f;
  }
  /* One pair of rows at a time: luma per pixel, chroma per 2x2 block. */
  for (int i0 = 0; i0 < h; i0 += 2) {
    int rows = MIN (2, h - i0);
    guint8 *ur = u ? u + (gsize) (i0 / 2) * us : NULL;
    guint8 *vr = !u ? NULL : nv12 ? ur + 1 : v + (gsize) (i0 / 2) * vs;
    int cstep = nv12 ? 2 : 1;
    for (int j0 = 0; j0 < w; j0 += 2) {
      int cols = MIN (2, w - j0);
      float sum_cb = 0.0f, sum_cr = 0.0f;
      for (int di = 0; di < rows; di++) {
        int i = i0 + di;
        const float *yr = yp + (gsize) i * yw, *xr = x + (gsize) i * xw;
        for (int dj = 0; dj < cols; dj++) {
          int j = j0 + dj;
          float rgb[3];
          for (int k = 0; k < 3; k++) {
            float t = yr[k * y_plane + j] * ya + xr[k * x_plane + j] * xa + b;
            rgb[k] = (t >= 0.0f ? (t <= 255.0f ? t : 255.0f) : 0.0f) * (1.0f / 255.0f);
          }
          float yy = kr * rgb[0] + kg * rgb[1] + kb * rgb[2];
          y[(gsize) i * ys + j] = to_byte (m->y_off + m->y_scale * yy);
          sum_cb += (rgb[2] - yy) * cb_s;
          sum_cr += (rgb[0] - yy) * cr_s;
        }
      }
      if (!ur)
        continue;
      float n = (float) (rows * cols);
      ur[(j0 / 2) * cstep] = to_byte (m->c_off + m->c_scale * sum_cb / n);
      vr[(j0 / 2) * cstep] = to_byte (m->c_off + m->c_scale * sum_cr / n);
    }
  }
}
