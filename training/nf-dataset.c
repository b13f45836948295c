/* nf-dataset.c — image folders, the name-hash split, header probing, and deterministic
 * batches of random crops (see nf-dataset.h for the rules).
 *
 * What it does: lists and sorts files, reads sizes from PNG/JPEG headers, derives
 * per-epoch shuffles and per-sample random numbers from the seed with splitmix64, decodes
 * the chosen files (nf-image), cuts, resamples and flips crops, degrades them for SR,
 * and remembers files that fail to decode.
 * What it does not: threads (nf-loader.c), printing (the tools print the skipped list).
 */
#include "nf-dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-error.h"
#include "nf-image.h"
#include "nf-resize.h"
#include "nf-tensor.h"

typedef struct {
  guint64 epoch;
  int *order;                   /* n file indices */
} EpochOrder;

struct NfDataset {
  GPtrArray *paths;             /* usable files, sorted */
  GArray *widths, *heights;     /* int, per usable file */
  GArray *skipped;              /* NfSkippedFile */
  int n_other_split, n_excluded;
  guint64 fingerprint;
  GMutex lock;                  /* guards bad and orders */
  gboolean *bad;                /* files found not to decode */
  EpochOrder orders[2];         /* the two most recent epochs' shuffles */
  int next_order;
};

/* ---- hashing and seeded streams ------------------------------------------------------ */

static guint32
fnv1a32 (const char *s)
{
  guint32 h = 2166136261u;
  for (; *s; s++) {
    h ^= (guint8) * s;
    h *= 16777619u;
  }
  return h;
}

static guint64
splitmix64 (guint64 x)
{
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* A seed for stream `kind` number `i` under the run seed. */
static guint64
derive_seed (guint64 seed, guint64 kind, guint64 i)
{
  return splitmix64 (splitmix64 (seed ^ (kind * 0xd1b54a32d192ed03ULL)) + i);
}

gboolean
nf_split_is_val (const char *base_name, int val_percent)
{
  return (int) (fnv1a32 (base_name) % 100u) < val_percent;
}

gboolean
nf_split_from_name (const char *name, NfSplit *out)
{
  if (g_str_equal (name, "all"))
    *out = NF_SPLIT_ALL;
  else if (g_str_equal (name, "train"))
    *out = NF_SPLIT_TRAIN;
  else if (g_str_equal (name, "val"))
    *out = NF_SPLIT_VAL;
  else
    return FALSE;
  return TRUE;
}

const char *
nf_split_name (NfSplit s)
{
  return s == NF_SPLIT_TRAIN ? "train" : s == NF_SPLIT_VAL ? "val" : "all";
}

gboolean
nf_crop_mode_from_name (const char *name, NfCropMode *out)
{
  if (g_str_equal (name, "short"))
    *out = NF_CROP_SHORT;
  else if (g_str_equal (name, "native"))
    *out = NF_CROP_NATIVE;
  else
    return FALSE;
  return TRUE;
}

const char *
nf_crop_mode_name (NfCropMode m)
{
  return m == NF_CROP_NATIVE ? "native" : "short";
}

/* ---- header probing ------------------------------------------------------------------ */

static gboolean
probe_png (FILE *f, int *w, int *h)
{
  guint8 b[24];
  if (fseek (f, 0, SEEK_SET) || fread (b, 1, 24, f) != 24 || memcmp (b + 12, "IHDR", 4))
    return FALSE;
  *w = (int) (((guint32) b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19]);
  *h = (int) (((guint32) b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23]);
  return *w > 0 && *h > 0;
}

/* Walks the JPEG markers up to the first start-of-frame. */
static gboolean
probe_jpeg (FILE *f, int *w, int *h)
{
  if (fseek (f, 2, SEEK_SET))
    return FALSE;
  for (int guard = 0; guard < 10000; guard++) {
    int c = fgetc (f);
    if (c == EOF)
      return FALSE;
    if (c != 0xFF)
      continue;
    int m;
    do
      m = fgetc (f);
    while (m == 0xFF);
    if (m == EOF)
      return FALSE;
    if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01)
      continue;                 /* markers without a length */
    guint8 lb[2];
    if (fread (lb, 1, 2, f) != 2)
      return FALSE;
    int len = (lb[0] << 8) | lb[1];
    if (len < 2)
      return FALSE;
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
      guint8 s[5];
      if (fread (s, 1, 5, f) != 5)
        return FALSE;
      *h = (s[1] << 8) | s[2];
      *w = (s[3] << 8) | s[4];
      return *w > 0 && *h > 0;
    }
    if (fseek (f, len - 2, SEEK_CUR))
      return FALSE;
  }
  return FALSE;
}

gboolean
nf_image_probe_size (const char *path, int *w, int *h, GError **error)
{
  FILE *f = fopen (path, "rb");
  if (!f) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "%s: cannot open: %s", path,
        g_strerror (errno));
    return FALSE;
  }
  guint8 magic[8] = { 0 };
  size_t got = fread (magic, 1, 8, f);
  gboolean ok = FALSE;
  const char *what = "neither a PNG nor a JPEG file";
  if (got == 8 && !memcmp (magic, "\x89PNG\r\n\x1a\n", 8)) {
    ok = probe_png (f, w, h);
    what = "PNG header unreadable";
  } else if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
    ok = probe_jpeg (f, w, h);
    what = "JPEG without a readable frame header";
  }
  fclose (f);
  if (!ok)
    g_set_error (error, NF_ERROR, NF_ERROR_FORMAT, "%s: %s", path, what);
  return ok;
}

/* ---- listing ------------------------------------------------------------------------- */

static gboolean
has_image_ext (const char *name)
{
  char *l = g_ascii_strdown (name, -1);
  gboolean r = g_str_has_suffix (l, ".jpg") || g_str_has_suffix (l, ".jpeg")
      || g_str_has_suffix (l, ".png");
  g_free (l);
  return r;
}

static gboolean
list_dir (const char *dir, GPtrArray *out, int depth, GError **error)
{
  GDir *d = g_dir_open (dir, 0, error);
  if (!d) {
    g_prefix_error (error, "image folder: ");
    return FALSE;
  }
  const char *name;
  while ((name = g_dir_read_name (d))) {
    if (name[0] == '.')
      continue;
    char *p = g_build_filename (dir, name, NULL);
    if (g_file_test (p, G_FILE_TEST_IS_DIR)) {
      if (depth < 8 && !list_dir (p, out, depth + 1, error)) {
        g_free (p);
        g_dir_close (d);
        return FALSE;
      }
      g_free (p);
    } else if (has_image_ext (name)) {
      g_ptr_array_add (out, p);
    } else {
      g_free (p);
    }
  }
  g_dir_close (d);
  return TRUE;
}

static int
cmp_paths (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
skipped_clear (gpointer p)
{
  NfSkippedFile *s = p;
  g_free (s->path);
  g_free (s->reason);
}

void
nf_dataset_free (NfDataset *ds)
{
  if (!ds)
    return;
  g_ptr_array_unref (ds->paths);
  g_array_free (ds->widths, TRUE);
  g_array_free (ds->heights, TRUE);
  g_array_free (ds->skipped, TRUE);
  g_free (ds->bad);
  for (int i = 0; i < 2; i++)
    g_free (ds->orders[i].order);
  g_mutex_clear (&ds->lock);
  g_free (ds);
}

NfDataset *
nf_dataset_open (const char *const *dirs, const NfDatasetOptions *opts, GError **error)
{
  if (!dirs || !dirs[0]) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "no image folder given");
    return NULL;
  }
  if (opts->val_percent < 0 || opts->val_percent > 100) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "the validation percentage must be 0..100, not %d", opts->val_percent);
    return NULL;
  }
  GPtrArray *all = g_ptr_array_new_with_free_func (g_free);
  for (int i = 0; dirs[i]; i++)
    if (!list_dir (dirs[i], all, 0, error)) {
      g_ptr_array_unref (all);
      return NULL;
    }
  g_ptr_array_sort (all, cmp_paths);

  NfDataset *ds = g_new0 (NfDataset, 1);
  g_mutex_init (&ds->lock);
  ds->paths = g_ptr_array_new_with_free_func (g_free);
  ds->widths = g_array_new (FALSE, FALSE, sizeof (int));
  ds->heights = g_array_new (FALSE, FALSE, sizeof (int));
  ds->skipped = g_array_new (FALSE, TRUE, sizeof (NfSkippedFile));
  g_array_set_clear_func (ds->skipped, skipped_clear);
  ds->fingerprint = 14695981039346656037ULL;
  for (guint i = 0; i < all->len; i++) {
    const char *p = g_ptr_array_index (all, i);
    char *base = g_path_get_basename (p);
    gboolean excluded = opts->exclude && g_strv_contains (opts->exclude, base);
    gboolean val = nf_split_is_val (base, opts->val_percent);
    g_free (base);
    if (excluded) {
      ds->n_excluded++;
      continue;
    }
    if ((opts->split == NF_SPLIT_TRAIN && val) || (opts->split == NF_SPLIT_VAL && !val)) {
      ds->n_other_split++;
      continue;
    }
    int w = 0, h = 0;
    GError *e = NULL;
    NfSkippedFile s = { NULL, NULL };
    if (!nf_image_probe_size (p, &w, &h, &e)) {
      s.reason = g_strdup (e->message + (g_str_has_prefix (e->message, p) ? strlen (p) + 2
              : 0));
      g_error_free (e);
    } else if (MIN (w, h) < opts->min_side) {
      s.reason = g_strdup_printf ("%dx%d, shorter side below %d", w, h, opts->min_side);
    }
    if (s.reason) {
      s.path = g_strdup (p);
      g_array_append_val (ds->skipped, s);
      continue;
    }
    g_ptr_array_add (ds->paths, g_strdup (p));
    g_array_append_val (ds->widths, w);
    g_array_append_val (ds->heights, h);
    for (const char *c = p; *c; c++) {
      ds->fingerprint ^= (guint8) * c;
      ds->fingerprint *= 1099511628211ULL;
    }
    ds->fingerprint ^= 0xff;
    ds->fingerprint *= 1099511628211ULL;
  }
  g_ptr_array_unref (all);
  if (ds->paths->len == 0) {
    GString *dl = g_string_new (NULL);
    for (int i = 0; dirs[i]; i++)
      g_string_append_printf (dl, "%s%s", i ? ", " : "", dirs[i]);
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "no usable image in %s (split %s: %d on the other side of the split, %d excluded, "
        "%u skipped as unreadable or smaller than %d px)", dl->str,
        nf_split_name (opts->split), ds->n_other_split, ds->n_excluded, ds->skipped->len,
        opts->min_side);
    g_string_free (dl, TRUE);
    nf_dataset_free (ds);
    return NULL;
  }
  ds->bad = g_new0 (gboolean, ds->paths->len);
  ds->orders[0].epoch = ds->orders[1].epoch = G_MAXUINT64;
  return ds;
}

int
nf_dataset_size (const NfDataset *ds)
{
  return (int) ds->paths->len;
}

const char *
nf_dataset_path (const NfDataset *ds, int i)
{
  return g_ptr_array_index (ds->paths, i);
}

void
nf_dataset_image_size (const NfDataset *ds, int i, int *w, int *h)
{
  *w = g_array_index (ds->widths, int, i);
  *h = g_array_index (ds->heights, int, i);
}

const GArray *
nf_dataset_skipped (const NfDataset *ds)
{
  return ds->skipped;
}

int
nf_dataset_n_other_split (const NfDataset *ds)
{
  return ds->n_other_split;
}

int
nf_dataset_n_excluded (const NfDataset *ds)
{
  return ds->n_excluded;
}

guint64
nf_dataset_fingerprint (const NfDataset *ds)
{
  return ds->fingerprint;
}

/* ---- the sample stream ----------------------------------------------------------------- */

/* File index at stream position q (caller holds the lock). */
static int
file_at (NfDataset *ds, guint64 seed, guint64 q)
{
  guint64 n = ds->paths->len, e = q / n;
  EpochOrder *o = NULL;
  for (int i = 0; i < 2; i++)
    if (ds->orders[i].epoch == e)
      o = &ds->orders[i];
  if (!o) {
    o = &ds->orders[ds->next_order];
    ds->next_order ^= 1;
    g_free (o->order);
    o->order = g_new (int, n);
    for (guint64 i = 0; i < n; i++)
      o->order[i] = (int) i;
    NfRng rng;
    nf_rng_seed (&rng, derive_seed (seed, 1, e));
    for (guint64 i = n - 1; i > 0; i--) {
      guint64 j = nf_rng_u32 (&rng) % (i + 1);
      int t = o->order[i];
      o->order[i] = o->order[j];
      o->order[j] = t;
    }
    o->epoch = e;
  }
  return o->order[q % n];
}

/* The decoded image for sample p: the first good file at positions p, p+1, ... */
static NfImage *
image_for_sample (NfDataset *ds, guint64 seed, guint64 p, int *file, GError **error)
{
  guint n = ds->paths->len;
  for (guint j = 0; j < n + 1; j++) {
    g_mutex_lock (&ds->lock);
    int f = file_at (ds, seed, p + j);
    gboolean bad = ds->bad[f];
    g_mutex_unlock (&ds->lock);
    if (bad)
      continue;
    GError *e = NULL;
    NfImage *img = nf_image_load (nf_dataset_path (ds, f), &e);
    if (img && MIN (img->width, img->height) >= 1) {
      *file = f;
      return img;
    }
    g_warning ("skipping %s from now on: %s", nf_dataset_path (ds, f),
        e ? e->message : "empty image");
    g_clear_error (&e);
    nf_image_free (img);
    g_mutex_lock (&ds->lock);
    ds->bad[f] = TRUE;
    g_mutex_unlock (&ds->lock);
  }
  g_set_error (error, NF_ERROR, NF_ERROR_IO,
      "none of the %u image files decodes any more", n);
  return NULL;
}

int
nf_batch_spec_min_side (const NfBatchSpec *spec)
{
  if (spec->mode == NF_CROP_SHORT)
    return MAX (1, spec->crop / 2);
  return (int) ceil (spec->crop / (double) spec->zoom_max - 1e-9);
}

gboolean
nf_batch_spec_validate (const NfBatchSpec *spec, GError **error)
{
  const char *why = NULL;
  if (spec->batch < 1 || spec->batch > 1024)
    why = "the batch size must be 1..1024";
  else if (spec->crop < 8 || spec->crop > 4096)
    why = "the crop must be 8..4096 pixels";
  else if (!(spec->zoom_min > 0.0f) || spec->zoom_max < spec->zoom_min || spec->zoom_max > 64.0f)
    why = "the zoom range must be 0 < MIN <= MAX <= 64";
  else if (spec->sr_scale > 1 && spec->crop % spec->sr_scale)
    why = "the crop must be a multiple of the super-resolution scale";
  else if (spec->sr_scale > 1 && spec->crop / spec->sr_scale < 4)
    why = "the crop is too small for the scale (LR patches under 4 pixels)";
  if (why) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s (batch %d, crop %d, zoom %g..%g, "
        "scale %d)", why, spec->batch, spec->crop, spec->zoom_min, spec->zoom_max,
        spec->sr_scale);
    return FALSE;
  }
  return TRUE;
}

/* Cuts the (crop, crop) patch of sample rng out of img into out (3, crop, crop). */
static void
crop_sample (const NfImage *img, const NfBatchSpec *s, NfRng *rng, float *out)
{
  int W = img->width, H = img->height, shorter = MIN (W, H), crop = s->crop;
  /* the same draws for every sample (four, three with neither flip nor transpose), so
   * every sample consumes the same amount of its stream */
  float u = nf_rng_uniform (rng);
  guint32 rx = nf_rng_u32 (rng), ry = nf_rng_u32 (rng);
  guint32 rb = s->flip || s->transpose ? nf_rng_u32 (rng) : 0u;
  gboolean flip = s->flip && (rb & 1u), transpose = s->transpose && (rb & 2u);
  double f;                     /* output pixels per source pixel */
  if (s->mode == NF_CROP_SHORT) {
    f = crop * (s->zoom_min + (s->zoom_max - s->zoom_min) * u) / shorter;
  } else {
    double lo = MAX ((double) s->zoom_min, (double) crop / shorter);
    f = lo >= s->zoom_max ? lo : lo + (s->zoom_max - lo) * u;
  }
  int r = (int) lround (crop / f);
  r = CLAMP (r, 1, shorter);
  int x0 = (int) (rx % (guint32) (W - r + 1)), y0 = (int) (ry % (guint32) (H - r + 1));
  float *win = r == crop ? out : nf_alloc_floats ((size_t) 3 * r * r);  // (3, r, r)
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < r; y++) {
      const uint8_t *row = img->rgb + ((size_t) (y0 + y) * W + x0) * 3 + c;
      float *d = win + ((size_t) c * r + y) * r;
      for (int x = 0; x < r; x++)
        d[flip ? r - 1 - x : x] = row[(size_t) x * 3];
    }
  if (win != out) {
    nf_resize_planar (win, 3, r, r, out, crop, crop);
    nf_free (win);
  }
  if (transpose)                /* with the flip: all 8 rotations and mirror images */
    for (int c = 0; c < 3; c++) {
      float *p = out + (size_t) c * crop * crop;
      for (int y = 0; y < crop; y++)
        for (int x = y + 1; x < crop; x++) {
          float t = p[(size_t) y * crop + x];
          p[(size_t) y * crop + x] = p[(size_t) x * crop + y];
          p[(size_t) x * crop + y] = t;
        }
    }
}

void
nf_batch_free (NfBatch *b)
{
  if (!b)
    return;
  nf_free (b->hr);
  nf_free (b->lr);
  g_free (b->file);
  g_free (b);
}

NfBatch *
nf_dataset_make_batch (NfDataset *ds, const NfBatchSpec *spec, guint64 index, GError **error)
{
  if (!nf_batch_spec_validate (spec, error))
    return NULL;
  int n = spec->batch, crop = spec->crop;
  size_t per = (size_t) 3 * crop * crop;
  NfBatch *b = g_new0 (NfBatch, 1);
  b->index = index;
  b->n = n;
  b->crop = crop;
  b->hr = nf_alloc_floats (per * n);
  b->file = g_new0 (int, n);
  if (spec->sr_scale > 1) {
    b->lr_size = crop / spec->sr_scale;
    b->lr = nf_alloc_floats ((size_t) 3 * b->lr_size * b->lr_size * n);
  }
  for (int i = 0; i < n; i++) {
    guint64 p = index * (guint64) n + i;
    NfImage *img = image_for_sample (ds, spec->seed, p, &b->file[i], error);
    if (!img) {
      nf_batch_free (b);
      return NULL;
    }
    NfRng rng;
    nf_rng_seed (&rng, derive_seed (spec->seed, 2, p));
    crop_sample (img, spec, &rng, b->hr + per * i);
    nf_image_free (img);
    NfDegrade dg = spec->degrade;       /* video's noise/JPEG draw: this sample's own */
    dg.seed = derive_seed (spec->seed, 3, p);
    if (b->lr && !nf_degrade_planar (&dg, b->hr + per * i, 3, crop, crop,
            b->lr + (size_t) 3 * b->lr_size * b->lr_size * i, error)) {
      nf_batch_free (b);
      return NULL;
    }
  }
  return b;
}

float *
nf_load_planar (const char *path, int *w, int *h, GError **error)
{
  NfImage *img = nf_image_load (path, error);
  if (!img)
    return NULL;
  float *p = nf_alloc_floats ((size_t) 3 * img->width * img->height);
  nf_image_to_planar (img, p, 0.0f, 255.0f);
  *w = img->width;
  *h = img->height;
  nf_image_free (img);
  return p;
}
