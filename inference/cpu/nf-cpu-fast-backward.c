/* nf-cpu-fast-backward.c — backward passes of the fast CPU backend's non-convolution
 * ops: OpenMP loops over the blocked layout (nChw8c for c > 4, NCHW otherwise; see
 * nf-cpu-fast-private.h).
 *
 * What it does: the same chain rule as nf-cpu-ref-backward.c (the reference, checked by
 * finite differences), ACCUMULATING into dL/d(input) buffers, reading forward values
 * through their views (whatever halo they were stored with). Gradient buffers are dense
 * (halo 0, zeroed by the backend's zero()), but any halo is read and written correctly.
 * Loops are parallel over rows or over (image, channel block) where a row of the
 * gradient could receive from several rows (pooling windows that overlap).
 * Padded channel lanes stay zero: every result there is a product with a zero dL/dy.
 * What it does not: convolutions (nf-dnnl-conv-backward.c), batch_norm (folded at load;
 * training uses instance norm or no norm).
 */
#include <math.h>
#include <string.h>

#include "nf-cpu-fast-private.h"

/* Checks an op's buffers: inputs, output, dL/dy, and each dL/dx that is wanted. */
static gboolean
check_bufs (NfOpCall *call, void *const *in, const void *out, const void *dout,
    void *const *din, GError **error)
{
  for (int j = 0; j < call->op->n_in; j++) {
    if (!nf_cpu_check_buf (in[j], call->in[j], "input", error))
      return FALSE;
    if (din && din[j] && !nf_cpu_check_buf (din[j], call->in[j], "input gradient", error))
      return FALSE;
  }
  return nf_cpu_check_buf (out, call->out, "output", error)
      && nf_cpu_check_buf (dout, call->out, "output gradient", error);
}

/* ---- elementwise ---------------------------------------------------------------- */

enum { BW_RELU, BW_ADD, BW_TANH, BW_CLAMP };

/* dx += f(x, y) * dy over one row of len floats. */
static inline void
bw_row (int kind, float *restrict dx, const float *restrict x, const float *restrict y,
    const float *restrict dy, size_t len, gboolean relu_out, float p0, float p1)
{
  switch (kind) {
    case BW_RELU:
      for (size_t i = 0; i < len; i++)
        dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
      break;
    case BW_ADD:
      if (relu_out)
        for (size_t i = 0; i < len; i++)
          dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
      else
        for (size_t i = 0; i < len; i++)
          dx[i] += dy[i];
      break;
    case BW_TANH:
      for (size_t i = 0; i < len; i++) {
        float t = tanhf (x[i]);
        dx[i] += dy[i] * p0 * (1.0f - t * t);
      }
      break;
    case BW_CLAMP:
      for (size_t i = 0; i < len; i++)
        dx[i] += (x[i] >= p0 && x[i] <= p1) ? dy[i] : 0.0f;
      break;
  }
}

static gboolean
elementwise_backward (NfOpCall *call, void *const *in, const void *out, const void *dout,
    void *const *din, int kind, float p0, float p1, GError **error)
{
  if (!check_bufs (call, in, out, dout, din, error))
    return FALSE;
  if (!din)
    return TRUE;
  NfCpuView y = nf_cpu_view (out), dy = nf_cpu_view (dout);
  size_t len = (size_t) y.w * y.vec;
  int rows = y.n * y.planes * y.h;
  gboolean relu_out = call->op->fuse_relu;
  int n_targets = kind == BW_ADD ? 2 : 1;
  for (int j = 0; j < n_targets; j++) {
    if (!din[j])
      continue;
    NfCpuView x = nf_cpu_view (in[kind == BW_ADD ? 0 : j]), dx = nf_cpu_view (din[j]);
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * len))
    for (int r = 0; r < rows; r++) {
      int yy = r % y.h, t = r / y.h;
      int n = t / y.planes, pl = t % y.planes;
      bw_row (kind, nf_cpu_row (&dx, n, pl, yy), nf_cpu_row (&x, n, pl, yy),
          nf_cpu_row (&y, n, pl, yy), nf_cpu_row (&dy, n, pl, yy), len, relu_out, p0, p1);
    }
  }
  return TRUE;
}

gboolean
nf_cpu_relu_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  return elementwise_backward (call, in, out, dout, din, BW_RELU, 0, 0, error);
}

gboolean
nf_cpu_add_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  return elementwise_backward (call, in, out, dout, din, BW_ADD, 0, 0, error);
}

gboolean
nf_cpu_tanh_scale_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  return elementwise_backward (call, in, out, dout, din, BW_TANH, call->op->scale, 0, error);
}

/* Gradient passes where min <= x <= max (PyTorch's convention, as the reference). */
gboolean
nf_cpu_clamp_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  return elementwise_backward (call, in, out, dout, din, BW_CLAMP, call->op->min,
      call->op->max, error);
}

/* ---- instance norm ------------------------------------------------------------------ */

/* y = xhat * w + b, xhat = (x - mean) * inv (biased variance, as forward);
 * dx = inv * (g w - mean(g w) - xhat * mean(g w xhat)), g = dL/dy (ReLU undone);
 * dw += sum(g xhat), db += sum(g). Sums in double, per (image, block of 8 lanes). */
gboolean
nf_cpu_instance_norm_backward (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error)
{
  const NfOp *op = call->op;
  if (!check_bufs (call, in, out, dout, din, error))
    return FALSE;
  NfCpuView x = nf_cpu_view (in[0]), y = nf_cpu_view (out), dy = nf_cpu_view (dout);
  NfCpuView dx = din && din[0] ? nf_cpu_view (din[0]) : x;
  gboolean want_dx = din && din[0];
  float *dw = op->affine ? dweight : NULL, *db = op->affine ? dbias : NULL;
  int vec = x.vec, np = x.n * x.planes, h = x.h, w = x.w;
  double cnt = (double) h * w;
  /* per task: sum_g[8], sum_gx[8] for the parameter gradients of its lanes */
  double *psum = g_new0 (double, (size_t) np * 16);
  gboolean relu = op->fuse_relu;

#pragma omp parallel for schedule(dynamic, 1) if (nf_cpu_par ((size_t) np * h * w * vec))
  for (int t = 0; t < np; t++) {
    int n = t / x.planes, pl = t % x.planes;
    double mean[8] = { 0 }, var[8] = { 0 }, sg[8] = { 0 }, sgx[8] = { 0 };
    float inv[8], wt[8], mu[8];
    for (int yy = 0; yy < h; yy++) {
      const float *xr = nf_cpu_row (&x, n, pl, yy);
      for (int xx = 0; xx < w; xx++)
        for (int l = 0; l < vec; l++)
          mean[l] += xr[xx * vec + l];
    }
    for (int l = 0; l < vec; l++)
      mean[l] /= cnt;
    for (int yy = 0; yy < h; yy++) {
      const float *xr = nf_cpu_row (&x, n, pl, yy);
      for (int xx = 0; xx < w; xx++)
        for (int l = 0; l < vec; l++) {
          double d = xr[xx * vec + l] - mean[l];
          var[l] += d * d;
        }
    }
    for (int l = 0; l < vec; l++) {
      int c = vec == 8 ? pl * 8 + l : pl;
      inv[l] = (float) (1.0 / sqrt (var[l] / cnt + op->eps));
      wt[l] = (c < x.c && op->affine && op->weight) ? op->weight[c] : (c < x.c ? 1.0f : 0.0f);
      mu[l] = (float) mean[l];
    }
    /* sums of g and g * xhat */
    for (int yy = 0; yy < h; yy++) {
      const float *xr = nf_cpu_row (&x, n, pl, yy), *yr = nf_cpu_row (&y, n, pl, yy);
      const float *gr = nf_cpu_row (&dy, n, pl, yy);
      for (int xx = 0; xx < w; xx++)
        for (int l = 0; l < vec; l++) {
          int i = xx * vec + l;
          float g = (relu && yr[i] <= 0.0f) ? 0.0f : gr[i];
          sg[l] += g;
          sgx[l] += (double) g * ((xr[i] - mu[l]) * inv[l]);
        }
    }
    for (int l = 0; l < vec; l++) {
      psum[(size_t) t * 16 + l] = sg[l];
      psum[(size_t) t * 16 + 8 + l] = sgx[l];
    }
    if (!want_dx)
      continue;
    float a[8], bterm[8];                       /* dx = inv (g w - a - xhat bterm) */
    for (int l = 0; l < vec; l++) {
      a[l] = (float) (wt[l] * sg[l] / cnt);
      bterm[l] = (float) (wt[l] * sgx[l] / cnt);
    }
    for (int yy = 0; yy < h; yy++) {
      const float *xr = nf_cpu_row (&x, n, pl, yy), *yr = nf_cpu_row (&y, n, pl, yy);
      const float *gr = nf_cpu_row (&dy, n, pl, yy);
      float *dr = nf_cpu_row (&dx, n, pl, yy);
      for (int xx = 0; xx < w; xx++)
        for (int l = 0; l < vec; l++) {
          int i = xx * vec + l;
          float g = (relu && yr[i] <= 0.0f) ? 0.0f : gr[i];
          float xhat = (xr[i] - mu[l]) * inv[l];
          dr[i] += inv[l] * (g * wt[l] - a[l] - xhat * bterm[l]);
        }
    }
  }

  if (dw || db)
    for (int t = 0; t < np; t++) {
      int pl = t % x.planes;
      for (int l = 0; l < vec; l++) {
        int c = vec == 8 ? pl * 8 + l : pl;
        if (c >= x.c)
          continue;
        if (db)
          db[c] += (float) psum[(size_t) t * 16 + l];
        if (dw)
          dw[c] += (float) psum[(size_t) t * 16 + 8 + l];
      }
    }
  g_free (psum);
  return TRUE;
}

/* ---- data movement ------------------------------------------------------------------ */

gboolean
nf_cpu_concat_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  if (!check_bufs (call, in, out, dout, din, error))
    return FALSE;
  if (!din)
    return TRUE;
  NfCpuView dy = nf_cpu_view (dout);
  int c0 = 0;
  for (int i = 0; i < call->op->n_in; i++) {
    NfShape xs = call->in[i];
    if (din[i]) {
      NfCpuView dx = nf_cpu_view (din[i]);
      int rows = xs.n * xs.c * xs.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * xs.w))
      for (int r = 0; r < rows; r++) {
        int yy = r % xs.h, t = r / xs.h;
        int n = t / xs.c, c = t % xs.c;
        const float *s = nf_cpu_at (&dy, n, c0 + c, yy, 0);
        float *d = nf_cpu_at (&dx, n, c, yy, 0);
        for (int xx = 0; xx < xs.w; xx++)
          d[(size_t) xx * dx.vec] += s[(size_t) xx * dy.vec];
      }
    }
    c0 += xs.c;
  }
  return TRUE;
}

/* dx[iy][ix] += the sum of dy over its f x f block. */
gboolean
nf_cpu_upsample_nearest_backward (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error)
{
  if (!check_bufs (call, in, out, dout, din, error))
    return FALSE;
  if (!din || !din[0])
    return TRUE;
  NfCpuView dy = nf_cpu_view (dout), dx = nf_cpu_view (din[0]);
  int f = call->op->factor, vec = dx.vec;
  int rows = dx.n * dx.planes * dx.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * dy.w * vec * f))
  for (int r = 0; r < rows; r++) {
    int iy = r % dx.h, t = r / dx.h;
    int n = t / dx.planes, pl = t % dx.planes;
    float *d = nf_cpu_row (&dx, n, pl, iy);
    for (int i = 0; i < f; i++) {
      const float *s = nf_cpu_row (&dy, n, pl, iy * f + i);
      for (int ix = 0; ix < dx.w; ix++)
        for (int j = 0; j < f; j++)
          for (int l = 0; l < vec; l++)
            d[(size_t) ix * vec + l] += s[((size_t) ix * f + j) * vec + l];
    }
  }
  return TRUE;
}

/* Inverse of y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]. */
gboolean
nf_cpu_pixel_shuffle_backward (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error)
{
  if (!check_bufs (call, in, out, dout, din, error))
    return FALSE;
  if (!din || !din[0])
    return TRUE;
  NfCpuView y = nf_cpu_view (out), dy = nf_cpu_view (dout), dx = nf_cpu_view (din[0]);
  int rf = call->op->factor;
  gboolean relu = call->op->fuse_relu;
  int rows = dy.n * dy.c * dy.h;
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) rows * dy.w))
  for (int r = 0; r < rows; r++) {
    int oy = r % dy.h, t = r / dy.h;
    int n = t / dy.c, c = t % dy.c;
    int i = oy % rf, iy = oy / rf;
    for (int j = 0; j < rf; j++) {
      const float *g = nf_cpu_at (&dy, n, c, oy, j), *yv = nf_cpu_at (&y, n, c, oy, j);
      float *d = nf_cpu_at (&dx, n, c * rf * rf + i * rf + j, iy, 0);
      size_t gs = (size_t) rf * dy.vec, ys = (size_t) rf * y.vec, ds = dx.vec;
      for (int ix = 0; ix < dx.w; ix++)
        if (!relu || yv[ix * ys] > 0.0f)
          d[ix * ds] += g[ix * gs];
    }
  }
  return TRUE;
}

/* avg: each input in the window gets dy / k^2; max: the first maximum (row-major in the
 * window, as the reference) gets dy. Parallel over (image, channel block): windows of
 * neighbouring outputs overlap when k > stride. */
gboolean
nf_cpu_pool2d_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  const NfOp *op = call->op;
  if (!check_bufs (call, in, out, dout, din, error))
    return FALSE;
  if (!din || !din[0])
    return TRUE;
  NfCpuView x = nf_cpu_view (in[0]), y = nf_cpu_view (out), dy = nf_cpu_view (dout);
  NfCpuView dx = nf_cpu_view (din[0]);
  int k = op->k, s = op->stride, vec = x.vec, np = y.n * y.planes;
  gboolean is_max = op->type == NF_OP_MAX_POOL2D, relu = op->fuse_relu;
  float inv = 1.0f / (float) (k * k);
#pragma omp parallel for schedule(static) if (nf_cpu_par ((size_t) np * y.h * y.w * vec * k * k))
  for (int t = 0; t < np; t++) {
    int n = t / y.planes, pl = t % y.planes;
    for (int oy = 0; oy < y.h; oy++) {
      const float *gr = nf_cpu_row (&dy, n, pl, oy), *yr = nf_cpu_row (&y, n, pl, oy);
      for (int ox = 0; ox < y.w; ox++)
        for (int l = 0; l < vec; l++) {
          size_t o = (size_t) ox * vec + l;
          float g = (relu && yr[o] <= 0.0f) ? 0.0f : gr[o];
          if (g == 0.0f)
            continue;
          if (!is_max) {
            for (int ky = 0; ky < k; ky++) {
              float *dr = nf_cpu_row (&dx, n, pl, oy * s + ky) + (size_t) ox * s * vec + l;
              for (int kx = 0; kx < k; kx++)
                dr[kx * vec] += g * inv;
            }
            continue;
          }
          int by = 0, bx = 0;
          float best = -INFINITY;
          for (int ky = 0; ky < k; ky++) {
            const float *xr = nf_cpu_row (&x, n, pl, oy * s + ky) + (size_t) ox * s * vec + l;
            for (int kx = 0; kx < k; kx++)
              if (xr[kx * vec] > best) {
                best = xr[kx * vec];
                by = ky;
                bx = kx;
              }
          }
          nf_cpu_row (&dx, n, pl, oy * s + by)[((size_t) ox * s + bx) * vec + l] += g;
        }
    }
  }
  return TRUE;
}
