/* nf-model-find.c — where a model setting's file is (see nf-model-find.h).
 *
 * What it does: a path as given (".safetensors" added when missing), or a bare name in
 * the folders of $NEURALFILTER_MODEL_PATH, then the install folder; errors that list
 * every place looked at.
 * What it does not: open or check the file (nf_model_load does), or choose a model.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "nf-model-find.h"
#include "nf-model-runner.h"

#include <string.h>

static gboolean
is_file (const gchar * path)
{
  return g_file_test (path, G_FILE_TEST_IS_REGULAR);
}

GPtrArray *
nf_model_dirs (const gchar * weights_dir)
{
  GPtrArray *dirs = g_ptr_array_new_with_free_func (g_free);
  const gchar *env = g_getenv ("NEURALFILTER_MODEL_PATH");
  if (env) {
    gchar **parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
    for (gchar ** p = parts; *p; p++)
      if (**p)
        g_ptr_array_add (dirs, g_strdup (*p));
    g_strfreev (parts);
  }
  g_ptr_array_add (dirs, g_strdup (weights_dir));
  return dirs;
}

gchar *
nf_model_find_file (const gchar * value, const gchar * weights_dir, GError ** error)
{
  if (value == NULL || value[0] == '\0') {
    g_set_error (error, NF_RUNNER_ERROR, NF_RUNNER_ERROR_NO_MODEL,
        "No model is set: set the model property to a .safetensors model file "
        "or to the name of a model shipped in %s.", weights_dir);
    return NULL;
  }

  gchar *with_ext = g_str_has_suffix (value, ".safetensors") ? NULL
      : g_strconcat (value, ".safetensors", NULL);
  GString *tried = g_string_new (NULL);
  gchar *found = NULL;

  const gchar *direct[2] = { value, with_ext };
  for (int i = 0; i < 2 && !found; i++) {
    if (!direct[i])
      continue;
    if (is_file (direct[i]))
      found = g_strdup (direct[i]);
    else
      g_string_append_printf (tried, "%s%s", tried->len ? ", " : "", direct[i]);
  }

  /* A bare name (no directory part) is also looked up in the model folders. */
  if (!found && !strchr (value, G_DIR_SEPARATOR)) {
    GPtrArray *dirs = nf_model_dirs (weights_dir);
    for (guint d = 0; d < dirs->len && !found; d++) {
      for (int i = 0; i < 2 && !found; i++) {
        if (!direct[i])
          continue;
        gchar *p = g_build_filename (g_ptr_array_index (dirs, d), direct[i], NULL);
        if (is_file (p))
          found = p;
        else {
          g_string_append_printf (tried, ", %s", p);
          g_free (p);
        }
      }
    }
    g_ptr_array_unref (dirs);
  }

  if (!found)
    g_set_error (error, NF_RUNNER_ERROR, NF_RUNNER_ERROR_NOT_FOUND,
        "Could not find the model \"%s\" (looked for %s). Set the model property to "
        "an existing .safetensors file, or to the name of a model in a folder of "
        "$NEURALFILTER_MODEL_PATH or in %s.", value, tried->str, weights_dir);
  g_string_free (tried, TRUE);
  g_free (with_ext);
  return found;
}
