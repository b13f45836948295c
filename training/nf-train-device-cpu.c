/* nf-train-device-cpu.c — the CPU training device (nf-train-device.h): the table for the
 * backends cpu and cpu-ref, whose buffers are host memory.
 *
 * What it does: the host paths as entries: the network's backward into the host
 * gradients and its host sync (nf-trainnet.c), the batch losses through host arrays
 * (nf-trainer.c), Adam on the host NfParams (nf-optim.c), and the refusal of --gpus.
 * Everything else is NULL: no device state, no copies, the generic step, the host path
 * of pixel optimisation.
 * What it does not: the host code itself (in the generic files, where any backend can
 * use it through upload/download).
 */
#include "nf-trainer-private.h"
#include "nf-trainnet-private.h"

#include "nf-error.h"

static gboolean
cpu_trainer_setup (NfTrainer *t, GError **error)
{
  if (t->r->gpus != 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "--gpus %d needs the GPU (--device cuda); this run is on backend %s", t->r->gpus,
        t->be->iface->name);
    return FALSE;
  }
  return TRUE;
}

static gboolean
cpu_optimiser_step (NfTrainer *t, gboolean *stepped, GError **error)
{
  (void) error;
  nf_adam_step (&t->adam, nf_trainnet_params (t->net));
  *stepped = TRUE;
  return TRUE;
}

const NfTrainDevice nf_train_device_cpu = {
  .name = "cpu",
  .backends = { "cpu", "cpu-bf16", "cpu-ref", NULL },
  .net_backward = nf_trainnet_host_backward,
  .net_weights_updated = nf_trainnet_host_sync,
  .trainer_setup = cpu_trainer_setup,
  .batch_losses = nf_trainer_host_batch_losses,
  .optimiser_step = cpu_optimiser_step,
};
