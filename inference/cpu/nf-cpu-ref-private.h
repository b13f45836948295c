/* nf-cpu-ref-private.h — the reference backend's indexing helpers and backward
 * functions, shared between nf-cpu-ref.c (which lists them in the backend table) and
 * nf-cpu-ref-backward.c.
 * Not part of the library's public API. */
#pragma once

#include "nf-backend.h"

/* Index of (n, c, y, x) in an NCHW tensor of shape s. */
static inline size_t
AT (NfShape s, int n, int c, int y, int x)
{
  return (((size_t) n * s.c + c) * s.h + y) * s.w + x;
}

/* Reflection of index i into 0..n-1 (PyTorch ReflectionPad: edge not repeated). */
static inline int
reflect (int i, int n)
{
  if (n == 1)
    return 0;
  while (i < 0 || i >= n) {
    if (i < 0)
      i = -i;
    if (i >= n)
      i = 2 * (n - 1) - i;
  }
  return i;
}

#define NF_REF_BACKWARD(op) \
  gboolean nf_ref_##op##_backward (NfBackend *be, NfOpCall *call, void *const *in, \
      const void *out, const void *dout, void *const *din, void *dweight, void *dbias, \
      GError **error)

NF_REF_BACKWARD (conv2d);
NF_REF_BACKWARD (conv_transpose2d);
NF_REF_BACKWARD (instance_norm);
NF_REF_BACKWARD (relu);
NF_REF_BACKWARD (add);
NF_REF_BACKWARD (concat);
NF_REF_BACKWARD (upsample_nearest);
NF_REF_BACKWARD (pixel_shuffle);
NF_REF_BACKWARD (tanh_scale);
NF_REF_BACKWARD (clamp);
NF_REF_BACKWARD (pool2d);
