/* test-cuda-policy.c — the CUDA backend's host-side decisions (inference/cuda/
 * nf-cuda-policy.h) with made-up inputs; needs the CUDA and cuDNN headers, no GPU.
 *
 * Checks: the cuDNN statuses that mean out of memory (cuDNN 9's two allocation sub-codes,
 * or cuDNN 8's ALLOC_FAILED) and that every other failure is FAILED.
 * Exit: 0 pass, 1 a case failed.
 * Does not: run anything on a GPU (the gpu suite does).
 */
#include <stdio.h>

#include "nf-cuda-policy.h"

static int n_cases, n_failed;

static void
expect (gboolean ok, const char *what)
{
  n_cases++;
  if (!ok) {
    n_failed++;
    printf ("FAIL %s\n", what);
  }
}

/* ---- cuDNN statuses as error codes ------------------------------------------------------ */

static void
test_error_codes (void)
{
#if CUDNN_MAJOR >= 9
  const cudnnStatus_t oom[] = { CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED,
    CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED };
  const cudnnStatus_t failed[] = { CUDNN_STATUS_NOT_INITIALIZED, CUDNN_STATUS_BAD_PARAM,
    CUDNN_STATUS_BAD_PARAM_NULL_POINTER, CUDNN_STATUS_NOT_SUPPORTED,
    CUDNN_STATUS_NOT_SUPPORTED_SHAPE, CUDNN_STATUS_INTERNAL_ERROR,
    CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED, CUDNN_STATUS_EXECUTION_FAILED,
    CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER, CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED };
#else
  const cudnnStatus_t oom[] = { CUDNN_STATUS_ALLOC_FAILED };
  const cudnnStatus_t failed[] = { CUDNN_STATUS_NOT_INITIALIZED, CUDNN_STATUS_BAD_PARAM,
    CUDNN_STATUS_INTERNAL_ERROR, CUDNN_STATUS_INVALID_VALUE, CUDNN_STATUS_ARCH_MISMATCH,
    CUDNN_STATUS_EXECUTION_FAILED, CUDNN_STATUS_NOT_SUPPORTED };
#endif
  char what[128];
  for (guint i = 0; i < G_N_ELEMENTS (oom); i++) {
    g_snprintf (what, sizeof what, "cuDNN status %d is out of memory", (int) oom[i]);
    expect (nf_cudnn_error_code (oom[i]) == NF_CUDA_ERROR_OUT_OF_MEMORY, what);
  }
  for (guint i = 0; i < G_N_ELEMENTS (failed); i++) {
    g_snprintf (what, sizeof what, "cuDNN status %d is a plain failure", (int) failed[i]);
    expect (nf_cudnn_error_code (failed[i]) == NF_CUDA_ERROR_FAILED, what);
  }
}

int
main (void)
{
  printf ("cuDNN headers %d.%d.%d, CUDA runtime headers %d\n", CUDNN_MAJOR, CUDNN_MINOR,
      CUDNN_PATCHLEVEL, CUDART_VERSION);
  test_error_codes ();
  printf ("%d of %d cases failed\n", n_failed, n_cases);
  return n_failed ? 1 : 0;
}
