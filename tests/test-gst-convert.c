/* test-gst-convert.c — the plugin's pixel conversions: ORC against plain C, and both
 * against a naive per-pixel reference.
 *
 * Checks: every row kernel gives the same bytes/floats in C and ORC on random rows of
 * odd lengths (out-of-range and NaN inputs included); every layout unpacks to the right
 * planes in the right order, with reflection padding, from unaligned rows with odd
 * strides; packs with blend and nearest alpha; u8 -> float -> u8 is lossless.
 * I420/NV12: known colours through BT.601/BT.709 and full range, and 4:2:0 round
 * trips within 1 LSB at odd sizes.
 * Does not: networks or GStreamer (test-gst-elements).
 * Without ORC in the build, the C path is checked against the reference only.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-convert.h"
#include "nf-tensor.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static const NfConvertImpl *
other_impl (void)
{
#ifdef NF_HAVE_ORC
  return &nf_convert_impl_orc;
#else
  return &nf_convert_impl_c;
#endif
}

static void
random_bytes (NfRng * rng, guint8 * p, gsize n)
{
  for (gsize i = 0; i < n; i++)
    p[i] = nf_rng_u32 (rng) & 0xff;
}

/* Row kernels: C vs ORC, bit for bit. */
static void
test_row_kernels (NfRng * rng)
{
  const NfConvertImpl *c = &nf_convert_impl_c, *o = other_impl ();
  const int lens[] = { 1, 3, 7, 16, 64, 133, 1001 };
  const float params[][2] = { {1.0f, 0.0f}, {1.0f / 255, 0.0f}, {2.0f / 255, -1.0f},
  {0.7f, 13.5f}
  };
  int unpack_diffs = 0, pack_diffs = 0, pack_max = 0;

  for (guint li = 0; li < G_N_ELEMENTS (lens); li++) {
    int n = lens[li];
    guint32 *src = g_new (guint32, n);
    float *fc = g_new (float, 3 * n), *fo = g_new (float, 3 * n);
    guint8 *ac = g_new (guint8, n), *ao = g_new (guint8, n);
    random_bytes (rng, (guint8 *) src, (gsize) n * 4);

    for (guint pi = 0; pi < G_N_ELEMENTS (params); pi++) {
      for (int v = 0; v < 2; v++) {
        NfUnpackRowFn fnc = v ? c->unpack_a3 : c->unpack_3a;
        NfUnpackRowFn fno = v ? o->unpack_a3 : o->unpack_3a;
        fnc (fc, fc + n, fc + 2 * n, ac, src, params[pi][0], params[pi][1], n);
        fno (fo, fo + n, fo + 2 * n, ao, src, params[pi][0], params[pi][1], n);
        if (memcmp (fc, fo, sizeof (float) * 3 * n) || memcmp (ac, ao, n))
          unpack_diffs++;
      }
    }

    /* pack: network outputs around and beyond the range, some NaN */
    float *y = g_new (float, 3 * n), *x = g_new (float, 3 * n);
    guint32 *dc = g_new (guint32, n), *dd = g_new (guint32, n);
    for (int i = 0; i < 3 * n; i++) {
      y[i] = nf_rng_uniform (rng) * 320.0f - 30.0f;
      x[i] = nf_rng_uniform (rng) * 255.0f;
      if (i % 97 == 5)
        y[i] = NAN;
      if (i % 101 == 7)
        y[i] = -NAN;
      if (i % 89 == 3)
        y[i] = floorf (y[i]) + 0.5f;    /* exact ties */
    }
    const float pk[][3] = { {1, 0, 0}, {0.5f, 0.5f, 0}, {255.0f, 0, 0},
    {127.5f, 0, 127.5f}, {0.25f, 0.75f, 3.0f}
    };
    for (guint pi = 0; pi < G_N_ELEMENTS (pk); pi++) {
      for (int v = 0; v < 2; v++) {
        NfPackRowFn fnc = v ? c->pack_a3 : c->pack_3a;
        NfPackRowFn fno = v ? o->pack_a3 : o->pack_3a;
        float ya = pk[pi][0], xa = pk[pi][1], b = pk[pi][2];
        if (ya > 2.0f) {        /* inputs in 0..1 or -1..1 for these */
          for (int i = 0; i < 3 * n; i++)
            y[i] = isnan (y[i]) ? y[i] : y[i] / 255.0f;
        }
        fnc (dc, y, y + n, y + 2 * n, x, x + n, x + 2 * n, ac, ya, xa, b, n);
        fno (dd, y, y + n, y + 2 * n, x, x + n, x + 2 * n, ac, ya, xa, b, n);
        if (ya > 2.0f) {
          for (int i = 0; i < 3 * n; i++)
            y[i] = isnan (y[i]) ? y[i] : y[i] * 255.0f;
        }
        const guint8 *bc = (const guint8 *) dc, *bd = (const guint8 *) dd;
        int diff = 0;
        for (int i = 0; i < 4 * n; i++) {
          int d = abs ((int) bc[i] - (int) bd[i]);
          diff = MAX (diff, d);
        }
        if (diff)
          pack_diffs++;
        pack_max = MAX (pack_max, diff);
      }
    }
    g_free (y);
    g_free (x);
    g_free (dc);
    g_free (dd);
    g_free (src);
    g_free (fc);
    g_free (fo);
    g_free (ac);
    g_free (ao);
  }
  printf ("row kernels, C vs %s: unpack %d differing rows, pack %d differing rows "
      "(max %d LSB)\n", other_impl ()->name, unpack_diffs, pack_diffs, pack_max);
  CHECK (unpack_diffs == 0, "unpack C and %s differ", other_impl ()->name);
  CHECK (pack_diffs == 0, "pack C and %s differ by up to %d", other_impl ()->name,
      pack_max);
}

typedef struct {
  NfLayout l;
  const char *name;
  int r, g, b, a;               /* byte offsets; a = -1: none */
  gboolean alpha;               /* the fourth byte is real alpha */
} LayoutRef;

static const LayoutRef layouts[] = {
  {NF_LAYOUT_RGB, "RGB", 0, 1, 2, -1, FALSE},
  {NF_LAYOUT_BGR, "BGR", 2, 1, 0, -1, FALSE},
  {NF_LAYOUT_RGBX, "RGBx", 0, 1, 2, 3, FALSE},
  {NF_LAYOUT_BGRX, "BGRx", 2, 1, 0, 3, FALSE},
  {NF_LAYOUT_XRGB, "xRGB", 1, 2, 3, 0, FALSE},
  {NF_LAYOUT_XBGR, "xBGR", 3, 2, 1, 0, FALSE},
  {NF_LAYOUT_RGBA, "RGBA", 0, 1, 2, 3, TRUE},
  {NF_LAYOUT_BGRA, "BGRA", 2, 1, 0, 3, TRUE},
};

static int
reflect_ref (int i, int n)
{
  while (i >= n || i < 0) {
    if (n == 1)
      return 0;
    if (i >= n)
      i = 2 * (n - 1) - i;
    if (i < 0)
      i = -i;
  }
  return i;
}

/* Frames: both implementations against the naive reference, every layout. */
static void
test_frames (NfRng * rng, const NfConvertImpl * impl, const LayoutRef * L, int w,
    int h, int mult, int misalign)
{
  int bpp = nf_layout_bytes_per_pixel (L->l);
  int stride = w * bpp + 5 + misalign;  /* odd stride: rows not aligned */
  int pw = (w + mult - 1) / mult * mult, ph = (h + mult - 1) / mult * mult;
  gsize plane = (gsize) pw * ph;
  guint8 *mem = g_malloc ((gsize) stride * h + 16);
  guint8 *src = mem + misalign;
  float *planes = nf_alloc_floats (3 * plane);
  guint8 *alpha = g_malloc ((gsize) w * h);
  float scale = 2.0f / 255, offset = -1.0f;
  const int off[3] = { L->r, L->g, L->b };
  NfConvertScratch *scratch = nf_convert_scratch_new (4 * w);
  int bad = 0;

  random_bytes (rng, mem, (gsize) stride * h + 16);
  nf_convert_unpack (impl, scratch, L->l, src, stride, w, h, planes, pw, ph, alpha,
      scale, offset);
  for (int i = 0; i < ph; i++)
    for (int j = 0; j < pw; j++)
      for (int k = 0; k < 3; k++) {
        int si = reflect_ref (i, h), sj = reflect_ref (j, w);
        float want = (float) src[(gsize) si * stride + sj * bpp + off[k]] * scale + offset;
        if (planes[k * plane + (gsize) i * pw + j] != want)
          bad++;
      }
  if (L->a >= 0)
    for (int i = 0; i < h; i++)
      for (int j = 0; j < w; j++)
        if (alpha[(gsize) i * w + j] != src[(gsize) i * stride + j * bpp + L->a])
          bad++;
  CHECK (bad == 0, "%s unpack %s %dx%d (pad to %d, misalign %d): %d wrong values",
      impl->name, L->name, w, h, mult, misalign, bad);

  /* pack back at 1x with a blend against a second image, alpha from the plane */
  float *x = nf_alloc_floats (3 * plane);
  for (gsize i = 0; i < 3 * plane; i++)
    x[i] = nf_rng_uniform (rng) * 2.0f - 1.0f;
  guint8 *dmem = g_malloc ((gsize) stride * h + 16);
  guint8 *dst = dmem + misalign;
  memset (dmem, 0x5a, (gsize) stride * h + 16);
  float s = 0.3f, ya = s * 255 / 2.0f, xa = (1 - s) * 255 / 2.0f, b = ya + xa;
  nf_convert_pack (impl, scratch, L->l, dst, stride, w, h, planes, pw, plane, x, pw,
      plane, L->alpha ? alpha : NULL, w, 1, ya, xa, b);
  bad = 0;
  for (int i = 0; i < h; i++) {
    for (int j = 0; j < w; j++) {
      const guint8 *px = dst + (gsize) i * stride + j * bpp;
      for (int k = 0; k < 3; k++) {
        gsize pi = k * plane + (gsize) i * pw + j;
        float v = planes[pi] * ya + x[pi] * xa + b;
        int want = (int) (fminf (fmaxf (v, 0.0f), 255.0f) + 0.5f);
        if (abs (px[off[k]] - want) > 0)
          bad++;
      }
      if (L->a >= 0 && px[L->a] != (L->alpha ? alpha[(gsize) i * w + j] : 0xff))
        bad++;
    }
    /* bytes past the row untouched */
    for (int j = w * bpp; j < stride && i < h - 1; j++)
      if (dst[(gsize) i * stride + j] != 0x5a)
        bad++;
  }
  CHECK (bad == 0, "%s pack %s %dx%d: %d wrong bytes", impl->name, L->name, w, h, bad);

  /* lossless round trip u8 -> float -> u8 */
  nf_convert_unpack (impl, scratch, L->l, src, stride, w, h, planes, pw, ph, alpha,
      1.0f, 0.0f);
  nf_convert_pack (impl, scratch, L->l, dst, stride, w, h, planes, pw, plane, NULL, 0,
      0, L->alpha ? alpha : NULL, w, 1, 1.0f, 0.0f, 0.0f);
  bad = 0;
  for (int i = 0; i < h; i++)
    for (int j = 0; j < w; j++)
      for (int k = 0; k < 3; k++)
        if (dst[(gsize) i * stride + j * bpp + off[k]]
            != src[(gsize) i * stride + j * bpp + off[k]])
          bad++;
  CHECK (bad == 0, "%s round trip %s %dx%d: %d bytes changed", impl->name, L->name, w,
      h, bad);

  /* 2x output with nearest alpha */
  if (L->alpha) {
    int ow = 2 * w, oh = 2 * h;
    int ostride = ow * bpp + 3;
    float *big = nf_alloc_floats (3 * (gsize) ow * oh);
    guint8 *out = g_malloc ((gsize) ostride * oh);
    NfConvertScratch *s2 = nf_convert_scratch_new (ow);
    nf_convert_pack (impl, s2, L->l, out, ostride, ow, oh, big, ow, (gsize) ow * oh,
        NULL, 0, 0, alpha, w, 2, 1.0f, 0.0f, 0.0f);
    bad = 0;
    for (int i = 0; i < oh; i++)
      for (int j = 0; j < ow; j++)
        if (out[(gsize) i * ostride + j * bpp + L->a] != alpha[(gsize) (i / 2) * w + j / 2])
          bad++;
    CHECK (bad == 0, "%s 2x alpha %s: %d wrong", impl->name, L->name, bad);
    nf_convert_scratch_free (s2);
    nf_free (big);
    g_free (out);
  }

  nf_convert_scratch_free (scratch);
  nf_free (x);
  nf_free (planes);
  g_free (mem);
  g_free (dmem);
  g_free (alpha);
}

/* Known colours through the matrices, and 4:2:0 round trips within 1 LSB. */
static void
test_yuv (NfRng * rng)
{
  NfYuvMatrix bt601, bt709, full;
  nf_yuv_matrix_init (&bt601, 0.299, 0.114, FALSE);
  nf_yuv_matrix_init (&bt709, 0.2126, 0.0722, FALSE);
  nf_yuv_matrix_init (&full, 0.299, 0.114, TRUE);

  /* pure red, 2x2 (one chroma sample), through pack: BT.709 gives 63, 102, 240 */
  float red[3 * 4] = { 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0 };
  guint8 y[4], u, v;
  nf_convert_yuv_pack (&bt709, FALSE, y, 2, &u, 1, &v, 1, 2, 2, red, 2, 4, NULL, 0, 0,
      1.0f, 0.0f, 0.0f);
  CHECK (y[0] == 63 && y[3] == 63 && u == 102 && v == 240,
      "BT.709 red: %d %d %d, want 63 102 240", y[0], u, v);
  nf_convert_yuv_pack (&bt601, FALSE, y, 2, &u, 1, &v, 1, 2, 2, red, 2, 4, NULL, 0, 0,
      1.0f, 0.0f, 0.0f);
  CHECK (y[0] == 81 && u == 90 && v == 240, "BT.601 red: %d %d %d, want 81 90 240",
      y[0], u, v);
  /* limited-range white and black */
  guint8 yy[2] = { 235, 16 }, uv[2] = { 128, 128 };
  float rgb[3 * 2];
  nf_convert_yuv_unpack (&bt601, TRUE, yy, 2, uv, 2, NULL, 0, 2, 1, rgb, 2, 1, 1.0f, 0.0f);
  CHECK (fabsf (rgb[0] - 255) < 1e-3 && fabsf (rgb[2] - 255) < 1e-3
      && fabsf (rgb[4] - 255) < 1e-3 && fabsf (rgb[1]) < 1e-3,
      "white/black: %g %g %g / %g", rgb[0], rgb[2], rgb[4], rgb[1]);

  /* round trips, I420 and NV12, odd sizes, in-gamut random content */
  const int sizes[][2] = { {1, 1}, {2, 2}, {7, 5}, {33, 17}, {64, 48} };
  for (guint si = 0; si < G_N_ELEMENTS (sizes); si++)
    for (int nv12 = 0; nv12 < 2; nv12++)
      for (int mi = 0; mi < 3; mi++) {
        const NfYuvMatrix *m = mi == 0 ? &bt601 : mi == 1 ? &bt709 : &full;
        int w = sizes[si][0], h = sizes[si][1], cw = (w + 1) / 2, ch = (h + 1) / 2;
        int pw = (w + 3) / 4 * 4, ph = (h + 3) / 4 * 4;
        int ys = w + 3, cs = (nv12 ? 2 * cw : cw) + 5;
        guint8 *Y = g_malloc ((gsize) ys * h), *U = g_malloc ((gsize) cs * ch);
        guint8 *V = g_malloc ((gsize) cs * ch);
        guint8 *Y2 = g_malloc0 ((gsize) ys * h), *U2 = g_malloc0 ((gsize) cs * ch);
        guint8 *V2 = g_malloc0 ((gsize) cs * ch);
        for (int i = 0; i < ys * h; i++)
          Y[i] = 80 + nf_rng_u32 (rng) % 90;
        for (int i = 0; i < cs * ch; i++) {
          U[i] = 108 + nf_rng_u32 (rng) % 40;
          V[i] = 108 + nf_rng_u32 (rng) % 40;
        }
        float *planes = nf_alloc_floats (3 * (gsize) pw * ph);
        nf_convert_yuv_unpack (m, nv12, Y, ys, U, cs, V, cs, w, h, planes, pw, ph,
            2.0f / 255, -1.0f);
        float k = 255.0f / 2;
        nf_convert_yuv_pack (m, nv12, Y2, ys, U2, cs, V2, cs, w, h, planes, pw,
            (gsize) pw * ph, NULL, 0, 0, k, 0.0f, k);
        int worst = 0;
        for (int i = 0; i < h; i++)
          for (int j = 0; j < w; j++)
            worst = MAX (worst, abs (Y[i * ys + j] - Y2[i * ys + j]));
        for (int i = 0; i < ch; i++)
          for (int j = 0; j < (nv12 ? 2 * cw : cw); j++) {
            worst = MAX (worst, abs (U[i * cs + j] - U2[i * cs + j]));
            if (!nv12)
              worst = MAX (worst, abs (V[i * cs + j] - V2[i * cs + j]));
          }
        CHECK (worst <= 1, "%s round trip %dx%d matrix %d: off by %d",
            nv12 ? "NV12" : "I420", w, h, mi, worst);
        /* reflection padding */
        for (int i = 0; i < ph; i++)
          for (int j = w; j < pw; j++)
            CHECK (planes[(gsize) i * pw + j] == planes[(gsize) i * pw
                    + reflect_ref (j, w)], "yuv pad");
        nf_free (planes);
        g_free (Y);
        g_free (U);
        g_free (V);
        g_free (Y2);
        g_free (U2);
        g_free (V2);
      }
}

int
main (void)
{
  NfRng rng;
  nf_rng_seed (&rng, 20240611);

#ifndef NF_HAVE_ORC
  printf ("this build has no ORC: checking the C conversions against the reference\n");
#endif
  test_row_kernels (&rng);
  test_yuv (&rng);

  const int sizes[][3] = { {1, 1, 1}, {1, 5, 4}, {7, 3, 4}, {33, 17, 4}, {64, 48, 1},
  {37, 29, 8}, {2, 2, 4}
  };
  for (guint li = 0; li < G_N_ELEMENTS (layouts); li++)
    for (guint si = 0; si < G_N_ELEMENTS (sizes); si++)
      for (int mis = 0; mis < 2; mis++) {
        test_frames (&rng, &nf_convert_impl_c, &layouts[li], sizes[si][0],
            sizes[si][1], sizes[si][2], mis);
        test_frames (&rng, other_impl (), &layouts[li], sizes[si][0], sizes[si][1],
            sizes[si][2], mis);
      }

  printf ("%s\n", failures ? "FAILED" : "all conversion checks passed");
  return failures ? 1 : 0;
}
