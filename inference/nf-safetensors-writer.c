/* nf-safetensors-writer.c — writing safetensors files (nf_st_writer_*).
 *
 * What it does: collects tensors (converted to F32, F16, BF16 or F64 little-endian bytes
 * as they are added) and string metadata, reports the first invalid add or set when
 * written, and writes the header padded with spaces so that the data section starts
 * 8-byte aligned, "__metadata__" first, tensors contiguous in insertion order,
 * atomically (g_file_set_contents).
 * What it does not: read or validate files (nf-safetensors.c).
 */
#include "nf-safetensors.h"

#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>

#include "nf-error.h"
#include "nf-safetensors-private.h"

/* ---- writer ------------------------------------------------------------------------ */

typedef struct {
  char *name;
  NfDtype dtype;
  int ndim;
  int64_t dims[NF_MAX_DIMS];
  guint8 *bytes;                /* little-endian, already converted */
  gsize nbytes;
} WTensor;

struct NfStWriter {
  GPtrArray *tensors;           /* WTensor*, insertion order */
  GHashTable *names;            /* tensor names (owned by tensors) */
  GPtrArray *meta_keys;         /* insertion order, owned by meta */
  GHashTable *meta;             /* key -> value, both owned */
  GError *error;                /* first invalid add/set, reported by write */
};

static void
wtensor_free (gpointer p)
{
  WTensor *t = p;
  g_free (t->name);
  g_free (t->bytes);
  g_free (t);
}

NfStWriter *
nf_st_writer_new (void)
{
  NfStWriter *w = g_new0 (NfStWriter, 1);
  w->tensors = g_ptr_array_new_with_free_func (wtensor_free);
  w->names = g_hash_table_new (g_str_hash, g_str_equal);
  w->meta_keys = g_ptr_array_new ();
  w->meta = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return w;
}

void
nf_st_writer_free (NfStWriter *w)
{
  if (!w)
    return;
  g_hash_table_unref (w->names);
  g_ptr_array_unref (w->tensors);
  g_ptr_array_unref (w->meta_keys);
  g_hash_table_unref (w->meta);
  g_clear_error (&w->error);
  g_free (w);
}

static void
writer_fail (NfStWriter *w, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
writer_fail (NfStWriter *w, const char *fmt, ...)
{
  if (w->error)
    return;
  va_list ap;
  va_start (ap, fmt);
  char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  w->error = g_error_new_literal (NF_ERROR, NF_ERROR_ARGUMENT, msg);
  g_free (msg);
}

void
nf_st_writer_set_metadata (NfStWriter *w, const char *key, const char *value)
{
  if (!w)
    return;
  if (!key || !value) {
    writer_fail (w, "metadata key or value is NULL");
    return;
  }
  if (!g_utf8_validate (key, -1, NULL) || !g_utf8_validate (value, -1, NULL)) {
    writer_fail (w, "metadata key or value for '%s' is not valid UTF-8", key);
    return;
  }
  gpointer old_key;
  if (g_hash_table_lookup_extended (w->meta, key, &old_key, NULL)) {
    g_hash_table_insert (w->meta, g_strdup (old_key), g_strdup (value));
    /* insert keeps the old key string, so the pointer in meta_keys stays valid */
    return;
  }
  char *k = g_strdup (key);
  g_hash_table_insert (w->meta, k, g_strdup (value));
  g_ptr_array_add (w->meta_keys, k);
}

static guint16
float_to_bf16 (float f)
{
  guint32 x;
  memcpy (&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return (guint16) ((x >> 16) | 0x40);        /* quiet NaN */
  x += 0x7fffu + ((x >> 16) & 1);               /* round to nearest even */
  return (guint16) (x >> 16);
}

void
nf_st_writer_add (NfStWriter *w, const char *name, NfDtype dtype, int ndim,
    const int64_t *dims, const float *data)
{
  if (!w)
    return;
  if (!name || !g_utf8_validate (name, -1, NULL) || strcmp (name, "__metadata__") == 0) {
    writer_fail (w, "tensor name '%s' is not allowed", name ? name : "(null)");
    return;
  }
  if (g_hash_table_contains (w->names, name)) {
    writer_fail (w, "tensor '%s' added twice", name);
    return;
  }
  if (nf_st_dtype_size (dtype) == 0) {
    writer_fail (w, "tensor '%s': unknown dtype %d", name, (int) dtype);
    return;
  }
  if (ndim < 0 || ndim > NF_MAX_DIMS || (ndim > 0 && !dims)) {
    writer_fail (w, "tensor '%s': %d dimensions (0 to %d allowed)", name, ndim,
        NF_MAX_DIMS);
    return;
  }
  guint64 numel, nbytes;
  if (!nf_st_checked_nbytes (dims, ndim, nf_st_dtype_size (dtype), &numel, &nbytes)) {
    writer_fail (w, "tensor '%s': negative dimension or size overflow", name);
    return;
  }
  if (numel > 0 && !data) {
    writer_fail (w, "tensor '%s': no data", name);
    return;
  }
  guint8 *bytes = g_try_malloc (MAX (nbytes, 1));
  if (!bytes) {
    writer_fail (w, "tensor '%s': out of memory (%" G_GUINT64_FORMAT " bytes)", name,
        nbytes);
    return;
  }
  for (guint64 i = 0; i < numel; i++) {
    switch (dtype) {
      case NF_DTYPE_F32:{
        guint32 u;
        memcpy (&u, &data[i], 4);
        u = GUINT32_TO_LE (u);
        memcpy (bytes + 4 * i, &u, 4);
        break;
      }
      case NF_DTYPE_F16:{
        guint16 u = GUINT16_TO_LE (nf_float_to_half (data[i]));
        memcpy (bytes + 2 * i, &u, 2);
        break;
      }
      case NF_DTYPE_BF16:{
        guint16 u = GUINT16_TO_LE (float_to_bf16 (data[i]));
        memcpy (bytes + 2 * i, &u, 2);
        break;
      }
      case NF_DTYPE_F64:{
        double d = data[i];
        guint64 u;
        memcpy (&u, &d, 8);
        u = GUINT64_TO_LE (u);
        memcpy (bytes + 8 * i, &u, 8);
        break;
      }
    }
  }
  WTensor *t = g_new0 (WTensor, 1);
  t->name = g_strdup (name);
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    t->dims[i] = dims[i];
  t->bytes = bytes;
  t->nbytes = (gsize) nbytes;
  g_ptr_array_add (w->tensors, t);
  g_hash_table_add (w->names, t->name);
}

GBytes *
nf_st_writer_to_bytes (NfStWriter *w)
{
  if (!w || w->error)
    return NULL;
  JsonBuilder *b = json_builder_new ();
  json_builder_begin_object (b);
  if (w->meta_keys->len > 0) {
    json_builder_set_member_name (b, "__metadata__");
    json_builder_begin_object (b);
    for (guint i = 0; i < w->meta_keys->len; i++) {
      const char *k = g_ptr_array_index (w->meta_keys, i);
      json_builder_set_member_name (b, k);
      json_builder_add_string_value (b, g_hash_table_lookup (w->meta, k));
    }
    json_builder_end_object (b);
  }
  guint64 offset = 0;
  for (guint i = 0; i < w->tensors->len; i++) {
    WTensor *t = g_ptr_array_index (w->tensors, i);
    json_builder_set_member_name (b, t->name);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "dtype");
    json_builder_add_string_value (b, nf_st_dtype_name (t->dtype));
    json_builder_set_member_name (b, "shape");
    json_builder_begin_array (b);
    for (int d = 0; d < t->ndim; d++)
      json_builder_add_int_value (b, t->dims[d]);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "data_offsets");
    json_builder_begin_array (b);
    json_builder_add_int_value (b, (gint64) offset);
    json_builder_add_int_value (b, (gint64) (offset + t->nbytes));
    json_builder_end_array (b);
    json_builder_end_object (b);
    offset += t->nbytes;
  }
  json_builder_end_object (b);

  JsonNode *root = json_builder_get_root (b);
  JsonGenerator *gen = json_generator_new ();
  json_generator_set_root (gen, root);
  gsize jlen = 0;
  char *json = json_generator_to_data (gen, &jlen);
  g_object_unref (gen);
  json_node_unref (root);
  g_object_unref (b);

  gsize hlen = (jlen + 7) & ~(gsize) 7;  /* data section starts 8-byte aligned */
  gsize total = 8 + hlen + (gsize) offset;
  guint8 *out = g_malloc (total);
  guint64 le = GUINT64_TO_LE ((guint64) hlen);
  memcpy (out, &le, 8);
  memcpy (out + 8, json, jlen);
  memset (out + 8 + jlen, ' ', hlen - jlen);
  guint8 *p = out + 8 + hlen;
  for (guint i = 0; i < w->tensors->len; i++) {
    WTensor *t = g_ptr_array_index (w->tensors, i);
    if (t->nbytes)
      memcpy (p, t->bytes, t->nbytes);
    p += t->nbytes;
  }
  g_free (json);
  return g_bytes_new_take (out, total);
}

gboolean
nf_st_writer_write (NfStWriter *w, const char *path, GError **error)
{
  if (!w || !path) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "no writer or path given");
    return FALSE;
  }
  if (w->error) {
    g_set_error (error, NF_ERROR, w->error->code, "cannot write '%s': %s", path,
        w->error->message);
    return FALSE;
  }
  GBytes *bytes = nf_st_writer_to_bytes (w);
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  GError *ferr = NULL;
  gboolean ok = g_file_set_contents (path, data, (gssize) len, &ferr);
  if (!ok) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "could not write '%s': %s", path,
        ferr->message);
    g_error_free (ferr);
  }
  g_bytes_unref (bytes);
  return ok;
}
