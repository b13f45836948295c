/* nf-trainer-output.c — what a training session writes besides checkpoints: preview
 * images of the network on held-out pictures (with their scores) and the final weight
 * file with its "training" metadata.
 *
 * What it does not: train or checkpoint (nf-trainer.c).
 */
#include "nf-trainer.h"
#include "nf-trainer-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "nf-engine.h"
#include "nf-error.h"
#include "nf-image.h"
#include "nf-jsonw.h"
#include "nf-losses.h"
#include "nf-metrics.h"
#include "nf-resample.h"
#include "nf-trainnet.h"

/* ---- previews ------------------------------------------------------------------------------ */

/* Pastes (3, h, w) 0..255 into img at (x0, y0), rounding and clamping. */
static void
paste (NfImage *img, const float *rgb, int w, int h, int x0, int y0)
{
  size_t hw = (size_t) w * h;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        float v = rgb[c * hw + (size_t) y * w + x];
        img->rgb[((size_t) (y0 + y) * img->width + x0 + x) * 3 + c] =
            (uint8_t) CLAMP (lrintf (v), 0, 255);
      }
}

static void
round_clamp (float *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    v[i] = CLAMP (rintf (v[i]), 0.0f, 255.0f);
}

/* The network on one (1, 3, h, w) 0..255 image -> 0..255 output (nf_free). */
static float *
run_net (NfTrainer *t, NfEngine *e, const float *rgb, int w, int h, GError **error)
{
  NfShape s = { 1, 3, h, w };
  size_t n = nf_shape_numel (s);
  float *x = nf_alloc_floats (n);
  nf_trainer_to_input (t->model, rgb, x, n);
  int sc = t->model->scale;
  size_t no = n * sc * sc;
  float *y = nf_alloc_floats (no);
  gboolean ok = nf_engine_run_host (e, x, s, y, error);
  nf_free (x);
  if (!ok) {
    nf_free (y);
    return NULL;
  }
  nf_trainer_from_output (t->model, y, y, no);
  return y;
}

gboolean
nf_trainer_preview (NfTrainer *t, const char *png_path, char **summary, GError **error)
{
  guint np = t->previews->len;
  if (np == 0) {
    if (summary)
      *summary = g_strdup ("no preview images");
    return TRUE;
  }
  /* the preview engine prepares from the model's tensors (a GPU keeps newer weights) */
  if (!nf_trainnet_host_weights (t->net, error))
    return FALSE;
  int cols = t->style ? 2 : 3, W = 0, H = 0;
  for (guint i = 0; i < np; i++) {
    PreviewImage *p = &g_array_index (t->previews, PreviewImage, i);
    W = MAX (W, cols * p->w);
    H += p->h;
  }
  NfImage *img = nf_image_new (W, H);
  NfEngine *e = nf_engine_new (t->model, t->be, NULL);
  double m_content = 0, m_style = 0, psnr = 0, psnr_bic = 0;
  gboolean ok = TRUE;
  int y0 = 0;
  for (guint i = 0; ok && i < np; i++) {
    PreviewImage *p = &g_array_index (t->previews, PreviewImage, i);
    size_t n = (size_t) 3 * p->w * p->h;
    if (t->style) {
      float *out = run_net (t, e, p->rgb, p->w, p->h, error);
      ok = out != NULL;
      if (ok) {
        round_clamp (out, n);
        NfPerceptualLosses pl;
        ok = nf_perceptual_eval (t->eval, (NfShape) { 1, 3, p->h, p->w }, out, p->rgb, NULL,
            &pl, error);
        m_content += pl.content / np;
        m_style += pl.style / np;
        paste (img, p->rgb, p->w, p->h, 0, y0);
        paste (img, out, p->w, p->h, p->w, y0);
      }
      nf_free (out);
    } else {
      int s = t->r->scale, lw = p->w / s, lh = p->h / s;
      float *out = run_net (t, e, p->lr, lw, lh, error);
      float *bic = nf_alloc_floats (n);
      nf_resample_planar (p->lr, 3, lh, lw, bic, p->h, p->w, NF_FILTER_BICUBIC);
      round_clamp (bic, n);
      ok = out != NULL;
      if (ok) {
        round_clamp (out, n);
        psnr += nf_psnr_y (out, p->rgb, p->h, p->w, s) / np;
        psnr_bic += nf_psnr_y (bic, p->rgb, p->h, p->w, s) / np;
        paste (img, bic, p->w, p->h, 0, y0);
        paste (img, out, p->w, p->h, p->w, y0);
        paste (img, p->rgb, p->w, p->h, 2 * p->w, y0);
      }
      nf_free (out);
      nf_free (bic);
    }
    y0 += p->h;
  }
  nf_engine_free (e);
  if (ok && t->style && t->unstyled_style == 0.0) {
    /* baseline once: the photos themselves against the style */
    for (guint i = 0; ok && i < np; i++) {
      PreviewImage *p = &g_array_index (t->previews, PreviewImage, i);
      NfPerceptualLosses pl;
      ok = nf_perceptual_eval (t->eval, (NfShape) { 1, 3, p->h, p->w }, p->rgb, p->rgb, NULL,
          &pl, error);
      t->unstyled_style += pl.style / np;
    }
  }
  ok = ok && nf_image_save (img, png_path, error);
  nf_image_free (img);
  if (ok && summary) {
    if (t->style)
      *summary = g_strdup_printf ("preview (%u images): content %.4g, style %.4g "
          "(unstyled photos %.4g, ratio %.3f)", np, m_content, m_style, t->unstyled_style,
          t->unstyled_style > 0 ? m_style / t->unstyled_style : NAN);
    else
      *summary = g_strdup_printf ("preview (%u crops): PSNR-Y %.2f dB, bicubic %.2f dB "
          "(%+.2f)", np, psnr, psnr_bic, psnr - psnr_bic);
  }
  return ok;
}

/* ---- export ----------------------------------------------------------------------------- */

static char *
file_sha256 (const char *path)
{
  gchar *data;
  gsize len;
  if (!path || !g_file_get_contents (path, &data, &len, NULL))
    return NULL;
  char *h = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
  g_free (data);
  return h;
}

gboolean
nf_trainer_export (NfTrainer *t, const char *path, GError **error)
{
  const NfRecipe *r = t->r;
  /* the file is the model's tensors (a GPU keeps newer weights) */
  if (!nf_trainnet_host_weights (t->net, error))
    return FALSE;
  GString *j = g_string_new ("{");
  nf_jsonw_key (j, "tool", TRUE);
  nf_jsonw_string (j, "nf-train (neuralfilter)");
  char *rj = nf_recipe_to_json (r, FALSE);
  nf_jsonw_key (j, "recipe", FALSE);
  g_string_append (j, rj);
  g_free (rj);
  nf_jsonw_key (j, "steps", FALSE);
  g_string_append_printf (j, "%" G_GUINT64_FORMAT, t->step);
  nf_jsonw_key (j, "images_seen", FALSE);
  g_string_append_printf (j, "%" G_GUINT64_FORMAT, t->step * (guint64) r->batch);
  nf_jsonw_key (j, "elapsed_s", FALSE);
  nf_jsonw_double (j, nf_trainer_elapsed (t));
  nf_jsonw_key (j, "backend", FALSE);
  nf_jsonw_string (j, t->be->iface->name);
  nf_jsonw_key (j, "train_files", FALSE);
  g_string_append_printf (j, "%d", nf_dataset_size (t->ds));
  char *fp = g_strdup_printf ("%016" G_GINT64_MODIFIER "x", nf_dataset_fingerprint (t->ds));
  nf_jsonw_key (j, "train_files_fingerprint", FALSE);
  nf_jsonw_string (j, fp);
  g_free (fp);
  const char *hashed[3][2] = { {"style_image_sha256", r->style_image},
  {"lossnet_sha256", t->vgg ? r->lossnet : NULL}, {"init_sha256", r->init}
  };
  for (int i = 0; i < 3; i++) {
    char *h = file_sha256 (hashed[i][1]);
    if (h) {
      nf_jsonw_key (j, hashed[i][0], FALSE);
      nf_jsonw_string (j, h);
    }
    g_free (h);
  }
  nf_jsonw_key (j, "final_losses", FALSE);
  const char *lk[5] = { "total", "content", "style", "tv", "pixel" };
  double lv[5] = { t->last.total, t->last.content, t->last.style, t->last.tv, t->last.pixel };
  for (int i = 0; i < 5; i++) {
    g_string_append (j, i ? "" : "{");
    nf_jsonw_key (j, lk[i], i == 0);
    nf_jsonw_double (j, lv[i]);
  }
  g_string_append_c (j, '}');
  if (nf_trainnet_has_batch_norm (t->net)) {
    nf_jsonw_key (j, "batch_norm", FALSE);
    nf_jsonw_string (j, g_str_equal (r->bn_stats, "data")
        ? "trained as a per-channel affine; statistics frozen from the first batch"
        : "trained as a per-channel affine; unit statistics (mean 0, var 1)");
  }
  GDateTime *now = g_date_time_new_now_utc ();
  char *date = g_date_time_format_iso8601 (now);
  nf_jsonw_key (j, "date", FALSE);
  nf_jsonw_string (j, date);
  g_free (date);
  g_date_time_unref (now);
  g_string_append_c (j, '}');
  char *training = g_string_free (j, FALSE);

  nf_model_set_metadata (t->model, "training", training);
  nf_model_set_metadata (t->model, "name", r->name);
  nf_model_set_metadata (t->model, "arch", r->arch);
  if (r->license)
    nf_model_set_metadata (t->model, "license", r->license);
  g_free (training);
  char *tmp = g_strconcat (path, ".tmp", NULL);
  gboolean ok = nf_model_save (t->model, tmp, NF_DTYPE_F32, error);
  if (ok && g_rename (tmp, path) != 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "cannot rename %s to %s: %s", tmp, path,
        g_strerror (errno));
    ok = FALSE;
  }
  if (!ok)
    g_unlink (tmp);
  g_free (tmp);
  return ok;
}
