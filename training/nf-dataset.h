/* nf-dataset.h — a folder of training images, its train/validation split, and the
 * deterministic batches drawn from it.
 *
 * Files: every *.jpg, *.jpeg and *.png (any case) under the given folders, recursively,
 * sorted by path, minus the names in `exclude`. Each file's size is read from its
 * header (PNG IHDR, JPEG SOF): a file that is not a readable PNG/JPEG, or whose shorter
 * side is below min_side, is skipped and listed in nf_dataset_skipped(), never fatal.
 *
 * Split: a file belongs to the validation set when the FNV-1a 32-bit hash of its base
 * name (e.g. "lomiri_bridge.jpg"), modulo 100, is below val_percent. It depends only on
 * the name, so it is the same on every machine and whatever else is in the folder;
 * `nf-train split` lists it.
 *
 * Batches are pure functions of (seed, batch index): sample p = index * batch + i is
 * file order_e[p mod n] of epoch e = p / n, where order_e is a Fisher-Yates shuffle
 * seeded by (seed, e); its crop, zoom, flip and transposition come from a PCG32 seeded by (seed, p).
 * A file that turns out not to decode is remembered as bad and sample p takes the
 * next good file of the stream (p+1, p+2, ...), which is again the same on every run.
 * So a resumed run needs only the batch index to continue bit-identically.
 *
 * Crops: square crop x crop patches.
 *   short   the image is scaled so that its shorter side is crop * U(zoom_min, zoom_max)
 *           (style training; 1..2 by default), then cropped
 *   native  the image is scaled by U(zoom_min, zoom_max) of its native size (1..1 for SR:
 *           HR pixels untouched), zooms that would leave the image smaller than the crop
 *           are not drawn
 * Only the source window of the crop is resampled (area averaging when shrinking,
 * bilinear when enlarging); then an optional horizontal flip and an optional
 * transposition (both drawn from one PCG32 output, drawn only when either is on). For super-resolution the
 * batch also holds the degraded LR patches (nf-degrade.h).
 *
 * What it does not: run in a thread (nf-loader.h does that), or load whole images for
 * evaluation (the tools use nf-image.h).
 */
#pragma once

#include <glib.h>

#include "nf-degrade.h"

G_BEGIN_DECLS

typedef enum {
  NF_SPLIT_ALL,
  NF_SPLIT_TRAIN,
  NF_SPLIT_VAL,
} NfSplit;

typedef enum {
  NF_CROP_SHORT,
  NF_CROP_NATIVE,
} NfCropMode;

typedef struct {
  NfSplit split;
  int val_percent;              /* 0..100 */
  const char *const *exclude;   /* base names left out entirely, NULL-terminated, or NULL */
  int min_side;                 /* shorter side below this: skipped */
} NfDatasetOptions;

typedef struct {
  char *path;
  char *reason;
} NfSkippedFile;

typedef struct NfDataset NfDataset;

/* dirs: NULL-terminated list of folders. NF_ERROR_IO when a folder cannot be read,
 * NF_ERROR_ARGUMENT when no usable image is left. */
NfDataset *nf_dataset_open (const char *const *dirs, const NfDatasetOptions *opts,
    GError **error);
void nf_dataset_free (NfDataset *ds);

int nf_dataset_size (const NfDataset *ds);
const char *nf_dataset_path (const NfDataset *ds, int i);
void nf_dataset_image_size (const NfDataset *ds, int i, int *w, int *h);
/* Files left out at open (unreadable header, too small), in path order. */
const GArray *nf_dataset_skipped (const NfDataset *ds);       /* NfSkippedFile */
/* Files with a valid name that the split put on the other side, and excluded names. */
int nf_dataset_n_other_split (const NfDataset *ds);
int nf_dataset_n_excluded (const NfDataset *ds);
/* A hash of the list of usable files (FNV-1a 64 over their paths), recorded in
 * checkpoints to notice a changed folder. */
guint64 nf_dataset_fingerprint (const NfDataset *ds);

/* The split rule on its own. */
gboolean nf_split_is_val (const char *base_name, int val_percent);
gboolean nf_split_from_name (const char *name, NfSplit *out);
const char *nf_split_name (NfSplit s);
gboolean nf_crop_mode_from_name (const char *name, NfCropMode *out);
const char *nf_crop_mode_name (NfCropMode m);

/* Reads PNG/JPEG dimensions from the file header only. */
gboolean nf_image_probe_size (const char *path, int *w, int *h, GError **error);

typedef struct {
  int batch;
  int crop;                     /* HR patch side (a multiple of sr_scale) */
  NfCropMode mode;
  float zoom_min, zoom_max;
  gboolean flip;
  gboolean transpose;            /* random transposition (with flip: the 8 dihedral maps) */
  guint64 seed;
  int sr_scale;                 /* > 1: also make LR patches */
  NfDegrade degrade;            /* used when sr_scale > 1 */
} NfBatchSpec;

typedef struct {
  guint64 index;
  int n, crop;
  float *hr;                    // (n, 3, crop, crop), 0..255
  int lr_size;                  /* crop / sr_scale, 0 without LR */
  float *lr;                    // (n, 3, lr_size, lr_size), 0..255 rounded, or NULL
  int *file;                    /* n: file index of each sample */
} NfBatch;

/* Smallest shorter side a file must have for the spec (what min_side defaults to). */
int nf_batch_spec_min_side (const NfBatchSpec *spec);
/* Checks the spec (sizes, zooms, scale) with a message saying what is wrong. */
gboolean nf_batch_spec_validate (const NfBatchSpec *spec, GError **error);

/* Thread-safe. Fails only when no file of the whole stream decodes. */
NfBatch *nf_dataset_make_batch (NfDataset *ds, const NfBatchSpec *spec, guint64 index,
    GError **error);
void nf_batch_free (NfBatch *b);

/* An image file as planar float (3, h, w) 0..255 (nf_free), with its size. */
float *nf_load_planar (const char *path, int *w, int *h, GError **error);

G_END_DECLS
