/* nf-cuda-policy.h — the CUDA backend's decisions that need no GPU: plain C functions of
 * CUDA and cuDNN codes, so tests/gpu/test-cuda-policy.c checks them on any machine with
 * made-up inputs (compiled with gcc; included by the .cu files too).
 *
 * What it holds:
 *  - which NfCudaErrorCode a cuDNN status becomes (cuDNN 8 and 9 number their statuses
 *    differently: 9 has categories of 1000 with sub-codes, 8 plain codes 0..14), and
 *    which CUDA errors are sticky (the context is unusable after them);
 *  - which cuDNN convolution algorithms each precision may run, and the order in which
 *    the candidates are tried: fp32, the validation backend, tries the ones cuDNN reports
 *    deterministic first (each group in cuDNN's order, fastest first when timed);
 *  - how many input channels a convolution runs with (fp16 pads the first layer's 3);
 *  - what a failed trial of the optional fused conv + bias + ReLU call means: anything
 *    short of a sticky CUDA error means "run unfused".
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

/* TRUE for the CUDA errors after which, as driver_types.h documents them, "the process
 * must be terminated and relaunched" to use CUDA again (any further CUDA work returns the
 * same error): illegal address or instruction, misaligned address, launch failure or
 * timeout, device assert, hardware stack error, and the like; and an uncorrectable ECC
 * error. Other errors (a launch with bad parameters, out of
 * memory) leave the context usable once cleared with cudaGetLastError. */
gboolean nf_cuda_error_is_sticky (cudaError_t e);

/* ---- algorithm choice ------------------------------------------------------------------ */

typedef enum {
  NF_CUDA_ALGO_FWD,             /* cudnnConvolutionFwdAlgo_t */
  NF_CUDA_ALGO_BWD_DATA,        /* cudnnConvolutionBwdDataAlgo_t */
  NF_CUDA_ALGO_BWD_FILTER,      /* cudnnConvolutionBwdFilterAlgo_t */
} NfCudaAlgoKind;

/* One candidate as cuDNN reported it (cudnnFind*AlgorithmEx or cudnnGet*Algorithm_v7),
 * whatever the perf struct it came from. */
typedef struct {
  int algo;
  cudnnStatus_t status;
  cudnnDeterminism_t det;
  cudnnMathType_t math;
} NfCudaAlgoCand;

/* TRUE when the precision may run algo: fp16 any; fp32 (the validation backend, within
 * 1e-5 of cpu-ref) the GEMM family only (no FFT or Winograd, which trade accuracy for
 * speed): forward IMPLICIT_GEMM, IMPLICIT_PRECOMP_GEMM, GEMM, DIRECT; backward data
 * ALGO_0, ALGO_1; backward filter ALGO_0, ALGO_1, ALGO_3. */
gboolean nf_cuda_algo_allowed (NfCudaAlgoKind kind, gboolean fp16, int algo);

/* The candidates to try, in order: writes indices into c[0..n-1] to order (room for n)
 * and returns how many. Only those with status SUCCESS that nf_cuda_algo_allowed
 * accepts; fp32 first the ones reported CUDNN_DETERMINISTIC, then the others, each group
 * in cuDNN's order; fp16 in cuDNN's order (fastest first when timed). */
int nf_cuda_algo_order (NfCudaAlgoKind kind, gboolean fp16, const NfCudaAlgoCand *c, int n,
    int *order);

/* ---- input channel padding (fp16) --------------------------------------------------------- */

/* The input channels cuDNN sees for a convolution with cin of them. The fp16 (NHWC,
 * tensor-op) backend zero-pads a forward convolution with fewer than pad_to input
 * channels (the first layer's RGB) to pad_to channels, with zero weights, as tensor-core
 * kernels want C a multiple of 8 (cuDNN also has kernels for C = 4); pad_to is
 * NfCudaConfig.pad_input_channels: 0 the default (8), 4 or 8, 1 no padding. fp32 and
 * transposed convolutions: cin. */
int nf_cuda_conv_input_channels (gboolean fp16, gboolean transposed, int cin, int pad_to);

/* ---- the optional fused convolution ------------------------------------------------------ */

typedef enum {
  NF_CUDA_FUSED_RUNS,           /* the fused call works for this shape: use it */
  NF_CUDA_FUSED_UNFUSED,        /* it failed, nothing else is damaged: run unfused */
  NF_CUDA_FUSED_FATAL,          /* a sticky CUDA error: nothing can run any more */
} NfCudaFusedTrial;

/* What one trial of cudnnConvolutionBiasActivationForward means, from its status and
 * the CUDA error seen after it (cudaStreamSynchronize, else cudaGetLastError;
 * cudaSuccess when none): RUNS when both succeeded; FATAL when the CUDA error is sticky;
 * UNFUSED for every other failure, of either: NOT_SUPPORTED and BAD_PARAM, and just as
 * well cuDNN 9's runtime-compiled fusion engines failing to compile
 * (INTERNAL_ERROR_COMPILATION_FAILED), to load (SUBLIBRARY_LOADING_FAILED) or to run
 * (EXECUTION_FAILED_*), or a rejected launch; the unfused path has been chosen and
 * checked on its own. */
NfCudaFusedTrial nf_cuda_fused_trial (cudnnStatus_t st, cudaError_t after);

G_END_DECLS
