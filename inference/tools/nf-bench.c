/* nf-bench.c — how fast the standard networks run on a backend.
 *
 *   nf-bench [--arch ARCH[,ARCH...]] [--size WxH] [--iters N] [--threads N]
 *            [--backend B[,B...]] [-v]
 *
 * For each architecture (style-full, style-slim, style-rt, sr-johnson x2/x4, sr-subpixel x2/x4,
 * sr-light x2 (luma only, sr-light-y)/x3/x4 at the shipped models' widths and depths, the
 * x2's luma core alone (sr-light-x2-y: what superres runs on I420/NV12 frames) and
 * the RGB sr-light x2 it replaced,
 * seeded random weights) and each frame size (default 640x360 and 1280x720) it plans
 * nf_engine once, warms up, and reports the median over --iters runs of nf_engine_run
 * (activations stay in the backend; upload and download are timed apart): ms per
 * frame, frames/s, GFLOP per frame (sum of nf_op_flops), achieved GFLOP/s, the time of
 * the convolutions alone and the cost of everything else on top of them (from per-op
 * timing runs, medians per op), and the ratio to this CPU's practical peak, measured
 * in the same run as oneDNN's throughput on a large 3x3 convolution (128 -> 128
 * channels, 320x180) in the backend's arithmetic: fp32 (the better of nChw8c and
 * nChw16c) for cpu and cpu-ref, bf16 source and weights with fp32 output (the better of
 * nChw16c and channels-last nhwc, which alone gets oneDNN's AMX kernels) for cpu-bf16. By default it runs cpu and, where the CPU computes bf16 natively, cpu-bf16,
 * and ends with a side-by-side table (ms per frame, speed-up). With -v, a per-op
 * breakdown.
 * Sizes: style networks take the frame size as input. Super-resolution networks get
 * the input that makes the OUTPUT the next size up: 640x360 -> 1280x720 output
 * (x2: 640x360 in, x4: 320x180 in), 1280x720 -> 1920x1080 output (x2: 960x540 in,
 * x4: 480x270 in).
 * What it does not: check results (tests do), or load model files (nf-run does).
 * Exit codes: 0 done, 1 a network failed to plan or run, 2 usage error.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <oneapi/dnnl/dnnl.h>

#include "nf-arch.h"
#include "nf-bench-timing.h"
#include "nf-backend.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-luma-core.h"
#include "nf-tool-options.h"

typedef struct {
  const char *label;
  NfArchSpec spec;
  gboolean luma_core;           /* time the model's luma core (1-channel in and out) */
} Net;

static const Net nets[] = {
  {"style-full", {"style-full", 0, 0, 0}},
  {"style-slim", {"style-slim", 0, 0, 0}},
  {"style-rt", {"style-rt", 0, 0, 0}},
  {"sr-johnson-x2", {"sr-johnson", 2, 0, 0}},
  {"sr-johnson-x4", {"sr-johnson", 4, 0, 0}},
  {"sr-subpixel-x2", {"sr-subpixel", 2, 0, 0}},
  {"sr-subpixel-x4", {"sr-subpixel", 4, 0, 0}},
  /* the shipped sr-light models' sizes (weights/sr-light-xS.md), not the arch defaults:
   * x2 is the luma-only sr-light-y, x3 and x4 RGB; sr-light-rgb-x2 the RGB x2 it replaced */
  {"sr-light-x2", {"sr-light-y", 2, 16, 5}},
  /* the same network's luma core, what superres runs on the Y plane of I420/NV12 */
  {"sr-light-x2-y", {"sr-light-y", 2, 16, 5}, TRUE},
  {"sr-light-rgb-x2", {"sr-light", 2, 16, 3}},
  {"sr-light-x3", {"sr-light", 3, 16, 4}},
  {"sr-light-x4", {"sr-light", 4, 32, 4}},
};

/* ---- the practical peak: one big 3x3 convolution through oneDNN ------------------- */

#define DNNL_TRY(x) G_STMT_START { if ((x) != dnnl_success) { \
      fprintf (stderr, "nf-bench: oneDNN call failed: %s\n", #x); goto out; } } G_STMT_END

static double
measure_peak_as (int iters, dnnl_data_type_t in_dt, dnnl_format_tag_t tag)
{
  const int c = 128, h = 180, w = 320;
  double gflops = 0;
  dnnl_engine_t eng = NULL;
  dnnl_stream_t stream = NULL;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t prim = NULL;
  dnnl_memory_t m[4] = { NULL, NULL, NULL, NULL };
  DNNL_TRY (dnnl_engine_create (&eng, dnnl_cpu, 0));
  DNNL_TRY (dnnl_stream_create (&stream, eng, dnnl_stream_default_flags));
  dnnl_memory_desc_t src, wei, bias, dst;
  dnnl_dims_t sd = { 1, c, h + 2, w + 2 }, wd = { c, c, 3, 3 }, bd = { c }, dd = { 1, c, h, w };
  dnnl_dims_t st = { 1, 1 }, pad = { 0, 0 };
  DNNL_TRY (dnnl_memory_desc_init_by_tag (&src, 4, sd, in_dt, tag));
  DNNL_TRY (dnnl_memory_desc_init_by_tag (&wei, 4, wd, in_dt, dnnl_format_tag_any));
  DNNL_TRY (dnnl_memory_desc_init_by_tag (&bias, 1, bd, dnnl_f32, dnnl_x));
  DNNL_TRY (dnnl_memory_desc_init_by_tag (&dst, 4, dd, dnnl_f32, tag));
  dnnl_convolution_desc_t desc;
  DNNL_TRY (dnnl_convolution_forward_desc_init (&desc, dnnl_forward_inference,
          dnnl_convolution_direct, &src, &wei, &bias, &dst, st, pad, pad));
  DNNL_TRY (dnnl_primitive_desc_create (&pd, &desc, NULL, eng, NULL));
  DNNL_TRY (dnnl_primitive_create (&prim, pd));
  const dnnl_query_t q[4] = { dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md,
    dnnl_query_src_md
  };
  for (int i = 0; i < 3; i++) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md (pd, q[i], 0);
    DNNL_TRY (dnnl_memory_create (&m[i], md, eng, DNNL_MEMORY_ALLOCATE));
    void *p;
    DNNL_TRY (dnnl_memory_get_data_handle (m[i], &p));
    NfRng rng;                  /* real values: uninitialised memory may hold denormals */
    nf_rng_seed (&rng, i + 1);
    if (md->data_type == dnnl_bf16) {
      guint16 *h = p;
      for (size_t k = 0; k < dnnl_memory_desc_get_size (md) / 2; k++)
        h[k] = nf_float_to_bf16 (0.2f * nf_rng_uniform (&rng) - 0.1f);
    } else {
      nf_rng_fill_uniform (&rng, p, dnnl_memory_desc_get_size (md) / sizeof (float), -0.1f,
          0.1f);
    }
  }
  DNNL_TRY (dnnl_memory_create (&m[3], &bias, eng, DNNL_MEMORY_ALLOCATE));
  {
    float *p;
    DNNL_TRY (dnnl_memory_get_data_handle (m[3], (void **) &p));
    for (int i = 0; i < c; i++)
      p[i] = 0.01f;
  }
  dnnl_exec_arg_t args[4] = { {DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]},
  {DNNL_ARG_DST, m[2]}, {DNNL_ARG_BIAS, m[3]}
  };
  double *t = g_new (double, iters);
  for (int i = -1; i < iters; i++) {
    double t0 = nf_bench_now_ms ();
    DNNL_TRY (dnnl_primitive_execute (prim, stream, 4, args));
    DNNL_TRY (dnnl_stream_wait (stream));
    if (i >= 0)
      t[i] = nf_bench_now_ms () - t0;
  }
  gflops = 2.0 * c * c * 9 * h * w / (nf_bench_median (t, iters) * 1e6);
  g_free (t);
out:
  for (int i = 0; i < 4; i++)
    if (m[i])
      dnnl_memory_destroy (m[i]);
  if (prim)
    dnnl_primitive_destroy (prim);
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  if (stream)
    dnnl_stream_destroy (stream);
  if (eng)
    dnnl_engine_destroy (eng);
  return gflops;
}

/* The practical peak of a backend's arithmetic (see the header); *what says which. */
static double
measure_peak (const NfBackend *be, int iters, const char **what)
{
  if (g_str_equal (be->iface->name, "cpu-bf16")) {
    double b16 = measure_peak_as (iters, dnnl_bf16, dnnl_nChw16c);
    double bcl = measure_peak_as (iters, dnnl_bf16, dnnl_nhwc);
    *what = bcl > b16 ? "bf16 in, fp32 out, nhwc" : "bf16 in, fp32 out, nChw16c";
    return MAX (b16, bcl);
  }
  double p8 = measure_peak_as (iters, dnnl_f32, dnnl_nChw8c);
  double p16 = measure_peak_as (iters, dnnl_f32, dnnl_nChw16c);
  *what = p16 > p8 ? "fp32, nChw16c" : "fp32, nChw8c";
  return MAX (p8, p16);
}

/* ---- one network at one size ----------------------------------------------------------- */

static gboolean
is_conv (NfOpType t)
{
  return t == NF_OP_CONV2D || t == NF_OP_CONV_TRANSPOSE2D;
}

static gboolean
bench_net (const Net *net, NfBackend *be, int fw, int fh, int iters, double peak,
    gboolean verbose, double *ms_out)
{
  GError *e = NULL;
  NfModel *m = nf_arch_new_model (&net->spec, 1, &e);
  if (!m) {
    fprintf (stderr, "nf-bench: %s: %s\n", net->label, e->message);
    g_error_free (e);
    return FALSE;
  }
  if (net->luma_core) {
    NfModel *core = nf_model_luma_core (m, &e);
    nf_model_free (m);
    m = core;
    if (!m) {
      fprintf (stderr, "nf-bench: %s: no luma core%s%s\n", net->label, e ? ": " : "",
          e ? e->message : "");
      g_clear_error (&e);
      return FALSE;
    }
  }
  int s = net->spec.scale ? net->spec.scale : 1;
  NfShape in = { 1, net->luma_core ? 1 : 3, fh, fw };
  if (s > 1) {                  /* the output is the next size up */
    int ow = fw == 640 && fh == 360 ? 1280 : fw == 1280 && fh == 720 ? 1920 : fw * s;
    int oh = fw == 640 && fh == 360 ? 720 : fw == 1280 && fh == 720 ? 1080 : fh * s;
    in.w = ow / s;
    in.h = oh / s;
  }
  NfEngine *eng = nf_engine_new (m, be, NULL);
  gboolean ok = FALSE;
  float *x = NULL, *y = NULL;
  double *t = g_new0 (double, iters), *tu = g_new0 (double, iters);
  double t0 = nf_bench_now_ms ();
  if (!nf_engine_plan (eng, in, &e))
    goto out;
  double plan_ms = nf_bench_now_ms () - t0;
  NfShape os = nf_engine_output_shape (eng);
  x = nf_alloc_floats (nf_shape_numel (in));
  y = nf_alloc_floats (nf_shape_numel (os));
  NfRng rng;
  nf_rng_seed (&rng, 42);
  nf_rng_fill_uniform (&rng, x, nf_shape_numel (in), m->in_lo, m->in_hi);

  int n_calls = nf_engine_n_calls (eng);
  double flops = 0;
  for (int i = 0; i < n_calls; i++) {
    const NfOpCall *c = nf_engine_call (eng, i);
    if (!nf_engine_call_skipped (eng, i))
      flops += nf_op_flops (c->op, c->in, c->out);
  }

  /* Warm up (the first run also settles the halos the convolutions ask for). */
  for (int i = 0; i < 2; i++)
    if (!nf_engine_run_host (eng, x, in, y, &e))
      goto out;
  for (int i = 0; i < iters; i++) {
    double a = nf_bench_now_ms ();
    if (!be->iface->upload (be, nf_engine_input_buffer (eng), x, in, &e))
      goto out;
    double b = nf_bench_now_ms ();
    if (!nf_engine_run (eng, &e))
      goto out;
    double c = nf_bench_now_ms ();
    if (!be->iface->download (be, y, nf_engine_output_buffer (eng), os, &e))
      goto out;
    t[i] = c - b;
    tu[i] = (b - a) + (nf_bench_now_ms () - c);
  }
  if (verbose) {
    printf ("  runs:");
    for (int i = 0; i < iters; i++)
      printf (" %.1f", t[i]);
    printf (" ms\n");
  }
  double ms = nf_bench_median (t, iters), io_ms = nf_bench_median (tu, iters);
  *ms_out = ms;

  /* Per-op timing runs: median per op. */
  double *op_ms = g_new0 (double, (size_t) n_calls * iters);
  nf_engine_set_timing (eng, TRUE);
  for (int r = 0; r < iters; r++) {
    if (!nf_engine_run (eng, &e)) {
      g_free (op_ms);
      goto out;
    }
    for (int i = 0; i < n_calls; i++)
      op_ms[(size_t) i * iters + r] = nf_engine_op_ms (eng, i);
  }
  nf_engine_set_timing (eng, FALSE);
  double conv_ms = 0, other_ms = 0, *med = g_new0 (double, n_calls);
  for (int i = 0; i < n_calls; i++) {
    med[i] = nf_bench_median (op_ms + (size_t) i * iters, iters);
    if (is_conv (nf_engine_call (eng, i)->op->type))
      conv_ms += med[i];
    else
      other_ms += med[i];
  }
  double conv_flops = flops;    /* every flop counted is a convolution's */
  printf ("%-8s %-15s %4dx%-4d -> %4dx%-4d %8.1f ms %6.2f fps %7.1f GFLOP %6.1f GFLOP/s "
      "%5.0f%% peak | conv %7.1f ms (%5.1f GFLOP/s) other %6.1f ms = +%4.1f%% | io %5.1f ms"
      " plan %4.0f ms\n",
      be->iface->name, net->label, in.w, in.h, os.w, os.h, ms, 1000.0 / ms, flops * 1e-9,
      flops / ms * 1e-6,
      100.0 * flops / ms * 1e-6 / peak, conv_ms, conv_flops / conv_ms * 1e-6, other_ms,
      100.0 * other_ms / conv_ms, io_ms, plan_ms);
  if (verbose) {
    double sum = conv_ms + other_ms;
    for (int i = 0; i < n_calls; i++) {
      const NfOpCall *c = nf_engine_call (eng, i);
      if (nf_engine_call_skipped (eng, i))
        continue;
      double f = nf_op_flops (c->op, c->in, c->out);
      char gf[32] = "";
      if (f > 0)
        g_snprintf (gf, sizeof gf, "%6.1f GFLOP/s", f / med[i] * 1e-6);
      printf ("    %3d %-16s %-14s %4dx%4dx%-4d -> %4dx%4dx%-4d%s %8.2f ms %5.1f%% %s\n", i,
          nf_op_type_name (c->op->type), c->op->name ? c->op->name : "", c->in[0].c,
          c->in[0].h, c->in[0].w, c->out.c, c->out.h, c->out.w,
          c->op->fuse_relu ? " +relu" : "      ", med[i], 100.0 * med[i] / sum, gf);
    }
  }
  g_free (med);
  g_free (op_ms);
  ok = TRUE;
out:
  if (e) {
    fprintf (stderr, "nf-bench: %s at %dx%d: %s\n", net->label, in.w, in.h, e->message);
    g_error_free (e);
  }
  g_free (t);
  g_free (tu);
  nf_free (x);
  nf_free (y);
  nf_engine_free (eng);
  nf_model_free (m);
  return ok;
}

int
main (int argc, char **argv)
{
  nf_tool_set_name ("nf-bench", NULL);
  char *arch = NULL, *size = NULL, *backend = NULL;
  int iters = 5, threads = 0;
  gboolean verbose = FALSE;
  GOptionEntry entries[] = {
    { "arch", 'a', 0, G_OPTION_ARG_STRING, &arch,
      "Networks, comma-separated: style-full, style-slim, style-rt, sr-johnson-x2, "
      "sr-johnson-x4, sr-subpixel-x2, sr-subpixel-x4, sr-light-x2, sr-light-x2-y, sr-light-rgb-x2, "
      "sr-light-x3, sr-light-x4, "
      "or a prefix such as sr-light (default: all)",
      "ARCH" },
    { "size", 's', 0, G_OPTION_ARG_STRING, &size,
      "Frame size (default: 640x360 and 1280x720)", "WxH" },
    { "iters", 'n', 0, G_OPTION_ARG_INT, &iters, "Timed runs per network (default 5)", "N" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads,
      "OpenMP threads (default: OMP_NUM_THREADS or all cores)", "N" },
    { "backend", 'b', 0, G_OPTION_ARG_STRING, &backend,
      "Backends, comma-separated (default: cpu, and cpu-bf16 where the CPU has native bf16)",
      "NAMES" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Per-op breakdown", NULL },
    { NULL }
  };
  GOptionContext *ctx = g_option_context_new ("- time the standard networks");
  g_option_context_add_main_entries (ctx, entries, NULL);
  nf_tool_parse (ctx, &argc, &argv, FALSE);
  GError *e = NULL;
  if (iters < 1 || iters > 1000)
    nf_tool_usage_error ("--iters must be 1..1000");
  int sizes[2][2] = { {640, 360}, {1280, 720} }, n_sizes = 2;
  if (size) {
    if (sscanf (size, "%dx%d", &sizes[0][0], &sizes[0][1]) != 2 || sizes[0][0] < 16
        || sizes[0][1] < 16 || sizes[0][0] > 8192 || sizes[0][1] > 8192)
      nf_tool_usage_error ("--size wants WxH (16..8192), not \"%s\"", size);
    n_sizes = 1;
  }
  if (threads < 0)
    nf_tool_usage_error ("--threads must be positive");
  if (threads > 0)
    omp_set_num_threads (threads);

  /* the backends: as asked, else cpu and (where native) cpu-bf16 */
  char **bnames = backend ? g_strsplit (backend, ",", -1) : NULL;
  if (!bnames) {
    GError *be_err = NULL;
    NfBackend *probe = nf_backend_new ("cpu-bf16", &be_err);
    bnames = g_strsplit (probe ? "cpu,cpu-bf16" : "cpu", ",", -1);
    if (!probe) {
      printf ("(no cpu-bf16 column: %s)\n", be_err->message);
      g_error_free (be_err);
    }
    nf_backend_free (probe);
  }
  int n_be = g_strv_length (bnames);
  char **want = arch ? g_strsplit (arch, ",", -1) : NULL;
  int n_nets = G_N_ELEMENTS (nets);
  double *res = g_new0 (double, (size_t) n_be * n_sizes * n_nets);   /* ms; 0: not run */
  int failed = 0, ran = 0;
  for (int bi = 0; bi < n_be; bi++) {
    NfBackend *be = nf_backend_new (bnames[bi], &e);
    if (!be) {
      fprintf (stderr, "nf-bench: %s\n", e->message);
      return 1;
    }
    const char *what = "";
    double peak = measure_peak (be, MAX (iters, 5), &what);
    printf ("backend %s, %d threads; practical peak (oneDNN 3x3 conv 128->128 at 320x180, "
        "%s): %.1f GFLOP/s\n", be->iface->name, omp_get_max_threads (), what, peak);
    printf ("times: median of %d runs; conv = convolutions alone, other = everything else, "
        "as a share of conv time\n", iters);
    ran = 0;
    for (int si = 0; si < n_sizes; si++)
      for (int i = 0; i < n_nets; i++) {
        if (!nf_bench_selected (nets[i].label, want))
          continue;
        ran++;
        if (!bench_net (&nets[i], be, sizes[si][0], sizes[si][1], iters, peak, verbose,
                &res[((size_t) bi * n_sizes + si) * n_nets + i]))
          failed++;
      }
    if (!ran)
      nf_tool_usage_error ("no network matches \"%s\"", arch);
    double peak2 = measure_peak (be, MAX (iters, 5), &what);
    printf ("%s: practical peak again at the end: %.1f GFLOP/s%s\n\n", be->iface->name, peak2,
        fabs (peak2 - peak) > 0.1 * peak ? " (differs by >10%: the machine was busy?)" : "");
    nf_backend_free (be);
  }
  if (n_be > 1) {               /* side by side, speed-up against the first backend */
    printf ("%-15s %-9s", "network", "input");
    for (int bi = 0; bi < n_be; bi++)
      printf (" %12s", bnames[bi]);
    for (int bi = 1; bi < n_be; bi++)
      printf (" %7s/%s", "x", bnames[0]);
    printf ("\n");
    for (int si = 0; si < n_sizes; si++)
      for (int i = 0; i < n_nets; i++) {
        double *r = res + (size_t) si * n_nets + i;
        size_t stride = (size_t) n_sizes * n_nets;
        if (r[0] <= 0)
          continue;
        char sz[24];
        g_snprintf (sz, sizeof sz, "%dx%d", sizes[si][0], sizes[si][1]);
        printf ("%-15s %-9s", nets[i].label, sz);
        for (int bi = 0; bi < n_be; bi++)
          printf (" %9.1f ms", r[bi * stride]);
        for (int bi = 1; bi < n_be; bi++)
          printf (" %7.2fx%*s", r[bi * stride] > 0 ? r[0] / r[bi * stride] : 0.0,
              (int) strlen (bnames[0]), "");
        printf ("\n");
      }
  }
  g_free (res);
  g_strfreev (bnames);
  g_strfreev (want);
  g_free (arch);
  g_free (size);
  g_free (backend);
  return failed ? 1 : 0;
}
