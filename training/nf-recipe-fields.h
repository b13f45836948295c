/* nf-recipe-fields.h — what the recipe's source files share (private): the table that
 * describes every NfRecipe field once (JSON key = option name, type, group, help) and
 * the walk over the fields that hold file paths.
 *
 * What it does not: anything callers see (nf-recipe.h is the API); read or write JSON
 * (nf-recipe-json.c) or check values (nf-recipe-finalize.c).
 */
#pragma once

#include "nf-recipe.h"

typedef enum { F_STR, F_STRV, F_INT, F_INT64, F_DOUBLE, F_BOOL } FieldType;
typedef enum { G_RECIPE, G_RECIPE_RESUMABLE, G_RUN } FieldGroup;

typedef struct {
  const char *key;              /* JSON key and option name */
  FieldType type;
  size_t offset;
  FieldGroup group;
  const char *help;
  const char *arg;              /* argument placeholder */
  const char *option;           /* option name when not the key (NULL: the key) */
} Field;

/* Every field of NfRecipe, in the order of its JSON (nf-recipe-fields.c). */
extern const Field nf_recipe_fields[];
extern const guint nf_recipe_n_fields;

/* The field f of the recipe r. */
#define FIELD(r, f) ((guint8 *) (r) + (f)->offset)

/* Replaces every path of r (the fields named by nf_recipe_path_keys) by map (path). */
void nf_recipe_map_paths (NfRecipe *r, char *(*map) (const char *));

static inline void
nf_recipe_set_str (char **dst, const char *v)
{
  g_free (*dst);
  *dst = g_strdup (v);
}
