/* gpu-bench.c — milliseconds per frame of the shipped networks on the CUDA backends.
 *
 *   gpu-bench [--nets LIST] [--sizes LIST] [--precision fp32,fp16] [--iters N]
 *             [--save-models DIR] [--json FILE] [--heuristic] [--pad-channels N]
 *             [--probe]
 *
 * Networks (seeded weights, nf-arch.c): style-full and style-slim at each frame size
 * (default 1280x720, 1920x1080, 3840x2160); sr-subpixel and sr-johnson x2 and x4 with
 * the input that makes the OUTPUT 1920x1080 and 3840x2160. For each network, size and
 * precision ("cuda" fp32, "cuda-fp16") it plans once (cuDNN algorithms timed, unless
 * --heuristic), warms up, then reports the median and minimum over --iters runs of
 * nf_engine_run + synchronize (activations stay on the GPU; the upload/download of
 * host float images is timed apart as "io"). --save-models writes every network's
 * weights as safetensors (NAME.safetensors) so that torch_bench.py runs the very same
 * weights; --json writes the results for run.sh's table.
 * --pad-channels N: fp16's first-layer input channels padded to N (4 or 8; 1: none; 0:
 * the backend's default), to measure what the padding gains (run.sh step 6e).
 * --probe only prints the CUDA runtime, driver and cuDNN versions loaded and lists the
 * usable GPUs (after --save-models, which needs none).
 * Exit: 0 done, 1 a network failed, 2 usage, 77 no usable GPU.
 * What it does not: check results (test-gpu-ops does).
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "nf-bench-timing.h"
#include "nf-cuda.h"
#include "nf-engine.h"
#include "nf-error.h"

typedef struct {
  const char *label;
  NfArchSpec spec;
} Net;

static const Net nets[] = {
  {"style-full", {"style-full", 0, 0, 0}},
  {"style-slim", {"style-slim", 0, 0, 0}},
  {"sr-subpixel-x2", {"sr-subpixel", 2, 0, 0}},
  {"sr-subpixel-x4", {"sr-subpixel", 4, 0, 0}},
  {"sr-johnson-x2", {"sr-johnson", 2, 0, 0}},
  {"sr-johnson-x4", {"sr-johnson", 4, 0, 0}},
};

static gboolean
bench (const Net *net, NfBackend *be, int fw, int fh, int iters, const char *prec,
    GString *json, gboolean *first)
{
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&net->spec, 1, &e);
  if (!m) {
    fprintf (stderr, "gpu-bench: %s: %s\n", net->label, e->message);
    g_error_free (e);
    return FALSE;
  }
  int s = net->spec.scale ? net->spec.scale : 1;
  NfShape in = { 1, 3, fh / s, fw / s };   /* SR: the output is the frame size */
  NfEngine *eng = nf_engine_new (m, be, NULL);
  float *x = NULL, *y = NULL;
  double *t = g_new0 (double, iters), io_ms = 0, plan_ms = 0;
  gboolean ok = FALSE;
  double t0 = nf_bench_now_ms ();
  if (!nf_engine_plan (eng, in, &e))
    goto out;
  plan_ms = nf_bench_now_ms () - t0;
  NfShape os = nf_engine_output_shape (eng);
  x = nf_alloc_floats (nf_shape_numel (in));
  y = nf_alloc_floats (nf_shape_numel (os));
  if (!x || !y) {
    g_set_error (&e, NF_ERROR, NF_ERROR_BACKEND, "out of host memory");
    goto out;
  }
  NfRng rng;
  nf_rng_seed (&rng, 42);
  nf_rng_fill_uniform (&rng, x, nf_shape_numel (in), m->in_lo, m->in_hi);
  t0 = nf_bench_now_ms ();
  if (!nf_engine_run_host (eng, x, in, y, &e))
    goto out;
  io_ms = nf_bench_now_ms () - t0;
  for (int i = 0; i < 3; i++)   /* warm up */
    if (!nf_engine_run (eng, &e) || !be->iface->synchronize (be, &e))
      goto out;
  for (int i = 0; i < iters; i++) {
    double a = nf_bench_now_ms ();
    if (!nf_engine_run (eng, &e) || !be->iface->synchronize (be, &e))
      goto out;
    t[i] = nf_bench_now_ms () - a;
  }
  double med = nf_bench_median (t, iters);        /* sorts t: t[0] is the minimum */
  io_ms -= med;                 /* run_host = upload + run + download */
  printf ("%-15s %-5s %4dx%-4d -> %4dx%-4d %8.2f ms (min %7.2f) %7.1f fps | io %6.1f ms"
      " plan %6.0f ms\n", net->label, prec, in.w, in.h, os.w, os.h, med, t[0], 1000.0 / med,
      io_ms, plan_ms);
  fflush (stdout);
  g_string_append_printf (json, "%s\n  {\"net\": \"%s\", \"precision\": \"%s\", "
      "\"in\": [%d, %d], \"out\": [%d, %d], \"ms\": %.4f, \"min_ms\": %.4f, "
      "\"plan_ms\": %.1f}", *first ? "" : ",", net->label, prec, in.w, in.h, os.w, os.h, med,
      t[0], plan_ms);
  *first = FALSE;
  ok = TRUE;
out:
  if (e) {
    fprintf (stderr, "gpu-bench: %s %s at %dx%d: %s\n", net->label, prec, in.w, in.h,
        e->message);
    g_error_free (e);
  }
  g_free (t);
  nf_free (x);
  nf_free (y);
  nf_engine_free (eng);
  nf_model_free (m);
  return ok;
}

static gboolean
save_models (const char *dir, char **want)
{
  GError *e = NULL;
  g_mkdir_with_parents (dir, 0755);
  for (guint i = 0; i < G_N_ELEMENTS (nets); i++) {
    if (!nf_bench_selected (nets[i].label, want))
      continue;
    NfModel *m = nf_arch_new_model (&nets[i].spec, 1, &e);
    char *path = g_strdup_printf ("%s/%s.safetensors", dir, nets[i].label);
    gboolean ok = m && nf_model_save (m, path, NF_DTYPE_F32, &e);
    if (!ok) {
      fprintf (stderr, "gpu-bench: saving %s: %s\n", path, e ? e->message : "?");
      g_clear_error (&e);
    }
    g_free (path);
    nf_model_free (m);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  char *nets_opt = NULL, *sizes_opt = NULL, *prec_opt = NULL, *save = NULL, *json_path = NULL;
  int iters = 20;
  gboolean heuristic = FALSE, probe = FALSE;
  int pad_channels = 0;
  GOptionEntry entries[] = {
    { "nets", 'a', 0, G_OPTION_ARG_STRING, &nets_opt,
      "Networks (prefixes, comma-separated; default all)", "LIST" },
    { "sizes", 's', 0, G_OPTION_ARG_STRING, &sizes_opt,
      "Frame sizes, e.g. 1280x720,1920x1080 (default those and 3840x2160; SR networks "
      "skip sizes below 1920x1080)", "LIST" },
    { "precision", 'p', 0, G_OPTION_ARG_STRING, &prec_opt, "fp32,fp16 (default both)",
      "LIST" },
    { "iters", 'n', 0, G_OPTION_ARG_INT, &iters, "Timed runs (default 20)", "N" },
    { "save-models", 0, 0, G_OPTION_ARG_FILENAME, &save,
      "Write the networks' weights to DIR/NAME.safetensors", "DIR" },
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &json_path, "Write results as JSON", "FILE" },
    { "heuristic", 0, 0, G_OPTION_ARG_NONE, &heuristic,
      "cuDNN heuristics instead of timing algorithms", NULL },
    { "pad-channels", 0, 0, G_OPTION_ARG_INT, &pad_channels,
      "fp16: pad convolution inputs with fewer channels to N (4 or 8; 1: no padding; "
      "default 0: the backend's choice, 8)", "N" },
    { "probe", 0, 0, G_OPTION_ARG_NONE, &probe,
      "Only say which GPUs are usable (exit 0) or why none is (exit 77)", NULL },
    { NULL }
  };
  GOptionContext *ctx = g_option_context_new ("- time the shipped networks on the GPU");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *e = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &e)) {
    fprintf (stderr, "gpu-bench: %s\n", e->message);
    return 2;
  }
  g_option_context_free (ctx);
  if (iters < 1 || iters > 1000) {
    fprintf (stderr, "gpu-bench: --iters must be 1..1000\n");
    return 2;
  }
  char **want = nets_opt ? g_strsplit (nets_opt, ",", -1) : NULL;
  if (save && !save_models (save, want))
    return 1;

  if (probe) {
    char *v = nf_cuda_versions ();
    printf ("%s\n", v);
    g_free (v);
  }
  int n_dev = nf_cuda_device_count (&e);
  if (n_dev == 0) {
    printf ("SKIP: no usable GPU: %s\n", e->message);
    g_error_free (e);
    return 77;
  }
  if (probe) {
    for (int d = 0; d < n_dev; d++) {
      char *desc = nf_cuda_device_description (d, &e);
      printf ("GPU %d: %s\n", d, desc ? desc : e->message);
      g_clear_error (&e);
      g_free (desc);
    }
    return 0;
  }
  char **sizes = g_strsplit (sizes_opt ? sizes_opt : "1280x720,1920x1080,3840x2160", ",", -1);
  char **precs = g_strsplit (prec_opt ? prec_opt : "fp32,fp16", ",", -1);
  GString *json = g_string_new ("[");
  gboolean first = TRUE;
  int failed = 0;
  for (int p = 0; precs[p]; p++) {
    gboolean f16 = g_str_equal (precs[p], "fp16");
    if (!f16 && !g_str_equal (precs[p], "fp32")) {
      fprintf (stderr, "gpu-bench: precision \"%s\" is not fp32 or fp16\n", precs[p]);
      return 2;
    }
    NfCudaConfig cfg = { f16 ? NF_CUDA_FP16 : NF_CUDA_FP32, 0, FALSE, heuristic,
      pad_channels };
    NfBackend *be = nf_cuda_backend_new (&cfg, &e);
    if (!be) {
      fprintf (stderr, "gpu-bench: %s\n", e->message);
      return 1;
    }
    printf ("== %s ==\n", nf_cuda_backend_description (be));
    for (int si = 0; sizes[si]; si++) {
      int fw, fh;
      if (sscanf (sizes[si], "%dx%d", &fw, &fh) != 2 || fw < 16 || fh < 16) {
        fprintf (stderr, "gpu-bench: bad size \"%s\"\n", sizes[si]);
        return 2;
      }
      for (guint i = 0; i < G_N_ELEMENTS (nets); i++) {
        gboolean sr = nets[i].spec.scale > 1;
        if (!nf_bench_selected (nets[i].label, want) || (sr && (fw < 1920 || fh < 1080)))
          continue;
        if (!bench (&nets[i], be, fw, fh, iters, precs[p], json, &first))
          failed++;
      }
    }
    nf_backend_free (be);
  }
  g_string_append (json, "\n]\n");
  if (json_path && !g_file_set_contents (json_path, json->str, -1, &e)) {
    fprintf (stderr, "gpu-bench: %s\n", e->message);
    failed++;
  }
  g_string_free (json, TRUE);
  g_strfreev (sizes);
  g_strfreev (precs);
  g_strfreev (want);
  return failed ? 1 : 0;
}
