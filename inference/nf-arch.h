/* nf-arch.h — builders for the standard architectures.
 *
 *   style-full   Johnson et al. 2016 in PyTorch fast_neural_style's TransformerNet
 *                layout: 9x9 conv 32, 3x3/2 conv 64, 3x3/2 conv 128 (instance norm +
 *                ReLU after each), 5 residual blocks of 128, two nearest-upsample + 3x3
 *                convs (64, 32), 9x9 conv to 3; reflection padding throughout.
 *                Input/output 0..255.
 *   style-slim   the same family at 16/32/64 channels with 3 residual blocks.
 *   style-rt-multi  style-rt with conditional instance norm (Dumoulin et al. 2017):
 *                one network for `styles` styles (8 by default, the project's painting
 *                set), each norm a cond_instance_norm of that many rows; the convolutions
 *                are shared. Input/output 0..255.
 *   sr-johnson   Johnson's SR network: 9x9 conv 64, 4 residual blocks (batch norm),
 *                log2(scale) stride-2 transposed convs (64), 9x9 conv to 3, tanh
 *                scaled to the output range. Scale 2 or 4. Input/output 0..1.
 *   sr-subpixel  3x3 conv 64, residual blocks without norm, 3x3 conv to 3*s*s, pixel
 *                shuffle, clamp. Scale 2, 3 or 4. Input/output 0..1.
 *   sr-light     real time on a CPU: 5x5 conv w, n_res 3x3 convs of w (ReLU after
 *                each), 3x3 conv to 3*s*s, pixel shuffle, + the nearest-upsampled
 *                input, clamp. Scale 2, 3 or 4; defaults w = 16 (x2, x3) or 32 (x4),
 *                n_res = 2 (here the number of body convolutions, not blocks).
 *                Input/output 0..1.
 *   sr-light-y   sr-light on BT.601 luma only: fixed 1x1 convs RGB -> Y in front and
 *                dY -> (dY, dY, dY) before the shuffle; 1-channel first layer, s*s
 *                sub-pixel channels; the chroma is the nearest-upsampled input's.
 *                Defaults w = 16, n = 4. Input/output RGB 0..1.
 *
 * Style architectures may start with a fixed Gaussian input blur (input_blur > 0, below).
 *
 * What it does: graphs with the op and tensor names the model files use, and
 * seeded random initialisation (He-uniform convs, unit norms) for training starts
 * and tests.
 * What it does not: train anything.
 */
#pragma once

#include "nf-model.h"

G_BEGIN_DECLS

typedef struct {
  const char *arch;             /* one of nf_arch_names () */
  int scale;                    /* superres only */
  int width;                    /* base channels (0: default of the arch) */
  int n_res;                    /* residual blocks (sr-light: body convs; 0: default) */
  int styles;                   /* style-rt-multi: styles (0: 8); other archs: 0 */
  double input_blur;            /* style archs: sigma of a fixed Gaussian the input goes
                                 * through first (0: none; see NF_ARCH_INPUT_BLUR) */
} NfArchSpec;

/* The op name of the style networks' optional input filter: a 3 -> 3 conv (no bias) whose
 * weights are a per-channel Gaussian of sigma input_blur, in a (2 ceil(2 sigma) + 1)^2
 * window, reflection padded. It low-passes the sensor and compression noise of video
 * before the first strided conv can alias it into texture (issue 14). The trainer never
 * changes it (nf_arch_op_is_fixed); the engines run it as any conv. */
#define NF_ARCH_INPUT_BLUR "input_blur"
/* sr-light-y's fixed colour convs: RGB -> BT.601 luma, and each luma sub-pixel channel
 * copied to R, G and B. */
#define NF_ARCH_RGB_TO_Y "rgb_to_y"
#define NF_ARCH_Y_TO_RGB "y_to_rgb"
#define NF_ARCH_INPUT_BLUR_MAX 3.0

/* Ops whose weights are part of the design, not learned (the input blur, sr-light-y's
 * colour convs). */
gboolean nf_arch_op_is_fixed (const NfOp *op);
/* Fills t, (3, 3, k, k), with the input blur of sigma (k from t's shape). */
void nf_arch_fill_input_blur (float *t, int k, double sigma);

NfGraph *nf_arch_build_graph (const NfArchSpec *spec, GError **error);
/* Graph + seeded random weights + metadata (task, scale, ranges, arch). */
NfModel *nf_arch_new_model (const NfArchSpec *spec, guint64 seed, GError **error);
/* Fills every tensor of m with seeded random values suited to its role; fixed ops
 * (nf_arch_op_is_fixed) with their design's weights (the input blur's sigma from m's
 * "input_blur" metadata). */
void nf_arch_init_weights (NfModel *m, guint64 seed);

/* NULL-terminated list of architecture names. */
const char *const *nf_arch_names (void);

G_END_DECLS
