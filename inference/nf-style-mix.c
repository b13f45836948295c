/* nf-style-mix.c — the style settings of the neuralstyle element and their application
 * to a multi-style model (see nf-style-mix.h).
 *
 * What it does: keeps the setting in effect (style, style-mix or style-position) under
 * a lock with a serial number that changes with it; parses style-mix strings; on the
 * model's thread, resolves names against the model and writes its mix when the serial or
 * the model changed, remembering the mix written (a model freed and another loaded at
 * the same address is then noticed by its mix) and reporting each failure once.
 * What it does not: post bus messages or know GObject (gst/gstneuralstyle-mix.c).
 */
#include "nf-style-mix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nf-error.h"

typedef enum { KIND_NONE, KIND_STYLE, KIND_MIX, KIND_POSITION } Kind;

typedef struct {
  gchar *name;                  /* a style name or a decimal index */
  gdouble weight;
} Entry;

#define MAX_ENTRIES 1024

struct NfStyleMix {
  GMutex lock;
  /* the lock guards these */
  Kind kind;                    /* the setting in effect */
  gchar *style;                 /* as set (NULL: cleared) */
  gchar *mix;                   /* as set (NULL: cleared) */
  GArray *entries;              /* Entry: the parsed mix */
  gdouble position;             /* < 0: cleared */
  guint serial;                 /* changes with the setting in effect */
  /* the applying thread's own */
  NfModel *model;               /* last model applied to or reported for */
  guint done_serial;
  gfloat *applied;              /* the mix written into it (applied_n), or NULL */
  gint applied_n;
  NfModel *told_single;         /* the single-style model already warned about */
};

static void
entry_clear (gpointer p)
{
  g_free (((Entry *) p)->name);
}

NfStyleMix *
nf_style_mix_new (void)
{
  NfStyleMix *s = g_new0 (NfStyleMix, 1);
  g_mutex_init (&s->lock);
  s->entries = g_array_new (FALSE, TRUE, sizeof (Entry));
  g_array_set_clear_func (s->entries, entry_clear);
  s->position = -1.0;
  s->serial = 1;                /* the model's first application happens */
  return s;
}

void
nf_style_mix_free (NfStyleMix * s)
{
  if (!s)
    return;
  g_mutex_clear (&s->lock);
  g_free (s->style);
  g_free (s->mix);
  g_array_unref (s->entries);
  g_free (s->applied);
  g_free (s);
}

/* ---- parsing ------------------------------------------------------------------------ */

static gboolean
bad (GError ** error, const gchar * fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
bad (GError ** error, const gchar * fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  gchar *m = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, NF_ERROR, NF_ERROR_ARGUMENT, m);
  g_free (m);
  return FALSE;
}

/* "name:w, name:w" into entries (Entry; appended). */
static gboolean
parse_entries (const gchar * value, GArray * entries, GError ** error)
{
  gchar **tok = g_strsplit (value, ",", -1);
  gboolean ok = TRUE;
  for (gint i = 0; ok && tok[i]; i++) {
    gchar *t = g_strstrip (tok[i]);
    gchar *colon = strrchr (t, ':');
    if (!*t) {
      ok = bad (error, "style-mix \"%s\": an empty entry (write name:weight,name:weight)",
          value);
      break;
    }
    if (!colon) {
      ok = bad (error, "style-mix \"%s\": \"%s\" has no weight (write name:weight, e.g. "
          "%s:0.5)", value, t, t);
      break;
    }
    *colon = '\0';
    gchar *name = g_strstrip (t), *w = g_strstrip (colon + 1), *end = NULL;
    gdouble v = g_ascii_strtod (w, &end);
    if (!*name)
      ok = bad (error, "style-mix \"%s\": an entry has no style name", value);
    else if (!*w || end == w || *end || !isfinite (v))
      ok = bad (error, "style-mix \"%s\": the weight \"%s\" of %s is not a finite number",
          value, w, name);
    else if (entries->len >= MAX_ENTRIES)
      ok = bad (error, "style-mix: more than %d entries", MAX_ENTRIES);
    for (guint k = 0; ok && k < entries->len; k++)
      if (g_str_equal (g_array_index (entries, Entry, k).name, name))
        ok = bad (error, "style-mix \"%s\": %s is named twice", value, name);
    if (ok) {
      Entry e = {.name = g_strdup (name),.weight = v };
      g_array_append_val (entries, e);
    }
  }
  g_strfreev (tok);
  return ok;
}

/* ", "-joined style names of m (g_free). */
static gchar *
names_of (const NfModel * m)
{
  return g_strjoinv (", ", m->style_names);
}

/* w (m->n_styles) from entries; FALSE + error for a name the model lacks. */
static gboolean
resolve_entries (const GArray * entries, const NfModel * m, gfloat * w, GError ** error)
{
  memset (w, 0, sizeof (gfloat) * m->n_styles);
  gboolean *seen = g_new0 (gboolean, m->n_styles);
  gboolean ok = TRUE;
  for (guint k = 0; ok && k < entries->len; k++) {
    const Entry *e = &g_array_index (entries, Entry, k);
    gint i = nf_model_style_index (m, e->name);
    if (i < 0) {
      gchar *names = names_of (m);
      ok = bad (error, "style-mix: the model has no style \"%s\" (its styles: %s; or an "
          "index 0..%d)", e->name, names, m->n_styles - 1);
      g_free (names);
    } else if (seen[i]) {
      ok = bad (error, "style-mix: style %d (%s) is named twice", i, m->style_names[i]);
    } else {
      seen[i] = TRUE;
      w[i] = (gfloat) e->weight;
    }
  }
  g_free (seen);
  return ok;
}

gboolean
nf_style_mix_parse_for_model (const gchar * value, const NfModel * m, gfloat * w,
    GError ** error)
{
  GArray *entries = g_array_new (FALSE, TRUE, sizeof (Entry));
  g_array_set_clear_func (entries, entry_clear);
  gboolean ok = parse_entries (value, entries, error)
      && resolve_entries (entries, m, w, error);
  g_array_unref (entries);
  return ok;
}

/* ---- setters and getters -------------------------------------------------------------- */

/* A setting of kind k is now in effect (lock held). */
static void
take_effect (NfStyleMix * s, Kind k)
{
  s->kind = k;
  s->serial++;
}

gboolean
nf_style_mix_set_style (NfStyleMix * s, const gchar * value, GError ** error)
{
  gchar *v = g_strstrip (g_strdup (value ? value : ""));
  if (strchr (v, ':') || strchr (v, ',')) {
    bad (error, "style \"%s\": one style name or index (a mix goes in style-mix)", v);
    g_free (v);
    return FALSE;
  }
  g_mutex_lock (&s->lock);
  gboolean same = s->kind == KIND_STYLE && g_strcmp0 (s->style, v) == 0;
  g_free (s->style);
  s->style = *v ? v : NULL;
  if (!*v)
    g_free (v);
  if (!same && (s->style || s->kind == KIND_STYLE))
    take_effect (s, s->style ? KIND_STYLE : KIND_NONE);
  g_mutex_unlock (&s->lock);
  return TRUE;
}

gboolean
nf_style_mix_set_mix (NfStyleMix * s, const gchar * value, GError ** error)
{
  gchar *v = g_strstrip (g_strdup (value ? value : ""));
  GArray *entries = g_array_new (FALSE, TRUE, sizeof (Entry));
  g_array_set_clear_func (entries, entry_clear);
  if (*v && !parse_entries (v, entries, error)) {
    g_array_unref (entries);
    g_free (v);
    return FALSE;
  }
  g_mutex_lock (&s->lock);
  gboolean same = s->kind == KIND_MIX && g_strcmp0 (s->mix, v) == 0;
  g_free (s->mix);
  s->mix = *v ? v : NULL;
  if (!*v)
    g_free (v);
  g_array_unref (s->entries);
  s->entries = entries;
  if (!same && (s->mix || s->kind == KIND_MIX))
    take_effect (s, s->mix ? KIND_MIX : KIND_NONE);
  g_mutex_unlock (&s->lock);
  return TRUE;
}

gboolean
nf_style_mix_set_position (NfStyleMix * s, gdouble value, GError ** error)
{
  if (!isfinite (value))
    return bad (error, "style-position %g is not a finite number", value);
  g_mutex_lock (&s->lock);
  gboolean set = value >= 0.0;
  gboolean same = s->kind == KIND_POSITION && set && s->position == value;
  s->position = set ? value : -1.0;
  if (!same && (set || s->kind == KIND_POSITION))
    take_effect (s, set ? KIND_POSITION : KIND_NONE);
  g_mutex_unlock (&s->lock);
  return TRUE;
}

gchar *
nf_style_mix_dup_style (NfStyleMix * s)
{
  g_mutex_lock (&s->lock);
  gchar *v = g_strdup (s->style);
  g_mutex_unlock (&s->lock);
  return v;
}

gchar *
nf_style_mix_dup_mix (NfStyleMix * s)
{
  g_mutex_lock (&s->lock);
  gchar *v = g_strdup (s->mix);
  g_mutex_unlock (&s->lock);
  return v;
}

gdouble
nf_style_mix_get_position (NfStyleMix * s)
{
  g_mutex_lock (&s->lock);
  gdouble v = s->position;
  g_mutex_unlock (&s->lock);
  return v;
}

/* ---- applying ------------------------------------------------------------------------------ */

/* The mix of a setting of kind k for m into w (m->n_styles). */
static gboolean
mix_for (Kind k, const gchar * style, const GArray * entries, gdouble pos, const NfModel * m,
    gfloat * w, GError ** error)
{
  gint n = m->n_styles;
  memset (w, 0, sizeof (gfloat) * n);
  switch (k) {
    case KIND_NONE:            /* the model's default: its first style */
      w[0] = 1.0f;
      return TRUE;
    case KIND_STYLE:{
      gint i = nf_model_style_index (m, style);
      if (i < 0) {
        gchar *names = names_of (m);
        bad (error, "style \"%s\": the model has no such style (its styles: %s; or an index "
            "0..%d)", style, names, n - 1);
        g_free (names);
        return FALSE;
      }
      w[i] = 1.0f;
      return TRUE;
    }
    case KIND_MIX:
      return resolve_entries (entries, m, w, error);
    case KIND_POSITION:{
      gdouble p = CLAMP (pos, 0.0, (gdouble) (n - 1));
      gint i = (gint) floor (p);
      gdouble f = p - i;
      w[i] = (gfloat) (1.0 - f);
      if (i + 1 < n)
        w[i + 1] = (gfloat) f;
      return TRUE;
    }
  }
  return FALSE;
}

static const gchar *
kind_name (Kind k)
{
  return k == KIND_STYLE ? "style" : k == KIND_MIX ? "style-mix" : "style-position";
}

NfStyleMixResult
nf_style_mix_apply (NfStyleMix * s, NfModel * m, GError ** error)
{
  if (!m)
    return NF_STYLE_MIX_UNCHANGED;
  g_mutex_lock (&s->lock);
  Kind k = s->kind;
  guint serial = s->serial;
  gchar *style = g_strdup (s->style);
  GArray *entries = g_array_ref (s->entries);
  gdouble pos = s->position;
  g_mutex_unlock (&s->lock);

  NfStyleMixResult res = NF_STYLE_MIX_UNCHANGED;
  gboolean same = m == s->model && serial == s->done_serial;
  if (same && s->applied && s->applied_n == m->n_styles
      && memcmp (s->applied, m->style_mix, sizeof (gfloat) * m->n_styles) != 0)
    same = FALSE;               /* another model at the same address: apply again */
  if (same)
    goto out;
  s->model = m;
  s->done_serial = serial;
  g_clear_pointer (&s->applied, g_free);
  if (m->n_styles == 0) {
    /* one warning per single-style model, not one per value (an animated
     * style-position would otherwise warn on every frame) */
    if (k != KIND_NONE && s->told_single != m) {
      s->told_single = m;
      bad (error, "%s: the model has one style (no conditional instance norm); %s is "
          "ignored", kind_name (k), kind_name (k));
      res = NF_STYLE_MIX_IGNORED;
    }
    goto out;
  }
  gfloat *w = g_new0 (gfloat, m->n_styles);
  if (mix_for (k, style, entries, pos, m, w, error)
      && nf_model_set_style_mix (m, w, m->n_styles, error)) {
    s->applied = w;
    s->applied_n = m->n_styles;
    res = NF_STYLE_MIX_APPLIED;
  } else {
    g_free (w);
    res = NF_STYLE_MIX_FAILED;
  }
out:
  g_free (style);
  g_array_unref (entries);
  return res;
}
