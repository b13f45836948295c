/* gstneuralfilter-cuda.c — the CUDA side of GstNeuralFilter (see gstneuralfilter-cuda.h).
 *
 * What it does:
 *  - context: gst_cuda_ensure_element_context finds the GstCudaContext of neighbouring
 *    CUDA elements (queries both ways, then a need-context message) or creates one for
 *    cuda-device-id and announces it; set_context and context queries keep it shared.
 *    Before any of that, the CUDA runtime must see a device and GStreamer must load
 *    libcuda (gst_cuda_context_new asserts otherwise), so both are checked first and
 *    their failure is the reason given for not using CUDA;
 *  - backends are created with that context pushed (the runtime then works in it), so
 *    every buffer, stream and kernel of the network lives where the frames live;
 *  - allocation: CUDA buffer pools of the context for memory:CUDAMemory caps (upstream
 *    gets one proposed; downstream's is used when it is of the same context);
 *  - frames: CUDA memory of the context is mapped with GST_MAP_CUDA and used in place
 *    (with GStreamer 1.24 or later after gst_cuda_memory_sync, as such memory may carry
 *    its own stream with the producer's work still queued);
 *    system memory (or CUDA memory of another context) is copied through pinned host
 *    buffers and device staging frames with asynchronous copies on the backend's stream;
 *    then u8 -> tensor, network, temporal stabilisation and preserve-color
 *    (nf-cuda-steps.cu), tensor (+ strength blend) -> u8 on that stream (I420/NV12 with
 *    preserve-color: the input's chroma planes copied over the output's), and one
 *    synchronisation before the buffer goes downstream.
 * What it does not: decide CPU or GPU, or post element errors (the caller does, from the
 * GError).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstneuralfilter-cuda.h"

#include <string.h>

#include <gst/cuda/gstcudabufferpool.h>
#include <gst/cuda/gstcudacontext.h>
#include <gst/cuda/gstcudaloader.h>
#include <gst/cuda/gstcudamemory.h>
#include <gst/cuda/gstcudautils.h>

#include "nf-cuda-convert.h"
#include "nf-cuda-steps.h"
#include "nf-cuda.h"
#include "nf-error.h"

GST_DEBUG_CATEGORY_STATIC (nf_gst_cuda_debug);
#define GST_CAT_DEFAULT nf_gst_cuda_debug

struct NfGstCuda {
  GRecMutex lock;               /* context (set_context may re-enter from ensure) */
  GstCudaContext *context;
  /* Staging for frames not in CUDA memory of the context (streaming thread). */
  GstCudaContext *staging_ctx;  /* the context the staging memory belongs to */
  guint8 *host_in, *host_out;   /* pinned */
  guint8 *dev_in, *dev_out;
  gsize in_len, out_len;
  NfCudaSteps *steps;           /* stabilisation, preserve-color (streaming thread) */
};

NfGstCuda *
nf_gst_cuda_new (void)
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (nf_gst_cuda_debug, "neuralfiltercuda", 0,
        "neural filters: CUDA context, memory and frames");
    g_once_init_leave (&once, 1);
  }
  NfGstCuda *c = g_new0 (NfGstCuda, 1);
  g_rec_mutex_init (&c->lock);
  c->steps = nf_cuda_steps_new ();
  return c;
}

static void
free_staging (NfGstCuda * c)
{
  if (!c->staging_ctx)
    return;
  if (gst_cuda_context_push (c->staging_ctx)) {
    nf_cuda_host_free (NULL, c->host_in);
    nf_cuda_host_free (NULL, c->host_out);
    nf_cuda_device_free (NULL, c->dev_in);
    nf_cuda_device_free (NULL, c->dev_out);
    gst_cuda_context_pop (NULL);
  }
  c->host_in = c->host_out = c->dev_in = c->dev_out = NULL;
  c->in_len = c->out_len = 0;
  gst_clear_object (&c->staging_ctx);
}

void
nf_gst_cuda_close (NfGstCuda * c)
{
  free_staging (c);
  g_rec_mutex_lock (&c->lock);
  gst_clear_object (&c->context);
  g_rec_mutex_unlock (&c->lock);
}

void
nf_gst_cuda_free (NfGstCuda * c)
{
  if (!c)
    return;
  nf_gst_cuda_close (c);
  nf_cuda_steps_free (c->steps);        /* released already, with its model */
  g_rec_mutex_clear (&c->lock);
  g_free (c);
}

void
nf_gst_cuda_release_steps (NfGstCuda * c, GstObject * ctx)
{
  if (!ctx || !gst_cuda_context_push (GST_CUDA_CONTEXT (ctx))) {
    GST_WARNING ("the CUDA context of the frame steps could not be made current");
    return;
  }
  nf_cuda_steps_release (c->steps);
  gst_cuda_context_pop (NULL);
}

/* ---- context ---------------------------------------------------------------------- */

void
nf_gst_cuda_set_context (NfGstCuda * c, GstElement * element, GstContext * context,
    gint device_id)
{
  g_rec_mutex_lock (&c->lock);
  gst_cuda_handle_set_context (element, context, device_id, &c->context);
  g_rec_mutex_unlock (&c->lock);
}

gboolean
nf_gst_cuda_handle_context_query (NfGstCuda * c, GstElement * element, GstQuery * query)
{
  gboolean ret;
  g_rec_mutex_lock (&c->lock);
  ret = gst_cuda_handle_context_query (element, query, c->context);
  g_rec_mutex_unlock (&c->lock);
  return ret;
}

gboolean
nf_gst_cuda_push (GstObject * ctx)
{
  return ctx && gst_cuda_context_push (GST_CUDA_CONTEXT (ctx));
}

void
nf_gst_cuda_pop (void)
{
  gst_cuda_context_pop (NULL);
}

static gint
context_device (GstCudaContext * ctx)
{
  guint dev = 0;
  g_object_get (ctx, "cuda-device-id", &dev, NULL);
  return (gint) dev;
}

gchar *
nf_gst_cuda_describe (GstObject * ctx)
{
  gint dev = context_device (GST_CUDA_CONTEXT (ctx));
  gchar *d = nf_cuda_device_description (dev, NULL);
  gchar *s = g_strdup_printf ("%s (CUDA device %d)", d ? d : "a GPU", dev);
  g_free (d);
  return s;
}

NfBackend *
nf_gst_cuda_backend_new (NfGstCuda * c, GstElement * element, gint device_id,
    gboolean fp16, GstObject ** ctx_out, GError ** error)
{
  GError *e = NULL;
  GstCudaContext *ctx = NULL;
  int n = nf_cuda_device_count (&e);
  if (n == 0) {
    g_propagate_error (error, e);
    return NULL;
  }
  if (device_id >= n) {
    g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_NO_DEVICE,
        "cuda-device-id=%d, but this machine has %d CUDA device%s", device_id, n,
        n > 1 ? "s" : "");
    return NULL;
  }
  /* gst_cuda_context_new () asserts when libcuda was not loaded: check first. */
  if (!gst_cuda_load_library ()) {
    g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_NO_DEVICE,
        "GStreamer could not load the CUDA driver library (libcuda)");
    return NULL;
  }
  g_rec_mutex_lock (&c->lock);
  if (gst_cuda_ensure_element_context (element, device_id, &c->context))
    ctx = gst_object_ref (c->context);
  g_rec_mutex_unlock (&c->lock);
  if (!ctx) {
    g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_NO_DEVICE,
        "no CUDA context could be created for device %d", MAX (device_id, 0));
    return NULL;
  }

  if (!gst_cuda_context_push (ctx)) {
    g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_FAILED,
        "the CUDA context of device %d could not be made current", context_device (ctx));
    gst_object_unref (ctx);
    return NULL;
  }
  NfCudaConfig cfg = { fp16 ? NF_CUDA_FP16 : NF_CUDA_FP32, context_device (ctx), TRUE, FALSE };
  NfBackend *be = nf_cuda_backend_new (&cfg, error);
  gst_cuda_context_pop (NULL);
  if (!be) {
    gst_object_unref (ctx);
    return NULL;
  }
  GST_INFO_OBJECT (element, "%s", nf_cuda_backend_description (be));
  *ctx_out = GST_OBJECT (ctx);
  return be;
}

/* ---- allocation ----------------------------------------------------------------------- */

gboolean
nf_gst_cuda_caps_are_cuda (GstCaps * caps)
{
  GstCapsFeatures *f = caps && gst_caps_get_size (caps) > 0
      ? gst_caps_get_features (caps, 0) : NULL;
  return f && gst_caps_features_contains (f, GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY);
}

static GstCudaContext *
context_ref (NfGstCuda * c)
{
  GstCudaContext *ctx;
  g_rec_mutex_lock (&c->lock);
  ctx = c->context ? gst_object_ref (c->context) : NULL;
  g_rec_mutex_unlock (&c->lock);
  return ctx;
}

/* A CUDA pool of ctx configured for caps; *size: its buffer size. */
static GstBufferPool *
new_pool (GstCudaContext * ctx, GstCaps * caps, guint * size, guint min, guint max)
{
  GstVideoInfo info;
  GstBufferPool *pool;
  GstStructure *config;

  if (!gst_video_info_from_caps (&info, caps))
    return NULL;
  gst_cuda_memory_init_once ();
  pool = gst_cuda_buffer_pool_new (ctx);
  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_add_option (config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  gst_buffer_pool_config_set_params (config, caps, GST_VIDEO_INFO_SIZE (&info), min, max);
  if (!gst_buffer_pool_set_config (pool, config)) {
    gst_object_unref (pool);
    return NULL;
  }
  /* the CUDA pool sets the (pitched) buffer size when configured */
  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_get_params (config, NULL, size, NULL, NULL);
  gst_structure_free (config);
  return pool;
}

gboolean
nf_gst_cuda_propose_allocation (NfGstCuda * c, GstQuery * query)
{
  GstCaps *caps;
  GstCudaContext *ctx = context_ref (c);
  gboolean ret = FALSE;

  gst_query_parse_allocation (query, &caps, NULL);
  if (!caps || !ctx)
    goto out;
  if (gst_query_get_n_allocation_pools (query) == 0) {
    guint size = 0;
    GstBufferPool *pool = new_pool (ctx, caps, &size, 0, 0);
    if (!pool)
      goto out;
    gst_query_add_allocation_pool (query, pool, size, 0, 0);
    gst_object_unref (pool);
  }
  gst_query_add_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL);
  ret = TRUE;
out:
  gst_clear_object (&ctx);
  return ret;
}

gboolean
nf_gst_cuda_decide_allocation (NfGstCuda * c, GstQuery * query)
{
  GstCaps *caps;
  GstBufferPool *pool = NULL;
  guint size = 0, min = 0, max = 0;
  gboolean update = FALSE;
  GstCudaContext *ctx = context_ref (c);

  gst_query_parse_allocation (query, &caps, NULL);
  if (!caps || !ctx) {
    gst_clear_object (&ctx);
    return FALSE;
  }
  if (gst_query_get_n_allocation_pools (query) > 0) {
    gst_query_parse_nth_allocation_pool (query, 0, &pool, &size, &min, &max);
    update = TRUE;
    /* downstream's pool only when it is a CUDA pool of the same context */
    if (pool && (!GST_IS_CUDA_BUFFER_POOL (pool)
            || GST_CUDA_BUFFER_POOL (pool)->context != ctx))
      gst_clear_object (&pool);
  }
  if (pool) {
    GstStructure *config = gst_buffer_pool_get_config (pool);
    gst_buffer_pool_config_add_option (config, GST_BUFFER_POOL_OPTION_VIDEO_META);
    gst_buffer_pool_config_set_params (config, caps, size, min, max);
    gst_buffer_pool_set_config (pool, config);
    config = gst_buffer_pool_get_config (pool);
    gst_buffer_pool_config_get_params (config, NULL, &size, NULL, NULL);
    gst_structure_free (config);
  } else {
    pool = new_pool (ctx, caps, &size, min, max);
  }
  gst_object_unref (ctx);
  if (!pool)
    return FALSE;
  if (update)
    gst_query_set_nth_allocation_pool (query, 0, pool, size, min, max);
  else
    gst_query_add_allocation_pool (query, pool, size, min, max);
  gst_object_unref (pool);
  return TRUE;
}

/* ---- frames ------------------------------------------------------------------------------- */

static gboolean
pixel_format (GstVideoFormat f, NfCudaPixelFormat * out)
{
  switch (f) {
    case GST_VIDEO_FORMAT_RGB:
      *out = NF_CUDA_PIXEL_RGB;
      return TRUE;
    case GST_VIDEO_FORMAT_BGR:
      *out = NF_CUDA_PIXEL_BGR;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBx:
      *out = NF_CUDA_PIXEL_RGBX;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRx:
      *out = NF_CUDA_PIXEL_BGRX;
      return TRUE;
    case GST_VIDEO_FORMAT_xRGB:
      *out = NF_CUDA_PIXEL_XRGB;
      return TRUE;
    case GST_VIDEO_FORMAT_xBGR:
      *out = NF_CUDA_PIXEL_XBGR;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBA:
      *out = NF_CUDA_PIXEL_RGBA;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
      *out = NF_CUDA_PIXEL_BGRA;
      return TRUE;
    case GST_VIDEO_FORMAT_I420:
      *out = NF_CUDA_PIXEL_I420;
      return TRUE;
    case GST_VIDEO_FORMAT_NV12:
      *out = NF_CUDA_PIXEL_NV12;
      return TRUE;
    default:
      return FALSE;
  }
}

/* Bytes per row and rows of each plane of a w x h frame of format f. */
static gint
plane_geometry (NfCudaPixelFormat f, gint w, gint h, gint row[3], gint rows[3])
{
  switch (f) {
    case NF_CUDA_PIXEL_I420:
      row[0] = w;
      row[1] = row[2] = (w + 1) / 2;
      rows[0] = h;
      rows[1] = rows[2] = (h + 1) / 2;
      return 3;
    case NF_CUDA_PIXEL_NV12:
      row[0] = w;
      row[1] = 2 * ((w + 1) / 2);
      rows[0] = h;
      rows[1] = (h + 1) / 2;
      return 2;
    case NF_CUDA_PIXEL_RGB:
    case NF_CUDA_PIXEL_BGR:
      row[0] = 3 * w;
      rows[0] = h;
      return 1;
    default:
      row[0] = 4 * w;
      rows[0] = h;
      return 1;
  }
}

static gboolean
buffer_in_context (GstBuffer * buf, GstCudaContext * ctx)
{
  guint n = gst_buffer_n_memory (buf);
  for (guint i = 0; i < n; i++) {
    GstMemory *m = gst_buffer_peek_memory (buf, i);
    if (!gst_is_cuda_memory (m) || GST_CUDA_MEMORY_CAST (m)->context != ctx)
      return FALSE;
  }
  return n > 0;
}

/* Grows a pinned + device staging pair to len bytes (the context is current). */
static gboolean
grow_staging (NfGstCuda * c, GstCudaContext * ctx, guint8 ** host, guint8 ** dev,
    gsize * have, gsize len, GError ** error)
{
  if (c->staging_ctx && c->staging_ctx != ctx) {
    /* a new context (model or device change): drop what belonged to the old one */
    gst_cuda_context_pop (NULL);
    free_staging (c);
    gst_cuda_context_push (ctx);
  }
  if (*have >= len)
    return TRUE;
  nf_cuda_host_free (NULL, *host);
  nf_cuda_device_free (NULL, *dev);
  *host = *dev = NULL;
  *have = 0;
  if (!(*host = nf_cuda_host_alloc (NULL, len, error))
      || !(*dev = nf_cuda_device_alloc (NULL, len, error)))
    return FALSE;
  *have = len;
  if (!c->staging_ctx)
    c->staging_ctx = gst_object_ref (ctx);
  return TRUE;
}

/* Waits for work that other elements queued on the CUDA memories of buf (mapped with
 * GST_MAP_CUDA just before). From GStreamer 1.24 a CUDA memory may carry its own stream:
 * its producer's kernels (and an upload that the map itself queued) may still be running
 * there, and mapping with GST_MAP_CUDA does not wait for them; gst_cuda_memory_sync does
 * when the memory is marked as needing it (GST_CUDA_MEMORY_TRANSFER_NEED_SYNC), so the
 * backend's own stream may then read or write the frame. Before 1.24 memories have no
 * stream (producers synchronise themselves) and there is nothing to wait for. */
static void
sync_cuda_memories (GstBuffer * buf)
{
#if GST_CHECK_VERSION(1, 24, 0)
  guint n = gst_buffer_n_memory (buf);
  for (guint i = 0; i < n; i++) {
    GstMemory *m = gst_buffer_peek_memory (buf, i);
    if (gst_is_cuda_memory (m))
      gst_cuda_memory_sync (GST_CUDA_MEMORY_CAST (m));
  }
#else
  (void) buf;
#endif
}

/* A mapped frame as an NfCudaFrame. On the host: its rows are packed into pinned
 * staging and copied (asynchronously) to device staging, which the frame then names. */
static gboolean
frame_to_device (NfGstCuda * c, const NfGstCudaJob * job, GstVideoFrame * f,
    gboolean on_device, gboolean is_input, NfCudaFrame * out, GError ** error)
{
  gint row[3], rows[3];
  NfCudaPixelFormat pf;
  if (!pixel_format (GST_VIDEO_FRAME_FORMAT (f), &pf)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "format %s is not handled on the GPU",
        gst_video_format_to_string (GST_VIDEO_FRAME_FORMAT (f)));
    return FALSE;
  }
  gint planes = plane_geometry (pf, GST_VIDEO_FRAME_WIDTH (f), GST_VIDEO_FRAME_HEIGHT (f),
      row, rows);
  memset (out, 0, sizeof *out);
  out->format = pf;
  out->width = GST_VIDEO_FRAME_WIDTH (f);
  out->height = GST_VIDEO_FRAME_HEIGHT (f);
  if (on_device) {
    for (gint p = 0; p < planes; p++) {
      out->data[p] = GST_VIDEO_FRAME_PLANE_DATA (f, p);
      out->stride[p] = GST_VIDEO_FRAME_PLANE_STRIDE (f, p);
    }
    return TRUE;
  }
  gsize total = 0;
  for (gint p = 0; p < planes; p++)
    total += (gsize) row[p] * rows[p];
  GstCudaContext *ctx = GST_CUDA_CONTEXT (job->ctx);
  guint8 **host = is_input ? &c->host_in : &c->host_out;
  guint8 **dev = is_input ? &c->dev_in : &c->dev_out;
  gsize *have = is_input ? &c->in_len : &c->out_len;
  if (!grow_staging (c, ctx, host, dev, have, total, error))
    return FALSE;
  gsize off = 0;
  for (gint p = 0; p < planes; p++) {
    out->data[p] = *dev + off;
    out->stride[p] = row[p];
    if (is_input) {
      const guint8 *src = GST_VIDEO_FRAME_PLANE_DATA (f, p);
      gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (f, p);
      for (gint y = 0; y < rows[p]; y++)
        memcpy (*host + off + (gsize) y * row[p], src + (gsize) y * stride, row[p]);
    }
    off += (gsize) row[p] * rows[p];
  }
  if (is_input)
    return nf_cuda_copy_2d_async (job->backend, *dev, total, *host, total, total, 1, error);
  return TRUE;
}

/* Device staging of an output frame -> pinned -> the mapped frame (synchronises). */
static gboolean
frame_from_device (NfGstCuda * c, const NfGstCudaJob * job, GstVideoFrame * f,
    const NfCudaFrame * staged, GError ** error)
{
  gint row[3], rows[3];
  gint planes = plane_geometry (staged->format, staged->width, staged->height, row, rows);
  gsize total = 0;
  for (gint p = 0; p < planes; p++)
    total += (gsize) row[p] * rows[p];
  if (!nf_cuda_copy_2d_async (job->backend, c->host_out, total, c->dev_out, total, total, 1,
          error) || !job->backend->iface->synchronize (job->backend, error))
    return FALSE;
  gsize off = 0;
  for (gint p = 0; p < planes; p++) {
    guint8 *dst = GST_VIDEO_FRAME_PLANE_DATA (f, p);
    gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (f, p);
    for (gint y = 0; y < rows[p]; y++)
      memcpy (dst + (gsize) y * stride, c->host_out + off + (gsize) y * row[p], row[p]);
    off += (gsize) row[p] * rows[p];
  }
  return TRUE;
}

/* The input's chroma planes into the output frame (same size; I420/NV12). */
static gboolean
copy_chroma (const NfGstCudaJob * job, const NfCudaFrame * src, const NfCudaFrame * dst,
    GError ** error)
{
  gint row[3], rows[3];
  gint planes = plane_geometry (src->format, src->width, src->height, row, rows);
  for (gint p = 1; p < planes; p++)
    if (!nf_cuda_copy_2d_async (job->backend, dst->data[p], dst->stride[p], src->data[p],
            src->stride[p], row[p], rows[p], error))
      return FALSE;
  return TRUE;
}

/* Temporal stabilisation and preserve-color on the network output y (shape *ys);
 * *y and *ys then name what to pack. */
static gboolean
frame_steps (NfGstCuda * c, const NfGstCudaJob * job, const void *x, gint w, gint h,
    const void **y, NfShape * ys, GError ** error)
{
  NfBackend *be = job->backend;
  if (job->temporal_reset || job->stab.strength <= 0.0f || !job->run_network)
    nf_cuda_steps_reset (c->steps);
  if (!job->run_network)
    return TRUE;
  if (job->stab.strength > 0.0f && !nf_cuda_steps_stabilize (c->steps, be, &job->stab, x,
          job->shape, w, h, job->x_to_levels, *y, *ys, job->scale, y, error))
    return FALSE;
  if (job->preserve_color && !nf_cuda_steps_preserve_color (c->steps, be, *y, *ys, x,
          job->shape, w, h, job->color_xm, job->color_xb, job->kr, job->kb, y, error))
    return FALSE;
  return TRUE;
}

static void
yuv_of (const NfYuvMatrix * m, NfCudaYuv * y)
{
  y->kr = m->kr;
  y->kb = m->kb;
  y->y_off = m->y_off;
  y->y_scale = m->y_scale;
  y->c_off = m->c_off;
  y->c_scale = m->c_scale;
}

gboolean
nf_gst_cuda_process (NfGstCuda * c, const NfGstCudaJob * job, GstBuffer * in,
    GstBuffer * out, GError ** error)
{
  GstCudaContext *ctx = GST_CUDA_CONTEXT (job->ctx);
  GstVideoFrame inf, outf;
  gboolean in_mapped = FALSE, out_mapped = FALSE, ok = FALSE;
  gboolean in_dev = buffer_in_context (in, ctx), out_dev = buffer_in_context (out, ctx);
  NfCudaFrame src, dst;
  NfCudaYuv yin, yout;
  NfBackend *be = job->backend;
  void *x = nf_engine_input_buffer (job->engine);

  if (!gst_cuda_context_push (ctx)) {
    g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_FAILED,
        "the CUDA context could not be made current");
    return FALSE;
  }
  if (!gst_video_frame_map (&inf, (GstVideoInfo *) job->in_info, in,
          GST_MAP_READ | (in_dev ? GST_MAP_CUDA : 0))) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "the input buffer cannot be mapped");
    goto done;
  }
  in_mapped = TRUE;
  if (!gst_video_frame_map (&outf, (GstVideoInfo *) job->out_info, out,
          GST_MAP_WRITE | (out_dev ? GST_MAP_CUDA : 0))) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "the output buffer cannot be mapped");
    goto done;
  }
  out_mapped = TRUE;
  GST_LOG ("input in %s memory, output in %s memory", in_dev ? "CUDA" : "host",
      out_dev ? "CUDA" : "host");
  /* the frames are read and written on the backend's stream, not on theirs */
  if (in_dev)
    sync_cuda_memories (in);
  if (out_dev)
    sync_cuda_memories (out);

  yuv_of (job->yuv_in, &yin);
  yuv_of (job->yuv_out, &yout);
  if (!frame_to_device (c, job, &inf, in_dev, TRUE, &src, error)
      || !frame_to_device (c, job, &outf, out_dev, FALSE, &dst, error))
    goto done;
  if (!nf_cuda_frame_to_tensor (be, &src, &yin, x, job->shape, job->in_scale,
          job->in_offset, error))
    goto done;
  if (job->run_network && !nf_engine_run (job->engine, error))
    goto done;
  const void *y = job->run_network ? nf_engine_output_buffer (job->engine) : x;
  NfShape ys = job->run_network ? nf_engine_output_shape (job->engine) : job->shape;
  if (!frame_steps (c, job, x, src.width, src.height, &y, &ys, error))
    goto done;
  gboolean blend = job->xa != 0.0f;
  if (!nf_cuda_tensor_to_frame (be, y, ys, blend ? x : NULL, job->shape, job->ya,
          blend ? job->xa : 0.0f, job->b, nf_cuda_pixel_format_has_alpha (src.format)
          ? &src : NULL, job->scale, &yout, &dst, error))
    goto done;
  if (job->run_network && job->chroma_copy && !copy_chroma (job, &src, &dst, error))
    goto done;
  ok = out_dev ? be->iface->synchronize (be, error)
      : frame_from_device (c, job, &outf, &dst, error);
  if (ok && !in_dev)           /* the staged input must not be rewritten while in use */
    ok = be->iface->synchronize (be, error);

done:
  if (out_mapped)
    gst_video_frame_unmap (&outf);
  if (in_mapped)
    gst_video_frame_unmap (&inf);
  gst_cuda_context_pop (NULL);
  return ok;
}
