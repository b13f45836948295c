/* gstneuralfilter-private.h — what the two halves of GstNeuralFilter share: the
 * instance's private data and the functions one half calls in the other.
 *
 * What it does: declares GstNeuralFilterPrivate, the accessors of the private data and
 * of the parent class (defined with the type in gstneuralfilter.c), and the frame
 * path's entry points (gstneuralfilter-frame.c).
 * What it does not: hold any logic. Not installed; only the plugin's own files
 * include it.
 */
#pragma once

#include "gstneuralfilter.h"
#include "nf-convert.h"
#include "nf-model-runner.h"
#ifdef NF_HAVE_GST_CUDA
#include "gstneuralfilter-cuda.h"
#endif

G_BEGIN_DECLS

typedef struct {
  /* The model, its device, its loading and swapping (nf-model-runner.c). Created in
   * init; its settings are the properties. */
  NfModelRunner *runner;

  /* Object lock: read by other threads (caps, latency queries). */
  gint scale;                   /* of the model in use; 0: none */
  gint on_gpu;                  /* model in use: -1 none, 0 CPU, 1 CUDA context */
  GstClockTime latency;         /* reported processing latency */

  /* Streaming thread (and start/stop/set_info, which do not run concurrently). */
  const NfConvertImpl *impl;
  NfLayout layout;
  gboolean yuv;
  gboolean alpha;
  gboolean nv12;
  NfYuvMatrix yuv_in, yuv_out;  /* I420/NV12: matrices of the input and output caps */
  NfConvertScratch *scratch;
  gint scratch_width;
  gfloat *in_planes, *out_planes;
  gsize in_len, out_len;        /* floats allocated */
  guint8 *alpha_plane;
  gsize alpha_len;
  GstClockTime proc_avg;        /* running mean of the network's time per frame */
#ifdef NF_HAVE_GST_CUDA
  NfGstCuda *cuda;              /* the shared CUDA context, pools, staging */
#endif
} GstNeuralFilterPrivate;

/* gstneuralfilter.c */
GstNeuralFilterPrivate *gst_neural_filter_get_priv (GstNeuralFilter * self);
GstVideoFilterClass *gst_neural_filter_get_parent_class (void);

/* gstneuralfilter-frame.c */
/* Installs the frame path's vfuncs: caps, the swap between frames, the transforms,
 * latency queries. */
void gst_neural_filter_frame_class_init (GstNeuralFilterClass * klass);
/* Drops the frame buffers (stop, finalize). */
void gst_neural_filter_frame_free (GstNeuralFilterPrivate * priv);

G_END_DECLS
