/* nf-cpu-ref-backward.c — reference backward passes of every op (NCHW float, host).
 *
 * What it does: for each op, dL/d(inputs) and dL/d(weight, bias) by the chain rule,
 * written as the transpose of the forward loops in nf-cpu-ref.c (scatter where forward
 * gathers), accumulating into the caller's buffers, in double where sums are long.
 * Checked against central finite differences in tests/test-backward.c.
 * What it does not: speed (the fast CPU backend has its own), batch_norm (folded at
 * load; training uses instance norm or no norm).
 */
#include <math.h>
#include <string.h>

#include "nf-cpu-ref-private.h"

/* dout with a fused ReLU undone: zero where the output was clamped. */
static inline float
grad_at (const NfOp *op, const float *out, const float *dout, size_t i)
{
  return (op->fuse_relu && out[i] <= 0.0f) ? 0.0f : dout[i];
}

gboolean
nf_ref_conv2d_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  const NfOp *op = call->op;
  const float *x = in[0], *y = out, *dy = dout;
  float *dx = din ? din[0] : NULL, *dw = dweight, *db = dbias;
  NfShape xs = call->in[0], ys = call->out;
  int k = op->k, p = op->padding, s = op->stride;
  for (int n = 0; n < ys.n; n++)
    for (int co = 0; co < ys.c; co++)
      for (int oy = 0; oy < ys.h; oy++)
        for (int ox = 0; ox < ys.w; ox++) {
          size_t oi = AT (ys, n, co, oy, ox);
          float g = grad_at (op, y, dy, oi);
          if (g == 0.0f)
            continue;
          if (db)
            db[co] += g;
          for (int ci = 0; ci < xs.c; ci++)
            for (int ky = 0; ky < k; ky++)
              for (int kx = 0; kx < k; kx++) {
                int iy = oy * s + ky - p, ix = ox * s + kx - p;
                if (op->pad_mode == NF_PAD_REFLECT) {
                  iy = reflect (iy, xs.h);
                  ix = reflect (ix, xs.w);
                } else if (iy < 0 || iy >= xs.h || ix < 0 || ix >= xs.w) {
                  continue;
                }
                size_t wi = (((size_t) co * xs.c + ci) * k + ky) * k + kx;
                size_t ii = AT (xs, n, ci, iy, ix);
                if (dx)
                  dx[ii] += g * op->weight[wi];
                if (dw)
                  dw[wi] += g * x[ii];
              }
        }
  return TRUE;
}

gboolean
nf_ref_conv_transpose2d_backward (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error)
{
  const NfOp *op = call->op;
  const float *x = in[0], *y = out, *dy = dout;
  float *dx = din ? din[0] : NULL, *dw = dweight, *db = dbias;
  NfShape xs = call->in[0], ys = call->out;
  int k = op->k, p = op->padding, s = op->stride;
  for (int n = 0; n < ys.n; n++)
    for (int co = 0; co < ys.c; co++)
      for (int oy = 0; oy < ys.h; oy++)
        for (int ox = 0; ox < ys.w; ox++) {
          size_t oi = AT (ys, n, co, oy, ox);
          float g = grad_at (op, y, dy, oi);
          if (g == 0.0f)
            continue;
          if (db)
            db[co] += g;
          for (int ci = 0; ci < xs.c; ci++)
            for (int ky = 0; ky < k; ky++)
              for (int kx = 0; kx < k; kx++) {
                int ty = oy + p - ky, tx = ox + p - kx;
                if (ty < 0 || tx < 0 || ty % s || tx % s)
                  continue;
                int iy = ty / s, ix = tx / s;
                if (iy >= xs.h || ix >= xs.w)
                  continue;
                size_t wi = (((size_t) ci * ys.c + co) * k + ky) * k + kx;
                size_t ii = AT (xs, n, ci, iy, ix);
                if (dx)
                  dx[ii] += g * op->weight[wi];
                if (dw)
                  dw[wi] += g * x[ii];
              }
        }
  return TRUE;
}

/* y = xhat * w + b, xhat = (x - mean) * inv;
 * dx = inv * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * w. */
gboolean
nf_ref_instance_norm_backward (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error)
{
  const NfOp *op = call->op;
  const float *x = in[0], *y = out, *dy = dout;
  float *dx = din ? din[0] : NULL, *dw = dweight, *db = dbias;
  NfShape s = call->in[0];
  size_t hw = (size_t) s.h * s.w;
  for (int n = 0; n < s.n; n++)
    for (int c = 0; c < s.c; c++) {
      size_t base = AT (s, n, c, 0, 0);
      const float *xp = x + base;
      double sum = 0.0, sq = 0.0;
      for (size_t i = 0; i < hw; i++)
        sum += xp[i];
      double mean = sum / hw;
      for (size_t i = 0; i < hw; i++)
        sq += (xp[i] - mean) * (xp[i] - mean);
      double inv = 1.0 / sqrt (sq / hw + op->eps);
      double w = (op->affine && op->weight) ? op->weight[c] : 1.0;
      double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0, sum_dy = 0.0, sum_dy_xhat = 0.0;
      for (size_t i = 0; i < hw; i++) {
        double g = grad_at (op, y, dy, base + i);
        double xhat = (xp[i] - mean) * inv;
        sum_dy += g;
        sum_dy_xhat += g * xhat;
        sum_dxhat += g * w;
        sum_dxhat_xhat += g * w * xhat;
      }
      if (op->affine && dw)
        dw[c] += (float) sum_dy_xhat;
      if (op->affine && db)
        db[c] += (float) sum_dy;
      if (dx)
        for (size_t i = 0; i < hw; i++) {
          double g = grad_at (op, y, dy, base + i);
          double xhat = (xp[i] - mean) * inv;
          dx[base + i] += (float) (inv * (g * w - sum_dxhat / hw - xhat * sum_dxhat_xhat / hw));
        }
    }
  return TRUE;
}

gboolean
nf_ref_relu_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  const float *x = in[0], *dy = dout;
  float *dx = din ? din[0] : NULL;
  size_t n = nf_shape_numel (call->out);
  if (dx)
    for (size_t i = 0; i < n; i++)
      dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
  return TRUE;
}

gboolean
nf_ref_add_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  size_t n = nf_shape_numel (call->out);
  const float *y = out, *dy = dout;
  for (int j = 0; j < 2; j++) {
    float *dx = din ? din[j] : NULL;
    if (dx)
      for (size_t i = 0; i < n; i++)
        dx[i] += grad_at (call->op, y, dy, i);
  }
  return TRUE;
}

gboolean
nf_ref_concat_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  const float *dy = dout;
  NfShape ys = call->out;
  for (int n = 0; n < ys.n; n++) {
    int c0 = 0;
    for (int i = 0; i < call->op->n_in; i++) {
      NfShape xs = call->in[i];
      float *dx = din ? din[i] : NULL;
      if (dx)
        for (int c = 0; c < xs.c; c++)
          for (int yy = 0; yy < xs.h; yy++)
            for (int xx = 0; xx < xs.w; xx++)
              dx[AT (xs, n, c, yy, xx)] += dy[AT (ys, n, c0 + c, yy, xx)];
      c0 += xs.c;
    }
  }
  return TRUE;
}

gboolean
nf_ref_upsample_nearest_backward (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error)
{
  const float *dy = dout;
  float *dx = din ? din[0] : NULL;
  NfShape xs = call->in[0], ys = call->out;
  int f = call->op->factor;
  if (dx)
    for (int n = 0; n < ys.n; n++)
      for (int c = 0; c < ys.c; c++)
        for (int oy = 0; oy < ys.h; oy++)
          for (int ox = 0; ox < ys.w; ox++)
            dx[AT (xs, n, c, oy / f, ox / f)] += dy[AT (ys, n, c, oy, ox)];
  return TRUE;
}

gboolean
nf_ref_pixel_shuffle_backward (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error)
{
  const float *y = out, *dy = dout;
  float *dx = din ? din[0] : NULL;
  NfShape xs = call->in[0], ys = call->out;
  int r = call->op->factor;
  if (dx)
    for (int n = 0; n < ys.n; n++)
      for (int c = 0; c < ys.c; c++)
        for (int oy = 0; oy < ys.h; oy++)
          for (int ox = 0; ox < ys.w; ox++) {
            int ci = c * r * r + (oy % r) * r + (ox % r);
            dx[AT (xs, n, ci, oy / r, ox / r)] += grad_at (call->op, y, dy,
                AT (ys, n, c, oy, ox));
          }
  return TRUE;
}

gboolean
nf_ref_tanh_scale_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  const float *x = in[0], *dy = dout;
  float *dx = din ? din[0] : NULL;
  size_t n = nf_shape_numel (call->out);
  if (dx)
    for (size_t i = 0; i < n; i++) {
      double t = tanh ((double) x[i]);
      dx[i] += (float) (dy[i] * call->op->scale * (1.0 - t * t));
    }
  return TRUE;
}

/* Gradient passes where min <= x <= max (PyTorch's convention). */
gboolean
nf_ref_clamp_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  const float *x = in[0], *dy = dout;
  float *dx = din ? din[0] : NULL;
  size_t n = nf_shape_numel (call->out);
  if (dx)
    for (size_t i = 0; i < n; i++)
      dx[i] += (x[i] >= call->op->min && x[i] <= call->op->max) ? dy[i] : 0.0f;
  return TRUE;
}

/* avg: each input in the window gets dout / k^2; max: the first maximum gets dout. */
gboolean
nf_ref_pool2d_backward (NfBackend *be, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  const NfOp *op = call->op;
  const float *x = in[0], *y = out, *dy = dout;
  float *dx = din ? din[0] : NULL;
  NfShape xs = call->in[0], ys = call->out;
  gboolean is_max = op->type == NF_OP_MAX_POOL2D;
  if (!dx)
    return TRUE;
  for (int n = 0; n < ys.n; n++)
    for (int c = 0; c < ys.c; c++)
      for (int oy = 0; oy < ys.h; oy++)
        for (int ox = 0; ox < ys.w; ox++) {
          float g = grad_at (op, y, dy, AT (ys, n, c, oy, ox));
          size_t best = 0;
          float best_v = -INFINITY;
          for (int ky = 0; ky < op->k; ky++)
            for (int kx = 0; kx < op->k; kx++) {
              size_t ii = AT (xs, n, c, oy * op->stride + ky, ox * op->stride + kx);
              if (is_max) {
                if (x[ii] > best_v) {
                  best_v = x[ii];
                  best = ii;
                }
              } else {
                dx[ii] += g / (float) (op->k * op->k);
              }
            }
          if (is_max)
            dx[best] += g;
        }
  return TRUE;
}
