/* nf-evaluate-private.h — what the two files of the nf-evaluate tool share: nf-evaluate.c
 * (options, image selection, output files, sr and flicker) and nf-evaluate-style.c (style
 * scores, and the style of a multi-style model each task runs).
 *
 * The helpers here exit like a tool (usage errors exit 2, failures exit 1); only the
 * nf-evaluate executable links them, never a library.
 * What it does not: the per-image scores (nf-eval.h).
 */
#pragma once

#include <stdio.h>

#include <glib.h>

#include "nf-backend.h"
#include "nf-dataset.h"
#include "nf-model.h"
#include "nf-recipe.h"

G_BEGIN_DECLS

/* The VGG16 loss network's file in ../shared/data/lossnets. */
#define LOSSNET_FILE "vgg16-conv1_1-conv3_3.safetensors"

/* "nf-evaluate: message", "Try 'nf-evaluate --help'.", exit 2. */
void nfe_usage_error (const char *fmt, ...) G_GNUC_PRINTF (1, 2) G_GNUC_NORETURN;
/* "nf-evaluate: e's message", exit 1. */
void nfe_fail (GError *e) G_GNUC_NORETURN;
/* The training recipe in a model's metadata (NULL when absent or foreign). */
NfRecipe *nfe_model_recipe (const NfModel *m);
/* The images to score for a model of recipe r (NULL: none known): --data, else the
 * recipe's folders, else ../shared/data/photos (style) or sr-train; --split, --val-percent
 * and --exclude as given, else as trained. */
NfDataset *nfe_images_for (const NfRecipe *r, gboolean style);
/* With --save, writes rgb (3, h, w; 0..255) as DIR/<label>/<image stem>.png. */
void nfe_save_output (const char *label, const char *image_path, const float *rgb, int w,
    int h);

/* The options of the style task (nf-evaluate.c fills them from the command line). */
typedef struct {
  const char *style_image;      /* --style-image: the painting (NULL: as trained) */
  const char *style;            /* --style: one style of multi-style models (NULL: all) */
  const char *layers;           /* --layers (NULL: relu1_2,relu2_2,relu3_3) */
  const char *lossnet;          /* --lossnet (NULL: $NF_LOSSNET, else the shared one) */
  int style_size;               /* --style-size (0: as trained, else 256) */
  int size;                     /* --size: photos' long side */
  int max_images;               /* --max-images (0: all) */
} NfeStyleOptions;

/* The style task on every model; 0 (exits on a failure). */
int nfe_eval_style (char **models, NfBackend *be, FILE *csv, const NfeStyleOptions *o);

/* For the tasks that run one style of a model (flicker): with style (a name or index),
 * sets m to that style; without, a multi-style model keeps its first. Returns the label
 * of what runs: "NAME" for a model of one style, "NAME/STYLE" for a multi-style one
 * (g_free). A style for a model of one style, or one the model lacks, is a usage error. */
char *nfe_select_style (NfModel *m, const char *path, const char *style);

G_END_DECLS
