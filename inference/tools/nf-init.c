/* nf-init.c — writes a model file of one of the standard architectures with seeded
 * random weights (a training start, or a model for tests and benchmarks).
 *
 *   nf-init --arch ARCH (nf-arch.h: style-*, sr-*) [--scale N] [--width C]
 *           [--blocks N] [--input-blur SIGMA] [--seed S] [--dtype f32|f16]
 *           [--name NAME] -o model.safetensors
 *
 * What it does: nf_arch_new_model + nf_model_save, and prints the parameter count.
 * What it does not: train (training/ does), or convert other checkpoints.
 * Exit codes: 0 done, 1 the model could not be built or written, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "nf-arch.h"
#include "nf-error.h"
#include "nf-model.h"
#include "nf-tool-options.h"

int
main (int argc, char **argv)
{
  nf_tool_set_name ("nf-init", NULL);
  char *arch = NULL, *dtype_s = NULL, *name = NULL, *out = NULL, *seed_s = NULL;
  int scale = 0, width = 0, blocks = 0;
  double blur = 0;
  GOptionEntry entries[] = {
    { "arch", 'a', 0, G_OPTION_ARG_STRING, &arch,
      "Architecture: style-full, style-slim, style-rt, style-rt-multi, sr-johnson, "
      "sr-subpixel, sr-light, sr-light-y", "ARCH" },
    { "scale", 's', 0, G_OPTION_ARG_INT, &scale,
      "Upscale factor of a superres architecture (sr-johnson: 2 or 4, sr-subpixel: 2..4; "
      "default 2)", "N" },
    { "width", 'c', 0, G_OPTION_ARG_INT, &width, "Base channel count (default: the arch's)",
      "C" },
    { "blocks", 'b', 0, G_OPTION_ARG_INT, &blocks,
      "Residual blocks (default: the arch's)", "N" },
    { "input-blur", 0, 0, G_OPTION_ARG_DOUBLE, &blur,
      "Style networks: a fixed Gaussian input blur of this sigma in pixels (0: none)", "S" },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &seed_s, "Random seed of the weights (default 1)",
      "S" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_s, "Stored precision: f32 (default) or f16",
      "f32|f16" },
    { "name", 'n', 0, G_OPTION_ARG_STRING, &name, "Model name in the metadata", "NAME" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Model file to write", "FILE" },
    { NULL }
  };
  GOptionContext *ctx = g_option_context_new ("- write a model with seeded random weights");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx,
      "Example:\n  nf-init --arch sr-subpixel --scale 3 --seed 7 -o sr3.safetensors\n");
  nf_tool_parse (ctx, &argc, &argv, TRUE);
  GError *err = NULL;
  if (!arch)
    nf_tool_usage_error ("--arch is required (style-slim, style-full, style-rt, sr-johnson, "
        "sr-subpixel, sr-light, sr-light-y, ...)");
  if (!out)
    nf_tool_usage_error ("-o FILE (the model file to write) is required");

  gboolean known = FALSE;
  for (const char *const *a = nf_arch_names (); *a; a++)
    known |= g_str_equal (*a, arch);
  if (!known) {
    char *list = g_strjoinv (", ", (char **) nf_arch_names ());
    nf_tool_usage_error ("unknown architecture \"%s\" (known: %s)", arch, list);
  }
  gboolean sr = g_str_has_prefix (arch, "sr-");
  if (!sr && scale > 1)
    nf_tool_usage_error ("--scale applies to superres architectures only; %s keeps the size", arch);
  if (sr && scale == 0)
    scale = 2;
  if (scale < 0 || width < 0 || blocks < 0)
    nf_tool_usage_error ("--scale, --width and --blocks must be positive");

  guint64 seed = 1;
  if (seed_s) {
    char *end = NULL;
    seed = g_ascii_strtoull (seed_s, &end, 10);
    if (end == seed_s || *end)
      nf_tool_usage_error ("--seed \"%s\" is not a non-negative integer", seed_s);
  }
  NfDtype dtype = NF_DTYPE_F32;
  if (dtype_s && g_ascii_strcasecmp (dtype_s, "f16") == 0)
    dtype = NF_DTYPE_F16;
  else if (dtype_s && g_ascii_strcasecmp (dtype_s, "f32") != 0)
    nf_tool_usage_error ("--dtype must be f32 or f16, not \"%s\"", dtype_s);

  NfArchSpec spec = { .arch = arch, .scale = sr ? scale : 1, .width = width, .n_res = blocks,
    .input_blur = blur };
  NfModel *m = nf_arch_new_model (&spec, seed, &err);
  if (!m) {
    fprintf (stderr, "nf-init: cannot build %s: %s\n", arch, err->message);
    return err->code == NF_ERROR_ARGUMENT ? 2 : 1;
  }
  if (name)
    nf_model_set_metadata (m, "name", name);

  /* Parameters = what training changes; batch-norm running statistics counted apart. */
  guint64 n_params = 0, n_stats = 0;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, m->tensors);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    const NfModelTensor *t = v;
    guint64 n = 1;
    for (int d = 0; d < t->ndim; d++)
      n *= (guint64) t->dims[d];
    if (g_str_has_suffix (k, ".running_mean") || g_str_has_suffix (k, ".running_var"))
      n_stats += n;
    else
      n_params += n;
  }

  if (!nf_model_save (m, out, dtype, &err)) {
    fprintf (stderr, "nf-init: cannot write the model: %s\n", err->message);
    g_error_free (err);
    nf_model_free (m);
    return 1;
  }
  printf ("%s: %s", out, arch);
  if (sr)
    printf (" x%d", scale);
  printf (", %" G_GUINT64_FORMAT " parameters", n_params);
  if (n_stats)
    printf (" (+%" G_GUINT64_FORMAT " batch-norm running statistics)", n_stats);
  printf (", %s, seed %" G_GUINT64_FORMAT ", input sizes multiple of %d\n",
      dtype == NF_DTYPE_F16 ? "f16" : "f32", seed, m->size_multiple);
  nf_model_free (m);
  g_free (arch);
  g_free (dtype_s);
  g_free (name);
  g_free (out);
  g_free (seed_s);
  return 0;
}
