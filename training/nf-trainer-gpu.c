/* nf-trainer-gpu.c — the training step on a CUDA backend, and the choice of the device
 * (see nf-trainer.h).
 *
 * What it does: picks the backend from --device/--backend (a GPU is "usable" when
 * nf_cuda_device_count finds one, the CUDA backend has backward passes and this build
 * has the GPU training kernels); checks that the backend can train every op of the
 * network and of the loss network; per step stages the batch in pinned memory and
 * uploads it on the backend's stream, runs the network, the perceptual, pixel and TV
 * losses with their gradient on the device (training/cuda/nf-cuda-train.h), the
 * backward, Adam on the device copy of the parameters, and (cuda-fp16) dynamic loss
 * scaling.
 * Data parallelism (--gpus N, nf_trainer_gpu_make_ranks): rank 0 is the trainer, ranks
 * 1..N-1 are replicas on devices 1..N-1 (nf_trainer_replica_new) with the same initial
 * state; each rank draws its own batches (the recipe's seed + rank * 1000003, batch
 * index = step, so a resumed run continues every rank's stream); per step every rank
 * computes its loss and gradient on its thread, the gradients are averaged with one
 * NCCL all-reduce (nf_cuda_group_allreduce_mean), and every rank runs the same Adam
 * step on the same averaged gradient, so the replicas stay bit-identical and rank 0's
 * parameters are the run's. Batch-norm statistics come from rank 0's first batch and
 * are copied. Rank 0 logs, previews and checkpoints. N = 1 is a group of one on the
 * same code path. The losses reported are the mean over the ranks.
 * What it does not: the CPU step, checkpoints, previews (nf-trainer.c), what runs on the
 * device inside the network (nf-trainnet-gpu.c) and the loss network
 * (nf-perceptual-gpu.c).
 */
#include "nf-trainer-private.h"

#include <math.h>
#include <string.h>

#include "nf-error.h"
#include "nf-perceptual.h"
#include "nf-train-gpu.h"
#ifdef NF_HAVE_CUDA
#include "nf-cuda.h"
#endif

#define LOSS_SCALE_START 32768.0        /* 2^15 */
#define LOSS_SCALE_GROWTH_STEPS 2000

/* NULL when backend `name` can train on a GPU here, else why not (g_free). */
static char *
cuda_cannot_train (const char *name)
{
  const NfBackendIface *i = nf_backend_lookup (name);
  if (!i)
    return g_strdup ("this build has no CUDA backend (nvcc and cuDNN were not found at "
        "configure time)");
#ifdef NF_HAVE_CUDA
  GError *e = NULL;
  int n = nf_cuda_device_count (&e);
  if (n <= 0) {
    char *why = g_strdup_printf ("no usable GPU (%s)", e ? e->message : "no CUDA device");
    g_clear_error (&e);
    return why;
  }
#endif
#ifndef NF_HAVE_CUDA_TRAIN
  return g_strdup ("this build has no GPU training kernels (training/cuda)");
#else
  if (!i->zero || !i->backward[NF_OP_CONV2D])
    return g_strdup_printf ("the %s backend has no backward passes in this build", name);
  return NULL;
#endif
}

const char *
nf_trainer_choose_backend (const char *device, const char *backend, char **note,
    GError **error)
{
  if (note)
    *note = NULL;
  device = device ? device : "auto";
  backend = backend ? backend : "auto";
  gboolean dev_cpu = g_str_equal (device, "cpu"), dev_cuda = g_str_equal (device, "cuda");
  if (!dev_cpu && !dev_cuda && !g_str_equal (device, "auto")) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "--device %s: auto, cpu or cuda",
        device);
    return NULL;
  }
  if (!g_str_equal (backend, "auto")) {
    gboolean b_cuda = g_str_has_prefix (backend, "cuda");
    if (!nf_backend_lookup (backend)) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "--backend %s is not a backend of this build (auto, cpu, cpu-ref%s)", backend,
          nf_backend_lookup ("cuda") ? ", cuda, cuda-fp16" : "");
      return NULL;
    }
    if ((b_cuda && dev_cpu) || (!b_cuda && dev_cuda)) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "--backend %s runs on the %s, not on --device %s", backend, b_cuda ? "GPU" : "CPU",
          device);
      return NULL;
    }
    char *why = b_cuda ? cuda_cannot_train (backend) : NULL;
    if (why) {
      g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "--backend %s: %s", backend, why);
      g_free (why);
      return NULL;
    }
    return g_intern_string (backend);
  }
  if (dev_cpu)
    return nf_trainer_pick_backend ("auto");
  char *why = cuda_cannot_train ("cuda");
  if (!why)
    return "cuda";
  if (dev_cuda) {
    g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "--device cuda: %s", why);
    g_free (why);
    return NULL;
  }
  const char *cpu = nf_trainer_pick_backend ("auto");
  if (note)
    *note = g_strdup_printf ("device auto: %s; training on the CPU (backend %s)", why, cpu);
  g_free (why);
  return cpu;
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

#ifdef NF_HAVE_CUDA_TRAIN

void
nf_trainer_gpu_free (NfTrainer *t)
{
  if (!t->gpu)
    return;
  for (int r = 1; t->ranks && r < t->n_ranks; r++)
    nf_trainer_free (t->ranks[r]);
  g_free (t->ranks);
  t->ranks = NULL;
  t->n_ranks = 0;
  if (t->group)
    nf_cuda_group_free (t->group);
  t->group = NULL;
  if (t->h_stage)
    nf_cuda_host_free (t->be, t->h_stage);
  nf_gpu_free (t->be, t->d_in);
  nf_gpu_free (t->be, t->d_hr);
  nf_gpu_free (t->be, t->d_y255);
  nf_gpu_free (t->be, t->d_dy);
  t->h_stage = NULL;
  t->d_in = t->d_hr = t->d_y255 = t->d_dy = NULL;
  if (t->ct)
    nf_cuda_train_free (t->ct);
  t->ct = NULL;
}

gboolean
nf_trainer_gpu_setup (NfTrainer *t, GError **error)
{
  if (!check_backward (t->be, t->model->graph, "the network", error)
      || (t->vgg && !check_backward (t->be, t->vgg->model->graph, "the loss network", error)))
    return FALSE;
  if (!(t->ct = nf_cuda_train_new (t->be, error)))
    return FALSE;
  size_t nin = nf_shape_numel (t->in_shape), nout = nf_shape_numel (t->out_shape);
  if (!(t->h_stage = nf_cuda_host_alloc (t->be, (nin + nout) * sizeof (float), error))
      || !(t->d_in = nf_gpu_alloc_floats (t->be, nin, error))
      || !(t->d_hr = nf_gpu_alloc_floats (t->be, nout, error))
      || !(t->d_y255 = nf_gpu_alloc_floats (t->be, nout, error))
      || !(t->d_dy = nf_gpu_alloc_floats (t->be, nout, error)))
    return FALSE;
  t->loss_scale = nf_gpu_is_fp16 (t->be) ? LOSS_SCALE_START : 1.0;
  return TRUE;
}

gboolean
nf_trainer_gpu_make_ranks (NfTrainer *t, GError **error)
{
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
  if (!(t->group = nf_cuda_group_new (n, error)))
    return FALSE;
  t->ranks = g_new0 (NfTrainer *, n);
  t->n_ranks = n;
  t->ranks[0] = t;
  for (int r = 1; r < n; r++)
    if (!(t->ranks[r] = nf_trainer_replica_new (t, r, error)))
      return FALSE;
  return TRUE;
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
      j->ok = nf_trainer_gpu_batch_losses (t, j->b, TRUE, TRUE, &j->L, &j->error);
      break;
    case 1:
      j->ok = nf_cuda_group_allreduce_mean (j->t0->group, t->rank, t->ct,
          nf_trainnet_device_grads (t->net), nf_trainnet_params (t->net)->n, &j->error);
      break;
    default:
      j->ok = nf_trainer_gpu_update (t, &j->stepped, &j->error);
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
  int n = t->n_ranks;
  RankJob *jobs = g_new0 (RankJob, n);
  gboolean ok = TRUE;
  for (int r = 0; ok && r < n; r++) {
    jobs[r].t = t->ranks[r];
    jobs[r].t0 = t;
    ok = (jobs[r].b = nf_loader_next (t->ranks[r]->loader, error)) != NULL;
  }
  if (ok && t->bn_pending) {
    /* once per run: statistics from rank 0's batch, copied to every other rank */
    const NfModel *m = t->model;
    const float *src = t->style ? jobs[0].b->hr : jobs[0].b->lr;
    float ai = (m->in_hi - m->in_lo) / 255.0f, bi = m->in_lo;
    for (size_t i = 0; i < nf_shape_numel (t->in_shape); i++)
      t->x[i] = src[i] * ai + bi;
    ok = nf_trainnet_init_bn_stats (t->net, t->in_shape, t->x, error);
    for (int r = 1; ok && r < n; r++)
      ok = nf_trainnet_copy_state (t->ranks[r]->net, t->net, error);
    for (int r = 0; r < n; r++)
      t->ranks[r]->bn_pending = FALSE;
  }
  for (int r = 1; r < n; r++)
    t->ranks[r]->adam.lr = t->adam.lr;
  ok = ok && run_phase (jobs, n, 0, error) && run_phase (jobs, n, 1, error)
      && run_phase (jobs, n, 2, error);
  if (ok) {
    *L = n > 1 ? mean_losses (jobs, n) : jobs[0].L;
    for (int r = 1; r < n; r++)
      t->ranks[r]->step++;
  }
  /* every rank's stream was synchronised by its loss reads: the batches may be refilled;
   * after a failure a rank may still have uploads queued from its batch, so wait first */
  for (int r = 0; r < n; r++) {
    if (!ok && jobs[r].b)
      nf_gpu_sync (t->ranks[r]->be, NULL);
    nf_loader_release (t->ranks[r]->loader, jobs[r].b);
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
  size_t nin = nf_shape_numel (t->in_shape), nout = nf_shape_numel (t->out_shape);
  const float *src = t->style ? b->hr : b->lr;          // (N, 3, in, in) 0..255
  /* Asynchronous uploads on the backend's stream. Loader batches are page-locked already
   * (nf-trainer.c loader_new): straight from the batch, which is handed back after the
   * step has synchronised (loss reads). Other batches (nf_trainer_loss_on_batch) go
   * through the pinned stage, rewritten only after this call has synchronised. */
  const float *in_src = src, *hr_src = b->hr;
  if (!pinned) {
    memcpy (t->h_stage, src, nin * sizeof (float));
    memcpy (t->h_stage + nin, b->hr, nout * sizeof (float));
    in_src = t->h_stage;
    hr_src = t->h_stage + nin;
  }
  if (!nf_gpu_copy (t->be, t->d_in, in_src, nin * sizeof (float), error)
      || !nf_gpu_copy (t->be, t->d_hr, hr_src, nout * sizeof (float), error))
    return FALSE;
  float ai = (m->in_hi - m->in_lo) / 255.0f, bi = m->in_lo;
  if (grad && t->bn_pending) {
    /* once per run: batch-norm statistics through the host path (nf-trainnet.h) */
    for (size_t i = 0; i < nin; i++)
      t->x[i] = src[i] * ai + bi;
    if (!nf_trainnet_init_bn_stats (t->net, t->in_shape, t->x, error))
      return FALSE;
    t->bn_pending = FALSE;
  }
  float ao = 255.0f / (m->out_hi - m->out_lo), bo = -m->out_lo * ao;
  if (!nf_trainnet_forward_device (t->net, t->ct, t->in_shape, t->d_in, ai, bi, error)
      || !nf_trainnet_output_device (t->net, t->ct, t->d_y255, ao, bo, error))
    return FALSE;

  NfTrainLosses L = { 0 };
  double S = t->loss_scale;     /* gradient seeds times S; loss values unscaled */
  float *dy = grad ? t->d_dy : NULL;                    // (N, 3, crop, crop)
  if (t->loss) {
    NfPerceptualLosses pl;
    nf_perceptual_set_loss_scale (t->loss, (float) S);
    if (!nf_perceptual_eval_device (t->loss, t->out_shape, t->d_y255, t->d_hr, dy, &pl,
            error))
      return FALSE;
    L.content = pl.content;
    L.style = pl.style;
    L.total += pl.total;
    for (int i = 0; t->style_layer_names[i]; i++) {
      L.style_layer[i] = pl.style_layer[i];
      L.n_style = i + 1;
    }
  } else if (dy && !nf_gpu_zero (t->be, dy, nout * sizeof (float), error)) {
    return FALSE;
  }
  if (r->pixel_weight > 0) {
    if (!nf_cuda_loss_mse (t->ct, t->d_y255, t->d_hr, nout, r->pixel_weight * S, dy,
            &L.pixel, error))
      return FALSE;
    L.total += r->pixel_weight * L.pixel;
  }
  if (r->tv_strength > 0) {
    double w = r->tv_strength * (double) nout;  /* Johnson's sum = mean x elements */
    if (!nf_cuda_loss_tv (t->ct, t->d_y255, t->out_shape, w * S, dy, &L.tv, error))
      return FALSE;
    L.total += w * L.tv;
  }
  *out = L;
  if (!isfinite (L.total)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "the loss is not finite at step %" G_GUINT64_FORMAT " (%g): the run diverged; lower "
        "--lr or resume from the last checkpoint", t->step + 1, L.total);
    return FALSE;
  }
  /* dL/dy255 -> dL/dy: times ao, into the network's output gradient */
  return !grad || nf_trainnet_backward_device (t->net, t->ct, dy, ao, error);
}

gboolean
nf_trainer_gpu_update (NfTrainer *t, gboolean *stepped, GError **error)
{
  gboolean fp16 = nf_gpu_is_fp16 (t->be);
  *stepped = TRUE;
  if (fp16) {
    gboolean finite = FALSE;
    if (!nf_cuda_all_finite (t->ct, nf_trainnet_device_grads (t->net),
            nf_trainnet_params (t->net)->n, &finite, error))
      return FALSE;
    if (!finite) {
      /* overflow in half: skip the step, halve the scale */
      t->loss_scale /= 2.0;
      t->good_steps = 0;
      t->skipped_steps++;
      *stepped = FALSE;
      if (t->loss_scale < 1.0) {
        g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
            "the gradient is not finite even with a loss scale below 1 at step %"
            G_GUINT64_FORMAT ": the run diverged; lower --lr or train with --backend cuda",
            t->step + 1);
        return FALSE;
      }
      return TRUE;
    }
  }
  if (!nf_trainnet_adam_device (t->net, t->ct, &t->adam, (float) (1.0 / t->loss_scale),
          error))
    return FALSE;
  if (fp16 && ++t->good_steps >= LOSS_SCALE_GROWTH_STEPS) {
    t->loss_scale *= 2.0;
    t->good_steps = 0;
  }
  return nf_trainnet_sync_from_device (t->net, error);
}

#else /* !NF_HAVE_CUDA_TRAIN: nf_trainer_choose_backend never picks a CUDA backend */

void
nf_trainer_gpu_free (NfTrainer *t)
{
  (void) t;
}

gboolean
nf_trainer_gpu_setup (NfTrainer *t, GError **error)
{
  /* still name what the backend lacks, the more useful message */
  if (!check_backward (t->be, t->model->graph, "the network", error))
    return FALSE;
  g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
      "training on %s needs the GPU training kernels (training/cuda), which this build "
      "does not have", t->be->iface->name);
  return FALSE;
}

gboolean
nf_trainer_gpu_batch_losses (NfTrainer *t, const NfBatch *b, gboolean pinned,
    gboolean grad, NfTrainLosses *out, GError **error)
{
  (void) b, (void) pinned, (void) grad, (void) out;
  return nf_trainer_gpu_setup (t, error);
}

gboolean
nf_trainer_gpu_update (NfTrainer *t, gboolean *stepped, GError **error)
{
  *stepped = FALSE;
  return nf_trainer_gpu_setup (t, error);
}

gboolean
nf_trainer_gpu_make_ranks (NfTrainer *t, GError **error)
{
  return nf_trainer_gpu_setup (t, error);
}

gboolean
nf_trainer_gpu_step (NfTrainer *t, NfTrainLosses *L, GError **error)
{
  (void) L;
  return nf_trainer_gpu_setup (t, error);
}

#endif
