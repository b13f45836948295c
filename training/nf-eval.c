/* nf-eval.c — per-image scores of SR and style models (definitions in nf-eval.h).
 *
 * What it does: modcrop, degradation, the network through an inference engine, bicubic
 * and Lanczos baselines, Y-channel PSNR/SSIM; photo scaling, stylisation and the
 * perceptual losses of output and photo.
 * What it does not: choose files, aggregate, print.
 */
#include "nf-eval.h"

#include <math.h>
#include <string.h>

#include "nf-engine.h"
#include "nf-error.h"
#include "nf-metrics.h"
#include "nf-resample.h"
#include "nf-resize.h"

static void
round_clamp (float *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    v[i] = CLAMP (rintf (v[i]), 0.0f, 255.0f);
}

gboolean
nf_eval_run (NfModel *m, NfBackend *be, const float *rgb, int w, int h, float **out,
    GError **error)
{
  NfShape s = { 1, 3, h, w };
  size_t n = nf_shape_numel (s), no = n * m->scale * m->scale;
  float *x = nf_alloc_floats (n), *y = nf_alloc_floats (no);
  float a = (m->in_hi - m->in_lo) / 255.0f;
  for (size_t i = 0; i < n; i++)
    x[i] = rgb[i] * a + m->in_lo;
  NfEngine *e = nf_engine_new (m, be, NULL);
  gboolean ok = nf_engine_run_host (e, x, s, y, error);
  nf_engine_free (e);
  nf_free (x);
  if (!ok) {
    nf_free (y);
    return FALSE;
  }
  float b = 255.0f / (m->out_hi - m->out_lo);
  for (size_t i = 0; i < no; i++)
    y[i] = (y[i] - m->out_lo) * b;
  round_clamp (y, no);
  *out = y;
  return TRUE;
}

/* (3, h, w) -> the (3, ch, cw) window at (x0, y0). */
static float *
crop_planar (const float *src, int w, int h, int x0, int y0, int cw, int ch)
{
  float *d = nf_alloc_floats ((size_t) 3 * cw * ch);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < ch; y++)
      memcpy (d + ((size_t) c * ch + y) * cw, src + ((size_t) c * h + y0 + y) * w + x0,
          sizeof (float) * cw);
  return d;
}

gboolean
nf_eval_sr_image (NfModel *m, NfBackend *be, const NfDegrade *d, const float *hr, int w,
    int h, NfSrScores *out, float **sr_out, GError **error)
{
  int s = m->scale;
  if (d->scale != s) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "the degradation downscales by %d but the model upscales by %d", d->scale, s);
    return FALSE;
  }
  int cw = w / s * s, ch = h / s * s;
  if (cw < 12 * s || ch < 12 * s) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "a %dx%d image is too small to score at scale %d", w, h, s);
    return FALSE;
  }
  float *ref = crop_planar (hr, w, h, 0, 0, cw, ch);
  size_t n = (size_t) 3 * cw * ch;
  int lw = cw / s, lh = ch / s;
  float *lr = nf_alloc_floats ((size_t) 3 * lw * lh), *sr = NULL;
  float *bic = nf_alloc_floats (n), *lan = nf_alloc_floats (n);
  gboolean ok = nf_degrade_planar (d, ref, 3, ch, cw, lr, error)
      && nf_eval_run (m, be, lr, lw, lh, &sr, error);
  if (ok) {
    nf_resample_planar (lr, 3, lh, lw, bic, ch, cw, NF_FILTER_BICUBIC);
    nf_resample_planar (lr, 3, lh, lw, lan, ch, cw, NF_FILTER_LANCZOS3);
    round_clamp (bic, n);
    round_clamp (lan, n);
    out->w = cw;
    out->h = ch;
    out->psnr = nf_psnr_y (sr, ref, ch, cw, s);
    out->ssim = nf_ssim_y (sr, ref, ch, cw, s);
    out->psnr_bicubic = nf_psnr_y (bic, ref, ch, cw, s);
    out->ssim_bicubic = nf_ssim_y (bic, ref, ch, cw, s);
    out->psnr_lanczos = nf_psnr_y (lan, ref, ch, cw, s);
    out->ssim_lanczos = nf_ssim_y (lan, ref, ch, cw, s);
  }
  if (ok && sr_out)
    *sr_out = sr;
  else
    nf_free (sr);
  nf_free (ref);
  nf_free (lr);
  nf_free (bic);
  nf_free (lan);
  return ok;
}

gboolean
nf_eval_style_image (NfModel *m, NfBackend *be, NfPerceptual *p, const float *photo, int w,
    int h, int size, NfStyleScores *out, float **out_rgb, int *out_w, int *out_h,
    GError **error)
{
  int sw, sh;
  nf_resize_fit (w, h, size, &sw, &sh);
  float *scaled = nf_alloc_floats ((size_t) 3 * sw * sh);
  nf_resize_planar (photo, 3, h, w, scaled, sh, sw);
  int mul = MAX (m->size_multiple, 1);
  int cw = sw / mul * mul, ch = sh / mul * mul;
  if (cw < 16 || ch < 16) {
    nf_free (scaled);
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "a %dx%d photo is too small", w, h);
    return FALSE;
  }
  float *x = crop_planar (scaled, sw, sh, (sw - cw) / 2, (sh - ch) / 2, cw, ch);
  nf_free (scaled);
  float *y = NULL;
  NfShape s = { 1, 3, ch, cw };
  NfPerceptualLosses styled, plain;
  gboolean ok = nf_eval_run (m, be, x, cw, ch, &y, error)
      && nf_perceptual_eval (p, s, y, x, NULL, &styled, error)
      && nf_perceptual_eval (p, s, x, x, NULL, &plain, error);
  if (ok) {
    out->w = cw;
    out->h = ch;
    out->content = styled.content;
    out->style = styled.style;
    out->unstyled = plain.style;
  }
  if (ok && out_rgb) {
    *out_rgb = y;
    *out_w = cw;
    *out_h = ch;
  } else {
    nf_free (y);
  }
  nf_free (x);
  return ok;
}
