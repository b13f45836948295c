/* nf-model-runner.c — the model runner of the neuralfilter elements: finding a model
 * file, loading it on the chosen device, loading in the background and swapping in
 * between frames, and running the model in use.
 *
 * What it does: see nf-model-runner.h. A load requested while streaming runs on a
 * thread of its own and is planned there for the last frame size, so that the stream
 * never waits for a load; each request gets a serial number and only the latest one's
 * result is kept (as `pending`, until nf_model_runner_swap). device=auto tries CUDA
 * and falls back to the CPU with one INFO log line when no CUDA backend is built or no
 * GPU is usable. superres without a model setting: nothing is loaded until the owner
 * knows the scale and calls nf_model_runner_choose with the names to try.
 * What it does not: post anything on a GStreamer bus (the owner does, from the
 * events), convert pixels, know any device context (NfDeviceContextFuncs), or look
 * for the files (nf-model-find.c).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "nf-model-runner.h"
#include "nf-luma-core.h"

#include <string.h>

#include <gst/gst.h>

GST_DEBUG_CATEGORY_STATIC (nf_model_runner_debug);
#define GST_CAT_DEFAULT nf_model_runner_debug

#ifndef NF_WEIGHTS_DIR
#define NF_WEIGHTS_DIR "/usr/local/share/neuralfilter/weights"
#endif

G_DEFINE_QUARK (nf-runner-error-quark, nf_runner_error);

struct NfModelRunner
{
  NfTask task;
  gpointer owner;               /* a GObject or NULL */
  NfRunnerEvents events;
  const NfDeviceContextFuncs *contexts;

  /* Settings and background loads, guarded by lock. */
  GMutex lock;
  GCond cond;
  gchar *model;
  NfDeviceChoice choice;
  gboolean warned_fp16;
  gboolean streaming;           /* between start and stop */
  NfLoadedModel *pending;       /* loaded off-thread, swapped in before the next frame */
  guint load_serial;            /* the latest load request; older results are dropped */
  gint loads_in_flight;
  gint last_w, last_h;          /* size of the last frame, to plan a new model for */

  /* The thread of the model in use. */
  NfLoadedModel *current;
};

const gchar *
nf_model_weights_dir (void)
{
  return NF_WEIGHTS_DIR;
}

static const gchar *
element_for_task (NfTask task)
{
  return task == NF_TASK_SUPERRES ? "superres" : "neuralstyle";
}

static inline gint
round_up (gint v, gint m)
{
  return m > 1 ? (v + m - 1) / m * m : v;
}

/* ---- a loaded model: enter its context, free ------------------------------------- */

/* Makes the model's device context current, if it has one; TRUE: leave it afterwards. */
static gboolean
loaded_enter (const NfLoadedModel * m)
{
  return m->device_ctx && m->contexts && m->contexts->push (m->device_ctx);
}

static void
loaded_leave (const NfLoadedModel * m, gboolean entered)
{
  if (entered)
    m->contexts->pop ();
}

static void
loaded_free (NfLoadedModel * m)
{
  if (!m)
    return;
  gboolean entered = loaded_enter (m);
  nf_engine_free (m->luma_engine);
  nf_model_free (m->luma_model);
  nf_engine_free (m->engine);
  nf_model_free (m->model);
  nf_backend_free (m->backend);
  loaded_leave (m, entered);
  if (m->device_ctx)
    m->contexts->ctx_unref (m->device_ctx);
  g_free (m->name);
  g_free (m->path);
  g_free (m);
}

static gboolean
same_choice (const NfDeviceChoice * a, const NfDeviceChoice * b)
{
  return a->device == b->device && a->precision == b->precision
      && a->cuda_device_id == b->cuda_device_id;
}

/* ---- device choice --------------------------------------------------------------- */

/* A CUDA backend by name: in a context of the device table when there is one, else in
 * the CUDA runtime's own context. */
static NfBackend *
cuda_backend_new (NfModelRunner * r, const gchar * name, const NfDeviceChoice * c,
    NfLoadedModel * m, GError ** error)
{
  NfBackend *be;

  if (r->contexts) {
    be = r->contexts->backend_new (r->owner, name, c->cuda_device_id, &m->device_ctx,
        error);
    if (be)
      m->contexts = r->contexts;
  } else {
    be = nf_backend_new (name, error);
  }
  if (be)
    m->backend_name = name;
  return be;
}

static NfBackend *
backend_for_choice (NfModelRunner * r, const NfDeviceChoice * c, NfLoadedModel * m,
    GError ** error)
{
  /* The backends the precision asks for on each device. */
  const gchar *cuda_name = c->precision == NF_RUNNER_PRECISION_FP32 ? "cuda" : "cuda-fp16";
  const gchar *cpu_name = "cpu";
  gboolean have_cuda = nf_backend_lookup ("cuda") != NULL;
  GError *e = NULL;

  if (c->device == NF_RUNNER_DEVICE_CUDA) {
    if (!have_cuda) {
      g_set_error (error, NF_RUNNER_ERROR, NF_RUNNER_ERROR_DEVICE,
          "device=cuda was requested, but this build of the neuralfilter plugin has "
          "no CUDA backend. Use device=auto or device=cpu, or rebuild with CUDA and "
          "cuDNN installed.");
      return NULL;
    }
    NfBackend *be = cuda_backend_new (r, cuda_name, c, m, &e);
    if (!be) {
      g_set_error (error, NF_RUNNER_ERROR, NF_RUNNER_ERROR_DEVICE,
          "device=cuda was requested, but CUDA cannot be used here (%s). "
          "Use device=auto or device=cpu to run on the CPU.", e->message);
      g_error_free (e);
      return NULL;
    }
    return be;
  }

  if (c->device == NF_RUNNER_DEVICE_AUTO) {
    if (have_cuda) {
      NfBackend *be = cuda_backend_new (r, cuda_name, c, m, &e);
      if (be)
        return be;
      GST_INFO_OBJECT (r->owner, "CUDA is not usable (%s): running on the CPU",
          e->message);
      g_clear_error (&e);
    } else {
      GST_INFO_OBJECT (r->owner, "this build has no CUDA backend: running on the CPU");
    }
  }

  /* The CPU: bf16 convolutions where the CPU has native bf16 (auto, bf16), else fp32. */
  NfBackend *be = NULL;
  if (c->precision == NF_RUNNER_PRECISION_AUTO || c->precision == NF_RUNNER_PRECISION_BF16) {
    be = nf_backend_new ("cpu-bf16", &e);
    if (be) {
      cpu_name = "cpu-bf16";
      GST_INFO_OBJECT (r->owner, "CPU in bf16 (native bf16 convolutions, fp32 elsewhere)");
    } else if (c->precision == NF_RUNNER_PRECISION_BF16) {
      GST_WARNING_OBJECT (r->owner, "precision=bf16, but %s: running in fp32", e->message);
    } else {
      GST_INFO_OBJECT (r->owner, "CPU in fp32 (%s)", e->message);
    }
    g_clear_error (&e);
  }
  if (!be)
    be = nf_backend_new (cpu_name, &e);
  if (!be) {
    g_set_error (error, NF_RUNNER_ERROR, NF_RUNNER_ERROR_DEVICE,
        "The CPU backend could not be created (%s).", e->message);
    g_error_free (e);
    return NULL;
  }
  m->backend_name = cpu_name;
  return be;
}

/* ---- loading --------------------------------------------------------------------- */

/* Loads and checks a model for this runner's task; plans it for plan_w x plan_h frames
 * when those are > 0. Any thread. */
static NfLoadedModel *
load_model (NfModelRunner * r, const gchar * name, const NfDeviceChoice * choice,
    gint plan_w, gint plan_h, GError ** error)
{
  GError *e = NULL;
  NfLoadedModel *m = g_new0 (NfLoadedModel, 1);

  m->name = g_strdup (name);
  m->choice = *choice;
  m->path = nf_model_find_file (name, NF_WEIGHTS_DIR, error);
  if (!m->path)
    goto failed;

  m->model = nf_model_load (m->path, &e);
  if (!m->model) {
    g_set_error (error, NF_RUNNER_ERROR, NF_RUNNER_ERROR_LOAD,
        "Could not load the model file %s: %s. The file is damaged or is not a "
        "neuralfilter model; export it again or pick another model.", m->path,
        e->message);
    g_error_free (e);
    goto failed;
  }
  if (m->model->task != r->task) {
    const gchar *mt = nf_task_name (m->model->task);
    g_set_error (error, NF_RUNNER_ERROR, NF_RUNNER_ERROR_TASK,
        "The model %s is a \"%s\" model, but %s runs \"%s\" models only. %s",
        m->path, mt, element_for_task (r->task), nf_task_name (r->task),
        m->model->task == NF_TASK_OTHER ? "Pick another model." :
        m->model->task == NF_TASK_STYLE ? "Use it with the neuralstyle element." :
        "Use it with the superres element.");
    goto failed;
  }

  m->backend = backend_for_choice (r, choice, m, error);
  if (!m->backend)
    goto failed;
  m->engine = nf_engine_new (m->model, m->backend, NULL);
  if (!m->device_ctx && g_str_has_prefix (m->backend_name, "cpu")) {
    m->luma_model = nf_model_luma_core (m->model, &e);
    if (m->luma_model)
      m->luma_engine = nf_engine_new (m->luma_model, m->backend, NULL);
    else if (e) {               /* the RGB path still runs it */
      GST_WARNING_OBJECT (r->owner, "%s: no luma-only path: %s", m->path, e->message);
      g_clear_error (&e);
    }
  }

  if (plan_w > 0 && plan_h > 0) {
    gint sm = m->model->size_multiple;
    NfShape s = { 1, 3, round_up (plan_h, sm), round_up (plan_w, sm) };
    gboolean entered = loaded_enter (m);
    gboolean planned = nf_engine_plan (m->engine, s, &e);
    loaded_leave (m, entered);
    if (!planned) {
      g_set_error (error, NF_RUNNER_ERROR, NF_RUNNER_ERROR_LOAD,
          "The model %s cannot run on %dx%d frames: %s.", m->path, plan_w, plan_h,
          e->message);
      g_error_free (e);
      goto failed;
    }
  }
  GST_INFO_OBJECT (r->owner, "loaded %s (task %s, scale %d, size multiple %d) on %s%s",
      m->path, nf_task_name (m->model->task), m->model->scale,
      m->model->size_multiple, m->backend_name,
      m->luma_engine ? ", luma only on Y'CbCr frames" : "");
  if (r->events.loaded)
    r->events.loaded (r->owner, m);
  return m;

failed:
  loaded_free (m);
  return NULL;
}

/* Makes m the model in use (its thread, or while not streaming). */
static void
install (NfModelRunner * r, NfLoadedModel * m, gboolean between_frames)
{
  NfLoadedModel *old = r->current;

  r->current = m;
  if (r->events.installed)
    r->events.installed (r->owner, old, m, between_frames);
  loaded_free (old);
}

/* ---- loading off the streaming thread -------------------------------------------- */

typedef struct {
  NfModelRunner *runner;
  gchar *name;
  NfDeviceChoice choice;
  guint serial;
  gint w, h;
} LoadJob;

static gpointer
load_thread (gpointer data)
{
  LoadJob *job = data;
  NfModelRunner *r = job->runner;
  gpointer owner = r->owner;
  GError *err = NULL;
  NfLoadedModel *m, *dropped = NULL;
  gboolean latest;

  m = load_model (r, job->name, &job->choice, job->w, job->h, &err);

  g_mutex_lock (&r->lock);
  latest = job->serial == r->load_serial && r->streaming;
  if (m && latest) {
    dropped = r->pending;
    r->pending = m;
    m = NULL;
  }
  g_mutex_unlock (&r->lock);

  if (err && latest && r->events.load_failed)
    r->events.load_failed (r->owner, err);
  else if (err)
    GST_DEBUG_OBJECT (r->owner, "superseded load failed: %s", err->message);
  g_clear_error (&err);
  loaded_free (m);
  loaded_free (dropped);
  g_free (job->name);
  g_free (job);

  /* The runner may be freed as soon as the count drops (and with the owner's last
   * reference): nothing of it is touched after this. */
  g_mutex_lock (&r->lock);
  r->loads_in_flight--;
  g_cond_broadcast (&r->cond);
  g_mutex_unlock (&r->lock);
  if (owner)
    g_object_unref (owner);
  return NULL;
}

/* Starts loading the model setting on a thread (lock not held: a failure to start one
 * is reported through the events). */
static void
start_background_load (NfModelRunner * r)
{
  LoadJob *job = g_new0 (LoadJob, 1);
  GError *err = NULL;
  GThread *thread;

  job->runner = r;
  if (r->owner)
    g_object_ref (r->owner);
  g_mutex_lock (&r->lock);
  job->name = g_strdup (r->model);
  job->choice = r->choice;
  job->serial = ++r->load_serial;
  job->w = r->last_w;
  job->h = r->last_h;
  r->loads_in_flight++;
  g_mutex_unlock (&r->lock);

  GST_INFO_OBJECT (r->owner, "loading model \"%s\" in the background", job->name);
  thread = g_thread_try_new ("nf-model-load", load_thread, job, &err);
  if (thread) {
    g_thread_unref (thread);
    return;
  }

  g_mutex_lock (&r->lock);
  r->loads_in_flight--;
  g_cond_broadcast (&r->cond);
  g_mutex_unlock (&r->lock);
  if (r->events.load_failed) {
    GError *e = g_error_new (NF_RUNNER_ERROR, NF_RUNNER_ERROR_THREAD,
        "Could not start a thread to load the model \"%s\" (%s); the previous "
        "model keeps running. Set the property again to retry.", job->name,
        err->message);
    r->events.load_failed (r->owner, e);
    g_error_free (e);
  }
  g_error_free (err);
  g_free (job->name);
  g_free (job);
  if (r->owner)
    g_object_unref (r->owner);
}

/* ---- the runner ------------------------------------------------------------------ */

NfModelRunner *
nf_model_runner_new (NfTask task, gpointer owner, const NfRunnerEvents * events,
    const NfDeviceContextFuncs * contexts)
{
  NfModelRunner *r = g_new0 (NfModelRunner, 1);

  if (g_once_init_enter (&nf_model_runner_debug)) {
    GstDebugCategory *cat = NULL;
    GST_DEBUG_CATEGORY_INIT (cat, "neuralfilter", 0,
        "neural network video filters (base class)");
    g_once_init_leave (&nf_model_runner_debug, cat);
  }
  r->task = task;
  r->owner = owner;
  if (events)
    r->events = *events;
  r->contexts = contexts;
  g_mutex_init (&r->lock);
  g_cond_init (&r->cond);
  r->choice.device = NF_RUNNER_DEVICE_AUTO;
  r->choice.precision = NF_RUNNER_PRECISION_AUTO;
  r->choice.cuda_device_id = -1;
  return r;
}

gboolean
nf_model_runner_wait_loads (NfModelRunner * r, gint64 timeout_us)
{
  gint64 end = timeout_us < 0 ? -1 : g_get_monotonic_time () + timeout_us;
  gboolean idle = TRUE;

  g_mutex_lock (&r->lock);
  while (r->loads_in_flight > 0 && idle) {
    if (end < 0)
      g_cond_wait (&r->cond, &r->lock);
    else
      idle = g_cond_wait_until (&r->cond, &r->lock, end) || r->loads_in_flight == 0;
  }
  g_mutex_unlock (&r->lock);
  return idle;
}

/* Makes whatever is in flight stale and waits for it. */
static void
drop_loads (NfModelRunner * r)
{
  g_mutex_lock (&r->lock);
  r->load_serial++;
  g_mutex_unlock (&r->lock);
  nf_model_runner_wait_loads (r, -1);
}

void
nf_model_runner_free (NfModelRunner * r)
{
  if (!r)
    return;
  drop_loads (r);
  loaded_free (r->current);
  loaded_free (r->pending);
  g_free (r->model);
  g_mutex_clear (&r->lock);
  g_cond_clear (&r->cond);
  g_free (r);
}

void
nf_model_runner_set_model (NfModelRunner * r, const gchar * name)
{
  gboolean streaming;

  g_mutex_lock (&r->lock);
  g_free (r->model);
  r->model = g_strdup (name);
  streaming = r->streaming;
  g_mutex_unlock (&r->lock);
  if (streaming)
    start_background_load (r);
}

gchar *
nf_model_runner_dup_model (NfModelRunner * r)
{
  g_mutex_lock (&r->lock);
  gchar *s = g_strdup (r->model);
  g_mutex_unlock (&r->lock);
  return s;
}

void
nf_model_runner_set_device (NfModelRunner * r, const NfDeviceChoice * choice)
{
  g_mutex_lock (&r->lock);
  if (choice->precision != r->choice.precision)
    r->warned_fp16 = FALSE;
  r->choice = *choice;
  g_mutex_unlock (&r->lock);
}

void
nf_model_runner_get_device (NfModelRunner * r, NfDeviceChoice * choice)
{
  g_mutex_lock (&r->lock);
  *choice = r->choice;
  g_mutex_unlock (&r->lock);
}

static gboolean
setting_is_automatic (NfModelRunner * r, const gchar * name)
{
  return r->task == NF_TASK_SUPERRES && (name == NULL || name[0] == '\0');
}

gboolean
nf_model_runner_is_automatic (NfModelRunner * r)
{
  g_mutex_lock (&r->lock);
  gboolean a = setting_is_automatic (r, r->model);
  g_mutex_unlock (&r->lock);
  return a;
}

/* ensure with an empty superres setting: keeps an automatic model (reloaded for a new
 * device setting), drops one of an earlier setting. */
static gboolean
ensure_automatic (NfModelRunner * r, const NfDeviceChoice * choice, GError ** error)
{
  NfLoadedModel *cur = r->current;

  if (cur && cur->automatic && same_choice (&cur->choice, choice))
    return TRUE;
  if (cur && cur->automatic) {
    NfLoadedModel *m = load_model (r, cur->name, choice, 0, 0, error);
    if (!m)
      return FALSE;
    m->automatic = TRUE;
    install (r, m, FALSE);
    return TRUE;
  }
  if (cur)
    install (r, NULL, FALSE);
  GST_DEBUG_OBJECT (r->owner, "no model set: one is chosen for the scale of the caps");
  return TRUE;
}

/* The first of names (NULL-terminated) that is found, or NULL. */
static const gchar *
first_found (const gchar * const *names)
{
  for (guint i = 0; names && names[i]; i++) {
    gchar *path = nf_model_find_file (names[i], NF_WEIGHTS_DIR, NULL);
    gboolean found = path != NULL;
    g_free (path);
    if (found)
      return names[i];
  }
  return NULL;
}

gboolean
nf_model_runner_choose (NfModelRunner * r, const gchar * const *names,
    const gchar * const *cpu_names, GError ** error)
{
  NfDeviceChoice choice;

  if (r->current && r->current->automatic)
    return TRUE;
  g_mutex_lock (&r->lock);
  choice = r->choice;
  g_mutex_unlock (&r->lock);
  /* where it will surely run on the CPU, its list from the start */
  gboolean cpu_only = choice.device == NF_RUNNER_DEVICE_CPU
      || nf_backend_lookup ("cuda") == NULL;
  const gchar *const *list = cpu_only && cpu_names ? cpu_names : names;
  const gchar *name = first_found (list);
  if (!name) {
    GPtrArray *dirs = nf_model_dirs (NF_WEIGHTS_DIR);
    g_ptr_array_add (dirs, NULL);
    gchar *tried = g_strjoinv (", ", (gchar **) list);
    gchar *where = g_strjoinv (", ", (gchar **) dirs->pdata);
    g_set_error (error, NF_RUNNER_ERROR, NF_RUNNER_ERROR_NOT_FOUND,
        "none of the models %s was found (looked in %s; folders from "
        "$NEURALFILTER_MODEL_PATH first)", tried, where);
    g_free (tried);
    g_free (where);
    g_ptr_array_unref (dirs);
    return FALSE;
  }
  NfLoadedModel *m = load_model (r, name, &choice, 0, 0, error);
  if (!m)
    return FALSE;
  /* device=auto with CUDA built in, but no usable GPU: the model for the CPU instead */
  const gchar *cpu_name = cpu_names && list != cpu_names ? first_found (cpu_names) : NULL;
  if (cpu_name && g_str_has_prefix (m->backend_name, "cpu")
      && g_strcmp0 (cpu_name, name) != 0) {
    NfLoadedModel *c = load_model (r, cpu_name, &choice, 0, 0, NULL);
    if (c) {
      loaded_free (m);
      m = c;
      name = cpu_name;
    }
  }
  m->automatic = TRUE;
  GST_INFO_OBJECT (r->owner, "no model set: chose %s (%s, scale %d, on %s)", name, m->path,
      m->model->scale, m->backend_name);
  install (r, m, FALSE);
  return TRUE;
}

gboolean
nf_model_runner_ensure (NfModelRunner * r, GError ** error)
{
  gchar *name;
  NfDeviceChoice choice;

  g_mutex_lock (&r->lock);
  name = g_strdup (r->model);
  choice = r->choice;
  if (choice.device != NF_RUNNER_DEVICE_CPU
      && choice.precision == NF_RUNNER_PRECISION_FP16
      && nf_backend_lookup ("cuda") == NULL && !r->warned_fp16) {
    r->warned_fp16 = TRUE;
    GST_WARNING_OBJECT (r->owner, "precision=fp16 needs CUDA, which this build lacks: "
        "running in fp32 on the CPU");
  }
  g_mutex_unlock (&r->lock);

  if (setting_is_automatic (r, name)) {
    g_free (name);
    return ensure_automatic (r, &choice, error);
  }
  if (r->current && !r->current->automatic && g_strcmp0 (r->current->name, name) == 0
      && same_choice (&r->current->choice, &choice)) {
    g_free (name);
    return TRUE;
  }
  NfLoadedModel *m = load_model (r, name, &choice, 0, 0, error);
  g_free (name);
  if (!m)
    return FALSE;
  install (r, m, FALSE);
  return TRUE;
}

gboolean
nf_model_runner_start (NfModelRunner * r, GError ** error)
{
  g_mutex_lock (&r->lock);
  r->streaming = TRUE;
  r->last_w = r->last_h = 0;
  g_mutex_unlock (&r->lock);

  /* The model may have changed while stopped, or a background load may have been cut
   * short by a stop. */
  if (nf_model_runner_ensure (r, error))
    return TRUE;
  g_mutex_lock (&r->lock);
  r->streaming = FALSE;
  g_mutex_unlock (&r->lock);
  return FALSE;
}

void
nf_model_runner_stop (NfModelRunner * r)
{
  NfLoadedModel *pending;

  g_mutex_lock (&r->lock);
  r->streaming = FALSE;
  r->load_serial++;             /* results of loads in flight are dropped */
  pending = r->pending;
  r->pending = NULL;
  g_mutex_unlock (&r->lock);

  /* A load that completed but was not swapped in yet is still the wanted model. */
  if (pending)
    install (r, pending, FALSE);
}

void
nf_model_runner_close (NfModelRunner * r)
{
  NfLoadedModel *pending;

  drop_loads (r);
  g_mutex_lock (&r->lock);
  pending = r->pending;
  r->pending = NULL;
  g_mutex_unlock (&r->lock);
  loaded_free (pending);
  install (r, NULL, FALSE);
}

gboolean
nf_model_runner_swap (NfModelRunner * r)
{
  NfLoadedModel *pending;

  g_mutex_lock (&r->lock);
  pending = r->pending;
  r->pending = NULL;
  g_mutex_unlock (&r->lock);
  if (!pending)
    return FALSE;
  GST_INFO_OBJECT (r->owner, "switching to model %s", pending->path);
  install (r, pending, TRUE);
  return TRUE;
}

NfLoadedModel *
nf_model_runner_current (NfModelRunner * r)
{
  return r->current;
}

gboolean
nf_model_runner_plan (NfModelRunner * r, gint w, gint h, NfShape * input,
    gboolean * was_planned, GError ** error)
{
  NfLoadedModel *m = r->current;

  g_return_val_if_fail (m != NULL, FALSE);
  *input = (NfShape) { 1, 3, round_up (h, m->model->size_multiple),
    round_up (w, m->model->size_multiple) };
  g_mutex_lock (&r->lock);
  r->last_w = w;
  r->last_h = h;
  g_mutex_unlock (&r->lock);

  *was_planned = nf_engine_is_planned_for (m->engine, *input);
  if (*was_planned)
    return TRUE;
  gboolean entered = loaded_enter (m);
  gboolean ok = nf_engine_plan (m->engine, *input, error);
  loaded_leave (m, entered);
  return ok;
}

gboolean
nf_model_runner_run_host (NfModelRunner * r, const gfloat * in, NfShape input,
    gfloat * out, GError ** error)
{
  NfLoadedModel *m = r->current;

  g_return_val_if_fail (m != NULL, FALSE);
  gboolean entered = loaded_enter (m);
  gboolean ok = nf_engine_run_host (m->engine, in, input, out, error);
  loaded_leave (m, entered);
  return ok;
}

gboolean
nf_model_runner_plan_luma (NfModelRunner * r, gint w, gint h, NfShape * input,
    gboolean * was_planned, GError ** error)
{
  NfLoadedModel *m = r->current;

  g_return_val_if_fail (m != NULL && m->luma_engine != NULL, FALSE);
  *input = (NfShape) { 1, 1, round_up (h, m->model->size_multiple),
    round_up (w, m->model->size_multiple) };
  g_mutex_lock (&r->lock);
  r->last_w = w;
  r->last_h = h;
  g_mutex_unlock (&r->lock);
  *was_planned = nf_engine_is_planned_for (m->luma_engine, *input);
  return *was_planned || nf_engine_plan (m->luma_engine, *input, error);
}

gboolean
nf_model_runner_run_luma_host (NfModelRunner * r, const gfloat * in, NfShape input,
    gfloat * out, GError ** error)
{
  NfLoadedModel *m = r->current;

  g_return_val_if_fail (m != NULL && m->luma_engine != NULL, FALSE);
  return nf_engine_run_host (m->luma_engine, in, input, out, error);
}
