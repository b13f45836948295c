/* nf-cuda-private.h — what the CUDA backend's .cu files share (C++ only).
 *
 * What it does: the backend object, the error helpers that turn every CUDA and cuDNN
 * return code into a GError, the two element types/layouts as compile-time traits
 * (fp32 NCHW and fp16 NHWC), index helpers, launch helpers, the scratch arena, and the
 * prototypes of each op file's entry points.
 * Layering (as ggml): each op file has kernels (templated on the traits), launchers
 * that queue a kernel on a stream and check the launch, and entry points with the
 * NfForwardFn signature that check shapes and buffers and pick the launcher.
 * What it does not: anything host-visible beyond the backend (nf-cuda.h is the API).
 */
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "nf-backend.h"
#include "nf-cuda.h"
#include "nf-error.h"

/* ---- the backend object ------------------------------------------------------ */

/* One device allocation from iface->alloc: its shape, and guard bytes after it. */
typedef struct {
  NfShape shape;
  size_t bytes;                 /* payload (numel * element size) */
} NfCudaBuf;

#define NF_CUDA_GUARD_BYTES 256
#define NF_CUDA_GUARD_BYTE 0xa5

typedef struct {
  NfBackend parent;
  NfCudaConfig cfg;
  gboolean fp16;                /* NHWC half activations (else NCHW float) */
  int device;
  cudaDeviceProp prop;
  char *description;
  cudaStream_t stream;          /* every op, transfer and conversion goes here */
  cudnnHandle_t cudnn;
  GHashTable *bufs;             /* device pointer -> NfCudaBuf* (alloc'd buffers) */
  /* Scratch arena shared by every op (one stream: ops never overlap): padded conv
   * inputs, cuDNN workspaces, fp32 staging for transfers. Sized at prepare/transfer
   * time, never in forward. Backward passes take their scratch here too (a
   * convolution sizes its backward share at its first backward call: see
   * nf-cuda-conv-backward.cu). */
  void *scratch;
  size_t scratch_bytes;
  GHashTable *algo_cache;       /* conv key string -> NfCudaAlgo* (chosen once) */
} NfCudaBackend;

static inline NfCudaBackend *
NF_CUDA (NfBackend *be)
{
  return (NfCudaBackend *) be;
}

/* ---- errors ------------------------------------------------------------------- */

/* FALSE + error (NF_CUDA_ERROR, out-of-memory or failed) when st is not success;
 * what: the call or its purpose. */
gboolean nf_cuda_ok (cudaError_t st, const char *what, GError **error);
gboolean nf_cudnn_ok (cudnnStatus_t st, const char *what, GError **error);
/* Checks a kernel launch (cudaGetLastError). */
gboolean nf_cuda_launch_ok (const char *kernel, GError **error);

#define NF_CUDA_TRY(call, error) \
  G_STMT_START { if (!nf_cuda_ok ((call), #call, (error))) return FALSE; } G_STMT_END
#define NF_CUDNN_TRY(call, error) \
  G_STMT_START { if (!nf_cudnn_ok ((call), #call, (error))) return FALSE; } G_STMT_END

/* ---- buffers and scratch ---------------------------------------------------------- */

size_t nf_cuda_elem_size (const NfCudaBackend *be);
/* The buffer p must be one of this backend's, of exactly shape s; what names it. */
gboolean nf_cuda_check_buf (NfCudaBackend *be, const void *p, NfShape s, const char *what,
    GError **error);
/* Every input and the output of call are this backend's buffers of the call's shapes,
 * and the output shape is what the op makes of the inputs. */
gboolean nf_cuda_check_call (NfCudaBackend *be, const NfOpCall *call, void *const *in,
    const void *out, GError **error);
/* Grows the scratch arena to at least bytes (synchronises the stream first). */
gboolean nf_cuda_scratch_reserve (NfCudaBackend *be, size_t bytes, GError **error);

/* ---- counted calls (nf_cuda_counters) ----------------------------------------------------- */

/* cudaMalloc, cudaFree, cudaHostAlloc (cudaHostAllocDefault, as cudaMallocHost),
 * cudaFreeHost and cudaStreamSynchronize, each counted; every such call of this
 * project's CUDA code (the backends and training/cuda) goes through these. Freeing NULL
 * is not counted (CUDA does nothing). */
cudaError_t nf_cuda_counted_malloc (void **p, size_t bytes);
cudaError_t nf_cuda_counted_free (void *p);
cudaError_t nf_cuda_counted_host_alloc (void **p, size_t bytes);
cudaError_t nf_cuda_counted_host_free (void *p);
cudaError_t nf_cuda_counted_sync (cudaStream_t s);

/* ---- element types and layouts ------------------------------------------------------- */

struct NfF32Nchw {
  typedef float T;
  static const bool nhwc = false;
};
struct NfF16Nhwc {
  typedef __half T;
  static const bool nhwc = true;
};

__device__ __forceinline__ float nf_ld (const float *p) { return *p; }
__device__ __forceinline__ float nf_ld (const __half *p) { return __half2float (*p); }
__device__ __forceinline__ void nf_st (float *p, float v) { *p = v; }
__device__ __forceinline__ void nf_st (__half *p, float v) { *p = __float2half_rn (v); }

/* Shape as kernels see it. */
struct NfDims {
  int n, c, h, w;
};

static inline NfDims
nf_dims (NfShape s)
{
  NfDims d = { s.n, s.c, s.h, s.w };
  return d;
}

/* Offset of element (n, c, y, x) in a packed tensor of dims d. */
template <bool NHWC>
__device__ __forceinline__ size_t
nf_off (NfDims d, int n, int c, int y, int x)
{
  return NHWC ? (((size_t) n * d.h + y) * d.w + x) * d.c + c
      : (((size_t) n * d.c + c) * d.h + y) * d.w + x;
}

/* (n, c, y, x) of the element at offset i (memory order of the layout). */
template <bool NHWC>
__device__ __forceinline__ void
nf_decode (NfDims d, size_t i, int &n, int &c, int &y, int &x)
{
  if (NHWC) {
    c = (int) (i % d.c);
    i /= d.c;
    x = (int) (i % d.w);
    i /= d.w;
    y = (int) (i % d.h);
    n = (int) (i / d.h);
  } else {
    x = (int) (i % d.w);
    i /= d.w;
    y = (int) (i % d.h);
    i /= d.h;
    c = (int) (i % d.c);
    n = (int) (i / d.c);
  }
}

/* Index i in 0..n-1 continued by mirror reflection without repeating the edge
 * (PyTorch's reflection padding, applied again for pads wider than the image). */
__device__ __forceinline__ int
nf_reflect (int i, int n)
{
  if (n <= 1)
    return 0;
  int period = 2 * (n - 1);
  i %= period;
  if (i < 0)
    i += period;
  return i < n ? i : period - i;
}

/* dL/d(op output) at element i with a fused ReLU undone: zero where the op's output y
 * was clamped (cpu-ref's grad_at). */
template <typename T>
__device__ __forceinline__ float
nf_grad_at (const T *y, const T *dy, size_t i, bool relu)
{
  return (relu && nf_ld (y + i) <= 0.0f) ? 0.0f : nf_ld (dy + i);
}

/* Blocks for a grid-stride loop over n elements. */
static inline unsigned
nf_blocks (size_t n, unsigned threads)
{
  size_t b = (n + threads - 1) / threads;
  if (b < 1)
    b = 1;
  if (b > 65535u * 32u)
    b = 65535u * 32u;
  return (unsigned) b;
}

#define NF_THREADS 256

/* ---- op entry points (NfForwardFn) and per-op preparation ------------------------------ */

#define NF_CUDA_FORWARD(name) \
  gboolean name (NfBackend *be, NfOpCall *call, void *const *in, void *out, GError **error)

NF_CUDA_FORWARD (nf_cuda_conv2d);
NF_CUDA_FORWARD (nf_cuda_conv_transpose2d);
NF_CUDA_FORWARD (nf_cuda_instance_norm);
NF_CUDA_FORWARD (nf_cuda_relu);
NF_CUDA_FORWARD (nf_cuda_add);
NF_CUDA_FORWARD (nf_cuda_tanh_scale);
NF_CUDA_FORWARD (nf_cuda_clamp);
NF_CUDA_FORWARD (nf_cuda_upsample_nearest);
NF_CUDA_FORWARD (nf_cuda_pixel_shuffle);
NF_CUDA_FORWARD (nf_cuda_concat);
NF_CUDA_FORWARD (nf_cuda_pool2d);

/* Backward passes (NfBackwardFn; see nf-backend.h for the contract: results are
 * ACCUMULATED into din[j] (backend buffers) and into dweight/dbias (device floats in the
 * model's layout, fp32 for both backends); NULL pointers are skipped). */
#define NF_CUDA_BACKWARD(name) \
  gboolean name (NfBackend *be, NfOpCall *call, void *const *in, const void *out, \
      const void *dout, void *const *din, void *dweight, void *dbias, GError **error)

NF_CUDA_BACKWARD (nf_cuda_conv2d_backward);
NF_CUDA_BACKWARD (nf_cuda_conv_transpose2d_backward);
NF_CUDA_BACKWARD (nf_cuda_instance_norm_backward);
NF_CUDA_BACKWARD (nf_cuda_relu_backward);
NF_CUDA_BACKWARD (nf_cuda_add_backward);
NF_CUDA_BACKWARD (nf_cuda_tanh_scale_backward);
NF_CUDA_BACKWARD (nf_cuda_clamp_backward);
NF_CUDA_BACKWARD (nf_cuda_upsample_nearest_backward);
NF_CUDA_BACKWARD (nf_cuda_pixel_shuffle_backward);
NF_CUDA_BACKWARD (nf_cuda_concat_backward);
NF_CUDA_BACKWARD (nf_cuda_pool2d_backward);

/* nf_cuda_check_call, plus: dout is a buffer of the output's shape and every non-NULL
 * din[j] one of input j's shape (din may be NULL). */
gboolean nf_cuda_check_backward (NfCudaBackend *be, const NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, GError **error);

gboolean nf_cuda_conv_prepare (NfCudaBackend *be, NfOpCall *call, GError **error);
void nf_cuda_conv_release (NfCudaBackend *be, NfOpCall *call);
gboolean nf_cuda_instance_norm_prepare (NfCudaBackend *be, NfOpCall *call, GError **error);
void nf_cuda_instance_norm_release (NfCudaBackend *be, NfOpCall *call);
/* NfBackendIface.weights_on_device for a prepared convolution / instance norm: the
 * prepared weight and bias copies refreshed from device fp32 in the model's layout (fp32:
 * device-to-device copies; fp16: one conversion kernel into the half filter), queued on
 * the stream. weight/bias were checked to be device memory of this backend. */
gboolean nf_cuda_conv_set_weights (NfCudaBackend *be, const NfOpCall *call,
    const float *weight, size_t n_weight, const float *bias, size_t n_bias, GError **error);
gboolean nf_cuda_instance_norm_set_weights (NfCudaBackend *be, const NfOpCall *call,
    const float *weight, size_t n_weight, const float *bias, size_t n_bias, GError **error);
void nf_cuda_algo_cache_free (gpointer algo);

/* ---- launchers shared between files ------------------------------------------------------ */

/* y (N, C, H, W) += bias (C) [then ReLU], in place, in the backend's layout;
 * bias: device floats (NULL: none). */
gboolean nf_cuda_launch_bias_act (NfCudaBackend *be, void *y, NfShape s, const float *bias,
    gboolean relu, GError **error);
/* y (N, yc, H + 2p, W + 2p) = x (N, C, H, W) reflection-padded by p (p may be 0), the
 * channels C..yc-1 zero (yc >= C; fp16's padded first-layer input). Writes all of y. */
gboolean nf_cuda_launch_reflect_pad (NfCudaBackend *be, const void *x, NfShape xs, void *y,
    int pad, int yc, GError **error);
/* dx (N, C, H, W) += the gradient dxp (N, pc, H + 2p, W + 2p) of the reflection-padded
 * copy folded back onto the pixels it was copied from (the backward of reflect_pad; the
 * channels C..pc-1 of dxp are ignored). */
gboolean nf_cuda_launch_reflect_fold (NfCudaBackend *be, const void *dxp, NfShape xs,
    void *dx, int pad, int pc, GError **error);
/* db (C) += sum over (n, y, x) of dy (N, C, H, W) in the backend's layout: the two-stage
 * reduction of nf-cuda-bias-grad.h; scratch: nf_cuda_bias_grad_scratch (be, s) bytes for
 * the partial sums. */
size_t nf_cuda_bias_grad_scratch (const NfCudaBackend *be, NfShape s);
gboolean nf_cuda_launch_bias_grad (NfCudaBackend *be, const void *dy, NfShape s, float *db,
    void *scratch, GError **error);
/* g = y > 0 ? dy : 0 over n elements (a fused ReLU undone), in the backend's type. */
gboolean nf_cuda_launch_relu_mask (NfCudaBackend *be, const void *y, const void *dy, void *g,
    size_t n, GError **error);
/* Host NCHW float staged on the device <-> the backend's layout and type. */
gboolean nf_cuda_launch_from_nchw_f32 (NfCudaBackend *be, const float *src, void *dst,
    NfShape s, GError **error);
gboolean nf_cuda_launch_to_nchw_f32 (NfCudaBackend *be, const void *src, float *dst,
    NfShape s, GError **error);
