/* nf-train.c — the training tool: fast style transfer and super-resolution networks.
 *
 *   nf-train style  --style-image painting.jpg --run runs/starry [options]
 *   nf-train sr     --run runs/sr-x4 [--arch sr-johnson|sr-subpixel] [--scale 2|4]
 *                   [--loss perceptual|pixel|mix] [options]
 *   nf-train resume runs/starry [--iters N] [run settings]
 *   nf-train export runs/starry [-o model.safetensors]
 *   nf-train split  [--data DIR ...] [--val-percent 10]   (lists the validation files)
 *   nf-train relabel FILE...   (portable paths in old weight files' metadata; nf-relabel.h)
 *   any: --benchmark N  (time N steps after one warm-up, print images/s, write nothing)
 *        --device auto|cpu|cuda, --backend auto|cpu|cpu-ref|cuda|cuda-fp16 (auto: the GPU
 *        when one is usable and the CUDA backend has backward passes; the first line
 *        says when auto fell back to the CPU and why), --gpus N (data parallel, NCCL)
 *
 * What it does: turns options into a recipe (nf-recipe.h; `--help-all` lists them),
 * runs the training session (nf-trainer.h) and around it: one progress line every
 * --print-every steps (step, weighted losses, learning rate, images/s, ETA), a CSV loss
 * log RUN/log.csv (means over every --log-every steps; on resume, rows after the
 * checkpoint are dropped so the log has no duplicates), preview PNGs
 * RUN/preview/step-NNNNNNN.png with a metrics line (also appended to RUN/previews.txt),
 * checkpoints every --checkpoint-every steps, and Ctrl-C (or SIGTERM): finish the
 * current step, write a checkpoint, say how to resume. A finished run writes a last
 * checkpoint, a last preview and the weight file (--output, default RUN/model.safetensors).
 * What it does not: evaluate models on held-out data (nf-evaluate does).
 * Exit codes: 0 done (or stopped cleanly), 1 failure, 2 usage error.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "nf-dataset.h"
#include "nf-error.h"
#include "nf-recipe.h"
#include "nf-relabel.h"
#include "nf-trainer.h"
#include "nf-tool-options.h"

static const char *usage_text =
    "nf-train style --style-image IMG --run DIR [options]   train a style network\n"
    "nf-train sr --run DIR [options]                         train a super-resolution network\n"
    "nf-train resume DIR [--iters N] [run settings]          continue a stopped run\n"
    "nf-train export DIR [-o FILE]                           weight file from a checkpoint\n"
    "nf-train split [--data DIR] [--val-percent P]           list the validation files\n"
    "nf-train relabel FILE...                                portable paths in the metadata\n"
    "\n'nf-train style --help-all' lists every option with its default.";

/* ---- signals --------------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted = 0;

static void
on_signal (int sig)
{
  interrupted = 1;
  signal (sig, SIG_DFL);        /* a second Ctrl-C kills at once */
}

/* ---- options ------------------------------------------------------------------------------ */

static int opt_benchmark = 0;
static char *opt_export_out = NULL;

static NfRecipe *
parse (int *argc, char ***argv, NfRecipe *r, gboolean run_only, const char *synopsis)
{
  GOptionContext *ctx = g_option_context_new (synopsis);
  GOptionGroup *grp = g_option_group_new ("recipe", "Recipe and run settings",
      "Show the recipe and run settings", NULL, NULL);
  GOptionEntry *entries = nf_recipe_option_entries (r, run_only);
  g_option_group_add_entries (grp, entries);
  g_option_context_add_group (ctx, grp);
  GOptionEntry extra[] = {
    {"benchmark", 0, 0, G_OPTION_ARG_INT, &opt_benchmark,
        "Time N training steps after one warm-up step, print images/s, write nothing", "N"},
    {NULL}
  };
  g_option_context_add_main_entries (ctx, extra, NULL);
  g_option_context_set_summary (ctx, usage_text);
  nf_tool_parse (ctx, argc, argv, TRUE);
  g_free (entries);
  return r;
}

/* ---- the CSV log --------------------------------------------------------------------------- */

/* Keeps the header and the rows up to `step` (the checkpoint), so a resumed run appends
 * without duplicates. */
static void
trim_log (const char *path, guint64 step)
{
  gchar *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return;
  GString *out = g_string_new (NULL);
  char **lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i]; i++) {
    if (!*lines[i])
      continue;
    guint64 s = g_ascii_strtoull (lines[i], NULL, 10);
    if (i == 0 || s <= step)
      g_string_append_printf (out, "%s\n", lines[i]);
  }
  g_file_set_contents (path, out->str, out->len, NULL);
  g_strfreev (lines);
  g_string_free (out, TRUE);
  g_free (text);
}

static FILE *
open_log (NfTrainer *t, gboolean resumed)
{
  const NfRecipe *r = nf_trainer_recipe (t);
  char *path = g_build_filename (r->run_dir, "log.csv", NULL);
  gboolean exists = g_file_test (path, G_FILE_TEST_EXISTS);
  if (resumed && exists)
    trim_log (path, nf_trainer_steps_done (t));
  FILE *f = fopen (path, resumed && exists ? "a" : "w");
  if (!f) {
    fprintf (stderr, "nf-train: cannot write %s: %s\n", path, g_strerror (errno));
    exit (1);
  }
  if (!(resumed && exists)) {
    fprintf (f, "step,lr,total,content,style,tv,pixel");
    if (r->stability_weight > 0)
      fprintf (f, ",stability");
    if (r->stability_still_weight > 0)
      fprintf (f, ",stability_still");
    for (const char *const *l = nf_trainer_style_layer_names (t); *l; l++)
      fprintf (f, ",style_%s", *l);
    fprintf (f, ",images_per_s,elapsed_s\n");
  }
  g_free (path);
  return f;
}

/* Running sums of the losses over a window of steps. */
typedef struct {
  int n;
  NfTrainLosses sum;
  gint64 t0;
} Window;

static void
window_add (Window *w, const NfTrainLosses *L)
{
  w->n++;
  w->sum.total += L->total;
  w->sum.content += L->content;
  w->sum.style += L->style;
  w->sum.tv += L->tv;
  w->sum.pixel += L->pixel;
  w->sum.stability += L->stability;
  w->sum.stability_still += L->stability_still;
  w->sum.n_style = L->n_style;
  for (int i = 0; i < L->n_style; i++)
    w->sum.style_layer[i] += L->style_layer[i];
}

static void
window_reset (Window *w)
{
  memset (w, 0, sizeof (*w));
  w->t0 = g_get_monotonic_time ();
}

static char *
format_duration (double s)
{
  if (!isfinite (s) || s < 0)
    return g_strdup ("?");
  long m = (long) (s / 60.0 + 0.5);
  if (m >= 60 * 24)
    return g_strdup_printf ("%ldd%02ldh", m / (60 * 24), (m / 60) % 24);
  if (m >= 60)
    return g_strdup_printf ("%ldh%02ldm", m / 60, m % 60);
  return g_strdup_printf ("%.0fs", s);
}

/* ---- the run ------------------------------------------------------------------------------- */

static void
print_setup (NfTrainer *t, gboolean resumed)
{
  const NfRecipe *r = nf_trainer_recipe (t);
  NfDataset *ds = nf_trainer_dataset (t);
  const GArray *sk = nf_dataset_skipped (ds);
  char *scale = g_str_equal (r->task, "sr") ? g_strdup_printf (" x%d", r->scale) : g_strdup ("");
  printf ("%s %s: %s%s, backend %s, %zu parameters\n", resumed ? "resuming" : "training",
      r->name, r->arch, scale, nf_trainer_backend_name (t), nf_trainer_params (t)->n);
  g_free (scale);
  if (nf_trainer_device_note (t))
    printf ("%s\n", nf_trainer_device_note (t));
  printf ("data: %d %s files (%d in the other split, %d excluded, %u skipped)", nf_dataset_size
      (ds), r->split, nf_dataset_n_other_split (ds), nf_dataset_n_excluded (ds), sk->len);
  for (int i = 0; r->data[i]; i++)
    printf ("%s%s", i ? ", " : " from ", r->data[i]);
  printf ("\n");
  for (guint i = 0; i < sk->len && i < 12; i++) {
    const NfSkippedFile *s = &g_array_index (sk, NfSkippedFile, i);
    printf ("  skipped %s: %s\n", s->path, s->reason);
  }
  if (sk->len > 12)
    printf ("  ... and %u more skipped\n", sk->len - 12);
  printf ("steps %" G_GUINT64_FORMAT " -> %d, batch %d, crop %d, lr %g (%s), run folder %s\n",
      nf_trainer_steps_done (t), r->iters, r->batch, r->crop, r->lr, r->anneal, r->run_dir);
  if (resumed && r->extend_at > 0 && (guint64) r->extend_at == nf_trainer_steps_done (t))
    printf ("extended from step %d: the learning rate ramps from %.3g to the longer "
        "schedule's over %d steps (--rewarmup)\n", r->extend_at, r->extend_lr, r->rewarmup);
  fflush (stdout);
}

static gboolean
do_preview (NfTrainer *t)
{
  const NfRecipe *r = nf_trainer_recipe (t);
  char *dir = g_build_filename (r->run_dir, "preview", NULL);
  g_mkdir_with_parents (dir, 0755);
  char *name = g_strdup_printf ("step-%07" G_GUINT64_FORMAT ".png", nf_trainer_steps_done (t));
  char *path = g_build_filename (dir, name, NULL);
  char *summary = NULL;
  GError *e = NULL;
  gboolean ok = nf_trainer_preview (t, path, &summary, &e);
  if (ok) {
    printf ("step %" G_GUINT64_FORMAT ": %s -> %s\n", nf_trainer_steps_done (t), summary, path);
    char *txt = g_build_filename (r->run_dir, "previews.txt", NULL);
    FILE *f = fopen (txt, "a");
    if (f) {
      fprintf (f, "step %" G_GUINT64_FORMAT ": %s\n", nf_trainer_steps_done (t), summary);
      fclose (f);
    }
    g_free (txt);
  } else {
    fprintf (stderr, "nf-train: preview failed (training goes on): %s\n", e->message);
    g_error_free (e);
  }
  fflush (stdout);
  g_free (summary);
  g_free (path);
  g_free (name);
  g_free (dir);
  return ok;
}

static void
checkpoint (NfTrainer *t)
{
  GError *e = NULL;
  if (!nf_trainer_save_checkpoint (t, &e))
    nf_tool_fail (e, "the previous checkpoint, if any, is intact");
}

static int
run (NfTrainer *t, gboolean resumed)
{
  const NfRecipe *r = nf_trainer_recipe (t);
  print_setup (t, resumed);
  FILE *log = open_log (t, resumed);
  signal (SIGINT, on_signal);
  signal (SIGTERM, on_signal);
  Window pw, lw;
  window_reset (&pw);
  window_reset (&lw);
  double sec_per_step = NAN;
  GError *e = NULL;
  while (nf_trainer_steps_done (t) < (guint64) r->iters && !interrupted) {
    NfTrainLosses L;
    if (!nf_trainer_step (t, &L, &e)) {
      fprintf (stderr, "nf-train: step %" G_GUINT64_FORMAT " failed: %s\n",
          nf_trainer_steps_done (t) + 1, e->message);
      fprintf (stderr, "the last checkpoint is %s\n", nf_trainer_checkpoint_path (t));
      g_error_free (e);
      fclose (log);
      return 1;
    }
    guint64 s = nf_trainer_steps_done (t);
    window_add (&pw, &L);
    window_add (&lw, &L);
    if (s % r->log_every == 0 || s == (guint64) r->iters) {
      double dt = (g_get_monotonic_time () - lw.t0) / 1e6, n = lw.n;
      fprintf (log, "%" G_GUINT64_FORMAT ",%.6g,%.9g,%.9g,%.9g,%.9g,%.9g", s,
          nf_trainer_last_lr (t), lw.sum.total / n, lw.sum.content / n, lw.sum.style / n,
          lw.sum.tv / n, lw.sum.pixel / n);
      if (r->stability_weight > 0)
        fprintf (log, ",%.9g", lw.sum.stability / n);
      if (r->stability_still_weight > 0)
        fprintf (log, ",%.9g", lw.sum.stability_still / n);
      for (int i = 0; i < lw.sum.n_style; i++)
        fprintf (log, ",%.9g", lw.sum.style_layer[i] / n);
      fprintf (log, ",%.4g,%.1f\n", n * r->batch / dt, nf_trainer_elapsed (t));
      fflush (log);
      window_reset (&lw);
    }
    if (s % r->print_every == 0 || s == 1 || s == (guint64) r->iters) {
      double dt = (g_get_monotonic_time () - pw.t0) / 1e6, n = pw.n;
      double sps = dt / n;
      sec_per_step = isnan (sec_per_step) || s <= 1 ? sps : 0.7 * sec_per_step + 0.3 * sps;
      char *eta = format_duration (sec_per_step * (r->iters - (double) s));
      GString *terms = g_string_new (NULL);
      if (r->content_weight > 0)
        g_string_append_printf (terms, " content %.4g", r->content_weight * pw.sum.content / n);
      if (g_str_equal (r->task, "style"))
        g_string_append_printf (terms, " style %.4g", r->style_weight * pw.sum.style / n);
      if (r->pixel_weight > 0)
        g_string_append_printf (terms, " pixel %.4g", r->pixel_weight * pw.sum.pixel / n);
      if (r->tv_strength > 0)
        g_string_append_printf (terms, " tv %.4g",
            r->tv_strength * 3.0 * r->crop * r->crop * r->batch * pw.sum.tv / n);
      if (r->stability_weight > 0)
        g_string_append_printf (terms, " stability %.4g (mse %.3g)",
            r->stability_weight * pw.sum.stability / n, pw.sum.stability / n);
      if (r->stability_still_weight > 0)
        g_string_append_printf (terms, " still %.4g (mse %.3g)",
            r->stability_still_weight * pw.sum.stability_still / n,
            pw.sum.stability_still / n);
      printf ("step %" G_GUINT64_FORMAT "/%d  loss %.5g (%s )  lr %.3g  %.2f img/s  ETA %s\n",
          s, r->iters, pw.sum.total / n, terms->str + 1, nf_trainer_last_lr (t),
          r->batch / sps, eta);
      fflush (stdout);
      g_string_free (terms, TRUE);
      g_free (eta);
      window_reset (&pw);
    }
    gboolean last = s == (guint64) r->iters;
    if (r->preview_every > 0 && s % r->preview_every == 0 && !last)
      do_preview (t);
    if (r->checkpoint_every > 0 && s % r->checkpoint_every == 0 && !last) {
      checkpoint (t);
      window_reset (&pw);       /* do not count the write in the speed */
    }
  }
  fclose (log);
  checkpoint (t);
  guint64 s = nf_trainer_steps_done (t);
  if (s < (guint64) r->iters) {
    printf ("stopped at step %" G_GUINT64_FORMAT "/%d; checkpoint %s\n"
        "continue with: nf-train resume %s\n", s, r->iters, nf_trainer_checkpoint_path (t),
        r->run_dir);
    return 0;
  }
  do_preview (t);
  if (!nf_trainer_export (t, r->output, &e))
    nf_tool_fail (e, NULL);
  char *el = format_duration (nf_trainer_elapsed (t));
  printf ("done: %d steps in %s of training; weights %s\n", r->iters, el, r->output);
  g_free (el);
  return 0;
}

static int
benchmark (NfTrainer *t, int n)
{
  const NfRecipe *r = nf_trainer_recipe (t);
  GError *e = NULL;
  NfTrainLosses L;
  printf ("benchmark: %s, batch %d, %dx%d crops (%s input), backend %s, %s threads\n", r->arch,
      r->batch, r->crop, r->crop, g_str_equal (r->task, "sr") ? "LR" : "photo",
      nf_trainer_backend_name (t), g_getenv ("OMP_NUM_THREADS") ? g_getenv ("OMP_NUM_THREADS")
      : "default");
  if (nf_trainer_device_note (t))
    printf ("%s\n", nf_trainer_device_note (t));
  gint64 t0 = g_get_monotonic_time ();
  if (!nf_trainer_step (t, &L, &e))
    nf_tool_fail (e, NULL);
  printf ("warm-up step: %.2f s (loss %.5g)\n", (g_get_monotonic_time () - t0) / 1e6, L.total);
  t0 = g_get_monotonic_time ();
  for (int i = 0; i < n; i++)
    if (!nf_trainer_step (t, &L, &e))
      nf_tool_fail (e, NULL);
  double dt = (g_get_monotonic_time () - t0) / 1e6;
  printf ("%d steps: %.2f s/step, %.3f images/s (data wait %.2f s; loss %.5g)\n", n, dt / n,
      n * r->batch / dt, nf_trainer_data_wait (t), L.total);
  if (nf_trainer_skipped_steps (t))
    printf ("%" G_GUINT64_FORMAT " steps skipped by loss scaling (non-finite fp16 gradient)\n",
        nf_trainer_skipped_steps (t));
  return 0;
}

/* ---- subcommands ---------------------------------------------------------------------------- */

static int
cmd_train (const char *task, int argc, char **argv)
{
  GError *e = NULL;
  NfRecipe *r = nf_recipe_new (task, &e);
  parse (&argc, &argv, r, FALSE, g_str_equal (task, "style")
      ? "--style-image IMG --run DIR - train a style network"
      : "--run DIR - train a super-resolution network");
  char *tmp = NULL;
  if (opt_benchmark > 0 && !r->run_dir) {
    tmp = g_dir_make_tmp ("nf-train-bench-XXXXXX", NULL);
    r->run_dir = g_strdup (tmp);
  }
  if (!nf_recipe_finalize (r, &e))
    nf_tool_usage_error ("%s", e->message);
  if (opt_benchmark > 0)
    r->iters = MAX (r->iters, opt_benchmark + 1);
  NfTrainer *t = nf_trainer_new (r, NULL, &e);
  if (!t)
    nf_tool_fail (e, NULL);
  int rc = opt_benchmark > 0 ? benchmark (t, opt_benchmark) : run (t, FALSE);
  nf_trainer_free (t);
  if (tmp)
    g_rmdir (tmp);
  g_free (tmp);
  nf_recipe_free (r);
  return rc;
}

static NfRecipe *
recipe_of_run (const char *dir, char **ckpt)
{
  GError *e = NULL;
  *ckpt = g_build_filename (dir, "checkpoint.safetensors", NULL);
  if (!g_file_test (*ckpt, G_FILE_TEST_EXISTS)) {
    fprintf (stderr, "nf-train: %s has no checkpoint.safetensors (is it a run folder?)\n", dir);
    exit (1);
  }
  NfRecipe *r = nf_trainer_recipe_from_checkpoint (*ckpt, &e);
  if (!r)
    nf_tool_fail (e, NULL);
  /* the folder may have moved since: follow it, and the output when it was inside */
  char *now = g_canonicalize_filename (dir, NULL);
  char *prefix = g_strconcat (r->run_dir, G_DIR_SEPARATOR_S, NULL);
  if (r->output && g_str_has_prefix (r->output, prefix)) {
    char *moved = g_build_filename (now, r->output + strlen (prefix), NULL);
    g_free (r->output);
    r->output = moved;
  }
  g_free (prefix);
  g_free (r->run_dir);
  r->run_dir = now;
  return r;
}

/* The run folder after the subcommand, shifted off argv (argv[0] stays the program): its
 * recipe and checkpoint. A missing folder is a usage error (usage). */
static NfRecipe *
take_run (int *argc, char ***argv, const char *usage, char **ckpt)
{
  if (*argc < 2 || (*argv)[1][0] == '-')
    nf_tool_usage_error ("%s", usage);
  NfRecipe *r = recipe_of_run ((*argv)[1], ckpt);
  (*argv)[1] = (*argv)[0];
  (*argc)--;
  (*argv)++;
  return r;
}

static int
cmd_resume (int argc, char **argv)
{
  char *ckpt;
  NfRecipe *r = take_run (&argc, &argv, "resume needs the run folder: nf-train resume DIR",
      &ckpt);
  char *old_output = g_strdup (r->output);
  int old_iters = r->iters;
  parse (&argc, &argv, r, TRUE, "DIR - continue a stopped run");
  GError *e = NULL;
  if (!nf_recipe_finalize (r, &e))
    nf_tool_usage_error ("%s", e->message);
  NfTrainer *t = nf_trainer_new (r, ckpt, &e);
  if (!t)
    nf_tool_fail (e, NULL);
  nf_trainer_mark_extension (t, old_iters);
  int rc = opt_benchmark > 0 ? benchmark (t, opt_benchmark) : run (t, TRUE);
  nf_trainer_free (t);
  g_free (old_output);
  g_free (ckpt);
  nf_recipe_free (r);
  return rc;
}

static int
cmd_export (int argc, char **argv)
{
  char *ckpt;
  NfRecipe *r = take_run (&argc, &argv,
      "export needs the run folder: nf-train export DIR [-o FILE]", &ckpt);
  GOptionEntry entries[] = {
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &opt_export_out,
        "Weight file (default: the run's --output)", "FILE"},
    {NULL}
  };
  GOptionContext *ctx = g_option_context_new ("DIR - weight file from a run's checkpoint");
  g_option_context_add_main_entries (ctx, entries, NULL);
  nf_tool_parse (ctx, &argc, &argv, FALSE);
  GError *e = NULL;
  if (opt_export_out) {
    g_free (r->output);
    r->output = opt_export_out;
  }
  r->preview_count = 0;
  if (!nf_recipe_finalize (r, &e))
    nf_tool_usage_error ("%s", e->message);
  NfTrainer *t = nf_trainer_new (r, ckpt, &e);
  if (!t || !nf_trainer_export (t, r->output, &e))
    nf_tool_fail (e, NULL);
  printf ("wrote %s (step %" G_GUINT64_FORMAT " of %d)\n", r->output,
      nf_trainer_steps_done (t), r->iters);
  nf_trainer_free (t);
  g_free (ckpt);
  nf_recipe_free (r);
  return 0;
}

static int
cmd_split (int argc, char **argv)
{
  char **dirs = NULL, **exclude = NULL;
  int val_percent = 10;
  GOptionEntry entries[] = {
    {"data", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &dirs, "Image folder (repeatable)", "DIR"},
    {"val-percent", 0, 0, G_OPTION_ARG_INT, &val_percent, "Validation percentage (10)", "P"},
    {"exclude", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &exclude, "Leave out this name", "NAME"},
    {NULL}
  };
  GOptionContext *ctx = g_option_context_new ("- list the validation split of image folders");
  g_option_context_add_main_entries (ctx, entries, NULL);
  nf_tool_parse (ctx, &argc, &argv, FALSE);
  GError *e = NULL;
  if (!dirs) {
    char *shared = nf_shared_data_dir ();
    dirs = g_new0 (char *, 3);
    dirs[0] = g_build_filename (shared, "photos", NULL);
    dirs[1] = g_build_filename (shared, "sr-train", NULL);
    g_free (shared);
  }
  for (int i = 0; dirs[i]; i++) {
    const char *one[2] = { dirs[i], NULL };
    NfDatasetOptions o = {.split = NF_SPLIT_VAL,.val_percent = val_percent,
      .exclude = (const char *const *) exclude,.min_side = 1
    };
    NfDataset *v = nf_dataset_open (one, &o, &e);
    if (!v)
      nf_tool_fail (e, NULL);
    printf ("%s: %d validation files, %d training files (FNV-1a-32 of the name mod 100 < %d)\n",
        dirs[i], nf_dataset_size (v), nf_dataset_n_other_split (v), val_percent);
    for (int k = 0; k < nf_dataset_size (v); k++)
      printf ("  %s\n", nf_dataset_path (v, k));
    nf_dataset_free (v);
  }
  g_strfreev (dirs);
  g_strfreev (exclude);
  return 0;
}

/* Rewrites the paths in weight files' training metadata to the portable form the trainer
 * now records (relative to the source root, else the file name); tensors untouched. */
static int
cmd_relabel (int argc, char **argv)
{
  if (argc < 2 || argv[1][0] == '-')
    nf_tool_usage_error ("relabel needs weight files: nf-train relabel FILE...");
  int rc = 0;
  for (int i = 1; i < argc; i++) {
    guint n;
    GError *e = NULL;
    if (!nf_relabel_file (argv[i], &n, &e)) {
      fprintf (stderr, "nf-train: %s\n", e->message);
      g_error_free (e);
      rc = 1;
    } else if (n) {
      printf ("%s: %u path%s made portable (tensors unchanged)\n", argv[i], n,
          n == 1 ? "" : "s");
    } else {
      printf ("%s: no absolute path to change, left as it is\n", argv[i]);
    }
  }
  return rc;
}

int
main (int argc, char **argv)
{
  nf_tool_set_name ("nf-train", "Try 'nf-train --help' or 'nf-train style --help-all'.");
  if (argc < 2 || g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")) {
    printf ("%s\n", usage_text);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  argv[1] = argv[0];
  if (g_str_equal (cmd, "style") || g_str_equal (cmd, "sr"))
    return cmd_train (cmd, argc - 1, argv + 1);
  if (g_str_equal (cmd, "resume"))
    return cmd_resume (argc - 1, argv + 1);
  if (g_str_equal (cmd, "export"))
    return cmd_export (argc - 1, argv + 1);
  if (g_str_equal (cmd, "split"))
    return cmd_split (argc - 1, argv + 1);
  if (g_str_equal (cmd, "relabel"))
    return cmd_relabel (argc - 1, argv + 1);
  nf_tool_usage_error ("unknown command \"%s\" (style, sr, resume, export, split, relabel)", cmd);
}
