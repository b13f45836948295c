/* nf-train-device-cuda.c — the CUDA training device (nf-train-device.h): the table for
 * the backends cuda and cuda-fp16. Built only with the GPU training kernels
 * (NF_HAVE_CUDA_TRAIN).
 *
 * What it does: names which function does what; the functions are in the files of each
 * object (nf-trainnet-gpu.c, nf-perceptual-gpu.c, nf-trainer-gpu.c, nf-pixopt-gpu.c)
 * and the pinned batch memory in nf-train-gpu.c.
 * What it does not: anything else.
 */
#include "nf-train-device-cuda.h"

const NfTrainDevice nf_train_device_cuda = {
  .name = "cuda",
  .backends = { "cuda", "cuda-fp16", NULL },
  .cannot_train = nf_trainer_gpu_cannot_train,

  .net_init = nf_trainnet_gpu_init,
  .net_free = nf_trainnet_gpu_free,
  .net_backward = nf_trainnet_gpu_backward_host,
  .net_push = nf_trainnet_gpu_push,
  .net_pull = nf_trainnet_gpu_pull,
  .net_weights_updated = nf_trainnet_gpu_weights_updated,
  .net_to_host = nf_trainnet_gpu_to_host,

  .perceptual_init = nf_perceptual_gpu_init,
  .perceptual_free = nf_perceptual_gpu_free,
  .perceptual_set_gram = nf_perceptual_gpu_set_gram,

  .trainer_setup = nf_trainer_gpu_setup,
  .trainer_free = nf_trainer_gpu_free,
  .batch_alloc = nf_gpu_host_alloc,
  .batch_free = nf_gpu_host_free,
  .batch_losses = nf_trainer_gpu_batch_losses,
  .read_losses = nf_trainer_gpu_read_losses,
  .optimiser_step = nf_trainer_gpu_optimiser_step,
  .step = nf_trainer_gpu_step,

  .pixopt_init = nf_pixopt_gpu_init,
  .pixopt_free = nf_pixopt_gpu_free,
  .pixopt_eval = nf_pixopt_gpu_eval,
};
