/* gstneuralfilter-private.h — what the parts of GstNeuralFilter share: the instance's
 * private data and the functions one part calls in another.
 *
 * What it does: declares GstNeuralFilterPrivate, the accessors of the private data and
 * of the parent class (defined with the type in gstneuralfilter.c), the frame path's
 * entry points (gstneuralfilter-frame.c, gstneuralfilter-luma.c), the stream's (gstneuralfilter-stream.c), the
 * live behaviour's
 * (gstneuralfilter-live.c) and the output thread's (gstneuralfilter-output.c).
 * What it does not: hold any logic. Not installed; only the plugin's own files
 * include it.
 */
#pragma once

#include "gstneuralfilter.h"
#include "nf-convert.h"
#include "nf-model-runner.h"
#include "nf-stabilize.h"
#include "nf-stabilize-motion.h"
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
  GstClockTime latency;         /* the latency it reports (gstneuralfilter-live.c) */

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
  gboolean frame_atypical;      /* set by the frame path: this frame's time is not a
                                 * network run's typical time (it planned, or copied) */
  NfStabilizer *stabilizer;     /* the CPU path's temporal state (init .. finalize) */
  gint temporal_reset;          /* atomic, any thread: the next frame's stabilisation
                                 * starts afresh (caps, flush, jump, model, device) */
  GstClockTime temporal_pts;    /* of the last frame in (a jump resets; streaming) */

  /* Live behaviour (gstneuralfilter-live.c). Object lock: the QoS and latency state
   * (written by upstream events and queries). */
  gboolean qos_seen;            /* a QoS event came since start or flush: a sink that
                                 * syncs to the clock is downstream */
  GstClockTime qos_earliest;    /* frames at or before this running time are late */
  gdouble qos_proportion;
  GstClockTime pipeline_latency;  /* of the last LATENCY event; NONE: none yet */
  gboolean upstream_live;       /* from the last latency query */
  GstClockTime upstream_min;
  /* Streaming thread. */
  GstClockTime frame_interval;  /* of the input (buffer duration, else caps); 0: unknown */
  GstClockTime proc_mean;       /* processing time per frame: running mean (1/8) ... */
  GstClockTime proc_dev;        /* ... and mean absolute deviation (1/4) */
  guint proc_n;                 /* frames measured */
  guint64 processed, skipped;   /* frames made and frames skipped, since start or flush */
  GstClockTime test_delay;      /* $NEURALFILTER_TEST_DELAY_MS (tests and benchmarks) */

  /* The output thread (gstneuralfilter-output.c). out_lock guards out_pending ..
   * out_ret; out_thread and out_discont belong to the streaming thread. */
  GMutex out_lock;
  GCond out_cond;
  GThread *out_thread;          /* NULL: GstBaseTransform pushes the frames */
  GstBuffer *out_pending;       /* handed over, not pushed yet */
  gboolean out_busy;            /* the thread is pushing a frame */
  gboolean out_flushing, out_quit;
  GstFlowReturn out_ret;        /* of the first push that failed; OK otherwise */
  gboolean out_discont;         /* the next frame handed over follows a gap */
#ifdef NF_HAVE_GST_CUDA
  NfGstCuda *cuda;              /* the shared CUDA context, pools, staging */
#endif
} GstNeuralFilterPrivate;

/* gstneuralfilter.c */
GstNeuralFilterPrivate *gst_neural_filter_get_priv (GstNeuralFilter * self);
GstVideoFilterClass *gst_neural_filter_get_parent_class (void);
/* GstBaseTransform's class of the parent, for chaining up from the element's files. */
#define PARENT_TRANSFORM_CLASS \
  GST_BASE_TRANSFORM_CLASS (gst_neural_filter_get_parent_class ())

/* gstneuralfilter-frame.c */
/* Installs the frame path's vfuncs (caps, the transforms), then the stream's and the
 * live ones. */
void gst_neural_filter_frame_class_init (GstNeuralFilterClass * klass);
/* Drops the frame buffers (stop, finalize). */
void gst_neural_filter_frame_free (GstNeuralFilterPrivate * priv);
/* The next frame's stabilisation starts afresh (any thread: flushes, a new model). */
void gst_neural_filter_frame_reset_temporal (GstNeuralFilter * self);
/* Grows a float buffer to n floats (contents dropped); FALSE: out of memory. */
gboolean gst_neural_filter_grow_floats (gfloat ** buf, gsize * len, gsize n);

/* gstneuralfilter-luma.c (the CPU frame path) */
/* Whether a frame at this scale, strength and stabilisation takes the luma path. */
gboolean gst_neural_filter_luma_usable (GstNeuralFilterPrivate * priv,
    const NfLoadedModel * m, gint scale, gdouble strength, gfloat stabilize);
/* The frame through the model's luma core, its chroma upscaled: an element error on
 * failure. */
GstFlowReturn gst_neural_filter_luma_frame (GstNeuralFilter * self, NfLoadedModel * m,
    gint scale, GstVideoFrame * in, GstVideoFrame * out);

/* gstneuralfilter-stream.c */
/* Installs its vfuncs: the swap and discontinuities between frames, control sync,
 * queries. */
void gst_neural_filter_stream_class_init (GstNeuralFilterClass * klass);

/* gstneuralfilter-live.c */
/* Installs its vfuncs (upstream events, flushes, the timing of each frame). */
void gst_neural_filter_live_class_init (GstNeuralFilterClass * klass);
/* Streaming starts (reads $NEURALFILTER_TEST_DELAY_MS) / a new model is in use: the
 * processing time is measured afresh (the reported latency is reset by the caller). */
void gst_neural_filter_live_start (GstNeuralFilter * self);
void gst_neural_filter_live_model_changed (GstNeuralFilter * self);
/* Whether buf arrives too late to be shown: TRUE means skip it (posts a QoS message). */
gboolean gst_neural_filter_live_skip (GstNeuralFilter * self, GstBuffer * buf);
/* $NEURALFILTER_TEST_DELAY_MS: waits that long on the element's clock (frame path). */
void gst_neural_filter_live_test_delay (GstNeuralFilter * self);
/* Adds this element's latency to an answered LATENCY query (from the source pad). */
void gst_neural_filter_live_latency_query (GstNeuralFilter * self, GstQuery * query);

/* gstneuralfilter-output.c (streaming thread unless said otherwise) */
void gst_neural_filter_output_init (GstNeuralFilterPrivate * priv);     /* init */
void gst_neural_filter_output_clear (GstNeuralFilterPrivate * priv);    /* finalize */
/* Starts the output thread if it is not running; FALSE when it cannot. */
gboolean gst_neural_filter_output_enable (GstNeuralFilter * self);
gboolean gst_neural_filter_output_is_on (GstNeuralFilter * self);
/* Takes buf; waits until the previous frame is pushed. The flow of a failed push. */
GstFlowReturn gst_neural_filter_output_hand_over (GstNeuralFilter * self, GstBuffer * buf);
/* Waits until the frame in flight is pushed (before serialized events, queries and
 * renegotiation); returns at once while flushing or when the thread is off. */
void gst_neural_filter_output_drain (GstNeuralFilter * self);
/* FLUSH_START (any thread): drops the frame not pushed yet, wakes waiters.
 * FLUSH_STOP: waits for the push in flight, then accepts frames again. */
void gst_neural_filter_output_flush_start (GstNeuralFilter * self);
void gst_neural_filter_output_flush_stop (GstNeuralFilter * self);
/* Stops and joins the thread, drops a frame not pushed (stop, finalize). */
void gst_neural_filter_output_stop (GstNeuralFilter * self);

G_END_DECLS
