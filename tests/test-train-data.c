/* test-train-data.c — the training data pipeline on a synthetic folder (no shared
 * data needed).
 *
 * The folder (made in a temporary directory): PNG and JPEG images of several sizes in
 * two levels of folders, a tiny image, a file with a broken header, a PNG whose header
 * is fine but whose pixels are truncated (found only when decoded), and a text file.
 * Checks: listing and skipping (with reasons), the name-hash split (FNV-1a values
 * computed by hand in Python: "lomiri_bridge.jpg" -> 24, "100075.png" -> 5,
 * "a" -> 20), train + val = all and disjoint, --exclude; batches are a pure function of
 * (seed, index) (same twice, different for another index or seed), one epoch of
 * batch-1 samples visits every file once; crops are exact windows of the source at
 * native zoom (pixel values encode their coordinates) and mirrored when flipped; the
 * truncated file is skipped with a warning and replaced deterministically; SR batches
 * hold the degraded LR patches; the loader thread returns exactly the batches made
 * directly, in order, from any starting index, also with its batches in the caller's
 * memory (a counting allocator: slots made once, batches in them, a held batch never
 * overwritten, the held limit an error, everything freed); bad specs are clear errors.
 * Does not: test resampling or metrics (test-train-metrics.c).
 */
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-dataset.h"
#include "nf-error.h"
#include "nf-image.h"
#include "nf-loader.h"
#include "nf-tensor.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

/* R = x, G = y, B = tag: every pixel says where it came from (sides <= 256). */
/* A caller's allocator for the loader that counts and remembers its buffers. */
typedef struct {
  int allocs, frees;
  GPtrArray *bufs;
} Counter;

static void *
counting_alloc (gpointer user, size_t bytes, GError **error)
{
  Counter *c = user;
  void *p = g_malloc (bytes);
  c->allocs++;
  g_ptr_array_add (c->bufs, p);
  return p;
}

static void
counting_free (gpointer user, void *p)
{
  Counter *c = user;
  if (g_ptr_array_remove (c->bufs, p))
    c->frees++;
  g_free (p);
}

static void
write_coord_image (const char *path, int w, int h, int tag)
{
  NfImage *img = nf_image_new (w, h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = img->rgb + ((size_t) y * w + x) * 3;
      p[0] = (uint8_t) x;
      p[1] = (uint8_t) y;
      p[2] = (uint8_t) tag;
    }
  GError *e = NULL;
  if (!nf_image_save (img, path, &e)) {
    printf ("FAIL writing %s: %s\n", path, e->message);
    failures++;
    g_error_free (e);
  }
  nf_image_free (img);
}

static gboolean
same_batch (const NfBatch *a, const NfBatch *b)
{
  if (a->n != b->n || a->crop != b->crop || a->lr_size != b->lr_size)
    return FALSE;
  size_t n = (size_t) a->n * 3 * a->crop * a->crop;
  if (memcmp (a->hr, b->hr, n * sizeof (float)))
    return FALSE;
  if (a->lr && memcmp (a->lr, b->lr, (size_t) a->n * 3 * a->lr_size * a->lr_size
          * sizeof (float)))
    return FALSE;
  return memcmp (a->file, b->file, a->n * sizeof (int)) == 0;
}

static void
test_split_rule (void)
{
  CHECK (nf_split_is_val ("lomiri_bridge.jpg", 25) && !nf_split_is_val ("lomiri_bridge.jpg",
          24), "lomiri_bridge.jpg hashes to 24");
  CHECK (nf_split_is_val ("100075.png", 6) && !nf_split_is_val ("100075.png", 5),
      "100075.png hashes to 5");
  CHECK (nf_split_is_val ("a", 21) && !nf_split_is_val ("a", 20), "\"a\" hashes to 20");
}

int
main (void)
{
  test_split_rule ();
  GError *e = NULL;
  char *root = g_dir_make_tmp ("nf-test-data-XXXXXX", &e);
  if (!root) {
    printf ("FAIL tmp dir: %s\n", e->message);
    return 1;
  }
  char *sub = g_build_filename (root, "sub", NULL);
  g_mkdir (sub, 0755);
  char *names[] = { "img_a.png", "img_b.png", "img_c.jpg", "sub/img_d.png", "sub/img_e.png",
    "img_f.png", NULL
  };
  int sizes[][2] = { {80, 60}, {64, 64}, {100, 70}, {70, 90}, {96, 72}, {66, 81} };
  for (int i = 0; names[i]; i++) {
    char *p = g_build_filename (root, names[i], NULL);
    write_coord_image (p, sizes[i][0], sizes[i][1], 10 * (i + 1));
    g_free (p);
  }
  char *tiny = g_build_filename (root, "tiny.png", NULL);
  write_coord_image (tiny, 20, 12, 200);
  char *broken = g_build_filename (root, "broken.jpg", NULL);
  g_file_set_contents (broken, "this is not a jpeg", -1, NULL);
  char *txt = g_build_filename (root, "notes.txt", NULL);
  g_file_set_contents (txt, "ignored", -1, NULL);
  /* a PNG cut after its header: the size probe works, decoding fails */
  char *trunc = g_build_filename (root, "sub", "trunc.png", NULL);
  {
    char *src = g_build_filename (root, "img_a.png", NULL);
    gchar *bytes;
    gsize len;
    g_file_get_contents (src, &bytes, &len, NULL);
    g_file_set_contents (trunc, bytes, MIN (len, 60), NULL);
    g_free (bytes);
    g_free (src);
  }

  const char *dirs[] = { root, NULL };
  NfDatasetOptions o = {.split = NF_SPLIT_ALL,.val_percent = 10,.min_side = 32 };
  NfDataset *all = nf_dataset_open (dirs, &o, &e);
  CHECK (all && nf_dataset_size (all) == 7, "7 usable files (6 images + the truncated one), got %d",
      all ? nf_dataset_size (all) : -1);
  if (!all) {
    printf ("open: %s\n", e->message);
    return 1;
  }
  const GArray *sk = nf_dataset_skipped (all);
  CHECK (sk->len == 2, "2 skipped files (broken header, tiny), got %u", sk->len);
  for (guint i = 0; i < sk->len; i++) {
    const NfSkippedFile *s = &g_array_index (sk, NfSkippedFile, i);
    printf ("skipped %s: %s\n", s->path, s->reason);
  }
  CHECK (sk->len == 2 && strstr (g_array_index (sk, NfSkippedFile, 0).reason, "JPEG")
      && strstr (g_array_index (sk, NfSkippedFile, 1).reason, "20x12"),
      "skip reasons name the problem");
  for (int i = 1; i < nf_dataset_size (all); i++)
    CHECK (strcmp (nf_dataset_path (all, i - 1), nf_dataset_path (all, i)) < 0, "sorted");

  /* split: train and val partition the folder */
  o.val_percent = 40;
  o.split = NF_SPLIT_TRAIN;
  NfDataset *tr = nf_dataset_open (dirs, &o, NULL);
  o.split = NF_SPLIT_VAL;
  NfDataset *va = nf_dataset_open (dirs, &o, NULL);
  int ntr = tr ? nf_dataset_size (tr) : 0, nva = va ? nf_dataset_size (va) : 0;
  CHECK (ntr + nva == 7 && ntr > 0 && nva > 0, "train %d + val %d = 7", ntr, nva);
  for (int i = 0; i < ntr; i++)
    for (int j = 0; j < nva; j++)
      CHECK (strcmp (nf_dataset_path (tr, i), nf_dataset_path (va, j)), "disjoint");
  for (int j = 0; j < nva; j++) {
    char *b = g_path_get_basename (nf_dataset_path (va, j));
    CHECK (nf_split_is_val (b, 40), "%s is validation by its hash", b);
    g_free (b);
  }
  nf_dataset_free (tr);
  nf_dataset_free (va);
  const char *excl[] = { "img_b.png", "img_f.png", NULL };
  o.split = NF_SPLIT_ALL;
  o.exclude = excl;
  NfDataset *ex = nf_dataset_open (dirs, &o, NULL);
  CHECK (ex && nf_dataset_size (ex) == 5 && nf_dataset_n_excluded (ex) == 2, "exclude list");
  nf_dataset_free (ex);
  o.exclude = NULL;
  o.min_side = 500;
  NfDataset *none = nf_dataset_open (dirs, &o, &e);
  CHECK (!none && e && e->code == NF_ERROR_ARGUMENT, "nothing usable is an error");
  if (e)
    printf ("expected error: %s\n", e->message);
  g_clear_error (&e);

  /* batches: native zoom 1, exact windows */
  NfBatchSpec spec = {.batch = 3,.crop = 32,.mode = NF_CROP_NATIVE,.zoom_min = 1.0f,
    .zoom_max = 1.0f,.flip = TRUE,.seed = 7
  };
  NfBatch *b0 = nf_dataset_make_batch (all, &spec, 0, &e);
  NfBatch *b0again = nf_dataset_make_batch (all, &spec, 0, NULL);
  NfBatch *b1 = nf_dataset_make_batch (all, &spec, 1, NULL);
  spec.seed = 8;
  NfBatch *b0seed = nf_dataset_make_batch (all, &spec, 0, NULL);
  spec.seed = 7;
  CHECK (b0 && b0again && b1 && b0seed, "batches made");
  if (!b0) {
    printf ("make_batch: %s\n", e->message);
    return 1;
  }
  CHECK (same_batch (b0, b0again), "same (seed, index): same batch");
  CHECK (!same_batch (b0, b1) && !same_batch (b0, b0seed), "other index or seed: other batch");
  int flipped = 0;
  for (int bi = 0; bi < 40; bi++) {
    NfBatch *b = nf_dataset_make_batch (all, &spec, bi, NULL);
    for (int i = 0; b && i < b->n; i++) {
      const float *r = b->hr + (size_t) i * 3 * 32 * 32, *g = r + 32 * 32, *bl = g + 32 * 32;
      /* PNG: exact; the JPEG is lossy, so within a few levels */
      float tol = g_str_has_suffix (nf_dataset_path (all, b->file[i]), ".png") ? 0.0f : 6.0f;
      float dx = r[31] > r[0] ? 1.0f : -1.0f;
      gboolean ok = TRUE;
      for (int y = 0; y < 32 && ok; y++)
        for (int x = 0; x < 32 && ok; x++) {
          ok = fabsf (r[y * 32 + x] - (r[0] + dx * x)) <= tol
              && fabsf (g[y * 32 + x] - (g[0] + y)) <= tol
              && fabsf (bl[y * 32 + x] - bl[0]) <= tol;
        }
      CHECK (ok, "batch %d sample %d (%s) is a (maybe mirrored) window", bi, i,
          nf_dataset_path (all, b->file[i]));
      flipped += dx < 0;
    }
    nf_batch_free (b);
  }
  CHECK (flipped > 10 && flipped < 110, "about half the crops are flipped (%d of 120)", flipped);

  /* with transpose: the window or its transposition (R then runs down, G across) */
  NfBatchSpec tspec = spec;
  tspec.transpose = TRUE;
  int transposed = 0, tflipped = 0;
  for (int bi = 0; bi < 40; bi++) {
    NfBatch *b = nf_dataset_make_batch (all, &tspec, bi, NULL);
    for (int i = 0; b && i < b->n; i++) {
      const float *r = b->hr + (size_t) i * 3 * 32 * 32, *g = r + 32 * 32;
      float tol = g_str_has_suffix (nf_dataset_path (all, b->file[i]), ".png") ? 0.0f : 6.0f;
      gboolean t = fabsf (g[31] - g[0]) > fabsf (g[31 * 32] - g[0]);     /* G runs across */
      float dr = t ? (r[31 * 32] > r[0] ? 1.0f : -1.0f) : (r[31] > r[0] ? 1.0f : -1.0f);
      gboolean ok = TRUE;
      for (int y = 0; y < 32 && ok; y++)
        for (int x = 0; x < 32 && ok; x++) {
          int along = t ? y : x, across = t ? x : y;
          ok = fabsf (r[y * 32 + x] - (r[0] + dr * along)) <= tol
              && fabsf (g[y * 32 + x] - (g[0] + across)) <= tol;
        }
      CHECK (ok, "transpose: batch %d sample %d (%s) is a (maybe mirrored, maybe transposed) "
          "window", bi, i, nf_dataset_path (all, b->file[i]));
      transposed += t;
      tflipped += dr < 0;
    }
    nf_batch_free (b);
  }
  CHECK (transposed > 10 && transposed < 110 && tflipped > 10 && tflipped < 110,
      "about half the crops are transposed (%d of 120), half flipped (%d)", transposed, tflipped);

  /* one epoch of batch 1 visits every file once; the truncated file is replaced */
  NfBatchSpec one = spec;
  one.batch = 1;
  int n = nf_dataset_size (all);
  int *count = g_new0 (int, n);
  for (int i = 0; i < n; i++) {
    NfBatch *b = nf_dataset_make_batch (all, &one, i, NULL);
    if (b)
      count[b->file[0]]++;
    nf_batch_free (b);
  }
  int trunc_idx = -1;
  for (int i = 0; i < n; i++)
    if (g_str_has_suffix (nf_dataset_path (all, i), "trunc.png"))
      trunc_idx = i;
  for (int i = 0; i < n; i++)
    CHECK (i == trunc_idx ? count[i] == 0 : count[i] >= 1 && count[i] <= 2,
        "%s drawn %d times in one epoch", nf_dataset_path (all, i), count[i]);
  g_free (count);

  /* short mode and SR batches */
  NfBatchSpec sr = spec;
  sr.mode = NF_CROP_SHORT;
  sr.zoom_min = 1.0f;
  sr.zoom_max = 1.5f;
  sr.crop = 48;
  sr.sr_scale = 4;
  sr.degrade = (NfDegrade) { NF_DEGRADE_BLUR_BICUBIC, 1.0, 4 };
  NfBatch *sb = nf_dataset_make_batch (all, &sr, 3, &e);
  CHECK (sb && sb->lr && sb->lr_size == 12, "SR batch with 12x12 LR patches");
  if (sb) {
    float *lr = nf_alloc_floats ((size_t) 3 * 12 * 12);
    nf_degrade_planar (&sr.degrade, sb->hr + (size_t) 3 * 48 * 48, 3, 48, 48, lr, NULL);
    CHECK (!memcmp (lr, sb->lr + (size_t) 3 * 12 * 12, sizeof (float) * 3 * 12 * 12),
        "LR = degrade(HR)");
    nf_free (lr);
  }
  nf_batch_free (sb);
  sr.crop = 50;
  CHECK (!nf_dataset_make_batch (all, &sr, 0, &e) && e, "crop 50 is not a multiple of 4");
  if (e)
    printf ("expected error: %s\n", e->message);
  g_clear_error (&e);
  sr.crop = 48;

  /* the loader gives the same batches, in order, from a resumed index */
  NfLoader *ld = nf_loader_new (all, &spec, 5, 2, &e);
  for (int i = 5; ld && i < 12; i++) {
    NfBatch *a = nf_loader_next (ld, &e);
    NfBatch *d = nf_dataset_make_batch (all, &spec, i, NULL);
    CHECK (a && d && a->index == (guint64) i && same_batch (a, d), "loader batch %d", i);
    nf_batch_free (a);
    nf_batch_free (d);
  }
  nf_loader_free (ld);          /* stops a thread that is blocked on a full queue */

  /* the same with the batches in the caller's memory (SR: hr and lr buffers) */
  Counter cnt = { 0, 0, g_ptr_array_new () };
  NfLoaderMemory mem = { counting_alloc, counting_free, &cnt, 2 };
  ld = nf_loader_new_full (all, &sr, 3, 2, &mem, &e);
  CHECK (ld && cnt.allocs == (2 + 2) * 2, "(depth 2 + held 2) slots of hr + lr, got %d "
      "buffers", cnt.allocs);
  NfBatch *held = NULL;
  float *held_copy = nf_alloc_floats ((size_t) 2 * 3 * 48 * 48);
  for (int i = 3; ld && i < 12; i++) {
    NfBatch *a = nf_loader_next (ld, &e);
    NfBatch *d = nf_dataset_make_batch (all, &sr, i, NULL);
    CHECK (a && d && a->index == (guint64) i && same_batch (a, d)
        && !memcmp (a->lr, d->lr, sizeof (float) * 2 * 3 * 12 * 12),
        "loader batch %d in the caller's memory", i);
    CHECK (a && g_ptr_array_find (cnt.bufs, a->hr, NULL)
        && g_ptr_array_find (cnt.bufs, a->lr, NULL), "batch %d's pixels in the slots", i);
    nf_batch_free (d);
    if (i == 3) {
      /* keep this one for a while: the thread must not reuse its slot */
      held = a;
      if (a)
        memcpy (held_copy, a->hr, sizeof (float) * 2 * 3 * 48 * 48);
      continue;
    }
    if (i == 4) {
      NfBatch *x = nf_loader_next (ld, &e);
      CHECK (!x && e && e->code == NF_ERROR_ARGUMENT, "a third batch over held 2 is an error");
      if (e)
        printf ("expected error: %s\n", e->message);
      g_clear_error (&e);
      nf_loader_release (ld, x);
    }
    nf_loader_release (ld, a);
  }
  CHECK (held && !memcmp (held_copy, held->hr, sizeof (float) * 2 * 3 * 48 * 48),
      "a held batch is not overwritten while 8 more pass through the slots");
  nf_loader_release (ld, held);
  nf_free (held_copy);
  nf_loader_free (ld);
  CHECK (cnt.frees == cnt.allocs && cnt.bufs->len == 0, "every slot freed (%d of %d)",
      cnt.frees, cnt.allocs);
  g_ptr_array_unref (cnt.bufs);

  nf_batch_free (b0);
  nf_batch_free (b0again);
  nf_batch_free (b1);
  nf_batch_free (b0seed);
  nf_dataset_free (all);
  /* clean up */
  for (int i = 0; names[i]; i++) {
    char *p = g_build_filename (root, names[i], NULL);
    g_unlink (p);
    g_free (p);
  }
  g_unlink (tiny);
  g_unlink (broken);
  g_unlink (txt);
  g_unlink (trunc);
  g_rmdir (sub);
  g_rmdir (root);
  g_free (tiny);
  g_free (broken);
  g_free (txt);
  g_free (trunc);
  g_free (sub);
  g_free (root);
  if (failures) {
    printf ("%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all checks passed\n");
  return 0;
}
