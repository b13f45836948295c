/* nf-cuda-policy.h — the CUDA backend's decisions that need no GPU: plain C functions of
 * CUDA and cuDNN codes, so tests/gpu/test-cuda-policy.c checks them on any machine with
 * made-up inputs (compiled with gcc; included by the .cu files too).
 *
 * What it holds:
 *  - which NfCudaErrorCode a cuDNN status becomes (cuDNN 8 and 9 number their statuses
 *    differently: 9 has categories of 1000 with sub-codes, 8 plain codes 0..14).
 * What it does not: call CUDA or cuDNN (only their headers' types and constants are used),
 * or time anything (nf-cuda-conv-algo.cu, nf-cuda-conv-backward-algo.cu).
 * cuDNN 8 and 9 are supported; inference/cuda/meson.build refuses older ones at configure
 * time.
 */
#pragma once

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <glib.h>

#include "nf-cuda.h"

G_BEGIN_DECLS

/* ---- return codes -------------------------------------------------------------------- */

/* The NfCudaErrorCode of a cuDNN status other than success: OUT_OF_MEMORY for the
 * allocation failures (cuDNN 9: INTERNAL_ERROR_HOST_ALLOCATION_FAILED and
 * INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED; cuDNN 8: ALLOC_FAILED), FAILED otherwise. */
NfCudaErrorCode nf_cudnn_error_code (cudnnStatus_t st);

G_END_DECLS
