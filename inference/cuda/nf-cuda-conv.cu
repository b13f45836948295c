/* nf-cuda-conv.cu — conv2d and conv_transpose2d through cuDNN.
 *
 * What it does, at prepare (once per plan): describes input, filter, convolution and
 * output to cuDNN (fp32: NCHW float, FMA math; fp16: NHWC half with fp32 compute,
 * tensor-op math), checks that cuDNN's idea of the output size is the graph's,
 * converts the weights to the layout and type the backend runs (KCRS float or KRSC
 * half) and uploads them, and has nf-cuda-conv-algo.cu pick the algorithm, workspace
 * and fusion; it then reserves scratch for the reflection-padded input and the
 * workspace. At forward: reflection padding (nf-cuda-pad.cu) into scratch when the
 * graph asks for it (cuDNN pads with zeros only, so such convolutions run unpadded on
 * the padded copy); in fp16, a convolution with fewer input channels than the config's
 * pad_input_channels (the first layer's RGB: 3 -> 8 by default) runs on a copy with
 * zero channels added (the same kernel, with or without reflection) and zero weights
 * for them, for the tensor-core kernels (nf_cuda_conv_input_channels); then
 *   conv2d:  cudnnConvolutionBiasActivationForward (bias + ReLU fused, where cuDNN
 *            accepts it for this shape) or cudnnConvolutionForward + the bias/ReLU
 *            epilogue kernel;
 *   conv_transpose2d: cudnnConvolutionBackwardData (the transposed convolution is the
 *            gradient of a convolution with the same weights: PyTorch's (Cin, Cout,
 *            k, k) layout is exactly cuDNN's filter K = Cin, C = Cout; output_padding
 *            is expressed by the output size, as PyTorch does) + the epilogue.
 * Semantics are cpu-ref's (cross-correlation, zero or reflect padding, stride).
 * Training (nf_cuda_conv_set_weights): new weights already in device memory replace the
 * prepared copies in place on the stream (fp32: device-to-device copies; fp16: one kernel
 * converting to the half KRSC filter, the same rounding as the host upload), so an
 * optimiser step on the device needs no re-prepare (descriptors, algorithms, the
 * backward state and the scratch reservation stay). Decision: fp32 copies rather than
 * points at the caller's buffer: the copy costs microseconds at device bandwidth (6.7 MB
 * for style-full's weights), and the prepared state keeps owning its memory, so a free
 * of the trainer's buffers or a later re-prepare can never leave an op reading freed or
 * foreign memory.
 * What it does not: dilation or groups (the graph has none), or backward passes
 * (nf-cuda-conv-backward.cu, which reuses these descriptors and weights).
 */
#include "nf-cuda-conv.h"
#include "nf-cuda-policy.h"

/* ---- descriptors ------------------------------------------------------------------- */

static cudnnDataType_t
dtype (NfCudaBackend *be)
{
  return be->fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
}

static cudnnTensorFormat_t
format (NfCudaBackend *be)
{
  return be->fp16 ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
}

static gboolean
set_tensor (NfCudaBackend *be, cudnnTensorDescriptor_t d, NfShape s, GError **error)
{
  NF_CUDNN_TRY (cudnnSetTensor4dDescriptor (d, format (be), dtype (be), s.n, s.c, s.h, s.w),
      error);
  return TRUE;
}

/* ---- weights (host float, PyTorch layout) -> device, backend layout --------------------- */

/* w: (K, C, k, k) float -> device (K, C, k, k) float, or (K, k, k, Cp) half with the
 * channels C..Cp-1 zero (Cp >= C; Cp > C only for fp16). */
static gboolean
upload_filter (NfCudaBackend *be, const float *w, int K, int C, int Cp, int k, void **dst,
    GError **error)
{
  size_t n = (size_t) K * Cp * k * k;
  size_t bytes = n * nf_cuda_elem_size (be);
  void *host = NULL;
  if (be->fp16) {
    guint16 *h = g_new0 (guint16, n);    /* 0x0000 is +0.0 in half: the padding */
    for (int o = 0; o < K; o++)
      for (int i = 0; i < C; i++)
        for (int y = 0; y < k; y++)
          for (int x = 0; x < k; x++)
            h[(((size_t) o * k + y) * k + x) * Cp + i] =
                nf_float_to_half (w[(((size_t) o * C + i) * k + y) * k + x]);
    host = h;
  } else if (Cp != C) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "fp32 filters are never padded");
    return FALSE;
  }
  /* On the backend's (non-blocking) stream, which the legacy stream of a plain
   * cudaMemcpy would not order against; synchronised before the host copy goes. */
  gboolean ok = nf_cuda_ok (nf_cuda_counted_malloc (dst, bytes), "cudaMalloc (weights)", error)
      && nf_cuda_ok (cudaMemcpyAsync (*dst, host ? host : w, bytes, cudaMemcpyHostToDevice,
          be->stream), "uploading weights", error)
      && nf_cuda_ok (nf_cuda_counted_sync (be->stream), "uploading weights", error);
  g_free (host);
  return ok;
}

/* bias (n floats, NULL: zeros) -> device float and device activation type. */
static gboolean
upload_bias (NfCudaBackend *be, const float *bias, int n, gboolean need_t, float **bf,
    void **bt, GError **error)
{
  float *zeros = bias ? NULL : g_new0 (float, n);
  const float *src = bias ? bias : zeros;
  guint16 *h = NULL;
  gboolean ok = TRUE;
  if (bias)
    ok = nf_cuda_ok (nf_cuda_counted_malloc ((void **) bf, n * sizeof (float)),
        "cudaMalloc (bias)", error)
        && nf_cuda_ok (cudaMemcpyAsync (*bf, bias, n * sizeof (float), cudaMemcpyHostToDevice,
            be->stream), "uploading bias", error);
  if (ok && need_t) {
    size_t es = nf_cuda_elem_size (be);
    if (be->fp16) {
      h = g_new (guint16, n);
      for (int i = 0; i < n; i++)
        h[i] = nf_float_to_half (src[i]);
    }
    ok = nf_cuda_ok (nf_cuda_counted_malloc (bt, n * es), "cudaMalloc (bias)", error)
        && nf_cuda_ok (cudaMemcpyAsync (*bt, h ? (const void *) h : (const void *) src,
            n * es, cudaMemcpyHostToDevice, be->stream), "uploading bias", error);
  }
  /* before the host copies (h, zeros) go: the stream may still be reading them */
  if (!nf_cuda_ok (nf_cuda_counted_sync (be->stream), "uploading bias", ok ? error : NULL))
    ok = FALSE;
  g_free (h);
  g_free (zeros);
  return ok;
}

/* ---- prepare / release ----------------------------------------------------------------- */

void
nf_cuda_conv_release (NfCudaBackend *be, NfOpCall *call)
{
  NfCudaConv *st = (NfCudaConv *) call->state;
  if (!st)
    return;
  nf_cuda_conv_backward_free (st->bwd);
  if (st->xdesc)
    cudnnDestroyTensorDescriptor (st->xdesc);
  if (st->ydesc)
    cudnnDestroyTensorDescriptor (st->ydesc);
  if (st->bdesc)
    cudnnDestroyTensorDescriptor (st->bdesc);
  if (st->wdesc)
    cudnnDestroyFilterDescriptor (st->wdesc);
  if (st->cdesc)
    cudnnDestroyConvolutionDescriptor (st->cdesc);
  if (st->adesc)
    cudnnDestroyActivationDescriptor (st->adesc);
  nf_cuda_counted_free (st->w);
  nf_cuda_counted_free (st->bias_t);
  nf_cuda_counted_free (st->bias_f);
  cudaGetLastError ();
  g_free (st);
  call->state = NULL;
}

static gboolean
prepare (NfCudaBackend *be, NfOpCall *call, NfCudaConv *st, GError **error)
{
  const NfOp *op = call->op;
  NfShape xs = call->in[0], ys = call->out;
  gboolean tr = op->type == NF_OP_CONV_TRANSPOSE2D;
  st->transposed = tr;

  NfShape expect;
  if (!nf_op_output_shape (op, call->in, &expect, error))
    return FALSE;
  if (!nf_shape_equal (expect, ys) || op->k < 1 || op->stride < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_SHAPE, "output %dx%dx%dx%d does not follow "
        "from the input %dx%dx%dx%d", ys.n, ys.c, ys.h, ys.w, xs.n, xs.c, xs.h, xs.w);
    return FALSE;
  }
  if (!op->weight) {
    g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS, "no weights are bound");
    return FALSE;
  }

  /* Reflection padding runs before cuDNN, which then convolves without padding; fp16
   * pads a first layer's few input channels with zeros in the same copy. */
  int cudnn_pad = op->padding;
  st->xs = xs;
  if (!tr && op->pad_mode == NF_PAD_REFLECT && op->padding > 0) {
    st->pad = op->padding;
    st->xs.h += 2 * op->padding;
    st->xs.w += 2 * op->padding;
    cudnn_pad = 0;
  }
  st->xs.c = nf_cuda_conv_input_channels (be->fp16, tr, xs.c, be->cfg.pad_input_channels);
  st->staged = st->pad > 0 || st->xs.c != xs.c;
  if (st->staged)
    st->pad_bytes = (nf_shape_numel (st->xs) * nf_cuda_elem_size (be) + 255) & ~(size_t) 255;

  NF_CUDNN_TRY (cudnnCreateTensorDescriptor (&st->xdesc), error);
  NF_CUDNN_TRY (cudnnCreateTensorDescriptor (&st->ydesc), error);
  NF_CUDNN_TRY (cudnnCreateTensorDescriptor (&st->bdesc), error);
  NF_CUDNN_TRY (cudnnCreateFilterDescriptor (&st->wdesc), error);
  NF_CUDNN_TRY (cudnnCreateConvolutionDescriptor (&st->cdesc), error);
  NF_CUDNN_TRY (cudnnCreateActivationDescriptor (&st->adesc), error);
  if (!set_tensor (be, st->xdesc, st->xs, error) || !set_tensor (be, st->ydesc, ys, error))
    return FALSE;
  NF_CUDNN_TRY (cudnnSetTensor4dDescriptor (st->bdesc, CUDNN_TENSOR_NCHW, dtype (be), 1,
          ys.c, 1, 1), error);
  /* Filter K x C: conv2d maps Cin -> Cout (K = Cout); the transposed convolution is the
   * backward-data pass of a convolution mapping Cout -> Cin (K = Cin, C = Cout). */
  int K = tr ? op->cin : op->cout, C = tr ? op->cout : op->cin;
  int Cp = tr ? C : st->xs.c;  /* with fp16's zero channels */
  NF_CUDNN_TRY (cudnnSetFilter4dDescriptor (st->wdesc, dtype (be), format (be), K, Cp, op->k,
          op->k), error);
  /* fp16 data with fp32 accumulation (cuDNN's PSEUDO_HALF_CONFIG), as PyTorch does. */
  NF_CUDNN_TRY (cudnnSetConvolution2dDescriptor (st->cdesc, cudnn_pad, cudnn_pad,
          op->stride, op->stride, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT), error);
  NF_CUDNN_TRY (cudnnSetConvolutionMathType (st->cdesc,
          be->fp16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH), error);
  NF_CUDNN_TRY (cudnnSetActivationDescriptor (st->adesc, CUDNN_ACTIVATION_RELU,
          CUDNN_PROPAGATE_NAN, 0.0), error);

  /* cuDNN must agree with the graph on the sizes: the forward convolution of the
   * (padded) input gives the output; for the transposed one, of its output the input. */
  int on, oc, oh, ow;
  NF_CUDNN_TRY (cudnnGetConvolution2dForwardOutputDim (st->cdesc, tr ? st->ydesc : st->xdesc,
          st->wdesc, &on, &oc, &oh, &ow), error);
  NfShape fwd = tr ? xs : ys;
  if (on != fwd.n || oc != fwd.c || oh != fwd.h || ow != fwd.w) {
    g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_FAILED,
        "cudnn computes %dx%dx%dx%d where the graph has %dx%dx%dx%d", on, oc, oh, ow, fwd.n,
        fwd.c, fwd.h, fwd.w);
    return FALSE;
  }

  gboolean want_fused = !tr && op->fuse_relu;
  if (!upload_filter (be, op->weight, K, C, Cp, op->k, &st->w, error)
      || !upload_bias (be, op->bias, ys.c, want_fused, &st->bias_f, &st->bias_t, error))
    return FALSE;
  if (!nf_cuda_conv_choose_algo (be, st, ys, want_fused, error))
    return FALSE;
  st->fused = want_fused && st->algo.fused == 1;
  return nf_cuda_scratch_reserve (be, st->pad_bytes + st->algo.ws_bytes, error);
}

gboolean
nf_cuda_conv_prepare (NfCudaBackend *be, NfOpCall *call, GError **error)
{
  NfCudaConv *st = g_new0 (NfCudaConv, 1);
  call->state = st;
  if (!prepare (be, call, st, error)) {
    g_prefix_error (error, "%s %s: ", nf_op_type_name (call->op->type),
        call->op->name ? call->op->name : "");
    nf_cuda_conv_release (be, call);
    return FALSE;
  }
  return TRUE;
}

/* ---- new weights from device memory (training) ------------------------------------------ */

/* dst (K, kk, Cp) half = src (K, C, kk) float with the channels C..Cp-1 zero: the half
 * filter of upload_filter (kk = k * k), the same rounding as nf_float_to_half (to
 * nearest even); K = n, C = Cp = kk = 1 converts a bias. */
__global__ void
filter_to_half_kernel (const float *__restrict__ src, __half *__restrict__ dst, int K, int C,
    int Cp, int kk)
{
  size_t n = (size_t) K * kk * Cp;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
      i += (size_t) gridDim.x * blockDim.x) {
    int c = (int) (i % Cp);
    int r = (int) ((i / Cp) % kk);
    int o = (int) (i / ((size_t) Cp * kk));
    float v = c < C ? src[((size_t) o * C + c) * kk + r] : 0.0f;
    dst[i] = __float2half_rn (v);
  }
}

static gboolean
launch_to_half (NfCudaBackend *be, const float *src, void *dst, int K, int C, int Cp, int kk,
    GError **error)
{
  size_t n = (size_t) K * kk * Cp;
  filter_to_half_kernel <<<nf_blocks (n, NF_THREADS), NF_THREADS, 0, be->stream>>> (src,
      (__half *) dst, K, C, Cp, kk);
  return nf_cuda_launch_ok ("filter_to_half_kernel", error);
}

gboolean
nf_cuda_conv_set_weights (NfCudaBackend *be, const NfOpCall *call, const float *weight,
    size_t n_weight, const float *bias, size_t n_bias, GError **error)
{
  const NfOp *op = call->op;
  NfCudaConv *st = (NfCudaConv *) call->state;
  const char *name = op->name ? op->name : "";
  if (!st) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s %s: new weights for an op that "
        "is not prepared", nf_op_type_name (op->type), name);
    return FALSE;
  }
  /* the filter as prepare made it: K x C (x k x k), fp16 with Cp >= C channels */
  int K = st->transposed ? op->cin : op->cout, C = st->transposed ? op->cout : op->cin;
  int Cp = st->transposed ? C : st->xs.c, kk = op->k * op->k;
  size_t nw = (size_t) K * C * kk;
  size_t nb = st->bias_f ? (size_t) call->out.c : 0;
  if (!weight || n_weight != nw || n_bias != nb || (nb > 0) != (bias != NULL)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s %s: new weights of %zu floats and "
        "a bias of %zu where the op has %zu and %zu", nf_op_type_name (op->type), name,
        weight ? n_weight : 0, bias ? n_bias : 0, nw, nb);
    return FALSE;
  }
  if (be->fp16) {
    if (!launch_to_half (be, weight, st->w, K, C, Cp, kk, error))
      return FALSE;
  } else {
    NF_CUDA_TRY (cudaMemcpyAsync (st->w, weight, nw * sizeof (float), cudaMemcpyDeviceToDevice,
            be->stream), error);
  }
  if (!bias)
    return TRUE;
  NF_CUDA_TRY (cudaMemcpyAsync (st->bias_f, bias, nb * sizeof (float),
          cudaMemcpyDeviceToDevice, be->stream), error);
  /* the fused call's bias in the activation type (zeros when the op has no bias: kept) */
  if (!st->bias_t)
    return TRUE;
  if (be->fp16)
    return launch_to_half (be, bias, st->bias_t, (int) nb, 1, 1, 1, error);
  NF_CUDA_TRY (cudaMemcpyAsync (st->bias_t, bias, nb * sizeof (float),
          cudaMemcpyDeviceToDevice, be->stream), error);
  return TRUE;
}

/* ---- forward ------------------------------------------------------------------------- */

static gboolean
forward (NfBackend *base, NfOpCall *call, void *const *in, void *out, GError **error)
{
  NfCudaBackend *be = NF_CUDA (base);
  NfCudaConv *st = (NfCudaConv *) call->state;
  if (!nf_cuda_check_call (be, call, in, out, error))
    return FALSE;
  if (!st) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: %s run without prepare",
        base->iface->name, nf_op_type_name (call->op->type));
    return FALSE;
  }
  if (be->scratch_bytes < st->pad_bytes + st->algo.ws_bytes) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s: scratch smaller than prepared",
        base->iface->name);
    return FALSE;
  }
  const float one = 1.0f, zero = 0.0f;
  const void *x = in[0];
  char *ws = (char *) be->scratch + st->pad_bytes;
  if (st->staged) {
    if (!nf_cuda_launch_reflect_pad (be, in[0], call->in[0], be->scratch, st->pad, st->xs.c,
            error))
      return FALSE;
    x = be->scratch;
  }
  if (st->transposed) {
    NF_CUDNN_TRY (cudnnConvolutionBackwardData (be->cudnn, &one, st->wdesc, st->w,
            st->xdesc, x, st->cdesc, (cudnnConvolutionBwdDataAlgo_t) st->algo.algo, ws,
            st->algo.ws_bytes, &zero, st->ydesc, out), error);
  } else if (st->fused) {
    /* y = ReLU (conv (x) + 0 * z + bias), z = y */
    NF_CUDNN_TRY (cudnnConvolutionBiasActivationForward (be->cudnn, &one, st->xdesc, x,
            st->wdesc, st->w, st->cdesc, (cudnnConvolutionFwdAlgo_t) st->algo.algo, ws,
            st->algo.ws_bytes, &zero, st->ydesc, out, st->bdesc, st->bias_t, st->adesc,
            st->ydesc, out), error);
    return TRUE;
  } else {
    NF_CUDNN_TRY (cudnnConvolutionForward (be->cudnn, &one, st->xdesc, x, st->wdesc, st->w,
            st->cdesc, (cudnnConvolutionFwdAlgo_t) st->algo.algo, ws, st->algo.ws_bytes,
            &zero, st->ydesc, out), error);
  }
  return nf_cuda_launch_bias_act (be, out, call->out, st->bias_f, call->op->fuse_relu, error);
}

NF_CUDA_FORWARD (nf_cuda_conv2d)
{
  return forward (be, call, in, out, error);
}

NF_CUDA_FORWARD (nf_cuda_conv_transpose2d)
{
  return forward (be, call, in, out, error);
}
