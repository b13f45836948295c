/* nf-backend.h — the interface every compute backend implements.
 *
 * A backend is a table of function pointers (like ggml's backend interface):
 * lifetime, buffers, host transfers, a per-op prepare/release (where a backend builds
 * oneDNN primitives, reorders weights, or picks cuDNN algorithms once per plan), and
 * one forward function per op type. Values are NCHW float on the host side; a backend
 * may hold them in any layout internally (upload/download convert).
 *
 * What it does not: decide the order of ops or allocate per-plan buffers (nf-engine).
 */
#pragma once

#include <glib.h>

#include "nf-graph.h"

G_BEGIN_DECLS

typedef struct NfBackend NfBackend;

/* One op as planned for fixed shapes. */
typedef struct {
  const NfOp *op;
  NfShape in[NF_OP_MAX_INPUTS];
  NfShape out;
  void *state;                  /* backend-private, from prepare */
} NfOpCall;

typedef gboolean (*NfForwardFn) (NfBackend *be, NfOpCall *call, void *const *in,
    void *out, GError **error);

/* Backward of one op (training). in: the op's inputs, out: its output (as forward
 * produced it), dout: dL/d(out). Results are ACCUMULATED (+=): din[j] = dL/d(in[j])
 * (din[j] may be NULL: not needed), dweight/dbias = dL/d(weight), dL/d(bias) in the
 * op's weight layout (NULL: not needed; host floats for CPU backends, device floats for
 * GPU ones). Ops are run unfused for training (op->fuse_relu is FALSE). */
typedef gboolean (*NfBackwardFn) (NfBackend *be, NfOpCall *call, void *const *in,
    const void *out, const void *dout, void *const *din, void *dweight, void *dbias,
    GError **error);

typedef struct {
  const char *name;
  /* NULL + error when the backend cannot run here (no GPU, no driver). */
  NfBackend *(*create) (GError **error);
  void (*destroy) (NfBackend *be);
  gboolean (*supports_op) (NfBackend *be, const NfOp *op);

  /* A buffer for one activation of shape s (in the backend's layout/precision,
   * which may pad channels). */
  void *(*alloc) (NfBackend *be, NfShape s, GError **error);
  void (*free) (NfBackend *be, void *buf);
  /* Host NCHW float <-> backend buffer of that shape. */
  gboolean (*upload) (NfBackend *be, void *dst, const float *src, NfShape s, GError **error);
  gboolean (*download) (NfBackend *be, float *dst, const void *src, NfShape s,
      GError **error);

  /* Optional (NULL: nothing to do). */
  gboolean (*prepare) (NfBackend *be, NfOpCall *call, GError **error);
  void (*release) (NfBackend *be, NfOpCall *call);
  /* Waits for queued work (GPU); NULL for synchronous backends. */
  gboolean (*synchronize) (NfBackend *be, GError **error);

  NfForwardFn forward[NF_OP_COUNT];
  /* NULL entries: this backend cannot train through that op. */
  NfBackwardFn backward[NF_OP_COUNT];
  /* Optional: set every element of a buffer of shape s to zero (gradients). */
  gboolean (*zero) (NfBackend *be, void *buf, NfShape s, GError **error);
  /* Optional (training on a GPU, where the optimiser updates the parameters in device
   * memory): the weight and bias of the prepared op call have new values, already in
   * this backend's device memory: weight (n_weight floats) and bias (n_bias; NULL and 0
   * when the op has none) are DEVICE fp32 in the model's layout (as NfOp.weight/bias).
   * The backend refreshes the copies it made at prepare from them, queued in order with
   * its ops: no host transfer, no allocation, no re-prepare, no synchronisation; they
   * are read before the call's next forward runs and may change again after it. Ops
   * without weights: nothing to do. Counts that do not match the op are an error. NULL
   * entry: refresh from the host (nf_engine_weights_changed). */
  gboolean (*weights_on_device) (NfBackend *be, const NfOpCall *call, const float *weight,
      size_t n_weight, const float *bias, size_t n_bias, GError **error);
  /* TRUE: forward[NF_OP_PIXEL_SHUFFLE] honours fuse_skip_add and fuse_clamp (nf-graph.h),
   * so the engine may fuse an SR network's tail into the shuffle. */
  gboolean fuses_sr_tail;
} NfBackendIface;

struct NfBackend {
  const NfBackendIface *iface;
};

/* Registry: "cpu-ref", "cpu", "cpu-bf16" (creating it fails on CPUs without native bf16),
 * "cuda" and "cuda-fp16" (when built). NULL if unknown. */
const NfBackendIface *nf_backend_lookup (const char *name);
NfBackend *nf_backend_new (const char *name, GError **error);
void nf_backend_free (NfBackend *be);

extern const NfBackendIface nf_backend_cpu_ref;
extern const NfBackendIface nf_backend_cpu;
extern const NfBackendIface nf_backend_cpu_bf16;

G_END_DECLS
