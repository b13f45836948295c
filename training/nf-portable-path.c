/* nf-portable-path.c — portable paths for weight-file metadata (see nf-portable-path.h).
 *
 * What it does: maps absolute paths to root-relative ones or file names and back, using
 * the source root compiled in as NF_SOURCE_ROOT.
 * What it does not: touch the file system.
 */
#include "nf-portable-path.h"

#include <string.h>

#ifndef NF_SOURCE_ROOT
#define NF_SOURCE_ROOT "."
#endif

char *
nf_source_root (void)
{
  return g_canonicalize_filename (NF_SOURCE_ROOT, NULL);
}

/* The part of path after dir + "/", or NULL when path is not below dir. */
static const char *
below (const char *path, const char *dir)
{
  size_t n = strlen (dir);
  if (n > 1 && strncmp (path, dir, n) == 0 && path[n] == G_DIR_SEPARATOR && path[n + 1])
    return path + n + 1;
  return NULL;
}

char *
nf_portable_path (const char *path)
{
  if (!path || !g_path_is_absolute (path))
    return g_strdup (path);
  char *p = g_canonicalize_filename (path, NULL);
  char *root = nf_source_root ();
  char *parent = g_path_get_dirname (root);
  const char *rest;
  char *out;
  if (g_str_equal (p, root))
    out = g_strdup (".");
  else if ((rest = below (p, root)))
    out = g_strdup (rest);
  else if ((rest = below (p, parent)))       /* below() refuses the parent "/" */
    out = g_build_filename ("..", rest, NULL);
  else
    out = g_path_get_basename (p);
  g_free (parent);
  g_free (root);
  g_free (p);
  return out;
}

char *
nf_portable_path_resolve (const char *path)
{
  if (!path || g_path_is_absolute (path))
    return g_strdup (path);
  char *root = nf_source_root ();
  char *p = g_canonicalize_filename (path, root);
  g_free (root);
  return p;
}
