/* nf-eval.h — scoring trained models on held-out images, as the issue judges them.
 *
 * Super-resolution (per HR image): the image is cropped to a multiple of the scale
 * (top-left, as the usual "modcrop"), degraded exactly as in training (nf-degrade.h),
 * upscaled by the model (its output rounded and clamped to 8 bit, as the element would
 * deliver it), by bicubic and by Lanczos-3 (nf-resample.h, also rounded); each is
 * scored against the HR image with PSNR and SSIM on the Y channel, `scale` pixels
 * shaved on every side (nf-metrics.h).
 *
 * Style (per photo): the photo scaled to `size` on its long side (area averaging; then
 * centre-cropped to a multiple of the network's size multiple, 4), stylised (rounded and
 * clamped to 8 bit), and through the VGG loss network (caffe preprocessing):
 *   content  = MSE of relu2_2 activations between output and photo
 *   style    = sum over the style layers of the Gram MSE between output and painting
 *              (weights 1; layers relu1_2, relu2_2, relu3_3 by default)
 *   unstyled = the same style loss of the photo itself (the baseline)
 * A model passes the bar when mean style <= mean unstyled / 3 and mean content
 * <= 1.5e5.
 *
 * What it does not: find files or print (nf-evaluate.c), train.
 */
#pragma once

#include <glib.h>

#include "nf-backend.h"
#include "nf-degrade.h"
#include "nf-model.h"
#include "nf-perceptual.h"

G_BEGIN_DECLS

typedef struct {
  int w, h;                     /* HR size after the modcrop */
  double psnr, ssim;            /* the model */
  double psnr_bicubic, ssim_bicubic;
  double psnr_lanczos, ssim_lanczos;
} NfSrScores;

/* hr (3, h, w) 0..255. sr_out: optional, receives the model's (3, h', w') 8-bit-valued
 * output (nf_free). */
gboolean nf_eval_sr_image (NfModel *m, NfBackend *be, const NfDegrade *d, const float *hr,
    int w, int h, NfSrScores *out, float **sr_out, GError **error);

typedef struct {
  int w, h;                     /* evaluated size */
  double content, style, unstyled;
} NfStyleScores;

/* photo (3, h, w) 0..255 at its own size; p: content layer relu2_2 and the style layers,
 * with the painting's Gram targets set. out_rgb: optional stylised output (nf_free). */
gboolean nf_eval_style_image (NfModel *m, NfBackend *be, NfPerceptual *p, const float *photo,
    int w, int h, int size, NfStyleScores *out, float **out_rgb, int *out_w, int *out_h,
    GError **error);

/* The model's input at 0..255 and its output back to 0..255, rounded and clamped. */
gboolean nf_eval_run (NfModel *m, NfBackend *be, const float *rgb, int w, int h,
    float **out, GError **error);

G_END_DECLS
