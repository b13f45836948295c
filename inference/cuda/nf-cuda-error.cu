/* nf-cuda-error.cu — CUDA and cuDNN return codes as GErrors.
 *
 * What it does: the NF_CUDA_ERROR domain; maps out-of-memory codes (cudaErrorMemory-
 * Allocation; cuDNN's allocation failures through nf_cudnn_error_code, which knows
 * cuDNN 8's and 9's numbering) to NF_CUDA_ERROR_OUT_OF_MEMORY so callers can say "use
 * smaller frames", no-driver/no-device codes to NF_CUDA_ERROR_NO_DEVICE, everything else
 * to NF_CUDA_ERROR_FAILED, with the library's own error text.
 * What it does not: recover (a sticky CUDA error leaves the context unusable; the
 * caller drops the backend).
 */
#include "nf-cuda-policy.h"
#include "nf-cuda-private.h"

G_DEFINE_QUARK (nf-cuda-error-quark, nf_cuda_error)

static NfCudaErrorCode
code_for (cudaError_t st)
{
  switch (st) {
    case cudaErrorMemoryAllocation:
      return NF_CUDA_ERROR_OUT_OF_MEMORY;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorNoKernelImageForDevice:
      return NF_CUDA_ERROR_NO_DEVICE;
    default:
      return NF_CUDA_ERROR_FAILED;
  }
}

gboolean
nf_cuda_ok (cudaError_t st, const char *what, GError **error)
{
  if (st == cudaSuccess)
    return TRUE;
  g_set_error (error, NF_CUDA_ERROR, code_for (st), "cuda: %s: %s (%s)", what,
      cudaGetErrorString (st), cudaGetErrorName (st));
  return FALSE;
}

gboolean
nf_cudnn_ok (cudnnStatus_t st, const char *what, GError **error)
{
  if (st == CUDNN_STATUS_SUCCESS)
    return TRUE;
  g_set_error (error, NF_CUDA_ERROR, nf_cudnn_error_code (st), "cudnn: %s: %s (status %d)", what,
      cudnnGetErrorString (st), (int) st);
  return FALSE;
}

gboolean
nf_cuda_launch_ok (const char *kernel, GError **error)
{
  cudaError_t st = cudaGetLastError ();
  if (st == cudaSuccess)
    return TRUE;
  g_set_error (error, NF_CUDA_ERROR, code_for (st), "cuda: launching %s: %s (%s)", kernel,
      cudaGetErrorString (st), cudaGetErrorName (st));
  return FALSE;
}
