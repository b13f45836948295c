/* nf-losses.c — content, Gram/style and total-variation losses with their gradients.
 *
 * What it does: reference versions as plain loops with double accumulation, and fast
 * Gram products (G = F F^T and dF = D F) through oneDNN's row-major sgemm, which the
 * library already links for its convolutions.
 * What it does not: know about layers or backends (nf-pixopt.c does).
 */
#include "nf-losses.h"

#include <math.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "nf-error.h"

double
nf_loss_content (const float *f, const float *p, size_t n, double weight, float *grad)
{
  double acc = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = (double) f[i] - p[i];
    acc += d * d;
  }
  if (grad) {
    float k = (float) (2.0 * weight / n);
    for (size_t i = 0; i < n; i++)
      grad[i] += k * (f[i] - p[i]);
  }
  return acc / n;
}

double
nf_loss_pixel_chroma (const float *f, const float *p, NfShape s, double chroma_weight,
    double weight, float *grad)
{
  const double n0 = 0.299, n1 = 0.587, n2 = 0.114;
  const double len = sqrt (n0 * n0 + n1 * n1 + n2 * n2);
  const double u[3] = { n0 / len, n1 / len, n2 / len };
  size_t hw = (size_t) s.h * s.w, total = (size_t) s.n * 3 * hw;
  double acc = 0.0, g = 2.0 * weight / (double) total;
  for (int b = 0; b < s.n; b++) {
    const float *fb = f + (size_t) b * 3 * hw, *pb = p + (size_t) b * 3 * hw;   // (3, HW)
    float *gb = grad ? grad + (size_t) b * 3 * hw : NULL;
    for (size_t i = 0; i < hw; i++) {
      double d[3], ud = 0, dd = 0;
      for (int c = 0; c < 3; c++) {
        d[c] = (double) fb[c * hw + i] - pb[c * hw + i];
        ud += u[c] * d[c];
        dd += d[c] * d[c];
      }
      acc += ud * ud + chroma_weight * (dd - ud * ud);
      if (gb)
        for (int c = 0; c < 3; c++)
          gb[c * hw + i] += (float) (g * (chroma_weight * d[c] + (1.0 - chroma_weight) * ud
                  * u[c]));
    }
  }
  return acc / (double) total;
}

/* ---- Gram matrices ---------------------------------------------------------------- */

void
nf_gram_ref (const float *f, NfShape s, float *g)
{
  size_t hw = (size_t) s.h * s.w;
  double k = (double) s.c * hw;
  for (int n = 0; n < s.n; n++) {
    const float *fn = f + (size_t) n * s.c * hw;                      // (C, HW)
    float *gn = g + (size_t) n * s.c * s.c;                           // (C, C)
    for (int i = 0; i < s.c; i++)
      for (int j = 0; j <= i; j++) {
        double acc = 0.0;
        for (size_t q = 0; q < hw; q++)
          acc += (double) fn[i * hw + q] * fn[j * hw + q];
        gn[i * s.c + j] = gn[j * s.c + i] = (float) (acc / k);
      }
  }
}

static gboolean
sgemm (char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
    int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
    GError **error)
{
  dnnl_status_t st = dnnl_sgemm (ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
        "oneDNN sgemm (%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
        ") failed with status %d", m, n, k, (int) st);
    return FALSE;
  }
  return TRUE;
}

gboolean
nf_gram (const float *f, NfShape s, float *g, GError **error)
{
  int64_t hw = (int64_t) s.h * s.w;
  float inv_k = (float) (1.0 / ((double) s.c * hw));
  for (int n = 0; n < s.n; n++) {
    const float *fn = f + (size_t) n * s.c * hw;                      // (C, HW)
    float *gn = g + (size_t) n * s.c * s.c;                           // (C, C)
    /* G = F F^T / K */
    if (!sgemm ('N', 'T', s.c, s.c, hw, inv_k, fn, hw, fn, hw, 0.0f, gn, s.c, error))
      return FALSE;
  }
  return TRUE;
}

double
nf_loss_gram_ref (const float *f, NfShape s, const float *target, double weight,
    float *grad)
{
  size_t hw = (size_t) s.h * s.w, cc = (size_t) s.c * s.c;
  double k = (double) s.c * hw;
  float *g = nf_alloc_floats (cc);                                    // (C, C)
  double *d = g_new (double, cc);                                     // dL/dG (C, C)
  double loss = 0.0;
  for (int n = 0; n < s.n; n++) {
    const float *fn = f + (size_t) n * s.c * hw;
    NfShape one = { 1, s.c, s.h, s.w };
    nf_gram_ref (fn, one, g);
    for (size_t i = 0; i < cc; i++) {
      double e = (double) g[i] - target[i];
      loss += e * e;
      d[i] = 2.0 * e / ((double) s.n * cc);
    }
    if (!grad)
      continue;
    /* dL/dF = (D + D^T) F / K = 2 D F / K (D symmetric) */
    float *gr = grad + (size_t) n * s.c * hw;
    for (int i = 0; i < s.c; i++)
      for (size_t q = 0; q < hw; q++) {
        double acc = 0.0;
        for (int j = 0; j < s.c; j++)
          acc += (d[(size_t) i * s.c + j] + d[(size_t) j * s.c + i]) * fn[j * hw + q];
        gr[i * hw + q] += (float) (weight * acc / k);
      }
  }
  nf_free (g);
  g_free (d);
  return loss / ((double) s.n * cc);
}

gboolean
nf_loss_gram (const float *f, NfShape s, const float *target, double weight, float *grad,
    double *loss, GError **error)
{
  int64_t hw = (int64_t) s.h * s.w;
  size_t cc = (size_t) s.c * s.c;
  double k = (double) s.c * hw;
  float *g = nf_alloc_floats (cc);                                    // (C, C)
  double acc = 0.0;
  gboolean ok = TRUE;
  for (int n = 0; ok && n < s.n; n++) {
    const float *fn = f + (size_t) n * s.c * hw;                      // (C, HW)
    NfShape one = { 1, s.c, s.h, s.w };
    if (!(ok = nf_gram (fn, one, g, error)))
      break;
    for (size_t i = 0; i < cc; i++) {
      double e = (double) g[i] - target[i];
      acc += e * e;
      g[i] = (float) e;                                               // G - T
    }
    if (grad) {
      /* grad += weight * 2 * (2 (G - T) / (N C C)) F / K, as one sgemm with beta 1 */
      float alpha = (float) (weight * 4.0 / ((double) s.n * cc * k));
      ok = sgemm ('N', 'N', s.c, hw, s.c, alpha, g, s.c, fn, hw, 1.0f,
          grad + (size_t) n * s.c * hw, hw, error);
    }
  }
  nf_free (g);
  if (loss)
    *loss = acc / ((double) s.n * cc);
  return ok;
}

/* ---- total variation ------------------------------------------------------------- */

double
nf_loss_tv (const float *x, NfShape s, double weight, float *grad)
{
  double acc = 0.0, k = (double) nf_shape_numel (s);
  float gk = (float) (2.0 * weight / k);
  for (int n = 0; n < s.n; n++)
    for (int c = 0; c < s.c; c++) {
      size_t base = ((size_t) n * s.c + c) * s.h * s.w;
      const float *p = x + base;
      float *gp = grad ? grad + base : NULL;
      for (int y = 0; y < s.h; y++)
        for (int i = 0; i < s.w; i++) {
          size_t at = (size_t) y * s.w + i;
          if (i + 1 < s.w) {
            float d = p[at + 1] - p[at];
            acc += (double) d * d;
            if (gp) {
              gp[at + 1] += gk * d;
              gp[at] -= gk * d;
            }
          }
          if (y + 1 < s.h) {
            float d = p[at + s.w] - p[at];
            acc += (double) d * d;
            if (gp) {
              gp[at + s.w] += gk * d;
              gp[at] -= gk * d;
            }
          }
        }
    }
  return acc / k;
}

double
nf_psnr (const float *a, const float *b, size_t n, double peak)
{
  double acc = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = (double) a[i] - b[i];
    acc += d * d;
  }
  double mse = acc / n;
  return mse > 0 ? 10.0 * log10 (peak * peak / mse) : INFINITY;
}
