/* nf-safetensors.c — reading, validating and writing safetensors files.
 *
 * What it does: parses the u64 header length and the JSON header (json-glib), checks
 * every field before anything is trusted (header length against the file and a 100 MB
 * limit, strict JSON lexing — no hex, octal, single quotes, comments, trailing data,
 * escaped NULs or integers json-glib would silently wrap —, nesting depth, duplicate
 * keys, dtypes, shapes, data_offsets, byte lengths, overlaps, metadata value types),
 * keeps entries in file order, and converts F32/F16/BF16/F64 tensors to float.
 * Loaded files stay memory-mapped (GMappedFile); parsed buffers are copied (the data
 * section only).
 * What it does not: write files (nf-safetensors-writer.c), know what a graph or a model is (nf-model does), accept the
 * integer dtypes, require the data section to be covered without gaps (the reference
 * implementation does; gaps and trailing bytes are tolerated here), or guard against a
 * mapped file being truncated by another process while loaded.
 */
#include "nf-safetensors.h"

#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>

#include "nf-error.h"
#include "nf-safetensors-private.h"

#define HEADER_LIMIT (100u * 1000u * 1000u)     /* bytes of JSON we accept */
#define MAX_DEPTH 16            /* our schema needs 3 levels */
#define MAX_INT_DIGITS 18       /* so no integer can wrap an int64 in json-glib */
#define KNOWN_DTYPES "F32, F16, BF16, F64"

struct NfSafetensors {
  GMappedFile *mapped;          /* nf_safetensors_load: the whole file */
  GBytes *bytes;                /* nf_safetensors_parse: copy of the data section */
  const guint8 *data;           /* start of the data section */
  gsize data_len;
  NfStEntry *entries;           /* file order */
  guint n_entries;
  GHashTable *by_name;          /* name (owned by entries) -> NfStEntry* */
  GHashTable *metadata;         /* string -> string, owned */
};

/* ---- small helpers ------------------------------------------------------------ */

gsize
nf_st_dtype_size (NfDtype d)
{
  switch (d) {
    case NF_DTYPE_F32:
      return 4;
    case NF_DTYPE_F16:
    case NF_DTYPE_BF16:
      return 2;
    case NF_DTYPE_F64:
      return 8;
  }
  return 0;
}

const char *
nf_st_dtype_name (NfDtype d)
{
  switch (d) {
    case NF_DTYPE_F32:
      return "F32";
    case NF_DTYPE_F16:
      return "F16";
    case NF_DTYPE_BF16:
      return "BF16";
    case NF_DTYPE_F64:
      return "F64";
  }
  return "?";
}

static gboolean
dtype_from_name (const char *s, NfDtype *out)
{
  static const struct {
    const char *name;
    NfDtype dtype;
  } known[] = {
    { "F32", NF_DTYPE_F32 }, { "F16", NF_DTYPE_F16 },
    { "BF16", NF_DTYPE_BF16 }, { "F64", NF_DTYPE_F64 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (known); i++) {
    if (strcmp (s, known[i].name) == 0) {
      *out = known[i].dtype;
      return TRUE;
    }
  }
  return FALSE;
}

/* Product of the dims times the element size; FALSE on overflow. */
gboolean
nf_st_checked_nbytes (const int64_t *dims, int ndim, gsize elem, guint64 *numel, guint64 *nbytes)
{
  guint64 n = 1;
  for (int i = 0; i < ndim; i++) {
    if (dims[i] < 0 || !g_uint64_checked_mul (&n, n, (guint64) dims[i]))
      return FALSE;
  }
  guint64 b;
  if (!g_uint64_checked_mul (&b, n, elem) || n > G_MAXSIZE || b > G_MAXSIZE)
    return FALSE;
  *numel = n;
  *nbytes = b;
  return TRUE;
}

static char *
shape_string (const int64_t *dims, int ndim)
{
  GString *s = g_string_new ("[");
  for (int i = 0; i < ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", dims[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* ---- strict lexing of the header ---------------------------------------------- */

/* json-glib is lenient (hex and octal numbers, single quotes, comments, "{}{}",
 * integers that silently wrap, \u0000 truncating keys), so the header is first lexed
 * against the JSON grammar. Structure (matching brackets, colons, commas) is left to
 * json-glib; this only checks tokens, nesting depth and trailing data. */
static gboolean
lex_header (const char *s, gsize n, GError **error)
{
  int depth = 0;
  gboolean closed = FALSE;      /* the top-level value has ended */
  gsize i = 0;

  while (i < n) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      i++;
      continue;
    }
    if (closed) {
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
          "header JSON has trailing data after the top-level object (byte %" G_GSIZE_FORMAT
          ")", i);
      return FALSE;
    }
    if (c == '{' || c == '[') {
      if (++depth > MAX_DEPTH) {
        g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
            "header JSON is nested deeper than %d levels", MAX_DEPTH);
        return FALSE;
      }
      i++;
    } else if (c == '}' || c == ']') {
      depth--;
      if (depth <= 0)
        closed = TRUE;
      i++;
    } else if (c == ':' || c == ',') {
      i++;
    } else if (c == '"') {
      gsize start = i++;
      for (;;) {
        if (i >= n) {
          g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
              "header JSON has an unterminated string starting at byte %" G_GSIZE_FORMAT,
              start);
          return FALSE;
        }
        guchar d = (guchar) s[i];
        if (d == '"') {
          i++;
          break;
        }
        if (d < 0x20) {
          g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
              "header JSON has a raw control character (0x%02x) in a string at byte %"
              G_GSIZE_FORMAT, d, i);
          return FALSE;
        }
        if (d != '\\') {
          i++;
          continue;
        }
        if (i + 1 >= n || !strchr ("\"\\/bfnrtu", s[i + 1]) || s[i + 1] == '\0') {
          g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
              "header JSON has an invalid escape sequence at byte %" G_GSIZE_FORMAT, i);
          return FALSE;
        }
        if (s[i + 1] != 'u') {
          i += 2;
          continue;
        }
        for (int k = 2; k < 6; k++) {
          if (i + k >= n || !g_ascii_isxdigit (s[i + k])) {
            g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
                "header JSON has an invalid \\u escape at byte %" G_GSIZE_FORMAT, i);
            return FALSE;
          }
        }
        if (strncmp (s + i + 2, "0000", 4) == 0) {
          g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
              "header JSON contains an escaped NUL character (\\u0000) at byte %"
              G_GSIZE_FORMAT, i);
          return FALSE;
        }
        i += 6;
      }
      if (depth == 0)
        closed = TRUE;
    } else if (c == '-' || g_ascii_isdigit (c)) {
      /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
      gsize start = i, digits = 0;
      gboolean ok = TRUE;
      if (s[i] == '-')
        i++;
      if (i < n && s[i] == '0') {
        i++;
        digits = 1;
      } else {
        while (i < n && g_ascii_isdigit (s[i])) {
          i++;
          digits++;
        }
        ok = digits > 0;
      }
      if (ok && i < n && s[i] == '.') {
        gsize f = ++i;
        while (i < n && g_ascii_isdigit (s[i]))
          i++;
        ok = i > f;
      }
      if (ok && i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
          i++;
        gsize f = i;
        while (i < n && g_ascii_isdigit (s[i]))
          i++;
        ok = i > f;
      }
      if (ok && i < n && (g_ascii_isalnum (s[i]) || s[i] == '.' || s[i] == '+'
              || s[i] == '-'))
        ok = FALSE;
      if (!ok) {
        g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
            "header JSON has a malformed number at byte %" G_GSIZE_FORMAT, start);
        return FALSE;
      }
      if (digits > MAX_INT_DIGITS) {
        g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
            "header JSON has a number with more than %d integer digits at byte %"
            G_GSIZE_FORMAT, MAX_INT_DIGITS, start);
        return FALSE;
      }
      if (depth == 0)
        closed = TRUE;
    } else if (g_ascii_isalpha (c)) {
      gsize start = i;
      while (i < n && g_ascii_isalnum (s[i]))
        i++;
      gsize len = i - start;
      if (!((len == 4 && strncmp (s + start, "true", 4) == 0)
              || (len == 5 && strncmp (s + start, "false", 5) == 0)
              || (len == 4 && strncmp (s + start, "null", 4) == 0))) {
        g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
            "header JSON has an unexpected word '%.*s' at byte %" G_GSIZE_FORMAT,
            (int) MIN (len, 32), s + start, start);
        return FALSE;
      }
      if (depth == 0)
        closed = TRUE;
    } else {
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
          "header JSON has an unexpected character '%c' at byte %" G_GSIZE_FORMAT,
          g_ascii_isprint (c) ? c : '?', i);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- duplicate keys --------------------------------------------------------------- */

/* json-glib keeps the last of duplicate members silently; its "object-member" signal
 * sees every one, so the first duplicate is recorded here. */
typedef struct {
  GHashTable *seen;             /* JsonObject* -> GHashTable of names */
  JsonObject *dup_object;
  char *dup_name;
} DupWatch;

static void
on_object_member (JsonParser *parser, JsonObject *object, const char *name, gpointer data)
{
  DupWatch *w = data;
  if (w->dup_name)
    return;
  GHashTable *names = g_hash_table_lookup (w->seen, object);
  if (!names) {
    names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_insert (w->seen, object, names);
  }
  if (g_hash_table_contains (names, name)) {
    w->dup_object = object;
    w->dup_name = g_strdup (name);
    return;
  }
  g_hash_table_add (names, g_strdup (name));
}

/* ---- field validation ------------------------------------------------------------ */

static gboolean
node_is_int (JsonNode *n)
{
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64;
}

static gboolean
parse_entry (const char *name, JsonNode *node, gsize data_len, NfStEntry *e,
    GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "entry for tensor '%s' is not an object", name);
    return FALSE;
  }
  JsonObject *o = json_node_get_object (node);

  /* dtype */
  JsonNode *dn = json_object_get_member (o, "dtype");
  if (!dn) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "tensor '%s' has no \"dtype\"", name);
    return FALSE;
  }
  if (!JSON_NODE_HOLDS_VALUE (dn) || json_node_get_value_type (dn) != G_TYPE_STRING) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "tensor '%s': \"dtype\" is not a string", name);
    return FALSE;
  }
  const char *ds = json_node_get_string (dn);
  if (!dtype_from_name (ds, &e->dtype)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "tensor '%s' has unknown dtype '%s' (known: " KNOWN_DTYPES ")", name, ds);
    return FALSE;
  }

  /* shape */
  JsonNode *sn = json_object_get_member (o, "shape");
  if (!sn) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "tensor '%s' has no \"shape\"", name);
    return FALSE;
  }
  if (!JSON_NODE_HOLDS_ARRAY (sn)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "tensor '%s': \"shape\" is not an array", name);
    return FALSE;
  }
  JsonArray *sa = json_node_get_array (sn);
  guint nd = json_array_get_length (sa);
  if (nd > NF_MAX_DIMS) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "tensor '%s' has %u dimensions, more than the maximum of %d", name, nd,
        NF_MAX_DIMS);
    return FALSE;
  }
  e->ndim = (int) nd;
  for (guint i = 0; i < nd; i++) {
    JsonNode *v = json_array_get_element (sa, i);
    if (!node_is_int (v)) {
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
          "tensor '%s': shape element %u is not an integer", name, i);
      return FALSE;
    }
    e->dims[i] = json_node_get_int (v);
    if (e->dims[i] < 0) {
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
          "tensor '%s': shape element %u is negative (%" G_GINT64_FORMAT ")", name, i,
          e->dims[i]);
      return FALSE;
    }
  }

  /* data_offsets */
  JsonNode *on = json_object_get_member (o, "data_offsets");
  if (!on) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "tensor '%s' has no \"data_offsets\"", name);
    return FALSE;
  }
  if (!JSON_NODE_HOLDS_ARRAY (on) || json_array_get_length (json_node_get_array (on)) != 2) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "tensor '%s': \"data_offsets\" is not an array of two integers", name);
    return FALSE;
  }
  JsonArray *oa = json_node_get_array (on);
  gint64 off[2];
  for (guint i = 0; i < 2; i++) {
    JsonNode *v = json_array_get_element (oa, i);
    if (!node_is_int (v)) {
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
          "tensor '%s': data_offsets element %u is not an integer", name, i);
      return FALSE;
    }
    off[i] = json_node_get_int (v);
    if (off[i] < 0) {
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
          "tensor '%s': data_offsets element %u is negative (%" G_GINT64_FORMAT ")", name,
          i, off[i]);
      return FALSE;
    }
  }
  if (off[0] > off[1]) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "tensor '%s': data_offsets begin %" G_GINT64_FORMAT " is greater than end %"
        G_GINT64_FORMAT, name, off[0], off[1]);
    return FALSE;
  }
  if ((guint64) off[1] > data_len) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "tensor '%s': data_offsets end %" G_GINT64_FORMAT
        " is beyond the data section (%" G_GSIZE_FORMAT " bytes)", name, off[1], data_len);
    return FALSE;
  }
  e->begin = (guint64) off[0];
  e->end = (guint64) off[1];

  guint64 numel, nbytes;
  if (!nf_st_checked_nbytes (e->dims, e->ndim, nf_st_dtype_size (e->dtype), &numel, &nbytes)) {
    char *sh = shape_string (e->dims, e->ndim);
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "tensor '%s': byte size of shape %s overflows", name, sh);
    g_free (sh);
    return FALSE;
  }
  if (nbytes != e->end - e->begin) {
    char *sh = shape_string (e->dims, e->ndim);
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "tensor '%s': shape %s of %s needs %" G_GUINT64_FORMAT
        " bytes but data_offsets cover %" G_GUINT64_FORMAT, name, sh,
        nf_st_dtype_name (e->dtype), nbytes, e->end - e->begin);
    g_free (sh);
    return FALSE;
  }
  return TRUE;
}

static gboolean
parse_metadata (JsonNode *node, GHashTable *table, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "__metadata__ is not an object");
    return FALSE;
  }
  JsonObject *o = json_node_get_object (node);
  GList *keys = json_object_get_members (o);
  for (GList *l = keys; l; l = l->next) {
    JsonNode *v = json_object_get_member (o, l->data);
    if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING) {
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
          "__metadata__ value for key '%s' is not a string", (const char *) l->data);
      g_list_free (keys);
      return FALSE;
    }
    g_hash_table_insert (table, g_strdup (l->data), g_strdup (json_node_get_string (v)));
  }
  g_list_free (keys);
  return TRUE;
}

static int
compare_ranges (gconstpointer a, gconstpointer b)
{
  const NfStEntry *x = *(const NfStEntry * const *) a;
  const NfStEntry *y = *(const NfStEntry * const *) b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return 0;
}

static gboolean
check_overlaps (NfSafetensors *st, GError **error)
{
  if (st->n_entries < 2)
    return TRUE;
  NfStEntry **order = g_new (NfStEntry *, st->n_entries);
  for (guint i = 0; i < st->n_entries; i++)
    order[i] = &st->entries[i];
  qsort (order, st->n_entries, sizeof *order, compare_ranges);
  const NfStEntry *reach = NULL;        /* the entry ending furthest so far */
  gboolean ok = TRUE;
  for (guint i = 0; i < st->n_entries && ok; i++) {
    const NfStEntry *e = order[i];
    if (e->begin == e->end)
      continue;                 /* zero-size tensors occupy nothing */
    if (reach && e->begin < reach->end) {
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
          "tensors '%s' [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ") and '%s' [%"
          G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ") overlap in the data section",
          reach->name, reach->begin, reach->end, e->name, e->begin, e->end);
      ok = FALSE;
    }
    if (!reach || e->end > reach->end)
      reach = e;
  }
  g_free (order);
  return ok;
}

/* ---- parsing -------------------------------------------------------------------- */

/* Validates a whole file image and fills st (entries, names, metadata, data_len).
 * On success *data_start is the offset of the data section within bytes. */
static gboolean
parse_into (NfSafetensors *st, const guint8 *bytes, gsize len, gsize *data_start,
    GError **error)
{
  if (len < 8) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "file is %" G_GSIZE_FORMAT " bytes long, shorter than the 8-byte header length",
        len);
    return FALSE;
  }
  guint64 hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = (hlen << 8) | bytes[i];
  if (hlen == 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "header length is 0");
    return FALSE;
  }
  if (hlen > HEADER_LIMIT) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "header length %" G_GUINT64_FORMAT " is larger than the 100 MB limit", hlen);
    return FALSE;
  }
  if (hlen > len - 8) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "header length %" G_GUINT64_FORMAT " exceeds the %" G_GSIZE_FORMAT
        " bytes that follow it", hlen, len - 8);
    return FALSE;
  }
  const char *header = (const char *) bytes + 8;
  gsize n = (gsize) hlen;
  gsize data_len = len - 8 - n;
  const char *bad;
  if (!g_utf8_validate (header, (gssize) n, &bad)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "header is not valid UTF-8 (byte %" G_GSIZE_FORMAT " of the header)",
        (gsize) (bad - header));
    return FALSE;
  }
  if (!lex_header (header, n, error))
    return FALSE;

  JsonParser *parser = json_parser_new ();
  DupWatch watch = { g_hash_table_new_full (NULL, NULL, NULL,
          (GDestroyNotify) g_hash_table_unref), NULL, NULL };
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), &watch);
  GError *jerr = NULL;
  gboolean ok = FALSE;
  GList *members = NULL;

  if (!json_parser_load_from_data (parser, header, (gssize) n, &jerr)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "header is not valid JSON: %s",
        jerr->message);
    g_error_free (jerr);
    goto out;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "header JSON is not an object");
    goto out;
  }
  JsonObject *ro = json_node_get_object (root);
  if (watch.dup_name) {
    if (watch.dup_object == ro)
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "duplicate tensor name '%s'",
          watch.dup_name);
    else
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
          "duplicate key '%s' in an object of the header JSON", watch.dup_name);
    goto out;
  }

  members = json_object_get_members (ro);       /* file order */
  guint count = 0;
  for (GList *l = members; l; l = l->next)
    if (strcmp (l->data, "__metadata__") != 0)
      count++;
  st->entries = g_new0 (NfStEntry, MAX (count, 1));
  st->data_len = data_len;
  for (GList *l = members; l; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member (ro, name);
    if (strcmp (name, "__metadata__") == 0) {
      if (!parse_metadata (node, st->metadata, error))
        goto out;
      continue;
    }
    NfStEntry *e = &st->entries[st->n_entries];
    if (!parse_entry (name, node, data_len, e, error))
      goto out;
    e->name = g_strdup (name);
    st->n_entries++;
    g_hash_table_insert (st->by_name, e->name, e);
  }
  if (!check_overlaps (st, error))
    goto out;
  *data_start = 8 + n;
  ok = TRUE;

out:
  g_list_free (members);
  g_hash_table_unref (watch.seen);
  g_free (watch.dup_name);
  g_object_unref (parser);
  return ok;
}

static NfSafetensors *
st_new (void)
{
  NfSafetensors *st = g_new0 (NfSafetensors, 1);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return st;
}

NfSafetensors *
nf_safetensors_parse (const guint8 *bytes, gsize len, GError **error)
{
  if (!bytes && len > 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "no bytes given to parse");
    return NULL;
  }
  NfSafetensors *st = st_new ();
  gsize start = 0;
  if (!parse_into (st, bytes ? bytes : (const guint8 *) "", len, &start, error)) {
    nf_safetensors_free (st);
    return NULL;
  }
  st->bytes = g_bytes_new (bytes + start, st->data_len);
  st->data = g_bytes_get_data (st->bytes, NULL);
  return st;
}

NfSafetensors *
nf_safetensors_load (const char *path, GError **error)
{
  if (!path) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "no path given to load");
    return NULL;
  }
  GError *ferr = NULL;
  GMappedFile *mf = g_mapped_file_new (path, FALSE, &ferr);
  if (!mf) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "could not read '%s': %s", path,
        ferr->message);
    g_error_free (ferr);
    return NULL;
  }
  NfSafetensors *st = st_new ();
  st->mapped = mf;
  const guint8 *contents = (const guint8 *) g_mapped_file_get_contents (mf);
  gsize len = g_mapped_file_get_length (mf);
  gsize start = 0;
  if (!parse_into (st, contents ? contents : (const guint8 *) "", len, &start, error)) {
    g_prefix_error (error, "%s: ", path);
    nf_safetensors_free (st);
    return NULL;
  }
  st->data = contents + start;
  return st;
}

void
nf_safetensors_free (NfSafetensors *st)
{
  if (!st)
    return;
  for (guint i = 0; i < st->n_entries; i++)
    g_free (st->entries[i].name);
  g_free (st->entries);
  g_hash_table_unref (st->by_name);
  g_hash_table_unref (st->metadata);
  if (st->bytes)
    g_bytes_unref (st->bytes);
  if (st->mapped)
    g_mapped_file_unref (st->mapped);
  g_free (st);
}

/* ---- access ----------------------------------------------------------------------- */

guint
nf_safetensors_n_tensors (const NfSafetensors *st)
{
  return st ? st->n_entries : 0;
}

const NfStEntry *
nf_safetensors_entry (const NfSafetensors *st, guint i)
{
  if (!st || i >= st->n_entries)
    return NULL;
  return &st->entries[i];
}

const NfStEntry *
nf_safetensors_find (const NfSafetensors *st, const char *name)
{
  if (!st || !name)
    return NULL;
  return g_hash_table_lookup (st->by_name, name);
}

const char *
nf_safetensors_metadata (const NfSafetensors *st, const char *key)
{
  if (!st || !key)
    return NULL;
  return g_hash_table_lookup (st->metadata, key);
}

GHashTable *
nf_safetensors_metadata_table (const NfSafetensors *st)
{
  return st ? st->metadata : NULL;
}

size_t
nf_st_entry_numel (const NfStEntry *e)
{
  if (!e)
    return 0;
  size_t n = 1;
  for (int i = 0; i < e->ndim && i < NF_MAX_DIMS; i++)
    n *= (size_t) MAX (e->dims[i], 0);
  return n;
}

float *
nf_safetensors_get_floats (const NfSafetensors *st, const NfStEntry *e, GError **error)
{
  if (!st || !e) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "no file or tensor given");
    return NULL;
  }
  const char *name = e->name ? e->name : "(unnamed)";
  guint64 numel, nbytes;
  if (e->ndim < 0 || e->ndim > NF_MAX_DIMS || nf_st_dtype_size (e->dtype) == 0
      || !nf_st_checked_nbytes (e->dims, e->ndim, nf_st_dtype_size (e->dtype), &numel, &nbytes)
      || e->begin > e->end || e->end > st->data_len || nbytes != e->end - e->begin) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "tensor '%s' does not describe a valid range of this file's data", name);
    return NULL;
  }
  float *out = nf_alloc_floats ((size_t) numel);
  if (!out) {
    g_set_error (error, NF_ERROR, NF_ERROR_BACKEND,
        "out of memory allocating %" G_GUINT64_FORMAT " floats for tensor '%s'", numel,
        name);
    return NULL;
  }
  const guint8 *p = st->data + e->begin;
  switch (e->dtype) {
    case NF_DTYPE_F32:
      for (guint64 i = 0; i < numel; i++) {
        guint32 u;
        memcpy (&u, p + 4 * i, 4);
        u = GUINT32_FROM_LE (u);
        memcpy (&out[i], &u, 4);
      }
      break;
    case NF_DTYPE_F16:
      for (guint64 i = 0; i < numel; i++) {
        guint16 u;
        memcpy (&u, p + 2 * i, 2);
        out[i] = nf_half_to_float (GUINT16_FROM_LE (u));
      }
      break;
    case NF_DTYPE_BF16:
      for (guint64 i = 0; i < numel; i++) {
        guint16 u;
        memcpy (&u, p + 2 * i, 2);
        out[i] = nf_bf16_to_float (GUINT16_FROM_LE (u));
      }
      break;
    case NF_DTYPE_F64:
      for (guint64 i = 0; i < numel; i++) {
        guint64 u;
        double d;
        memcpy (&u, p + 8 * i, 8);
        u = GUINT64_FROM_LE (u);
        memcpy (&d, &u, 8);
        out[i] = (float) d;
      }
      break;
  }
  return out;
}
