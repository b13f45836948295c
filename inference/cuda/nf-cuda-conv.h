/* nf-cuda-conv.h — state of one planned convolution, shared by nf-cuda-conv.cu (prepare,
 * forward) and nf-cuda-conv-algo.cu (algorithm choice). C++ only, private.
 *
 * What it holds: the cuDNN descriptors, weights converted once to the backend's layout
 * and type, the chosen algorithm with its workspace, and whether cuDNN's fused
 * bias + ReLU call runs for this shape.
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

typedef struct {
  gboolean transposed;          /* conv_transpose2d: cudnnConvolutionBackwardData */
  int pad;                      /* reflection padding done before cuDNN (0: none) */
  NfShape xs;                   /* input as cuDNN sees it (reflection-padded) */
  size_t pad_bytes;             /* scratch for the padded input (256-aligned) */
  cudnnTensorDescriptor_t xdesc, ydesc, bdesc;
  cudnnFilterDescriptor_t wdesc;
  cudnnConvolutionDescriptor_t cdesc;
  cudnnActivationDescriptor_t adesc;
  void *w;                      /* conv: (Cout, Cin, k, k) fp32 or (Cout, k, k, Cin) fp16;
                                 * transposed: (Cin, Cout, k, k) or (Cin, k, k, Cout) */
  void *bias_t;                 /* (Cout) in the activation type, for the fused call */
  float *bias_f;                /* (Cout) float, for the epilogue; NULL: no bias */
  NfCudaAlgo algo;
  gboolean fused;               /* bias + ReLU inside cuDNN's call */
} NfCudaConv;

/* Picks (or finds in the cache) the algorithm for st's descriptors, and, when relu is
 * wanted on a forward convolution, tries the fused bias + ReLU call once. */
gboolean nf_cuda_conv_choose_algo (NfCudaBackend *be, NfCudaConv *st, NfShape ys,
    gboolean want_fused, GError **error);
