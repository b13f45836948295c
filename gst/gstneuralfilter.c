/* gstneuralfilter.c — GstNeuralFilter, the base class of neuralstyle and superres.
 *
 * What it does:
 *  - finds the model file (a path, or a name looked up in $NEURALFILTER_MODEL_PATH and
 *    then <datadir>/neuralfilter/weights, ".safetensors" added when missing), loads it
 *    at NULL->READY (so superres knows its scale before caps are negotiated), checks
 *    that its task fits the element, picks the backend from the device property;
 *  - when the model property changes while streaming, loads the new model on a thread
 *    of its own, plans it for the current frame size there, and swaps it in between two
 *    frames: the stream never waits for a load. A model that fails to load posts a
 *    WARNING and the previous one keeps running (the stream was fine, so it is not
 *    stopped); the model property keeps the requested value, so a later restart of the
 *    element reports the problem as an ERROR;
 *  - converts frames to planar float RGB for the network and back (nf-convert.c: ORC
 *    or C for the RGB family; I420/NV12 straight to float RGB and back with the
 *    BT.601/BT.709/... matrix and range of the caps' colorimetry, no 8-bit RGB in
 *    between), padding odd sizes by reflection to the model's size multiple and
 *    cropping the result, and blends with the input when the subclass's get_strength
 *    says so;
 *  - QoS (late frames are dropped by GstBaseTransform) and latency: the measured
 *    processing time of a frame is added to latency queries, and a latency message is
 *    posted when it grows;
 *  - every failure goes to the bus as an element error with a sentence a user can act
 *    on; nothing here aborts the process.
 *  - on CUDA (device=auto with a usable GPU, or device=cuda; precision auto|fp16 runs the
 *    "cuda-fp16" backend, fp32 the "cuda" one): the network runs in the GstCudaContext
 *    shared with the pipeline's other CUDA elements (cuda-device-id picks the device
 *    when none is shared), caps with memory:CUDAMemory are offered for the formats
 *    GstCudaMemory holds, CUDA buffer pools are proposed and used, and frames are
 *    converted on the GPU (gstneuralfilter-cuda.c): in place when they are CUDA memory
 *    of the context, through pinned staging otherwise. device=auto says on the bus
 *    (an INFO message) which GPU it runs on, and falls back to the CPU with one INFO
 *    log line when no driver or GPU is usable. Running out of GPU memory is an element
 *    error with a hint, never a skipped or black frame.
 * What it does not: caps transformation (superres), the strength property (neuralstyle),
 * tiling.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstneuralfilter.h"

#include <string.h>

#include "nf-backend.h"
#include "nf-convert.h"
#include "nf-engine.h"
#include "nf-error.h"
#ifdef NF_HAVE_GST_CUDA
#include "gstneuralfilter-cuda.h"
#include "nf-cuda.h"
#endif

GST_DEBUG_CATEGORY_STATIC (gst_neural_filter_debug);
#define GST_CAT_DEFAULT gst_neural_filter_debug

#ifndef NF_WEIGHTS_DIR
#define NF_WEIGHTS_DIR "/usr/local/share/neuralfilter/weights"
#endif

/* The element's own failure kinds; mapped to GstResourceError codes when posted. */
#define NF_GST_ERROR (nf_gst_error_quark ())
static G_DEFINE_QUARK (nf-gst-error-quark, nf_gst_error);
typedef enum {
  NF_GST_ERROR_NO_MODEL,
  NF_GST_ERROR_NOT_FOUND,
  NF_GST_ERROR_LOAD,
  NF_GST_ERROR_TASK,
  NF_GST_ERROR_DEVICE,
} NfGstErrorCode;

/* Where a network runs: the device, precision and cuda-device-id properties. */
typedef struct {
  GstNeuralFilterDevice device;
  GstNeuralFilterPrecision precision;
  gint cuda_device_id;
} NfDeviceChoice;

/* A loaded network, ready to run. */
typedef struct {
  gchar *prop;                  /* the model property value it was loaded for */
  gchar *path;                  /* the file it came from */
  NfDeviceChoice choice;        /* the device properties it was loaded for */
  const gchar *backend_name;
  NfModel *model;
  NfBackend *backend;
  NfEngine *engine;
  /* The GstCudaContext the CUDA backend lives in (NULL on the CPU, or for a CUDA
   * backend in the runtime's own context when the plugin has no gstreamer-cuda):
   * pushed around every call into the backend. */
  GstObject *cuda_ctx;
} NfRunner;

typedef struct {
  /* Properties and loading state, guarded by lock. */
  GMutex lock;
  GCond cond;
  gchar *model;
  GstNeuralFilterDevice device;
  GstNeuralFilterPrecision precision;
  gint cuda_device_id;
  gboolean streaming;           /* between start and stop */
  NfRunner *pending;            /* loaded off-thread, swapped in before the next frame */
  guint load_serial;            /* the latest load request; older results are dropped */
  gint loads_in_flight;
  gint last_w, last_h;          /* size of the last frame, to plan a new model for */

  /* Object lock. */
  gint scale;                   /* of the runner in use; 0: none */
  gint on_gpu;                  /* runner in use: -1 none, 0 CPU, 1 CUDA context */
  GstClockTime latency;         /* reported processing latency */

  /* Streaming thread (and start/stop/set_info, which do not run concurrently). */
  NfRunner *runner;
  const NfConvertImpl *impl;
  NfLayout layout;
  gboolean yuv;
  gboolean alpha;
  NfConvertScratch *scratch;
  gint scratch_width;
  gfloat *in_planes, *out_planes;
  gsize in_len, out_len;        /* floats allocated */
  guint8 *alpha_plane;
  gsize alpha_len;
  gboolean nv12;
  NfYuvMatrix yuv_in, yuv_out;  /* I420/NV12: matrices of the input and output caps */
  GstClockTime proc_avg;
  gboolean warned_fp16;
#ifdef NF_HAVE_GST_CUDA
  NfGstCuda *cuda;              /* the shared CUDA context, pools, staging */
#endif
} GstNeuralFilterPrivate;

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_PRECISION,
  PROP_CUDA_DEVICE_ID,
};

#define DEFAULT_DEVICE GST_NEURAL_FILTER_DEVICE_AUTO
#define DEFAULT_PRECISION GST_NEURAL_FILTER_PRECISION_AUTO
#define DEFAULT_CUDA_DEVICE_ID -1

G_DEFINE_ABSTRACT_TYPE_WITH_CODE (GstNeuralFilter, gst_neural_filter,
    GST_TYPE_VIDEO_FILTER, G_ADD_PRIVATE (GstNeuralFilter)
    GST_DEBUG_CATEGORY_INIT (gst_neural_filter_debug, "neuralfilter", 0,
        "neural network video filters (base class)"));

#define GET_PRIV(self) \
  ((GstNeuralFilterPrivate *) gst_neural_filter_get_instance_private (self))

GType
gst_neural_filter_device_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_NEURAL_FILTER_DEVICE_AUTO,
        "CUDA when this build has it and a GPU is usable, else the CPU", "auto"},
    {GST_NEURAL_FILTER_DEVICE_CPU, "The CPU (oneDNN)", "cpu"},
    {GST_NEURAL_FILTER_DEVICE_CUDA,
        "An NVIDIA GPU through CUDA; an error when none can be used", "cuda"},
    {0, NULL, NULL},
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstNeuralFilterDevice", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_neural_filter_precision_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_NEURAL_FILTER_PRECISION_AUTO,
        "fp16 on CUDA, fp32 on the CPU", "auto"},
    {GST_NEURAL_FILTER_PRECISION_FP32, "32-bit float everywhere", "fp32"},
    {GST_NEURAL_FILTER_PRECISION_FP16,
        "16-bit float tensor-core math (CUDA only; the CPU runs fp32)", "fp16"},
    {0, NULL, NULL},
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstNeuralFilterPrecision", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static const gchar *
element_for_task (NfTask task)
{
  return task == NF_TASK_SUPERRES ? "superres" : "neuralstyle";
}

/* ---- runners: find, load, free ------------------------------------------------ */

/* Makes the runner's CUDA context current, if it has one; TRUE: pop it afterwards. */
static gboolean
runner_enter (NfRunner * r)
{
#ifdef NF_HAVE_GST_CUDA
  return r->cuda_ctx && nf_gst_cuda_push (r->cuda_ctx);
#else
  return FALSE;
#endif
}

static void
runner_leave (gboolean entered)
{
#ifdef NF_HAVE_GST_CUDA
  if (entered)
    nf_gst_cuda_pop ();
#endif
}

static void
runner_free (NfRunner * r)
{
  if (!r)
    return;
  gboolean entered = runner_enter (r);
  nf_engine_free (r->engine);
  nf_model_free (r->model);
  nf_backend_free (r->backend);
  runner_leave (entered);
  gst_clear_object (&r->cuda_ctx);
  g_free (r->prop);
  g_free (r->path);
  g_free (r);
}

static gboolean
is_file (const gchar * path)
{
  return g_file_test (path, G_FILE_TEST_IS_REGULAR);
}

/* The file for a model property value: the value itself, with ".safetensors" added,
 * or a bare name in $NEURALFILTER_MODEL_PATH and the install dir. */
static gchar *
find_model_file (const gchar * value, GError ** error)
{
  if (value == NULL || value[0] == '\0') {
    g_set_error (error, NF_GST_ERROR, NF_GST_ERROR_NO_MODEL,
        "No model is set: set the model property to a .safetensors model file "
        "or to the name of a model shipped in %s.", NF_WEIGHTS_DIR);
    return NULL;
  }

  gchar *with_ext = g_str_has_suffix (value, ".safetensors") ? NULL
      : g_strconcat (value, ".safetensors", NULL);
  GString *tried = g_string_new (NULL);
  gchar *found = NULL;

  const gchar *direct[2] = { value, with_ext };
  for (int i = 0; i < 2 && !found; i++) {
    if (!direct[i])
      continue;
    if (is_file (direct[i]))
      found = g_strdup (direct[i]);
    else
      g_string_append_printf (tried, "%s%s", tried->len ? ", " : "", direct[i]);
  }

  /* A bare name (no directory part) is also looked up in the model folders. */
  if (!found && !strchr (value, G_DIR_SEPARATOR)) {
    GPtrArray *dirs = g_ptr_array_new_with_free_func (g_free);
    const gchar *env = g_getenv ("NEURALFILTER_MODEL_PATH");
    if (env) {
      gchar **parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
      for (gchar ** p = parts; *p; p++)
        if (**p)
          g_ptr_array_add (dirs, g_strdup (*p));
      g_strfreev (parts);
    }
    g_ptr_array_add (dirs, g_strdup (NF_WEIGHTS_DIR));
    for (guint d = 0; d < dirs->len && !found; d++) {
      for (int i = 0; i < 2 && !found; i++) {
        if (!direct[i])
          continue;
        gchar *p = g_build_filename (g_ptr_array_index (dirs, d), direct[i], NULL);
        if (is_file (p))
          found = p;
        else {
          g_string_append_printf (tried, ", %s", p);
          g_free (p);
        }
      }
    }
    g_ptr_array_unref (dirs);
  }

  if (!found)
    g_set_error (error, NF_GST_ERROR, NF_GST_ERROR_NOT_FOUND,
        "Could not find the model \"%s\" (looked for %s). Set the model property to "
        "an existing .safetensors file, or to the name of a model in a folder of "
        "$NEURALFILTER_MODEL_PATH or in %s.", value, tried->str, NF_WEIGHTS_DIR);
  g_string_free (tried, TRUE);
  g_free (with_ext);
  return found;
}

/* A CUDA backend for the choice: in the pipeline's shared GstCudaContext when the
 * plugin has gstreamer-cuda, else in the CUDA runtime's own context (system memory
 * only). NULL + error when CUDA cannot be used. */
static NfBackend *
create_cuda_backend (GstNeuralFilter * self, const NfDeviceChoice * c, NfRunner * r,
    GError ** error)
{
  gboolean fp16 = c->precision != GST_NEURAL_FILTER_PRECISION_FP32;
  NfBackend *be;
#ifdef NF_HAVE_GST_CUDA
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  be = nf_gst_cuda_backend_new (priv->cuda, GST_ELEMENT (self), c->cuda_device_id, fp16,
      &r->cuda_ctx, error);
#else
  be = nf_backend_new (fp16 ? "cuda-fp16" : "cuda", error);
#endif
  if (be)
    r->backend_name = fp16 ? "cuda-fp16" : "cuda";
  return be;
}

/* Says on the bus which GPU the network runs on (an INFO message). */
static void
announce_gpu (GstNeuralFilter * self, NfRunner * r)
{
#ifdef NF_HAVE_GST_CUDA
  gchar *gpu = r->cuda_ctx ? nf_gst_cuda_describe (r->cuda_ctx) : g_strdup ("the GPU");
  GST_ELEMENT_INFO (self, RESOURCE, SETTINGS, ("Running on %s in %s.", gpu,
          g_str_equal (r->backend_name, "cuda-fp16") ? "fp16 (tensor cores)" : "fp32"),
      ("%s", nf_cuda_backend_description (r->backend)));
  g_free (gpu);
#else
  GST_ELEMENT_INFO (self, RESOURCE, SETTINGS, ("Running on the GPU (%s).",
          r->backend_name), (NULL));
#endif
}

static NfBackend *
create_backend (GstNeuralFilter * self, const NfDeviceChoice * c, NfRunner * r,
    GError ** error)
{
  GError *e = NULL;
  gboolean have_cuda = nf_backend_lookup ("cuda") != NULL;

  if (c->device == GST_NEURAL_FILTER_DEVICE_CUDA) {
    if (!have_cuda) {
      g_set_error (error, NF_GST_ERROR, NF_GST_ERROR_DEVICE,
          "device=cuda was requested, but this build of the neuralfilter plugin has "
          "no CUDA backend. Use device=auto or device=cpu, or rebuild with CUDA and "
          "cuDNN installed.");
      return NULL;
    }
    NfBackend *be = create_cuda_backend (self, c, r, &e);
    if (!be) {
      g_set_error (error, NF_GST_ERROR, NF_GST_ERROR_DEVICE,
          "device=cuda was requested, but CUDA cannot be used here (%s). "
          "Use device=auto or device=cpu to run on the CPU.", e->message);
      g_error_free (e);
      return NULL;
    }
    return be;
  }

  if (c->device == GST_NEURAL_FILTER_DEVICE_AUTO) {
    if (have_cuda) {
      NfBackend *be = create_cuda_backend (self, c, r, &e);
      if (be)
        return be;
      GST_INFO_OBJECT (self, "CUDA is not usable (%s): running on the CPU",
          e->message);
      g_clear_error (&e);
    } else {
      GST_INFO_OBJECT (self, "this build has no CUDA backend: running on the CPU");
    }
  }

  NfBackend *be = nf_backend_new ("cpu", &e);
  if (!be) {
    g_set_error (error, NF_GST_ERROR, NF_GST_ERROR_DEVICE,
        "The CPU backend could not be created (%s).", e->message);
    g_error_free (e);
    return NULL;
  }
  r->backend_name = "cpu";
  return be;
}

static inline gint
round_up (gint v, gint m)
{
  return m > 1 ? (v + m - 1) / m * m : v;
}

/* Loads and checks a model for this element; plans it for plan_w x plan_h frames
 * when those are > 0. Runs on any thread. */
static NfRunner *
runner_load (GstNeuralFilter * self, const gchar * prop, const NfDeviceChoice * choice,
    gint plan_w, gint plan_h, GError ** error)
{
  GstNeuralFilterClass *klass = GST_NEURAL_FILTER_GET_CLASS (self);
  GError *e = NULL;
  NfRunner *r = g_new0 (NfRunner, 1);

  r->prop = g_strdup (prop);
  r->choice = *choice;
  r->path = find_model_file (prop, error);
  if (!r->path)
    goto failed;

  r->model = nf_model_load (r->path, &e);
  if (!r->model) {
    g_set_error (error, NF_GST_ERROR, NF_GST_ERROR_LOAD,
        "Could not load the model file %s: %s. The file is damaged or is not a "
        "neuralfilter model; export it again or pick another model.", r->path,
        e->message);
    g_error_free (e);
    goto failed;
  }
  if (r->model->task != klass->task) {
    const gchar *mt = nf_task_name (r->model->task);
    g_set_error (error, NF_GST_ERROR, NF_GST_ERROR_TASK,
        "The model %s is a \"%s\" model, but %s runs \"%s\" models only. %s",
        r->path, mt, element_for_task (klass->task), nf_task_name (klass->task),
        r->model->task == NF_TASK_OTHER ? "Pick another model." :
        r->model->task == NF_TASK_STYLE ? "Use it with the neuralstyle element." :
        "Use it with the superres element.");
    goto failed;
  }

  r->backend = create_backend (self, choice, r, error);
  if (!r->backend)
    goto failed;
  r->engine = nf_engine_new (r->model, r->backend, NULL);

  if (plan_w > 0 && plan_h > 0) {
    gint sm = r->model->size_multiple;
    NfShape s = { 1, 3, round_up (plan_h, sm), round_up (plan_w, sm) };
    gboolean entered = runner_enter (r);
    gboolean planned = nf_engine_plan (r->engine, s, &e);
    runner_leave (entered);
    if (!planned) {
      g_set_error (error, NF_GST_ERROR, NF_GST_ERROR_LOAD,
          "The model %s cannot run on %dx%d frames: %s.", r->path, plan_w, plan_h,
          e->message);
      g_error_free (e);
      goto failed;
    }
  }
  GST_INFO_OBJECT (self, "loaded %s (task %s, scale %d, size multiple %d) on %s",
      r->path, nf_task_name (r->model->task), r->model->scale,
      r->model->size_multiple, r->backend_name);
  if (g_str_has_prefix (r->backend_name, "cuda"))
    announce_gpu (self, r);
  return r;

failed:
  runner_free (r);
  return NULL;
}

/* Posts err as an element error (fatal) or warning, with a GstResourceError code. */
static void
post_load_problem (GstNeuralFilter * self, const GError * err, gboolean fatal)
{
  gint code = GST_RESOURCE_ERROR_FAILED;
  if (err->domain == NF_GST_ERROR) {
    switch (err->code) {
      case NF_GST_ERROR_NO_MODEL:
      case NF_GST_ERROR_NOT_FOUND:
        code = GST_RESOURCE_ERROR_NOT_FOUND;
        break;
      case NF_GST_ERROR_LOAD:
        code = GST_RESOURCE_ERROR_READ;
        break;
      case NF_GST_ERROR_TASK:
      case NF_GST_ERROR_DEVICE:
        code = GST_RESOURCE_ERROR_SETTINGS;
        break;
    }
  }
  if (fatal) {
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_ERROR,
        GST_RESOURCE_ERROR, code, g_strdup (err->message), NULL, __FILE__,
        GST_FUNCTION, __LINE__);
  } else {
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_WARNING,
        GST_RESOURCE_ERROR, code,
        g_strdup_printf ("%s The previous model keeps running.", err->message),
        NULL, __FILE__, GST_FUNCTION, __LINE__);
  }
}

/* Makes r the runner in use (streaming thread, or while not streaming). */
static void
install_runner (GstNeuralFilter * self, NfRunner * r, gboolean announce)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  NfRunner *old = priv->runner;
  gint old_scale = old ? old->model->scale : 0;

  priv->runner = r;
  GST_OBJECT_LOCK (self);
  priv->scale = r ? r->model->scale : 0;
  priv->on_gpu = r ? (r->cuda_ctx != NULL) : -1;
  priv->latency = 0;
  GST_OBJECT_UNLOCK (self);
  priv->proc_avg = 0;
  runner_free (old);

  if (!r)
    return;
  if (old_scale && old_scale != r->model->scale) {
    GST_INFO_OBJECT (self, "scale changed %d -> %d: renegotiating", old_scale,
        r->model->scale);
    gst_base_transform_reconfigure_src (GST_BASE_TRANSFORM (self));
  }
  if (announce) {
    GstStructure *s = gst_structure_new ("neuralfilter-model-changed",
        "model", G_TYPE_STRING, r->prop, "path", G_TYPE_STRING, r->path,
        "scale", G_TYPE_INT, r->model->scale, NULL);
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self), s));
  }
}

/* ---- loading off the streaming thread ------------------------------------------ */

typedef struct {
  GstNeuralFilter *self;
  gchar *prop;
  NfDeviceChoice choice;
  guint serial;
  gint w, h;
} LoadJob;

static gpointer
load_thread (gpointer data)
{
  LoadJob *job = data;
  GstNeuralFilter *self = job->self;
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  GError *err = NULL;
  NfRunner *r, *dropped = NULL;
  gboolean current;

  r = runner_load (self, job->prop, &job->choice, job->w, job->h, &err);

  g_mutex_lock (&priv->lock);
  current = job->serial == priv->load_serial && priv->streaming;
  if (r && current) {
    dropped = priv->pending;
    priv->pending = r;
    r = NULL;
  }
  g_mutex_unlock (&priv->lock);

  if (err && current)
    post_load_problem (self, err, FALSE);
  else if (err)
    GST_DEBUG_OBJECT (self, "superseded load failed: %s", err->message);
  g_clear_error (&err);
  runner_free (r);
  runner_free (dropped);

  g_mutex_lock (&priv->lock);
  priv->loads_in_flight--;
  g_cond_broadcast (&priv->cond);
  g_mutex_unlock (&priv->lock);

  g_free (job->prop);
  g_free (job);
  gst_object_unref (self);
  return NULL;
}

static void
start_async_load (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  LoadJob *job = g_new0 (LoadJob, 1);
  GError *err = NULL;
  GThread *thread;

  job->self = gst_object_ref (self);
  g_mutex_lock (&priv->lock);
  job->prop = g_strdup (priv->model);
  job->choice.device = priv->device;
  job->choice.precision = priv->precision;
  job->choice.cuda_device_id = priv->cuda_device_id;
  job->serial = ++priv->load_serial;
  job->w = priv->last_w;
  job->h = priv->last_h;
  priv->loads_in_flight++;
  g_mutex_unlock (&priv->lock);

  GST_INFO_OBJECT (self, "loading model \"%s\" in the background", job->prop);
  thread = g_thread_try_new ("nf-model-load", load_thread, job, &err);
  if (thread) {
    g_thread_unref (thread);
    return;
  }

  g_mutex_lock (&priv->lock);
  priv->loads_in_flight--;
  g_cond_broadcast (&priv->cond);
  g_mutex_unlock (&priv->lock);
  GST_ELEMENT_WARNING (self, RESOURCE, FAILED,
      ("Could not start a thread to load the model \"%s\" (%s); the previous "
          "model keeps running. Set the property again to retry.", job->prop,
          err->message), (NULL));
  g_error_free (err);
  g_free (job->prop);
  g_free (job);
  gst_object_unref (self);
}

static void
wait_for_loads (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  g_mutex_lock (&priv->lock);
  priv->load_serial++;          /* whatever is in flight is stale now */
  while (priv->loads_in_flight > 0)
    g_cond_wait (&priv->cond, &priv->lock);
  g_mutex_unlock (&priv->lock);
}

/* Loads the model of the current properties synchronously, unless the runner in use
 * already is it. Posts an error and returns FALSE on failure. */
static gboolean
ensure_runner (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  GError *err = NULL;
  gchar *prop;
  NfDeviceChoice choice;

  g_mutex_lock (&priv->lock);
  prop = g_strdup (priv->model);
  choice.device = priv->device;
  choice.precision = priv->precision;
  choice.cuda_device_id = priv->cuda_device_id;
  if (choice.device != GST_NEURAL_FILTER_DEVICE_CPU
      && priv->precision == GST_NEURAL_FILTER_PRECISION_FP16
      && nf_backend_lookup ("cuda") == NULL && !priv->warned_fp16) {
    priv->warned_fp16 = TRUE;
    GST_WARNING_OBJECT (self, "precision=fp16 needs CUDA, which this build lacks: "
        "running in fp32 on the CPU");
  }
  g_mutex_unlock (&priv->lock);

  if (priv->runner && g_strcmp0 (priv->runner->prop, prop) == 0
      && priv->runner->choice.device == choice.device
      && priv->runner->choice.precision == choice.precision
      && priv->runner->choice.cuda_device_id == choice.cuda_device_id) {
    g_free (prop);
    return TRUE;
  }
  NfRunner *r = runner_load (self, prop, &choice, 0, 0, &err);
  g_free (prop);
  if (!r) {
    post_load_problem (self, err, TRUE);
    g_error_free (err);
    return FALSE;
  }
  install_runner (self, r, FALSE);
  return TRUE;
}

/* ---- frame buffers ---------------------------------------------------------------- */

static void
free_frame_resources (GstNeuralFilterPrivate * priv)
{
  nf_free (priv->in_planes);
  nf_free (priv->out_planes);
  priv->in_planes = priv->out_planes = NULL;
  priv->in_len = priv->out_len = 0;
  g_free (priv->alpha_plane);
  priv->alpha_plane = NULL;
  priv->alpha_len = 0;
  nf_convert_scratch_free (priv->scratch);
  priv->scratch = NULL;
  priv->scratch_width = 0;
}

/* Grows a float buffer to n floats (contents dropped). */
static gboolean
grow_floats (gfloat ** buf, gsize * len, gsize n)
{
  if (*len >= n)
    return TRUE;
  nf_free (*buf);
  *buf = nf_alloc_floats (n);
  *len = *buf ? n : 0;
  return *buf != NULL;
}

/* ---- GObject ---------------------------------------------------------------------- */

static void
gst_neural_filter_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (object);
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  gboolean reload = FALSE;

  g_mutex_lock (&priv->lock);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (priv->model);
      priv->model = g_value_dup_string (value);
      reload = priv->streaming;
      break;
    case PROP_DEVICE:
      priv->device = g_value_get_enum (value);
      break;
    case PROP_PRECISION:
      priv->precision = g_value_get_enum (value);
      priv->warned_fp16 = FALSE;
      break;
    case PROP_CUDA_DEVICE_ID:
      priv->cuda_device_id = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  g_mutex_unlock (&priv->lock);

  if (reload)
    start_async_load (self);
}

static void
gst_neural_filter_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (object);
  GstNeuralFilterPrivate *priv = GET_PRIV (self);

  g_mutex_lock (&priv->lock);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, priv->model);
      break;
    case PROP_DEVICE:
      g_value_set_enum (value, priv->device);
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, priv->precision);
      break;
    case PROP_CUDA_DEVICE_ID:
      g_value_set_int (value, priv->cuda_device_id);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  g_mutex_unlock (&priv->lock);
}

static void
gst_neural_filter_finalize (GObject * object)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (object);
  GstNeuralFilterPrivate *priv = GET_PRIV (self);

  runner_free (priv->runner);
  runner_free (priv->pending);
  free_frame_resources (priv);
#ifdef NF_HAVE_GST_CUDA
  nf_gst_cuda_free (priv->cuda);
#endif
  g_free (priv->model);
  g_mutex_clear (&priv->lock);
  g_cond_clear (&priv->cond);

  G_OBJECT_CLASS (gst_neural_filter_parent_class)->finalize (object);
}

gint
gst_neural_filter_get_scale (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  gint s;
  GST_OBJECT_LOCK (self);
  s = priv->scale;
  GST_OBJECT_UNLOCK (self);
  return s;
}

/* ---- element ---------------------------------------------------------------------- */

static GstStateChangeReturn
gst_neural_filter_change_state (GstElement * element, GstStateChange transition)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (element);
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    /* Load now, so that superres knows its scale before caps are negotiated. */
    if (!ensure_runner (self))
      return GST_STATE_CHANGE_FAILURE;
  }

  ret = GST_ELEMENT_CLASS (gst_neural_filter_parent_class)->change_state (element,
      transition);

  if (transition == GST_STATE_CHANGE_READY_TO_NULL) {
    wait_for_loads (self);
    runner_free (priv->pending);
    priv->pending = NULL;
    install_runner (self, NULL, FALSE);
#ifdef NF_HAVE_GST_CUDA
    nf_gst_cuda_close (priv->cuda);     /* the next start may share another context */
#endif
  }
  return ret;
}

/* ---- base transform ------------------------------------------------------------- */

static gboolean
gst_neural_filter_start (GstBaseTransform * trans)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  GstNeuralFilterPrivate *priv = GET_PRIV (self);

  g_mutex_lock (&priv->lock);
  priv->streaming = TRUE;
  priv->last_w = priv->last_h = 0;
  g_mutex_unlock (&priv->lock);

  /* The model may have changed in READY, or a background load may have been cut
   * short by a stop. */
  if (!ensure_runner (self)) {
    g_mutex_lock (&priv->lock);
    priv->streaming = FALSE;
    g_mutex_unlock (&priv->lock);
    return FALSE;
  }
  priv->impl = nf_convert_impl_default ();
  GST_DEBUG_OBJECT (self, "pixel conversions: %s", priv->impl->name);
  return TRUE;
}

static gboolean
gst_neural_filter_stop (GstBaseTransform * trans)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  NfRunner *pending;

  g_mutex_lock (&priv->lock);
  priv->streaming = FALSE;
  priv->load_serial++;          /* results of loads in flight are dropped */
  pending = priv->pending;
  priv->pending = NULL;
  g_mutex_unlock (&priv->lock);

  /* A load that completed but was not swapped in yet is still the wanted model. */
  if (pending)
    install_runner (self, pending, FALSE);
  free_frame_resources (priv);
  return TRUE;
}

static GstFlowReturn
gst_neural_filter_submit_input_buffer (GstBaseTransform * trans,
    gboolean is_discont, GstBuffer * input)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  NfRunner *pending;

  /* Between two frames: swap in a model loaded in the background. Done before the
   * base class looks at the reconfigure flag, so a new superres scale renegotiates
   * before this buffer is transformed. */
  g_mutex_lock (&priv->lock);
  pending = priv->pending;
  priv->pending = NULL;
  g_mutex_unlock (&priv->lock);
  if (pending) {
    GST_INFO_OBJECT (self, "switching to model %s", pending->path);
    install_runner (self, pending, TRUE);
  }

  return GST_BASE_TRANSFORM_CLASS (gst_neural_filter_parent_class)->submit_input_buffer
      (trans, is_discont, input);
}

/* Controlled properties (strength) follow their control sources frame by frame. */
static void
gst_neural_filter_before_transform (GstBaseTransform * trans, GstBuffer * buf)
{
  GstClockTime ts = gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME,
      GST_BUFFER_PTS (buf));
  if (GST_CLOCK_TIME_IS_VALID (ts))
    gst_object_sync_values (GST_OBJECT (trans), ts);
}

static gboolean
gst_neural_filter_query (GstBaseTransform * trans, GstPadDirection direction,
    GstQuery * query)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  gboolean ret;

#ifdef NF_HAVE_GST_CUDA
  if (GST_QUERY_TYPE (query) == GST_QUERY_CONTEXT
      && nf_gst_cuda_handle_context_query (priv->cuda, GST_ELEMENT (self), query))
    return TRUE;
#endif
  ret = GST_BASE_TRANSFORM_CLASS (gst_neural_filter_parent_class)->query (trans,
      direction, query);
  if (ret && direction == GST_PAD_SRC && GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    gboolean live;
    GstClockTime min, max, lat;

    gst_query_parse_latency (query, &live, &min, &max);
    GST_OBJECT_LOCK (self);
    lat = priv->latency;
    GST_OBJECT_UNLOCK (self);
    min += lat;
    if (GST_CLOCK_TIME_IS_VALID (max))
      max += lat;
    GST_DEBUG_OBJECT (self, "adding processing latency %" GST_TIME_FORMAT,
        GST_TIME_ARGS (lat));
    gst_query_set_latency (query, live, min, max);
  }
  return ret;
}

static gboolean
layout_for_format (GstVideoFormat f, NfLayout * layout, gboolean * yuv)
{
  *yuv = FALSE;
  switch (f) {
    case GST_VIDEO_FORMAT_RGB:
      *layout = NF_LAYOUT_RGB;
      return TRUE;
    case GST_VIDEO_FORMAT_BGR:
      *layout = NF_LAYOUT_BGR;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBx:
      *layout = NF_LAYOUT_RGBX;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRx:
      *layout = NF_LAYOUT_BGRX;
      return TRUE;
    case GST_VIDEO_FORMAT_xRGB:
      *layout = NF_LAYOUT_XRGB;
      return TRUE;
    case GST_VIDEO_FORMAT_xBGR:
      *layout = NF_LAYOUT_XBGR;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBA:
      *layout = NF_LAYOUT_RGBA;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
      *layout = NF_LAYOUT_BGRA;
      return TRUE;
    case GST_VIDEO_FORMAT_I420:
    case GST_VIDEO_FORMAT_NV12:
      *layout = NF_LAYOUT_RGBX;
      *yuv = TRUE;
      return TRUE;
    default:
      return FALSE;
  }
}

/* The Y'CbCr matrix and range of info's colorimetry (BT.601 when unknown). */
static void
yuv_matrix_for (GstNeuralFilter * self, const GstVideoInfo * info, NfYuvMatrix * m)
{
  gdouble kr, kb;

  if (!gst_video_color_matrix_get_Kr_Kb (info->colorimetry.matrix, &kr, &kb)) {
    GST_WARNING_OBJECT (self, "no known YUV matrix in the caps: using BT.601");
    kr = 0.299;
    kb = 0.114;
  }
  nf_yuv_matrix_init (m, kr, kb,
      info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255);
  GST_DEBUG_OBJECT (self, "YUV matrix Kr %.4f Kb %.4f, %s range", kr, kb,
      info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255 ? "full" : "limited");
}

static gboolean
gst_neural_filter_set_info (GstVideoFilter * vf, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (vf);
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  GstVideoFormat fmt = GST_VIDEO_INFO_FORMAT (in_info);
  gint w = GST_VIDEO_INFO_WIDTH (in_info), h = GST_VIDEO_INFO_HEIGHT (in_info);
  gint ow = GST_VIDEO_INFO_WIDTH (out_info), oh = GST_VIDEO_INFO_HEIGHT (out_info);
  gint s;

  if (fmt != GST_VIDEO_INFO_FORMAT (out_info)
      || !layout_for_format (fmt, &priv->layout, &priv->yuv))
    goto bad_format;
  if (GST_VIDEO_INFO_IS_INTERLACED (in_info))
    goto interlaced;
  if (!priv->runner)
    goto no_model;
  s = priv->runner->model->scale;
  if ((gint64) w * s != ow || (gint64) h * s != oh)
    goto bad_size;
  priv->alpha = !priv->yuv && nf_layout_has_alpha (priv->layout);

  free_frame_resources (priv);
  priv->nv12 = fmt == GST_VIDEO_FORMAT_NV12;
  if (priv->yuv) {
    yuv_matrix_for (self, in_info, &priv->yuv_in);
    yuv_matrix_for (self, out_info, &priv->yuv_out);
  }
  GST_DEBUG_OBJECT (self, "%s %dx%d -> %dx%d", gst_video_format_to_string (fmt), w,
      h, ow, oh);
  return TRUE;

  /* ERRORS */
bad_format:
  {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("Unsupported video format %s -> %s: convert to one of "
            GST_NEURAL_FILTER_FORMATS " first (e.g. with videoconvert).",
            gst_video_format_to_string (fmt),
            gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (out_info))), (NULL));
    return FALSE;
  }
interlaced:
  {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("Interlaced video is not supported: put a deinterlace element before "
            "this one."), (NULL));
    return FALSE;
  }
no_model:
  {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("No model is loaded: set the model property."), (NULL));
    return FALSE;
  }
bad_size:
  {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("The output size %dx%d is not %d times the input size %dx%d, as the model "
            "needs: let the element choose the output size (do not force both).",
            ow, oh, s, w, h), (NULL));
    return FALSE;
  }
}

static void
update_latency (GstNeuralFilter * self, GstClockTime dt)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  gboolean post = FALSE;

  priv->proc_avg = priv->proc_avg ? (priv->proc_avg * 7 + dt) / 8 : dt;
  GST_OBJECT_LOCK (self);
  if (priv->proc_avg > priv->latency + priv->latency / 4) {
    priv->latency = priv->proc_avg + priv->proc_avg / 4;
    post = TRUE;
  }
  GST_OBJECT_UNLOCK (self);
  if (post) {
    GST_DEBUG_OBJECT (self, "processing takes %" GST_TIME_FORMAT ": posting latency",
        GST_TIME_ARGS (priv->proc_avg));
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  }
}

/* byte = y * ya + x * xa + b: the network output y (the model's output range) blended
 * by strength with the network input x (input range; same-size outputs only). */
static void
blend_coefficients (NfRunner * r, gint s, gdouble strength, gfloat * ya, gfloat * xa,
    gfloat * b)
{
  gfloat olo = r->model->out_lo, ohi = r->model->out_hi;
  gfloat ilo = r->model->in_lo, ihi = r->model->in_hi;

  *ya = (gfloat) (strength * 255.0 / (ohi - olo));
  *xa = s == 1 ? (gfloat) ((1.0 - strength) * 255.0 / (ihi - ilo)) : 0.0f;
  *b = -*ya * olo - *xa * ilo;
}

/* A network that failed on a frame: an element error a user can act on. */
static void
post_run_error (GstNeuralFilter * self, NfRunner * r, gint w, gint h, const GError * err)
{
#ifdef NF_HAVE_GST_CUDA
  if (g_error_matches (err, NF_CUDA_ERROR, NF_CUDA_ERROR_OUT_OF_MEMORY)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Out of GPU memory running %s on %dx%d frames: use smaller frames (scale or "
            "split them before this element), precision=fp16 (half the memory), "
            "another GPU (cuda-device-id), or device=cpu.", r->path, w, h),
        ("%s", err->message));
    return;
  }
#endif
  GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
      ("The network %s failed on a %dx%d frame: %s", r->path, w, h, err->message),
      (NULL));
}

static GstFlowReturn
gst_neural_filter_transform_frame (GstVideoFilter * vf, GstVideoFrame * in,
    GstVideoFrame * out)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (vf);
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  GstNeuralFilterClass *klass = GST_NEURAL_FILTER_GET_CLASS (self);
  NfRunner *r = priv->runner;
  GError *err = NULL;
  gint w, h, ow, oh, s, pw, ph, opw, oph;
  gdouble strength;
  gboolean planned;
  gint64 t0;

  if (!r)
    goto no_model;
  w = GST_VIDEO_FRAME_WIDTH (in);
  h = GST_VIDEO_FRAME_HEIGHT (in);
  ow = GST_VIDEO_FRAME_WIDTH (out);
  oh = GST_VIDEO_FRAME_HEIGHT (out);
  s = r->model->scale;
  if ((gint64) w * s != ow || (gint64) h * s != oh)
    goto bad_size;

  strength = klass->get_strength ? CLAMP (klass->get_strength (self), 0.0, 1.0) : 1.0;
  if (s == 1 && strength <= 0.0)
    return gst_video_frame_copy (out, in) ? GST_FLOW_OK : GST_FLOW_ERROR;

  pw = round_up (w, r->model->size_multiple);
  ph = round_up (h, r->model->size_multiple);
  g_mutex_lock (&priv->lock);
  priv->last_w = w;
  priv->last_h = h;
  g_mutex_unlock (&priv->lock);

  /* Plan (a no-op unless the size or the model changed) to learn the output size. */
  NfShape shape = { 1, 3, ph, pw };
  planned = nf_engine_is_planned_for (r->engine, shape);
  if (!planned) {
    gboolean entered = runner_enter (r);
    gboolean ok = nf_engine_plan (r->engine, shape, &err);
    runner_leave (entered);
    if (!ok)
      goto run_failed;
  }
  NfShape os = nf_engine_output_shape (r->engine);
  opw = os.w;
  oph = os.h;
  if (os.c != 3 || opw < ow || oph < oh)
    goto bad_output;

  if (priv->scratch_width < MAX (w, ow)) {
    nf_convert_scratch_free (priv->scratch);
    priv->scratch = nf_convert_scratch_new (MAX (w, ow));
    priv->scratch_width = priv->scratch ? MAX (w, ow) : 0;
    if (!priv->scratch)
      goto no_memory;
  }
  if (!grow_floats (&priv->in_planes, &priv->in_len, nf_shape_numel (shape))
      || !grow_floats (&priv->out_planes, &priv->out_len, nf_shape_numel (os)))
    goto no_memory;
  if (priv->alpha && priv->alpha_len < (gsize) w * h) {
    g_free (priv->alpha_plane);
    priv->alpha_plane = g_try_malloc ((gsize) w * h);
    priv->alpha_len = priv->alpha_plane ? (gsize) w * h : 0;
    if (!priv->alpha_plane)
      goto no_memory;
  }

  /* Pixels -> planar float in the model's input range, reflection-padded. */
  {
    const guint8 *src;
    gint stride;
    gfloat lo = r->model->in_lo, hi = r->model->in_hi;

    if (priv->yuv) {
      nf_convert_yuv_unpack (&priv->yuv_in, priv->nv12,
          GST_VIDEO_FRAME_PLANE_DATA (in, 0), GST_VIDEO_FRAME_PLANE_STRIDE (in, 0),
          GST_VIDEO_FRAME_PLANE_DATA (in, 1), GST_VIDEO_FRAME_PLANE_STRIDE (in, 1),
          priv->nv12 ? NULL : GST_VIDEO_FRAME_PLANE_DATA (in, 2),
          priv->nv12 ? 0 : GST_VIDEO_FRAME_PLANE_STRIDE (in, 2), w, h,
          priv->in_planes, pw, ph, (hi - lo) / 255.0f, lo);
    } else {
      src = GST_VIDEO_FRAME_PLANE_DATA (in, 0);
      stride = GST_VIDEO_FRAME_PLANE_STRIDE (in, 0);
      nf_convert_unpack (priv->impl, priv->scratch, priv->layout, src, stride, w, h,
          priv->in_planes, pw, ph, priv->alpha ? priv->alpha_plane : NULL,
          (hi - lo) / 255.0f, lo);
    }
  }

  t0 = g_get_monotonic_time ();
  {
    gboolean entered = runner_enter (r);
    gboolean ok = nf_engine_run_host (r->engine, priv->in_planes, shape, priv->out_planes,
        &err);
    runner_leave (entered);
    if (!ok)
      goto run_failed;
  }
  if (planned)                  /* the first run after a plan is not typical */
    update_latency (self, (g_get_monotonic_time () - t0) * GST_USECOND);

  /* Planar float in the model's output range -> pixels, cropped, blended. */
  {
    guint8 *dst;
    gint stride;
    gfloat ya, xa, b;

    blend_coefficients (r, s, strength, &ya, &xa, &b);
    if (priv->yuv) {
      nf_convert_yuv_pack (&priv->yuv_out, priv->nv12,
          GST_VIDEO_FRAME_PLANE_DATA (out, 0), GST_VIDEO_FRAME_PLANE_STRIDE (out, 0),
          GST_VIDEO_FRAME_PLANE_DATA (out, 1), GST_VIDEO_FRAME_PLANE_STRIDE (out, 1),
          priv->nv12 ? NULL : GST_VIDEO_FRAME_PLANE_DATA (out, 2),
          priv->nv12 ? 0 : GST_VIDEO_FRAME_PLANE_STRIDE (out, 2), ow, oh,
          priv->out_planes, opw, (gsize) opw * oph,
          xa != 0.0f ? priv->in_planes : NULL, pw, (gsize) pw * ph, ya, xa, b);
    } else {
      dst = GST_VIDEO_FRAME_PLANE_DATA (out, 0);
      stride = GST_VIDEO_FRAME_PLANE_STRIDE (out, 0);
      nf_convert_pack (priv->impl, priv->scratch, priv->layout, dst, stride, ow, oh,
          priv->out_planes, opw, (gsize) opw * oph,
          xa != 0.0f ? priv->in_planes : NULL, pw, (gsize) pw * ph,
          priv->alpha ? priv->alpha_plane : NULL, w, s, ya, xa, b);
    }
  }
  return GST_FLOW_OK;

  /* ERRORS */
no_model:
  {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("No model is loaded: set the model property."), (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
bad_size:
  {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("The output frame is %dx%d but the model makes %dx%d from %dx%d input: "
            "the caps were not renegotiated after a model change; let the element "
            "choose its output size.", ow, oh, w * s, h * s, w, h), (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
bad_output:
  {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
        ("The model %s turns %dx%d into a %d-channel %dx%d image, not a 3-channel "
            "%dx%d one: pick another model.", r->path, pw, ph, os.c, opw, oph,
            pw * s, ph * s), (NULL));
    return GST_FLOW_ERROR;
  }
run_failed:
  {
    post_run_error (self, r, w, h, err);
    g_error_free (err);
    return GST_FLOW_ERROR;
  }
no_memory:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Out of memory for %dx%d frames: use smaller frames.", w, h), (NULL));
    return GST_FLOW_ERROR;
  }
}


/* ---- the GPU path ------------------------------------------------------------------ */

#ifdef NF_HAVE_GST_CUDA
/* One frame on a runner with a CUDA context: conversions, network and blend on the
 * GPU (gstneuralfilter-cuda.c), frames in CUDA memory used in place. */
static GstFlowReturn
transform_cuda (GstNeuralFilter * self, NfRunner * r, GstBuffer * inbuf,
    GstBuffer * outbuf)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  GstNeuralFilterClass *klass = GST_NEURAL_FILTER_GET_CLASS (self);
  GstVideoFilter *vf = GST_VIDEO_FILTER (self);
  GError *err = NULL;
  gint w, h, ow, oh, s, pw, ph;
  gdouble strength;
  gboolean planned, entered, ok;

  if (!vf->negotiated)
    goto not_negotiated;
  w = GST_VIDEO_INFO_WIDTH (&vf->in_info);
  h = GST_VIDEO_INFO_HEIGHT (&vf->in_info);
  ow = GST_VIDEO_INFO_WIDTH (&vf->out_info);
  oh = GST_VIDEO_INFO_HEIGHT (&vf->out_info);
  s = r->model->scale;
  if ((gint64) w * s != ow || (gint64) h * s != oh)
    goto bad_size;
  strength = klass->get_strength ? CLAMP (klass->get_strength (self), 0.0, 1.0) : 1.0;
  pw = round_up (w, r->model->size_multiple);
  ph = round_up (h, r->model->size_multiple);
  g_mutex_lock (&priv->lock);
  priv->last_w = w;
  priv->last_h = h;
  g_mutex_unlock (&priv->lock);

  NfShape shape = { 1, 3, ph, pw };
  planned = nf_engine_is_planned_for (r->engine, shape);
  if (!planned) {
    entered = runner_enter (r);
    ok = nf_engine_plan (r->engine, shape, &err);
    runner_leave (entered);
    if (!ok)
      goto run_failed;
  }
  NfShape os = nf_engine_output_shape (r->engine);
  if (os.c != 3 || os.w < ow || os.h < oh)
    goto bad_output;

  NfGstCudaJob job = {
    .engine = r->engine, .backend = r->backend, .ctx = r->cuda_ctx, .shape = shape,
    .run_network = !(s == 1 && strength <= 0.0),
    .in_scale = (r->model->in_hi - r->model->in_lo) / 255.0f,
    .in_offset = r->model->in_lo, .scale = s,
    .yuv_in = &priv->yuv_in, .yuv_out = &priv->yuv_out,
    .in_info = &vf->in_info, .out_info = &vf->out_info,
  };
  blend_coefficients (r, s, strength, &job.ya, &job.xa, &job.b);
  gint64 t0 = g_get_monotonic_time ();
  if (!nf_gst_cuda_process (priv->cuda, &job, inbuf, outbuf, &err))
    goto run_failed;
  if (planned && job.run_network)       /* the first run after a plan is not typical */
    update_latency (self, (g_get_monotonic_time () - t0) * GST_USECOND);
  return GST_FLOW_OK;

  /* ERRORS */
not_negotiated:
  {
    GST_ELEMENT_ERROR (self, CORE, NOT_IMPLEMENTED, (NULL), ("caps not negotiated"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
bad_size:
  {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("The output frame is %dx%d but the model makes %dx%d from %dx%d input: "
            "the caps were not renegotiated after a model change; let the element "
            "choose its output size.", ow, oh, w * s, h * s, w, h), (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
bad_output:
  {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
        ("The model %s turns %dx%d into a %d-channel %dx%d image, not a 3-channel "
            "%dx%d one: pick another model.", r->path, pw, ph, os.c, os.w, os.h,
            pw * s, ph * s), (NULL));
    return GST_FLOW_ERROR;
  }
run_failed:
  {
    post_run_error (self, r, w, h, err);
    g_error_free (err);
    return GST_FLOW_ERROR;
  }
}
#endif

/* CUDA runners take every buffer themselves (they map CUDA memory as such); CPU runners
 * go through GstVideoFilter, which maps the frames for transform_frame. */
static GstFlowReturn
gst_neural_filter_transform (GstBaseTransform * trans, GstBuffer * inbuf,
    GstBuffer * outbuf)
{
#ifdef NF_HAVE_GST_CUDA
  GstNeuralFilterPrivate *priv = GET_PRIV (GST_NEURAL_FILTER (trans));
  if (priv->runner && priv->runner->cuda_ctx)
    return transform_cuda (GST_NEURAL_FILTER (trans), priv->runner, inbuf, outbuf);
#endif
  return GST_BASE_TRANSFORM_CLASS (gst_neural_filter_parent_class)->transform (trans, inbuf,
      outbuf);
}

gboolean
gst_neural_filter_memory_usable (GstNeuralFilter * self, GstCapsFeatures * features)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (self);
  gint on_gpu;

  if (!features || gst_caps_features_is_any (features)
      || !gst_caps_features_contains (features, "memory:CUDAMemory"))
    return TRUE;
#ifdef NF_HAVE_GST_CUDA
  GST_OBJECT_LOCK (self);
  on_gpu = priv->on_gpu;
  GST_OBJECT_UNLOCK (self);
  return on_gpu != 0;           /* not known yet, or running in a CUDA context */
#else
  (void) priv;
  (void) on_gpu;
  return FALSE;
#endif
}

/* Same caps both ways, less CUDA memory while the network runs on the CPU. */
static GstCaps *
gst_neural_filter_transform_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * filter)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  GstCaps *ret = gst_caps_new_empty ();

  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    GstCapsFeatures *f = gst_caps_get_features (caps, i);
    if (!gst_neural_filter_memory_usable (self, f))
      continue;
    ret = gst_caps_merge_structure_full (ret,
        gst_structure_copy (gst_caps_get_structure (caps, i)),
        f ? gst_caps_features_copy (f) : NULL);
  }
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, ret, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (ret);
    ret = tmp;
  }
  return ret;
}

#ifdef NF_HAVE_GST_CUDA
static void
gst_neural_filter_set_context (GstElement * element, GstContext * context)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (GST_NEURAL_FILTER (element));
  gint device_id;

  g_mutex_lock (&priv->lock);
  device_id = priv->cuda_device_id;
  g_mutex_unlock (&priv->lock);
  nf_gst_cuda_set_context (priv->cuda, element, context, device_id);
  GST_ELEMENT_CLASS (gst_neural_filter_parent_class)->set_context (element, context);
}

static gboolean
gst_neural_filter_propose_allocation (GstBaseTransform * trans, GstQuery * decide_query,
    GstQuery * query)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (GST_NEURAL_FILTER (trans));
  GstCaps *caps;

  gst_query_parse_allocation (query, &caps, NULL);
  if (nf_gst_cuda_caps_are_cuda (caps))
    return decide_query == NULL || nf_gst_cuda_propose_allocation (priv->cuda, query);
  return GST_BASE_TRANSFORM_CLASS (gst_neural_filter_parent_class)->propose_allocation
      (trans, decide_query, query);
}

static gboolean
gst_neural_filter_decide_allocation (GstBaseTransform * trans, GstQuery * query)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (GST_NEURAL_FILTER (trans));
  GstCaps *caps;

  gst_query_parse_allocation (query, &caps, NULL);
  if (nf_gst_cuda_caps_are_cuda (caps)
      && !nf_gst_cuda_decide_allocation (priv->cuda, query))
    return FALSE;
  return GST_BASE_TRANSFORM_CLASS (gst_neural_filter_parent_class)->decide_allocation
      (trans, query);
}
#endif

/* ---- class ------------------------------------------------------------------------ */

static void
gst_neural_filter_class_init (GstNeuralFilterClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *vfilter_class = GST_VIDEO_FILTER_CLASS (klass);

  gobject_class->set_property = gst_neural_filter_set_property;
  gobject_class->get_property = gst_neural_filter_get_property;
  gobject_class->finalize = gst_neural_filter_finalize;

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Model file (.safetensors), or the name of a shipped model, looked up in "
          "$NEURALFILTER_MODEL_PATH (colon-separated folders) and then in "
          NF_WEIGHTS_DIR ", with \".safetensors\" added when missing. Loaded when "
          "the element goes to READY; changed while PLAYING, the new model is "
          "loaded in the background and swapped in between two frames (if it "
          "cannot be loaded, a warning is posted and the previous model keeps "
          "running)", NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_enum ("device", "Device",
          "Where the network runs. auto: CUDA when this build has it and a GPU is "
          "usable, else the CPU; cuda: an error when CUDA cannot be used. Takes "
          "effect when the element starts",
          GST_TYPE_NEURAL_FILTER_DEVICE, DEFAULT_DEVICE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision",
          "Arithmetic precision of the network. fp16 (tensor cores) only has an "
          "effect on CUDA; on the CPU the network always runs in fp32. Takes effect "
          "when the element starts",
          GST_TYPE_NEURAL_FILTER_PRECISION, DEFAULT_PRECISION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CUDA_DEVICE_ID,
      g_param_spec_int ("cuda-device-id", "CUDA device id",
          "The GPU to run on (-1: the one of the CUDA context shared by the pipeline's "
          "other CUDA elements, else device 0). Takes effect when the element starts",
          -1, G_MAXINT, DEFAULT_CUDA_DEVICE_ID,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_neural_filter_change_state);
#ifdef NF_HAVE_GST_CUDA
  element_class->set_context = GST_DEBUG_FUNCPTR (gst_neural_filter_set_context);
  trans_class->propose_allocation =
      GST_DEBUG_FUNCPTR (gst_neural_filter_propose_allocation);
  trans_class->decide_allocation = GST_DEBUG_FUNCPTR (gst_neural_filter_decide_allocation);
#endif

  trans_class->start = GST_DEBUG_FUNCPTR (gst_neural_filter_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_neural_filter_stop);
  trans_class->submit_input_buffer =
      GST_DEBUG_FUNCPTR (gst_neural_filter_submit_input_buffer);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_neural_filter_query);
  trans_class->before_transform =
      GST_DEBUG_FUNCPTR (gst_neural_filter_before_transform);
  trans_class->transform_caps = GST_DEBUG_FUNCPTR (gst_neural_filter_transform_caps);
  trans_class->transform = GST_DEBUG_FUNCPTR (gst_neural_filter_transform);

  vfilter_class->set_info = GST_DEBUG_FUNCPTR (gst_neural_filter_set_info);
  vfilter_class->transform_frame =
      GST_DEBUG_FUNCPTR (gst_neural_filter_transform_frame);

  klass->task = NF_TASK_STYLE;

  gst_type_mark_as_plugin_api (GST_TYPE_NEURAL_FILTER, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_NEURAL_FILTER_DEVICE, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_NEURAL_FILTER_PRECISION, 0);
}

static void
gst_neural_filter_init (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = GET_PRIV (self);

  g_mutex_init (&priv->lock);
  g_cond_init (&priv->cond);
  priv->device = DEFAULT_DEVICE;
  priv->precision = DEFAULT_PRECISION;
  priv->cuda_device_id = DEFAULT_CUDA_DEVICE_ID;
  priv->on_gpu = -1;
#ifdef NF_HAVE_GST_CUDA
  priv->cuda = nf_gst_cuda_new ();
#endif
  priv->impl = nf_convert_impl_default ();
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), TRUE);
}
