/* nf-optimize.c — optimise the pixels of an image against the VGG loss network, as in
 * the lesson: content reconstruction, style reconstruction, Gatys style transfer.
 *
 *   nf-optimize content  --content photo.jpg [--layers relu2_2] -o out.png
 *   nf-optimize style    --style painting.png [--layers relu1_2,relu2_2,relu3_3] -o out.png
 *   nf-optimize transfer --content photo.jpg --style painting.png -o out.png
 *       [--content-layer relu2_2] [--layers relu1_2,relu2_2,relu3_3]
 *       [--content-weight 1] [--style-weight W] [--tv-weight W] [--init noise|content]
 *   common: --size N (long side, 256) --square --iters N (100) --layer-weights w1,w2,...
 *       --pool max|avg --seed S --noise A --lossnet PATH --every N
 *       --bounds clip|none --round N --style-size N --history M --benchmark N
 *       --device auto|cpu|cuda --backend NAME (wins over --device)
 *
 * What it does: loads and resizes the images (area averaging; --square first crops the
 * content image to its centre square, so the result is N x N), loads the loss network
 * up to the deepest layer used, starts from noise (the ImageNet mean colour +- A,
 * seeded) or from the content image, runs L-BFGS (pixels kept in 0..255 by clipping
 * between rounds of --round iterations, like the lesson's repeated fmin_l_bfgs_b calls
 * followed by np.clip), prints one line per iteration (loss terms, evaluations,
 * seconds per iteration), writes intermediate PNGs every N iterations and the final
 * PNG (also after Ctrl-C, at the end of the current iteration). In content mode it
 * also prints the PSNR of the result against the photo.
 * Device: --device auto (the default) takes "cuda" when a GPU is usable and the CUDA
 * backend has backward passes for every op of the loss network, else the CPU, and says
 * which and why; --device cuda fails with the reason when it cannot; --backend names
 * the backend directly (cpu, cpu-ref, cuda, cuda-fp16). On a CUDA backend the
 * evaluations run on the device (nf-pixopt.h), L-BFGS on the host.
 * What it does not: train networks (other tools do).
 * Exit codes: 0 done, 1 a file or the optimisation failed, 2 usage error.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "nf-error.h"
#include "nf-image.h"
#include "nf-losses.h"
#include "nf-pixopt.h"
#include "nf-resize.h"
#include "nf-tool-options.h"
#ifdef NF_HAVE_CUDA
#include "nf-cuda.h"
#endif

#ifndef NF_SOURCE_ROOT
#define NF_SOURCE_ROOT "."
#endif
#define LOSSNET_FILE "lossnets/vgg16-conv1_1-conv3_3.safetensors"

/* Options. */
static char *opt_content, *opt_style, *opt_out, *opt_layers, *opt_weights;
static char *opt_content_layer, *opt_pool, *opt_init, *opt_lossnet, *opt_backend;
static char *opt_bounds, *opt_device;
static int opt_size = 256, opt_style_size = 0, opt_iters = 100, opt_every = 0, opt_round = 20;
static int opt_history = 10, opt_benchmark = 0;
static gboolean opt_square = FALSE;
static gint64 opt_seed = 1;
static double opt_content_weight = 1.0, opt_style_weight = -1.0, opt_tv_weight = -1.0;
static double opt_noise = 20.0;

static GOptionEntry entries[] = {
  {"content", 0, 0, G_OPTION_ARG_FILENAME, &opt_content, "Content photo (content, transfer)", "IMG"},
  {"style", 0, 0, G_OPTION_ARG_FILENAME, &opt_style, "Style image (style, transfer)", "IMG"},
  {"output", 'o', 0, G_OPTION_ARG_FILENAME, &opt_out, "Result PNG (default MODE.png)", "PNG"},
  {"size", 0, 0, G_OPTION_ARG_INT, &opt_size, "Long side of the result in pixels (256)", "N"},
  {"square", 0, 0, G_OPTION_ARG_NONE, &opt_square,
      "Make the result N x N: the content image's centre square (style mode: the result "
      "only)", NULL},
  {"style-size", 0, 0, G_OPTION_ARG_INT, &opt_style_size,
      "Long side the style image is resized to (default: --size)", "N"},
  {"iters", 0, 0, G_OPTION_ARG_INT, &opt_iters, "L-BFGS iterations (100)", "N"},
  {"layers", 0, 0, G_OPTION_ARG_STRING, &opt_layers,
      "content: the layer (relu2_2); style/transfer: style layers (relu1_2,relu2_2,relu3_3)",
      "L1,L2"},
  {"layer-weights", 0, 0, G_OPTION_ARG_STRING, &opt_weights,
      "Weights of the style layers (all 1)", "W1,W2"},
  {"content-layer", 0, 0, G_OPTION_ARG_STRING, &opt_content_layer,
      "transfer: content layer (relu2_2)", "L"},
  {"content-weight", 0, 0, G_OPTION_ARG_DOUBLE, &opt_content_weight, "transfer (1)", "W"},
  {"style-weight", 0, 0, G_OPTION_ARG_DOUBLE, &opt_style_weight,
      "Weight of the style term (1)", "W"},
  {"tv-weight", 0, 0, G_OPTION_ARG_DOUBLE, &opt_tv_weight,
      "Total variation weight (content/style: 0; transfer: 1)", "W"},
  {"init", 0, 0, G_OPTION_ARG_STRING, &opt_init, "transfer: noise|content (noise)", "I"},
  {"noise", 0, 0, G_OPTION_ARG_DOUBLE, &opt_noise,
      "Amplitude of the initial noise around the mean colour (20)", "A"},
  {"pool", 0, 0, G_OPTION_ARG_STRING, &opt_pool, "max|avg pooling in the loss network (max)",
      "P"},
  {"seed", 0, 0, G_OPTION_ARG_INT64, &opt_seed, "Seed of the initial noise (1)", "S"},
  {"lossnet", 0, 0, G_OPTION_ARG_FILENAME, &opt_lossnet,
      "VGG safetensors (default $NF_LOSSNET, else ../shared/data/" LOSSNET_FILE ")", "PATH"},
  {"backend", 0, 0, G_OPTION_ARG_STRING, &opt_backend,
      "cpu|cpu-ref|cuda|cuda-fp16 (default: from --device)", "B"},
  {"device", 0, 0, G_OPTION_ARG_STRING, &opt_device,
      "auto|cpu|cuda (auto: cuda when a GPU is usable and the CUDA backend has backward "
      "passes for the loss network, else cpu; cpu: the cpu backend when it has backward "
      "passes, else cpu-ref)", "D"},
  {"every", 0, 0, G_OPTION_ARG_INT, &opt_every,
      "Write OUT-iterNNNN.png every N iterations (0: never)", "N"},
  {"bounds", 0, 0, G_OPTION_ARG_STRING, &opt_bounds,
      "clip (clip to 0..255 between L-BFGS rounds) | none (clip)", "B"},
  {"round", 0, 0, G_OPTION_ARG_INT, &opt_round, "Iterations per L-BFGS round (20)", "N"},
  {"history", 0, 0, G_OPTION_ARG_INT, &opt_history, "L-BFGS memory (10)", "M"},
  {"benchmark", 0, 0, G_OPTION_ARG_INT, &opt_benchmark,
      "Only time N loss+gradient evaluations (forward + backward) and exit", "N"},
  {NULL}
};

typedef enum { MODE_CONTENT, MODE_STYLE, MODE_TRANSFER } Mode;

/* An image file as (1, 3, h, w) 0..255, resized to the given long side; square: its
 * centre square first. */
static float *
load_planar (const char *path, int long_side, gboolean square, int *w, int *h)
{
  GError *e = NULL;
  NfImage *img = nf_image_load (path, &e);
  if (!img)
    nf_tool_fail (e, "PNG and JPEG files are read");
  int iw = img->width, ih = img->height;
  float *full = nf_alloc_floats ((size_t) 3 * iw * ih);        // (3, ih, iw)
  nf_image_to_planar (img, full, 0.0f, 255.0f);
  nf_image_free (img);
  if (square && iw != ih) {
    int side = MIN (iw, ih), x0 = (iw - side) / 2, y0 = (ih - side) / 2;
    float *sq = nf_alloc_floats ((size_t) 3 * side * side);    // (3, side, side)
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < side; y++)
        memcpy (sq + ((size_t) c * side + y) * side,
            full + ((size_t) c * ih + y0 + y) * iw + x0, side * sizeof (float));
    nf_free (full);
    full = sq;
    iw = ih = side;
  }
  nf_resize_fit (iw, ih, long_side, w, h);
  float *out = nf_alloc_floats ((size_t) 3 * *w * *h);
  nf_resize_planar (full, 3, ih, iw, out, *h, *w);
  nf_free (full);
  return out;
}

static gboolean
save_planar (const float *rgb, int w, int h, const char *path, GError **error)
{
  NfImage *img = nf_image_new (w, h);
  nf_image_from_planar (img, rgb, 0.0f, 255.0f);
  gboolean ok = nf_image_save (img, path, error);
  nf_image_free (img);
  return ok;
}

static char *
default_lossnet (void)
{
  const char *env = g_getenv ("NF_LOSSNET");
  if (env && *env)
    return g_strdup (env);
  env = g_getenv ("NF_SHARED_DATA");
  if (env && *env) {
    char *p = g_build_filename (env, LOSSNET_FILE, NULL);
    if (g_file_test (p, G_FILE_TEST_EXISTS))
      return p;
    g_free (p);
  }
  return g_build_filename (NF_SOURCE_ROOT, "..", "shared", "data", LOSSNET_FILE, NULL);
}

static char *
default_backend (void)
{
  const NfBackendIface *cpu = nf_backend_lookup ("cpu");
  return g_strdup (cpu && cpu->backward[NF_OP_CONV2D] ? "cpu" : "cpu-ref");
}

/* Why the CUDA backend cannot optimise pixels through vgg here (g_free), or NULL when
 * it can; *desc (g_free) describes GPU 0 when it can. */
static char *
cuda_unusable (const NfVgg *vgg, char **desc)
{
  *desc = NULL;
#ifdef NF_HAVE_CUDA
  GError *e = NULL;
  char *why = NULL;
  const NfBackendIface *cu = nf_backend_lookup ("cuda");
  if (nf_cuda_device_count (&e) < 1) {
    why = g_strdup_printf ("no usable GPU (%s)", e ? e->message : "no device");
  } else if (!cu) {
    why = g_strdup ("the cuda backend is not registered");
  } else if (!nf_pixopt_backend_can_train (cu, vgg, &e)) {
    why = g_strdup (e->message);
  } else {
    *desc = nf_cuda_device_description (0, NULL);
  }
  g_clear_error (&e);
  return why;
#else
  (void) vgg;
  return g_strdup ("this build has no CUDA backend");
#endif
}

/* The backend to run on, from --backend or --device; prints which and why. */
static char *
choose_backend (const NfVgg *vgg)
{
  if (opt_backend) {
    printf ("device: backend %s (--backend)\n", opt_backend);
    return g_strdup (opt_backend);
  }
  const char *dev = opt_device ? opt_device : "auto";
  if (g_str_equal (dev, "cpu")) {
    char *b = default_backend ();
    printf ("device: cpu, backend %s (--device cpu)\n", b);
    return b;
  }
  if (!g_str_equal (dev, "auto") && !g_str_equal (dev, "cuda"))
    nf_tool_usage_error ("--device %s: auto, cpu or cuda", dev);
  char *desc;
  char *why = cuda_unusable (vgg, &desc);
  if (!why) {
    printf ("device: cuda on %s (--device %s%s)\n", desc ? desc : "GPU 0", dev,
        g_str_equal (dev, "auto") ? ": a GPU is usable and the cuda backend has backward "
        "passes for the loss network" : "");
    g_free (desc);
    return g_strdup ("cuda");
  }
  if (g_str_equal (dev, "cuda")) {
    fprintf (stderr, "nf-optimize: --device cuda: %s\n", why);
    fprintf (stderr, "hint: --device cpu (or auto) runs on the CPU\n");
    g_free (why);
    exit (1);
  }
  char *b = default_backend ();
  printf ("device: cpu, backend %s (--device auto: not cuda because %s)\n", b, why);
  g_free (why);
  return b;
}

/* Multiply-adds x2 of one forward pass of the loss network at w x h. */
static double
forward_gflop (const NfVgg *v, int w, int h)
{
  const NfGraph *g = v->model->graph;
  NfShape *shapes = g_new0 (NfShape, g->n_values);
  double f = 0.0;
  if (nf_graph_infer_shapes (g, (NfShape) { 1, 3, h, w }, shapes, NULL))
    for (int i = 0; i < g->n_ops; i++) {
      NfShape in[NF_OP_MAX_INPUTS];
      for (int j = 0; j < g->ops[i].n_in; j++)
        in[j] = shapes[g->ops[i].in[j]];
      f += nf_op_flops (&g->ops[i], in, shapes[g->ops[i].out]);
    }
  g_free (shapes);
  return f / 1e9;
}

/* Ctrl-C: finish the current iteration, then save the image as it is. */
static volatile sig_atomic_t interrupted = 0;

static void
on_sigint (int sig)
{
  interrupted = 1;
}

typedef struct {
  int w, h;
  int n_style;
  const NfLayerWeight *style;
  const char *out_base;
  gint64 t_last;
  double t_total;
  double first_loss;
  int every;
  float *frame;
} Progress;

static gboolean
on_iter (gpointer user, int iter, const double *x, const NfPixoptLosses *L, int evals)
{
  Progress *pg = user;
  gint64 now = g_get_monotonic_time ();
  double dt = (now - pg->t_last) / 1e6;
  pg->t_last = now;
  pg->t_total += dt;
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "iter %4d  loss %.5e", iter, L->total);
  if (L->content != 0.0)
    g_string_append_printf (s, "  content %.4e", L->content);
  if (pg->n_style) {
    g_string_append_printf (s, "  style %.4e (", L->style);
    for (int i = 0; i < pg->n_style; i++)
      g_string_append_printf (s, "%s%s %.3e", i ? ", " : "", pg->style[i].layer,
          L->style_layer[i]);
    g_string_append (s, ")");
  }
  if (L->tv != 0.0)
    g_string_append_printf (s, "  tv %.4e", L->tv);
  g_string_append_printf (s, "  evals %d  %.2f s/iter", evals, dt);
  printf ("%s\n", s->str);
  fflush (stdout);
  g_string_free (s, TRUE);
  if (pg->every > 0 && iter % pg->every == 0) {
    size_t n = (size_t) 3 * pg->w * pg->h;
    for (size_t i = 0; i < n; i++)
      pg->frame[i] = (float) x[i];
    char *path = g_strdup_printf ("%s-iter%04d.png", pg->out_base, iter);
    GError *e = NULL;
    if (!save_planar (pg->frame, pg->w, pg->h, path, &e)) {
      fprintf (stderr, "nf-optimize: %s\n", e->message);
      g_error_free (e);
    }
    g_free (path);
  }
  if (interrupted)
    printf ("interrupted: stopping after iteration %d and saving the image\n", iter);
  return !interrupted;
}

static char **
split_list (const char *s)
{
  char **v = g_strsplit (s, ",", -1);
  for (int i = 0; v[i]; i++)
    g_strstrip (v[i]);
  return v;
}

int
main (int argc, char **argv)
{
  nf_tool_set_name ("nf-optimize", NULL);
  GError *e = NULL;
  GOptionContext *ctx = g_option_context_new ("content|style|transfer");
  g_option_context_set_summary (ctx,
      "Optimise the pixels of an image with L-BFGS against the VGG loss network:\n"
      "  content   reconstruct a photo's content from noise at one layer\n"
      "  style     reconstruct a painting's style (Gram matrices) from noise\n"
      "  transfer  Gatys et al.: content of one image in the style of another");
  g_option_context_add_main_entries (ctx, entries, NULL);
  nf_tool_parse (ctx, &argc, &argv, FALSE);
  if (argc != 2)
    nf_tool_usage_error ("give one mode: content, style or transfer");
  Mode mode;
  if (g_str_equal (argv[1], "content"))
    mode = MODE_CONTENT;
  else if (g_str_equal (argv[1], "style"))
    mode = MODE_STYLE;
  else if (g_str_equal (argv[1], "transfer"))
    mode = MODE_TRANSFER;
  else
    nf_tool_usage_error ("unknown mode \"%s\" (content, style, transfer)", argv[1]);
  if (mode != MODE_STYLE && !opt_content)
    nf_tool_usage_error ("%s needs --content IMAGE", argv[1]);
  if (mode != MODE_CONTENT && !opt_style)
    nf_tool_usage_error ("%s needs --style IMAGE", argv[1]);
  if (opt_size < 16 || opt_size > 4096)
    nf_tool_usage_error ("--size %d: give 16..4096", opt_size);
  if (opt_style_size == 0)
    opt_style_size = opt_size;
  if (opt_style_size < 16 || opt_style_size > 4096)
    nf_tool_usage_error ("--style-size %d: give 16..4096", opt_style_size);
  if (opt_iters < 1 || opt_round < 1 || opt_history < 1 || opt_every < 0)
    nf_tool_usage_error ("--iters, --round and --history must be at least 1, --every at least 0");
  NfVggOptions vo = { .pool = NF_VGG_POOL_MAX };
  if (opt_pool && g_str_equal (opt_pool, "avg"))
    vo.pool = NF_VGG_POOL_AVG;
  else if (opt_pool && !g_str_equal (opt_pool, "max"))
    nf_tool_usage_error ("--pool %s: max or avg", opt_pool);
  NfLbfgsParams lp;
  nf_lbfgs_params_init (&lp);
  lp.max_iters = opt_iters;
  lp.history = opt_history;
  lp.round_iters = opt_round;
  lp.bounds = NF_BOUNDS_CLIP_ROUNDS;
  if (opt_bounds && g_str_equal (opt_bounds, "none"))
    lp.bounds = NF_BOUNDS_NONE;
  else if (opt_bounds && !g_str_equal (opt_bounds, "clip"))
    nf_tool_usage_error ("--bounds %s: clip or none", opt_bounds);
  gboolean init_content = FALSE;
  if (opt_init && g_str_equal (opt_init, "content"))
    init_content = TRUE;
  else if (opt_init && !g_str_equal (opt_init, "noise"))
    nf_tool_usage_error ("--init %s: noise or content", opt_init);
  if (init_content && mode != MODE_TRANSFER)
    nf_tool_usage_error ("--init content is for transfer (content and style start from noise)");

  /* Layers. */
  const char *content_layer = NULL;
  char **style_layers = NULL;
  if (mode == MODE_CONTENT) {
    content_layer = opt_layers ? opt_layers : "relu2_2";
    if (strchr (content_layer, ','))
      nf_tool_usage_error ("content mode takes one layer, not \"%s\"", content_layer);
  } else {
    style_layers = split_list (opt_layers ? opt_layers : "relu1_2,relu2_2,relu3_3");
    if (mode == MODE_TRANSFER)
      content_layer = opt_content_layer ? opt_content_layer : "relu2_2";
  }
  int n_style = style_layers ? (int) g_strv_length (style_layers) : 0;
  if (n_style > NF_PIXOPT_MAX_LAYERS)
    nf_tool_usage_error ("at most %d style layers", NF_PIXOPT_MAX_LAYERS);
  NfLayerWeight sw[NF_PIXOPT_MAX_LAYERS];
  char **wv = opt_weights ? split_list (opt_weights) : NULL;
  if (wv && (int) g_strv_length (wv) != n_style)
    nf_tool_usage_error ("--layer-weights has %u values for %d style layers", g_strv_length (wv),
        n_style);
  for (int i = 0; i < n_style; i++) {
    sw[i].layer = style_layers[i];
    sw[i].weight = 1.0;
    if (wv) {
      char *end;
      sw[i].weight = g_ascii_strtod (wv[i], &end);
      if (*end || end == wv[i])
        nf_tool_usage_error ("--layer-weights: \"%s\" is not a number", wv[i]);
    }
  }
  if (opt_style_weight < 0)
    opt_style_weight = 1.0;
  if (opt_tv_weight < 0)
    opt_tv_weight = mode == MODE_TRANSFER ? 1.0 : 0.0;

  /* Loss network. */
  GPtrArray *need = g_ptr_array_new ();
  if (content_layer)
    g_ptr_array_add (need, (gpointer) content_layer);
  for (int i = 0; i < n_style; i++)
    g_ptr_array_add (need, style_layers[i]);
  g_ptr_array_add (need, NULL);
  vo.layers = (const char *const *) need->pdata;
  char *lossnet = opt_lossnet ? g_strdup (opt_lossnet) : default_lossnet ();
  NfVgg *vgg = nf_vgg_load (lossnet, &vo, &e);
  if (!vgg)
    nf_tool_fail (e, g_error_matches (e, NF_ERROR, NF_ERROR_ARGUMENT)
        ? "choose layers from the list with --layers / --content-layer (the provided "
        "VGG files stop at block 3)"
        : "the VGG16 loss network is in ../shared/data/lossnets/ next to the repository; "
        "point --lossnet or $NF_LOSSNET at a copy");
  g_ptr_array_unref (need);

  char *backend = choose_backend (vgg);
  NfBackend *be = nf_backend_new (backend, &e);
  if (!be)
    nf_tool_fail (e, NULL);

  /* Images. */
  int w = 0, h = 0, sw_ = 0, sh = 0;
  float *content = mode != MODE_STYLE
      ? load_planar (opt_content, opt_size, opt_square, &w, &h) : NULL;
  float *style = mode != MODE_CONTENT
      ? load_planar (opt_style, opt_style_size, FALSE, &sw_, &sh) : NULL;
  if (mode == MODE_STYLE) {
    /* the result has the style image's shape at --size (square: size x size) */
    nf_resize_fit (sw_, sh, opt_size, &w, &h);
    if (opt_square)
      w = h = opt_size;
  }

  NfPixoptSpec spec = {
    .vgg = vgg,.be = be,.width = w,.height = h,
    .content_rgb = content,.content_layer = content_layer,
    .content_weight = mode == MODE_CONTENT ? 1.0 : opt_content_weight,
    .style_rgb = style,.style_width = sw_,.style_height = sh,
    .n_style_layers = n_style,.style_layers = sw,.style_weight = opt_style_weight,
    .tv_weight = opt_tv_weight,
  };
  printf ("nf-optimize %s: %dx%d, loss network %s (%s, %s pooling, %s preprocessing), "
      "backend %s\n", argv[1], w, h, vgg->arch, lossnet,
      vo.pool == NF_VGG_POOL_AVG ? "average" : "max",
      vgg->preprocess == NF_VGG_PREPROCESS_TORCH ? "torch" : "caffe-bgr", be->iface->name);
  if (content_layer)
    printf ("  content: %s at %s, weight %g\n", opt_content, content_layer,
        spec.content_weight);
  if (n_style) {
    printf ("  style: %s (%dx%d), weight %g, layers", opt_style, sw_, sh, opt_style_weight);
    for (int i = 0; i < n_style; i++)
      printf (" %s*%g", sw[i].layer, sw[i].weight);
    printf ("\n");
  }
  printf ("  tv weight %g; L-BFGS %d iterations, memory %d, %s\n", opt_tv_weight, opt_iters,
      opt_history, lp.bounds == NF_BOUNDS_CLIP_ROUNDS
      ? "clipped to 0..255 between rounds" : "unbounded");
  double gflop = forward_gflop (vgg, w, h);
  printf ("  loss network: %.2f GFLOP forward at %dx%d; one evaluation (forward + "
      "backward) about %.1f GFLOP\n", gflop, w, h, 2 * gflop);
  if (g_str_equal (be->iface->name, "cpu-ref") && gflop > 1.0)
    printf ("  note: cpu-ref is the plain-loop reference backend (about 0.6 GFLOP/s, one "
        "core): expect about %.0f s per evaluation\n", 2 * gflop / 0.6);
#ifdef NF_HAVE_CUDA
  if (nf_cuda_is_backend (be))
    printf ("  %s\n", nf_cuda_backend_description (be));
#endif
  fflush (stdout);

  gint64 t0 = g_get_monotonic_time ();
  NfPixopt *po = nf_pixopt_new (&spec, &e);
  if (!po)
    nf_tool_fail (e, NULL);
#ifdef NF_HAVE_CUDA
  if (nf_cuda_is_backend (be))
    printf ("  %s\n", nf_pixopt_on_device (po)
        ? "evaluations on the device (losses, gradients, preprocessing, TV); L-BFGS on the "
        "host" : "losses on the host through upload/download (this build has no GPU "
        "training kernels)");
#endif
  size_t n = (size_t) 3 * w * h;
  float *rgb = nf_alloc_floats (n);
  if (init_content)
    memcpy (rgb, content, n * sizeof (float));
  else
    nf_pixopt_noise (rgb, (size_t) w * h, (guint64) opt_seed, (float) opt_noise);
  NfPixoptLosses l0;
  if (!nf_pixopt_eval (po, rgb, NULL, &l0, &e))
    nf_tool_fail (e, NULL);
  if (opt_benchmark > 0) {
    float *g = nf_alloc_floats (n);
    double best = INFINITY, sum = 0, first = 0;
    for (int i = 0; i < opt_benchmark; i++) {
      /* each evaluation ends with the gradient on the host (the device synchronised),
       * so wall time is the whole evaluation on GPU backends too */
      gint64 t = g_get_monotonic_time ();
      if (!nf_pixopt_eval (po, rgb, g, NULL, &e))
        nf_tool_fail (e, NULL);
      double dt = (g_get_monotonic_time () - t) / 1e6;
      best = MIN (best, dt);
      sum += dt;
      if (i == 0)
        first = dt;
      printf ("evaluation %d: %.4f s\n", i + 1, dt);
    }
    printf ("benchmark %s %dx%d on %s: %.4f s per loss+gradient evaluation (mean of %d, best "
        "%.4f", argv[1], w, h, be->iface->name, sum / opt_benchmark, opt_benchmark, best);
    if (opt_benchmark > 1)
      printf (", mean after the first %.4f", (sum - first) / (opt_benchmark - 1));
    printf ("); an L-BFGS iteration takes 1-1.5 evaluations once past the first\n");
    nf_free (g);
    return 0;
  }
  printf ("iter    0  loss %.5e  (targets ready in %.2f s)\n", l0.total,
      (g_get_monotonic_time () - t0) / 1e6);

  char *out = opt_out ? g_strdup (opt_out) : g_strdup_printf ("%s.png", argv[1]);
  char *out_base = g_strdup (out);
  char *dot = strrchr (out_base, '.');
  if (dot && dot > strrchr (out_base, '/'))
    *dot = '\0';
  Progress pg = {.w = w,.h = h,.n_style = n_style,.style = sw,.out_base = out_base,
    .t_last = g_get_monotonic_time (),.every = opt_every,.frame = nf_alloc_floats (n)
  };
  NfLbfgsResult res;
  signal (SIGINT, on_sigint);
  if (!nf_pixopt_run (po, rgb, &lp, on_iter, &pg, &res, &e))
    nf_tool_fail (e, NULL);
  NfPixoptLosses l1;
  for (size_t i = 0; i < n; i++)
    rgb[i] = CLAMP (rgb[i], 0.0f, 255.0f);
  if (!nf_pixopt_eval (po, rgb, NULL, &l1, &e))
    nf_tool_fail (e, NULL);
  if (!save_planar (rgb, w, h, out, &e))
    nf_tool_fail (e, NULL);
  printf ("done: %s after %d iterations (%d evaluations): %s\n", out, res.iters, res.evals,
      res.why);
  printf ("loss %.5e -> %.5e (%.1fx lower)", l0.total, l1.total,
      l1.total > 0 ? l0.total / l1.total : INFINITY);
  if (mode == MODE_CONTENT)
    printf ("; PSNR vs the photo %.2f dB", nf_psnr (rgb, content, n, 255.0));
  printf ("; %.2f s/iteration, %.2f s/evaluation, %.1f s in all\n",
      res.iters ? pg.t_total / res.iters : 0.0, res.evals ? pg.t_total / res.evals : 0.0,
      (g_get_monotonic_time () - t0) / 1e6);

  nf_pixopt_free (po);
  nf_free (rgb);
  nf_free (pg.frame);
  nf_free (content);
  nf_free (style);
  g_free (out);
  g_free (out_base);
  g_free (lossnet);
  g_free (backend);
  g_strfreev (style_layers);
  g_strfreev (wv);
  nf_backend_free (be);
  nf_vgg_free (vgg);
  return 0;
}
