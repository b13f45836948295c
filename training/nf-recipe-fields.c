/* nf-recipe-fields.c — the table of every recipe field (JSON key = option name, type,
 * group, help text), the list of the fields that hold file paths, and the GOption entries
 * generated from the table.
 *
 * What it does not: defaults (nf-recipe.c), JSON (nf-recipe-json.c), checks
 * (nf-recipe-finalize.c).
 */
#include "nf-recipe-fields.h"

#define OFF(f) G_STRUCT_OFFSET (NfRecipe, f)

const Field nf_recipe_fields[] = {
  {"task", F_STR, OFF (task), G_RECIPE, NULL, NULL},
  {"arch", F_STR, OFF (arch), G_RECIPE,
      "Architecture: style-full|style-slim|style-rt|style-rt-multi (style), "
      "sr-johnson|sr-subpixel|sr-light|sr-light-y (sr)", "A"},
  {"scale", F_INT, OFF (scale), G_RECIPE, "SR upscale factor (4; sr-johnson: 2 or 4)", "S"},
  {"width", F_INT, OFF (width), G_RECIPE, "Base channels (0: the architecture's default)", "N"},
  {"res-blocks", F_INT, OFF (n_res), G_RECIPE,
      "Residual blocks (sr-light, sr-light-y: body convolutions; 0: default)", "N"},
  {"input-blur", F_DOUBLE, OFF (input_blur), G_RECIPE,
      "style: a fixed (never trained) Gaussian of this sigma in pixels that the input goes "
      "through first, so that video noise is low-passed before the first strided conv (0: "
      "none; up to 3)", "S"},
  {"data", F_STRV, OFF (data), G_RECIPE,
      "Training image folder, searched recursively (repeatable; default "
      "$NF_SHARED_DATA/photos for style, .../sr-train for sr)", "DIR"},
  {"split", F_STR, OFF (split), G_RECIPE,
      "Which files to train on: train|val|all (train)", "S"},
  {"val-percent", F_INT, OFF (val_percent), G_RECIPE,
      "Files whose FNV-1a name hash mod 100 is below this are validation (10)", "P"},
  {"exclude", F_STRV, OFF (exclude), G_RECIPE, "Leave out this base name (repeatable)", "NAME"},
  {"crop", F_INT, OFF (crop), G_RECIPE, "Training patch side (style 256, sr 288 HR)", "N"},
  {"crop-mode", F_STR, OFF (crop_mode), G_RECIPE,
      "short: scale the shorter side to crop*zoom first (style); native: scale by zoom "
      "(sr)", "M"},
  {"zoom-min", F_DOUBLE, OFF (zoom_min), G_RECIPE, "Smallest zoom (1)", "Z"},
  {"zoom-max", F_DOUBLE, OFF (zoom_max), G_RECIPE, "Largest zoom (style 2, sr 1)", "Z"},
  {"flip", F_BOOL, OFF (flip), G_RECIPE, "Random horizontal flips (on; --no-flip)", NULL},
  {"transpose", F_BOOL, OFF (transpose), G_RECIPE,
      "Random transpositions of the crops, so that with the flips every crop is seen in all 8 "
      "rotations and mirror images (off)", NULL},
  {"min-side", F_INT, OFF (min_side), G_RECIPE,
      "Skip files whose shorter side is below this (0: what the crop needs)", "N"},
  {"batch", F_INT, OFF (batch), G_RECIPE, "Batch size (4)", "N"},
  {"iters", F_INT, OFF (iters), G_RECIPE_RESUMABLE,
      "Optimiser steps in all (style 40000, sr 200000); raise it on resume to extend", "N"},
  {"seed", F_INT64, OFF (seed), G_RECIPE, "Seed of weights, shuffling and crops (1)", "S"},
  {"lr", F_DOUBLE, OFF (lr), G_RECIPE, "Adam learning rate (1e-3)", "LR"},
  {"anneal", F_STR, OFF (anneal), G_RECIPE,
      "Learning-rate schedule: none|step|cosine (cosine)", "A"},
  {"warmup", F_INT, OFF (warmup), G_RECIPE,
      "Linear learning-rate warm-up over the first N steps (style 0, sr 500)", "N"},
  {"rewarmup", F_INT, OFF (rewarmup), G_RECIPE_RESUMABLE,
      "When resume raises --iters: ramp the learning rate linearly over N steps from where "
      "the run stopped to the longer schedule (500; 0: jump)", "N"},
  {"extend-at", F_INT, OFF (extend_at), G_RECIPE, NULL, NULL},
  {"extend-lr", F_DOUBLE, OFF (extend_lr), G_RECIPE, NULL, NULL},
  {"lr-step", F_INT, OFF (lr_step), G_RECIPE, "step: multiply by --lr-gamma every N steps",
      "N"},
  {"lr-gamma", F_DOUBLE, OFF (lr_gamma), G_RECIPE, "step: factor (0.1)", "G"},
  {"lr-min", F_DOUBLE, OFF (lr_min), G_RECIPE, "cosine: final learning rate (1e-5)", "LR"},
  {"beta1", F_DOUBLE, OFF (beta1), G_RECIPE, "Adam beta1 (0.9)", "B"},
  {"beta2", F_DOUBLE, OFF (beta2), G_RECIPE, "Adam beta2 (0.999)", "B"},
  {"adam-eps", F_DOUBLE, OFF (adam_eps), G_RECIPE, "Adam epsilon (1e-8)", "E"},
  {"weight-decay", F_DOUBLE, OFF (weight_decay), G_RECIPE, "Decoupled weight decay (0)", "W"},
  {"lossnet", F_STR, OFF (lossnet), G_RECIPE,
      "VGG safetensors (default $NF_LOSSNET, else shared/data/lossnets/vgg16-...)", "PATH"},
  {"pool", F_STR, OFF (pool), G_RECIPE, "Loss network pooling max|avg (max)", "P"},
  {"style-image", F_STR, OFF (style_image), G_RECIPE, NULL, NULL},
  /* --style-image fills this list; finalize keeps the first as style-image, the list only
   * when it has several (nf-trainer-styles.h) */
  {"style-images", F_STRV, OFF (style_images), G_RECIPE,
      "style: the painting; repeated (with --arch style-rt-multi), one network for all of "
      "them, a style per painting named by its file stem", "IMG", "style-image"},
  {"style-size", F_INT, OFF (style_size), G_RECIPE,
      "style: long side the painting is scaled to for its Gram targets (256)", "N"},
  {"content-layer", F_STR, OFF (content_layer), G_RECIPE,
      "Content / perceptual layer (relu2_2)", "L"},
  {"content-weight", F_DOUBLE, OFF (content_weight), G_RECIPE,
      "Content (sr: perceptual) loss weight (style 1; sr from --loss)", "W"},
  {"style-layers", F_STR, OFF (style_layers), G_RECIPE,
      "style: Gram layers (relu1_2,relu2_2,relu3_3)", "L1,L2"},
  {"style-layer-weights", F_STR, OFF (style_layer_weights), G_RECIPE,
      "style: per-layer weights (all 1)", "W1,W2"},
  {"style-weight", F_DOUBLE, OFF (style_weight), G_RECIPE, "style: style loss weight (0.5; see training/README.md)", "W"},
  {"style-weights", F_STR, OFF (style_weights), G_RECIPE,
      "style-rt-multi: a factor on --style-weight for each painting, in --style-image order "
      "(all 1), so that each painting can be given its own balance of style and content; the "
      "progress line's style term stays --style-weight times the plain mean", "F1,F2,..."},
  {"stability-still-weights", F_STR, OFF (still_weights), G_RECIPE,
      "style-rt-multi: a factor on --stability-still-weight for each painting, in "
      "--style-image order (all 1): the paintings whose texture flickers most can be held "
      "harder without costing the others style", "F1,F2,..."},
  {"tv-strength", F_DOUBLE, OFF (tv_strength), G_RECIPE,
      "Total variation as Johnson's tv_strength: weight of the SUM of squared neighbour "
      "differences of the 0..255 output over the batch (1e-6; sr: from --loss)", "W"},
  {"loss", F_STR, OFF (loss), G_RECIPE,
      "sr: perceptual (relu2_2) | pixel (MSE) | mix (pixel + 0.001 x perceptual)", "L"},
  {"pixel-weight", F_DOUBLE, OFF (pixel_weight), G_RECIPE,
      "sr: pixel MSE weight, 0..255 units (from --loss)", "W"},
  {"chroma-weight", F_DOUBLE, OFF (chroma_weight), G_RECIPE,
      "sr: weight of the chroma part of the pixel loss, the luma (BT.601) part weighing 1: "
      "what PSNR-Y measures gets the network's capacity (1: plain RGB MSE, the default; 0..1; "
      "sr-light-y: 0, as it changes luma only)", "W"},
  {"degrade", F_STR, OFF (degrade), G_RECIPE,
      "sr: bicubic (antialiased, MATLAB imresize: the standard benchmark degradation; default) | "
      "blur-bicubic (Gaussian sigma, then bicubic; Johnson) | video (bicubic, noise, JPEG)",
      "D"},
  {"blur-sigma", F_DOUBLE, OFF (blur_sigma), G_RECIPE, "sr: blur-bicubic's Gaussian sigma in HR pixels (1)",
      "S"},
  {"stability-weight", F_DOUBLE, OFF (stability_weight), G_RECIPE,
      "style: weight of the temporal stability term: the network also sees each crop shifted "
      "and with sensor noise, and mean (f(T x + n) - T f(x))^2 (0..255 units) is added (0: off)",
      "W"},
  {"stability-shift", F_INT, OFF (stability_shift), G_RECIPE,
      "style: the stability term's largest shift in pixels (4)", "N"},
  {"stability-noise", F_DOUBLE, OFF (stability_noise), G_RECIPE,
      "style: the stability term's largest noise sigma in levels (4)", "S"},
  {"stability-still-weight", F_DOUBLE, OFF (stability_still_weight), G_RECIPE,
      "style: weight of the stability term's still part: crops run with noise and no shift, "
      "mean (f(x + n) - f(x))^2 added (a static camera's noise); with --stability-weight "
      "every other crop is still, else all (0: off)", "W"},
  {"stability-jpeg", F_INT, OFF (stability_jpeg), G_RECIPE,
      "style: the stability term's noisy copies are also JPEG round-tripped at a quality "
      "drawn in [Q, 95], as frames of a compressed stream (0: off)", "Q"},
  {"video-noise", F_DOUBLE, OFF (video_noise), G_RECIPE,
      "sr video degradation: largest Gaussian noise sigma, levels (2)", "S"},
  {"video-jpeg-min", F_INT, OFF (video_jpeg_min), G_RECIPE,
      "sr video degradation: lowest JPEG quality (40)", "Q"},
  {"video-jpeg-max", F_INT, OFF (video_jpeg_max), G_RECIPE,
      "sr video degradation: highest JPEG quality (90)", "Q"},
  {"bn-stats", F_STR, OFF (bn_stats), G_RECIPE,
      "sr-johnson batch norm statistics: data (from the first batch, then frozen) | unit",
      "S"},
  {"name", F_STR, OFF (name), G_RECIPE, "Model name in the weight file's metadata", "NAME"},
  {"license", F_STR, OFF (license), G_RECIPE, "Licence string for the weight file", "L"},
  {"init", F_STR, OFF (init), G_RECIPE,
      "Start from this weight file's tensors (same architecture; fine-tuning) instead of "
      "seeded random weights", "FILE"},
  {"run", F_STR, OFF (run_dir), G_RUN,
      "Run folder: checkpoint, loss log, previews (required)", "DIR"},
  {"output", F_STR, OFF (output), G_RUN, "Final weight file (RUN/model.safetensors)", "FILE"},
  {"backend", F_STR, OFF (backend), G_RUN,
      "auto|cpu|cpu-ref|cuda|cuda-fp16 (auto: from --device; on the CPU, cpu when it has "
      "backward passes, else cpu-ref; on the GPU, cuda)", "B"},
  {"device", F_STR, OFF (device), G_RUN,
      "auto|cpu|cuda (auto: cuda when a GPU is usable and the CUDA backend has backward "
      "passes, else the CPU)", "D"},
  {"gpus", F_INT, OFF (gpus), G_RUN,
      "Data-parallel training on GPUs 0..N-1 (NCCL all-reduce of the gradient; 1)", "N"},
  {"print-every", F_INT, OFF (print_every), G_RUN, "Progress line every N steps (10)", "N"},
  {"log-every", F_INT, OFF (log_every), G_RUN, "CSV loss log row every N steps (10)", "N"},
  {"preview-every", F_INT, OFF (preview_every), G_RUN,
      "Preview image every N steps (500; 0: never)", "N"},
  {"checkpoint-every", F_INT, OFF (checkpoint_every), G_RUN,
      "Checkpoint every N steps (500; also on Ctrl-C and at the end)", "N"},
  {"preview", F_STRV, OFF (preview), G_RUN,
      "Preview image (repeatable; default: the first validation files)", "IMG"},
  {"preview-count", F_INT, OFF (preview_count), G_RUN,
      "How many validation files to preview by default (4)", "N"},
  {"preview-size", F_INT, OFF (preview_size), G_RUN,
      "Preview long side (style) / HR crop side (sr) (256)", "N"},
  {"loader-depth", F_INT, OFF (loader_depth), G_RUN, "Batches the loader prepares ahead (3)",
      "N"},
};

const guint nf_recipe_n_fields = G_N_ELEMENTS (nf_recipe_fields);

/* The fields that hold file paths: absolute in a run (nf_recipe_finalize), portable
 * (nf-portable-path.h) in a weight file's "training" metadata. */
static const char *const path_keys[] = { "data", "lossnet", "style-image", "style-images",
  "init", "run", "output", "preview", NULL
};

const char *const *
nf_recipe_path_keys (void)
{
  return path_keys;
}

void
nf_recipe_map_paths (NfRecipe *r, char *(*map) (const char *))
{
  for (guint i = 0; i < nf_recipe_n_fields; i++) {
    const Field *f = &nf_recipe_fields[i];
    if (!g_strv_contains (path_keys, f->key))
      continue;
    if (f->type == F_STR) {
      char **p = (char **) FIELD (r, f), *m = map (*p);
      g_free (*p);
      *p = m;
    }
    for (char **v = f->type == F_STRV ? *(char ***) FIELD (r, f) : NULL; v && *v; v++) {
      char *m = map (*v);
      g_free (*v);
      *v = m;
    }
  }
}

/* ---- options ------------------------------------------------------------------------ */

GOptionEntry *
nf_recipe_option_entries (NfRecipe *r, gboolean run_settings_only)
{
  GOptionEntry *e = g_new0 (GOptionEntry, nf_recipe_n_fields + 1);
  int n = 0;
  for (guint i = 0; i < nf_recipe_n_fields; i++) {
    const Field *f = &nf_recipe_fields[i];
    if (!f->help || (run_settings_only && f->group == G_RECIPE))
      continue;
    GOptionEntry *o = &e[n++];
    o->long_name = f->option ? f->option : f->key;
    o->description = f->help;
    o->arg_description = f->arg;
    o->arg_data = FIELD (r, f);
    switch (f->type) {
      case F_STR:
        o->arg = g_strv_contains (path_keys, f->key) ? G_OPTION_ARG_FILENAME
            : G_OPTION_ARG_STRING;
        break;
      case F_STRV:
        o->arg = G_OPTION_ARG_FILENAME_ARRAY;
        break;
      case F_INT:
        o->arg = G_OPTION_ARG_INT;
        break;
      case F_INT64:
        o->arg = G_OPTION_ARG_INT64;
        break;
      case F_DOUBLE:
        o->arg = G_OPTION_ARG_DOUBLE;
        break;
      case F_BOOL:           /* flip is on by default (--no-flip); the others off */
        o->arg = G_OPTION_ARG_NONE;
        if (g_str_equal (f->key, "flip")) {
          o->long_name = "no-flip";
          o->flags = G_OPTION_FLAG_REVERSE;
        }
        break;
    }
  }
  return e;
}
