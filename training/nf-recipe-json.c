/* nf-recipe-json.c — the recipe as JSON, both ways: the writer (every field of the
 * table, or the recipe group only with portable paths) and the reader (checkpoints and a
 * weight file's "training" metadata), which takes a member only when it has the field's
 * type and a value the writer could store again.
 *
 * What it does not: check the values (nf-recipe-finalize.c), or read or write files.
 */
#include "nf-recipe-fields.h"

#include <json-glib/json-glib.h>
#include <math.h>

#include "nf-error.h"
#include "nf-jsonw.h"
#include "nf-portable-path.h"

/* ---- writing ---------------------------------------------------------------------- */

static char *
recipe_json (const NfRecipe *r, gboolean with_run_settings)
{
  GString *s = g_string_new ("{");
  gboolean first = TRUE;
  for (guint i = 0; i < nf_recipe_n_fields; i++) {
    const Field *f = &nf_recipe_fields[i];
    if (f->group == G_RUN && !with_run_settings)
      continue;
    const guint8 *p = FIELD (r, f);
    if (f->type == F_STR && !*(char *const *) p)
      continue;
    if (f->option && !*(char **const *) p)      /* style-images: only with several */
      continue;
    nf_jsonw_key (s, f->key, first);
    first = FALSE;
    switch (f->type) {
      case F_STR:
        nf_jsonw_string (s, *(char *const *) p);
        break;
      case F_STRV:{
        char *const *v = *(char **const *) p;
        g_string_append_c (s, '[');
        for (int k = 0; v && v[k]; k++) {
          if (k)
            g_string_append_c (s, ',');
          nf_jsonw_string (s, v[k]);
        }
        g_string_append_c (s, ']');
        break;
      }
      case F_INT:
        g_string_append_printf (s, "%d", *(const int *) p);
        break;
      case F_INT64:
        g_string_append_printf (s, "%" G_GINT64_FORMAT, *(const gint64 *) p);
        break;
      case F_DOUBLE:
        nf_jsonw_double (s, *(const double *) p);
        break;
      case F_BOOL:
        g_string_append (s, *(const gboolean *) p ? "true" : "false");
        break;
    }
  }
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

char *
nf_recipe_to_json (const NfRecipe *r, gboolean with_run_settings)
{
  if (with_run_settings)        /* checkpoints: absolute paths, resumable from anywhere */
    return recipe_json (r, TRUE);
  NfRecipe *c = nf_recipe_copy (r);     /* weight-file metadata: portable paths */
  nf_recipe_map_paths (c, nf_portable_path);
  char *j = recipe_json (c, FALSE);
  nf_recipe_free (c);
  return j;
}

/* ---- reading ---------------------------------------------------------------------- */

/* What reading one member gave. */
typedef enum { READ_OK, READ_WRONG_TYPE, READ_NOT_UTF8, READ_OUT_OF_RANGE } ReadResult;

static gboolean
holds_string (JsonNode *n)
{
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING;
}

/* The text of a string node. JSON-GLib turns a lone surrogate escape ("\ud800") into
 * bytes that are not UTF-8, which no JSON writer may store. */
static ReadResult
read_text (JsonNode *n, const char **text)
{
  if (!holds_string (n))
    return READ_WRONG_TYPE;
  *text = json_node_get_string (n);
  return g_utf8_validate (*text, -1, NULL) ? READ_OK : READ_NOT_UTF8;
}

/* A list of strings only (no null, number, list): the first element that is not one
 * decides, and *v is left as it was. */
static ReadResult
read_text_list (JsonNode *n, char ***v)
{
  if (!JSON_NODE_HOLDS_ARRAY (n))
    return READ_WRONG_TYPE;
  JsonArray *a = json_node_get_array (n);
  guint len = json_array_get_length (a);
  for (guint k = 0; k < len; k++) {
    const char *text;
    ReadResult res = read_text (json_array_get_element (a, k), &text);
    if (res != READ_OK)
      return res;
  }
  char **list = g_new0 (char *, len + 1);
  for (guint k = 0; k < len; k++)
    list[k] = g_strdup (json_array_get_string_element (a, k));
  g_strfreev (*v);
  *v = list;
  return READ_OK;
}

/* Stores member n into field f at p; p is left as it was when the result is not
 * READ_OK. */
static ReadResult
read_member (const Field *f, JsonNode *n, guint8 *p)
{
  GType vt = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  switch (f->type) {
    case F_STR:{
      const char *text;
      ReadResult res = read_text (n, &text);
      if (res == READ_OK)
        nf_recipe_set_str ((char **) p, text);
      return res;
    }
    case F_STRV:
      return read_text_list (n, (char ***) p);
    case F_INT:{
      if (vt != G_TYPE_INT64)
        return READ_WRONG_TYPE;
      gint64 v = json_node_get_int (n);
      if (v < G_MININT || v > G_MAXINT)
        return READ_OUT_OF_RANGE;
      *(int *) p = (int) v;
      return READ_OK;
    }
    case F_INT64:
      if (vt != G_TYPE_INT64)
        return READ_WRONG_TYPE;
      *(gint64 *) p = json_node_get_int (n);
      return READ_OK;
    case F_DOUBLE:{
      if (vt != G_TYPE_DOUBLE && vt != G_TYPE_INT64)
        return READ_WRONG_TYPE;
      /* 1e999 parses as infinity, which the writer could only store as null */
      double v = json_node_get_double (n);
      if (!isfinite (v))
        return READ_OUT_OF_RANGE;
      *(double *) p = v;
      return READ_OK;
    }
    case F_BOOL:
      if (vt != G_TYPE_BOOLEAN)
        return READ_WRONG_TYPE;
      *(gboolean *) p = json_node_get_boolean (n);
      return READ_OK;
  }
  return READ_WRONG_TYPE;       /* not reached: every type is handled above */
}

/* Reads the members of o that name fields, in the table's order, up to the first that
 * does not read (the fields before it keep what they read). */
static gboolean
update_from_object (NfRecipe *r, JsonObject *o, GError **error)
{
  for (guint i = 0; i < nf_recipe_n_fields; i++) {
    const Field *f = &nf_recipe_fields[i];
    JsonNode *n = json_object_get_member (o, f->key);
    if (!n)
      continue;
    ReadResult res = read_member (f, n, FIELD (r, f));
    if (res == READ_OK)
      continue;
    if (res == READ_WRONG_TYPE)
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "recipe JSON: \"%s\" has the wrong "
          "type", f->key);
    else if (res == READ_NOT_UTF8)
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "recipe JSON: \"%s\" is not valid "
          "UTF-8 text (a lone surrogate escape?)", f->key);
    else
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "recipe JSON: \"%s\" is out of range "
          "(%s)", f->key, f->type == F_INT ? "a 32-bit integer" : "a finite number");
    return FALSE;
  }
  return TRUE;
}

/* The root object of json, or NULL with an error. */
static JsonParser *
parse_object (const char *json, JsonObject **obj, GError **error)
{
  JsonParser *parser = json_parser_new ();
  GError *e = NULL;
  if (!json_parser_load_from_data (parser, json, -1, &e)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "recipe JSON: %s", e->message);
    g_error_free (e);
    g_object_unref (parser);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "recipe JSON is not an object");
    g_object_unref (parser);
    return NULL;
  }
  *obj = json_node_get_object (root);
  return parser;
}

gboolean
nf_recipe_update_from_json (NfRecipe *r, const char *json, GError **error)
{
  JsonObject *o;
  JsonParser *parser = parse_object (json, &o, error);
  if (!parser)
    return FALSE;
  gboolean ok = update_from_object (r, o, error);
  g_object_unref (parser);
  return ok;
}

NfRecipe *
nf_recipe_from_training_metadata (const char *training, GError **error)
{
  JsonObject *o;
  JsonParser *parser = training ? parse_object (training, &o, error) : NULL;
  if (!parser) {
    if (!training)
      g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "no \"training\" metadata");
    return NULL;
  }
  JsonNode *rn = json_object_get_member (o, "recipe");
  JsonObject *ro = rn && JSON_NODE_HOLDS_OBJECT (rn) ? json_node_get_object (rn) : NULL;
  JsonNode *tn = ro ? json_object_get_member (ro, "task") : NULL;
  NfRecipe *r = NULL;
  if (!tn || !holds_string (tn))
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "the \"training\" metadata has no recipe with a task (not written by nf-train?)");
  else if ((r = nf_recipe_new (json_node_get_string (tn), error))
      && !update_from_object (r, ro, error))
    g_clear_pointer (&r, nf_recipe_free);
  if (r)                        /* relative paths are relative to the source root */
    nf_recipe_map_paths (r, nf_portable_path_resolve);
  g_object_unref (parser);
  return r;
}
