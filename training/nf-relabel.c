/* nf-relabel.c — portable paths in an existing weight file's "training" metadata
 * (see nf-relabel.h for what changes and what is checked).
 *
 * What it does: finds the recipe's absolute paths, replaces their JSON text in the
 * training string, swaps that string into the header, copies the data section, and
 * verifies the result against the input.
 * What it does not: write anything when no path changes.
 */
#include "nf-relabel.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "nf-error.h"
#include "nf-jsonw.h"
#include "nf-portable-path.h"
#include "nf-recipe.h"
#include "nf-safetensors.h"

static gboolean
fail (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
fail (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *m = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, NF_ERROR, NF_ERROR_FORMAT, m);
  g_free (m);
  return FALSE;
}

/* The root object of a JSON document (parser keeps it), or NULL. */
static JsonObject *
parse_object (JsonParser *parser, const char *text, gssize len)
{
  if (!json_parser_load_from_data (parser, text, len, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root (parser);
  return root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
}

/* The string nodes of the recipe's path fields (the nodes belong to recipe). */
static GPtrArray *
path_nodes (JsonObject *recipe)
{
  GPtrArray *nodes = g_ptr_array_new ();
  for (const char *const *k = nf_recipe_path_keys (); *k; k++) {
    JsonNode *n = json_object_get_member (recipe, *k);
    if (n && JSON_NODE_HOLDS_ARRAY (n)) {
      JsonArray *a = json_node_get_array (n);
      for (guint i = 0; i < json_array_get_length (a); i++)
        g_ptr_array_add (nodes, json_array_get_element (a, i));
    } else if (n) {
      g_ptr_array_add (nodes, n);
    }
  }
  return nodes;
}

static char *
generate (JsonNode *root)
{
  JsonGenerator *gen = json_generator_new ();
  json_generator_set_root (gen, root);
  char *s = json_generator_to_data (gen, NULL);
  g_object_unref (gen);
  return s;
}

/* The training JSON with portable paths (*n = values changed), or NULL + error. */
static char *
relabel_training (const char *training, guint *n, GError **error)
{
  *n = 0;
  JsonParser *old_parser = json_parser_new ();
  JsonObject *o = parse_object (old_parser, training, -1);
  JsonNode *rn = o ? json_object_get_member (o, "recipe") : NULL;
  if (!rn || !JSON_NODE_HOLDS_OBJECT (rn)) {    /* not nf-train's: nothing of ours to edit */
    g_object_unref (old_parser);
    return g_strdup (training);
  }
  GString *text = g_string_new (training);
  GHashTable *done = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GPtrArray *nodes = path_nodes (json_node_get_object (rn));
  gboolean ok = TRUE;
  for (guint i = 0; i < nodes->len && ok; i++) {
    JsonNode *node = g_ptr_array_index (nodes, i);
    if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING) {
      ok = fail (error, "training metadata: a path field of the recipe is not a string");
      break;
    }
    const char *v = json_node_get_string (node);
    char *p = nf_portable_path (v);
    if (!g_str_equal (p, v)) {
      (*n)++;
      if (!g_hash_table_contains (done, v)) {   /* the first replace took every copy */
        GString *from = g_string_new (NULL), *to = g_string_new (NULL);
        nf_jsonw_string (from, v);
        nf_jsonw_string (to, p);
        if (g_string_replace (text, from->str, to->str, 0) == 0)
          ok = fail (error, "training metadata: the path %s is not written as nf-train "
              "writes it; cannot edit it in place", v);
        g_string_free (from, TRUE);
        g_string_free (to, TRUE);
        g_hash_table_add (done, g_strdup (v));
      }
      json_node_set_string (node, p);   /* the expected document, for the check below */
    }
    g_free (p);
  }
  g_ptr_array_unref (nodes);
  g_hash_table_unref (done);

  /* The edited text must be the old document with exactly those values replaced. */
  if (ok) {
    JsonParser *new_parser = json_parser_new ();
    JsonObject *no = parse_object (new_parser, text->str, -1);
    char *expect = generate (json_parser_get_root (old_parser));
    char *got = no ? generate (json_parser_get_root (new_parser)) : NULL;
    if (!got || !g_str_equal (expect, got))
      ok = fail (error, "training metadata: editing the paths changed more than the paths "
          "(not written by nf-train?)");
    g_free (expect);
    g_free (got);
    g_object_unref (new_parser);
  }
  g_object_unref (old_parser);
  return g_string_free (text, !ok);
}

/* The header JSON with __metadata__.training set to training, padded to 8 bytes. */
static GString *
header_with (const char *header, gsize hlen, const char *training)
{
  JsonParser *parser = json_parser_new ();
  JsonObject *o = parse_object (parser, header, (gssize) hlen);
  JsonObject *meta = json_node_get_object (json_object_get_member (o, "__metadata__"));
  json_node_set_string (json_object_get_member (meta, "training"), training);  /* in place */
  char *json = generate (json_parser_get_root (parser));
  g_object_unref (parser);
  GString *s = g_string_new (json);
  g_free (json);
  while (s->len % 8)
    g_string_append_c (s, ' ');
  return s;
}

static gboolean
same_entry (const NfStEntry *a, const NfStEntry *b)
{
  return b && a->dtype == b->dtype && a->ndim == b->ndim && a->begin == b->begin
      && a->end == b->end && memcmp (a->dims, b->dims, sizeof a->dims[0] * a->ndim) == 0;
}

/* new_st has the tensors and metadata of old_st, but for the training string. */
static gboolean
same_except_training (const NfSafetensors *old_st, const NfSafetensors *new_st,
    const char *training, GError **error)
{
  guint nt = nf_safetensors_n_tensors (old_st);
  if (nf_safetensors_n_tensors (new_st) != nt)
    return fail (error, "relabel check: the tensor count changed");
  for (guint i = 0; i < nt; i++) {
    const NfStEntry *e = nf_safetensors_entry (old_st, i);
    if (!same_entry (e, nf_safetensors_find (new_st, e->name)))
      return fail (error, "relabel check: tensor %s changed", e->name);
  }
  GHashTable *om = nf_safetensors_metadata_table (old_st);
  GHashTable *nm = nf_safetensors_metadata_table (new_st);
  if (g_hash_table_size (om) != g_hash_table_size (nm))
    return fail (error, "relabel check: the metadata keys changed");
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, om);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    const char *nv = g_hash_table_lookup (nm, k);
    const char *want = g_str_equal (k, "training") ? training : v;
    if (!nv || !g_str_equal (nv, want))
      return fail (error, "relabel check: metadata \"%s\" is not as expected", (char *) k);
  }
  return TRUE;
}

GBytes *
nf_relabel_bytes (const guint8 *bytes, gsize len, guint *n_changed, GError **error)
{
  *n_changed = 0;
  NfSafetensors *st = nf_safetensors_parse (bytes, len, error);  /* validates everything */
  if (!st)
    return NULL;
  const char *training = nf_safetensors_metadata (st, "training");
  char *nt = training ? relabel_training (training, n_changed, error) : NULL;
  if (!training || (nt && *n_changed == 0)) {
    g_free (nt);
    nf_safetensors_free (st);
    return g_bytes_new (bytes, len);
  }
  GBytes *out = NULL;
  if (nt) {
    guint64 hlen = 0;
    for (int i = 7; i >= 0; i--)
      hlen = (hlen << 8) | bytes[i];
    const guint8 *data = bytes + 8 + hlen;     /* nf_safetensors_parse checked the range */
    gsize data_len = len - 8 - (gsize) hlen;
    GString *h = header_with ((const char *) bytes + 8, (gsize) hlen, nt);
    gsize total = 8 + h->len + data_len;
    guint8 *buf = g_malloc (total);
    guint64 le = GUINT64_TO_LE ((guint64) h->len);
    memcpy (buf, &le, 8);
    memcpy (buf + 8, h->str, h->len);
    memcpy (buf + 8 + h->len, data, data_len);
    NfSafetensors *nst = nf_safetensors_parse (buf, total, error);
    if (nst && memcmp (buf + 8 + h->len, data, data_len) == 0
        && same_except_training (st, nst, nt, error))
      out = g_bytes_new_take (buf, total);
    else
      g_free (buf);
    if (nst)
      nf_safetensors_free (nst);
    g_string_free (h, TRUE);
  }
  g_free (nt);
  nf_safetensors_free (st);
  return out;
}

gboolean
nf_relabel_file (const char *path, guint *n_changed, GError **error)
{
  *n_changed = 0;
  gchar *bytes;
  gsize len;
  GError *e = NULL;
  if (!g_file_get_contents (path, &bytes, &len, &e)) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "%s", e->message);
    g_error_free (e);
    return FALSE;
  }
  GBytes *out = nf_relabel_bytes ((const guint8 *) bytes, len, n_changed, &e);
  g_free (bytes);
  gboolean ok = out != NULL;
  if (!ok) {
    g_set_error (error, NF_ERROR, e->code, "%s: %s", path, e->message);
    g_error_free (e);
  } else if (*n_changed > 0) {
    gsize olen;
    const char *odata = g_bytes_get_data (out, &olen);
    ok = g_file_set_contents (path, odata, (gssize) olen, &e);
    if (!ok) {
      g_set_error (error, NF_ERROR, NF_ERROR_IO, "cannot write %s: %s", path, e->message);
      g_error_free (e);
    }
  }
  if (out)
    g_bytes_unref (out);
  return ok;
}
