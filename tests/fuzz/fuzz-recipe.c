/* fuzz-recipe.c — libFuzzer target: recipe JSON as a checkpoint stores it and as a
 * weight file's "training" metadata holds it.
 *
 * Per input (taken as a NUL-terminated string, as the callers pass it):
 *   - over the defaults of each task (style, sr), nf_recipe_update_from_json; a recipe
 *     that reads must hold what the input said (every member of the input that the
 *     recipe's own JSON also has is equal there: no number wrapped or rounded, no list
 *     cut short), survive the trip through nf_recipe_to_json (with run settings, as a
 *     checkpoint stores it) and back unchanged, and nf_recipe_finalize on a copy
 *     either fails with a message or gives a schedule whose learning rate is finite
 *     and not negative at every step probed (also after nf_recipe_mark_extension, as
 *     a resume that raises iters does);
 *   - nf_recipe_from_training_metadata.
 * A failure must give a GError with a message; a crash, a sanitizer report, a leak, a
 * GLib critical or warning is a finding.
 * What it does not: the checkpoint's safetensors container (the model target covers
 * that parser) or loading the files a recipe names.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "nf-recipe.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  /* finalize fills default folders from these: fixed, so runs do not depend on the
   * environment. */
  g_setenv ("NF_SHARED_DATA", "shared-data", TRUE);
  g_setenv ("NF_LOSSNET", "vgg16.safetensors", TRUE);
  return 0;
}

static void
expect_error (GError *e, const char *what)
{
  if (!e || !e->message || !*e->message) {
    g_printerr ("fuzz-recipe: %s failed without an error message\n", what);
    abort ();
  }
  g_error_free (e);
}

static void
finding (const char *what, const char *detail)
{
  g_printerr ("fuzz-recipe: %s\n%s\n", what, detail ? detail : "");
  abort ();
}

static void
check_lr (const NfRecipe *r, guint64 step, const char *json)
{
  double lr = nf_recipe_lr_at (r, step);
  if (!isfinite (lr) || lr < 0) {
    char *m = g_strdup_printf ("learning rate %g at step %" G_GUINT64_FORMAT, lr, step);
    finding (m, json);
  }
}

/* A finalized recipe's schedule, probed around its landmarks. */
static void
check_schedule (NfRecipe *r)
{
  char *json = nf_recipe_to_json (r, TRUE);
  guint64 iters = (guint64) MAX (r->iters, 0);
  guint64 steps[] = { 0, 1, (guint64) MAX (r->warmup, 0), iters / 2, iters - 1, iters,
    (guint64) MAX (r->extend_at, 0) + (guint64) MAX (r->rewarmup, 0) / 2 };
  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    check_lr (r, steps[i], json);
  /* A resume that doubles iters after iters / 2 steps. */
  int old_iters = r->iters;
  if (r->iters <= G_MAXINT / 2) {
    r->iters *= 2;
    nf_recipe_mark_extension (r, old_iters, iters / 2);
    for (guint64 s = iters / 2; s < iters / 2 + 3; s++)
      check_lr (r, s, json);
    check_lr (r, iters / 2 + (guint64) MAX (r->rewarmup, 0), json);
  }
  g_free (json);
}

/* Equal JSON values: numbers by value (5 and 5.0 are the same), lists element-wise. */
static gboolean
nodes_equal (JsonNode *a, JsonNode *b)
{
  if (JSON_NODE_HOLDS_ARRAY (a) && JSON_NODE_HOLDS_ARRAY (b)) {
    JsonArray *x = json_node_get_array (a), *y = json_node_get_array (b);
    guint n = json_array_get_length (x);
    if (n != json_array_get_length (y))
      return FALSE;
    for (guint i = 0; i < n; i++)
      if (!nodes_equal (json_array_get_element (x, i), json_array_get_element (y, i)))
        return FALSE;
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE (a) || !JSON_NODE_HOLDS_VALUE (b))
    return FALSE;
  GType ta = json_node_get_value_type (a), tb = json_node_get_value_type (b);
  if (ta == G_TYPE_INT64 && tb == G_TYPE_INT64)
    return json_node_get_int (a) == json_node_get_int (b);
  if ((ta == G_TYPE_INT64 || ta == G_TYPE_DOUBLE) && (tb == G_TYPE_INT64 || tb == G_TYPE_DOUBLE))
    return json_node_get_double (a) == json_node_get_double (b);
  if (ta == G_TYPE_STRING && tb == G_TYPE_STRING)
    return g_strcmp0 (json_node_get_string (a), json_node_get_string (b)) == 0;
  if (ta == G_TYPE_BOOLEAN && tb == G_TYPE_BOOLEAN)
    return json_node_get_boolean (a) == json_node_get_boolean (b);
  return FALSE;
}

/* Every member of the input object that stored (the recipe's JSON) has is equal there. */
static void
check_read_as_written (const char *input, const char *stored)
{
  JsonParser *pi = json_parser_new (), *ps = json_parser_new ();
  if (!json_parser_load_from_data (pi, input, -1, NULL)
      || !json_parser_load_from_data (ps, stored, -1, NULL))
    finding ("a JSON that read as a recipe does not parse", stored);
  JsonObject *oi = json_node_get_object (json_parser_get_root (pi));
  JsonObject *os = json_node_get_object (json_parser_get_root (ps));
  GList *members = json_object_get_members (oi);
  for (GList *l = members; l; l = l->next) {
    JsonNode *b = json_object_get_member (os, l->data);
    if (b && !nodes_equal (json_object_get_member (oi, l->data), b)) {
      char *m = g_strdup_printf ("\"%s\" is not stored as the input gave it",
          (const char *) l->data);
      finding (m, stored);
    }
  }
  g_list_free (members);
  g_object_unref (pi);
  g_object_unref (ps);
}

static void
update_over_defaults (const char *task, const char *json)
{
  GError *e = NULL;
  NfRecipe *r = nf_recipe_new (task, &e);
  if (!r)
    finding ("nf_recipe_new failed", task);
  if (!nf_recipe_update_from_json (r, json, &e)) {
    expect_error (e, "nf_recipe_update_from_json");
    nf_recipe_free (r);
    return;
  }
  /* The checkpoint round trip: write, read over the same defaults, write again. */
  char *stored = nf_recipe_to_json (r, TRUE);
  check_read_as_written (json, stored);
  NfRecipe *back = nf_recipe_new (task, &e);
  if (!nf_recipe_update_from_json (back, stored, &e)) {
    char *m = g_strdup_printf ("the recipe's own JSON does not read back: %s", e->message);
    finding (m, stored);
  }
  char *again = nf_recipe_to_json (back, TRUE);
  if (strcmp (stored, again) != 0)
    finding ("the recipe JSON changed in a round trip", stored);
  g_free (again);
  g_free (stored);
  nf_recipe_free (back);

  NfRecipe *c = nf_recipe_copy (r);
  if (nf_recipe_finalize (c, &e))
    check_schedule (c);
  else
    expect_error (e, "nf_recipe_finalize");
  nf_recipe_free (c);
  nf_recipe_free (r);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *json = g_strndup ((const char *) data, size);
  update_over_defaults ("style", json);
  update_over_defaults ("sr", json);
  GError *e = NULL;
  NfRecipe *r = nf_recipe_from_training_metadata (json, &e);
  if (r)
    nf_recipe_free (r);
  else
    expect_error (e, "nf_recipe_from_training_metadata");
  g_free (json);
  return 0;
}
