/* nf-safetensors-private.h — the dtype helpers the safetensors reader
 * (nf-safetensors.c) and writer (nf-safetensors-writer.c) share.
 *
 * What it does not: anything public; include only from those two files.
 */
#pragma once

#include "nf-safetensors.h"

G_BEGIN_DECLS

/* Bytes per element of d (0 for an unknown value). */
gsize nf_st_dtype_size (NfDtype d);
/* "F32", "F16", "BF16", "F64" ("?" for an unknown value). */
const char *nf_st_dtype_name (NfDtype d);
/* numel = product of dims, nbytes = numel * elem; FALSE on a negative dim or overflow. */
gboolean nf_st_checked_nbytes (const int64_t *dims, int ndim, gsize elem, guint64 *numel,
    guint64 *nbytes);

G_END_DECLS
