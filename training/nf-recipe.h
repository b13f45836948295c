/* nf-recipe.h — everything that defines a training run, as one struct that the tool's
 * options fill, that is stored as JSON in checkpoints (so `nf-train resume` needs only
 * the run folder) and in the "training" metadata of the final weight file (so every
 * shipped model can be reproduced).
 *
 * Two groups of fields: the recipe proper (architecture, data, crops, optimiser,
 * losses, seed — fixed for the life of a run; only `iters` may be raised on resume) and
 * run settings (folder, output, backend, how often to print/log/preview/checkpoint —
 * free to change on resume). A table describes every field once (JSON key = option
 * name, type, group, help), and the option entries, the JSON writer/reader and the
 * help text are generated from it.
 *
 * Defaults (nf_recipe_new) follow DESIGN.md §6 and Johnson et al. 2016:
 *   style: style-full, photos, 256 crops (shorter side scaled to 256..512 first), batch 4,
 *          40000 iterations, Adam 1e-3 with cosine annealing to 1e-5, content relu2_2
 *          weight 1, style relu1_2,relu2_2,relu3_3 weight 0.5 (README: measured trade-off),
 *          TV strength 1e-6 (Johnson's units)
 *   sr:    sr-johnson x4, sr-train, 288 HR crops at native resolution, LR by plain
 *          antialiased bicubic (MATLAB imresize; the standard SR benchmark degradation,
 *          --degrade blur-bicubic for Johnson's Gaussian sigma 1 first), batch 4, 200000 iterations, Adam 1e-3 (500 warm-up steps) cosine to
 *          1e-5, perceptual loss at relu2_2 (weight 1) + TV 1e-6; --loss pixel|mix
 *          switch the weights (mix: pixel + 0.001 x perceptual)
 * Paths are made absolute by nf_recipe_finalize, so a run resumes from any directory;
 * the "training" metadata of a weight file holds them in portable form instead
 * (nf-portable-path.h: relative to the source root, else the file name).
 *
 * The files: nf-recipe.c (defaults, copy, free), nf-recipe-fields.c (the table, the path
 * fields, the option entries; nf-recipe-fields.h is what they share), nf-recipe-json.c
 * (writer and reader), nf-recipe-finalize.c (derived values and checks),
 * nf-recipe-schedule.c (the learning rate at a step).
 *
 * What it does not: run anything (nf-trainer.h).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  /* --- recipe --- */
  char *task;                   /* "style" | "sr" */
  char *arch;                   /* style-*, sr-johnson, sr-subpixel, sr-light */
  int scale;                    /* sr upscale factor */
  int width, n_res;             /* 0: the architecture's default */
  double input_blur;            /* style: sigma of the fixed input blur (0: none; nf-arch.h) */
  char **data;                  /* image folders */
  char *split;                  /* train | val | all */
  int val_percent;
  char **exclude;               /* base names left out */
  int crop;
  char *crop_mode;              /* short | native */
  double zoom_min, zoom_max;
  gboolean flip;
  gboolean transpose;            /* random transposition of the crops (off) */
  int min_side;                 /* 0: what the crop needs */
  int batch, iters;
  gint64 seed;
  double lr;
  char *anneal;                 /* none | step | cosine */
  int warmup;                   /* linear warm-up from lr/warmup over this many steps */
  int rewarmup;                 /* steps of the ramp after an extension (resume, --iters up) */
  int extend_at;                /* step the last extension started at (0: never extended) */
  double extend_lr;             /* the rate the run had reached there; the ramp starts at it */
  int lr_step;                  /* step: multiply by lr_gamma every lr_step steps */
  double lr_gamma, lr_min;      /* cosine: down to lr_min */
  double beta1, beta2, adam_eps, weight_decay;
  char *lossnet, *pool;
  char *style_image;            /* the painting (multi-style: the first) */
  char **style_images;          /* style-rt-multi: every painting, one style each, in
                                 * order (NULL for one); --style-image repeated */
  int style_size;
  char *content_layer;
  double content_weight;        /* < 0: from --loss (sr) */
  char *style_layers, *style_layer_weights;
  double style_weight;
  char *style_weights;          /* style-rt-multi: a factor on style_weight per painting,
                                 * "W1,W2,..." in style order (NULL: all 1) */
  char *still_weights;          /* style-rt-multi: the same on stability_still_weight */
  double tv_strength;           /* < 0: from --loss (sr) */
  char *loss;                   /* sr: pixel | perceptual | mix */
  double pixel_weight;          /* < 0: from --loss */
  double chroma_weight;         /* sr: the pixel loss's chroma part's weight (1: plain MSE) */
  char *degrade;                /* bicubic | blur-bicubic */
  double blur_sigma;
  double stability_weight;      /* style: weight of the stability term (nf-stability.h) */
  int stability_shift;          /* its largest shift, pixels */
  double stability_noise;       /* its largest noise sigma, levels */
  double stability_still_weight;        /* style: weight of its still part (noise only) */
  int stability_jpeg;           /* its lowest JPEG quality (0: no JPEG round trip) */
  double video_noise;           /* video degradation: largest noise sigma (levels) */
  int video_jpeg_min, video_jpeg_max;   /* video degradation: JPEG quality range */
  char *bn_stats;               /* data | unit */
  char *name, *license;
  char *init;                   /* weight file whose tensors start the run (fine-tuning) */
  /* --- run settings --- */
  char *run_dir, *output, *backend;
  char *device;                 /* auto | cpu | cuda (which backend "auto" picks) */
  int gpus;                     /* data-parallel ranks on GPUs 0..gpus-1 (1) */
  int print_every, log_every, preview_every, checkpoint_every, preview_size, loader_depth;
  char **preview;               /* preview image files (default: the first validation files) */
  int preview_count;
} NfRecipe;

/* Defaults for a task ("style" or "sr"); NULL + error for another. */
NfRecipe *nf_recipe_new (const char *task, GError **error);
void nf_recipe_free (NfRecipe *r);
NfRecipe *nf_recipe_copy (const NfRecipe *r);

/* Resolves derived values (loss weights from --loss, default name, output, paths made
 * absolute, default data/lossnet folders) and checks everything, with a message that
 * names the option. */
gboolean nf_recipe_finalize (NfRecipe *r, GError **error);
/* The factors of each of the n styles of a finalized style recipe into out (n): on
 * style_weight (still FALSE: --style-weights) or on stability_still_weight (still TRUE:
 * --stability-still-weights); all 1 without the list. FALSE, with the reason, when the
 * list does not parse, is not one positive number per painting, or is given for a
 * network of one style. */
gboolean nf_recipe_style_factors (const NfRecipe *r, gboolean still, int n, double *out,
    GError **error);

/* The option of a loss term only the CPU trainer computes (the stability term and its
 * still part, the chroma-weighted pixel loss), or NULL: the GPU trainer refuses such a
 * recipe and --device auto trains it on the CPU. */
const char *nf_recipe_host_only_term (const NfRecipe *r);

/* JSON: the recipe group only, with portable paths (what the "training" metadata holds),
 * or every field with the paths as they are (checkpoints). */
char *nf_recipe_to_json (const NfRecipe *r, gboolean with_run_settings);
/* Fields absent from the JSON keep the values of r. */
gboolean nf_recipe_update_from_json (NfRecipe *r, const char *json, GError **error);
/* The recipe inside a weight file's "training" metadata (nf_trainer_export writes
 * {"recipe": {...}, ...}), over the defaults of its task; relative paths resolved against
 * the source root. */
NfRecipe *nf_recipe_from_training_metadata (const char *training, GError **error);

/* The JSON keys of the fields that hold file paths (NULL-terminated, static). */
const char *const *nf_recipe_path_keys (void);

/* GOption entries writing into r: all fields, or only the run settings (+ iters).
 * g_free the array (the strings belong to a static table). */
GOptionEntry *nf_recipe_option_entries (NfRecipe *r, gboolean run_settings_only);

/* The learning rate at step (0-based) under the recipe's schedule, including the ramp
 * after an extension. */
double nf_recipe_lr_at (const NfRecipe *r, guint64 step);

/* Records that a run stopped after `steps_done` steps of an `old_iters`-step schedule now
 * goes on to r->iters: for the next r->rewarmup steps the rate ramps linearly from the
 * last rate applied to the extended schedule's, instead of jumping to it (a cosine
 * schedule recomputed for a longer run jumps from its floor back up; Adam, whose
 * second-moment estimates fitted the small late gradients, then takes steps large enough
 * to undo hours of training). Nothing when iters did not grow or no step was done. */
void nf_recipe_mark_extension (NfRecipe *r, int old_iters, guint64 steps_done);

/* Where the shared data is: $NF_SHARED_DATA, else <source root>/../shared/data. */
char *nf_shared_data_dir (void);

G_END_DECLS
