/* nf-cuda-cond-norm.h — the CUDA backend's cond_instance_norm entry points
 * (nf-cuda-cond-norm.cu), listed in the backend table (nf-cuda-backend.cu). C++ only,
 * private.
 * What it does not: anything but declare them.
 */
#pragma once

#include "nf-cuda-private.h"

NF_CUDA_FORWARD (nf_cuda_cond_instance_norm);
NF_CUDA_BACKWARD (nf_cuda_cond_instance_norm_backward);
gboolean nf_cuda_cond_instance_norm_prepare (NfCudaBackend *be, NfOpCall *call,
    GError **error);
void nf_cuda_cond_instance_norm_release (NfCudaBackend *be, NfOpCall *call);
/* NfBackendIface.weights_on_device for a prepared cond_instance_norm: new rows (N, c) of
 * weight and bias in this device's memory, copied (queued on the stream) into the rows
 * the op mixes; n_weight and n_bias must be N * c. */
gboolean nf_cuda_cond_instance_norm_set_weights (NfCudaBackend *be, const NfOpCall *call,
    const float *weight, size_t n_weight, const float *bias, size_t n_bias, GError **error);
