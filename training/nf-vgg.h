/* nf-vgg.h — the VGG loss network: read from safetensors, built as a graph, and its
 * input preprocessing.
 *
 * Files it reads:
 *   - ours (../shared/data/lossnets/): tensors convB_I.weight (out, in, 3, 3) and
 *     convB_I.bias, conv1_1's input channels in B, G, R order, metadata
 *     preprocess = "caffe-bgr" (pixels 0..255, B,G,R, minus the ImageNet mean);
 *     VGG16 (blocks of 2, 2, 3, 3, 3 convs) and VGG19 (2, 2, 4, 4, 4) are told apart by
 *     the tensor names (conv3_4 exists only in VGG19) or the "architecture" metadata;
 *   - a torchvision VGG16/VGG19 state_dict saved as safetensors: features.N.weight /
 *     features.N.bias (classifier.* ignored), RGB 0..1 input normalised with mean
 *     (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) ("torch" preprocessing).
 *     Blocks are recovered from the indices (conv N, relu N+1, a pool where the next
 *     conv index jumps by 3).
 * The metadata key "preprocess" ("caffe-bgr" | "torch") wins over the guess from names.
 *
 * The graph: input "x" (1, 3, H, W) preprocessed; per conv "convB_I" (conv2d k3,
 * stride 1, zero padding 1) then "reluB_I"; after the last conv of a block, "poolB"
 * (2x2, stride 2; max by default, average as in the lesson's variant). It is cut after
 * the deepest layer the caller asks for, so nothing deeper is computed.
 *
 * Preprocessing is a per-channel permutation and affine map,
 *   x[c] = rgb[perm[c]] * scale[c] + shift[c]        rgb in 0..255,
 * so its gradient is dL/drgb[perm[c]] = dL/dx[c] * scale[c].
 *
 * What it does not: run the network (nf-engine), compute losses (nf-losses).
 */
#pragma once

#include <glib.h>

#include "nf-model.h"

G_BEGIN_DECLS

typedef enum {
  NF_VGG_PREPROCESS_AUTO,       /* from the metadata, else from the tensor names */
  NF_VGG_PREPROCESS_CAFFE_BGR,
  NF_VGG_PREPROCESS_TORCH,
} NfVggPreprocess;

typedef enum {
  NF_VGG_POOL_MAX,
  NF_VGG_POOL_AVG,
} NfVggPool;

typedef struct {
  NfVggPool pool;
  NfVggPreprocess preprocess;   /* AUTO: read it from the file */
  /* Layers the caller will read (NULL-terminated, value names such as "relu2_2",
   * "conv1_1", "pool1"); the graph ends at the deepest. NULL: every layer. */
  const char *const *layers;
} NfVggOptions;

typedef struct {
  char *arch;                   /* "vgg16", "vgg19", "vgg" (other depths), "random" */
  char *source;                 /* file path, or a description */
  NfVggPreprocess preprocess;   /* CAFFE_BGR or TORCH */
  NfVggPool pool;
  int perm[3];                  /* network channel c reads image channel perm[c] */
  float scale[3], shift[3];     /* x[c] = rgb[perm[c]] * scale[c] + shift[c] */
  NfModel *model;               /* graph up to the deepest requested layer, weights bound */
  char **layers;                /* every layer the file provides, in order (NULL-terminated) */
} NfVgg;

/* Loads a loss network from a safetensors file. Asking for a layer the file lacks is
 * an NF_ERROR_ARGUMENT error listing the layers it has. */
NfVgg *nf_vgg_load (const char *path, const NfVggOptions *opts, GError **error);

/* A VGG-shaped network with seeded random (He-normal) weights and caffe-bgr
 * preprocessing, for tests: n_blocks blocks, block b has convs[b] convs of widths[b]
 * channels. */
NfVgg *nf_vgg_new_random (int n_blocks, const int *convs, const int *widths,
    const NfVggOptions *opts, guint64 seed, GError **error);

void nf_vgg_free (NfVgg *v);

/* Value id of a layer in v->model->graph; -1 with an error listing the layers. */
int nf_vgg_value (const NfVgg *v, const char *layer, GError **error);
/* "relu1_1, relu1_2, ..." (every layer the file provides); g_free. */
char *nf_vgg_describe_layers (const NfVgg *v);

/* rgb (N, 3, H, W) 0..255 -> x (N, 3, H, W), the network's input. hw = H * W. */
void nf_vgg_preprocess (const NfVgg *v, const float *rgb, float *x, int n, size_t hw);
/* The inverse (no clamping). */
void nf_vgg_deprocess (const NfVgg *v, const float *x, float *rgb, int n, size_t hw);
/* drgb = dL/drgb from dx = dL/dx (overwrites drgb). */
void nf_vgg_preprocess_backward (const NfVgg *v, const float *dx, float *drgb, int n,
    size_t hw);

G_END_DECLS
