/* nf-cuda-adam.cu — one Adam step over the flat parameter buffer on the GPU, one kernel.
 *
 * The arithmetic is nf_adam_step's (training/nf-optim.c), operation by operation:
 *   g  = grad * grad_scale
 *   m  = b1 m + (1 - b1) g
 *   v  = b2 v + (1 - b2) g g
 *   w -= lr (m / c1 / (sqrt (v / c2) + eps) + wd w)      c1 = 1 - b1^t, c2 = 1 - b2^t
 * with the bias corrections c1, c2 computed on the host by the same powf calls, and the
 * _rn intrinsics (correctly rounded, never fused into FMAs, as the host's ISO C build)
 * in the host's evaluation order, so with grad_scale 1 the result is bit-identical to
 * the host's. Decoupled weight decay (AdamW) is the wd w term inside the step.
 * What it does not: hold optimiser state (the caller's m, v and step count), clip or
 * schedule the learning rate (the trainers).
 */
#include "nf-cuda-train-private.h"

#include <math.h>

#include "nf-error.h"

typedef struct {
  float lr, b1, b2, omb1, omb2, eps, wd, c1, c2, grad_scale;
} AdamArgs;

/* param, m, v (n) updated in place from grad (n) */
__global__ void
adam_kernel (AdamArgs a, float *w, const float *grad, float *m, float *v, size_t n)
{
  size_t stride = (size_t) gridDim.x * blockDim.x;
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    float g = __fmul_rn (grad[i], a.grad_scale);
    float mi = __fadd_rn (__fmul_rn (a.b1, m[i]), __fmul_rn (a.omb1, g));
    float vi = __fadd_rn (__fmul_rn (a.b2, v[i]), __fmul_rn (__fmul_rn (a.omb2, g), g));
    m[i] = mi;
    v[i] = vi;
    float mh = __fdiv_rn (mi, a.c1), vh = __fdiv_rn (vi, a.c2);
    float wi = w[i];
    float step = __fadd_rn (__fdiv_rn (mh, __fadd_rn (__fsqrt_rn (vh), a.eps)),
        __fmul_rn (a.wd, wi));
    w[i] = __fsub_rn (wi, __fmul_rn (a.lr, step));
  }
}

gboolean
nf_cuda_adam_step (NfCudaTrain *ct, float *param, const float *grad, float *m, float *v,
    size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int t,
    float grad_scale, GError **error)
{
  if (!nf_ct_need (param, "nf_cuda_adam_step (param)", error)
      || !nf_ct_need (grad, "nf_cuda_adam_step (grad)", error)
      || !nf_ct_need (m, "nf_cuda_adam_step (m)", error)
      || !nf_ct_need (v, "nf_cuda_adam_step (v)", error))
    return FALSE;
  if (t < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "nf_cuda_adam_step: step number %d (the first step is 1)", t);
    return FALSE;
  }
  if (n == 0)
    return TRUE;
  if (!nf_ct_enter (ct, error))
    return FALSE;
  AdamArgs a;
  a.lr = lr;
  a.b1 = beta1;
  a.b2 = beta2;
  a.omb1 = 1.0f - beta1;
  a.omb2 = 1.0f - beta2;
  a.eps = eps;
  a.wd = weight_decay;
  a.c1 = 1.0f - powf (beta1, (float) t);                               // as nf_adam_step
  a.c2 = 1.0f - powf (beta2, (float) t);
  a.grad_scale = grad_scale;
  adam_kernel<<<nf_blocks (n, NF_THREADS), NF_THREADS, 0, nf_ct_stream (ct)>>> (a, param,
      grad, m, v, n);
  return nf_cuda_launch_ok ("adam_kernel", error);
}
