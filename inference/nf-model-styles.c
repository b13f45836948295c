/* nf-model-styles.c — the styles of a multi-style model (conditional instance norm,
 * Dumoulin et al. 2017): their names and the run-time mix.
 *
 * What it does: checks the "styles" metadata (a JSON list of names) against the number
 * of styles the graph's cond_instance_norm ops hold, keeps the names and the mix vector
 * those ops read at every run (nf-graph.h), sets the mix (any finite weights, one-hot by
 * default) and looks styles up by name or index.
 * What it does not: parse the element's "name:weight,..." mix strings (inference/nf-style-mix.c),
 * run anything, or lock: the mix is set between runs by the thread that runs the model.
 */
#include "nf-model.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nf-error.h"

/* A name the element's style-mix syntax can carry: not empty, no ':' or ',', no control
 * characters, not only blanks. */
static gboolean
name_ok (const char *s, GError **error)
{
  gboolean blank = TRUE;
  for (const char *p = s; *p; p++) {
    if (*p == ':' || *p == ',' || (unsigned char) *p < 0x20) {
      g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
          "style name \"%s\" contains ':' or ',' (the style-mix syntax uses them) or a "
          "control character", s);
      return FALSE;
    }
    blank = blank && (*p == ' ' || *p == '\t');
  }
  if (blank)
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH, "a style name is empty");
  return !blank;
}

/* names: a NULL-terminated list; n: the styles expected (0: a single-style network, which
 * may name its one style). */
static gboolean
check_names (const char *const *names, int n, GError **error)
{
  int len = (int) g_strv_length ((char **) names);
  if (n > 0 ? len != n : len > 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "the \"styles\" metadata names %d style%s but the network holds %d%s", len,
        len == 1 ? "" : "s", n, n ? "" : " (it has no cond_instance_norm)");
    return FALSE;
  }
  for (int i = 0; i < len; i++) {
    if (!name_ok (names[i], error)) {
      g_prefix_error (error, "the \"styles\" metadata: ");
      return FALSE;
    }
    for (int j = 0; j < i; j++)
      if (g_str_equal (names[i], names[j])) {
        g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
            "the \"styles\" metadata names \"%s\" twice", names[i]);
        return FALSE;
      }
  }
  return TRUE;
}

/* The "styles" metadata as a NULL-terminated list, or NULL + error. */
static char **
parse_names (const char *json, GError **error)
{
  JsonParser *parser = json_parser_new ();
  char **names = NULL;
  JsonNode *root = json_parser_load_from_data (parser, json, -1, NULL)
      ? json_parser_get_root (parser) : NULL;
  if (root && JSON_NODE_HOLDS_ARRAY (root)) {
    JsonArray *a = json_node_get_array (root);
    guint len = json_array_get_length (a);
    names = g_new0 (char *, len + 1);
    for (guint i = 0; i < len; i++) {
      JsonNode *e = json_array_get_element (a, i);
      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING) {
        g_clear_pointer (&names, g_strfreev);
        break;
      }
      names[i] = g_strdup (json_node_get_string (e));
    }
  }
  if (!names)
    g_set_error (error, NF_ERROR, NF_ERROR_GRAPH,
        "the \"styles\" metadata is not a JSON list of names (e.g. [\"starry_night\", "
        "\"great_wave\"])");
  g_object_unref (parser);
  return names;
}

gboolean
nf_model_styles_bind (NfModel *m, const NfGraph *g, GError **error)
{
  int n = nf_graph_n_styles (g, error);
  if (n < 0)
    return FALSE;
  const char *md = nf_model_get_metadata (m, "styles");
  char **names = NULL;
  if (md && !(names = parse_names (md, error)))
    return FALSE;
  if (names && !check_names ((const char *const *) names, n, error)) {
    g_strfreev (names);
    return FALSE;
  }
  if (!names || n == 0) {       /* default names: the indices */
    g_strfreev (names);
    names = g_new0 (char *, n + 1);
    for (int i = 0; i < n; i++)
      names[i] = g_strdup_printf ("%d", i);
  }
  g_strfreev (m->style_names);
  m->style_names = names;
  if (n != m->n_styles || (n > 0 && !m->style_mix)) {
    g_free (m->style_mix);
    m->style_mix = n > 0 ? g_new0 (float, n) : NULL;
    if (n > 0)
      m->style_mix[0] = 1.0f;
    m->n_styles = n;
  }
  return TRUE;
}

int
nf_model_style_index (const NfModel *m, const char *name_or_index)
{
  if (!name_or_index)
    return -1;
  for (int i = 0; i < m->n_styles; i++)
    if (g_str_equal (m->style_names[i], name_or_index))
      return i;
  char *end = NULL;
  long v = strtol (name_or_index, &end, 10);
  if (end == name_or_index || *end || v < 0 || v >= m->n_styles)
    return -1;
  return (int) v;
}

gboolean
nf_model_set_style_mix (NfModel *m, const float *w, int n, GError **error)
{
  if (m->n_styles == 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "the network has one style (no cond_instance_norm): there is no mix to set");
    return FALSE;
  }
  if (n != m->n_styles) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "a style mix of %d weights for a network of %d styles", n, m->n_styles);
    return FALSE;
  }
  for (int i = 0; i < n; i++)
    if (!isfinite (w[i])) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "the weight of style %d (%s) is not a finite number", i, m->style_names[i]);
      return FALSE;
    }
  memcpy (m->style_mix, w, sizeof (float) * n);
  return TRUE;
}

gboolean
nf_model_set_style (NfModel *m, int i, GError **error)
{
  if (i < 0 || i >= m->n_styles) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "style %d does not exist (the network holds %d)", i, m->n_styles);
    return FALSE;
  }
  float *w = g_new0 (float, m->n_styles);
  w[i] = 1.0f;
  gboolean ok = nf_model_set_style_mix (m, w, m->n_styles, error);
  g_free (w);
  return ok;
}

gboolean
nf_model_set_style_names (NfModel *m, const char *const *names, GError **error)
{
  if (!check_names (names, m->n_styles, error))
    return FALSE;
  JsonBuilder *b = json_builder_new ();
  json_builder_begin_array (b);
  for (int i = 0; names[i]; i++)
    json_builder_add_string_value (b, names[i]);
  json_builder_end_array (b);
  JsonGenerator *gen = json_generator_new ();
  JsonNode *root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  char *json = json_generator_to_data (gen, NULL);
  json_node_unref (root);
  g_object_unref (gen);
  g_object_unref (b);
  nf_model_set_metadata (m, "styles", json);
  g_free (json);
  if (m->n_styles > 0) {
    g_strfreev (m->style_names);
    m->style_names = g_strdupv ((char **) names);
  }
  return TRUE;
}
