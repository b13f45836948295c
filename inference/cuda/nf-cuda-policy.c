/* nf-cuda-policy.c — the CUDA backend's decisions that need no GPU (see
 * nf-cuda-policy.h): cuDNN statuses as error codes.
 *
 * What it does not: call CUDA or cuDNN; it only compares codes from their headers, and
 * compiles against cuDNN 8 and 9 alike (the cuDNN-9-only statuses sit behind
 * CUDNN_MAJOR >= 9).
 */
#include "nf-cuda-policy.h"

/* ---- return codes -------------------------------------------------------------------- */

NfCudaErrorCode
nf_cudnn_error_code (cudnnStatus_t st)
{
#if CUDNN_MAJOR >= 9
  /* cuDNN 9: allocation failures are sub-codes of INTERNAL_ERROR (ALLOC_FAILED is a
   * deprecated alias of the host one) */
  if (st == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED
      || st == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    return NF_CUDA_ERROR_OUT_OF_MEMORY;
#else
  if (st == CUDNN_STATUS_ALLOC_FAILED)
    return NF_CUDA_ERROR_OUT_OF_MEMORY;
#endif
  return NF_CUDA_ERROR_FAILED;
}
