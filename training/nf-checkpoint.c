/* nf-checkpoint.c — writing and reading training checkpoints (layout in nf-checkpoint.h).
 *
 * What it does: serialises model tensors, Adam moments and the run's counters through
 * the safetensors writer (atomic rename), and restores them with every name, shape and
 * count checked, with messages that say what does not match.
 * What it does not: interpret the recipe (nf-recipe.c).
 */
#include "nf-checkpoint.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "nf-error.h"
#include "nf-safetensors.h"

struct NfCheckpoint {
  char *path;
  NfSafetensors *st;
};

void
nf_checkpoint_state_clear (NfCheckpointState *s)
{
  g_free (s->recipe_json);
  g_free (s->losses);
  memset (s, 0, sizeof (*s));
}

static char *
param_layout (const NfParams *p)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < p->views->len; i++) {
    const NfParamView *v = &g_array_index (p->views, NfParamView, i);
    g_string_append_printf (s, "%s%s:%zu", i ? "," : "", v->name, v->count);
  }
  return g_string_free (s, FALSE);
}

gboolean
nf_checkpoint_save (const char *path, NfModel *model, const NfParams *params,
    const NfCheckpointState *state, GError **error)
{
  NfStWriter *w = nf_st_writer_new ();
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, model->tensors);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    const NfModelTensor *t = v;
    nf_st_writer_add (w, k, NF_DTYPE_F32, t->ndim, t->dims, t->data);
  }
  int64_t n = (int64_t) params->n;
  nf_st_writer_add (w, "optim.adam_m", NF_DTYPE_F32, 1, &n, params->m);
  nf_st_writer_add (w, "optim.adam_v", NF_DTYPE_F32, 1, &n, params->v);
  char *layout = param_layout (params);
  char *step = g_strdup_printf ("%" G_GUINT64_FORMAT, state->step);
  char *adam_t = g_strdup_printf ("%d", state->adam_t);
  char *fp = g_strdup_printf ("%016" G_GINT64_MODIFIER "x", state->data_fingerprint);
  char el[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_dtostr (el, sizeof el, state->elapsed_s);
  nf_st_writer_set_metadata (w, "nf_checkpoint", "1");
  nf_st_writer_set_metadata (w, "recipe", state->recipe_json ? state->recipe_json : "{}");
  nf_st_writer_set_metadata (w, "step", step);
  nf_st_writer_set_metadata (w, "adam_t", adam_t);
  nf_st_writer_set_metadata (w, "param_layout", layout);
  nf_st_writer_set_metadata (w, "data_fingerprint", fp);
  nf_st_writer_set_metadata (w, "elapsed_s", el);
  if (state->losses)
    nf_st_writer_set_metadata (w, "losses", state->losses);
  char *tmp = g_strconcat (path, ".tmp", NULL);
  gboolean ok = nf_st_writer_write (w, tmp, error);
  if (ok && g_rename (tmp, path) != 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "cannot rename %s to %s: %s", tmp, path,
        g_strerror (errno));
    ok = FALSE;
  }
  if (!ok)
    g_unlink (tmp);
  g_free (tmp);
  g_free (layout);
  g_free (step);
  g_free (adam_t);
  g_free (fp);
  nf_st_writer_free (w);
  return ok;
}

NfCheckpoint *
nf_checkpoint_open (const char *path, GError **error)
{
  NfSafetensors *st = nf_safetensors_load (path, error);
  if (!st)
    return NULL;
  const char *tag = nf_safetensors_metadata (st, "nf_checkpoint");
  if (!tag || !g_str_equal (tag, "1") || !nf_safetensors_metadata (st, "recipe")
      || !nf_safetensors_metadata (st, "step") || !nf_safetensors_metadata (st, "param_layout")) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT,
        "%s is not a training checkpoint of this version (no nf_checkpoint=1, recipe, step "
        "and param_layout in its metadata)", path);
    nf_safetensors_free (st);
    return NULL;
  }
  NfCheckpoint *c = g_new0 (NfCheckpoint, 1);
  c->path = g_strdup (path);
  c->st = st;
  return c;
}

void
nf_checkpoint_free (NfCheckpoint *c)
{
  if (!c)
    return;
  nf_safetensors_free (c->st);
  g_free (c->path);
  g_free (c);
}

const char *
nf_checkpoint_recipe (const NfCheckpoint *c)
{
  return nf_safetensors_metadata (c->st, "recipe");
}

/* Reads tensor name into dst (count floats), checking its element count. */
static gboolean
read_into (const NfCheckpoint *c, const char *name, float *dst, size_t count, GError **error)
{
  const NfStEntry *e = nf_safetensors_find (c->st, name);
  if (!e) {
    g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS, "%s: no tensor %s", c->path, name);
    return FALSE;
  }
  if (nf_st_entry_numel (e) != count) {
    g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS, "%s: %s has %zu values, expected %zu",
        c->path, name, nf_st_entry_numel (e), count);
    return FALSE;
  }
  float *f = nf_safetensors_get_floats (c->st, e, error);
  if (!f)
    return FALSE;
  memcpy (dst, f, count * sizeof (float));
  nf_free (f);
  return TRUE;
}

static gboolean
parse_u64 (const char *s, guint64 *out, guint base)
{
  char *end = NULL;
  if (!s || !*s)
    return FALSE;
  *out = g_ascii_strtoull (s, &end, base);
  return end && *end == '\0';
}

gboolean
nf_checkpoint_restore (const NfCheckpoint *c, NfModel *model, NfParams *params,
    NfCheckpointState *state, GError **error)
{
  char *layout = param_layout (params);
  const char *stored = nf_safetensors_metadata (c->st, "param_layout");
  gboolean same = g_str_equal (layout, stored);
  g_free (layout);
  if (!same) {
    g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
        "%s: the parameters of the network built from its recipe do not match the stored "
        "ones (%s); was it written by another version?", c->path, stored);
    return FALSE;
  }
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, model->tensors);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    NfModelTensor *t = v;
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
      n *= (size_t) t->dims[i];
    if (!read_into (c, k, t->data, n, error))
      return FALSE;
  }
  for (guint i = 0; i < params->views->len; i++) {
    const NfParamView *pv = &g_array_index (params->views, NfParamView, i);
    memcpy (params->params + pv->offset, nf_model_tensor (model, pv->name)->data,
        pv->count * sizeof (float));
  }
  if (!read_into (c, "optim.adam_m", params->m, params->n, error)
      || !read_into (c, "optim.adam_v", params->v, params->n, error))
    return FALSE;
  guint64 step, t, fp = 0;
  double el = 0.0;
  const char *els = nf_safetensors_metadata (c->st, "elapsed_s");
  if (els)
    el = g_ascii_strtod (els, NULL);
  if (!parse_u64 (nf_safetensors_metadata (c->st, "step"), &step, 10)
      || !parse_u64 (nf_safetensors_metadata (c->st, "adam_t"), &t, 10) || t > G_MAXINT) {
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "%s: step or adam_t is not a number",
        c->path);
    return FALSE;
  }
  parse_u64 (nf_safetensors_metadata (c->st, "data_fingerprint"), &fp, 16);
  nf_checkpoint_state_clear (state);
  state->step = step;
  state->adam_t = (int) t;
  state->data_fingerprint = fp;
  state->elapsed_s = el;
  state->recipe_json = g_strdup (nf_checkpoint_recipe (c));
  state->losses = g_strdup (nf_safetensors_metadata (c->st, "losses"));
  return TRUE;
}
