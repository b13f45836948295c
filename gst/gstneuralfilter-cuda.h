/* gstneuralfilter-cuda.h — the CUDA side of GstNeuralFilter (built with gstreamer-cuda
 * and the CUDA backend: NF_HAVE_GST_CUDA).
 *
 * What it does: shares one GstCudaContext with the other CUDA elements of the pipeline
 * (nvh264dec, nvh264enc, cudaupload, cudadownload) through GstContext; creates CUDA
 * backends inside that context; answers allocation queries for memory:CUDAMemory caps
 * with CUDA buffer pools of that context; and runs one frame on the GPU: frames in CUDA
 * memory of the context are used in place (zero copy), any other frame goes through
 * pinned staging buffers with asynchronous copies; pixel conversion, the network and
 * the strength blend, temporal stabilisation and preserve-color (nf-cuda-steps.cu) all
 * run on the backend's stream.
 * What it does not: choose between CPU and GPU (gstneuralfilter.c does), or own the
 * network (the runner does).
 */
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>

#include "nf-backend.h"
#include "nf-convert.h"
#include "nf-engine.h"
#include "nf-stabilize.h"

G_BEGIN_DECLS

typedef struct NfGstCuda NfGstCuda;

NfGstCuda *nf_gst_cuda_new (void);
void nf_gst_cuda_free (NfGstCuda * c);
/* Drops the context and the staging buffers (READY -> NULL). */
void nf_gst_cuda_close (NfGstCuda * c);
/* Frees the frame steps' state (stabilisation, preserve-color: buffers of the backend
 * of the model in use, in its context ctx) before that model goes (a new model,
 * finalize). The next frame is stabilised afresh. */
void nf_gst_cuda_release_steps (NfGstCuda * c, GstObject * ctx);

/* GstElement::set_context and context queries (any thread). */
void nf_gst_cuda_set_context (NfGstCuda * c, GstElement * element, GstContext * context,
    gint device_id);
gboolean nf_gst_cuda_handle_context_query (NfGstCuda * c, GstElement * element,
    GstQuery * query);

/* A CUDA backend (fp16 or fp32) inside the element's shared CUDA context for
 * device_id (-1: any), which is found in the pipeline or created (and announced) here.
 * *ctx receives a reference to that context (a GstCudaContext) for the runner. NULL +
 * error saying why CUDA cannot be used. Any thread. */
NfBackend *nf_gst_cuda_backend_new (NfGstCuda * c, GstElement * element, gint device_id,
    gboolean fp16, GstObject ** ctx, GError ** error);
/* Makes ctx (a GstCudaContext) current on this thread / undoes it. */
gboolean nf_gst_cuda_push (GstObject * ctx);
void nf_gst_cuda_pop (void);
/* "NVIDIA H200 (CUDA device 0)" */
gchar *nf_gst_cuda_describe (GstObject * ctx);

gboolean nf_gst_cuda_caps_are_cuda (GstCaps * caps);
/* Allocation queries for CUDA-memory caps, with pools of the element's context. */
gboolean nf_gst_cuda_propose_allocation (NfGstCuda * c, GstQuery * query);
gboolean nf_gst_cuda_decide_allocation (NfGstCuda * c, GstQuery * query);

/* One frame on the GPU. */
typedef struct {
  NfEngine *engine;
  NfBackend *backend;
  GstObject *ctx;               /* the runner's GstCudaContext */
  NfShape shape;                /* planned input (padded to the size multiple) */
  gboolean run_network;         /* FALSE: strength 0, the input blended alone */
  gfloat in_scale, in_offset;   /* byte -> model input: byte * scale + offset */
  gfloat ya, xa, b;             /* byte = y * ya + x * xa + b (x: the network input) */
  gint scale;                   /* output size / input size */
  /* Steps on the network output before the pack (nf-cuda-steps.h). */
  NfStabilizeParams stab;       /* stab.strength 0: no temporal stabilisation */
  gboolean temporal_reset;      /* this frame's stabilisation starts afresh */
  gfloat x_to_levels;           /* network input * it: levels of 0..255 (+ offset) */
  gboolean preserve_color;      /* the input's colours through the kernel ... */
  gboolean chroma_copy;         /* ... or I420/NV12: the input's chroma planes copied */
  gfloat color_xm, color_xb;    /* network input * xm + xb: its output units */
  gfloat kr, kb;                /* luma weights of preserve-color */
  const NfYuvMatrix *yuv_in, *yuv_out;
  const GstVideoInfo *in_info, *out_info;
} NfGstCudaJob;

/* FALSE + error (NF_CUDA_ERROR_OUT_OF_MEMORY when the GPU ran out) on failure. */
gboolean nf_gst_cuda_process (NfGstCuda * c, const NfGstCudaJob * job, GstBuffer * in,
    GstBuffer * out, GError ** error);

G_END_DECLS
