/* nf-cuda.h — the CUDA backend's own C API, beyond the NfBackendIface table.
 *
 * Two registered backends share one implementation:
 *   "cuda"       fp32 activations in NCHW, cuDNN with FMA math only (no TF32): the
 *                validation mode, within 1e-5 of cpu-ref;
 *   "cuda-fp16"  fp16 activations in NHWC, cuDNN with tensor-op math (fp32
 *                accumulation), instance-norm statistics in fp32: the real-time mode.
 * Decision (fp16 selection): precision is chosen by backend NAME, so every caller of
 * nf_backend_new() (nf-run --backend, nf-bench, tests) can ask for it without a new
 * setter in NfBackendIface; the elements map precision=auto|fp16 to "cuda-fp16" and
 * precision=fp32 to "cuda". nf_cuda_backend_new() gives the same with more control
 * (device, the caller's CUDA context, heuristic algorithm choice).
 *
 * Training: both backends run every op's backward (NfBackendIface.backward); parameter
 * gradients are device fp32 buffers in the model's layout for both precisions (the
 * fp16 backend computes in half and adds into them), accumulated like cpu-ref's.
 * What it does: creation with a clear error when no driver or GPU is usable, device
 * queries, the backend's stream and buffer guards (for the elements' pixel conversions
 * and the tests), pinned host memory and raw device bytes for staging frames.
 * What it does not: pixel conversions (nf-cuda-convert.h), or anything GStreamer.
 * Every function returns errors as GError (domain NF_CUDA_ERROR for CUDA and cuDNN
 * failures, NF_ERROR for bad arguments); none aborts.
 */
#pragma once

#include <glib.h>
#include <stddef.h>

#include "nf-backend.h"

G_BEGIN_DECLS

#define NF_CUDA_ERROR (nf_cuda_error_quark ())
GQuark nf_cuda_error_quark (void);

typedef enum {
  NF_CUDA_ERROR_NO_DEVICE,      /* no driver, no GPU, or no such device id */
  NF_CUDA_ERROR_OUT_OF_MEMORY,  /* device or pinned host memory exhausted */
  NF_CUDA_ERROR_FAILED,         /* any other CUDA or cuDNN failure */
} NfCudaErrorCode;

typedef enum {
  NF_CUDA_FP32,                 /* NCHW float, FMA math */
  NF_CUDA_FP16,                 /* NHWC half, tensor-op math */
} NfCudaPrecision;

typedef struct {
  NfCudaPrecision precision;
  int device;                   /* CUDA device ordinal (not used with use_current_context) */
  /* Run in the CUDA context current on the calling thread (e.g. a GstCudaContext the
   * element pushed) instead of the device's primary context. Every later call on this
   * backend must then be made with that same context current. */
  gboolean use_current_context;
  /* Choose cuDNN algorithms from heuristics (fast planning) instead of timing every
   * candidate once per shape (cudnnFind*Ex, like torch.backends.cudnn.benchmark). */
  gboolean heuristic_algos;
  /* fp16 only: a convolution with fewer input channels than this (the first layer's RGB)
   * runs zero-padded to this many (zero weights; its input copied, padded, into scratch),
   * for the tensor-core kernels: 0 = the default (8), 4 or 8; 1 = no padding. Other
   * values are an error at creation. */
  int pad_input_channels;
} NfCudaConfig;

/* Number of usable CUDA devices; 0 with an error saying why (no driver, driver too
 * old for this runtime, no device). */
int nf_cuda_device_count (GError **error);
/* "CUDA runtime 13.0, driver for CUDA 13.0, cuDNN 9.19.0 (built with 9.19.0)": the
 * libraries this process loaded ("no driver" where none is); needs no GPU. */
char *nf_cuda_versions (void);
/* "NVIDIA H200, sm_90, 139.8 GiB" for device ordinal dev. */
char *nf_cuda_device_description (int device, GError **error);

NfBackend *nf_cuda_backend_new (const NfCudaConfig *cfg, GError **error);
/* TRUE when be is one of the CUDA backends. */
gboolean nf_cuda_is_backend (const NfBackend *be);
/* "cuda-fp16 on NVIDIA H200 (device 0, sm_90): NHWC fp16, tensor-op math" */
const char *nf_cuda_backend_description (const NfBackend *be);
NfCudaPrecision nf_cuda_backend_precision (const NfBackend *be);
int nf_cuda_backend_device (const NfBackend *be);
/* The backend's cudaStream_t (as a pointer): every op, transfer and conversion of
 * this backend is queued on it. */
void *nf_cuda_backend_stream (const NfBackend *be);

/* TRUE when the guard bytes after buffer buf (from iface->alloc) still hold their
 * pattern; an error says where they were overwritten. Synchronises the stream. */
gboolean nf_cuda_buffer_guard_ok (NfBackend *be, const void *buf, GError **error);

/* Raw device bytes on this backend's device (frame staging); 256-byte aligned. be may
 * be NULL: the CUDA context current on the calling thread then holds the memory. */
void *nf_cuda_device_alloc (NfBackend *be, size_t bytes, GError **error);
void nf_cuda_device_free (NfBackend *be, void *p);
/* Page-locked host memory, for asynchronous copies (be may be NULL, as above). */
void *nf_cuda_host_alloc (NfBackend *be, size_t bytes, GError **error);
void nf_cuda_host_free (NfBackend *be, void *p);
/* Asynchronous 2-D copies on the backend's stream (cudaMemcpy2DAsync, any direction:
 * host pointers must be pinned for the copy to be asynchronous). */
gboolean nf_cuda_copy_2d_async (NfBackend *be, void *dst, size_t dst_pitch,
    const void *src, size_t src_pitch, size_t width_bytes, size_t rows, GError **error);

/* What the CUDA code of this process (the backends, and the GPU training code through
 * them) has done since it started that allocates memory or waits for the GPU, for tests
 * that measure a training step: allocs and frees count device and page-locked host
 * allocations and frees (cudaMalloc, cudaHostAlloc / cudaMallocHost, their frees; not
 * those cuDNN, cuBLAS or NCCL make inside their own calls), syncs the stream
 * synchronisations (cudaStreamSynchronize). A copy into pageable host memory waits too
 * and is not counted (a training step makes none: its loss values come back through
 * page-locked memory). Counted across threads and backends. */
typedef struct {
  guint64 allocs, frees, syncs;
} NfCudaCounters;
void nf_cuda_counters (NfCudaCounters *c);

G_END_DECLS
