/* nf-backend.c — the registry of compute backends by name.
 * Does not: implement any op (inference/cpu/, inference/cuda/ do). */
#include "nf-backend.h"

#include "nf-error.h"

#ifdef NF_HAVE_CUDA
/* inference/cuda/: "cuda" runs fp32 NCHW (validation), "cuda-fp16" fp16 NHWC with
 * tensor cores (real time); see nf-cuda.h for why precision is chosen by name. */
extern const NfBackendIface nf_backend_cuda;
extern const NfBackendIface nf_backend_cuda_fp16;
#endif

static const NfBackendIface *const backends[] = {
  &nf_backend_cpu_ref,
  &nf_backend_cpu,
  &nf_backend_cpu_bf16,
#ifdef NF_HAVE_CUDA
  &nf_backend_cuda,
  &nf_backend_cuda_fp16,
#endif
};

const NfBackendIface *
nf_backend_lookup (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (backends); i++)
    if (g_strcmp0 (backends[i]->name, name) == 0)
      return backends[i];
  return NULL;
}

NfBackend *
nf_backend_new (const char *name, GError **error)
{
  const NfBackendIface *iface = nf_backend_lookup (name);
  if (!iface) {
    GString *known = g_string_new (NULL);
    for (guint i = 0; i < G_N_ELEMENTS (backends); i++)
      g_string_append_printf (known, "%s%s", i ? ", " : "", backends[i]->name);
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
        "unknown backend \"%s\" (this build has: %s)", name, known->str);
    g_string_free (known, TRUE);
    return NULL;
  }
  return iface->create (error);
}

void
nf_backend_free (NfBackend *be)
{
  if (be)
    be->iface->destroy (be);
}
