/* test-gpu-condnorm.c — cond_instance_norm on the CUDA backends ("cuda", "cuda-fp16")
 * against cpu-ref.
 *
 * Forward at odd and blocked channel counts with a non-convex mix; the mix changed
 * between two runs of one prepared call (the device mixes it at every call: no
 * re-prepare); a one-hot mix exactly instance_norm with that row on the same backend;
 * backward (dx, every row of dweight and dbias, accumulation) against cpu-ref's, and the
 * rows of a style outside the mix left at zero. Tolerances: fp32 1e-4, fp16 (half
 * activations, fp32 statistics and parameters) 2e-2 of the largest value.
 * Exits 77 without a usable GPU.
 * What it does not: the CPU backends (tests/test-condnorm.c), whole networks (the
 * architecture is in test-gpu-ops' list when it runs every architecture).
 */
#include <stdlib.h>

#include "gpu-test-probe.h"
#include "nf-backend.h"

static int failures = 0;

#include "../condnorm-runner.h"

static void
test_forward (NfBackend *ref, NfBackend *gpu, double tol)
{
  static const NfShape shapes[] = { {2, 13, 7, 9}, {1, 16, 33, 17}, {1, 3, 64, 48},
    {2, 24, 5, 5}
  };
  const char *name = gpu->iface->name;
  NfRng rng;
  nf_rng_seed (&rng, 7);
  for (guint k = 0; k < G_N_ELEMENTS (shapes); k++) {
    NfShape s = shapes[k];
    size_t n = nf_shape_numel (s);
    float *x = nf_alloc_floats (n), *y = nf_alloc_floats (n), *yr = nf_alloc_floats (n);
    float *w = g_new (float, N_STYLES * s.c), *b = g_new (float, N_STYLES * s.c);
    float mix[N_STYLES] = { 0.6f, -0.1f, 0.5f };
    nf_rng_fill_uniform (&rng, x, n, -3.0f, 5.0f);
    NfOp op = cond_op (s.c, w, b, mix, &rng);
    op.fuse_relu = k % 2;
    Runner rg = { 0 }, rr = { 0 };
    if (runner_init (&rg, gpu, &op, s) && runner_init (&rr, ref, &op, s)) {
      for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {                /* a new mix, same prepared calls */
          mix[0] = 0.0f;
          mix[1] = 1.0f;
          mix[2] = 0.0f;
        }
        if (runner_forward (&rg, x, y) && runner_forward (&rr, x, yr)) {
          double e = rel_err (y, yr, n);
          CHECK (e < tol, "%s forward %dx%dx%dx%d relu %d mix %d: error %.3g", name, s.n,
              s.c, s.h, s.w, op.fuse_relu, pass, e);
        }
      }
      /* one-hot style 1 against instance_norm with its row, on the GPU */
      NfOp in = {.type = NF_OP_INSTANCE_NORM,.name = "in",.c = s.c,.eps = 1e-5f,
        .affine = TRUE,.weight = w + s.c,.bias = b + s.c,.fuse_relu = op.fuse_relu
      };
      Runner ri = { 0 };
      if (runner_init (&ri, gpu, &in, s) && runner_forward (&ri, x, yr))
        CHECK (same_bits (y, yr, n), "%s one-hot differs from instance_norm with its row "
            "(%.3g)", name, rel_err (y, yr, n));
      runner_clear (&ri);
    }
    runner_clear (&rg);
    runner_clear (&rr);
    nf_free (x);
    nf_free (y);
    nf_free (yr);
    g_free (w);
    g_free (b);
  }
}

static void
test_backward (NfBackend *ref, NfBackend *gpu, double tol)
{
  static const NfShape shapes[] = { {2, 3, 17, 11}, {1, 16, 20, 24}, {2, 13, 9, 9} };
  const char *name = gpu->iface->name;
  for (guint k = 0; k < G_N_ELEMENTS (shapes); k++) {
    NfShape s = shapes[k];
    size_t n = nf_shape_numel (s), nw = (size_t) N_STYLES * s.c;
    NfRng rng;
    nf_rng_seed (&rng, 11 + k);
    float *x = nf_alloc_floats (n), *dy = nf_alloc_floats (n);
    float *w = g_new (float, nw), *b = g_new (float, nw);
    float mix[N_STYLES] = { 0.7f, 0.0f, 0.4f };
    nf_rng_fill_uniform (&rng, x, n, -2.0f, 2.0f);
    nf_rng_fill_uniform (&rng, dy, n, -1.0f, 1.0f);
    NfOp op = cond_op (s.c, w, b, mix, &rng);
    float *g[2][3];
    NfBackend *bes[2] = { ref, gpu };
    gboolean ok = TRUE;
    for (int j = 0; j < 2; j++) {
      g[j][0] = nf_alloc_floats (n);
      g[j][1] = nf_alloc_floats (nw);
      g[j][2] = nf_alloc_floats (nw);
      Runner r = { 0 };
      ok = runner_init (&r, bes[j], &op, s)
          && runner_backward (&r, x, dy, g[j][0], g[j][1], g[j][2], nw) && ok;
      runner_clear (&r);
    }
    if (ok) {
      double ex = rel_err (g[1][0], g[0][0], n), ew = rel_err (g[1][1], g[0][1], nw);
      double eb = rel_err (g[1][2], g[0][2], nw);
      CHECK (ex < tol && ew < tol && eb < tol, "%s backward %dx%dx%dx%d vs cpu-ref: dx "
          "%.3g, dweight %.3g, dbias %.3g", name, s.n, s.c, s.h, s.w, ex, ew, eb);
      gboolean zero = TRUE;
      for (int c = 0; c < s.c; c++)
        zero = zero && g[1][1][s.c + c] == 0.0f && g[1][2][s.c + c] == 0.0f;
      CHECK (zero, "%s: rows of a style outside the mix got a gradient", name);
    }
    for (int j = 0; j < 2; j++)
      for (int i = 0; i < 3; i++)
        nf_free (g[j][i]);
    nf_free (x);
    nf_free (dy);
    g_free (w);
    g_free (b);
  }
}

int
main (void)
{
  if (nf_gpu_test_probe () == 0)
    return 77;
  GError *e = NULL;
  NfBackend *ref = nf_backend_new ("cpu-ref", &e);
  const char *names[2] = { "cuda", "cuda-fp16" };
  const double tol[2] = { 1e-4, 2e-2 };
  for (int i = 0; i < 2; i++) {
    NfBackend *gpu = nf_backend_new (names[i], &e);
    if (!gpu) {
      printf ("FAIL %s: %s\n", names[i], e->message);
      g_clear_error (&e);
      failures++;
      continue;
    }
    test_forward (ref, gpu, tol[i]);
    test_backward (ref, gpu, tol[i]);
    nf_backend_free (gpu);
  }
  nf_backend_free (ref);
  if (failures) {
    printf ("%d failure(s)\n", failures);
    return 1;
  }
  printf ("test-gpu-condnorm: all passed\n");
  return 0;
}
