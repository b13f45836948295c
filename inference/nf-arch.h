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
} NfArchSpec;

NfGraph *nf_arch_build_graph (const NfArchSpec *spec, GError **error);
/* Graph + seeded random weights + metadata (task, scale, ranges, arch). */
NfModel *nf_arch_new_model (const NfArchSpec *spec, guint64 seed, GError **error);
/* Fills every tensor of m with seeded random values suited to its role. */
void nf_arch_init_weights (NfModel *m, guint64 seed);

/* NULL-terminated list of architecture names. */
const char *const *nf_arch_names (void);

G_END_DECLS
