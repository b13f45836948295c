/* gpu-test-backends.h — the main of a GPU comparison test (test-gpu-ops,
 * test-gpu-backward): the CUDA backends against cpu-ref, precision 0 "cuda" (fp32 NCHW)
 * then precision 1 "cuda-fp16", those that NF_GPU_TEST_PRECISION=fp32|fp16 leaves in.
 *
 * nf_gpu_test_main (body, &counts): probes for a GPU (exit code 77 without
 * one, gpu-test-probe.h), creates cpu-ref, and for each backend left in creates it (its
 * guard bytes checked by nf_cuda_buffer_guard_ok in nf_test_run_forward; a backend that
 * cannot be created prints "FAIL cannot create NAME: why" and counts as a failed case),
 * calls body (ref, gpu, fp16, t0) and destroys it; then prints "F of N cases failed (T s)"
 * and returns the exit code (0 pass, 1 a case failed).
 * What it does not: run or count the cases (body does), or print the backend's heading.
 */
#pragma once

#include <glib.h>
#include <stdio.h>

#include "gpu-test-probe.h"
#include "nf-cuda.h"
#include "nf-test-harness.h"

/* One backend's cases; t0 is the test's start (g_get_monotonic_time) for "so far" lines. */
typedef void (*NfGpuTestBody) (NfTestBe *ref, NfTestBe *gpu, gboolean fp16, gint64 t0);

static inline int
nf_gpu_test_main (NfGpuTestBody body, NfTestCounts *counts)
{
  static const char *const names[2] = { "cuda", "cuda-fp16" };
  GError *e = NULL;
  gint64 t0 = g_get_monotonic_time ();
  if (nf_gpu_test_probe () == 0)
    return 77;
  const char *only = g_getenv ("NF_GPU_TEST_PRECISION");
  NfTestBe ref = { &nf_backend_cpu_ref, NULL, NULL };
  ref.be = ref.iface->create (&e);
  for (int p = 0; p < 2; p++) {
    if (only && g_strcmp0 (only, p ? "fp16" : "fp32") != 0)
      continue;
    NfTestBe gpu = { nf_backend_lookup (names[p]), NULL, nf_cuda_buffer_guard_ok };
    gpu.be = gpu.iface ? gpu.iface->create (&e) : NULL;
    if (!gpu.be) {
      printf ("FAIL cannot create %s: %s\n", names[p], e ? e->message : "not built");
      g_clear_error (&e);
      counts->failed++;
      continue;
    }
    body (&ref, &gpu, p == 1, t0);
    gpu.iface->destroy (gpu.be);
  }
  ref.iface->destroy (ref.be);
  printf ("%d of %d cases failed (%.1f s)\n", counts->failed, counts->cases,
      (g_get_monotonic_time () - t0) / 1e6);
  return counts->failed ? 1 : 0;
}
