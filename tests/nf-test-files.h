/* nf-test-files.h — fixture files the training tests share: a small random VGG loss
 * network written to a folder, and removing a temporary folder tree.
 *
 * Header only (static inline), so each test executable takes what it uses without a
 * library of its own. What it does not: photos or paintings (each test draws its own).
 */
#ifndef NF_TEST_FILES_H
#define NF_TEST_FILES_H

#include <glib.h>
#include <glib/gstdio.h>

#include "nf-model.h"
#include "nf-vgg.h"

/* A two-block VGG (2 + 2 convs, 8 and 12 channels, seed 5) saved as
 * DIR/vgg-random.safetensors: its path, or NULL + error. */
static inline char *
nf_test_write_random_vgg (const char *dir, GError **error)
{
  int convs[2] = { 2, 2 }, widths[2] = { 8, 12 };
  NfVgg *v = nf_vgg_new_random (2, convs, widths, NULL, 5, error);
  if (!v)
    return NULL;
  char *path = g_build_filename (dir, "vgg-random.safetensors", NULL);
  gboolean ok = nf_model_save (v->model, path, NF_DTYPE_F32, error);
  nf_vgg_free (v);
  if (!ok)
    g_clear_pointer (&path, g_free);
  return path;
}

/* Removes p, a file or a folder with everything below it. */
static inline void
nf_test_rm_tree (const char *p)
{
  if (g_file_test (p, G_FILE_TEST_IS_DIR)) {
    GDir *d = g_dir_open (p, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name (d))) {
      char *c = g_build_filename (p, n, NULL);
      nf_test_rm_tree (c);
      g_free (c);
    }
    if (d)
      g_dir_close (d);
    g_rmdir (p);
  } else {
    g_unlink (p);
  }
}

#endif
