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
  nf_cuda_host_free (t->be, t->h_stage);
  nf_gpu_free (t->be, t->d_in);
  nf_gpu_free (t->be, t->d_hr);
  nf_gpu_free (t->be, t->d_y255);
  nf_gpu_free (t->be, t->d_dy);
  t->h_stage = NULL;
  t->d_in = t->d_hr = t->d_y255 = t->d_dy = NULL;
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
nf_trainer_gpu_batch_losses (NfTrainer *t, const NfBatch *b, gboolean grad,
    NfTrainLosses *out, GError **error)
{
  const NfRecipe *r = t->r;
  const NfModel *m = t->model;
  size_t nin = nf_shape_numel (t->in_shape), nout = nf_shape_numel (t->out_shape);
  const float *src = t->style ? b->hr : b->lr;          // (N, 3, in, in) 0..255
  /* pinned staging, then asynchronous uploads on the backend's stream; the stage is
   * rewritten only by the next batch, after this step has synchronised (loss reads) */
  memcpy (t->h_stage, src, nin * sizeof (float));
  memcpy (t->h_stage + nin, b->hr, nout * sizeof (float));
  if (!nf_gpu_copy (t->be, t->d_in, t->h_stage, nin * sizeof (float), error)
      || !nf_gpu_copy (t->be, t->d_hr, t->h_stage + nin, nout * sizeof (float), error))
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
nf_trainer_gpu_batch_losses (NfTrainer *t, const NfBatch *b, gboolean grad,
    NfTrainLosses *out, GError **error)
{
  (void) b, (void) grad, (void) out;
  return nf_trainer_gpu_setup (t, error);
}

gboolean
nf_trainer_gpu_update (NfTrainer *t, gboolean *stepped, GError **error)
{
  *stepped = FALSE;
  return nf_trainer_gpu_setup (t, error);
}

#endif
