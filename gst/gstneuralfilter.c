/* gstneuralfilter.c — GstNeuralFilter, the base class of neuralstyle and superres: the
 * type, its properties, its states, and what it tells the bus about its model.
 *
 * What it does:
 *  - the properties model, device, precision and cuda-device-id, which are the
 *    settings of the element's model runner (nf-model-runner.c: lookup by name or
 *    path, device choice, background loads and the swap between frames);
 *  - the model is loaded at NULL->READY (so superres knows its scale before caps are
 *    negotiated) and again at start if the properties changed; a model that cannot be
 *    loaded then is an ERROR and the state change fails. A model changed while
 *    streaming is loaded in the background: if it fails, a WARNING is posted and the
 *    previous model keeps running (the stream was fine, so it is not stopped); the
 *    model property keeps the requested value, so a later restart reports the problem
 *    as an ERROR. Each failure kind maps to a GstResourceError code;
 *  - the model in use is followed: its scale (for caps), where it runs (CUDA memory in
 *    caps or not), the latency and processing time (reset: measured afresh), the
 *    temporal stabilisation (starts afresh; its GPU state is freed with the old
 *    model's backend); a new
 *    scale marks the source pad for renegotiation, and a swap between frames posts a
 *    "neuralfilter-model-changed" element message (model, path, scale);
 *  - on CUDA (gstneuralfilter-cuda.c, built with gstreamer-cuda): the runner's CUDA
 *    backends are created in the GstCudaContext shared with the pipeline's other CUDA
 *    elements (cuda-device-id picks the device when none is shared), through the
 *    runner's table of device-context functions; GstContext queries and set_context;
 *    CUDA buffer pools in allocation queries; device=auto says on the bus (an INFO
 *    message) which GPU it runs on;
 *  - nothing here aborts the process.
 * What it does not: the frame path (caps, conversions, the network on each frame:
 * gstneuralfilter-frame.c; between frames and queries: gstneuralfilter-stream.c),
 * live behaviour (timing, latency, skipping late frames: gstneuralfilter-live.c; the
 * output thread: gstneuralfilter-output.c), caps transformation (superres), the
 * strength property (neuralstyle), tiling.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstneuralfilter-private.h"

#ifdef NF_HAVE_GST_CUDA
#include "nf-cuda.h"
#endif

GST_DEBUG_CATEGORY (gst_neural_filter_debug);
#define GST_CAT_DEFAULT gst_neural_filter_debug

#ifndef NF_WEIGHTS_DIR
#define NF_WEIGHTS_DIR "/usr/local/share/neuralfilter/weights"
#endif

/* The element's enums are the runner's. */
G_STATIC_ASSERT ((int) GST_NEURAL_FILTER_DEVICE_AUTO == (int) NF_RUNNER_DEVICE_AUTO);
G_STATIC_ASSERT ((int) GST_NEURAL_FILTER_DEVICE_CPU == (int) NF_RUNNER_DEVICE_CPU);
G_STATIC_ASSERT ((int) GST_NEURAL_FILTER_DEVICE_CUDA == (int) NF_RUNNER_DEVICE_CUDA);
G_STATIC_ASSERT ((int) GST_NEURAL_FILTER_PRECISION_AUTO == (int) NF_RUNNER_PRECISION_AUTO);
G_STATIC_ASSERT ((int) GST_NEURAL_FILTER_PRECISION_FP32 == (int) NF_RUNNER_PRECISION_FP32);
G_STATIC_ASSERT ((int) GST_NEURAL_FILTER_PRECISION_FP16 == (int) NF_RUNNER_PRECISION_FP16);
G_STATIC_ASSERT ((int) GST_NEURAL_FILTER_PRECISION_BF16 == (int) NF_RUNNER_PRECISION_BF16);

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

GstNeuralFilterPrivate *
gst_neural_filter_get_priv (GstNeuralFilter * self)
{
  return gst_neural_filter_get_instance_private (self);
}

GstVideoFilterClass *
gst_neural_filter_get_parent_class (void)
{
  return gst_neural_filter_parent_class;
}

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
        "fp16 on CUDA; on the CPU bf16 where it is native, else fp32", "auto"},
    {GST_NEURAL_FILTER_PRECISION_FP32, "32-bit float everywhere", "fp32"},
    {GST_NEURAL_FILTER_PRECISION_FP16,
        "16-bit float tensor-core math (CUDA only; the CPU runs fp32)", "fp16"},
    {GST_NEURAL_FILTER_PRECISION_BF16,
        "bfloat16 convolutions with fp32 accumulation on CPUs with native bf16 "
        "(avx512_core_bf16, AMX; else fp32); CUDA runs fp16", "bf16"},
    {0, NULL, NULL},
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstNeuralFilterPrecision", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

gint
gst_neural_filter_get_scale (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  gint s;
  GST_OBJECT_LOCK (self);
  s = priv->scale;
  GST_OBJECT_UNLOCK (self);
  return s;
}

void
gst_neural_filter_reset_temporal (GstNeuralFilter * self)
{
  gst_neural_filter_frame_reset_temporal (self);
}

/* ---- the runner's events and device contexts --------------------------------------- */

/* Posts err as an element error (fatal) or warning, with a GstResourceError code. */
static void
post_load_problem (GstNeuralFilter * self, const GError * err, gboolean fatal)
{
  gint code = GST_RESOURCE_ERROR_FAILED;
  gboolean keeps_running_said = FALSE;
  if (err->domain == NF_RUNNER_ERROR) {
    switch (err->code) {
      case NF_RUNNER_ERROR_NO_MODEL:
      case NF_RUNNER_ERROR_NOT_FOUND:
        code = GST_RESOURCE_ERROR_NOT_FOUND;
        break;
      case NF_RUNNER_ERROR_LOAD:
        code = GST_RESOURCE_ERROR_READ;
        break;
      case NF_RUNNER_ERROR_TASK:
      case NF_RUNNER_ERROR_DEVICE:
        code = GST_RESOURCE_ERROR_SETTINGS;
        break;
      case NF_RUNNER_ERROR_THREAD:
        keeps_running_said = TRUE;
        break;
    }
  }
  if (fatal) {
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_ERROR,
        GST_RESOURCE_ERROR, code, g_strdup (err->message), NULL, __FILE__,
        GST_FUNCTION, __LINE__);
  } else {
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_WARNING,
        GST_RESOURCE_ERROR, code, keeps_running_said ? g_strdup (err->message) :
        g_strdup_printf ("%s The previous model keeps running.", err->message),
        NULL, __FILE__, GST_FUNCTION, __LINE__);
  }
}

static void
on_load_failed (gpointer owner, const GError * error)
{
  post_load_problem (GST_NEURAL_FILTER (owner), error, FALSE);
}

/* Says on the bus which GPU the network runs on (an INFO message). */
static void
on_loaded (gpointer owner, const NfLoadedModel * m)
{
  if (!g_str_has_prefix (m->backend_name, "cuda"))
    return;
#ifdef NF_HAVE_GST_CUDA
  gchar *gpu = m->device_ctx ? nf_gst_cuda_describe (m->device_ctx) : g_strdup ("the GPU");
  GST_ELEMENT_INFO (owner, RESOURCE, SETTINGS, ("Running on %s in %s.", gpu,
          g_str_equal (m->backend_name, "cuda-fp16") ? "fp16 (tensor cores)" : "fp32"),
      ("%s", nf_cuda_backend_description (m->backend)));
  g_free (gpu);
#else
  GST_ELEMENT_INFO (owner, RESOURCE, SETTINGS, ("Running on the GPU (%s).",
          m->backend_name), (NULL));
#endif
}

/* A new model is in use (or none): the scale, the memory the caps may use and the
 * latency follow it; a new scale renegotiates; a swap between frames is announced. */
static void
on_installed (gpointer owner, const NfLoadedModel * old,
    const NfLoadedModel * now, gboolean between_frames)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (owner);
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  gint old_scale = old ? old->model->scale : 0;

  GST_OBJECT_LOCK (self);
  priv->scale = now ? now->model->scale : 0;
  priv->on_gpu = now ? (now->device_ctx != NULL) : -1;
  priv->latency = 0;
  GST_OBJECT_UNLOCK (self);
  gst_neural_filter_live_model_changed (self);
  /* another network: its output is not comparable with the old one's */
  gst_neural_filter_frame_reset_temporal (self);
#ifdef NF_HAVE_GST_CUDA
  if (old && old->device_ctx)   /* the GPU state is in the old backend's buffers */
    nf_gst_cuda_release_steps (priv->cuda, old->device_ctx);
#endif

  if (!now)
    return;
  if (old_scale && old_scale != now->model->scale) {
    GST_INFO_OBJECT (self, "scale changed %d -> %d: renegotiating", old_scale,
        now->model->scale);
    gst_base_transform_reconfigure_src (GST_BASE_TRANSFORM (self));
  }
  if (between_frames) {
    GstStructure *s = gst_structure_new ("neuralfilter-model-changed",
        "model", G_TYPE_STRING, now->name, "path", G_TYPE_STRING, now->path,
        "scale", G_TYPE_INT, now->model->scale, NULL);
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self), s));
  }
}

static const NfRunnerEvents runner_events = {
  .loaded = on_loaded,
  .load_failed = on_load_failed,
  .installed = on_installed,
};

#ifdef NF_HAVE_GST_CUDA
/* CUDA backends in the pipeline's shared GstCudaContext. */
static NfBackend *
cuda_backend_new (gpointer owner, const gchar * backend_name, gint device_id,
    gpointer * ctx, GError ** error)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (GST_NEURAL_FILTER (owner));
  GstObject *c = NULL;
  NfBackend *be = nf_gst_cuda_backend_new (priv->cuda, GST_ELEMENT (owner), device_id,
      g_str_equal (backend_name, "cuda-fp16"), &c, error);
  *ctx = c;
  return be;
}

static gboolean
cuda_push (gpointer ctx)
{
  return nf_gst_cuda_push (ctx);
}

static const NfDeviceContextFuncs cuda_contexts = {
  .backend_new = cuda_backend_new,
  .push = cuda_push,
  .pop = nf_gst_cuda_pop,
  .ctx_unref = gst_object_unref,
};
#endif

/* ---- GObject ------------------------------------------------------------------------ */

static void
gst_neural_filter_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (GST_NEURAL_FILTER (object));
  NfDeviceChoice choice;

  if (prop_id == PROP_MODEL) {
    nf_model_runner_set_model (priv->runner, g_value_get_string (value));
    return;
  }
  nf_model_runner_get_device (priv->runner, &choice);
  switch (prop_id) {
    case PROP_DEVICE:
      choice.device = g_value_get_enum (value);
      break;
    case PROP_PRECISION:
      choice.precision = g_value_get_enum (value);
      break;
    case PROP_CUDA_DEVICE_ID:
      choice.cuda_device_id = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
  }
  nf_model_runner_set_device (priv->runner, &choice);
}

static void
gst_neural_filter_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (GST_NEURAL_FILTER (object));
  NfDeviceChoice choice;

  nf_model_runner_get_device (priv->runner, &choice);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_take_string (value, nf_model_runner_dup_model (priv->runner));
      break;
    case PROP_DEVICE:
      g_value_set_enum (value, choice.device);
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, choice.precision);
      break;
    case PROP_CUDA_DEVICE_ID:
      g_value_set_int (value, choice.cuda_device_id);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_neural_filter_finalize (GObject * object)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (GST_NEURAL_FILTER (object));

  gst_neural_filter_output_stop (GST_NEURAL_FILTER (object));
  gst_neural_filter_output_clear (priv);
#ifdef NF_HAVE_GST_CUDA
  NfLoadedModel *m = nf_model_runner_current (priv->runner);
  if (m && m->device_ctx)       /* freed with the model below, without an event */
    nf_gst_cuda_release_steps (priv->cuda, m->device_ctx);
#endif
  nf_model_runner_free (priv->runner);
  gst_neural_filter_frame_free (priv);
#ifdef NF_HAVE_GST_CUDA
  nf_gst_cuda_free (priv->cuda);
#endif

  G_OBJECT_CLASS (gst_neural_filter_parent_class)->finalize (object);
}

/* ---- states ----------------------------------------------------------------------- */

/* Loads the model of the properties unless it is in use; an ERROR when it fails. */
static gboolean
ensure_model (GstNeuralFilter * self, gboolean start)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GError *err = NULL;

  if (start ? nf_model_runner_start (priv->runner, &err)
      : nf_model_runner_ensure (priv->runner, &err))
    return TRUE;
  post_load_problem (self, err, TRUE);
  g_error_free (err);
  return FALSE;
}

static GstStateChangeReturn
gst_neural_filter_change_state (GstElement * element, GstStateChange transition)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (element);
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  GstStateChangeReturn ret;

  /* Load now, so that superres knows its scale before caps are negotiated. */
  if (transition == GST_STATE_CHANGE_NULL_TO_READY && !ensure_model (self, FALSE))
    return GST_STATE_CHANGE_FAILURE;

  ret = GST_ELEMENT_CLASS (gst_neural_filter_parent_class)->change_state (element,
      transition);

  if (transition == GST_STATE_CHANGE_READY_TO_NULL) {
    nf_model_runner_close (priv->runner);
#ifdef NF_HAVE_GST_CUDA
    nf_gst_cuda_close (priv->cuda);     /* the next start may share another context */
#endif
  }
  return ret;
}

static gboolean
gst_neural_filter_start (GstBaseTransform * trans)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (trans);
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);

  if (!ensure_model (self, TRUE))
    return FALSE;
  priv->impl = nf_convert_impl_default ();
  GST_DEBUG_OBJECT (self, "pixel conversions: %s", priv->impl->name);
  gst_neural_filter_live_start (self);
  return TRUE;
}

static gboolean
gst_neural_filter_stop (GstBaseTransform * trans)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (GST_NEURAL_FILTER (trans));

  gst_neural_filter_output_stop (GST_NEURAL_FILTER (trans));
  nf_model_runner_stop (priv->runner);
  gst_neural_filter_frame_free (priv);
  return TRUE;
}

/* ---- CUDA context and allocation ---------------------------------------------------- */

#ifdef NF_HAVE_GST_CUDA
static void
gst_neural_filter_set_context (GstElement * element, GstContext * context)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (GST_NEURAL_FILTER (element));
  NfDeviceChoice choice;

  nf_model_runner_get_device (priv->runner, &choice);
  nf_gst_cuda_set_context (priv->cuda, element, context, choice.cuda_device_id);
  GST_ELEMENT_CLASS (gst_neural_filter_parent_class)->set_context (element, context);
}

static gboolean
gst_neural_filter_propose_allocation (GstBaseTransform * trans, GstQuery * decide_query,
    GstQuery * query)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (GST_NEURAL_FILTER (trans));
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
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (GST_NEURAL_FILTER (trans));
  GstCaps *caps;

  gst_query_parse_allocation (query, &caps, NULL);
  if (nf_gst_cuda_caps_are_cuda (caps)
      && !nf_gst_cuda_decide_allocation (priv->cuda, query))
    return FALSE;
  return GST_BASE_TRANSFORM_CLASS (gst_neural_filter_parent_class)->decide_allocation
      (trans, query);
}
#endif

/* The runner is made here, where the class is the subclass's (with its task); the
 * properties are set only after this. */
static void
gst_neural_filter_constructed (GObject * object)
{
  GstNeuralFilter *self = GST_NEURAL_FILTER (object);
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);
  const NfDeviceContextFuncs *contexts = NULL;

#ifdef NF_HAVE_GST_CUDA
  contexts = &cuda_contexts;
#endif
  priv->runner = nf_model_runner_new (GST_NEURAL_FILTER_GET_CLASS (self)->task, self,
      &runner_events, contexts);
  G_OBJECT_CLASS (gst_neural_filter_parent_class)->constructed (object);
}

/* ---- class ------------------------------------------------------------------------ */

static void
gst_neural_filter_class_init (GstNeuralFilterClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->set_property = gst_neural_filter_set_property;
  gobject_class->get_property = gst_neural_filter_get_property;
  gobject_class->constructed = gst_neural_filter_constructed;
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
          "Arithmetic precision of the network: fp16 (tensor cores) on CUDA, bf16 "
          "convolutions on CPUs with native bf16 (avx512_core_bf16, AMX), fp32. auto: "
          "fp16 on CUDA, bf16 on the CPU where it is native, else fp32. Takes effect "
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
  gst_neural_filter_frame_class_init (klass);

  klass->task = NF_TASK_STYLE;

  gst_type_mark_as_plugin_api (GST_TYPE_NEURAL_FILTER, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_NEURAL_FILTER_DEVICE, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_NEURAL_FILTER_PRECISION, 0);
}

static void
gst_neural_filter_init (GstNeuralFilter * self)
{
  GstNeuralFilterPrivate *priv = gst_neural_filter_get_priv (self);

#ifdef NF_HAVE_GST_CUDA
  priv->cuda = nf_gst_cuda_new ();
#endif
  priv->on_gpu = -1;
  priv->temporal_pts = GST_CLOCK_TIME_NONE;
  priv->impl = nf_convert_impl_default ();
  gst_neural_filter_output_init (priv);
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), TRUE);
}
