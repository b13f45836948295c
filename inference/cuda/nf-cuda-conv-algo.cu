/* nf-cuda-conv-algo.cu — choosing the cuDNN algorithm and workspace of a convolution,
 * once per shape.
 *
 * What it does: with a key made of everything that affects the choice (direction,
 * precision, input, filter, padding, stride, output) it looks in the backend's cache;
 * otherwise it times every candidate once on scratch buffers
 * (cudnnFindConvolutionForwardAlgorithmEx / ...BackwardDataAlgorithmEx, like
 * torch.backends.cudnn.benchmark) or, when the config asks for heuristics or the
 * scratch buffers cannot be allocated, takes cuDNN's heuristic ranking
 * (cudnnGetConvolution*Algorithm_v7). The candidates are tried in
 * nf_cuda_algo_order's order (nf-cuda-policy.c: status SUCCESS, allowed for the
 * precision; fp32 the ones cuDNN reports deterministic first, so conv_transpose2d's
 * backward-data ALGO_1 comes before ALGO_0, which sums with atomics, and repeated runs
 * give the same bits) and the first whose workspace fits the limit (a quarter of free
 * memory, at most 1 GiB) wins; its math type is set on the convolution descriptor, as
 * cuDNN requires for the run. For a
 * forward convolution followed by a fused ReLU it then runs
 * cudnnConvolutionBiasActivationForward once: if that fails in any way that leaves the
 * CUDA context usable (refused for this algorithm, layout and type, or cuDNN 9's
 * runtime-compiled engine failing to compile, load or run: nf_cuda_fused_trial), the
 * convolution runs unfused with the bias + ReLU epilogue kernel instead; only a sticky
 * CUDA error fails the plan.
 * Precision policy: the fp32 backend is the validation mode, so it keeps to the
 * GEMM-family algorithms (FFT and Winograd variants trade accuracy for speed) and to
 * FMA math (no TF32); the fp16 backend may use every algorithm with tensor-op math.
 * What it does not: run the convolution (nf-cuda-conv.cu).
 */
#include <string.h>

#include "nf-cuda-conv.h"
#include "nf-cuda-policy.h"

void
nf_cuda_algo_cache_free (gpointer algo)
{
  g_free (algo);
}

static char *
cache_key (NfCudaBackend *be, const NfCudaConv *st, NfShape ys, gboolean want_fused)
{
  int pad_h, pad_w, u, v, dh, dw;
  cudnnConvolutionMode_t mode;
  cudnnDataType_t ct;
  cudnnDataType_t wt;
  cudnnTensorFormat_t wf;
  int k, c, r, s;
  cudnnGetConvolution2dDescriptor (st->cdesc, &pad_h, &pad_w, &u, &v, &dh, &dw, &mode, &ct);
  cudnnGetFilter4dDescriptor (st->wdesc, &wt, &wf, &k, &c, &r, &s);
  return g_strdup_printf ("%c%d%d x%dx%dx%dx%d w%dx%dx%dx%d p%d,%d s%d,%d y%dx%dx%dx%d",
      st->transposed ? 'T' : 'F', be->fp16, want_fused, st->xs.n, st->xs.c, st->xs.h,
      st->xs.w, k, c, r, s, pad_h, pad_w, u, v, ys.n, ys.c, ys.h, ys.w);
}

/* The math type to run an algorithm with: what cuDNN reported for fp16; always FMA for
 * fp32, since DEFAULT_MATH permits TF32 tensor cores on Ampere and newer. */
static cudnnMathType_t
run_math (NfCudaBackend *be, cudnnMathType_t reported)
{
  return be->fp16 ? reported : CUDNN_FMA_MATH;
}

/* Temporary device buffers for timing runs (freed by the caller). */
typedef struct {
  void *x, *y, *ws;
  size_t ws_bytes;
} Trial;

static void
trial_free (Trial *t)
{
  nf_cuda_counted_free (t->x);
  nf_cuda_counted_free (t->y);
  nf_cuda_counted_free (t->ws);
  cudaGetLastError ();          /* an allocation that failed is not an error here */
  t->x = t->y = t->ws = NULL;
}

/* Allocates x, y (zeroed) and as much workspace as fits under limit; FALSE (no error)
 * when even x and y do not fit: the caller then uses heuristics. */
static gboolean
trial_alloc (NfCudaBackend *be, const NfCudaConv *st, NfShape ys, size_t limit, Trial *t)
{
  size_t es = nf_cuda_elem_size (be);
  size_t xb = nf_shape_numel (st->xs) * es, yb = nf_shape_numel (ys) * es;
  memset (t, 0, sizeof *t);
  if (nf_cuda_counted_malloc (&t->x, xb) != cudaSuccess
      || nf_cuda_counted_malloc (&t->y, yb) != cudaSuccess) {
    trial_free (t);
    return FALSE;
  }
  for (size_t w = limit; w >= 1048576; w /= 2)
    if (nf_cuda_counted_malloc (&t->ws, w) == cudaSuccess) {
      t->ws_bytes = w;
      break;
    }
  cudaGetLastError ();
  if (cudaMemsetAsync (t->x, 0, xb, be->stream) != cudaSuccess
      || cudaMemsetAsync (t->y, 0, yb, be->stream) != cudaSuccess) {
    trial_free (t);
    return FALSE;
  }
  return TRUE;
}

size_t
nf_cuda_conv_workspace_limit (void)
{
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo (&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError ();
    return 64u << 20;
  }
  return MIN (free_b / 4, (size_t) 1 << 30);
}

/* The candidates for st, timed on t (t->x non-NULL) or from cuDNN's heuristics:
 * conv2d cuDNN's forward, conv_transpose2d its backward data (y = BackwardData (w,
 * dy = x): x is cuDNN's dy, y its dx). */
static gboolean
candidates (NfCudaBackend *be, NfCudaConv *st, const Trial *t, NfCudaAlgoCand *c, int *n,
    GError **error)
{
  int got = 0;
  *n = 0;
  if (st->transposed) {
    cudnnConvolutionBwdDataAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    if (t->x)
      NF_CUDNN_TRY (cudnnFindConvolutionBackwardDataAlgorithmEx (be->cudnn, st->wdesc, st->w,
              st->xdesc, t->x, st->cdesc, st->ydesc, t->y,
              CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, p, t->ws, t->ws_bytes), error);
    else
      NF_CUDNN_TRY (cudnnGetConvolutionBackwardDataAlgorithm_v7 (be->cudnn, st->wdesc,
              st->xdesc, st->cdesc, st->ydesc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got,
              p), error);
    for (int i = 0; i < got && i < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; i++)
      c[(*n)++] = NfCudaAlgoCand { p[i].algo, p[i].status, p[i].determinism, p[i].mathType };
  } else {
    cudnnConvolutionFwdAlgoPerf_t p[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    if (t->x)
      NF_CUDNN_TRY (cudnnFindConvolutionForwardAlgorithmEx (be->cudnn, st->xdesc, t->x,
              st->wdesc, st->w, st->cdesc, st->ydesc, t->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
              &got, p, t->ws, t->ws_bytes), error);
    else
      NF_CUDNN_TRY (cudnnGetConvolutionForwardAlgorithm_v7 (be->cudnn, st->xdesc, st->wdesc,
              st->cdesc, st->ydesc, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, p), error);
    for (int i = 0; i < got && i < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; i++)
      c[(*n)++] = NfCudaAlgoCand { p[i].algo, p[i].status, p[i].determinism, p[i].mathType };
  }
  return TRUE;
}

static cudnnStatus_t
workspace_size (NfCudaBackend *be, NfCudaConv *st, int algo, size_t *ws)
{
  if (st->transposed)
    return cudnnGetConvolutionBackwardDataWorkspaceSize (be->cudnn, st->wdesc, st->xdesc,
        st->cdesc, st->ydesc, (cudnnConvolutionBwdDataAlgo_t) algo, ws);
  return cudnnGetConvolutionForwardWorkspaceSize (be->cudnn, st->xdesc, st->wdesc, st->cdesc,
      st->ydesc, (cudnnConvolutionFwdAlgo_t) algo, ws);
}

/* The algorithm of st: the first candidate in nf_cuda_algo_order (fp32: deterministic
 * ones first, so the transposed convolution does not sum with atomics where cuDNN has a
 * deterministic kernel) whose workspace fits the limit. */
static gboolean
choose (NfCudaBackend *be, NfCudaConv *st, Trial *t, size_t limit, NfCudaAlgo *out,
    GError **error)
{
  NfCudaAlgoKind kind = st->transposed ? NF_CUDA_ALGO_BWD_DATA : NF_CUDA_ALGO_FWD;
  NfCudaAlgoCand c[CUDNN_CONVOLUTION_FWD_ALGO_COUNT + CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int order[G_N_ELEMENTS (c)];
  int n = 0;
  if (!candidates (be, st, t, c, &n, error))
    return FALSE;
  if (t->x)
    limit = t->ws_bytes;
  int k = nf_cuda_algo_order (kind, be->fp16, c, n, order);
  for (int j = 0; j < k; j++) {
    const NfCudaAlgoCand *a = &c[order[j]];
    size_t ws = 0;
    cudnnMathType_t math = run_math (be, a->math);
    NF_CUDNN_TRY (cudnnSetConvolutionMathType (st->cdesc, math), error);
    if (workspace_size (be, st, a->algo, &ws) != CUDNN_STATUS_SUCCESS || ws > limit)
      continue;
    if (a->det != CUDNN_DETERMINISTIC && !be->fp16)
      g_debug ("%s: no deterministic %s algorithm fits for this shape: algorithm %d",
          be->parent.iface->name, st->transposed ? "backward-data" : "forward", a->algo);
    out->algo = a->algo;
    out->ws_bytes = ws;
    out->math = math;
    return TRUE;
  }
  g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_FAILED,
      "cudnn: no %s algorithm for this shape fits %.0f MiB of workspace (%d candidates)",
      st->transposed ? "transposed-convolution (backward data)" : "forward convolution",
      limit / 1048576.0, n);
  return FALSE;
}

/* One run of the fused call on the trial buffers: a->fused 1 when it works, 0 when it
 * failed in any way that leaves the context usable (the convolution then runs unfused:
 * the fused call is an optimisation whose cuDNN 9 engines are compiled at run time and
 * may fail to compile, load or run on a given setup); FALSE only for a sticky CUDA
 * error (nf_cuda_fused_trial). */
static gboolean
try_fused (NfCudaBackend *be, NfCudaConv *st, Trial *t, NfCudaAlgo *a, GError **error)
{
  const float one = 1.0f, zero = 0.0f;
  if (a->ws_bytes > t->ws_bytes) {
    a->fused = 0;
    return TRUE;
  }
  cudnnStatus_t s = cudnnConvolutionBiasActivationForward (be->cudnn, &one, st->xdesc, t->x,
      st->wdesc, st->w, st->cdesc, (cudnnConvolutionFwdAlgo_t) a->algo, t->ws, a->ws_bytes,
      &zero, st->ydesc, t->y, st->bdesc, st->bias_t, st->adesc, st->ydesc, t->y);
  /* what the call queued, and a launch it had rejected (cleared: not sticky ones) */
  cudaError_t after = nf_cuda_counted_sync (be->stream);
  cudaError_t launch = cudaGetLastError ();
  if (after == cudaSuccess)
    after = launch;
  switch (nf_cuda_fused_trial (s, after)) {
    case NF_CUDA_FUSED_RUNS:
      a->fused = 1;
      return TRUE;
    case NF_CUDA_FUSED_UNFUSED:
      g_debug ("%s: fused conv + bias + ReLU failed (%s%s%s): unfused for this shape",
          be->parent.iface->name, cudnnGetErrorString (s),
          after != cudaSuccess ? "; " : "", after != cudaSuccess ? cudaGetErrorName (after) : "");
      a->fused = 0;
      return TRUE;
    case NF_CUDA_FUSED_FATAL:
      break;
  }
  return nf_cuda_ok (after, "cudnnConvolutionBiasActivationForward (trial)", error);
}

gboolean
nf_cuda_conv_choose_algo (NfCudaBackend *be, NfCudaConv *st, NfShape ys, gboolean want_fused,
    GError **error)
{
  want_fused = want_fused && !st->transposed;
  char *key = cache_key (be, st, ys, want_fused);
  NfCudaAlgo *cached = (NfCudaAlgo *) g_hash_table_lookup (be->algo_cache, key);
  if (cached) {
    g_free (key);
    st->algo = *cached;
    NF_CUDNN_TRY (cudnnSetConvolutionMathType (st->cdesc, cached->math), error);
    return TRUE;
  }

  size_t limit = nf_cuda_conv_workspace_limit ();
  Trial t = { NULL, NULL, NULL, 0 };
  gboolean have_trial = FALSE;
  if (!be->cfg.heuristic_algos || want_fused)
    have_trial = trial_alloc (be, st, ys, limit, &t);
  Trial timing = t;
  if (be->cfg.heuristic_algos || !have_trial)
    timing.x = NULL;            /* heuristics */

  NfCudaAlgo a = { 0, 0, CUDNN_DEFAULT_MATH, -1 };
  gboolean ok = choose (be, st, &timing, limit, &a, error);
  if (ok && want_fused)
    ok = have_trial ? try_fused (be, st, &t, &a, error) : ((a.fused = 0), TRUE);
  trial_free (&t);
  if (!ok) {
    g_free (key);
    return FALSE;
  }
  st->algo = a;
  g_hash_table_insert (be->algo_cache, key, g_memdup2 (&a, sizeof a));
  return TRUE;
}
