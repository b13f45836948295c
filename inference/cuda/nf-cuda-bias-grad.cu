/* nf-cuda-bias-grad.cu — the bias gradient of a convolution, db (C) += sum over
 * (n, y, x) of dy (N, C, H, W), as the two-stage reduction nf-cuda-bias-grad.h plans:
 * stage 1 spreads blocks over the whole tensor (coalesced reads in both layouts) and
 * writes double partial sums to scratch; stage 2 adds each channel's partials in a fixed
 * order into db. Deterministic: the same bits every run.
 * What it does not: own memory (the caller passes scratch of nf_cuda_bias_grad_scratch
 * bytes), or anything but accumulation into db (device fp32).
 */
#include "nf-cuda-bias-grad.h"
#include "nf-cuda-private.h"

/* NHWC: block b sums rows [b * rows_per_block, ...) tile by tile; partial[b * C + c]. */
template <typename T>
__global__ void
bias_grad_nhwc_kernel (const T *__restrict__ dy, NfBiasGradPlan p, double *__restrict__ partial)
{
  __shared__ double sh[NF_BIAS_GRAD_THREADS];
  int t = threadIdx.x;
  size_t r0 = (size_t) blockIdx.x * p.rows_per_block;
  size_t r1 = r0 + p.rows_per_block < p.rows ? r0 + p.rows_per_block : p.rows;
  for (int c0 = 0; c0 < p.c; c0 += p.threads) {
    int cw, g;
    nf_bias_grad_tile (&p, c0, &cw, &g);
    double s = 0.0;
    if (t / cw < g)
      for (size_t r = r0 + t / cw; r < r1; r += g)
        s += nf_ld (dy + r * p.c + c0 + t % cw);
    sh[t] = s;
    __syncthreads ();
    if (t < cw) {
      double tot = 0.0;
      for (int j = 0; j < g; j++)
        tot += sh[j * cw + t];
      partial[(size_t) blockIdx.x * p.c + c0 + t] = tot;
    }
    __syncthreads ();
  }
}

/* NCHW: block b sums chunk b % chunks of plane b / chunks; partial[b]. */
template <typename T>
__global__ void
bias_grad_nchw_kernel (const T *__restrict__ dy, NfBiasGradPlan p, double *__restrict__ partial)
{
  __shared__ double sh[NF_BIAS_GRAD_THREADS];
  size_t plane = blockIdx.x / p.chunks, ch = blockIdx.x % p.chunks;
  size_t begin = ch * p.chunk, end = begin + p.chunk < p.hw ? begin + p.chunk : p.hw;
  const T *x = dy + plane * p.hw;
  double s = 0.0;
  for (size_t j = begin + threadIdx.x; j < end; j += blockDim.x)
    s += nf_ld (x + j);
  sh[threadIdx.x] = s;
  __syncthreads ();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if ((int) threadIdx.x < k)
      sh[threadIdx.x] += sh[threadIdx.x + k];
    __syncthreads ();
  }
  if (threadIdx.x == 0)
    partial[blockIdx.x] = sh[0];
}

/* db[c] += sum over i < outer, j < inner of partial[(i * C + c) * inner + j]. */
__global__ void
bias_grad_finish_kernel (const double *__restrict__ partial, NfBiasGradPlan p,
    float *__restrict__ db)
{
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= p.c)
    return;
  double s = 0.0;
  for (size_t i = 0; i < p.outer; i++)
    for (size_t j = 0; j < p.inner; j++)
      s += partial[(i * p.c + c) * p.inner + j];
  db[c] += (float) s;
}

static NfBiasGradPlan
plan_for (const NfCudaBackend *be, NfShape s)
{
  return nf_bias_grad_plan (s, be->fp16, be->prop.multiProcessorCount);
}

size_t
nf_cuda_bias_grad_scratch (const NfCudaBackend *be, NfShape s)
{
  return (plan_for (be, s).n_partial * sizeof (double) + 255) & ~(size_t) 255;
}

gboolean
nf_cuda_launch_bias_grad (NfCudaBackend *be, const void *dy, NfShape s, float *db,
    void *scratch, GError **error)
{
  NfBiasGradPlan p = plan_for (be, s);
  if (p.blocks == 0)
    return TRUE;
  double *partial = (double *) scratch;
  if (be->fp16)
    bias_grad_nhwc_kernel<__half> <<<p.blocks, p.threads, 0, be->stream>>> (
        (const __half *) dy, p, partial);
  else
    bias_grad_nchw_kernel<float> <<<p.blocks, p.threads, 0, be->stream>>> (
        (const float *) dy, p, partial);
  if (!nf_cuda_launch_ok ("bias_grad (partial sums)", error))
    return FALSE;
  bias_grad_finish_kernel <<<(p.c + NF_THREADS - 1) / NF_THREADS, NF_THREADS, 0,
      be->stream>>> (partial, p, db);
  return nf_cuda_launch_ok ("bias_grad_finish_kernel", error);
}
