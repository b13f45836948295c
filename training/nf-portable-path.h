/* nf-portable-path.h — file paths as a weight file's "training" metadata records them, so
 * that a committed weight file reads the same on every machine and clone.
 *
 * A path under the source tree's parent folder is written relative to the source root
 * (NF_SOURCE_ROOT, the repository): "../shared/data/sr-train", "weights/x.safetensors".
 * Any other absolute path is cut to its file name (the SHA-256 of the style image, loss
 * network and init file is recorded beside it). Reading resolves relative paths against
 * the source root again, so a tool finds the data from any current directory.
 *
 * What it does not: check that files exist, or resolve symbolic links (the mapping is
 * lexical, on g_canonicalize_filename's form).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The source root as an absolute, canonical path (g_free). */
char *nf_source_root (void);

/* The portable form of path (g_free; NULL for NULL). Relative paths are returned as they
 * are: they are taken to be portable already. */
char *nf_portable_path (const char *path);

/* The inverse for reading: a relative path resolved against the source root, an absolute
 * one unchanged (g_free; NULL for NULL). A bare file name resolves into the root, where it
 * is usually absent: the caller's "cannot open" error then names the file. */
char *nf_portable_path_resolve (const char *path);

G_END_DECLS
