/* nf-run.c — runs a model file on one image file.
 *
 *   nf-run -m model.safetensors -i in.png|in.jpg -o out.png|out.jpg
 *          [--backend cpu|cpu-ref] [-v] [--repeat N]
 *          [--style NAME|INDEX | --style-mix "NAME:W,NAME:W"]
 *
 * What it does: loads the model and the image, maps pixels to the model's input range,
 * pads the image by reflection on the right and bottom up to the model's size multiple
 * (cropping the output back to scale x the original size), runs the network, maps the
 * output range back to pixels and saves. Prints the time per run; with -v also the
 * model's description and a per-op table (shapes, GFLOP, time; ReLUs fused into the op
 * before them are marked). A multi-style model (cond_instance_norm, nf-model.h) runs its
 * first style unless --style names one (a name of its "styles" metadata or an index) or
 * --style-mix gives "name:weight" pairs, the neuralstyle element's style-mix syntax
 * (inference/nf-style-mix.h: names or indices, styles not listed weigh 0, weights used as
 * given; the same parser, nf_style_mix_parse_for_model).
 * What it does not: tiling of huge images, video (the GStreamer elements do that).
 * Exit codes: 0 done, 1 a file or the run failed, 2 usage error (also a style the model
 * lacks, or a style option for a model of one style).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "nf-engine.h"
#include "nf-error.h"
#include "nf-image.h"
#include "nf-model.h"
#include "nf-style-mix.h"
#include "nf-tool-options.h"


/* (1, 3, h, w) -> (1, 3, ph, pw), the new rows and columns mirrored. */
static void
pad_reflect (const float *src, int h, int w, float *dst, int ph, int pw)
{
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < ph; y++) {
      const float *srow = src + ((gsize) c * h + nf_reflect_index (y, h)) * w;
      float *drow = dst + ((gsize) c * ph + y) * pw;
      memcpy (drow, srow, sizeof (float) * w);
      for (int x = w; x < pw; x++)
        drow[x] = srow[nf_reflect_index (x, w)];
    }
}

/* (1, 3, h, w) top-left (ch, cw) crop. */
static void
crop (const float *src, int h, int w, float *dst, int ch, int cw)
{
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < ch; y++)
      memcpy (dst + ((gsize) c * ch + y) * cw, src + ((gsize) c * h + y) * w,
          sizeof (float) * cw);
}

static char *
shape_str (NfShape s)
{
  return g_strdup_printf ("%dx%dx%d", s.c, s.h, s.w);
}

static void
print_model (const NfModel *m, const char *path)
{
  const char *name = nf_model_get_metadata (m, "name");
  const char *arch = nf_model_get_metadata (m, "arch");
  guint64 n = 0;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, m->tensors);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    const NfModelTensor *t = v;
    guint64 q = 1;
    for (int d = 0; d < t->ndim; d++)
      q *= (guint64) t->dims[d];
    n += q;
  }
  printf ("model %s: name %s, arch %s, task %s, scale %d, %d ops, %" G_GUINT64_FORMAT
      " weights\n", path, name ? name : "-", arch ? arch : "-", nf_task_name (m->task),
      m->scale, m->graph->n_ops, n);
  printf ("  input range %g..%g, output range %g..%g, input sizes multiple of %d\n",
      m->in_lo, m->in_hi, m->out_lo, m->out_hi, m->size_multiple);
  if (m->n_styles > 0) {
    char *names = g_strjoinv (", ", m->style_names);
    printf ("  %d styles: %s\n", m->n_styles, names);
    g_free (names);
  }
}

/* ---- styles of a multi-style model ---------------------------------------------------- */

static gboolean
style_error (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
style_error (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, NF_ERROR, NF_ERROR_ARGUMENT, msg);
  g_free (msg);
  return FALSE;
}

/* The style of name (a name of m or an index), else FALSE + an error listing m's styles. */
static gboolean
style_of (const NfModel *m, const char *opt, const char *name, int *index, GError **error)
{
  *index = nf_model_style_index (m, name);
  if (*index >= 0)
    return TRUE;
  char *names = g_strjoinv (", ", m->style_names);
  style_error (error, "%s: the model has no style \"%s\" (its styles: %s; or an index "
      "0..%d)", opt, name, names, m->n_styles - 1);
  g_free (names);
  return FALSE;
}

/* Sets m's mix from --style or --style-mix (at most one is given); *what receives a
 * description for the summary line (g_free; NULL for a model of one style). */
static gboolean
apply_style (NfModel *m, const char *style, const char *mix, char **what, GError **error)
{
  *what = NULL;
  if (m->n_styles == 0)
    return !(style || mix) || style_error (error, "%s: the model has one style (no "
        "cond_instance_norm); --style and --style-mix are for multi-style models",
        style ? "--style" : "--style-mix");
  float *w = g_new0 (float, m->n_styles);
  int i = 0;
  /* the element's style-mix syntax and checks (nf-style-mix.h) */
  gboolean ok = mix ? nf_style_mix_parse_for_model (mix, m, w, error)
      : !style || style_of (m, "--style", style, &i, error);
  if (ok && !mix)
    w[i] = 1.0f;
  ok = ok && nf_model_set_style_mix (m, w, m->n_styles, error);
  if (ok && mix) {
    GString *d = g_string_new ("style mix");
    for (int k = 0; k < m->n_styles; k++)
      if (w[k] != 0.0f)
        g_string_append_printf (d, " %s:%g", m->style_names[k], w[k]);
    *what = g_string_free (d, FALSE);
  } else if (ok) {
    *what = g_strdup_printf ("style %s", m->style_names[i]);
  }
  g_free (w);
  return ok;
}

/* The per-op table of the plan, with times averaged over n_runs. */
static void
print_table (NfEngine *e, const NfModel *m, const double *op_ms, int n_runs)
{
  const NfGraph *g = m->graph;
  int n = nf_engine_n_calls (e);
  double total_gflop = 0, total_ms = 0;
  printf ("\n%4s  %-18s %-16s %-28s %-12s %8s %9s\n", "#", "op", "name", "input", "output",
      "GFLOP", "ms");
  for (int i = 0; i < n; i++) {
    const NfOpCall *call = nf_engine_call (e, i);
    const NfOp *op = call->op;
    gboolean skipped = nf_engine_call_skipped (e, i);
    char *type = g_strconcat (nf_op_type_name (op->type), op->fuse_relu ? "+relu" : "", NULL);
    const char *name = op->name ? op->name : g->value_names[op->out];
    GString *ins = g_string_new (NULL);
    for (int j = 0; j < op->n_in; j++) {
      char *s = shape_str (call->in[j]);
      g_string_append_printf (ins, "%s%s", j ? " + " : "", s);
      g_free (s);
    }
    char *outs = shape_str (call->out);
    double gflop = nf_op_flops (op, call->in, call->out) / 1e9;
    if (skipped) {
      printf ("%4d  %-18s %-16s %-28s %-12s %8s %9s  (fused into the op before)\n", i, type,
          name, ins->str, outs, "-", "-");
    } else {
      double ms = op_ms[i] / n_runs;
      total_gflop += gflop;
      total_ms += ms;
      printf ("%4d  %-18s %-16s %-28s %-12s %8.3f %9.3f\n", i, type, name, ins->str, outs,
          gflop, ms);
    }
    g_free (type);
    g_string_free (ins, TRUE);
    g_free (outs);
  }
  printf ("%4s  %-18s %-16s %-28s %-12s %8.3f %9.3f  (%.1f GFLOP/s)\n\n", "", "total", "", "",
      "", total_gflop, total_ms, total_ms > 0 ? total_gflop / (total_ms / 1e3) : 0.0);
}

int
main (int argc, char **argv)
{
  nf_tool_set_name ("nf-run", NULL);
  char *model_path = NULL, *in_path = NULL, *out_path = NULL, *backend = NULL;
  char *style = NULL, *style_mix = NULL, *style_desc = NULL;
  gboolean verbose = FALSE;
  int repeat = 1;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "Model file (safetensors)",
      "FILE" },
    { "input", 'i', 0, G_OPTION_ARG_FILENAME, &in_path, "Input image (PNG or JPEG)", "FILE" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out_path,
      "Output image (.png, .jpg or .jpeg)", "FILE" },
    { "backend", 'b', 0, G_OPTION_ARG_STRING, &backend,
      "Compute backend: cpu (default) or cpu-ref", "NAME" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
      "Describe the model and print a per-op table of shapes, GFLOP and times", NULL },
    { "repeat", 'r', 0, G_OPTION_ARG_INT, &repeat,
      "Run the network N times (timing; default 1)", "N" },
    { "style", 's', 0, G_OPTION_ARG_STRING, &style,
      "Multi-style models: run this style (a name of the model's styles, or an index; "
      "default: the first)", "NAME" },
    { "style-mix", 0, 0, G_OPTION_ARG_STRING, &style_mix,
      "Multi-style models: blend styles, e.g. \"starry_night:0.5,great_wave:0.5\" (styles "
      "not listed weigh 0; weights used as given)", "NAME:W,..." },
    { NULL }
  };
  GOptionContext *ctx = g_option_context_new ("- run a style or super-resolution model on "
      "an image");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx,
      "Examples:\n  nf-run -m weights/candy.safetensors -i photo.jpg -o candy.png -v\n"
      "  nf-run -m multi.safetensors -i photo.jpg -o mix.png "
      "--style-mix starry_night:0.7,great_wave:0.3\n");
  nf_tool_parse (ctx, &argc, &argv, TRUE);
  GError *err = NULL;
  if (!model_path || !in_path || !out_path)
    nf_tool_usage_error ("-m MODEL, -i INPUT and -o OUTPUT are all required");
  if (repeat < 1 || repeat > 100000)
    nf_tool_usage_error ("--repeat must be between 1 and 100000, not %d", repeat);
  if (style && style_mix)
    nf_tool_usage_error ("give --style or --style-mix, not both");
  if (style)
    g_strstrip (style);
  if (!backend)
    backend = g_strdup ("cpu");
  if (!nf_backend_lookup (backend))
    nf_tool_usage_error ("unknown backend \"%s\" (cpu or cpu-ref)", backend);
  {
    gsize n = strlen (out_path);
    if (!((n > 4 && g_ascii_strcasecmp (out_path + n - 4, ".png") == 0)
            || (n > 4 && g_ascii_strcasecmp (out_path + n - 4, ".jpg") == 0)
            || (n > 5 && g_ascii_strcasecmp (out_path + n - 5, ".jpeg") == 0)))
      nf_tool_usage_error ("the output name must end in .png, .jpg or .jpeg: %s", out_path);
  }

  int rc = 1;
  NfModel *m = NULL;
  NfImage *img = NULL, *out_img = NULL;
  NfBackend *be = NULL;
  NfEngine *e = NULL;
  float *in = NULL, *padded = NULL, *out = NULL, *cropped = NULL;
  double *op_ms = NULL;

  m = nf_model_load (model_path, &err);
  if (!m) {
    fprintf (stderr, "nf-run: cannot load the model: %s\n", err->message);
    goto out;
  }
  if (verbose)
    print_model (m, model_path);
  if (!apply_style (m, style, style_mix, &style_desc, &err)) {
    fprintf (stderr, "nf-run: %s\nTry 'nf-run --help'.\n", err->message);
    rc = 2;
    goto out;
  }
  img = nf_image_load (in_path, &err);
  if (!img) {
    fprintf (stderr, "nf-run: cannot load the input image: %s\n", err->message);
    goto out;
  }
  be = nf_backend_new (backend, &err);
  if (!be) {
    fprintf (stderr, "nf-run: backend %s is not available: %s\n", backend, err->message);
    goto out;
  }

  /* Pixels -> model range, reflection-padded to the size multiple. */
  int h = img->height, w = img->width, sm = m->size_multiple;
  int ph = (h + sm - 1) / sm * sm, pw = (w + sm - 1) / sm * sm;
  in = nf_alloc_floats ((gsize) 3 * h * w);
  padded = nf_alloc_floats ((gsize) 3 * ph * pw);
  if (!in || !padded) {
    fprintf (stderr, "nf-run: out of memory for a %dx%d image\n", w, h);
    goto out;
  }
  nf_image_to_planar (img, in, m->in_lo, m->in_hi);
  pad_reflect (in, h, w, padded, ph, pw);
  if (verbose && (ph != h || pw != w))
    printf ("input %dx%d padded to %dx%d (multiple of %d)\n", w, h, pw, ph, sm);

  e = nf_engine_new (m, be, NULL);
  NfShape s = { 1, 3, ph, pw };
  gint64 t0 = g_get_monotonic_time ();
  if (!nf_engine_plan (e, s, &err)) {
    fprintf (stderr, "nf-run: cannot run this model on a %dx%d image: %s\n", w, h,
        err->message);
    if (err->code == NF_ERROR_SHAPE)
      fprintf (stderr, "Hint: the image may be too small for the network; try a larger one.\n");
    goto out;
  }
  double plan_ms = (g_get_monotonic_time () - t0) / 1000.0;
  NfShape os = nf_engine_output_shape (e);
  int oh = h * m->scale, ow = w * m->scale;
  if (os.c != 3 || os.h < oh || os.w < ow) {
    fprintf (stderr, "nf-run: the model turns %dx%d into %dx%dx%d, not a %dx%d RGB image\n",
        pw, ph, os.c, os.w, os.h, ow, oh);
    goto out;
  }
  out = nf_alloc_floats (nf_shape_numel (os));
  cropped = nf_alloc_floats ((gsize) 3 * oh * ow);
  op_ms = g_new0 (double, nf_engine_n_calls (e));
  if (!out || !cropped) {
    fprintf (stderr, "nf-run: out of memory for a %dx%d output\n", ow, oh);
    goto out;
  }
  nf_engine_set_timing (e, verbose);
  double min_ms = G_MAXDOUBLE, sum_ms = 0;
  for (int r = 0; r < repeat; r++) {
    t0 = g_get_monotonic_time ();
    if (!nf_engine_run_host (e, padded, s, out, &err)) {
      fprintf (stderr, "nf-run: the network failed on backend %s: %s\n", backend,
          err->message);
      goto out;
    }
    double ms = (g_get_monotonic_time () - t0) / 1000.0;
    sum_ms += ms;
    min_ms = MIN (min_ms, ms);
    for (int i = 0; verbose && i < nf_engine_n_calls (e); i++)
      op_ms[i] += nf_engine_op_ms (e, i);
  }
  if (verbose)
    print_table (e, m, op_ms, repeat);

  crop (out, os.h, os.w, cropped, oh, ow);
  out_img = nf_image_new (ow, oh);
  if (!out_img) {
    fprintf (stderr, "nf-run: cannot allocate a %dx%d output image\n", ow, oh);
    goto out;
  }
  nf_image_from_planar (out_img, cropped, m->out_lo, m->out_hi);
  if (!nf_image_save (out_img, out_path, &err)) {
    fprintf (stderr, "nf-run: cannot save the output: %s\n", err->message);
    goto out;
  }
  printf ("%s (%dx%d) -> %s (%dx%d) on %s%s%s: %.2f ms per run", in_path, w, h, out_path,
      ow, oh, backend, style_desc ? ", " : "", style_desc ? style_desc : "", sum_ms / repeat);
  if (repeat > 1)
    printf (" (mean of %d, best %.2f ms)", repeat, min_ms);
  printf (", planning %.2f ms%s\n", plan_ms, verbose ? " (per-op timing on)" : "");
  rc = 0;

out:
  g_clear_error (&err);
  nf_free (in);
  nf_free (padded);
  nf_free (out);
  nf_free (cropped);
  g_free (op_ms);
  nf_engine_free (e);
  nf_backend_free (be);
  nf_image_free (img);
  nf_image_free (out_img);
  nf_model_free (m);
  g_free (model_path);
  g_free (in_path);
  g_free (out_path);
  g_free (backend);
  g_free (style);
  g_free (style_mix);
  g_free (style_desc);
  return rc;
}
