/* nf-cuda-cond-norm.cu — cond_instance_norm on the CUDA backends ("cuda", "cuda-fp16"):
 * instance_norm (nf-cuda-norm.cu, nf-cuda-norm-backward.cu) with the style rows mixed by
 * the op's run-time weights m (nf-graph.h, nf-cond-norm.h):
 *   gamma[c] = sum_i m_i weight[i, c], beta[c] = sum_i m_i bias[i, c]
 *   dweight[i, c] += m_i dL/dgamma[c], dbias[i, c] += m_i dL/dbeta[c]
 *
 * What it does: keeps the N rows of weight and bias on the device (uploaded at prepare,
 * or handed over in device memory by a GPU trainer: nf_cuda_cond_instance_norm_set_weights)
 * and an instance_norm state whose w, b receive the mixed rows. Every forward and backward
 * queues the mix (N floats from the host, read at that call: a copy from pageable memory,
 * which the runtime stages before returning, so the model's mix may change at once) and a
 * small kernel that mixes the rows into w, b, then the instance_norm kernels; the backward
 * scatters the gradient of the mixed rows to the N rows with the same mix. A new mix is
 * picked up by the next run: no replanning, no allocation, no synchronisation.
 * What it does not: choose the mix (nf-model.h), or hold anything per frame size beyond
 * what instance_norm's prepare sizes.
 */
#include "nf-cuda-cond-norm.h"
#include "nf-cuda-norm.h"

typedef struct {
  NfCudaNorm *norm;             /* instance_norm's state; its w, b: the mixed rows (c) */
  float *rows;                  /* device (2, N, c): weight rows, then bias rows */
  float *mix;                   /* device (N): the mix of the last call */
  float *dgb;                   /* device (2c): dL/dgamma, dL/dbeta of one backward */
} NfCudaCondNorm;

/* ---- kernels ---------------------------------------------------------------------------- */

/* One thread per channel: w[c] = sum_i mix[i] rows[i, c], b[c] = sum_i mix[i] rows[N + i, c]
 * (double sums, as the host's nf_cond_norm_mix). */
__global__ void
mix_kernel (const float *__restrict__ rows, const float *__restrict__ mix, int n_styles,
    int c, float *__restrict__ w, float *__restrict__ b)
{
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c)
    return;
  double g = 0.0, be = 0.0;
  const float *rb = rows + (size_t) n_styles * c;
  for (int i = 0; i < n_styles; i++) {
    g += (double) mix[i] * rows[(size_t) i * c + ch];
    be += (double) mix[i] * rb[(size_t) i * c + ch];
  }
  w[ch] = (float) g;
  b[ch] = (float) be;
}

/* dw[i, c] += mix[i] * dg[c] and db[i, c] += mix[i] * db1[c] over the (N, c) rows; dw or
 * db may be NULL. */
__global__ void
scatter_kernel (const float *__restrict__ mix, const float *__restrict__ dg,
    const float *__restrict__ db1, int c, size_t n, float *__restrict__ dw,
    float *__restrict__ db)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    float m = mix[i / c];
    int ch = (int) (i % c);
    if (dw)
      dw[i] += m * dg[ch];
    if (db)
      db[i] += m * db1[ch];
  }
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* The instance_norm op that stands for op (its w, b set by mix_rows). */
static NfOp
as_instance_norm (const NfOp *op)
{
  NfOp in = *op;
  in.type = NF_OP_INSTANCE_NORM;
  in.affine = TRUE;
  in.mix = NULL;
  in.styles = 0;
  return in;
}

static NfCudaCondNorm *
state_of (NfBackend *be, NfOpCall *call, GError **error)
{
  NfCudaCondNorm *st = (NfCudaCondNorm *) call->state;
  if (!st)
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "%s: cond_instance_norm %s run without prepare", be->iface->name,
        call->op->name ? call->op->name : "");
  else if (!call->op->mix)
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "cond_instance_norm %s: no style mix bound (load it through a model)",
        call->op->name ? call->op->name : "");
  return st && call->op->mix ? st : NULL;
}

/* The op's current mix to the device, and the mixed rows into the norm's w and b. */
static gboolean
mix_rows (NfCudaBackend *be, NfCudaCondNorm *st, const NfOp *op, GError **error)
{
  NF_CUDA_TRY (cudaMemcpyAsync (st->mix, op->mix, (size_t) op->styles * sizeof (float),
          cudaMemcpyHostToDevice, be->stream), error);
  mix_kernel <<<(op->c + 127) / 128, 128, 0, be->stream>>> (st->rows, st->mix, op->styles,
      op->c, st->norm->w, st->norm->b);
  return nf_cuda_launch_ok ("cond instance norm mix_kernel", error);
}

/* ---- prepare / release / weights / entry points -------------------------------------------- */

void
nf_cuda_cond_instance_norm_release (NfCudaBackend *be, NfOpCall *call)
{
  NfCudaCondNorm *st = (NfCudaCondNorm *) call->state;
  if (!st)
    return;
  if (st->norm) {
    call->state = st->norm;
    nf_cuda_instance_norm_release (be, call);
  }
  nf_cuda_counted_free (st->rows);
  nf_cuda_counted_free (st->mix);
  nf_cuda_counted_free (st->dgb);
  cudaGetLastError ();
  g_free (st);
  call->state = NULL;
}

gboolean
nf_cuda_cond_instance_norm_prepare (NfCudaBackend *be, NfOpCall *call, GError **error)
{
  const NfOp *op = call->op;
  if (!op->weight || !op->bias || op->styles < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "cond_instance_norm %s: no weights bound", op->name ? op->name : "");
    return FALSE;
  }
  size_t nc = (size_t) op->styles * op->c;
  NfCudaCondNorm *st = g_new0 (NfCudaCondNorm, 1);
  /* instance_norm's prepare checks the shape and sizes its buffers; its w, b start as
   * style 0's rows and are overwritten by every call */
  NfOp tmp = as_instance_norm (op);
  call->op = &tmp;
  gboolean ok = nf_cuda_instance_norm_prepare (be, call, error);
  st->norm = ok ? (NfCudaNorm *) call->state : NULL;
  call->op = op;
  call->state = st;
  ok = ok && nf_cuda_ok (nf_cuda_counted_malloc ((void **) &st->rows,
          2 * nc * sizeof (float)), "cudaMalloc", error)
      && nf_cuda_ok (nf_cuda_counted_malloc ((void **) &st->mix,
          (size_t) op->styles * sizeof (float)), "cudaMalloc", error)
      && nf_cuda_ok (nf_cuda_counted_malloc ((void **) &st->dgb,
          2 * (size_t) op->c * sizeof (float)), "cudaMalloc", error)
      && nf_cuda_ok (cudaMemcpyAsync (st->rows, op->weight, nc * sizeof (float),
          cudaMemcpyHostToDevice, be->stream), "uploading the style rows", error)
      && nf_cuda_ok (cudaMemcpyAsync (st->rows + nc, op->bias, nc * sizeof (float),
          cudaMemcpyHostToDevice, be->stream), "uploading the style rows", error)
      && nf_cuda_ok (nf_cuda_counted_sync (be->stream), "uploading the style rows", error);
  if (!ok) {
    g_prefix_error (error, "cond_instance_norm %s: ", op->name ? op->name : "");
    nf_cuda_cond_instance_norm_release (be, call);
  }
  return ok;
}

gboolean
nf_cuda_cond_instance_norm_set_weights (NfCudaBackend *be, const NfOpCall *call,
    const float *weight, size_t n_weight, const float *bias, size_t n_bias, GError **error)
{
  const NfOp *op = call->op;
  NfCudaCondNorm *st = (NfCudaCondNorm *) call->state;
  size_t nc = (size_t) op->styles * op->c;
  if (!st || !weight || !bias || n_weight != nc || n_bias != nc) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "cond_instance_norm %s: new rows of "
        "%zu and %zu floats (prepared: %s) where it holds %d x %d", op->name ? op->name : "",
        n_weight, n_bias, st ? "yes" : "no", op->styles, op->c);
    return FALSE;
  }
  NF_CUDA_TRY (cudaMemcpyAsync (st->rows, weight, nc * sizeof (float),
          cudaMemcpyDeviceToDevice, be->stream), error);
  NF_CUDA_TRY (cudaMemcpyAsync (st->rows + nc, bias, nc * sizeof (float),
          cudaMemcpyDeviceToDevice, be->stream), error);
  return TRUE;
}

NF_CUDA_FORWARD (nf_cuda_cond_instance_norm)
{
  NfCudaBackend *b = NF_CUDA (be);
  NfCudaCondNorm *st = state_of (be, call, error);
  const NfOp *op = call->op;
  if (!st || !mix_rows (b, st, op, error))
    return FALSE;
  NfOp tmp = as_instance_norm (op);
  call->op = &tmp;
  call->state = st->norm;
  gboolean ok = nf_cuda_instance_norm (be, call, in, out, error);
  call->op = op;
  call->state = st;
  return ok;
}

NF_CUDA_BACKWARD (nf_cuda_cond_instance_norm_backward)
{
  NfCudaBackend *b = NF_CUDA (be);
  NfCudaCondNorm *st = state_of (be, call, error);
  const NfOp *op = call->op;
  if (!st || !mix_rows (b, st, op, error))        /* dx reads the mixed w */
    return FALSE;
  gboolean want_params = dweight || dbias;
  size_t c = (size_t) op->c;
  if (want_params)
    NF_CUDA_TRY (cudaMemsetAsync (st->dgb, 0, 2 * c * sizeof (float), b->stream), error);
  NfOp tmp = as_instance_norm (op);
  call->op = &tmp;
  call->state = st->norm;
  gboolean ok = nf_cuda_instance_norm_backward (be, call, in, out, dout, din,
      want_params ? st->dgb : NULL, want_params ? st->dgb + c : NULL, error);
  call->op = op;
  call->state = st;
  if (!ok || !want_params)
    return ok;
  size_t n = (size_t) op->styles * c;
  scatter_kernel <<<nf_blocks (n, NF_THREADS), NF_THREADS, 0, b->stream>>> (st->mix, st->dgb,
      st->dgb + c, op->c, n, (float *) dweight, (float *) dbias);
  return nf_cuda_launch_ok ("cond instance norm scatter_kernel", error);
}
