/* gstneuralstyle.c — the neuralstyle element: fast neural style transfer on video.
 *
 * What it does: runs a style model (Johnson et al. 2016, "Perceptual Losses for
 * Real-Time Style Transfer and Super-Resolution": a feed-forward image transformation
 * network trained for one style) on every frame, same caps in and out, and blends the
 * result with the input frame by the strength property; asks the base class for
 * temporal stabilisation (stabilize, following the camera with stabilize-motion) and
 * the input's colours (preserve-color); with a
 * multi-style model, runs the style or blend of styles its style, style-mix and
 * style-position properties ask for (gstneuralstyle-mix.c).
 * What it does not: anything of the model, the pixel formats or the device (the
 * GstNeuralFilter base class does all of that).
 */

/**
 * SECTION:element-neuralstyle
 * @title: neuralstyle
 * @see_also: superres
 *
 * Stylises every frame of a video with a fast neural style transfer network (a
 * feed-forward image transformation network trained for one style, Johnson et al.
 * 2016). Frames keep their size and format. The strength property blends the
 * stylised frame with the original (0: the original, 1: fully stylised).
 *
 * The model property takes a .safetensors model file, or the name of a model shipped
 * with the plugin. With device=auto (the default) the network runs on an NVIDIA GPU
 * when one is usable (CUDA + cuDNN; memory:CUDAMemory caps in and out), else on the CPU. Style models made by PyTorch's fast_neural_style example
 * (TransformerNet checkpoints saved as safetensors) run unchanged.
 *
 * A multi-style model (one network for several paintings, conditional instance norm:
 * the style-rt-multi architecture) runs the style the style property names, the blend
 * style-mix gives ("starry_night:0.5,great_wave:0.5"), or the place between neighbouring
 * styles style-position gives (a number GstController can animate); each takes effect
 * at the next frame, without reloading the network. A model of one style ignores them
 * with one warning; a name the model lacks or a malformed mix posts a warning and the
 * previous mix stays.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=100 ! video/x-raw,width=320,height=240 ! neuralstyle model=style-slim-starry-night strength=0.8 ! videoconvert ! autovideosink
 * ]| Stylises a test pattern with a shipped model at 80% strength.
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=100 ! video/x-raw,width=320,height=240 ! neuralstyle model=styles8.safetensors style-mix="starry_night:0.5,great_wave:0.5" ! videoconvert ! autovideosink
 * ]| Half Starry Night, half Great Wave, with an 8-style model.
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! qtdemux ! h264parse ! nvh264dec ! neuralstyle model=my-style.safetensors ! nvh264enc ! h264parse ! mp4mux ! filesink location=out.mp4
 * ]| On an NVIDIA GPU: frames stay in CUDA memory from the decoder through the network
 * (fp16 tensor cores with precision=auto) to the encoder.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstneuralstyle.h"
#include "gstneuralstyle-mix.h"

GST_DEBUG_CATEGORY_STATIC (gst_neural_style_debug);
#define GST_CAT_DEFAULT gst_neural_style_debug

struct _GstNeuralStyle
{
  GstNeuralFilter parent;

  gdouble strength;             /* object lock */
  gdouble stabilize;            /* object lock */
  gboolean stabilize_motion;    /* object lock */
  gboolean preserve_color;      /* object lock */
  NfStyleMix *mix;              /* style, style-mix, style-position (own lock) */
};

enum
{
  PROP_0,
  PROP_STRENGTH,
  PROP_STABILIZE,
  PROP_PRESERVE_COLOR,
  PROP_STABILIZE_MOTION,
  PROP_STYLE,                   /* then PROP_STYLE + 1, + 2: gstneuralstyle-mix.c */
};

#define DEFAULT_STRENGTH 1.0
/* Chosen by measurement (README, "Stabilisation and colours"). */
/* 0.8: measured with tests/gst-stabilize-bench on style-rt-starry-night (README): the
 * static flicker ratio of the held-out clips falls from 5.1-6.4 to 0.8-1.0 (0.7: 1.2-1.5,
 * at the bar), a patch moving 3 px per frame stays within 0.4-2.0 levels of the
 * unstabilised output */
#define DEFAULT_STABILIZE 0.8
#define DEFAULT_PRESERVE_COLOR FALSE
#define DEFAULT_STABILIZE_MOTION TRUE

G_DEFINE_TYPE_WITH_CODE (GstNeuralStyle, gst_neural_style, GST_TYPE_NEURAL_FILTER,
    GST_DEBUG_CATEGORY_INIT (gst_neural_style_debug, "neuralstyle", 0,
        "fast neural style transfer"));
GST_ELEMENT_REGISTER_DEFINE (neuralstyle, "neuralstyle", GST_RANK_NONE,
    GST_TYPE_NEURAL_STYLE);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_NEURAL_FILTER_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_NEURAL_FILTER_CAPS));

static void
gst_neural_style_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstNeuralStyle *self = GST_NEURAL_STYLE (object);

  switch (prop_id) {
    case PROP_STRENGTH:
      GST_OBJECT_LOCK (self);
      self->strength = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STABILIZE:
      GST_OBJECT_LOCK (self);
      self->stabilize = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_PRESERVE_COLOR:
      GST_OBJECT_LOCK (self);
      self->preserve_color = g_value_get_boolean (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STABILIZE_MOTION:
      GST_OBJECT_LOCK (self);
      self->stabilize_motion = g_value_get_boolean (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STYLE:
    case PROP_STYLE + 1:
    case PROP_STYLE + 2:
      gst_neural_style_mix_set_property (GST_ELEMENT (self), self->mix,
          prop_id - PROP_STYLE, value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_neural_style_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstNeuralStyle *self = GST_NEURAL_STYLE (object);

  switch (prop_id) {
    case PROP_STRENGTH:
      GST_OBJECT_LOCK (self);
      g_value_set_double (value, self->strength);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STABILIZE:
      GST_OBJECT_LOCK (self);
      g_value_set_double (value, self->stabilize);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_PRESERVE_COLOR:
      GST_OBJECT_LOCK (self);
      g_value_set_boolean (value, self->preserve_color);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STABILIZE_MOTION:
      GST_OBJECT_LOCK (self);
      g_value_set_boolean (value, self->stabilize_motion);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STYLE:
    case PROP_STYLE + 1:
    case PROP_STYLE + 2:
      gst_neural_style_mix_get_property (self->mix, prop_id - PROP_STYLE, value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static gdouble
gst_neural_style_get_strength (GstNeuralFilter * filter)
{
  GstNeuralStyle *self = GST_NEURAL_STYLE (filter);
  gdouble s;

  GST_OBJECT_LOCK (self);
  s = self->strength;
  GST_OBJECT_UNLOCK (self);
  return s;
}

static gdouble
gst_neural_style_get_stabilize (GstNeuralFilter * filter)
{
  GstNeuralStyle *self = GST_NEURAL_STYLE (filter);
  gdouble s;

  GST_OBJECT_LOCK (self);
  s = self->stabilize;
  GST_OBJECT_UNLOCK (self);
  return s;
}

static gboolean
gst_neural_style_get_stabilize_motion (GstNeuralFilter * filter)
{
  GstNeuralStyle *self = GST_NEURAL_STYLE (filter);
  gboolean m;

  GST_OBJECT_LOCK (self);
  m = self->stabilize_motion;
  GST_OBJECT_UNLOCK (self);
  return m;
}

static gboolean
gst_neural_style_get_preserve_color (GstNeuralFilter * filter)
{
  GstNeuralStyle *self = GST_NEURAL_STYLE (filter);
  gboolean p;

  GST_OBJECT_LOCK (self);
  p = self->preserve_color;
  GST_OBJECT_UNLOCK (self);
  return p;
}

static void
gst_neural_style_prepare_model (GstNeuralFilter * filter, NfModel * model)
{
  GstNeuralStyle *self = GST_NEURAL_STYLE (filter);

  gst_neural_style_mix_prepare (GST_ELEMENT (self), self->mix, model);
}

static void
gst_neural_style_finalize (GObject * object)
{
  GstNeuralStyle *self = GST_NEURAL_STYLE (object);

  nf_style_mix_free (self->mix);
  G_OBJECT_CLASS (gst_neural_style_parent_class)->finalize (object);
}

static void
gst_neural_style_class_init (GstNeuralStyleClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstNeuralFilterClass *filter_class = GST_NEURAL_FILTER_CLASS (klass);

  gobject_class->set_property = gst_neural_style_set_property;
  gobject_class->get_property = gst_neural_style_get_property;
  gobject_class->finalize = gst_neural_style_finalize;

  g_object_class_install_property (gobject_class, PROP_STRENGTH,
      g_param_spec_double ("strength", "Strength",
          "How much of the stylised frame is in the output: 0 passes the input "
          "through, 1 outputs the network's frame, values between blend the two",
          0.0, 1.0, DEFAULT_STRENGTH,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_CONTROLLABLE
          | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_STABILIZE,
      g_param_spec_double ("stabilize", "Stabilize",
          "Temporal stabilisation for video: where the input has not changed (the "
          "3x3 mean of its largest per-channel change against the input the output "
          "stands for is below 3 levels of 255), the output is this much the previous "
          "output and the rest the new network output, so static parts stop "
          "crawling; the weight falls smoothly to 0 at 12 levels, so moving parts "
          "are the new output, not ghosted. 0: off (every frame on its own), 1: "
          "still parts are held (default 0.8, measured). Starts afresh after a caps change, a flush or "
          "seek, a jump in timestamps, a new model or style mix",
          0.0, 1.0, DEFAULT_STABILIZE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_CONTROLLABLE
          | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_STABILIZE_MOTION,
      g_param_spec_boolean ("stabilize-motion", "Stabilize with motion",
          "With stabilize: follow the camera's motion first (one translation of up to "
          "16 pixels per frame, found by block matching, taken only where it fits "
          "clearly better than none), so that a pan keeps the scene's stylisation "
          "steady instead of refreshing every textured pixel; regions that do not "
          "follow it are passed through fresh. Off: only pixels that stay still are held",
          DEFAULT_STABILIZE_MOTION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_CONTROLLABLE
          | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_PRESERVE_COLOR,
      g_param_spec_boolean ("preserve-color", "Preserve colour",
          "Keep the input's colours: the output has the luminance of the stylised "
          "frame and the chroma of the input (Gatys et al. 2016). On I420/NV12 the "
          "input's U and V planes are copied; on RGB formats each pixel is the input "
          "pixel shifted by the luma difference (BT.601 weights)",
          DEFAULT_PRESERVE_COLOR,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_CONTROLLABLE
          | GST_PARAM_MUTABLE_PLAYING));
  gst_neural_style_mix_install (gobject_class, PROP_STYLE);

  gst_element_class_set_static_metadata (element_class,
      "Neural style transfer", "Filter/Effect/Video",
      "Stylises video with a fast neural style transfer network (Johnson et al. "
      "2016) loaded from a .safetensors model",
      "neuralfilter project <neuralfilter@localhost>");
  gst_element_class_add_static_metadata (element_class, "example",
      "gst-launch-1.0 videotestsrc ! video/x-raw,width=320,height=240 ! "
      "neuralstyle model=style-slim-starry-night strength=0.8 ! videoconvert ! "
      "autovideosink");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  filter_class->task = NF_TASK_STYLE;
  filter_class->get_strength = gst_neural_style_get_strength;
  filter_class->get_stabilize = gst_neural_style_get_stabilize;
  filter_class->get_stabilize_motion = gst_neural_style_get_stabilize_motion;
  filter_class->get_preserve_color = gst_neural_style_get_preserve_color;
  filter_class->prepare_model = gst_neural_style_prepare_model;
}

static void
gst_neural_style_init (GstNeuralStyle * self)
{
  self->strength = DEFAULT_STRENGTH;
  self->stabilize = DEFAULT_STABILIZE;
  self->preserve_color = DEFAULT_PRESERVE_COLOR;
  self->stabilize_motion = DEFAULT_STABILIZE_MOTION;
  self->mix = nf_style_mix_new ();
}
