/* nf-error.h — the library's GError domain and codes.
 * Every fallible call in inference/ and training/ reports through these. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define NF_ERROR (nf_error_quark ())
GQuark nf_error_quark (void);

typedef enum {
  NF_ERROR_IO,                  /* file could not be read or written */
  NF_ERROR_FORMAT,              /* malformed safetensors container */
  NF_ERROR_GRAPH,               /* graph JSON missing, malformed or inconsistent */
  NF_ERROR_WEIGHTS,             /* tensor missing, or its shape does not fit the graph */
  NF_ERROR_SHAPE,               /* input size the network cannot take */
  NF_ERROR_BACKEND,             /* backend failed (oneDNN, CUDA, out of memory) */
  NF_ERROR_UNSUPPORTED,         /* valid request this build/backend cannot do */
  NF_ERROR_ARGUMENT,            /* bad argument from the caller */
} NfErrorCode;

G_END_DECLS
