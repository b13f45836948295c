/* nf-cuda-backend.cu — the CUDA backends "cuda" (fp32 NCHW) and "cuda-fp16" (fp16
 * NHWC): lifetime, buffers, host transfers, the per-op prepare/release dispatch and
 * the two backend tables.
 *
 * What it does: creates a backend on a device (or in the caller's current CUDA
 * context) with one non-blocking stream and one cuDNN handle bound to it, and fails
 * with NF_CUDA_ERROR_NO_DEVICE when no driver or GPU is usable (cudaGetDeviceCount
 * fails or finds none, compute capability below 7.5, or no kernel image loads);
 * allocates activations with guard bytes after each (checked by the tests) and keeps
 * a table of them so every op can check its buffers and shapes; uploads/downloads
 * host NCHW float (through the scratch arena and a layout kernel for fp16 NHWC);
 * grows the shared scratch arena only at prepare/transfer time, never in forward.
 * Training: the backward[] table lists every op's backward (nf-cuda-*-backward.cu),
 * zero clears gradient buffers on the stream, nf_cuda_check_backward checks a backward
 * call's buffers, and weights_on_device hands new device weights of a convolution,
 * instance norm or cond_instance_norm to its file (after checking that they are memory
 * of this device).
 * Every allocation, free and stream synchronisation of this project's CUDA code goes
 * through the counted calls here (nf_cuda_counters).
 * What it does not: any op arithmetic (nf-cuda-*.cu), or pixel conversion
 * (nf-cuda-convert.cu).
 */
#include <string.h>

#include <atomic>

#include "nf-cuda-cond-norm.h"
#include "nf-cuda-policy.h"
#include "nf-cuda-private.h"

extern "C" {
  extern const NfBackendIface nf_backend_cuda;
  extern const NfBackendIface nf_backend_cuda_fp16;
}

/* ---- device queries ------------------------------------------------------------ */

int
nf_cuda_device_count (GError **error)
{
  int n = 0;
  cudaError_t st = cudaGetDeviceCount (&n);
  if (st != cudaSuccess) {
    g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_NO_DEVICE,
        "no usable CUDA driver or GPU: %s (%s)", cudaGetErrorString (st),
        cudaGetErrorName (st));
    cudaGetLastError ();        /* do not leave the error for the next call */
    return 0;
  }
  if (n <= 0)
    g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_NO_DEVICE, "no CUDA device found");
  return n > 0 ? n : 0;
}

/* cudnnGetVersion () / CUDNN_VERSION as "major.minor.patch" (cuDNN 9 counts
 * major * 10000, cuDNN 8 major * 1000). */
static char *
cudnn_version_string (size_t v)
{
  size_t major = v >= 90000 ? v / 10000 : v / 1000;
  size_t rest = v >= 90000 ? v % 10000 : v % 1000;
  return g_strdup_printf ("%zu.%zu.%zu", major, rest / 100, rest % 100);
}

char *
nf_cuda_versions (void)
{
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion (&rt);
  cudaDriverGetVersion (&drv);  /* 0: no driver */
  cudaGetLastError ();
  char *loaded = cudnn_version_string (cudnnGetVersion ());
  char *built = cudnn_version_string (CUDNN_VERSION);
  char *d = drv > 0 ? g_strdup_printf ("driver for CUDA %d.%d", drv / 1000, drv % 1000 / 10)
      : g_strdup ("no driver");
  char *s = g_strdup_printf ("CUDA runtime %d.%d, %s, cuDNN %s (built with %s)", rt / 1000,
      rt % 1000 / 10, d, loaded, built);
  g_free (loaded);
  g_free (built);
  g_free (d);
  return s;
}

char *
nf_cuda_device_description (int device, GError **error)
{
  cudaDeviceProp p;
  if (!nf_cuda_ok (cudaGetDeviceProperties (&p, device), "cudaGetDeviceProperties", error))
    return NULL;
  return g_strdup_printf ("%s, sm_%d%d, %.1f GiB", p.name, p.major, p.minor,
      p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
}

/* ---- counted calls ------------------------------------------------------------------- */

static std::atomic<unsigned long long> n_allocs, n_frees, n_syncs;

void
nf_cuda_counters (NfCudaCounters *c)
{
  c->allocs = n_allocs.load ();
  c->frees = n_frees.load ();
  c->syncs = n_syncs.load ();
}

cudaError_t
nf_cuda_counted_malloc (void **p, size_t bytes)
{
  n_allocs++;
  return cudaMalloc (p, bytes);
}

cudaError_t
nf_cuda_counted_free (void *p)
{
  if (p)
    n_frees++;
  return cudaFree (p);
}

cudaError_t
nf_cuda_counted_host_alloc (void **p, size_t bytes)
{
  n_allocs++;
  return cudaHostAlloc (p, bytes, cudaHostAllocDefault);
}

cudaError_t
nf_cuda_counted_host_free (void *p)
{
  if (p)
    n_frees++;
  return cudaFreeHost (p);
}

cudaError_t
nf_cuda_counted_sync (cudaStream_t s)
{
  n_syncs++;
  return cudaStreamSynchronize (s);
}

/* ---- small helpers ---------------------------------------------------------------- */

size_t
nf_cuda_elem_size (const NfCudaBackend *be)
{
  return be->fp16 ? sizeof (__half) : sizeof (float);
}

/* Makes the backend's device current (not in the caller's own context mode, where the
 * caller keeps its context current). */
static gboolean
enter (NfCudaBackend *be, GError **error)
{
  if (be->cfg.use_current_context)
    return TRUE;
  return nf_cuda_ok (cudaSetDevice (be->device), "cudaSetDevice", error);
}

gboolean
nf_cuda_check_buf (NfCudaBackend *be, const void *p, NfShape s, const char *what,
    GError **error)
{
  NfCudaBuf *b = p ? (NfCudaBuf *) g_hash_table_lookup (be->bufs, p) : NULL;
  if (!b) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "%s: %s: %p is not a buffer of this backend", be->parent.iface->name, what, p);
    return FALSE;
  }
  if (!nf_shape_equal (b->shape, s)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "%s: %s: buffer of shape %dx%dx%dx%d where %dx%dx%dx%d was expected",
        be->parent.iface->name, what, b->shape.n, b->shape.c, b->shape.h, b->shape.w, s.n,
        s.c, s.h, s.w);
    return FALSE;
  }
  return TRUE;
}

gboolean
nf_cuda_check_call (NfCudaBackend *be, const NfOpCall *call, void *const *in,
    const void *out, GError **error)
{
  const NfOp *op = call->op;
  if (op->n_in < 1 || op->n_in > NF_OP_MAX_INPUTS) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: op with %d inputs",
        be->parent.iface->name, op->n_in);
    return FALSE;
  }
  for (int j = 0; j < op->n_in; j++) {
    char what[32];
    g_snprintf (what, sizeof what, "input %d", j);
    if (!nf_cuda_check_buf (be, in[j], call->in[j], what, error))
      return FALSE;
  }
  if (!nf_cuda_check_buf (be, out, call->out, "output", error))
    return FALSE;
  NfShape expect;
  if (!nf_op_output_shape (op, call->in, &expect, error))
    return FALSE;
  if (!nf_shape_equal (expect, call->out)) {
    g_set_error (error, NF_ERROR, NF_ERROR_SHAPE,
        "%s: output %dx%dx%dx%d, but the op makes %dx%dx%dx%d", be->parent.iface->name,
        call->out.n, call->out.c, call->out.h, call->out.w, expect.n, expect.c, expect.h,
        expect.w);
    return FALSE;
  }
  return enter (be, error);
}

gboolean
nf_cuda_check_backward (NfCudaBackend *be, const NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, GError **error)
{
  if (!nf_cuda_check_call (be, call, in, out, error)
      || !nf_cuda_check_buf (be, dout, call->out, "output gradient", error))
    return FALSE;
  for (int j = 0; din && j < call->op->n_in; j++) {
    char what[32];
    g_snprintf (what, sizeof what, "input gradient %d", j);
    if (din[j] && !nf_cuda_check_buf (be, din[j], call->in[j], what, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
nf_cuda_scratch_reserve (NfCudaBackend *be, size_t bytes, GError **error)
{
  if (bytes <= be->scratch_bytes)
    return TRUE;
  bytes = (bytes + 0xfffff) & ~(size_t) 0xfffff;      /* whole MiB: fewer regrowths */
  NF_CUDA_TRY (nf_cuda_counted_sync (be->stream), error);
  if (be->scratch)
    NF_CUDA_TRY (nf_cuda_counted_free (be->scratch), error);
  be->scratch = NULL;
  be->scratch_bytes = 0;
  if (!nf_cuda_ok (nf_cuda_counted_malloc (&be->scratch, bytes), "scratch memory", error)) {
    be->scratch = NULL;
    g_prefix_error (error, "%.1f MiB of scratch: ", bytes / 1048576.0);
    return FALSE;
  }
  be->scratch_bytes = bytes;
  return TRUE;
}

/* ---- a kernel to prove the module loads on this device --------------------------- */

__global__ void
fill_bytes_kernel (unsigned char *p, size_t n, unsigned char v)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x)
    p[i] = v;
}

/* ---- lifetime ------------------------------------------------------------------------ */

static void cuda_destroy (NfBackend *be);

/* "cuda-fp16 on NVIDIA H200 (device 0, sm_90, 139.8 GiB): NHWC fp16, tensor-op math,
 * input channels padded to 8" */
static char *
describe (const NfCudaBackend *be)
{
  int cin_to = nf_cuda_conv_input_channels (be->fp16, FALSE, 1, be->cfg.pad_input_channels);
  char pad[48] = "";
  if (be->fp16)
    g_snprintf (pad, sizeof pad, cin_to > 1 ? ", input channels padded to %d"
        : ", input channels unpadded", cin_to);
  return g_strdup_printf ("%s on %s (device %d, sm_%d%d, %.1f GiB): %s%s",
      be->parent.iface->name, be->prop.name, be->device, be->prop.major, be->prop.minor,
      be->prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
      be->fp16 ? "NHWC fp16, tensor-op math" : "NCHW fp32, FMA math (no TF32)", pad);
}

NfBackend *
nf_cuda_backend_new (const NfCudaConfig *cfg, GError **error)
{
  int pic = cfg->pad_input_channels;
  if (pic != 0 && pic != 1 && pic != 4 && pic != 8) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "pad_input_channels is %d: it must be 0 (default, 8), 1 (none), 4 or 8", pic);
    return NULL;
  }
  int count = nf_cuda_device_count (error);
  if (count == 0)
    return NULL;

  NfCudaBackend *be = g_new0 (NfCudaBackend, 1);
  be->parent.iface = cfg->precision == NF_CUDA_FP16 ? &nf_backend_cuda_fp16 : &nf_backend_cuda;
  be->cfg = *cfg;
  be->fp16 = cfg->precision == NF_CUDA_FP16;
  be->bufs = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  be->algo_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      nf_cuda_algo_cache_free);
  unsigned char *probe = NULL;
  const char *name = be->parent.iface->name;

  if (cfg->use_current_context) {
    if (!nf_cuda_ok (cudaGetDevice (&be->device), "cudaGetDevice", error))
      goto fail;
  } else {
    if (cfg->device < 0 || cfg->device >= count) {
      g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_NO_DEVICE,
          "CUDA device %d does not exist (this machine has %d)", cfg->device, count);
      goto fail;
    }
    be->device = cfg->device;
    if (!nf_cuda_ok (cudaSetDevice (be->device), "cudaSetDevice", error))
      goto fail;
  }
  if (!nf_cuda_ok (cudaGetDeviceProperties (&be->prop, be->device),
          "cudaGetDeviceProperties", error))
    goto fail;
  if (be->prop.major * 10 + be->prop.minor < 75) {
    g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_NO_DEVICE,
        "%s (device %d) has compute capability %d.%d; this build needs 7.5 or newer",
        be->prop.name, be->device, be->prop.major, be->prop.minor);
    goto fail;
  }
  if (!nf_cuda_ok (cudaStreamCreateWithFlags (&be->stream, cudaStreamNonBlocking),
          "cudaStreamCreateWithFlags", error))
    goto fail;
  if (!nf_cudnn_ok (cudnnCreate (&be->cudnn), "cudnnCreate", error)) {
    be->cudnn = NULL;
    goto fail;
  }
  if (!nf_cudnn_ok (cudnnSetStream (be->cudnn, be->stream), "cudnnSetStream", error))
    goto fail;

  /* One kernel launch, so that a device this build has no code for fails here (and
   * device=auto falls back to the CPU) rather than at the first frame. */
  if (!nf_cuda_ok (nf_cuda_counted_malloc ((void **) &probe, 256), "cudaMalloc", error))
    goto fail;
  fill_bytes_kernel <<<1, 256, 0, be->stream>>> (probe, 256, 0);
  if (!nf_cuda_launch_ok ("a first kernel", error)
      || !nf_cuda_ok (nf_cuda_counted_sync (be->stream), "first kernel", error)) {
    nf_cuda_counted_free (probe);
    goto fail;
  }
  nf_cuda_counted_free (probe);

  be->description = describe (be);
  return &be->parent;

fail:
  g_prefix_error (error, "%s: ", name);
  cuda_destroy (&be->parent);
  return NULL;
}

static NfBackend *
cuda_create_fp32 (GError **error)
{
  NfCudaConfig cfg = { NF_CUDA_FP32, 0, FALSE, FALSE, 0 };
  return nf_cuda_backend_new (&cfg, error);
}

static NfBackend *
cuda_create_fp16 (GError **error)
{
  NfCudaConfig cfg = { NF_CUDA_FP16, 0, FALSE, FALSE, 0 };
  return nf_cuda_backend_new (&cfg, error);
}

static void
cuda_destroy (NfBackend *base)
{
  NfCudaBackend *be = NF_CUDA (base);
  if (!be)
    return;
  enter (be, NULL);
  if (be->stream)
    nf_cuda_counted_sync (be->stream);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, be->bufs);
  while (g_hash_table_iter_next (&it, &key, NULL))
    nf_cuda_counted_free (key); /* buffers the caller did not free */
  g_hash_table_unref (be->bufs);
  g_hash_table_unref (be->algo_cache);
  if (be->scratch)
    nf_cuda_counted_free (be->scratch);
  if (be->cudnn)
    cudnnDestroy (be->cudnn);
  if (be->stream)
    cudaStreamDestroy (be->stream);
  cudaGetLastError ();
  g_free (be->description);
  g_free (be);
}

static gboolean
cuda_supports_op (NfBackend *be, const NfOp *op)
{
  return op->type != NF_OP_BATCH_NORM && op->type < NF_OP_COUNT;
}

/* ---- buffers --------------------------------------------------------------------------- */

static void *
cuda_alloc (NfBackend *base, NfShape s, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  size_t bytes = nf_shape_numel (s) * nf_cuda_elem_size (be);
  size_t total = ((bytes + 255) & ~(size_t) 255) + NF_CUDA_GUARD_BYTES;
  unsigned char *p = NULL;
  if (!enter (be, error))
    return NULL;
  if (!nf_cuda_ok (nf_cuda_counted_malloc ((void **) &p, total), "cudaMalloc", error)) {
    g_prefix_error (error, "%s: a %dx%dx%dx%d activation (%.1f MiB): ", base->iface->name,
        s.n, s.c, s.h, s.w, total / 1048576.0);
    return NULL;
  }
  /* Guard bytes right after the payload: an op writing one element too many shows. */
  fill_bytes_kernel <<<1, 256, 0, be->stream>>> (p + bytes, total - bytes,
      NF_CUDA_GUARD_BYTE);
  if (!nf_cuda_launch_ok ("guard fill", error)) {
    nf_cuda_counted_free (p);
    return NULL;
  }
  NfCudaBuf *b = g_new0 (NfCudaBuf, 1);
  b->shape = s;
  b->bytes = bytes;
  g_hash_table_insert (be->bufs, p, b);
  return p;
}

static void
cuda_free (NfBackend *base, void *p)
{
  NfCudaBackend *be = NF_CUDA (base);
  if (!p || !g_hash_table_remove (be->bufs, p))
    return;
  enter (be, NULL);
  nf_cuda_counted_free (p);     /* waits for work that still uses it */
  cudaGetLastError ();
}

static gboolean
cuda_zero (NfBackend *base, void *p, NfShape s, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  if (!nf_cuda_check_buf (be, p, s, "zero", error) || !enter (be, error))
    return FALSE;
  NF_CUDA_TRY (cudaMemsetAsync (p, 0, nf_shape_numel (s) * nf_cuda_elem_size (be),
          be->stream), error);
  return TRUE;
}

gboolean
nf_cuda_buffer_guard_ok (NfBackend *base, const void *p, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  NfCudaBuf *b = p ? (NfCudaBuf *) g_hash_table_lookup (be->bufs, p) : NULL;
  if (!b) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: %p is not a buffer of this backend",
        base->iface->name, p);
    return FALSE;
  }
  size_t total = ((b->bytes + 255) & ~(size_t) 255) + NF_CUDA_GUARD_BYTES;
  size_t n = total - b->bytes;
  unsigned char *host = (unsigned char *) g_malloc (n);
  gboolean ok = enter (be, error)
      && nf_cuda_ok (cudaMemcpyAsync (host, (const unsigned char *) p + b->bytes, n,
          cudaMemcpyDeviceToHost, be->stream), "reading guard bytes", error)
      && nf_cuda_ok (nf_cuda_counted_sync (be->stream), "reading guard bytes", error);
  for (size_t i = 0; ok && i < n; i++)
    if (host[i] != NF_CUDA_GUARD_BYTE) {
      g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
          "%s: guard byte %zu after a %dx%dx%dx%d buffer was overwritten (0x%02x)",
          base->iface->name, i, b->shape.n, b->shape.c, b->shape.h, b->shape.w, host[i]);
      ok = FALSE;
    }
  g_free (host);
  return ok;
}

/* ---- host transfers (NCHW float on the host) ------------------------------------------------- */

static gboolean
cuda_upload (NfBackend *base, void *dst, const float *src, NfShape s, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  size_t n = nf_shape_numel (s);
  if (!nf_cuda_check_buf (be, dst, s, "upload", error) || !enter (be, error))
    return FALSE;
  if (!be->fp16) {
    NF_CUDA_TRY (cudaMemcpyAsync (dst, src, n * sizeof (float), cudaMemcpyHostToDevice,
            be->stream), error);
  } else {
    if (!nf_cuda_scratch_reserve (be, n * sizeof (float), error))
      return FALSE;
    NF_CUDA_TRY (cudaMemcpyAsync (be->scratch, src, n * sizeof (float),
            cudaMemcpyHostToDevice, be->stream), error);
    if (!nf_cuda_launch_from_nchw_f32 (be, (const float *) be->scratch, dst, s, error))
      return FALSE;
  }
  /* src is pageable host memory the caller may reuse at once */
  NF_CUDA_TRY (nf_cuda_counted_sync (be->stream), error);
  return TRUE;
}

static gboolean
cuda_download (NfBackend *base, float *dst, const void *src, NfShape s, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  size_t n = nf_shape_numel (s);
  if (!nf_cuda_check_buf (be, src, s, "download", error) || !enter (be, error))
    return FALSE;
  if (!be->fp16) {
    NF_CUDA_TRY (cudaMemcpyAsync (dst, src, n * sizeof (float), cudaMemcpyDeviceToHost,
            be->stream), error);
  } else {
    if (!nf_cuda_scratch_reserve (be, n * sizeof (float), error))
      return FALSE;
    if (!nf_cuda_launch_to_nchw_f32 (be, src, (float *) be->scratch, s, error))
      return FALSE;
    NF_CUDA_TRY (cudaMemcpyAsync (dst, be->scratch, n * sizeof (float),
            cudaMemcpyDeviceToHost, be->stream), error);
  }
  NF_CUDA_TRY (nf_cuda_counted_sync (be->stream), error);
  return TRUE;
}

static gboolean
cuda_synchronize (NfBackend *base, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  if (!enter (be, error))
    return FALSE;
  NF_CUDA_TRY (nf_cuda_counted_sync (be->stream), error);
  return TRUE;
}

/* ---- per-op preparation ------------------------------------------------------------------------ */

static gboolean
cuda_prepare (NfBackend *base, NfOpCall *call, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  if (!enter (be, error))
    return FALSE;
  switch (call->op->type) {
    case NF_OP_CONV2D:
    case NF_OP_CONV_TRANSPOSE2D:
      return nf_cuda_conv_prepare (be, call, error);
    case NF_OP_INSTANCE_NORM:
      return nf_cuda_instance_norm_prepare (be, call, error);
    case NF_OP_COND_INSTANCE_NORM:
      return nf_cuda_cond_instance_norm_prepare (be, call, error);
    default:
      return TRUE;
  }
}

static void
cuda_release (NfBackend *base, NfOpCall *call)
{
  NfCudaBackend *be = NF_CUDA (base);
  enter (be, NULL);
  switch (call->op->type) {
    case NF_OP_CONV2D:
    case NF_OP_CONV_TRANSPOSE2D:
      nf_cuda_conv_release (be, call);
      break;
    case NF_OP_INSTANCE_NORM:
      nf_cuda_instance_norm_release (be, call);
      break;
    case NF_OP_COND_INSTANCE_NORM:
      nf_cuda_cond_instance_norm_release (be, call);
      break;
    default:
      break;
  }
  call->state = NULL;
}

/* ---- weights updated on the device (training) ---------------------------------------------- */

/* p (n floats, NULL when n is 0) is device memory of this backend's device. */
static gboolean
check_device_floats (NfCudaBackend *be, const float *p, size_t n, const char *what,
    GError **error)
{
  if (!p && n == 0)
    return TRUE;
  cudaPointerAttributes a;
  memset (&a, 0, sizeof a);
  cudaError_t st = p ? cudaPointerGetAttributes (&a, p) : cudaErrorInvalidValue;
  if (st != cudaSuccess)
    cudaGetLastError ();
  if (st != cudaSuccess || (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged)
      || a.device != be->device) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: the new %s (%zu floats at %p) is "
        "not memory of CUDA device %d", be->parent.iface->name, what, n, (const void *) p,
        be->device);
    return FALSE;
  }
  return TRUE;
}

static gboolean
cuda_weights_on_device (NfBackend *base, const NfOpCall *call, const float *weight,
    size_t n_weight, const float *bias, size_t n_bias, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  NfOpType ty = call->op->type;
  gboolean holds = ty == NF_OP_CONV2D || ty == NF_OP_CONV_TRANSPOSE2D
      || (ty == NF_OP_INSTANCE_NORM && call->op->affine) || ty == NF_OP_COND_INSTANCE_NORM;
  if (!holds) {
    if (!weight && !bias)
      return TRUE;
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: %s %s holds no weights to update",
        base->iface->name, nf_op_type_name (ty), call->op->name ? call->op->name : "");
    return FALSE;
  }
  if (!enter (be, error) || !check_device_floats (be, weight, n_weight, "weight", error)
      || !check_device_floats (be, bias, n_bias, "bias", error))
    return FALSE;
  if (ty == NF_OP_INSTANCE_NORM)
    return nf_cuda_instance_norm_set_weights (be, call, weight, n_weight, bias, n_bias, error);
  if (ty == NF_OP_COND_INSTANCE_NORM)
    return nf_cuda_cond_instance_norm_set_weights (be, call, weight, n_weight, bias, n_bias,
        error);
  return nf_cuda_conv_set_weights (be, call, weight, n_weight, bias, n_bias, error);
}

/* ---- accessors ------------------------------------------------------------------------------ */

gboolean
nf_cuda_is_backend (const NfBackend *be)
{
  return be && (be->iface == &nf_backend_cuda || be->iface == &nf_backend_cuda_fp16);
}

const char *
nf_cuda_backend_description (const NfBackend *be)
{
  return nf_cuda_is_backend (be) ? ((const NfCudaBackend *) be)->description : NULL;
}

NfCudaPrecision
nf_cuda_backend_precision (const NfBackend *be)
{
  return ((const NfCudaBackend *) be)->fp16 ? NF_CUDA_FP16 : NF_CUDA_FP32;
}

int
nf_cuda_backend_device (const NfBackend *be)
{
  return ((const NfCudaBackend *) be)->device;
}

void *
nf_cuda_backend_stream (const NfBackend *be)
{
  return (void *) ((const NfCudaBackend *) be)->stream;
}

/* ---- staging memory --------------------------------------------------------------------------- */

void *
nf_cuda_device_alloc (NfBackend *base, size_t bytes, GError **error)
{
  void *p = NULL;
  if (base && !enter (NF_CUDA (base), error))
    return NULL;
  if (!nf_cuda_ok (nf_cuda_counted_malloc (&p, bytes ? bytes : 1), "cudaMalloc (staging)",
          error)) {
    g_prefix_error (error, "%.1f MiB of frame staging: ", bytes / 1048576.0);
    return NULL;
  }
  return p;
}

void
nf_cuda_device_free (NfBackend *base, void *p)
{
  if (!p)
    return;
  if (base)
    enter (NF_CUDA (base), NULL);
  nf_cuda_counted_free (p);
  cudaGetLastError ();
}

void *
nf_cuda_host_alloc (NfBackend *base, size_t bytes, GError **error)
{
  void *p = NULL;
  if (base && !enter (NF_CUDA (base), error))
    return NULL;
  if (!nf_cuda_ok (nf_cuda_counted_host_alloc (&p, bytes ? bytes : 1),
          "cudaHostAlloc (pinned staging)", error)) {
    g_prefix_error (error, "%.1f MiB of pinned host memory: ", bytes / 1048576.0);
    return NULL;
  }
  return p;
}

void
nf_cuda_host_free (NfBackend *base, void *p)
{
  if (!p)
    return;
  if (base)
    enter (NF_CUDA (base), NULL);
  nf_cuda_counted_host_free (p);
  cudaGetLastError ();
}

gboolean
nf_cuda_copy_2d_async (NfBackend *base, void *dst, size_t dst_pitch, const void *src,
    size_t src_pitch, size_t width_bytes, size_t rows, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  if (!enter (be, error))
    return FALSE;
  if (rows == 0 || width_bytes == 0)
    return TRUE;
  NF_CUDA_TRY (cudaMemcpy2DAsync (dst, dst_pitch, src, src_pitch, width_bytes, rows,
          cudaMemcpyDefault, be->stream), error);
  return TRUE;
}

/* ---- the tables ----------------------------------------------------------------------------- */

#define CUDA_IFACE_BODY \
  .destroy = cuda_destroy, \
  .supports_op = cuda_supports_op, \
  .alloc = cuda_alloc, \
  .free = cuda_free, \
  .upload = cuda_upload, \
  .download = cuda_download, \
  .prepare = cuda_prepare, \
  .release = cuda_release, \
  .synchronize = cuda_synchronize, \
  .forward = { \
    nf_cuda_conv2d,             /* NF_OP_CONV2D */ \
    nf_cuda_conv_transpose2d,   /* NF_OP_CONV_TRANSPOSE2D */ \
    nf_cuda_instance_norm,      /* NF_OP_INSTANCE_NORM */ \
    NULL,                       /* NF_OP_BATCH_NORM: folded at load */ \
    nf_cuda_relu,               /* NF_OP_RELU */ \
    nf_cuda_add,                /* NF_OP_ADD */ \
    nf_cuda_concat,             /* NF_OP_CONCAT */ \
    nf_cuda_upsample_nearest,   /* NF_OP_UPSAMPLE_NEAREST */ \
    nf_cuda_pixel_shuffle,      /* NF_OP_PIXEL_SHUFFLE */ \
    nf_cuda_tanh_scale,         /* NF_OP_TANH_SCALE */ \
    nf_cuda_clamp,              /* NF_OP_CLAMP */ \
    nf_cuda_pool2d,             /* NF_OP_AVG_POOL2D */ \
    nf_cuda_pool2d,             /* NF_OP_MAX_POOL2D */ \
    nf_cuda_cond_instance_norm, /* NF_OP_COND_INSTANCE_NORM */ \
  }, \
  .backward = { \
    nf_cuda_conv2d_backward,             /* NF_OP_CONV2D */ \
    nf_cuda_conv_transpose2d_backward,   /* NF_OP_CONV_TRANSPOSE2D */ \
    nf_cuda_instance_norm_backward,      /* NF_OP_INSTANCE_NORM */ \
    NULL,                                /* NF_OP_BATCH_NORM: folded at load */ \
    nf_cuda_relu_backward,               /* NF_OP_RELU */ \
    nf_cuda_add_backward,                /* NF_OP_ADD */ \
    nf_cuda_concat_backward,             /* NF_OP_CONCAT */ \
    nf_cuda_upsample_nearest_backward,   /* NF_OP_UPSAMPLE_NEAREST */ \
    nf_cuda_pixel_shuffle_backward,      /* NF_OP_PIXEL_SHUFFLE */ \
    nf_cuda_tanh_scale_backward,         /* NF_OP_TANH_SCALE */ \
    nf_cuda_clamp_backward,              /* NF_OP_CLAMP */ \
    nf_cuda_pool2d_backward,             /* NF_OP_AVG_POOL2D */ \
    nf_cuda_pool2d_backward,             /* NF_OP_MAX_POOL2D */ \
    nf_cuda_cond_instance_norm_backward, /* NF_OP_COND_INSTANCE_NORM */ \
  }, \
  .zero = cuda_zero, \
  .weights_on_device = cuda_weights_on_device, \
  .fuses_sr_tail = FALSE, /* the SR tail runs as its own ops (pixel_shuffle ignores the fuse flags) */

/* C++ has no designated array initialisers: the forward and backward tables above list
 * every op in NfOpType order, and this checks that the order still holds. An op type
 * added after these gets NULL entries (the engine then says this backend cannot run it)
 * until it is listed here. */
G_STATIC_ASSERT (NF_OP_CONV2D == 0 && NF_OP_CONV_TRANSPOSE2D == 1
    && NF_OP_INSTANCE_NORM == 2 && NF_OP_BATCH_NORM == 3 && NF_OP_RELU == 4
    && NF_OP_ADD == 5 && NF_OP_CONCAT == 6 && NF_OP_UPSAMPLE_NEAREST == 7
    && NF_OP_PIXEL_SHUFFLE == 8 && NF_OP_TANH_SCALE == 9 && NF_OP_CLAMP == 10
    && NF_OP_AVG_POOL2D == 11 && NF_OP_MAX_POOL2D == 12 && NF_OP_COND_INSTANCE_NORM == 13
    && NF_OP_COUNT >= 14);

extern "C" const NfBackendIface nf_backend_cuda = {
  .name = "cuda",
  .create = cuda_create_fp32,
  CUDA_IFACE_BODY
};

extern "C" const NfBackendIface nf_backend_cuda_fp16 = {
  .name = "cuda-fp16",
  .create = cuda_create_fp16,
  CUDA_IFACE_BODY
};
