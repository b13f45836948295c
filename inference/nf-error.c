/* nf-error.c — the NF_ERROR GError domain. */
#include "nf-error.h"

G_DEFINE_QUARK (nf-error-quark, nf_error)
