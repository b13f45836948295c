/* nf-test-tree.h — removing a test's temporary folder tree (GLib only, so the element
 * tests can use it without the training headers of nf-test-files.h).
 *
 * Header only (static inline). What it does not: make the folder (g_dir_make_tmp does).
 */
#ifndef NF_TEST_TREE_H
#define NF_TEST_TREE_H

#include <glib.h>
#include <glib/gstdio.h>

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
