/* nf-train-device.c — the training devices of this build (see nf-train-device.h): which
 * table trains on which backend, and the choice of the backend from --device and
 * --backend (nf_trainer_choose_backend, nf-trainer.h).
 *
 * What it does: looks the backend's name up in the tables' lists; asks the table
 * whether a backend can train on this machine (a usable GPU, backward passes); brings a
 * network's host weights up to date through its table (nf_trainnet_host_weights).
 * What it does not: any device's work (nf-train-device-cpu.c, nf-train-device-cuda.c).
 */
#include "nf-train-device.h"

#include "nf-error.h"
#include "nf-trainnet-private.h"

static const NfTrainDevice *const devices[] = {
  &nf_train_device_cpu,
#ifdef NF_HAVE_CUDA_TRAIN
  &nf_train_device_cuda,
#endif
};

const NfTrainDevice *
nf_train_device_for_name (const char *name)
{
  for (guint i = 0; name && i < G_N_ELEMENTS (devices); i++)
    for (int j = 0; devices[i]->backends[j]; j++)
      if (g_str_equal (devices[i]->backends[j], name))
        return devices[i];
  return NULL;
}

const NfTrainDevice *
nf_train_device_for (const NfBackend *be, GError **error)
{
  const NfTrainDevice *d = nf_train_device_for_name (be->iface->name);
  if (d)
    return d;
  GString *names = g_string_new ("");
  for (guint i = 0; i < G_N_ELEMENTS (devices); i++)
    for (int j = 0; devices[i]->backends[j]; j++)
      g_string_append_printf (names, "%s%s", names->len ? ", " : "", devices[i]->backends[j]);
  g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "backend %s cannot train in this "
      "build: training runs on %s%s", be->iface->name, names->str,
#ifdef NF_HAVE_CUDA_TRAIN
      ""
#else
      " (the CUDA backends need the GPU training kernels, training/cuda, which this "
      "build does not have)"
#endif
      );
  g_string_free (names, TRUE);
  return NULL;
}

gboolean
nf_trainnet_host_weights (NfTrainNet *t, GError **error)
{
  return !t->device->net_to_host || t->device->net_to_host (t, error);
}

/* NULL when the GPU backend `name` can train here, else why not (g_free). */
static char *
gpu_cannot_train (const char *name)
{
  if (!nf_backend_lookup (name))
    return g_strdup ("this build has no CUDA backend (nvcc and cuDNN were not found at "
        "configure time)");
  const NfTrainDevice *d = nf_train_device_for_name (name);
  if (!d)
    return g_strdup ("this build has no GPU training kernels (training/cuda)");
  return d->cannot_train ? d->cannot_train (name) : NULL;
}

const char *
nf_trainer_choose_backend (const char *device, const char *backend, char **note,
    GError **error)
{
  if (note)
    *note = NULL;
  device = device ? device : "auto";
  backend = backend ? backend : "auto";
  gboolean dev_cpu = g_str_equal (device, "cpu"), dev_cuda = g_str_equal (device, "cuda");
  if (!dev_cpu && !dev_cuda && !g_str_equal (device, "auto")) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "--device %s: auto, cpu or cuda",
        device);
    return NULL;
  }
  if (!g_str_equal (backend, "auto")) {
    gboolean b_cuda = g_str_has_prefix (backend, "cuda");
    if (!nf_backend_lookup (backend)) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "--backend %s is not a backend of this build (auto, cpu, cpu-bf16, cpu-ref%s)", backend,
          nf_backend_lookup ("cuda") ? ", cuda, cuda-fp16" : "");
      return NULL;
    }
    if ((b_cuda && dev_cpu) || (!b_cuda && dev_cuda)) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "--backend %s runs on the %s, not on --device %s", backend, b_cuda ? "GPU" : "CPU",
          device);
      return NULL;
    }
    char *why = b_cuda ? gpu_cannot_train (backend) : NULL;
    if (why) {
      g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "--backend %s: %s", backend, why);
      g_free (why);
      return NULL;
    }
    return g_intern_string (backend);
  }
  if (dev_cpu)
    return nf_trainer_pick_backend ("auto");
  char *why = gpu_cannot_train ("cuda");
  if (!why)
    return "cuda";
  if (dev_cuda) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "--device cuda: %s", why);
    g_free (why);
    return NULL;
  }
  const char *cpu = nf_trainer_pick_backend ("auto");
  if (note)
    *note = g_strdup_printf ("device auto: %s; training on the CPU (backend %s)", why, cpu);
  g_free (why);
  return cpu;
}
