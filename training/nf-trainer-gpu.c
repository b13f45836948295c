/* nf-trainer-gpu.c — the training step on a CUDA backend (see nf-trainer.h): the
 * trainer's entries of the CUDA training device (nf-train-device-cuda.h), built only
 * with the GPU training kernels (NF_HAVE_CUDA_TRAIN).
 *
 * What it does: says whether a CUDA backend can train here (a GPU is "usable" when
 * nf_cuda_device_count finds one and the CUDA backend has backward passes); checks that
 * the backend can train every op of the network and of the loss network; per step
 * stages the batch in pinned memory and uploads it on the backend's stream, runs the
 * network, the perceptual, pixel and TV losses with their gradient on the device
 * (training/cuda/nf-cuda-train.h), the backward, Adam on the device copy of the
 * parameters, and (cuda-fp16) dynamic loss scaling.
 * Loss values: every loss of a step (perceptual, pixel, TV) queues its value on the
 * device (one NfCudaValues per rank) and batch_losses queues the backward right after;
 * read_losses then reads them all with ONE stream synchronisation, and checks that the
 * total is finite (a non-finite step fails there, before the optimiser). So a step on
 * cuda waits for the GPU once (cuda-fp16: twice, the finiteness check of the gradient
 * deciding whether Adam runs), where each loss term used to wait on its own between the
 * forward and the backward.
 * Data parallelism (--gpus N, make_ranks): rank 0 is the trainer, ranks
 * 1..N-1 are replicas on devices 1..N-1 (nf_trainer_replica_new) with the same initial
 * state; each rank draws its own batches (the recipe's seed + rank * 1000003, batch
 * index = step, so a resumed run continues every rank's stream); per step every rank
 * computes its loss and gradient on its thread, the gradients are averaged with one
 * NCCL all-reduce (nf_cuda_group_allreduce_mean), and every rank runs the same Adam
 * step on the same averaged gradient, so the replicas stay bit-identical and rank 0's
 * parameters are the run's. Batch-norm statistics come from rank 0's first batch and
 * are copied. Rank 0 logs, previews and checkpoints. N = 1 is a group of one on the
 * same code path. The losses reported are the mean over the ranks.
 * What it does not: the CPU step, checkpoints, previews (nf-trainer.c), the choice of the
 * backend (nf-train-device.c), what runs on the device inside the network
 * (nf-trainnet-gpu.c) and the loss network (nf-perceptual-gpu.c).
 */
#include "nf-trainer-private.h"
#include "nf-train-device-cuda.h"

#include <math.h>
#include <string.h>

#include "nf-cuda.h"
#include "nf-error.h"

#define LOSS_SCALE_START 32768.0        /* 2^15 */
#define LOSS_SCALE_GROWTH_STEPS 2000

struct NfTrainerDeviceState {
  NfCudaTrain *ct;
  NfCudaValues *values;         /* the step's loss values, read once (read_losses) */
  double raw_pixel, raw_tv;     /* pixel and TV values (unweighted), written when read */
  float *h_stage;               // pinned: network input (in_shape) | target (out_shape)
  float *d_in, *d_hr;           // device: input batch 0..255 (in_shape), target (out_shape)
  float *d_y255, *d_dy;         // device: output in 0..255, dL/d(output 0..255) (out_shape)
  double loss_scale;            /* cuda-fp16: dynamic loss scale (1 on fp32) */
  int good_steps;               /* finite steps since the scale last changed */
  /* data parallelism (--gpus): rank 0 is the trainer callers see; it owns the group and
   * the replicas ranks[1..n_ranks-1] (ranks[0] = itself) */
  int n_ranks;
  NfTrainer **ranks;
  NfCudaGroup *group;
};

char *
nf_trainer_gpu_cannot_train (const char *name)
{
  GError *e = NULL;
  int n = nf_cuda_device_count (&e);
  if (n <= 0) {
    char *why = g_strdup_printf ("no usable GPU (%s)", e ? e->message : "no CUDA device");
    g_clear_error (&e);
    return why;
  }
  const NfBackendIface *i = nf_backend_lookup (name);
  if (!i || !i->zero || !i->backward[NF_OP_CONV2D])
    return g_strdup_printf ("the %s backend has no backward passes in this build", name);
  return NULL;
}

/* Every op of g has a backward on be, or an error listing those that have none. */
static gboolean
check_backward (NfBackend *be, const NfGraph *g, const char *what, GError **error)
{
  GString *missing = g_string_new ("");
  gboolean seen[NF_OP_COUNT] = { 0 };
  for (int i = 0; i < g->n_ops; i++) {
    NfOpType ty = g->ops[i].type;
    if (!be->iface->backward[ty] && !seen[ty]) {
      g_string_append_printf (missing, "%s%s", missing->len ? ", " : "", nf_op_type_name (ty));
      seen[ty] = TRUE;
    }
  }
  gboolean ok = missing->len == 0;
  if (!ok)
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
        "backend %s cannot train %s: no backward pass for %s", be->iface->name, what,
        missing->str);
  g_string_free (missing, TRUE);
  return ok;
}

void
nf_trainer_gpu_free (NfTrainer *t)
{
  NfTrainerDeviceState *ds = t->dstate;
  if (!ds)
    return;
  for (int r = 1; ds->ranks && r < ds->n_ranks; r++)
    nf_trainer_free (ds->ranks[r]);
  g_free (ds->ranks);
  if (ds->group)
    nf_cuda_group_free (ds->group);
  nf_gpu_host_free (t->be, ds->h_stage);
  nf_gpu_free (t->be, ds->d_in);
  nf_gpu_free (t->be, ds->d_hr);
  nf_gpu_free (t->be, ds->d_y255);
  nf_gpu_free (t->be, ds->d_dy);
  if (t->loss)
    nf_perceptual_defer_values (t->loss, NULL, NULL);
  if (ds->ct)
    nf_cuda_train_free (ds->ct);
  nf_cuda_values_free (ds->values);
  g_free (ds);
  t->dstate = NULL;
}

/* The ranks of --gpus and their NCCL group (rank 0; n = recipe gpus; 1 is a group of
 * one). */
static gboolean
make_ranks (NfTrainer *t, GError **error)
{
  NfTrainerDeviceState *ds = t->dstate;
  int n = t->r->gpus;
  if (n < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "--gpus %d: at least 1", n);
    return FALSE;
  }
  GError *e = NULL;
  int have = nf_gpu_device_count (&e);
  if (n > have) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "--gpus %d: this machine has %d usable "
        "CUDA device%s%s%s", n, have, have == 1 ? "" : "s", e ? ": " : "", e ? e->message : "");
    g_clear_error (&e);
    return FALSE;
  }
  if (nf_cuda_backend_device (t->be) != 0) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "rank 0 must run on CUDA device 0 (the group spans devices 0..N-1)");
    return FALSE;
  }
  if (!(ds->group = nf_cuda_group_new (n, error)))
    return FALSE;
  ds->ranks = g_new0 (NfTrainer *, n);
  ds->n_ranks = n;
  ds->ranks[0] = t;
  for (int r = 1; r < n; r++) {
    NfBackend *be = nf_gpu_backend_on_device (t->be, r, error);
    if (!be) {
      g_prefix_error (error, "GPU rank %d: ", r);
      return FALSE;
    }
    if (!(ds->ranks[r] = nf_trainer_replica_new (t, r, be, error)))
      return FALSE;
  }
  return TRUE;
}

gboolean
nf_trainer_gpu_setup (NfTrainer *t, GError **error)
{
  /* terms the device step does not compute: refused, never silently dropped */
  const char *host_only = nf_recipe_host_only_term (t->r);
  if (host_only) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "%s: the GPU trainer does not compute "
        "this term yet; train on the CPU (--device cpu)", host_only);
    return FALSE;
  }
  if (!check_backward (t->be, t->model->graph, "the network", error)
      || (t->vgg && !check_backward (t->be, t->vgg->model->graph, "the loss network", error)))
    return FALSE;
  NfTrainerDeviceState *ds = t->dstate = g_new0 (NfTrainerDeviceState, 1);
  if (!(ds->ct = nf_cuda_train_new (t->be, error))
      || !(ds->values = nf_cuda_values_new (t->be, error))
      || !nf_cuda_train_defer (ds->ct, ds->values, error)
      || (t->loss && !nf_perceptual_defer_values (t->loss, ds->values, error)))
    return FALSE;
  size_t nin = nf_shape_numel (t->in_shape), nout = nf_shape_numel (t->out_shape);
  if (!(ds->h_stage = nf_gpu_host_alloc (t->be, (nin + nout) * sizeof (float), error))
      || !(ds->d_in = nf_gpu_alloc_floats (t->be, nin, error))
      || !(ds->d_hr = nf_gpu_alloc_floats (t->be, nout, error))
      || !(ds->d_y255 = nf_gpu_alloc_floats (t->be, nout, error))
      || !(ds->d_dy = nf_gpu_alloc_floats (t->be, nout, error)))
    return FALSE;
  ds->loss_scale = nf_gpu_is_fp16 (t->be) ? LOSS_SCALE_START : 1.0;
  /* rank 0 makes the other ranks (replicas run this too, with their rank) */
  return t->rank != 0 || make_ranks (t, error);
}

/* One phase of a step on one rank (on its own thread for ranks >= 1). */
typedef struct {
  NfTrainer *t, *t0;
  NfBatch *b;
  int phase;                    /* 0 losses + backward, 1 all-reduce, 2 optimiser */
  gboolean ok, stepped;
  NfTrainLosses L;
  GError *error;
} RankJob;

static gpointer
rank_phase (gpointer p)
{
  RankJob *j = p;
  NfTrainer *t = j->t;
  switch (j->phase) {
    case 0:
      j->ok = nf_trainer_batch_losses (t, j->b, TRUE, TRUE, &j->L, &j->error);
      break;
    case 1:
      j->ok = nf_cuda_group_allreduce_mean (j->t0->dstate->group, t->rank, t->dstate->ct,
          nf_trainnet_device_grads (t->net), nf_trainnet_params (t->net)->n, &j->error);
      break;
    default:
      j->ok = nf_trainer_update (t, &j->stepped, &j->error);
      break;
  }
  return NULL;
}

/* Runs a phase on every rank at once (NCCL needs every rank inside the all-reduce) and
 * waits for all; the first error is returned. A rank failing before the all-reduce
 * stops the step after phase 0, so no rank waits in NCCL for it. */
static gboolean
run_phase (RankJob *jobs, int n, int phase, GError **error)
{
  GThread **th = g_new0 (GThread *, n);
  for (int r = 0; r < n; r++) {
    jobs[r].phase = phase;
    jobs[r].ok = FALSE;
  }
  for (int r = 1; r < n; r++)
    th[r] = g_thread_new ("nf-train-rank", rank_phase, &jobs[r]);
  rank_phase (&jobs[0]);
  for (int r = 1; r < n; r++)
    g_thread_join (th[r]);
  g_free (th);
  gboolean ok = TRUE;
  for (int r = 0; r < n; r++) {
    if (!jobs[r].ok && ok) {
      g_propagate_error (error, jobs[r].error);
      jobs[r].error = NULL;
      if (n > 1)
        g_prefix_error (error, "GPU rank %d: ", r);
      ok = FALSE;
    }
    g_clear_error (&jobs[r].error);
  }
  return ok;
}

/* Mean of the ranks' losses: the loss of the whole (n x batch) step. */
static NfTrainLosses
mean_losses (const RankJob *jobs, int n)
{
  NfTrainLosses M = jobs[0].L;
  M.total = M.content = M.style = M.tv = M.pixel = 0;
  for (int i = 0; i < M.n_style; i++)
    M.style_layer[i] = 0;
  for (int r = 0; r < n; r++) {
    const NfTrainLosses *L = &jobs[r].L;
    M.total += L->total / n;
    M.content += L->content / n;
    M.style += L->style / n;
    M.tv += L->tv / n;
    M.pixel += L->pixel / n;
    for (int i = 0; i < M.n_style; i++)
      M.style_layer[i] += L->style_layer[i] / n;
  }
  return M;
}

gboolean
nf_trainer_gpu_step (NfTrainer *t, NfTrainLosses *L, GError **error)
{
  NfTrainer **ranks = t->dstate->ranks;
  int n = t->dstate->n_ranks;
  RankJob *jobs = g_new0 (RankJob, n);
  gboolean ok = TRUE;
  for (int r = 0; ok && r < n; r++) {
    jobs[r].t = ranks[r];
    jobs[r].t0 = t;
    ok = (jobs[r].b = nf_loader_next (ranks[r]->loader, error)) != NULL;
  }
  if (ok && t->bn_pending) {
    /* once per run: statistics from rank 0's batch, copied to every other rank */
    const NfModel *m = t->model;
    const float *src = t->style ? jobs[0].b->hr : jobs[0].b->lr;
    float ai = (m->in_hi - m->in_lo) / 255.0f, bi = m->in_lo;
    for (size_t i = 0; i < nf_shape_numel (t->in_shape); i++)
      t->x[i] = src[i] * ai + bi;
    /* a host-path forward and refold: on the host's weights (current before a first
     * step; made current in any case) */
    ok = nf_trainnet_host_weights (t->net, error)
        && nf_trainnet_init_bn_stats (t->net, t->in_shape, t->x, error);
    for (int r = 1; ok && r < n; r++)
      ok = nf_trainnet_copy_state (ranks[r]->net, t->net, error);
    for (int r = 0; r < n; r++)
      ranks[r]->bn_pending = FALSE;
  }
  for (int r = 1; r < n; r++)
    ranks[r]->adam.lr = t->adam.lr;
  ok = ok && run_phase (jobs, n, 0, error) && run_phase (jobs, n, 1, error)
      && run_phase (jobs, n, 2, error);
  if (ok) {
    *L = n > 1 ? mean_losses (jobs, n) : jobs[0].L;
    for (int r = 1; r < n; r++)
      ranks[r]->step++;
  }
  /* every rank's stream was synchronised by its loss read (after the batch's uploads):
   * the batches may be refilled; after a failure a rank may still have uploads queued
   * from its batch, so wait first */
  for (int r = 0; r < n; r++) {
    if (!ok && jobs[r].b)
      nf_gpu_sync (ranks[r]->be, NULL);
    nf_loader_release (ranks[r]->loader, jobs[r].b);
  }
  g_free (jobs);
  return ok;
}

gboolean
nf_trainer_gpu_batch_losses (NfTrainer *t, const NfBatch *b, gboolean pinned,
    gboolean grad, NfTrainLosses *out, GError **error)
{
  const NfRecipe *r = t->r;
  const NfModel *m = t->model;
  NfTrainerDeviceState *ds = t->dstate;
  size_t nin = nf_shape_numel (t->in_shape), nout = nf_shape_numel (t->out_shape);
  const float *src = t->style ? b->hr : b->lr;          // (N, 3, in, in) 0..255
  /* Asynchronous uploads on the backend's stream. Loader batches are page-locked already
   * (the table's batch_alloc): straight from the batch, which is handed back after the
   * step has synchronised (read_losses). Other batches (nf_trainer_loss_on_batch) go
   * through the pinned stage, rewritten only after read_losses has synchronised
   * (nf_trainer_batch_losses calls both). */
  nf_cuda_values_drop (ds->values);     /* from a step that failed half-way */
  const float *in_src = src, *hr_src = b->hr;
  if (!pinned) {
    memcpy (ds->h_stage, src, nin * sizeof (float));
    memcpy (ds->h_stage + nin, b->hr, nout * sizeof (float));
    in_src = ds->h_stage;
    hr_src = ds->h_stage + nin;
  }
  if (!nf_gpu_copy (t->be, ds->d_in, in_src, nin * sizeof (float), error)
      || !nf_gpu_copy (t->be, ds->d_hr, hr_src, nout * sizeof (float), error))
    return FALSE;
  float ai = (m->in_hi - m->in_lo) / 255.0f, bi = m->in_lo;
  if (grad && t->bn_pending) {
    /* once per run: batch-norm statistics through the host path (nf-trainnet.h) */
    for (size_t i = 0; i < nin; i++)
      t->x[i] = src[i] * ai + bi;
    if (!nf_trainnet_host_weights (t->net, error)
        || !nf_trainnet_init_bn_stats (t->net, t->in_shape, t->x, error))
      return FALSE;
    t->bn_pending = FALSE;
  }
  float ao = 255.0f / (m->out_hi - m->out_lo), bo = -m->out_lo * ao;
  if (!nf_trainnet_forward_device (t->net, ds->ct, t->in_shape, ds->d_in, ai, bi, error)
      || !nf_trainnet_output_device (t->net, ds->ct, ds->d_y255, ao, bo, error))
    return FALSE;

  /* the losses queue their values (read_losses reads them) and their gradients */
  double S = ds->loss_scale;    /* gradient seeds times S; loss values unscaled */
  float *dy = grad ? ds->d_dy : NULL;                   // (N, 3, crop, crop)
  ds->raw_pixel = ds->raw_tv = 0.0;
  if (t->loss) {
    nf_perceptual_set_loss_scale (t->loss, (float) S);
    if (!nf_perceptual_eval_device (t->loss, t->out_shape, ds->d_y255, ds->d_hr, dy, NULL,
            error))
      return FALSE;
  } else if (dy && !nf_gpu_zero (t->be, dy, nout * sizeof (float), error)) {
    return FALSE;
  }
  if (r->pixel_weight > 0 && !nf_cuda_loss_mse (ds->ct, ds->d_y255, ds->d_hr, nout,
          r->pixel_weight * S, dy, &ds->raw_pixel, error))
    return FALSE;
  if (r->tv_strength > 0 && !nf_cuda_loss_tv (ds->ct, ds->d_y255, t->out_shape,
          r->tv_strength * (double) nout * S, dy, &ds->raw_tv, error))
    return FALSE;
  *out = (NfTrainLosses) { 0 };
  /* dL/dy255 -> dL/dy: times ao, into the network's output gradient */
  return !grad || nf_trainnet_backward_device (t->net, ds->ct, dy, ao, error);
}

gboolean
nf_trainer_gpu_read_losses (NfTrainer *t, NfTrainLosses *out, GError **error)
{
  const NfRecipe *r = t->r;
  NfTrainerDeviceState *ds = t->dstate;
  size_t nout = nf_shape_numel (t->out_shape);
  /* the one synchronisation of the step: the forward, losses and backward are queued */
  if (!nf_cuda_values_read (ds->values, error))
    return FALSE;
  NfTrainLosses L = { 0 };
  if (t->loss) {
    NfPerceptualLosses pl;
    nf_perceptual_device_losses (t->loss, &pl);
    L.content = pl.content;
    L.style = pl.style;
    L.total += pl.total;
    for (int i = 0; t->style_layer_names[i]; i++) {
      L.style_layer[i] = pl.style_layer[i];
      L.n_style = i + 1;
    }
  }
  if (r->pixel_weight > 0) {
    L.pixel = ds->raw_pixel;
    L.total += r->pixel_weight * L.pixel;
  }
  if (r->tv_strength > 0) {
    double w = r->tv_strength * (double) nout;  /* Johnson's sum = mean x elements */
    L.tv = ds->raw_tv;
    L.total += w * L.tv;
  }
  *out = L;
  if (!isfinite (L.total)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "the loss is not finite at step %" G_GUINT64_FORMAT " (%g): the run diverged; lower "
        "--lr or resume from the last checkpoint", t->step + 1, L.total);
    return FALSE;
  }
  return TRUE;
}

gboolean
nf_trainer_gpu_optimiser_step (NfTrainer *t, gboolean *stepped, GError **error)
{
  NfTrainerDeviceState *ds = t->dstate;
  gboolean fp16 = nf_gpu_is_fp16 (t->be);
  *stepped = TRUE;
  if (fp16) {
    gboolean finite = FALSE;
    if (!nf_cuda_all_finite (ds->ct, nf_trainnet_device_grads (t->net),
            nf_trainnet_params (t->net)->n, &finite, error))
      return FALSE;
    if (!finite) {
      /* overflow in half: skip the step, halve the scale */
      ds->loss_scale /= 2.0;
      ds->good_steps = 0;
      t->skipped_steps++;
      *stepped = FALSE;
      if (ds->loss_scale < 1.0) {
        g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
            "the gradient is not finite even with a loss scale below 1 at step %"
            G_GUINT64_FORMAT ": the run diverged; lower --lr or train with --backend cuda",
            t->step + 1);
        return FALSE;
      }
      return TRUE;
    }
  }
  if (!nf_trainnet_adam_device (t->net, ds->ct, &t->adam, (float) (1.0 / ds->loss_scale),
          error))
    return FALSE;
  if (fp16 && ++ds->good_steps >= LOSS_SCALE_GROWTH_STEPS) {
    ds->loss_scale *= 2.0;
    ds->good_steps = 0;
  }
  return TRUE;
}
