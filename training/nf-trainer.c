/* nf-trainer.c — the training session (see nf-trainer.h).
 *
 * What it does: builds the network (nf-arch, seeded), the backend, the trainable wrapper
 * (nf-trainnet), the data set and its loader thread (nf-dataset, nf-loader), the loss
 * network and perceptual losses (nf-vgg, nf-perceptual), Adam (nf-optim); restores a
 * checkpoint; runs steps through the training device of the backend (nf-train-device.h:
 * the generic step here, the host batch losses of the CPU table, with the stability
 * term of nf-stability.h on the doubled batch); writes checkpoints. Previews and the
 * final weight file: nf-trainer-output.c.
 * What it does not: option parsing, printing, signals, the CSV log (nf-train.c), a
 * device's own work (nf-train-device-cpu.c, nf-trainer-gpu.c).
 */
#include "nf-trainer.h"
#include "nf-trainer-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-checkpoint.h"
#include "nf-engine.h"
#include "nf-error.h"
#include "nf-loader.h"
#include "nf-losses.h"
#include "nf-resize.h"
#include "nf-stability.h"
#include "nf-trainer-styles.h"
#include "nf-trainnet.h"
#include "nf-vgg.h"

const char *
nf_trainer_pick_backend (const char *requested)
{
  if (requested && !g_str_equal (requested, "auto"))
    return requested;
  const NfBackendIface *cpu = nf_backend_lookup ("cpu");
  return cpu && cpu->backward[NF_OP_CONV2D] && cpu->backward[NF_OP_INSTANCE_NORM]
      ? "cpu" : "cpu-ref";
}

static void
preview_clear (gpointer p)
{
  PreviewImage *pi = p;
  g_free (pi->path);
  nf_free (pi->rgb);
  nf_free (pi->lr);
}

void
nf_trainer_free (NfTrainer *t)
{
  if (!t)
    return;
  nf_loader_free (t->loader);
  nf_trainer_styles_free (t);
  if (t->device && t->device->trainer_free)
    t->device->trainer_free (t);
  nf_perceptual_free (t->loss);
  nf_perceptual_free (t->eval);
  nf_vgg_free (t->vgg);
  nf_trainnet_free (t->net);
  nf_model_free (t->model);
  nf_dataset_free (t->ds);
  nf_backend_free (t->be);
  if (t->previews)
    g_array_free (t->previews, TRUE);
  for (int i = 0; i < NF_PERCEPTUAL_MAX_LAYERS; i++)
    g_free (t->style_layer_names[i]);
  nf_free (t->x);
  nf_free (t->y);
  nf_free (t->y255);
  nf_free (t->dy);
  g_free (t->ckpt_path);
  g_free (t->device_note);
  nf_recipe_free (t->r);
  g_free (t);
}

/* The stability term's pixels left out at each border (the network's own padding). */
#define STABILITY_MARGIN 8

static gboolean
stability_on (const NfTrainer *t)
{
  return t->style && (t->r->stability_weight > 0 || t->r->stability_still_weight > 0);
}

/* Whether crop k of the run (batch index x batch + i) is a still one: noise without a
 * shift, weighted by stability_still_weight. With both weights every other crop is;
 * with the still weight alone all are. */
static gboolean
stability_still (const NfRecipe *r, guint64 k)
{
  return r->stability_still_weight > 0 && (r->stability_weight <= 0 || k % 2 == 1);
}

/* ---- building blocks ------------------------------------------------------------------ */

static NfDatasetOptions
dataset_options (const NfRecipe *r, NfSplit split, int min_side)
{
  NfDatasetOptions o = {.split = split,.val_percent = r->val_percent,
    .exclude = (const char *const *) r->exclude,.min_side = min_side
  };
  return o;
}

static gboolean
make_spec (NfTrainer *t, GError **error)
{
  const NfRecipe *r = t->r;
  NfBatchSpec s = {.batch = r->batch,.crop = r->crop,.zoom_min = (float) r->zoom_min,
    .zoom_max = (float) r->zoom_max,.flip = r->flip,.transpose = r->transpose,
    .seed = (guint64) r->seed,
    .sr_scale = t->style ? 0 : r->scale
  };
  nf_crop_mode_from_name (r->crop_mode, &s.mode);
  if (!t->style) {
    s.degrade.scale = r->scale;
    s.degrade.sigma = r->blur_sigma;
    s.degrade.noise = r->video_noise;
    s.degrade.jpeg_min = r->video_jpeg_min;
    s.degrade.jpeg_max = r->video_jpeg_max;
    nf_degrade_kind_from_name (r->degrade, &s.degrade.kind);
  }
  t->spec = s;
  return nf_batch_spec_validate (&s, error);
}

/* An image scaled so that its long side is long_side (area averaging / bilinear). */
float *
nf_trainer_load_fit (const char *path, int long_side, int multiple, int *w, int *h, GError **error)
{
  int iw, ih;
  float *full = nf_load_planar (path, &iw, &ih, error);
  if (!full)
    return NULL;
  int ow, oh;
  nf_resize_fit (iw, ih, long_side, &ow, &oh);
  float *out = nf_alloc_floats ((size_t) 3 * ow * oh);
  nf_resize_planar (full, 3, ih, iw, out, oh, ow);
  nf_free (full);
  /* crop to a multiple (the network's size_multiple), centred */
  int cw = ow / multiple * multiple, ch = oh / multiple * multiple;
  if (cw < multiple || ch < multiple) {
    nf_free (out);
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s is too small for a preview", path);
    return NULL;
  }
  if (cw != ow || ch != oh) {
    float *c = nf_alloc_floats ((size_t) 3 * cw * ch);
    int x0 = (ow - cw) / 2, y0 = (oh - ch) / 2;
    for (int k = 0; k < 3; k++)
      for (int y = 0; y < ch; y++)
        memcpy (c + ((size_t) k * ch + y) * cw, out + ((size_t) k * oh + y + y0) * ow + x0,
            sizeof (float) * cw);
    nf_free (out);
    out = c;
  }
  *w = cw;
  *h = ch;
  return out;
}

static gboolean
load_previews (NfTrainer *t, GError **error)
{
  const NfRecipe *r = t->r;
  t->previews = g_array_new (FALSE, TRUE, sizeof (PreviewImage));
  g_array_set_clear_func (t->previews, preview_clear);
  GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);
  if (r->preview && r->preview[0]) {
    for (int i = 0; r->preview[i]; i++)
      g_ptr_array_add (paths, g_strdup (r->preview[i]));
  } else if (r->preview_count > 0) {
    /* the first validation files (the training files when there are none) */
    NfDatasetOptions o = dataset_options (r, NF_SPLIT_VAL, nf_batch_spec_min_side (&t->spec));
    NfDataset *v = nf_dataset_open ((const char *const *) r->data, &o, NULL);
    NfDataset *src = v ? v : t->ds;
    for (int i = 0; i < nf_dataset_size (src) && (int) paths->len < r->preview_count; i++)
      g_ptr_array_add (paths, g_strdup (nf_dataset_path (src, i)));
    nf_dataset_free (v);
  }
  for (guint i = 0; i < paths->len; i++) {
    PreviewImage pi = {.path = g_strdup (g_ptr_array_index (paths, i)) };
    if (t->style) {
      pi.rgb = nf_trainer_load_fit (pi.path, r->preview_size, t->model->size_multiple, &pi.w, &pi.h,
          error);
    } else {
      int iw, ih, s = r->scale;
      float *full = nf_load_planar (pi.path, &iw, &ih, error);
      if (full) {
        int side = MIN (r->preview_size, MIN (iw, ih)) / s * s;
        if (side < 4 * s) {
          g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "%s is too small for a preview",
              pi.path);
        } else {
          int x0 = (iw - side) / 2, y0 = (ih - side) / 2;
          pi.w = pi.h = side;
          pi.rgb = nf_alloc_floats ((size_t) 3 * side * side);
          for (int k = 0; k < 3; k++)
            for (int y = 0; y < side; y++)
              memcpy (pi.rgb + ((size_t) k * side + y) * side,
                  full + ((size_t) k * ih + y + y0) * iw + x0, sizeof (float) * side);
          pi.lr = nf_alloc_floats ((size_t) 3 * (side / s) * (side / s));
          if (!nf_degrade_planar (&t->spec.degrade, pi.rgb, 3, side, side, pi.lr, error)) {
            nf_free (pi.rgb);
            pi.rgb = NULL;
          }
        }
        nf_free (full);
      }
    }
    if (!pi.rgb) {
      g_prefix_error (error, "preview image: ");
      preview_clear (&pi);
      g_ptr_array_unref (paths);
      return FALSE;
    }
    g_array_append_val (t->previews, pi);
  }
  g_ptr_array_unref (paths);
  return TRUE;
}

static gboolean
setup_losses (NfTrainer *t, GError **error)
{
  const NfRecipe *r = t->r;
  NfPerceptualSpec ps = { 0 };
  if (t->style) {
    if (!nf_perceptual_parse_layers (&ps, r->style_layers, r->style_layer_weights, error))
      return FALSE;
    ps.style_weight = r->style_weight;
  }
  if (r->content_weight > 0 || t->style) {
    ps.content_layer = r->content_layer;
    ps.content_weight = r->content_weight;
  }
  if (!ps.content_layer && ps.n_style == 0)
    return TRUE;                /* pixel loss only: no loss network */
  const char *layers[NF_PERCEPTUAL_MAX_LAYERS + 2];
  int n = 0;
  if (ps.content_layer)
    layers[n++] = ps.content_layer;
  for (int i = 0; i < ps.n_style; i++) {
    layers[n++] = ps.style[i].layer;
    t->style_layer_names[i] = g_strdup (ps.style[i].layer);
  }
  layers[n] = NULL;
  NfVggOptions vo = {.pool = g_str_equal (r->pool, "avg") ? NF_VGG_POOL_AVG : NF_VGG_POOL_MAX,
    .preprocess = NF_VGG_PREPROCESS_AUTO,.layers = layers
  };
  t->vgg = nf_vgg_load (r->lossnet, &vo, error);
  if (!t->vgg) {
    g_prefix_error (error, "loss network: ");
    return FALSE;
  }
  t->loss = nf_perceptual_new (t->vgg, t->be, &ps, error);
  t->eval = t->loss ? nf_perceptual_new (t->vgg, t->be, &ps, error) : NULL;
  if (!t->eval)
    return FALSE;
  if (t->style) {
    int w, h;
    float *s = nf_trainer_load_fit (r->style_image, r->style_size, 1, &w, &h, error);
    if (!s) {
      g_prefix_error (error, "style image: ");
      return FALSE;
    }
    gboolean ok = nf_perceptual_set_style (t->loss, s, w, h, error)
        && nf_perceptual_set_style (t->eval, s, w, h, error);
    nf_free (s);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

NfRecipe *
nf_trainer_recipe_from_checkpoint (const char *path, GError **error)
{
  NfCheckpoint *c = nf_checkpoint_open (path, error);
  if (!c)
    return NULL;
  const char *json = nf_checkpoint_recipe (c);
  /* the task first, then every field over that task's defaults */
  NfRecipe *probe = nf_recipe_new ("style", NULL);
  NfRecipe *r = NULL;
  if (nf_recipe_update_from_json (probe, json, error)) {
    r = nf_recipe_new (probe->task, error);
    if (r && !nf_recipe_update_from_json (r, json, error))
      g_clear_pointer (&r, nf_recipe_free);
  }
  nf_recipe_free (probe);
  nf_checkpoint_free (c);
  if (!r)
    g_prefix_error (error, "%s: ", path);
  return r;
}

static gboolean
restore (NfTrainer *t, const char *path, GError **error)
{
  NfCheckpoint *c = nf_checkpoint_open (path, error);
  if (!c)
    return FALSE;
  NfCheckpointState st = { 0 };
  gboolean ok = nf_checkpoint_restore (c, t->model, nf_trainnet_params (t->net), &st, error)
      && nf_trainnet_sync (t->net, error);
  nf_checkpoint_free (c);
  if (!ok)
    return FALSE;
  if (st.step > (guint64) t->r->iters) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "the checkpoint is at step %" G_GUINT64_FORMAT ", beyond --iters %d", st.step,
        t->r->iters);
    nf_checkpoint_state_clear (&st);
    return FALSE;
  }
  if (st.data_fingerprint != nf_dataset_fingerprint (t->ds))
    g_warning ("the training files differ from those of the checkpoint (files added, "
        "removed or renamed): the run continues, but not bit-identically");
  t->step = st.step;
  t->adam.t = st.adam_t;
  t->elapsed_base = st.elapsed_s;
  /* statistics from data are set on the first step: a checkpoint written before it (a
   * run stopped at once) still needs them, exactly as a fresh run would */
  t->bn_pending = st.step == 0 && nf_trainnet_has_batch_norm (t->net)
      && g_str_equal (t->r->bn_stats, "data");
  nf_checkpoint_state_clear (&st);
  return TRUE;
}

/* The batch loader; where the device has its own batch memory (a GPU: page-locked, so
 * the step uploads asynchronously straight from the batch) the batches live there
 * (nf-loader.h, caller's memory: one batch held at a time, handed back with
 * nf_loader_release after the step). */
static NfLoader *
loader_new (NfTrainer *t, NfDataset *ds, GError **error)
{
  if (!t->device->batch_alloc)
    return nf_loader_new (ds, &t->spec, t->step, t->r->loader_depth, error);
  NfLoaderMemory mem = {.alloc = t->device->batch_alloc,.free = t->device->batch_free,
    .user = t->be,.held = 1 };
  return nf_loader_new_full (ds, &t->spec, t->step, t->r->loader_depth, &mem, error);
}

NfTrainer *
nf_trainer_new (const NfRecipe *recipe, const char *resume_from, GError **error)
{
  NfTrainer *t = g_new0 (NfTrainer, 1);
  t->r = nf_recipe_copy (recipe);
  const NfRecipe *r = t->r;
  t->style = g_str_equal (r->task, "style");
  t->ckpt_path = g_build_filename (r->run_dir, "checkpoint.safetensors", NULL);
  if (!resume_from && g_file_test (t->ckpt_path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "%s already holds a run (checkpoint.safetensors): continue it with `nf-train resume "
        "%s`, or choose another --run", r->run_dir, r->run_dir);
    goto fail;
  }
  if (g_mkdir_with_parents (r->run_dir, 0755) != 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_IO, "cannot create %s: %s", r->run_dir,
        g_strerror (errno));
    goto fail;
  }
  if (!make_spec (t, error))
    goto fail;
  /* --device auto with a term only the CPU trainer computes: the CPU, saying why */
  const char *host_only = nf_recipe_host_only_term (r);
  gboolean auto_dev = !r->device || g_str_equal (r->device, "auto");
  gboolean auto_be = !r->backend || g_str_equal (r->backend, "auto");
  const char *bname = nf_trainer_choose_backend (r->device, r->backend, &t->device_note,
      error);
  if (bname && g_str_has_prefix (bname, "cuda") && host_only && auto_dev && auto_be) {
    bname = nf_trainer_pick_backend ("auto");
    g_free (t->device_note);
    t->device_note = g_strdup_printf ("device auto: %s is computed by the CPU trainer only; "
        "training on the CPU (backend %s)", host_only, bname);
  }
  if (!bname || !(t->be = nf_backend_new (bname, error))
      || !(t->device = nf_train_device_for (t->be, error)))
    goto fail;

  NfArchSpec as = {.arch = r->arch,.scale = r->scale,.width = r->width,.n_res = r->n_res,
    .styles = nf_recipe_n_styles (r),.input_blur = r->input_blur };
  if (!(t->model = nf_arch_new_model (&as, (guint64) r->seed, error)))
    goto fail;
  if (r->init && !resume_from && !nf_trainer_init_from_file (t->model, r->init, error))
    goto fail;
  if (!(t->net = nf_trainnet_new (t->model, t->be, error)))
    goto fail;
  nf_adam_init (&t->adam, (float) r->lr);
  t->adam.beta1 = (float) r->beta1;
  t->adam.beta2 = (float) r->beta2;
  t->adam.eps = (float) r->adam_eps;
  t->adam.weight_decay = (float) r->weight_decay;

  int min_side = r->min_side > 0 ? r->min_side : nf_batch_spec_min_side (&t->spec);
  NfSplit split = NF_SPLIT_TRAIN;
  nf_split_from_name (r->split, &split);
  NfDatasetOptions o = dataset_options (r, split, min_side);
  if (!(t->ds = nf_dataset_open ((const char *const *) r->data, &o, error)))
    goto fail;
  if (!setup_losses (t, error) || !nf_trainer_styles_setup (t, error)
      || !load_previews (t, error))
    goto fail;

  t->bn_pending = nf_trainnet_has_batch_norm (t->net);
  if (t->bn_pending && g_str_equal (r->bn_stats, "unit")) {
    nf_trainnet_unit_bn_stats (t->net);
    t->bn_pending = FALSE;
  }
  if (resume_from && !restore (t, resume_from, error))
    goto fail;
  if (!(t->loader = loader_new (t, t->ds, error)))
    goto fail;

  int ins = t->style ? r->crop : r->crop / r->scale;
  t->in_shape = (NfShape) { r->batch, 3, ins, ins };
  t->out_shape = (NfShape) { r->batch, 3, r->crop, r->crop };
  /* with the stability term the network runs on the doubled batch [x; T(x) + n] */
  size_t k = stability_on (t) ? 2 : 1;
  t->x = nf_alloc_floats (k * nf_shape_numel (t->in_shape));
  t->y = nf_alloc_floats (k * nf_shape_numel (t->out_shape));
  t->y255 = nf_alloc_floats (k * nf_shape_numel (t->out_shape));
  t->dy = nf_alloc_floats (k * nf_shape_numel (t->out_shape));
  if (stability_on (t) && !g_str_equal (t->device->name, "cpu")) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "the stability term runs on the CPU "
        "trainer only so far (--device cpu, or --stability-weight 0 and "
        "--stability-still-weight 0 on the %s device)",
        t->device->name);
    goto fail;
  }
  if (!t->device->trainer_setup (t, error))
    goto fail;
  return t;

fail:
  nf_trainer_free (t);
  return NULL;
}

NfTrainer *
nf_trainer_replica_new (NfTrainer *t0, int rank, NfBackend *be, GError **error)
{
  NfTrainer *t = g_new0 (NfTrainer, 1);
  t->r = nf_recipe_copy (t0->r);
  const NfRecipe *r = t->r;
  t->style = t0->style;
  t->rank = rank;
  t->spec = t0->spec;
  t->spec.seed = t0->spec.seed + (guint64) rank * NF_RANK_SEED_STRIDE;
  t->be = be;
  t->device = t0->device;
  NfArchSpec as = {.arch = r->arch,.scale = r->scale,.width = r->width,.n_res = r->n_res,
    .styles = nf_recipe_n_styles (r),.input_blur = r->input_blur };
  if (!(t->model = nf_arch_new_model (&as, (guint64) r->seed, error))
      || !(t->net = nf_trainnet_new (t->model, t->be, error))
      || !nf_trainnet_copy_state (t->net, t0->net, error))
    goto fail;
  t->adam = t0->adam;
  t->step = t0->step;
  t->bn_pending = t0->bn_pending;
  if (!setup_losses (t, error))
    goto fail;
  /* t0's data set (read-only, locked where it changes); this rank's own batch seed */
  if (!(t->loader = loader_new (t, t0->ds, error)))
    goto fail;
  t->in_shape = t0->in_shape;
  t->out_shape = t0->out_shape;
  t->x = nf_alloc_floats (nf_shape_numel (t->in_shape));
  if (!t->device->trainer_setup (t, error))
    goto fail;
  return t;

fail:
  g_prefix_error (error, "GPU rank %d: ", rank);
  nf_trainer_free (t);
  return NULL;
}

/* ---- a step ------------------------------------------------------------------------------ */


/* The stability term's still weight for the batch now (per style in a multi-style
 * network: --stability-still-weights). */
static double
still_weight (const NfTrainer *t)
{
  if (t->n_styles > 0 && t->still_weight && t->cur_style >= 0)
    return t->still_weight[t->cur_style];
  return t->r->stability_still_weight;
}

/* The stability term of batch b (nf-stability.h): the second half of t->y255 holds
 * f(T(x) + n) for the draws d, still[i] saying which crops had no shift; the shifted and
 * the still crops' means go to L->stability and L->stability_still, each weighted by its
 * own weight; adds their gradients to t->dy (both halves) when grad. */
static void
stability_loss (NfTrainer *t, const NfStabilityDraw *d, const gboolean *still,
    gboolean grad, NfTrainLosses *L)
{
  int n = t->out_shape.n, c = t->out_shape.h, n_still = 0;
  size_t per = (size_t) 3 * c * c, half = per * n;
  double sum[2] = { 0, 0 };
  for (int i = 0; i < n; i++)
    n_still += still[i] ? 1 : 0;
  for (int i = 0; i < n; i++) {
    int s = still[i] ? 1 : 0, m = s ? n_still : n - n_still;
    double w = s ? still_weight (t) : t->r->stability_weight;
    sum[s] += nf_stability_loss (t->y255 + per * i, t->y255 + half + per * i, c, c, &d[i],
        STABILITY_MARGIN, w / m, grad ? t->dy + per * i : NULL,
        grad ? t->dy + half + per * i : NULL) / m;
  }
  L->stability = sum[0];
  L->stability_still = sum[1];
}

/* Forward and losses of batch b; with grad, also dL/dy into t->dy and the network's
 * backward (parameter gradients). */
gboolean
nf_trainer_host_batch_losses (NfTrainer *t, const NfBatch *b, gboolean pinned,
    gboolean grad, NfTrainLosses *out, GError **error)
{
  (void) pinned;
  const NfRecipe *r = t->r;
  size_t nin = nf_shape_numel (t->in_shape), nout = nf_shape_numel (t->out_shape);
  const float *target = b->hr;                          // (N, 3, crop, crop) 0..255
  nf_trainer_to_input (t->model, t->style ? b->hr : b->lr, t->x, nin);
  if (grad && t->bn_pending) {
    if (!nf_trainnet_init_bn_stats (t->net, t->in_shape, t->x, error))
      return FALSE;
    t->bn_pending = FALSE;
  }
  /* stability: the second half of the batch is T(x) + n, one draw per crop */
  NfShape run_in = t->in_shape;
  size_t k = 1;
  NfStabilityDraw *draws = NULL;
  gboolean *still = NULL;
  if (stability_on (t)) {
    int c = t->in_shape.h;
    size_t per = (size_t) 3 * c * c;
    float *tx = nf_alloc_floats (per);
    draws = g_new0 (NfStabilityDraw, b->n);
    still = g_new0 (gboolean, b->n);
    for (int i = 0; i < b->n; i++) {
      guint64 k = b->index * (guint64) b->n + i;
      still[i] = stability_still (r, k);
      nf_stability_draw (t->spec.seed * 1000003u + k, still[i] ? 0 : r->stability_shift,
          r->stability_noise, r->stability_jpeg, &draws[i]);
      if (!nf_stability_input (b->hr + per * i, c, c, &draws[i], tx, error)) {
        nf_free (tx);
        g_free (draws);
        g_free (still);
        return FALSE;
      }
      nf_trainer_to_input (t->model, tx, t->x + nin + per * i, per);   // (N..2N, 3, c, c)
    }
    nf_free (tx);
    run_in.n *= 2;
    k = 2;
  }
  if (!nf_trainnet_forward (t->net, run_in, t->x, t->y, error)) {
    g_free (draws);
    g_free (still);
    return FALSE;
  }
  nf_trainer_from_output (t->model, t->y, t->y255, k * nout);

  NfTrainLosses L = { 0 };
  float *dy = grad ? t->dy : NULL;
  if (dy)
    memset (dy, 0, k * nout * sizeof (float));
  if (t->loss) {
    NfPerceptualLosses pl;
    if (!nf_perceptual_eval (t->loss, t->out_shape, t->y255, target, dy, &pl, error)) {
      g_free (draws);
      g_free (still);
      return FALSE;
    }
    L.content = pl.content;
    L.style = pl.style;
    L.total += pl.total;
    for (int i = 0; t->style_layer_names[i]; i++) {
      L.style_layer[i] = pl.style_layer[i];
      L.n_style = i + 1;
    }
  }
  if (r->pixel_weight > 0) {
    L.pixel = r->chroma_weight == 1.0
        ? nf_loss_content (t->y255, target, nout, r->pixel_weight, dy)
        : nf_loss_pixel_chroma (t->y255, target, t->out_shape, r->chroma_weight,
        r->pixel_weight, dy);
    L.total += r->pixel_weight * L.pixel;
  }
  if (r->tv_strength > 0) {
    double w = r->tv_strength * (double) nout;  /* Johnson's sum = mean x elements */
    L.tv = nf_loss_tv (t->y255, t->out_shape, w, dy);
    L.total += w * L.tv;
  }
  if (k == 2) {
    stability_loss (t, draws, still, grad, &L);
    L.total += r->stability_weight * L.stability + still_weight (t) * L.stability_still;
  }
  g_free (draws);
  g_free (still);
  *out = L;
  if (!isfinite (L.total)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "the loss is not finite at step %" G_GUINT64_FORMAT " (%g): the run diverged; lower "
        "--lr or resume from the last checkpoint", t->step + 1, L.total);
    return FALSE;
  }
  if (!grad)
    return TRUE;
  /* dL/dy255 -> dL/dy */
  float a = 255.0f / (t->model->out_hi - t->model->out_lo);
  for (size_t i = 0; i < k * nout; i++)
    dy[i] *= a;
  return nf_trainnet_backward (t->net, dy, error);
}

gboolean
nf_trainer_batch_losses (NfTrainer *t, const NfBatch *b, gboolean pinned, gboolean grad,
    NfTrainLosses *out, GError **error)
{
  const NfTrainDevice *d = t->device;
  return d->batch_losses (t, b, pinned, grad, out, error)
      && (!d->read_losses || d->read_losses (t, out, error));
}

gboolean
nf_trainer_update (NfTrainer *t, gboolean *stepped, GError **error)
{
  return t->device->optimiser_step (t, stepped, error)
      && (!*stepped || nf_trainnet_weights_updated (t->net, error));
}

gboolean
nf_trainer_step (NfTrainer *t, NfTrainLosses *losses, GError **error)
{
  const NfRecipe *r = t->r;
  if (t->step >= (guint64) r->iters) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "the run is complete (%d steps)",
        r->iters);
    return FALSE;
  }
  gint64 t0 = g_get_monotonic_time ();
  NfTrainLosses L;
  gboolean ok;
  if (t->device->step) {
    t->last_lr = nf_recipe_lr_at (r, t->step);
    t->adam.lr = (float) t->last_lr;
    ok = t->device->step (t, &L, error);
  } else {
    /* the batch is in the device's memory (batch_alloc) when it has its own */
    gboolean pinned = t->device->batch_alloc != NULL, stepped;
    NfBatch *b = nf_loader_next (t->loader, error);
    if (!b)
      return FALSE;
    ok = nf_trainer_styles_select (t, b->index, error)
        && nf_trainer_batch_losses (t, b, pinned, TRUE, &L, error);
    if (ok) {
      t->last_lr = nf_recipe_lr_at (r, t->step);
      t->adam.lr = (float) t->last_lr;
      ok = nf_trainer_update (t, &stepped, error);
    }
    nf_loader_release (t->loader, b);
  }
  if (!ok)
    return FALSE;
  t->step++;
  t->elapsed_run += (g_get_monotonic_time () - t0) / 1e6;
  t->last = L;
  if (losses)
    *losses = L;
  return TRUE;
}

gboolean
nf_trainer_loss_on_batch (NfTrainer *t, guint64 index, NfTrainLosses *losses, GError **error)
{
  NfBatch *b = nf_dataset_make_batch (t->ds, &t->spec, index, error);
  if (!b)
    return FALSE;
  gboolean ok = nf_trainer_styles_select (t, index, error)
      && nf_trainer_batch_losses (t, b, FALSE, FALSE, losses, error);
  nf_batch_free (b);
  return ok;
}

/* ---- accessors ---------------------------------------------------------------------------- */

const NfRecipe *
nf_trainer_recipe (const NfTrainer *t)
{
  return t->r;
}

void
nf_trainer_mark_extension (NfTrainer *t, int old_iters)
{
  nf_recipe_mark_extension (t->r, old_iters, t->step);
}

guint64
nf_trainer_steps_done (const NfTrainer *t)
{
  return t->step;
}

double
nf_trainer_last_lr (const NfTrainer *t)
{
  return t->last_lr;
}

double
nf_trainer_elapsed (const NfTrainer *t)
{
  return t->elapsed_base + t->elapsed_run;
}

const char *
nf_trainer_backend_name (const NfTrainer *t)
{
  return t->be->iface->name;
}

const char *
nf_trainer_device_note (const NfTrainer *t)
{
  return t->device_note;
}

guint64
nf_trainer_skipped_steps (const NfTrainer *t)
{
  return t->skipped_steps;
}

NfDataset *
nf_trainer_dataset (NfTrainer *t)
{
  return t->ds;
}

NfParams *
nf_trainer_params (NfTrainer *t)
{
  return nf_trainnet_params (t->net);
}

const char *const *
nf_trainer_style_layer_names (const NfTrainer *t)
{
  return (const char *const *) t->style_layer_names;
}

double
nf_trainer_data_wait (const NfTrainer *t)
{
  return nf_loader_wait_seconds (t->loader);
}

const char *
nf_trainer_checkpoint_path (const NfTrainer *t)
{
  return t->ckpt_path;
}

static char *
losses_text (const NfTrainLosses *L)
{
  return g_strdup_printf ("total=%.9g content=%.9g style=%.9g tv=%.9g pixel=%.9g", L->total,
      L->content, L->style, L->tv, L->pixel);
}

gboolean
nf_trainer_save_checkpoint (NfTrainer *t, GError **error)
{
  /* the host params are current after every step; Adam's moments live on the device */
  if (!nf_trainnet_download_moments (t->net, error))
    return FALSE;
  NfCheckpointState st = {.step = t->step,.adam_t = t->adam.t,
    .recipe_json = nf_recipe_to_json (t->r, TRUE),
    .data_fingerprint = nf_dataset_fingerprint (t->ds),.elapsed_s = nf_trainer_elapsed (t),
    .losses = losses_text (&t->last)
  };
  gboolean ok = nf_checkpoint_save (t->ckpt_path, t->model, nf_trainnet_params (t->net), &st,
      error);
  nf_checkpoint_state_clear (&st);
  return ok;
}

