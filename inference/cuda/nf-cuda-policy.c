/* nf-cuda-policy.c — the CUDA backend's decisions that need no GPU (see
 * nf-cuda-policy.h): cuDNN statuses as error codes, sticky CUDA errors, which algorithms
 * each precision may run and in what order, fp16's input channel padding, what a failed
 * fused-convolution trial means.
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

gboolean
nf_cuda_error_is_sticky (cudaError_t e)
{
  /* By number, as the values are fixed across CUDA releases while some names are newer
   * than the oldest toolkit this builds with (tests/gpu/test-cuda-policy.c checks them
   * against the names of the toolkit at hand). */
  switch ((int) e) {
    case 214:                   /* cudaErrorECCUncorrectable (memory contents lost) */
    case 226:                   /* cudaErrorContained */
    case 700:                   /* cudaErrorIllegalAddress */
    case 702:                   /* cudaErrorLaunchTimeout */
    case 710:                   /* cudaErrorAssert */
    case 714:                   /* cudaErrorHardwareStackError */
    case 715:                   /* cudaErrorIllegalInstruction */
    case 716:                   /* cudaErrorMisalignedAddress */
    case 717:                   /* cudaErrorInvalidAddressSpace */
    case 718:                   /* cudaErrorInvalidPc */
    case 719:                   /* cudaErrorLaunchFailure */
    case 721:                   /* cudaErrorTensorMemoryLeak */
    case 810:                   /* cudaErrorMpsClientTerminated */
    case 911:                   /* cudaErrorExternalDevice */
      return TRUE;
    default:
      return FALSE;
  }
}

/* ---- algorithm choice ------------------------------------------------------------------ */

gboolean
nf_cuda_algo_allowed (NfCudaAlgoKind kind, gboolean fp16, int algo)
{
  if (fp16)
    return TRUE;
  switch (kind) {
    case NF_CUDA_ALGO_FWD:
      return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM
          || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM
          || algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
    case NF_CUDA_ALGO_BWD_DATA:
      return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    case NF_CUDA_ALGO_BWD_FILTER:
      return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0
          || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1
          || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  }
  return FALSE;
}

int
nf_cuda_algo_order (NfCudaAlgoKind kind, gboolean fp16, const NfCudaAlgoCand *c, int n,
    int *order)
{
  int k = 0;
  /* fp32: pass 0 the deterministic candidates, pass 1 the rest; fp16: one pass */
  for (int pass = fp16 ? 1 : 0; pass < 2; pass++)
    for (int i = 0; i < n; i++) {
      if (c[i].status != CUDNN_STATUS_SUCCESS || !nf_cuda_algo_allowed (kind, fp16, c[i].algo))
        continue;
      gboolean det = c[i].det == CUDNN_DETERMINISTIC;
      if (!fp16 && (pass == 0) != det)
        continue;
      order[k++] = i;
    }
  return k;
}

/* ---- input channel padding (fp16) --------------------------------------------------------- */

int
nf_cuda_conv_input_channels (gboolean fp16, gboolean transposed, int cin, int pad_to)
{
  int to = pad_to == 0 ? 8 : pad_to;
  return fp16 && !transposed && cin < to ? to : cin;
}

/* ---- the optional fused convolution ------------------------------------------------------ */

NfCudaFusedTrial
nf_cuda_fused_trial (cudnnStatus_t st, cudaError_t after)
{
  if (after != cudaSuccess && nf_cuda_error_is_sticky (after))
    return NF_CUDA_FUSED_FATAL;
  if (st == CUDNN_STATUS_SUCCESS && after == cudaSuccess)
    return NF_CUDA_FUSED_RUNS;
  return NF_CUDA_FUSED_UNFUSED;
}
