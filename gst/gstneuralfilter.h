/* gstneuralfilter.h — GstNeuralFilter, the base class of neuralstyle and superres.
 *
 * What it does: runs a network on every frame of a video. Its parts:
 * gstneuralfilter.c (the type, the properties model/device/precision/cuda-device-id,
 * state changes, errors and warnings about the model on the bus),
 * gstneuralfilter-frame.c (caps and the frame path: pixels -> planar float -> network
 * -> pixels, blending with the input, temporal stabilisation and the input's colours
 * when a subclass asks), gstneuralfilter-stream.c (between frames: the model swap,
 * discontinuities, control sync, queries), gstneuralfilter-live.c (in
 * live pipelines: processing time, latency, skipping frames that would be late),
 * gstneuralfilter-output.c (pushing frames from a thread of their own when live),
 * nf-model-runner.c
 * (finding the model file, device choice, loading a new model off the streaming thread
 * and swapping it in between frames) and gstneuralfilter-cuda.c (the GPU side: CUDA
 * context, CUDA memory, frames on the GPU).
 * What it does not: caps transformation (superres does it), or any network arithmetic
 * (inference/).
 */
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

#include "nf-model.h"

G_BEGIN_DECLS

#define GST_TYPE_NEURAL_FILTER (gst_neural_filter_get_type ())
G_DECLARE_DERIVABLE_TYPE (GstNeuralFilter, gst_neural_filter, GST, NEURAL_FILTER,
    GstVideoFilter)

typedef enum {
  GST_NEURAL_FILTER_DEVICE_AUTO,
  GST_NEURAL_FILTER_DEVICE_CPU,
  GST_NEURAL_FILTER_DEVICE_CUDA,
} GstNeuralFilterDevice;

typedef enum {
  GST_NEURAL_FILTER_PRECISION_AUTO,
  GST_NEURAL_FILTER_PRECISION_FP32,
  GST_NEURAL_FILTER_PRECISION_FP16,
  GST_NEURAL_FILTER_PRECISION_BF16,
} GstNeuralFilterPrecision;

#define GST_TYPE_NEURAL_FILTER_DEVICE (gst_neural_filter_device_get_type ())
GType gst_neural_filter_device_get_type (void);
#define GST_TYPE_NEURAL_FILTER_PRECISION (gst_neural_filter_precision_get_type ())
GType gst_neural_filter_precision_get_type (void);

/* The pixel formats both elements take (system memory). */
#define GST_NEURAL_FILTER_FORMATS \
  "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, I420, NV12 }"
/* ... and in CUDA memory (the formats GstCudaMemory allocates). */
#define GST_NEURAL_FILTER_CUDA_FORMATS "{ RGB, BGR, RGBx, BGRx, RGBA, BGRA, I420, NV12 }"

/* The pad templates: CUDA memory first (zero copy between CUDA elements) when the
 * plugin is built with gstreamer-cuda, then system memory. */
#ifdef NF_HAVE_GST_CUDA
#define GST_NEURAL_FILTER_CAPS \
  GST_VIDEO_CAPS_MAKE_WITH_FEATURES ("memory:CUDAMemory", GST_NEURAL_FILTER_CUDA_FORMATS) \
  "; " GST_VIDEO_CAPS_MAKE (GST_NEURAL_FILTER_FORMATS)
#else
#define GST_NEURAL_FILTER_CAPS GST_VIDEO_CAPS_MAKE (GST_NEURAL_FILTER_FORMATS)
#endif

struct _GstNeuralFilterClass
{
  GstVideoFilterClass parent_class;

  /* Which models this element runs (NF_TASK_STYLE or NF_TASK_SUPERRES). */
  NfTask task;

  /* Optional: called on the streaming thread for every frame; returns the weight of
   * the network output in the result (1: the output only; 0: the input only). */
  gdouble (*get_strength) (GstNeuralFilter * self);
  /* Optional: called on the streaming thread for every frame; the strength of the
   * temporal stabilisation of the network output (0: off; nf-stabilize.h). */
  gdouble (*get_stabilize) (GstNeuralFilter * self);
  /* Optional: called on the streaming thread for every frame; TRUE: the stabilisation
   * follows the camera's motion (nf-stabilize-motion.h); absent: it does not. */
  gboolean (*get_stabilize_motion) (GstNeuralFilter * self);
  /* Optional: called on the streaming thread for every frame; TRUE: the output takes
   * the luminance of the network output and the colours of the input (same-size
   * outputs only; nf-preserve-color.h). */
  gboolean (*get_preserve_color) (GstNeuralFilter * self);
  /* Optional: called on the streaming thread for every frame, before the network runs,
   * with the model in use: its run-time settings (neuralstyle: the style mix of a
   * multi-style network, nf-style-mix.h). */
  void (*prepare_model) (GstNeuralFilter * self, NfModel * model);

  gpointer _reserved[1];
};

/* The upscale factor of the model in use (1 for style models), or 0 while no model is
 * loaded. Any thread. */
gint gst_neural_filter_get_scale (GstNeuralFilter * self);

/* The next frame's temporal stabilisation starts afresh: a subclass changed what the
 * network computes (neuralstyle: another style mix). Any thread. */
void gst_neural_filter_reset_temporal (GstNeuralFilter * self);

/* Whether caps with these features can be taken now: CUDA memory only while the
 * network runs in a CUDA context (or before any network is loaded). Any thread. */
gboolean gst_neural_filter_memory_usable (GstNeuralFilter * self,
    GstCapsFeatures * features);

G_END_DECLS
