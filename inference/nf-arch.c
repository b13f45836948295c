/* nf-arch.c — graphs of the standard architectures and their seeded initialisation.
 *
 * What it does: builds the op lists of style-full/style-slim (TransformerNet layout),
 * style-rt (the real-time CPU style network, below) and its multi-style version
 * style-rt-multi (conditional instance norm),
 * sr-johnson, sr-subpixel and sr-light (the real-time CPU SR network, below) with the
 * tensor names model files use, and fills weights
 * with PyTorch's default initialisation drawn from a seeded PCG32.
 * What it does not: load or save (nf-model.c), train (training/).
 */
#include "nf-arch.h"

#include <math.h>
#include <string.h>

#include "nf-error.h"

static const char *const arch_names[] = {
  "style-full", "style-slim", "style-rt", "style-rt-multi", "sr-johnson", "sr-subpixel",
  "sr-light", "sr-light-y", NULL
};

const char *const *
nf_arch_names (void)
{
  return arch_names;
}

/* ---- small helpers over the graph builder ---------------------------------- */

static int
conv (NfGraphBuilder *b, const char *name, int in, int cin, int cout, int k, int stride,
    NfPadMode pad, gboolean bias)
{
  NfOp t = { .type = NF_OP_CONV2D, .k = k, .stride = stride, .padding = k / 2,
    .pad_mode = pad, .cin = cin, .cout = cout, .has_bias = bias
  };
  return nf_graph_builder_add (b, &t, name, &in, 1, name);
}

static int
deconv (NfGraphBuilder *b, const char *name, int in, int cin, int cout)
{
  NfOp t = { .type = NF_OP_CONV_TRANSPOSE2D, .k = 3, .stride = 2, .padding = 1,
    .output_padding = 1, .cin = cin, .cout = cout, .has_bias = FALSE
  };
  return nf_graph_builder_add (b, &t, name, &in, 1, name);
}

static int
inorm (NfGraphBuilder *b, const char *name, int in, int c)
{
  NfOp t = { .type = NF_OP_INSTANCE_NORM, .c = c, .eps = 1e-5f, .affine = TRUE };
  return nf_graph_builder_add (b, &t, name, &in, 1, name);
}

/* Instance norm for a network of one style (styles 0), else a cond_instance_norm of
 * that many styles. */
static int
snorm (NfGraphBuilder *b, const char *name, int in, int c, int styles)
{
  if (styles == 0)
    return inorm (b, name, in, c);
  NfOp t = { .type = NF_OP_COND_INSTANCE_NORM, .c = c, .eps = 1e-5f, .styles = styles };
  return nf_graph_builder_add (b, &t, name, &in, 1, name);
}

static int
bnorm (NfGraphBuilder *b, const char *name, int in, int c)
{
  NfOp t = { .type = NF_OP_BATCH_NORM, .c = c, .eps = 1e-5f };
  return nf_graph_builder_add (b, &t, name, &in, 1, name);
}

static int
simple (NfGraphBuilder *b, NfOpType type, int in, const char *out_name)
{
  NfOp t = { .type = type };
  return nf_graph_builder_add (b, &t, NULL, &in, 1, out_name);
}

static int
relu (NfGraphBuilder *b, int in, const char *out_prefix)
{
  char *n = g_strconcat (out_prefix, ".relu", NULL);
  int v = simple (b, NF_OP_RELU, in, n);
  g_free (n);
  return v;
}

static int
add (NfGraphBuilder *b, int a, int c, const char *out_name)
{
  NfOp t = { .type = NF_OP_ADD };
  int in[2] = { a, c };
  return nf_graph_builder_add (b, &t, NULL, in, 2, out_name);
}

static int
upsample (NfGraphBuilder *b, int in, int factor, const char *out_name)
{
  NfOp t = { .type = NF_OP_UPSAMPLE_NEAREST, .factor = factor };
  return nf_graph_builder_add (b, &t, NULL, &in, 1, out_name);
}

/* ---- the architectures ------------------------------------------------------ */

static int
input_blur_k (double sigma)
{
  return 2 * (int) ceil (2.0 * sigma) + 1;
}

/* The style networks' input: x itself, or x through the fixed Gaussian input blur. */
static int
style_input (NfGraphBuilder *b, double blur)
{
  if (blur <= 0)
    return 0;
  return conv (b, NF_ARCH_INPUT_BLUR, 0, 3, 3, input_blur_k (blur), 1, NF_PAD_REFLECT,
      FALSE);                                                   // (N, 3, H, W)
}

gboolean
nf_arch_op_is_fixed (const NfOp *op)
{
  return op->name && (g_str_equal (op->name, NF_ARCH_INPUT_BLUR)
      || g_str_equal (op->name, NF_ARCH_RGB_TO_Y) || g_str_equal (op->name, NF_ARCH_Y_TO_RGB));
}

void
nf_arch_fill_input_blur (float *t, int k, double sigma)
{
  double g[32], sum = 0;
  int r = k / 2;
  for (int i = 0; i < k && i < 32; i++)
    sum += g[i] = exp (-0.5 * (i - r) * (i - r) / (sigma * sigma));
  memset (t, 0, sizeof (float) * 9 * k * k);
  for (int c = 0; c < 3; c++)   // weight (cout 3, cin 3, k, k): diagonal in channels
    for (int y = 0; y < k; y++)
      for (int x = 0; x < k; x++)
        t[((size_t) (c * 3 + c) * k + y) * k + x] = (float) (g[y] * g[x] / (sum * sum));
}

/* TransformerNet's residual block i on v with c channels: conv-IN-ReLU-conv-IN + v. */
static int
style_res_block (NfGraphBuilder *b, int v, int c, int i, int styles)
{
  char *p = g_strdup_printf ("res%d", i);
  char *c1 = g_strconcat (p, ".conv1", NULL), *n1 = g_strconcat (p, ".in1", NULL);
  char *c2 = g_strconcat (p, ".conv2", NULL), *n2 = g_strconcat (p, ".in2", NULL);
  int r = relu (b, snorm (b, n1, conv (b, c1, v, c, c, 3, 1, NF_PAD_REFLECT, TRUE), c,
          styles), n1);
  r = snorm (b, n2, conv (b, c2, r, c, c, 3, 1, NF_PAD_REFLECT, TRUE), c, styles);
  v = add (b, v, r, p);
  g_free (p);
  g_free (c1);
  g_free (n1);
  g_free (c2);
  g_free (n2);
  return v;
}

/* TransformerNet (fast_neural_style) layout, widths w/2w/4w. */
static NfGraph *
build_style (int w, int n_res, double blur)
{
  NfGraphBuilder *b = nf_graph_builder_new ("x");
  int v = style_input (b, blur);        /* (N, 3, H, W) */
  v = relu (b, inorm (b, "in1", conv (b, "conv1", v, 3, w, 9, 1, NF_PAD_REFLECT, TRUE), w),
      "in1");                                                   // (N, w, H, W)
  v = relu (b, inorm (b, "in2", conv (b, "conv2", v, w, 2 * w, 3, 2, NF_PAD_REFLECT, TRUE),
          2 * w), "in2");                                       // (N, 2w, H/2, W/2)
  v = relu (b, inorm (b, "in3", conv (b, "conv3", v, 2 * w, 4 * w, 3, 2, NF_PAD_REFLECT,
              TRUE), 4 * w), "in3");                            // (N, 4w, H/4, W/4)
  for (int i = 1; i <= n_res; i++)
    v = style_res_block (b, v, 4 * w, i, 0);                    // (N, 4w, H/4, W/4)
  v = upsample (b, v, 2, "up1");
  v = relu (b, inorm (b, "in4", conv (b, "deconv1", v, 4 * w, 2 * w, 3, 1, NF_PAD_REFLECT,
              TRUE), 2 * w), "in4");                            // (N, 2w, H/2, W/2)
  v = upsample (b, v, 2, "up2");
  v = relu (b, inorm (b, "in5", conv (b, "deconv2", v, 2 * w, w, 3, 1, NF_PAD_REFLECT, TRUE),
          w), "in5");                                           // (N, w, H, W)
  v = conv (b, "deconv3", v, w, 3, 9, 1, NF_PAD_REFLECT, TRUE); // (N, 3, H, W)
  return nf_graph_builder_finish (b, v);
}

/* The real-time style network for CPUs: nothing convolves at full resolution. A 5x5
 * stride-2 first layer (in place of the 9x9 at full resolution), widths w at 1/2 and 3w at
 * 1/4 resolution (multiples of 16 for the 16-lane bf16 kernels), n_res residual blocks,
 * one nearest upsampling, and a last 3x3 conv to 12 channels at 1/2 resolution that a
 * pixel shuffle turns into the RGB image (in place of the 9x9 full-resolution output
 * layer). 4.9 GFLOP per 640x360 frame at w = 16 (style-slim: 15.3). Instance norm and
 * reflection padding as in TransformerNet. */
static NfGraph *
build_style_rt (int w, int n_res, int styles, double blur)
{
  int q = 3 * w;                /* the quarter-resolution width */
  NfGraphBuilder *b = nf_graph_builder_new ("x");
  int v = style_input (b, blur);        /* (N, 3, H, W) */
  v = relu (b, snorm (b, "in1", conv (b, "conv1", v, 3, w, 5, 2, NF_PAD_REFLECT, TRUE), w,
          styles), "in1");                                      // (N, w, H/2, W/2)
  v = relu (b, snorm (b, "in2", conv (b, "conv2", v, w, q, 3, 2, NF_PAD_REFLECT, TRUE),
          q, styles), "in2");                                   // (N, 3w, H/4, W/4)
  for (int i = 1; i <= n_res; i++)
    v = style_res_block (b, v, q, i, styles);                   // (N, 3w, H/4, W/4)
  v = upsample (b, v, 2, "up1");
  v = relu (b, snorm (b, "in3", conv (b, "deconv1", v, q, w, 3, 1, NF_PAD_REFLECT, TRUE),
          w, styles), "in3");                                   // (N, w, H/2, W/2)
  v = conv (b, "conv_out", v, w, 12, 3, 1, NF_PAD_REFLECT, TRUE);       // (N, 12, H/2, W/2)
  NfOp ps = { .type = NF_OP_PIXEL_SHUFFLE, .factor = 2 };
  v = nf_graph_builder_add (b, &ps, NULL, &v, 1, "shuffle");    // (N, 3, H, W)
  /* 127.5 tanh + 127.5: the output starts mid-grey and spans 0..255 at once (Johnson's
   * tanh output). Without it the 144-input output conv had to grow its raw output to
   * ~128 by Adam steps of ~lr per weight: 800 steps of starry_night gave near-black
   * images and 4x style-slim's style loss. */
  NfOp t = { .type = NF_OP_TANH_SCALE, .scale = 127.5f, .offset = 127.5f };
  v = nf_graph_builder_add (b, &t, NULL, &v, 1, "y");           // (N, 3, H, W) in 0..255
  return nf_graph_builder_finish (b, v);
}

/* Johnson et al.'s SR network: batch norm after every conv but the last. */
static NfGraph *
build_sr_johnson (int scale, int w, int n_res)
{
  NfGraphBuilder *b = nf_graph_builder_new ("x");
  int v = relu (b, bnorm (b, "bn1", conv (b, "conv1", 0, 3, w, 9, 1, NF_PAD_REFLECT, FALSE),
          w), "bn1");                                           // (N, w, H, W)
  for (int i = 1; i <= n_res; i++) {
    char *p = g_strdup_printf ("res%d", i);
    char *c1 = g_strconcat (p, ".conv1", NULL), *n1 = g_strconcat (p, ".bn1", NULL);
    char *c2 = g_strconcat (p, ".conv2", NULL), *n2 = g_strconcat (p, ".bn2", NULL);
    int r = relu (b, bnorm (b, n1, conv (b, c1, v, w, w, 3, 1, NF_PAD_REFLECT, FALSE), w), n1);
    r = bnorm (b, n2, conv (b, c2, r, w, w, 3, 1, NF_PAD_REFLECT, FALSE), w);
    v = add (b, v, r, p);
    g_free (p);
    g_free (c1);
    g_free (n1);
    g_free (c2);
    g_free (n2);
  }
  for (int s = 1, i = 1; s < scale; s *= 2, i++) {
    char *d = g_strdup_printf ("up%d", i), *n = g_strdup_printf ("up%d.bn", i);
    v = relu (b, bnorm (b, n, deconv (b, d, v, w, w), w), n);   // (N, w, 2H, 2W)
    g_free (d);
    g_free (n);
  }
  v = conv (b, "conv_out", v, w, 3, 9, 1, NF_PAD_REFLECT, TRUE);
  NfOp t = { .type = NF_OP_TANH_SCALE, .scale = 0.5f, .offset = 0.5f };
  v = nf_graph_builder_add (b, &t, NULL, &v, 1, "y");           // (N, 3, sH, sW) in 0..1
  return nf_graph_builder_finish (b, v);
}

/* Sub-pixel (ESPCN/EDSR-like) SR: residual body, one pixel shuffle at the end. */
static NfGraph *
build_sr_subpixel (int scale, int w, int n_res)
{
  NfGraphBuilder *b = nf_graph_builder_new ("x");
  int head = conv (b, "conv1", 0, 3, w, 3, 1, NF_PAD_REFLECT, TRUE);    // (N, w, H, W)
  int v = head;
  for (int i = 1; i <= n_res; i++) {
    char *p = g_strdup_printf ("res%d", i);
    char *c1 = g_strconcat (p, ".conv1", NULL), *c2 = g_strconcat (p, ".conv2", NULL);
    int r = relu (b, conv (b, c1, v, w, w, 3, 1, NF_PAD_REFLECT, TRUE), c1);
    r = conv (b, c2, r, w, w, 3, 1, NF_PAD_REFLECT, TRUE);
    v = add (b, v, r, p);
    g_free (p);
    g_free (c1);
    g_free (c2);
  }
  v = conv (b, "conv2", v, w, w, 3, 1, NF_PAD_REFLECT, TRUE);
  v = add (b, head, v, "body");
  v = conv (b, "conv_up", v, w, 3 * scale * scale, 3, 1, NF_PAD_REFLECT, TRUE);
  NfOp ps = { .type = NF_OP_PIXEL_SHUFFLE, .factor = scale };
  v = nf_graph_builder_add (b, &ps, NULL, &v, 1, "shuffle");    // (N, 3, sH, sW)
  NfOp cl = { .type = NF_OP_CLAMP, .min = 0.0f, .max = 1.0f };
  v = nf_graph_builder_add (b, &cl, NULL, &v, 1, "y");
  return nf_graph_builder_finish (b, v);
}

/* The real-time SR network for CPUs (ESPCN/FSRCNN-like): everything convolves at the
 * input resolution with few channels, a pixel shuffle makes the output, and the
 * network learns the residual over the nearest-upsampled input (the upsampling and the
 * add: about 2.5 ms per 1080p output on 2 cores, less than a third of one 16-channel
 * convolution at 640x360). A 5x5 first layer (3 -> w), n 3x3 layers of w, a 3x3 layer
 * to 3*s*s channels; ReLU after all but the last; widths multiples of 16 for the
 * 16-lane bf16 kernels. Chosen from timings of candidates on a 2-core AVX512-BF16 CPU
 * (README): x2 and x3 at w = 16, x4 at w = 32, n = 2; 3.5 GFLOP per 640x360 -> 1280x720
 * frame at x2, 9.0 per 480x270 -> 1920x1080 at x4. */
static NfGraph *
build_sr_light (int scale, int w, int n_body)
{
  NfGraphBuilder *b = nf_graph_builder_new ("x");
  int v = relu (b, conv (b, "conv1", 0, 3, w, 5, 1, NF_PAD_REFLECT, TRUE), "conv1");
                                                                // (N, w, H, W)
  for (int i = 1; i <= n_body; i++) {
    char *p = g_strdup_printf ("body%d", i);
    v = relu (b, conv (b, p, v, w, w, 3, 1, NF_PAD_REFLECT, TRUE), p);  // (N, w, H, W)
    g_free (p);
  }
  v = conv (b, "conv_up", v, w, 3 * scale * scale, 3, 1, NF_PAD_REFLECT, TRUE);
                                                                // (N, 3*s*s, H, W)
  NfOp ps = { .type = NF_OP_PIXEL_SHUFFLE, .factor = scale };
  v = nf_graph_builder_add (b, &ps, NULL, &v, 1, "shuffle");    // (N, 3, sH, sW)
  int skip = upsample (b, 0, scale, "x.up");                    // (N, 3, sH, sW)
  v = add (b, v, skip, "sum");
  NfOp cl = { .type = NF_OP_CLAMP, .min = 0.0f, .max = 1.0f };
  v = nf_graph_builder_add (b, &cl, NULL, &v, 1, "y");          // (N, 3, sH, sW) in 0..1
  return nf_graph_builder_finish (b, v);
}

/* sr-light on luma only (the capacity PSNR-Y measures; the input is still RGB, so every
 * engine, element path and tool runs it as any RGB network): a fixed 1x1 conv makes
 * BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B at the input resolution, the sr-light
 * body runs on that one channel (5x5 conv 1 -> w, n 3x3 convs of w, 3x3 conv to s*s
 * sub-pixel channels), a fixed 1x1 conv copies each sub-pixel channel to R, G and B
 * (adding the same dY to R, G and B changes Y by dY and leaves the colour differences
 * R - Y and B - Y alone), and the pixel shuffle adds it to the nearest-upsampled input.
 * The chroma is thus the input's, nearest-upsampled; the network's compute is all luma. */
static NfGraph *
build_sr_light_y (int scale, int w, int n_body)
{
  int ss = scale * scale;
  NfGraphBuilder *b = nf_graph_builder_new ("x");
  int v = conv (b, NF_ARCH_RGB_TO_Y, 0, 3, 1, 1, 1, NF_PAD_ZERO, FALSE);   // (N, 1, H, W)
  v = relu (b, conv (b, "conv1", v, 1, w, 5, 1, NF_PAD_REFLECT, TRUE), "conv1");
                                                                // (N, w, H, W)
  for (int i = 1; i <= n_body; i++) {
    char *p = g_strdup_printf ("body%d", i);
    v = relu (b, conv (b, p, v, w, w, 3, 1, NF_PAD_REFLECT, TRUE), p);  // (N, w, H, W)
    g_free (p);
  }
  v = conv (b, "conv_up", v, w, ss, 3, 1, NF_PAD_REFLECT, TRUE);       // (N, s*s, H, W)
  v = conv (b, NF_ARCH_Y_TO_RGB, v, ss, 3 * ss, 1, 1, NF_PAD_ZERO, FALSE);
                                                                // (N, 3*s*s, H, W)
  NfOp ps = { .type = NF_OP_PIXEL_SHUFFLE, .factor = scale };
  v = nf_graph_builder_add (b, &ps, NULL, &v, 1, "shuffle");    // (N, 3, sH, sW): dY x 3
  int skip = upsample (b, 0, scale, "x.up");                    // (N, 3, sH, sW)
  v = add (b, v, skip, "sum");
  NfOp cl = { .type = NF_OP_CLAMP, .min = 0.0f, .max = 1.0f };
  v = nf_graph_builder_add (b, &cl, NULL, &v, 1, "y");          // (N, 3, sH, sW) in 0..1
  return nf_graph_builder_finish (b, v);
}

/* The design's weights of a fixed op (nf_arch_op_is_fixed; weights (cout, cin, k, k)):
 * RGB -> BT.601 luma; each of the s*s luma sub-pixel channels copied to R, G and B (the
 * pixel shuffle reads channel c*s*s + k as sub-pixel k of colour c); the input blur of
 * the sigma in the model's "input_blur" metadata (else the sigma its window is made for). */
static void
fill_fixed (NfModel *m, const NfOp *op, float *w)
{
  size_t n = (size_t) op->cin * op->cout * op->k * op->k;
  memset (w, 0, n * sizeof (float));
  if (g_str_equal (op->name, NF_ARCH_RGB_TO_Y)) {
    w[0] = 0.299f;
    w[1] = 0.587f;
    w[2] = 0.114f;
  } else if (g_str_equal (op->name, NF_ARCH_Y_TO_RGB)) {
    int ss = op->cin;
    for (int c = 0; c < 3; c++)
      for (int k = 0; k < ss; k++)
        w[(size_t) (c * ss + k) * ss + k] = 1.0f;
  } else {
    const char *s = nf_model_get_metadata (m, "input_blur");
    double sigma = s ? g_ascii_strtod (s, NULL) : 0;
    nf_arch_fill_input_blur (w, op->k, sigma > 0 ? sigma : (op->k - 1) / 4.0);
  }
}

NfGraph *
nf_arch_build_graph (const NfArchSpec *spec, GError **error)
{
  const char *a = spec->arch ? spec->arch : "";
  int w = spec->width, n_res = spec->n_res, scale = spec->scale;
  if (w < 0 || w > 1024 || n_res < 0 || n_res > 64) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "architecture %s: width %d or residual blocks %d out of range", a, w, n_res);
    return NULL;
  }
  gboolean multi = g_str_equal (a, "style-rt-multi");
  double blur = spec->input_blur;
  if (!(blur >= 0 && blur <= NF_ARCH_INPUT_BLUR_MAX)
      || (blur > 0 && !g_str_has_prefix (a, "style-"))) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "architecture %s: input blur sigma %g "
        "(%s)", a, blur, g_str_has_prefix (a, "style-") ? "0 for none, else up to 3"
        : "only the style networks have one");
    return NULL;
  }
  if (spec->styles < 0 || spec->styles > 1024 || (spec->styles && !multi)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "architecture %s: %d styles (%s)", a,
        spec->styles, multi ? "1..1024" : "only style-rt-multi holds several styles");
    return NULL;
  }
  if (g_str_equal (a, "style-full"))
    return build_style (w ? w : 32, n_res ? n_res : 5, blur);
  if (g_str_equal (a, "style-slim"))
    return build_style (w ? w : 16, n_res ? n_res : 3, blur);
  if (g_str_equal (a, "style-rt"))
    return build_style_rt (w ? w : 16, n_res ? n_res : 3, 0, blur);
  if (multi)
    return build_style_rt (w ? w : 16, n_res ? n_res : 3, spec->styles ? spec->styles : 8,
        blur);
  if (g_str_equal (a, "sr-johnson")) {
    if (scale != 2 && scale != 4) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "sr-johnson upsamples by 2 or 4, not %d", scale);
      return NULL;
    }
    return build_sr_johnson (scale, w ? w : 64, n_res ? n_res : 4);
  }
  if (g_str_equal (a, "sr-subpixel")) {
    if (scale < 2 || scale > 4) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "sr-subpixel upsamples by 2, 3 or 4, not %d", scale);
      return NULL;
    }
    return build_sr_subpixel (scale, w ? w : 64, n_res ? n_res : 4);
  }
  if (g_str_equal (a, "sr-light")) {
    if (scale < 2 || scale > 4) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "sr-light upsamples by 2, 3 or 4, not %d", scale);
      return NULL;
    }
    return build_sr_light (scale, w ? w : scale == 4 ? 32 : 16, n_res ? n_res : 2);
  }
  if (g_str_equal (a, "sr-light-y")) {
    if (scale < 2 || scale > 4) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "sr-light-y upsamples by 2, 3 or 4, not %d", scale);
      return NULL;
    }
    return build_sr_light_y (scale, w ? w : 16, n_res ? n_res : 4);
  }
  char *known = g_strjoinv (", ", (char **) arch_names);
  g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "unknown architecture \"%s\" (known: %s)",
      a, known);
  g_free (known);
  return NULL;
}

/* PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases; fixed ops
 * get their design's weights (drawn first all the same, so that the other ops' draws do
 * not depend on it). */
void
nf_arch_init_weights (NfModel *m, guint64 seed)
{
  NfRng rng;
  nf_rng_seed (&rng, seed);
  const NfGraph *g = m->source_graph;
  for (int i = 0; i < g->n_ops; i++) {
    const NfOp *op = &g->ops[i];
    char *wk = g_strconcat (op->name ? op->name : "", ".weight", NULL);
    char *bk = g_strconcat (op->name ? op->name : "", ".bias", NULL);
    NfModelTensor *wt = op->name ? nf_model_tensor (m, wk) : NULL;
    NfModelTensor *bt = op->name ? nf_model_tensor (m, bk) : NULL;
    if (op->type == NF_OP_CONV2D || op->type == NF_OP_CONV_TRANSPOSE2D) {
      int fan_in = (op->type == NF_OP_CONV2D ? op->cin : op->cout) * op->k * op->k;
      float bound = 1.0f / sqrtf ((float) fan_in);
      size_t n = (size_t) op->cin * op->cout * op->k * op->k;
      nf_rng_fill_uniform (&rng, wt->data, n, -bound, bound);
      if (bt)
        nf_rng_fill_uniform (&rng, bt->data, op->cout, -bound, bound);
      if (nf_arch_op_is_fixed (op))
        fill_fixed (m, op, wt->data);
    } else if (op->type == NF_OP_INSTANCE_NORM || op->type == NF_OP_BATCH_NORM
        || op->type == NF_OP_COND_INSTANCE_NORM) {
      /* cond_instance_norm (styles, c): one row drawn, copied to every style, so that all
       * styles start from the same network and only training sets them apart */
      int rows = op->type == NF_OP_COND_INSTANCE_NORM ? op->styles : 1;
      if (wt)
        nf_rng_fill_uniform (&rng, wt->data, op->c, 0.9f, 1.1f);
      if (bt)
        nf_rng_fill_uniform (&rng, bt->data, op->c, -0.05f, 0.05f);
      for (int r = 1; r < rows; r++) {
        if (wt)
          memcpy (wt->data + (size_t) r * op->c, wt->data, op->c * sizeof (float));
        if (bt)
          memcpy (bt->data + (size_t) r * op->c, bt->data, op->c * sizeof (float));
      }
      if (op->type == NF_OP_BATCH_NORM) {
        char *mk = g_strconcat (op->name, ".running_mean", NULL);
        char *vk = g_strconcat (op->name, ".running_var", NULL);
        nf_rng_fill_uniform (&rng, nf_model_tensor (m, mk)->data, op->c, -0.1f, 0.1f);
        nf_rng_fill_uniform (&rng, nf_model_tensor (m, vk)->data, op->c, 0.5f, 1.5f);
        g_free (mk);
        g_free (vk);
      }
    }
    g_free (wk);
    g_free (bk);
  }
  nf_model_bind (m, NULL);
}

NfModel *
nf_arch_new_model (const NfArchSpec *spec, guint64 seed, GError **error)
{
  NfGraph *g = nf_arch_build_graph (spec, error);
  if (!g)
    return NULL;
  gboolean sr = g_str_has_prefix (spec->arch, "sr-");
  NfModel *m = nf_model_new_for_graph (g, sr ? NF_TASK_SUPERRES : NF_TASK_STYLE,
      sr ? spec->scale : 1, error);
  nf_graph_free (g);
  if (!m)
    return NULL;
  if (sr) {
    m->in_lo = m->out_lo = 0.0f;
    m->in_hi = m->out_hi = 1.0f;
  }
  if (spec->input_blur > 0) {  /* before the weights: fill_fixed reads the sigma */
    char s[G_ASCII_DTOSTR_BUF_SIZE];
    nf_model_set_metadata (m, "input_blur", g_ascii_dtostr (s, sizeof s, spec->input_blur));
  }
  nf_arch_init_weights (m, seed);
  nf_model_set_metadata (m, "arch", spec->arch);
  nf_model_set_metadata (m, "name", spec->arch);
  char *seed_s = g_strdup_printf ("untrained: seeded random weights (seed %" G_GUINT64_FORMAT
      ")", seed);
  nf_model_set_metadata (m, "training", seed_s);
  g_free (seed_s);
  return m;
}
