/* nf-model-find.h — where a model setting's file is: a path, or a name looked up in the
 * model folders. Used by the elements' model runner (nf-model-runner.c).
 *
 * What it does not: load or check a model, or choose one.
 */
#ifndef NF_MODEL_FIND_H
#define NF_MODEL_FIND_H

#include <glib.h>

G_BEGIN_DECLS

/* The folders a bare model name is looked up in: $NEURALFILTER_MODEL_PATH's (in order),
 * then weights_dir. Free with g_ptr_array_unref. */
GPtrArray *nf_model_dirs (const gchar * weights_dir);

/* "a file, or a name in $NEURALFILTER_MODEL_PATH or weights_dir": the file for a model
 * setting, or NULL + error (NF_RUNNER_ERROR_NO_MODEL / _NOT_FOUND, listing where it
 * looked). */
gchar *nf_model_find_file (const gchar * value, const gchar * weights_dir, GError ** error);

G_END_DECLS

#endif
