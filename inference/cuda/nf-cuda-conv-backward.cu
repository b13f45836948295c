/* nf-cuda-conv-backward.cu — backward passes of conv2d and conv_transpose2d through
 * cuDNN (training).
 *
 * What it does, per call (roles a/b as in nf-cuda-conv-backward-algo.cu):
 *   dout with a fused ReLU undone first when the op carries one (a masked copy in
 *     scratch; training engines run unfused, so this is for completeness);
 *   dbias (C) += sum over n, y, x of dout — the two-stage reduction over the whole
 *     tensor of nf-cuda-bias-grad.cu (partial sums in scratch, in double, deterministic);
 *   dweight += the filter gradient: cudnnConvolutionBackwardFilter with beta = 1
 *     straight into the caller's fp32 buffer, whose (K, C, k, k) layout is cuDNN's KCRS
 *     for both ops ((cout, cin, k, k) for conv2d, PyTorch's (cin, cout, k, k) for
 *     conv_transpose2d). fp16 (NHWC, half filter KRSC) computes it with beta = 0 into a
 *     half buffer in scratch, then a kernel adds it, transposed to KCRS, to the fp32
 *     gradient (mixed precision: fp32 master gradients; overflow shows as inf there,
 *     for the trainer's loss scaling to see), dropping fp16's zero input channels.
 *     Staged convolutions (reflection padding, fp16's zero channels) take the filter
 *     gradient from the staged input, made again into scratch (as forward does);
 *   din[0] += the data gradient: conv2d cudnnConvolutionBackwardData with beta = 1 into
 *     din[0], or for a staged input with beta = 0 into a staged gradient in scratch
 *     that nf_cuda_launch_reflect_fold adds back onto the pixels it was copied from;
 *     conv_transpose2d cudnnConvolutionForward (dout, w) with beta = 1 into din[0].
 * The weights are the forward state's (uploaded at prepare, refreshed in place by
 * nf_cuda_conv_set_weights only after an optimiser step, before the next forward), so a
 * backward uses the weights its forward ran with.
 * Decision (when the backward state is made): prepare cannot tell an inference plan
 * from a training one (the engine passes no such flag), and choosing three more
 * algorithms and a larger scratch arena for every inference plan would cost planning
 * time and device memory for nothing. So the first backward call after a prepare makes
 * the state: descriptors, the two algorithms (timed once per shape and cached on the
 * backend, so a re-prepare after nf_engine_weights_changed costs a hash lookup), and
 * the scratch reservation. That reservation may grow the arena once per plan, which
 * synchronises the stream (nothing is in flight across ops: they all share the one
 * stream and use scratch only inside a call); later steps never grow it.
 * Numerics: fp32 runs FMA math with deterministic algorithms where cuDNN has one
 * (backward data and filter ALGO_1), so repeated steps give identical gradients.
 * What it does not: groups or dilation (the graph has none), or anything but
 * accumulation (callers zero their gradients).
 */
#include "nf-cuda-conv.h"

#define ALIGN256(x) (((x) + 255) & ~(size_t) 255)

/* ---- kernels ---------------------------------------------------------------------- */

/* dw (K, C, R, S) float += dwh (K, R, S, Cs) half, Cs >= C (fp16's zero input channels
 * C..Cs-1 have no weights in the model: their gradient is dropped). */
__global__ void
dw_accumulate_kernel (const __half *__restrict__ dwh, float *__restrict__ dw, int K, int C,
    int R, int S, int Cs)
{
  size_t n = (size_t) K * C * R * S;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int s = (int) (i % S);
    int r = (int) ((i / S) % R);
    int c = (int) ((i / ((size_t) S * R)) % C);
    int k = (int) (i / ((size_t) S * R * C));
    dw[i] += __half2float (dwh[(((size_t) k * R + r) * S + s) * Cs + c]);
  }
}

/* ---- the backward state (made at the first backward call) -------------------------- */

static gboolean
copy_geometry (cudnnConvolutionDescriptor_t from, cudnnConvolutionDescriptor_t *to,
    GError **error)
{
  int pad_h, pad_w, u, v, dh, dw;
  cudnnConvolutionMode_t mode;
  cudnnDataType_t ct;
  NF_CUDNN_TRY (cudnnGetConvolution2dDescriptor (from, &pad_h, &pad_w, &u, &v, &dh, &dw, &mode,
          &ct), error);
  NF_CUDNN_TRY (cudnnCreateConvolutionDescriptor (to), error);
  NF_CUDNN_TRY (cudnnSetConvolution2dDescriptor (*to, pad_h, pad_w, u, v, dh, dw, mode, ct),
      error);
  return TRUE;
}

static gboolean
make_backward (NfCudaBackend *be, NfOpCall *call, NfCudaConv *st, NfCudaConvBwd *b,
    GError **error)
{
  const NfOp *op = call->op;
  size_t es = nf_cuda_elem_size (be);
  if (!copy_geometry (st->cdesc, &b->cdata, error) || !copy_geometry (st->cdesc, &b->cfilt,
          error))
    return FALSE;
  if (!nf_cuda_conv_choose_backward (be, st, call->out, b, error))
    return FALSE;
  size_t off = 0;
  if (st->staged) {
    b->xpad_off = off;
    off += st->pad_bytes;
    b->dxpad_off = off;
    off += st->pad_bytes;
  }
  if (op->fuse_relu) {
    b->mask_off = off;
    off += ALIGN256 (nf_shape_numel (call->out) * es);
  }
  if (be->fp16) {
    b->dwh_off = off;
    /* (K, k, k, C) as cuDNN sees the filter: C with fp16's zero channels */
    int C = st->transposed ? op->cout : st->xs.c, K = st->transposed ? op->cin : op->cout;
    off += ALIGN256 ((size_t) K * C * op->k * op->k * sizeof (__half));
  }
  b->bgrad_off = off;
  off += nf_cuda_bias_grad_scratch (be, call->out);
  b->ws_off = off;
  off += MAX (b->data.ws_bytes, b->filt.ws_bytes);
  b->total = off;
  return nf_cuda_scratch_reserve (be, b->total, error);
}

static gboolean
ensure_backward (NfCudaBackend *be, NfOpCall *call, NfCudaConv *st, GError **error)
{
  if (st->bwd)
    return TRUE;
  NfCudaConvBwd *b = g_new0 (NfCudaConvBwd, 1);
  if (!make_backward (be, call, st, b, error)) {
    g_prefix_error (error, "%s %s backward: ", nf_op_type_name (call->op->type),
        call->op->name ? call->op->name : "");
    nf_cuda_conv_backward_free (b);
    return FALSE;
  }
  st->bwd = b;
  return TRUE;
}

/* ---- backward ---------------------------------------------------------------------- */

static gboolean
backward (NfBackend *base, NfOpCall *call, void *const *in, const void *out,
    const void *dout, void *const *din, void *dweight, void *dbias, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  NfCudaConv *st = (NfCudaConv *) call->state;
  const NfOp *op = call->op;
  if (!nf_cuda_check_backward (be, call, in, out, dout, din, error))
    return FALSE;
  if (!st) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: %s backward without prepare",
        base->iface->name, nf_op_type_name (op->type));
    return FALSE;
  }
  void *dx = din ? din[0] : NULL;
  if (!dx && !dweight && !dbias)
    return TRUE;
  if (!ensure_backward (be, call, st, error))
    return FALSE;
  NfCudaConvBwd *b = st->bwd;
  if (be->scratch_bytes < b->total) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: scratch smaller than prepared",
        base->iface->name);
    return FALSE;
  }
  char *scratch = (char *) be->scratch;
  char *ws = scratch + b->ws_off;
  const float one = 1.0f, zero = 0.0f;

  const void *dy = dout;        // (N, Cout, Ho, Wo) as the output
  if (op->fuse_relu) {
    if (!nf_cuda_launch_relu_mask (be, out, dout, scratch + b->mask_off,
            nf_shape_numel (call->out), error))
      return FALSE;
    dy = scratch + b->mask_off;
  }

  if (dbias && !nf_cuda_launch_bias_grad (be, dy, call->out, (float *) dbias,
          scratch + b->bgrad_off, error))
    return FALSE;

  if (dweight) {
    /* a and b of cuDNN's convolution: conv2d (x padded, dy); conv_transpose2d (dy, x) */
    const void *ta, *tb;
    cudnnTensorDescriptor_t da, db;
    if (st->transposed) {
      ta = dy;
      da = st->ydesc;
      tb = in[0];
      db = st->xdesc;
    } else {
      ta = in[0];
      if (st->staged) {
        if (!nf_cuda_launch_reflect_pad (be, in[0], call->in[0], scratch + b->xpad_off,
                st->pad, st->xs.c, error))
          return FALSE;
        ta = scratch + b->xpad_off;
      }
      da = st->xdesc;
      tb = dy;
      db = st->ydesc;
    }
    cudnnConvolutionBwdFilterAlgo_t algo = (cudnnConvolutionBwdFilterAlgo_t) b->filt.algo;
    if (be->fp16) {
      /* (K, k, k, Cs) half in scratch, then added to the fp32 (K, C, k, k) gradient;
       * Cs: C with fp16's zero input channels */
      __half *dwh = (__half *) (scratch + b->dwh_off);
      int K = st->transposed ? op->cin : op->cout, C = st->transposed ? op->cout : op->cin;
      int Cs = st->transposed ? C : st->xs.c;
      NF_CUDNN_TRY (cudnnConvolutionBackwardFilter (be->cudnn, &one, da, ta, db, tb, b->cfilt,
              algo, ws, b->filt.ws_bytes, &zero, st->wdesc, dwh), error);
      size_t n = (size_t) K * C * op->k * op->k;
      dw_accumulate_kernel <<<nf_blocks (n, NF_THREADS), NF_THREADS, 0, be->stream>>> (dwh,
          (float *) dweight, K, C, op->k, op->k, Cs);
      if (!nf_cuda_launch_ok ("dw_accumulate_kernel", error))
        return FALSE;
    } else {
      NF_CUDNN_TRY (cudnnConvolutionBackwardFilter (be->cudnn, &one, da, ta, db, tb, b->cfilt,
              algo, ws, b->filt.ws_bytes, &one, st->wdesc, dweight), error);
    }
  }

  if (dx) {
    if (st->transposed) {
      /* dx (N, Cin, H, W) += conv (dy (N, Cout, Ho, Wo), w) */
      NF_CUDNN_TRY (cudnnConvolutionForward (be->cudnn, &one, st->ydesc, dy, st->wdesc, st->w,
              b->cdata, (cudnnConvolutionFwdAlgo_t) b->data.algo, ws, b->data.ws_bytes, &one,
              st->xdesc, dx), error);
    } else if (st->staged) {
      /* the staged input's gradient (N, xs.c, H + 2p, W + 2p), then folded onto dx (its
       * zero channels, fp16's padding, dropped) */
      void *dxp = scratch + b->dxpad_off;
      NF_CUDNN_TRY (cudnnConvolutionBackwardData (be->cudnn, &one, st->wdesc, st->w,
              st->ydesc, dy, b->cdata, (cudnnConvolutionBwdDataAlgo_t) b->data.algo, ws,
              b->data.ws_bytes, &zero, st->xdesc, dxp), error);
      if (!nf_cuda_launch_reflect_fold (be, dxp, call->in[0], dx, st->pad, st->xs.c, error))
        return FALSE;
    } else {
      NF_CUDNN_TRY (cudnnConvolutionBackwardData (be->cudnn, &one, st->wdesc, st->w,
              st->ydesc, dy, b->cdata, (cudnnConvolutionBwdDataAlgo_t) b->data.algo, ws,
              b->data.ws_bytes, &one, st->xdesc, dx), error);
    }
  }
  return TRUE;
}

NF_CUDA_BACKWARD (nf_cuda_conv2d_backward)
{
  return backward (be, call, in, out, dout, din, dweight, dbias, error);
}

NF_CUDA_BACKWARD (nf_cuda_conv_transpose2d_backward)
{
  return backward (be, call, in, out, dout, din, dweight, dbias, error);
}
