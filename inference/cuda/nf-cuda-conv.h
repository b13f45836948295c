/* nf-cuda-conv.h — state of one planned convolution, shared by nf-cuda-conv.cu (prepare,
 * forward) and nf-cuda-conv-algo.cu (algorithm choice). C++ only, private.
 *
 * What it holds: the cuDNN descriptors, weights converted once to the backend's layout
 * and type, the chosen algorithm with its workspace, whether cuDNN's fused
 * bias + ReLU call runs for this shape, and (training) the backward pass's state.
 * What it does not: own scratch memory (the backend's arena holds the padded input and
 * the workspace, used one op at a time on the single stream).
 */
#pragma once

#include "nf-cuda-private.h"

/* The algorithm picked for one convolution shape (cached per backend). */
typedef struct {
  int algo;                     /* cudnnConvolutionFwdAlgo_t, or BwdDataAlgo_t (transposed) */
  size_t ws_bytes;
  cudnnMathType_t math;
  int fused;                    /* cudnnConvolutionBiasActivationForward ran: 1, failed: 0,
                                 * not tried: -1 */
} NfCudaAlgo;

/* What a convolution's backward pass needs beyond the forward state: its own
 * convolution descriptors (same geometry as the forward's; each carries the math type
 * of its algorithm, so the forward's descriptor is never changed), the two algorithms,
 * and where its pieces lie in the scratch arena (byte offsets, 256-aligned). Made at
 * the first backward call after prepare (nf-cuda-conv-backward.cu). */
typedef struct {
  cudnnConvolutionDescriptor_t cdata, cfilt;
  /* data gradient: conv2d cudnnConvolutionBackwardData (BwdDataAlgo_t);
   * conv_transpose2d cudnnConvolutionForward (FwdAlgo_t). */
  NfCudaAlgo data;
  NfCudaAlgo filt;              /* cudnnConvolutionBackwardFilter (BwdFilterAlgo_t) */
  size_t xpad_off;              /* reflection-padded input (for the filter gradient) */
  size_t dxpad_off;             /* gradient of the padded input, before the fold */
  size_t mask_off;              /* dout with a fused ReLU undone (fuse_relu only) */
  size_t dwh_off;               /* fp16: the filter gradient in half, K R S C */
  size_t bgrad_off;             /* the bias gradient's partial sums (nf-cuda-bias-grad.h) */
  size_t ws_off, total;         /* workspace (the larger of the two), arena size needed */
} NfCudaConvBwd;

typedef struct {
  gboolean transposed;          /* conv_transpose2d: cudnnConvolutionBackwardData */
  int pad;                      /* reflection padding done before cuDNN (0: none) */
  NfShape xs;                   /* input as cuDNN sees it: reflection-padded, and with
                                 * fp16's zero channels (nf_cuda_conv_input_channels) */
  gboolean staged;              /* the input is copied into scratch first (either padding) */
  size_t pad_bytes;             /* scratch for the staged input (256-aligned; 0: none) */
  cudnnTensorDescriptor_t xdesc, ydesc, bdesc;
  cudnnFilterDescriptor_t wdesc;
  cudnnConvolutionDescriptor_t cdesc;
  cudnnActivationDescriptor_t adesc;
  void *w;                      /* conv: (Cout, Cin, k, k) fp32 or (Cout, k, k, xs.c) fp16
                                 * (channels from Cin on zero); transposed:
                                 * (Cin, Cout, k, k) or (Cin, k, k, Cout) */
  void *bias_t;                 /* (Cout) in the activation type, for the fused call */
  float *bias_f;                /* (Cout) float, for the epilogue; NULL: no bias */
  NfCudaAlgo algo;
  gboolean fused;               /* bias + ReLU inside cuDNN's call */
  NfCudaConvBwd *bwd;           /* NULL until the first backward call */
} NfCudaConv;

/* Picks (or finds in the cache) the algorithm for st's descriptors, and, when relu is
 * wanted on a forward convolution, tries the fused bias + ReLU call once. */
gboolean nf_cuda_conv_choose_algo (NfCudaBackend *be, NfCudaConv *st, NfShape ys,
    gboolean want_fused, GError **error);
/* The backward pass's two algorithms (cached per shape like the forward's) into b, whose
 * descriptors cdata and cfilt exist; ys is the op's output shape. fp32 keeps to the
 * GEMM-family algorithms with FMA math and prefers the ones cuDNN reports
 * deterministic; fp16 takes the fastest (or cuDNN's first heuristic choice). */
gboolean nf_cuda_conv_choose_backward (NfCudaBackend *be, NfCudaConv *st, NfShape ys,
    NfCudaConvBwd *b, GError **error);
/* Largest workspace an algorithm may ask for: a quarter of free device memory, at most
 * 1 GiB (64 MiB when the free memory cannot be read). */
size_t nf_cuda_conv_workspace_limit (void);
/* Frees b (descriptors and all). */
void nf_cuda_conv_backward_free (NfCudaConvBwd *b);
