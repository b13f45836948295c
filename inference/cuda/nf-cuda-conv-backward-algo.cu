/* nf-cuda-conv-backward-algo.cu — choosing the cuDNN algorithms of a convolution's
 * backward pass, once per shape.
 *
 * Roles. cuDNN describes one convolution mapping an "a" tensor to a "b" tensor with
 * filter K = b's channels, C = a's channels:
 *   conv2d:           a = the (padded) input x, b = the output y;
 *   conv_transpose2d: a = the output y, b = the input x (its forward is cuDNN's
 *                     backward-data of that convolution).
 * The gradients are then
 *   data gradient    conv2d: da = cudnnConvolutionBackwardData (w, db);
 *                    conv_transpose2d: db = cudnnConvolutionForward (da, w);
 *   filter gradient  dw = cudnnConvolutionBackwardFilter (a, db) for conv2d, and
 *                    (a = dy, "dy" = x) for conv_transpose2d: PyTorch's (Cin, Cout, k, k)
 *                    layout is cuDNN's K x C filter there too.
 * What it does: for each of the two, a key (kind, precision, a, filter, padding, stride,
 * b) into the backend's algorithm cache; otherwise every candidate timed once on
 * temporary buffers (cudnnFind*AlgorithmEx) or, with heuristic_algos or when those
 * buffers do not fit, cuDNN's heuristic ranking (cudnnGet*Algorithm_v7). The first
 * candidate in nf_cuda_algo_order's order (nf-cuda-policy.c) whose workspace fits the
 * limit wins. fp32 (validation, within 1e-5 of cpu-ref): GEMM-family algorithms only (no
 * FFT or Winograd), FMA math (no TF32), and the candidates cuDNN reports DETERMINISTIC
 * (backward data ALGO_1, backward filter ALGO_1) before the others (ALGO_0 / ALGO_3 sum
 * with atomics). fp16: any algorithm in cuDNN's order, with the math type it reported.
 * What it does not: run the backward pass (nf-cuda-conv-backward.cu).
 */
#include <string.h>

#include "nf-cuda-conv.h"
#include "nf-cuda-policy.h"

typedef enum {
  KIND_BWD_DATA,                /* conv2d data gradient */
  KIND_FWD_DATA,                /* conv_transpose2d data gradient */
  KIND_BWD_FILTER,
} Kind;

/* The convolution as cuDNN sees it, in the a -> b roles above. */
typedef struct {
  cudnnTensorDescriptor_t a, b;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t c;
  const void *wdata;            /* the weights (read by the data-gradient trials) */
  NfShape as, bs;
  size_t w_numel;
} Geo;

static char *
cache_key (NfCudaBackend *be, Kind kind, const Geo *g)
{
  int pad_h, pad_w, u, v, dh, dw;
  cudnnConvolutionMode_t mode;
  cudnnDataType_t ct, wt;
  cudnnTensorFormat_t wf;
  int k, c, r, s;
  cudnnGetConvolution2dDescriptor (g->c, &pad_h, &pad_w, &u, &v, &dh, &dw, &mode, &ct);
  cudnnGetFilter4dDescriptor (g->w, &wt, &wf, &k, &c, &r, &s);
  return g_strdup_printf ("B%c%d a%dx%dx%dx%d w%dx%dx%dx%d p%d,%d s%d,%d b%dx%dx%dx%d",
      "DGW"[kind], be->fp16, g->as.n, g->as.c, g->as.h, g->as.w, k, c, r, s, pad_h, pad_w,
      u, v, g->bs.n, g->bs.c, g->bs.h, g->bs.w);
}

/* Temporary device buffers for timing runs: a, b, a filter gradient, a workspace. */
typedef struct {
  void *a, *b, *dw, *ws;
  size_t ws_bytes;
} Trial;

static void
trial_free (Trial *t)
{
  nf_cuda_counted_free (t->a);
  nf_cuda_counted_free (t->b);
  nf_cuda_counted_free (t->dw);
  nf_cuda_counted_free (t->ws);
  cudaGetLastError ();          /* an allocation that failed is not an error here */
  memset (t, 0, sizeof *t);
}

/* FALSE (no error) when the buffers do not fit: the caller then uses heuristics. */
static gboolean
trial_alloc (NfCudaBackend *be, const Geo *g, size_t limit, Trial *t)
{
  size_t es = nf_cuda_elem_size (be);
  size_t ab = nf_shape_numel (g->as) * es, bb = nf_shape_numel (g->bs) * es;
  size_t wb = g->w_numel * es;
  memset (t, 0, sizeof *t);
  if (nf_cuda_counted_malloc (&t->a, ab) != cudaSuccess
      || nf_cuda_counted_malloc (&t->b, bb) != cudaSuccess
      || nf_cuda_counted_malloc (&t->dw, wb) != cudaSuccess) {
    trial_free (t);
    return FALSE;
  }
  for (size_t w = limit; w >= 1048576; w /= 2)
    if (nf_cuda_counted_malloc (&t->ws, w) == cudaSuccess) {
      t->ws_bytes = w;
      break;
    }
  cudaGetLastError ();
  if (cudaMemsetAsync (t->a, 0, ab, be->stream) != cudaSuccess
      || cudaMemsetAsync (t->b, 0, bb, be->stream) != cudaSuccess) {
    trial_free (t);
    return FALSE;
  }
  return TRUE;
}

#define MAX_CANDS 16

static NfCudaAlgoCand
cand (int algo, cudnnStatus_t status, cudnnDeterminism_t det, cudnnMathType_t math)
{
  NfCudaAlgoCand c = { algo, status, det, math };
  return c;
}

/* The candidates, timed on t (t->a non-NULL) or from heuristics. */
static gboolean
candidates (NfCudaBackend *be, Kind kind, const Geo *g, const Trial *t, NfCudaAlgoCand *out,
    int *n, GError **error)
{
  int got = 0;
  *n = 0;
  switch (kind) {
    case KIND_BWD_DATA:{
      cudnnConvolutionBwdDataAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      if (t->a)
        NF_CUDNN_TRY (cudnnFindConvolutionBackwardDataAlgorithmEx (be->cudnn, g->w, g->wdata,
                g->b, t->b, g->c, g->a, t->a, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, p,
                t->ws, t->ws_bytes), error);
      else
        NF_CUDNN_TRY (cudnnGetConvolutionBackwardDataAlgorithm_v7 (be->cudnn, g->w, g->b, g->c,
                g->a, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, p), error);
      for (int i = 0; i < got && *n < MAX_CANDS; i++)
        out[(*n)++] = cand (p[i].algo, p[i].status, p[i].determinism, p[i].mathType);
      break;
    }
    case KIND_FWD_DATA:{
      cudnnConvolutionFwdAlgoPerf_t p[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      if (t->a)
        NF_CUDNN_TRY (cudnnFindConvolutionForwardAlgorithmEx (be->cudnn, g->a, t->a, g->w,
                g->wdata, g->c, g->b, t->b, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, p, t->ws,
                t->ws_bytes), error);
      else
        NF_CUDNN_TRY (cudnnGetConvolutionForwardAlgorithm_v7 (be->cudnn, g->a, g->w, g->c, g->b,
                CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, p), error);
      for (int i = 0; i < got && *n < MAX_CANDS; i++)
        out[(*n)++] = cand (p[i].algo, p[i].status, p[i].determinism, p[i].mathType);
      break;
    }
    case KIND_BWD_FILTER:{
      cudnnConvolutionBwdFilterAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      if (t->a)
        NF_CUDNN_TRY (cudnnFindConvolutionBackwardFilterAlgorithmEx (be->cudnn, g->a, t->a,
                g->b, t->b, g->c, g->w, t->dw, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, p,
                t->ws, t->ws_bytes), error);
      else
        NF_CUDNN_TRY (cudnnGetConvolutionBackwardFilterAlgorithm_v7 (be->cudnn, g->a, g->b,
                g->c, g->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, p), error);
      for (int i = 0; i < got && *n < MAX_CANDS; i++)
        out[(*n)++] = cand (p[i].algo, p[i].status, p[i].determinism, p[i].mathType);
      break;
    }
  }
  return TRUE;
}

static cudnnStatus_t
workspace_size (NfCudaBackend *be, Kind kind, const Geo *g, int algo, size_t *ws)
{
  switch (kind) {
    case KIND_BWD_DATA:
      return cudnnGetConvolutionBackwardDataWorkspaceSize (be->cudnn, g->w, g->b, g->c, g->a,
          (cudnnConvolutionBwdDataAlgo_t) algo, ws);
    case KIND_FWD_DATA:
      return cudnnGetConvolutionForwardWorkspaceSize (be->cudnn, g->a, g->w, g->c, g->b,
          (cudnnConvolutionFwdAlgo_t) algo, ws);
    case KIND_BWD_FILTER:
      return cudnnGetConvolutionBackwardFilterWorkspaceSize (be->cudnn, g->a, g->b, g->c, g->w,
          (cudnnConvolutionBwdFilterAlgo_t) algo, ws);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

/* Chooses for one kind; sets the chosen math type on g->c. */
static gboolean
choose (NfCudaBackend *be, Kind kind, const Geo *g, NfCudaAlgo *out, GError **error)
{
  static const char *what[] = { "backward-data", "forward (transposed data gradient)",
    "backward-filter" };
  char *key = cache_key (be, kind, g);
  NfCudaAlgo *cached = (NfCudaAlgo *) g_hash_table_lookup (be->algo_cache, key);
  if (cached) {
    g_free (key);
    *out = *cached;
    NF_CUDNN_TRY (cudnnSetConvolutionMathType (g->c, cached->math), error);
    return TRUE;
  }

  size_t limit = nf_cuda_conv_workspace_limit ();
  Trial t;
  memset (&t, 0, sizeof t);
  if (!be->cfg.heuristic_algos && trial_alloc (be, g, limit, &t))
    limit = t.ws_bytes;
  /* the descriptor's math type when asking: what the run will use for fp32 */
  NF_CUDNN_TRY (cudnnSetConvolutionMathType (g->c,
          be->fp16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH), error);
  NfCudaAlgoCand c[MAX_CANDS];
  int order[MAX_CANDS];
  int n = 0;
  gboolean ok = candidates (be, kind, g, &t, c, &n, error);
  trial_free (&t);
  if (!ok) {
    g_free (key);
    return FALSE;
  }
  static const NfCudaAlgoKind policy_kind[] = { NF_CUDA_ALGO_BWD_DATA, NF_CUDA_ALGO_FWD,
    NF_CUDA_ALGO_BWD_FILTER };
  int k = nf_cuda_algo_order (policy_kind[kind], be->fp16, c, n, order);
  for (int j = 0; j < k; j++) {
    const NfCudaAlgoCand *a = &c[order[j]];
    cudnnMathType_t math = be->fp16 ? a->math : CUDNN_FMA_MATH;
    size_t ws = 0;
    if (!nf_cudnn_ok (cudnnSetConvolutionMathType (g->c, math), "cudnnSetConvolutionMathType",
            error)) {
      g_free (key);
      return FALSE;
    }
    if (workspace_size (be, kind, g, a->algo, &ws) != CUDNN_STATUS_SUCCESS || ws > limit)
      continue;
    out->algo = a->algo;
    out->ws_bytes = ws;
    out->math = math;
    out->fused = -1;
    g_hash_table_insert (be->algo_cache, key, g_memdup2 (out, sizeof *out));
    return TRUE;
  }
  g_free (key);
  g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_FAILED,
      "cudnn: no %s algorithm for this shape fits %.0f MiB of workspace (%d candidates)",
      what[kind], limit / 1048576.0, n);
  return FALSE;
}

gboolean
nf_cuda_conv_choose_backward (NfCudaBackend *be, NfCudaConv *st, NfShape ys, NfCudaConvBwd *b,
    GError **error)
{
  cudnnDataType_t wt;
  cudnnTensorFormat_t wf;
  int k, c, r, s;
  NF_CUDNN_TRY (cudnnGetFilter4dDescriptor (st->wdesc, &wt, &wf, &k, &c, &r, &s), error);
  Geo g;
  g.w = st->wdesc;
  g.wdata = st->w;
  g.w_numel = (size_t) k * c * r * s;
  if (st->transposed) {
    g.a = st->ydesc;
    g.as = ys;
    g.b = st->xdesc;
    g.bs = st->xs;
  } else {
    g.a = st->xdesc;
    g.as = st->xs;
    g.b = st->ydesc;
    g.bs = ys;
  }
  g.c = b->cdata;
  if (!choose (be, st->transposed ? KIND_FWD_DATA : KIND_BWD_DATA, &g, &b->data, error))
    return FALSE;
  g.c = b->cfilt;
  return choose (be, KIND_BWD_FILTER, &g, &b->filt, error);
}

void
nf_cuda_conv_backward_free (NfCudaConvBwd *b)
{
  if (!b)
    return;
  if (b->cdata)
    cudnnDestroyConvolutionDescriptor (b->cdata);
  if (b->cfilt)
    cudnnDestroyConvolutionDescriptor (b->cfilt);
  g_free (b);
}
