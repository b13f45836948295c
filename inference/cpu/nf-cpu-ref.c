/* nf-cpu-ref.c — the reference backend "cpu-ref": plain loops, obviously right.
 *
 * What it does: every op in NCHW float on the host, written for clarity with one
 * output element computed at a time and accumulation in double. It is the yardstick the
 * fast CPU backend and the CUDA backend are tested against.
 * Backward passes are in nf-cpu-ref-backward.c.
 * cond_instance_norm: nf-cond-norm.c mixes the style rows and runs ref_instance_norm
 * (and its backward) with them.
 * What it does not: anything for speed (no threads, no blocking), batch_norm (folded
 * into the conv at load), or being used outside tests and debugging.
 */
#include <math.h>
#include <string.h>

#include "nf-backend.h"
#include "nf-cond-norm.h"
#include "nf-cpu-ref-private.h"
#include "nf-error.h"

struct RefBackend {
  NfBackend parent;
};

static NfBackend *
ref_create (GError **error)
{
  struct RefBackend *be = g_new0 (struct RefBackend, 1);
  be->parent.iface = &nf_backend_cpu_ref;
  return &be->parent;
}

static void
ref_destroy (NfBackend *be)
{
  g_free (be);
}

static gboolean
ref_supports_op (NfBackend *be, const NfOp *op)
{
  return op->type != NF_OP_BATCH_NORM;
}

static void *
ref_alloc (NfBackend *be, NfShape s, GError **error)
{
  void *p = nf_alloc_floats (nf_shape_numel (s));
  if (!p)
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
        "cpu-ref: out of memory for a %dx%dx%dx%d activation", s.n, s.c, s.h, s.w);
  return p;
}

static void
ref_free (NfBackend *be, void *buf)
{
  nf_free (buf);
}

static gboolean
ref_copy_in (NfBackend *be, void *dst, const float *src, NfShape s, GError **error)
{
  memcpy (dst, src, nf_shape_numel (s) * sizeof (float));
  return TRUE;
}

static gboolean
ref_zero (NfBackend *be, void *buf, NfShape s, GError **error)
{
  memset (buf, 0, nf_shape_numel (s) * sizeof (float));
  return TRUE;
}

static gboolean
ref_copy_out (NfBackend *be, float *dst, const void *src, NfShape s, GError **error)
{
  memcpy (dst, src, nf_shape_numel (s) * sizeof (float));
  return TRUE;
}

static inline float
relu_if (const NfOp *op, float v)
{
  return (op->fuse_relu && v < 0.0f) ? 0.0f : v;
}

/* y (N, Cout, Ho, Wo) = conv(x (N, Cin, H, W), w (Cout, Cin, k, k)) + b (Cout) */
static gboolean
ref_conv2d (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  const NfOp *op = call->op;
  const float *x = in[0];
  float *y = out;
  NfShape xs = call->in[0], ys = call->out;
  int k = op->k, p = op->padding, s = op->stride;
  for (int n = 0; n < ys.n; n++)
    for (int co = 0; co < ys.c; co++)
      for (int oy = 0; oy < ys.h; oy++)
        for (int ox = 0; ox < ys.w; ox++) {
          double acc = op->bias ? op->bias[co] : 0.0;
          for (int ci = 0; ci < xs.c; ci++)
            for (int ky = 0; ky < k; ky++)
              for (int kx = 0; kx < k; kx++) {
                int iy = oy * s + ky - p, ix = ox * s + kx - p;
                float v;
                if (op->pad_mode == NF_PAD_REFLECT) {
                  v = x[AT (xs, n, ci, reflect (iy, xs.h), reflect (ix, xs.w))];
                } else {
                  if (iy < 0 || iy >= xs.h || ix < 0 || ix >= xs.w)
                    continue;
                  v = x[AT (xs, n, ci, iy, ix)];
                }
                acc += (double) v * op->weight[(((size_t) co * xs.c + ci) * k + ky) * k + kx];
              }
          y[AT (ys, n, co, oy, ox)] = relu_if (op, (float) acc);
        }
  return TRUE;
}

/* y (N, Cout, Ho, Wo) = conv_transpose(x (N, Cin, H, W), w (Cin, Cout, k, k)) + b,
 * written as a gather: output (oy, ox) takes input (iy, ix) where oy = iy*s - p + ky. */
static gboolean
ref_conv_transpose2d (NfBackend *be, NfOpCall *call, void *const *in, void *out,
    GError **error)
{
  const NfOp *op = call->op;
  const float *x = in[0];
  float *y = out;
  NfShape xs = call->in[0], ys = call->out;
  int k = op->k, p = op->padding, s = op->stride;
  for (int n = 0; n < ys.n; n++)
    for (int co = 0; co < ys.c; co++)
      for (int oy = 0; oy < ys.h; oy++)
        for (int ox = 0; ox < ys.w; ox++) {
          double acc = op->bias ? op->bias[co] : 0.0;
          for (int ci = 0; ci < xs.c; ci++)
            for (int ky = 0; ky < k; ky++)
              for (int kx = 0; kx < k; kx++) {
                int ty = oy + p - ky, tx = ox + p - kx;
                if (ty < 0 || tx < 0 || ty % s || tx % s)
                  continue;
                int iy = ty / s, ix = tx / s;
                if (iy >= xs.h || ix >= xs.w)
                  continue;
                acc += (double) x[AT (xs, n, ci, iy, ix)]
                    * op->weight[(((size_t) ci * ys.c + co) * k + ky) * k + kx];
              }
          y[AT (ys, n, co, oy, ox)] = relu_if (op, (float) acc);
        }
  return TRUE;
}

/* Per (n, c): y = (x - mean) / sqrt(var + eps) * w[c] + b[c], biased variance. */
static gboolean
ref_instance_norm (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  const NfOp *op = call->op;
  const float *x = in[0];
  float *y = out;
  NfShape s = call->in[0];
  size_t hw = (size_t) s.h * s.w;
  for (int n = 0; n < s.n; n++)
    for (int c = 0; c < s.c; c++) {
      const float *xp = x + AT (s, n, c, 0, 0);
      float *yp = y + AT (s, n, c, 0, 0);
      double sum = 0.0, sq = 0.0;
      for (size_t i = 0; i < hw; i++)
        sum += xp[i];
      double mean = sum / hw;
      for (size_t i = 0; i < hw; i++)
        sq += (xp[i] - mean) * (xp[i] - mean);
      double inv = 1.0 / sqrt (sq / hw + op->eps);
      double w = (op->affine && op->weight) ? op->weight[c] : 1.0;
      double b = (op->affine && op->bias) ? op->bias[c] : 0.0;
      for (size_t i = 0; i < hw; i++)
        yp[i] = relu_if (op, (float) ((xp[i] - mean) * inv * w + b));
    }
  return TRUE;
}

static gboolean
ref_relu (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  const float *x = in[0];
  float *y = out;
  size_t n = nf_shape_numel (call->out);
  for (size_t i = 0; i < n; i++)
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  return TRUE;
}

static gboolean
ref_add (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  const float *a = in[0], *b = in[1];
  float *y = out;
  size_t n = nf_shape_numel (call->out);
  for (size_t i = 0; i < n; i++)
    y[i] = relu_if (call->op, a[i] + b[i]);
  return TRUE;
}

/* y (N, sum Ci, H, W): inputs stacked along channels in order. */
static gboolean
ref_concat (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  float *y = out;
  NfShape ys = call->out;
  for (int n = 0; n < ys.n; n++) {
    int c0 = 0;
    for (int i = 0; i < call->op->n_in; i++) {
      NfShape xs = call->in[i];
      const float *x = in[i];
      for (int c = 0; c < xs.c; c++)
        for (int yy = 0; yy < xs.h; yy++)
          for (int xx = 0; xx < xs.w; xx++)
            y[AT (ys, n, c0 + c, yy, xx)] = x[AT (xs, n, c, yy, xx)];
      c0 += xs.c;
    }
  }
  return TRUE;
}

static gboolean
ref_upsample_nearest (NfBackend *be, NfOpCall *call, void *const *in, void *out,
    GError **error)
{
  const float *x = in[0];
  float *y = out;
  NfShape xs = call->in[0], ys = call->out;
  int f = call->op->factor;
  for (int n = 0; n < ys.n; n++)
    for (int c = 0; c < ys.c; c++)
      for (int oy = 0; oy < ys.h; oy++)
        for (int ox = 0; ox < ys.w; ox++)
          y[AT (ys, n, c, oy, ox)] = x[AT (xs, n, c, oy / f, ox / f)];
  return TRUE;
}

/* y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w] (PyTorch pixel_shuffle). */
static gboolean
ref_pixel_shuffle (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  const float *x = in[0];
  float *y = out;
  NfShape xs = call->in[0], ys = call->out;
  int r = call->op->factor;
  for (int n = 0; n < ys.n; n++)
    for (int c = 0; c < ys.c; c++)
      for (int oy = 0; oy < ys.h; oy++)
        for (int ox = 0; ox < ys.w; ox++) {
          int ci = c * r * r + (oy % r) * r + (ox % r);
          y[AT (ys, n, c, oy, ox)] = relu_if (call->op, x[AT (xs, n, ci, oy / r, ox / r)]);
        }
  return TRUE;
}

static gboolean
ref_tanh_scale (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  const float *x = in[0];
  float *y = out;
  size_t n = nf_shape_numel (call->out);
  for (size_t i = 0; i < n; i++)
    y[i] = (float) (call->op->scale * tanh ((double) x[i]) + call->op->offset);
  return TRUE;
}

static gboolean
ref_clamp (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  const float *x = in[0];
  float *y = out;
  size_t n = nf_shape_numel (call->out);
  for (size_t i = 0; i < n; i++)
    y[i] = x[i] < call->op->min ? call->op->min : (x[i] > call->op->max ? call->op->max : x[i]);
  return TRUE;
}

static gboolean
ref_pool2d (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)
{
  const NfOp *op = call->op;
  const float *x = in[0];
  float *y = out;
  NfShape xs = call->in[0], ys = call->out;
  gboolean is_max = op->type == NF_OP_MAX_POOL2D;
  for (int n = 0; n < ys.n; n++)
    for (int c = 0; c < ys.c; c++)
      for (int oy = 0; oy < ys.h; oy++)
        for (int ox = 0; ox < ys.w; ox++) {
          double acc = is_max ? -INFINITY : 0.0;
          for (int ky = 0; ky < op->k; ky++)
            for (int kx = 0; kx < op->k; kx++) {
              float v = x[AT (xs, n, c, oy * op->stride + ky, ox * op->stride + kx)];
              if (is_max)
                acc = v > acc ? v : acc;
              else
                acc += v;
            }
          if (!is_max)
            acc /= (double) op->k * op->k;
          y[AT (ys, n, c, oy, ox)] = relu_if (op, (float) acc);
        }
  return TRUE;
}

const NfBackendIface nf_backend_cpu_ref = {
  .name = "cpu-ref",
  .create = ref_create,
  .destroy = ref_destroy,
  .supports_op = ref_supports_op,
  .alloc = ref_alloc,
  .free = ref_free,
  .upload = ref_copy_in,
  .download = ref_copy_out,
  .forward = {
    [NF_OP_CONV2D] = ref_conv2d,
    [NF_OP_CONV_TRANSPOSE2D] = ref_conv_transpose2d,
    [NF_OP_INSTANCE_NORM] = ref_instance_norm,
    [NF_OP_RELU] = ref_relu,
    [NF_OP_ADD] = ref_add,
    [NF_OP_CONCAT] = ref_concat,
    [NF_OP_UPSAMPLE_NEAREST] = ref_upsample_nearest,
    [NF_OP_PIXEL_SHUFFLE] = ref_pixel_shuffle,
    [NF_OP_TANH_SCALE] = ref_tanh_scale,
    [NF_OP_CLAMP] = ref_clamp,
    [NF_OP_AVG_POOL2D] = ref_pool2d,
    [NF_OP_MAX_POOL2D] = ref_pool2d,
    [NF_OP_COND_INSTANCE_NORM] = nf_cond_norm_forward_host,     /* ref_instance_norm */
  },
  .backward = {
    [NF_OP_CONV2D] = nf_ref_conv2d_backward,
    [NF_OP_CONV_TRANSPOSE2D] = nf_ref_conv_transpose2d_backward,
    [NF_OP_INSTANCE_NORM] = nf_ref_instance_norm_backward,
    [NF_OP_RELU] = nf_ref_relu_backward,
    [NF_OP_ADD] = nf_ref_add_backward,
    [NF_OP_CONCAT] = nf_ref_concat_backward,
    [NF_OP_UPSAMPLE_NEAREST] = nf_ref_upsample_nearest_backward,
    [NF_OP_PIXEL_SHUFFLE] = nf_ref_pixel_shuffle_backward,
    [NF_OP_TANH_SCALE] = nf_ref_tanh_scale_backward,
    [NF_OP_CLAMP] = nf_ref_clamp_backward,
    [NF_OP_AVG_POOL2D] = nf_ref_pool2d_backward,
    [NF_OP_MAX_POOL2D] = nf_ref_pool2d_backward,
    [NF_OP_COND_INSTANCE_NORM] = nf_cond_norm_backward_host,
  },
  .zero = ref_zero,
};
