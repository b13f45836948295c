/* nf-train-gpu.h — device memory plumbing for training on a CUDA backend: raw device
 * float arrays on the backend's device, zeroing and copies queued on the backend's
 * stream, and the flat parameter buffer (params | grads | m | v, NfParams' offsets)
 * mirrored on the device.
 *
 * Every function queues its work on nf_cuda_backend_stream (be), in order with the
 * engine's ops, makes the backend's device current on the calling thread first (rank
 * threads of --gpus), checks every CUDA return code and reports it as a GError. Copies
 * take any direction (cudaMemcpyDefault); a copy INTO pageable host memory is only
 * complete after nf_gpu_sync.
 *
 * Built only with the GPU training kernels (NF_HAVE_CUDA_TRAIN, which implies the CUDA
 * backend): only the CUDA training device's files (nf-train-device-cuda.h) and the GPU
 * tests include it.
 * What it does not: arithmetic (training/cuda/nf-cuda-train.h), activations (the
 * engine's buffers, nf-engine.h).
 */
#pragma once

#include <glib.h>
#include <stddef.h>

#include "nf-backend.h"
#include "nf-optim.h"

G_BEGIN_DECLS

/* TRUE when be is one of the CUDA backends ("cuda", "cuda-fp16"). */
gboolean nf_gpu_is_backend (const NfBackend *be);
/* Bytes of one activation element in the backend's layout (4 fp32 NCHW, 2 fp16 NHWC). */
size_t nf_gpu_elem_size (const NfBackend *be);
/* TRUE for "cuda-fp16" (half NHWC activations). */
gboolean nf_gpu_is_fp16 (const NfBackend *be);

/* A CUDA backend of the same precision as `like` on device ordinal `device` (the
 * ranks of --gpus). */
NfBackend *nf_gpu_backend_on_device (const NfBackend *like, int device, GError **error);
/* Usable CUDA devices (0 with an error saying why). */
int nf_gpu_device_count (GError **error);

/* n device floats (zero-filled) on be's device; NULL + error. */
float *nf_gpu_alloc_floats (NfBackend *be, size_t n, GError **error);
void nf_gpu_free (NfBackend *be, void *p);
/* Page-locked host memory on be's device (be is an NfBackend *; the signatures are
 * nf-loader.h's NfLoaderAllocFn / NfLoaderFreeFn, so the loader's batches can live there). */
void *nf_gpu_host_alloc (gpointer be, size_t bytes, GError **error);
void nf_gpu_host_free (gpointer be, void *p);
gboolean nf_gpu_zero (NfBackend *be, void *dev, size_t bytes, GError **error);
gboolean nf_gpu_copy (NfBackend *be, void *dst, const void *src, size_t bytes,
    GError **error);
gboolean nf_gpu_sync (NfBackend *be, GError **error);

/* The flat buffer on the device: 4n floats, views at the host NfParams' offsets. */
typedef struct {
  NfBackend *be;
  size_t n;
  float *mem;                   /* device, 4n floats */
  float *params, *grads, *m, *v;        /* device, n floats each */
} NfGpuParams;

NfGpuParams *nf_gpu_params_new (NfBackend *be, size_t n, GError **error);
void nf_gpu_params_free (NfGpuParams *d);
/* Host -> device / device -> host of the parts named (params, grads, m, v); the
 * download is complete when it returns. */
gboolean nf_gpu_params_upload (NfGpuParams *d, const NfParams *host, gboolean params,
    gboolean grads, gboolean moments, GError **error);
gboolean nf_gpu_params_download (NfGpuParams *d, NfParams *host, gboolean params,
    gboolean grads, gboolean moments, GError **error);

G_END_DECLS
