/* nf-safetensors.h — reading and writing the safetensors container.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON, then raw little-endian
 * tensor bytes. The JSON maps tensor names to {"dtype", "shape", "data_offsets":[b,e]}
 * (offsets relative to the data section) and may hold "__metadata__" (string->string).
 *
 * What it does: validates everything (header length vs file size, JSON shape, dtype
 * known, shape non-negative and product consistent with the byte range, offsets in range,
 * tensors non-overlapping), and converts F32/F16/BF16/F64 to float on request.
 * Writes F32 (or F16) files with metadata.
 * What it does not: know what a graph or a model is (nf-model does).
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "nf-tensor.h"

G_BEGIN_DECLS

typedef enum {
  NF_DTYPE_F32,
  NF_DTYPE_F16,
  NF_DTYPE_BF16,
  NF_DTYPE_F64,
} NfDtype;

#define NF_MAX_DIMS 8

typedef struct {
  char *name;
  NfDtype dtype;
  int ndim;
  int64_t dims[NF_MAX_DIMS];
  uint64_t begin, end;          /* byte range within the data section */
} NfStEntry;

typedef struct NfSafetensors NfSafetensors;

/* Parses a whole file held in memory; takes ownership of nothing (copies). */
NfSafetensors *nf_safetensors_parse (const guint8 *bytes, gsize len, GError **error);
NfSafetensors *nf_safetensors_load (const char *path, GError **error);
void nf_safetensors_free (NfSafetensors *st);

guint nf_safetensors_n_tensors (const NfSafetensors *st);
const NfStEntry *nf_safetensors_entry (const NfSafetensors *st, guint i);
const NfStEntry *nf_safetensors_find (const NfSafetensors *st, const char *name);
/* NULL when absent. */
const char *nf_safetensors_metadata (const NfSafetensors *st, const char *key);
GHashTable *nf_safetensors_metadata_table (const NfSafetensors *st);

size_t nf_st_entry_numel (const NfStEntry *e);
/* Converts the tensor to a freshly allocated float array (nf_free). */
float *nf_safetensors_get_floats (const NfSafetensors *st, const NfStEntry *e, GError **error);

/* Writer: collect tensors and metadata, then write. Data is copied on add. */
typedef struct NfStWriter NfStWriter;
NfStWriter *nf_st_writer_new (void);
void nf_st_writer_free (NfStWriter *w);
void nf_st_writer_set_metadata (NfStWriter *w, const char *key, const char *value);
/* dims: ndim values; data: numel floats; stored as dtype (F32 or F16). */
void nf_st_writer_add (NfStWriter *w, const char *name, NfDtype dtype, int ndim,
    const int64_t *dims, const float *data);
gboolean nf_st_writer_write (NfStWriter *w, const char *path, GError **error);
/* The serialised file in memory (for tests). */
GBytes *nf_st_writer_to_bytes (NfStWriter *w);

G_END_DECLS
