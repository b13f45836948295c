/* test-gpu-elements.c — neuralstyle and superres on the GPU, with the plugin loaded from
 * the build tree (GST_PLUGIN_PATH_1_0).
 *
 * Models made here: an exact identity (1x1 conv), a seeded style-slim network and a
 * small seeded sr-subpixel x2 (last convolution scaled so outputs use the 8-bit range). Checks, each against the same pipeline with device=cpu:
 *  - system memory on CUDA (pinned staging): every format through the identity (within
 *    1 level), odd sizes; style-slim and superres within a stated tolerance in fp32 and
 *    fp16 on RGB, BGRA, I420 and NV12, with strength=0.5 (the blend fused into the GPU
 *    conversion) on two of them;
 *  - memory:CUDAMemory in and out through cudaupload/cudadownload (skipped with a
 *    message when nvcodec does not provide them): the element's sink caps must carry
 *    the CUDA feature (zero copy), results as above;
 *  - device=auto posts an INFO message naming the GPU; cuda-device-id beyond the
 *    machine's devices is an error with device=cuda and a CPU fallback with auto;
 *  - nvh264enc ! nvh264dec ! neuralstyle ! nvh264enc, and the sample clip decoded by
 *    nvh264dec, run to EOS without error with CUDA memory between the elements (when
 *    nvh264dec/nvh264enc exist);
 *  - stabilize and preserve-color (nf-cuda-steps.cu) against the CPU path on a clip
 *    made here (a still, noisy background with a square moving over it, read by
 *    filesrc ! rawvideoparse), each option on three of RGB, BGRA, I420 and NV12: fp32,
 *    fp16, and fp32 in CUDA memory (through cudaupload); the clip is first checked to
 *    be one where the options change the output; and stabilize on a panning clip (the
 *    motion search and the moved state, nf-cuda-steps.cu) likewise, first checked to be
 *    one where stabilize-motion changes the output on the CPU.
 * Exit: 0 pass, 1 fail, 77 no usable GPU.
 * Does not: check the network arithmetic beyond the CPU comparison (test-gpu-ops does).
 */
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/check/gstcheck.h>
#include <gst/video/video.h>

#include "nf-arch.h"
#include "nf-backend.h"
#include "nf-cuda.h"
#include "nf-graph.h"
#include "nf-model.h"

static gchar *model_dir, *m_identity, *m_slim, *m_sr2, *clip_raw, *pan_raw;

static gchar *
save_model (NfModel * m, const gchar * name)
{
  GError *e = NULL;
  gchar *path = g_build_filename (model_dir, name, NULL);
  if (!nf_model_save (m, path, NF_DTYPE_F32, &e))
    g_error ("saving %s: %s", path, e->message);
  nf_model_free (m);
  return path;
}

static void
spread (NfModel * m, const gchar * conv, float gain, float offset)
{
  gchar *wk = g_strconcat (conv, ".weight", NULL), *bk = g_strconcat (conv, ".bias", NULL);
  NfModelTensor *w = nf_model_tensor (m, wk), *b = nf_model_tensor (m, bk);
  g_assert (w && b);
  for (size_t i = 0; i < nf_shape_numel (w->shape); i++)
    w->data[i] *= gain;
  for (size_t i = 0; i < nf_shape_numel (b->shape); i++)
    b->data[i] += offset;
  nf_model_bind (m, NULL);
  g_free (wk);
  g_free (bk);
}

static void
make_models (void)
{
  GError *e = NULL;
  NfGraph *g = nf_graph_from_json ("{\"input\":\"x\",\"output\":\"y\",\"ops\":[{\"op\":"
      "\"conv2d\",\"name\":\"conv1\",\"in\":\"x\",\"out\":\"y\",\"k\":1,\"cin\":3,"
      "\"cout\":3}]}", &e);
  g_assert (g);
  NfModel *m = nf_model_new_for_graph (g, NF_TASK_STYLE, 1, &e);
  nf_graph_free (g);
  float *w = nf_model_tensor (m, "conv1.weight")->data;
  for (int i = 0; i < 3; i++)
    w[i * 3 + i] = 1.0f;
  nf_model_bind (m, NULL);
  m_identity = save_model (m, "identity.safetensors");

  /* Seeded networks, their last convolution scaled so that the output spreads over the
   * 8-bit range (seeded weights alone make near-constant frames, a weak comparison). */
  NfArchSpec slim = { "style-slim", 0, 0, 0 };
  m = nf_arch_new_model (&slim, 5, &e);
  spread (m, "deconv3", 100.0f, 128.0f);
  m_slim = save_model (m, "slim.safetensors");
  NfArchSpec sr = { "sr-subpixel", 2, 16, 1 };
  m = nf_arch_new_model (&sr, 6, &e);
  spread (m, "conv_up", 4.0f, 0.5f);
  m_sr2 = save_model (m, "sr2.safetensors");
}

static gboolean
have_element (const gchar * name)
{
  GstElementFactory *f = gst_element_factory_find (name);
  if (f)
    gst_object_unref (f);
  return f != NULL;
}

/* Runs desc (with an appsink named "out", or none) to EOS. Returns the frames pulled
 * (concatenated bytes) or NULL; *msg: the error message text, if one came. Also
 * collects INFO messages' texts into *infos (may be NULL) and the caps of the element
 * named "nf" at its sink pad into *nf_caps (may be NULL). */
static GByteArray *
run (const gchar * desc, gchar ** error, GString * infos, GstCaps ** nf_caps)
{
  GError *e = NULL;
  GstElement *pipe = gst_parse_launch (desc, &e);
  fail_unless (pipe != NULL, "%s: %s", desc, e ? e->message : "");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipe), "out");
  GstElement *nf = gst_bin_get_by_name (GST_BIN (pipe), "nf");
  GByteArray *bytes = g_byte_array_new ();
  GstBus *bus = gst_element_get_bus (pipe);
  *error = NULL;
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  for (;;) {
    if (sink) {
      GstSample *s = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 20 * GST_MSECOND);
      if (s) {
        GstMapInfo map;
        GstBuffer *b = gst_sample_get_buffer (s);
        if (gst_buffer_map (b, &map, GST_MAP_READ)) {
          g_byte_array_append (bytes, map.data, map.size);
          gst_buffer_unmap (b, &map);
        }
        if (nf_caps && !*nf_caps && nf) {
          GstPad *pad = gst_element_get_static_pad (nf, "sink");
          *nf_caps = gst_pad_get_current_caps (pad);
          gst_object_unref (pad);
        }
        gst_sample_unref (s);
        continue;
      }
    }
    GstMessage *m = gst_bus_timed_pop_filtered (bus, sink ? 0 : 100 * GST_MSECOND,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_INFO);
    if (!m)
      continue;
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_INFO) {
      GError *ie;
      gst_message_parse_info (m, &ie, NULL);
      if (infos)
        g_string_append_printf (infos, "%s\n", ie->message);
      g_error_free (ie);
      gst_message_unref (m);
      continue;
    }
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      GError *ee;
      gst_message_parse_error (m, &ee, NULL);
      *error = g_strdup (ee->message);
      g_error_free (ee);
    }
    if (!sink && nf_caps && !*nf_caps && nf) {
      GstPad *pad = gst_element_get_static_pad (nf, "sink");
      *nf_caps = gst_pad_get_current_caps (pad);
      gst_object_unref (pad);
    }
    gst_message_unref (m);
    break;
  }
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (bus);
  if (sink)
    gst_object_unref (sink);
  if (nf)
    gst_object_unref (nf);
  gst_object_unref (pipe);
  if (*error) {
    g_byte_array_unref (bytes);
    return NULL;
  }
  return bytes;
}

/* Compares the GPU pipeline's frames with the CPU one's: max and mean byte difference. */
static void
compare (const gchar * gpu_desc, const gchar * cpu_desc, int max_tol, double mean_tol,
    gboolean want_cuda_caps)
{
  gchar *err = NULL;
  GstCaps *caps = NULL;
  GByteArray *g = run (gpu_desc, &err, NULL, &caps);
  fail_unless (g != NULL, "%s: %s", gpu_desc, err);
  GByteArray *c = run (cpu_desc, &err, NULL, NULL);
  fail_unless (c != NULL, "%s: %s", cpu_desc, err);
  fail_unless (g->len == c->len && g->len > 0, "%s: %u bytes vs %u on the CPU", gpu_desc,
      g->len, c->len);
  int worst = 0;
  double sum = 0;
  for (guint i = 0; i < g->len; i++) {
    int d = abs ((int) g->data[i] - (int) c->data[i]);
    worst = MAX (worst, d);
    sum += d;
  }
  double mean = sum / g->len;
  GST_INFO ("%s: max %d mean %.3f", gpu_desc, worst, mean);
  g_print ("  %-100.100s max %d mean %.3f\n", gpu_desc, worst, mean);
  fail_unless (worst <= max_tol && mean <= mean_tol,
      "%s: max diff %d (tol %d), mean %.3f (tol %.3f) against the CPU", gpu_desc, worst,
      max_tol, mean, mean_tol);
  if (want_cuda_caps) {
    fail_unless (caps != NULL, "%s: no caps on the element", gpu_desc);
    GstCapsFeatures *f = gst_caps_get_features (caps, 0);
    fail_unless (f && gst_caps_features_contains (f, "memory:CUDAMemory"),
        "%s: the element did not get CUDA memory: %" GST_PTR_FORMAT, gpu_desc, caps);
  }
  if (caps)
    gst_caps_unref (caps);
  g_byte_array_unref (g);
  g_byte_array_unref (c);
}

static const gchar *formats[] = { "RGB", "BGR", "RGBx", "BGRx", "xRGB", "RGBA", "BGRA",
  "I420", "NV12"
};

static const gchar *cuda_formats[] = { "RGB", "BGRx", "RGBA", "I420", "NV12" };

#define SRC "videotestsrc num-buffers=3 pattern=ball ! "

GST_START_TEST (test_system_memory)
{
  for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
    const gchar *f = formats[i];
    gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=63,height=37", f);
    gchar *g, *c;
    /* identity: exact up to the rounding the CPU path does too */
    g = g_strdup_printf (SRC "%s ! neuralstyle name=nf model=%s device=cuda precision=fp32 ! "
        "appsink name=out sync=false", caps, m_identity);
    c = g_strdup_printf (SRC "%s ! neuralstyle model=%s device=cpu ! appsink name=out "
        "sync=false", caps, m_identity);
    compare (g, c, 1, 0.01, FALSE);
    g_free (g);
    g_free (c);
    /* the networks on one format of each kind (every plan times cuDNN's algorithms) */
    gboolean nets = g_str_equal (f, "RGB") || g_str_equal (f, "BGRA")
        || g_str_equal (f, "I420") || g_str_equal (f, "NV12");
    const gchar *strength = g_str_equal (f, "BGRA") || g_str_equal (f, "I420") ? "0.5"
        : "1.0";
    for (int fp16 = 0; nets && fp16 < 2; fp16++) {
      g = g_strdup_printf (SRC "%s ! neuralstyle model=%s device=cuda precision=%s "
          "strength=%s ! appsink name=out sync=false", caps, m_slim, fp16 ? "fp16" : "fp32",
          strength);
      c = g_strdup_printf (SRC "%s ! neuralstyle model=%s device=cpu strength=%s ! "
          "appsink name=out sync=false", caps, m_slim, strength);
      compare (g, c, fp16 ? 12 : 2, fp16 ? 1.0 : 0.05, FALSE);
      g_free (g);
      g_free (c);
      g = g_strdup_printf (SRC "%s ! superres model=%s device=cuda precision=%s ! "
          "appsink name=out sync=false", caps, m_sr2, fp16 ? "fp16" : "fp32");
      c = g_strdup_printf (SRC "%s ! superres model=%s device=cpu ! appsink name=out "
          "sync=false", caps, m_sr2);
      compare (g, c, fp16 ? 8 : 2, fp16 ? 0.5 : 0.05, FALSE);
      g_free (g);
      g_free (c);
    }
    g_free (caps);
  }
}

GST_END_TEST;

GST_START_TEST (test_cuda_memory)
{
  if (!have_element ("cudaupload") || !have_element ("cudadownload")) {
    g_print ("  skipped: cudaupload/cudadownload not available\n");
    return;
  }
  for (guint i = 0; i < G_N_ELEMENTS (cuda_formats); i++) {
    gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=65,height=35",
        cuda_formats[i]);
    gchar *g, *c;
    g = g_strdup_printf (SRC "%s ! cudaupload ! video/x-raw(memory:CUDAMemory) ! neuralstyle "
        "name=nf model=%s device=cuda precision=fp32 ! cudadownload ! %s ! appsink name=out "
        "sync=false", caps, m_identity, caps);
    c = g_strdup_printf (SRC "%s ! neuralstyle model=%s device=cpu ! appsink name=out "
        "sync=false", caps, m_identity);
    compare (g, c, 1, 0.01, TRUE);
    g_free (g);
    g_free (c);
    g = g_strdup_printf (SRC "%s ! cudaupload ! neuralstyle name=nf model=%s device=auto "
        "strength=0.7 ! cudadownload ! %s ! appsink name=out sync=false", caps, m_slim, caps);
    c = g_strdup_printf (SRC "%s ! neuralstyle model=%s device=cpu strength=0.7 ! appsink "
        "name=out sync=false", caps, m_slim);
    compare (g, c, 12, 1.0, TRUE);
    g_free (g);
    g_free (c);
    gchar *outcaps = g_strdup_printf ("video/x-raw,format=%s,width=130,height=70",
        cuda_formats[i]);
    g = g_strdup_printf (SRC "%s ! cudaupload ! superres name=nf model=%s device=cuda "
        "precision=fp32 ! cudadownload ! %s ! appsink name=out sync=false", caps, m_sr2,
        outcaps);
    c = g_strdup_printf (SRC "%s ! superres model=%s device=cpu ! appsink name=out "
        "sync=false", caps, m_sr2);
    compare (g, c, 2, 0.05, TRUE);
    g_free (g);
    g_free (c);
    g_free (outcaps);
    g_free (caps);
  }
}

GST_END_TEST;

GST_START_TEST (test_device_selection)
{
  gchar *err = NULL;
  GString *infos = g_string_new (NULL);
  gchar *d = g_strdup_printf (SRC "video/x-raw,width=32,height=24 ! neuralstyle model=%s "
      "device=auto ! fakesink", m_identity);
  GByteArray *b = run (d, &err, infos, NULL);
  fail_unless (b != NULL, "%s: %s", d, err);
  g_byte_array_unref (b);
  g_print ("  bus INFO: %s", infos->str);
  fail_unless (strstr (infos->str, "Running on") != NULL,
      "device=auto did not say which GPU it runs on: \"%s\"", infos->str);
  g_free (d);

  d = g_strdup_printf (SRC "video/x-raw,width=32,height=24 ! neuralstyle model=%s "
      "device=cuda cuda-device-id=4096 ! fakesink", m_identity);
  b = run (d, &err, NULL, NULL);
  fail_unless (b == NULL && err && strstr (err, "device=cuda") != NULL,
      "%s: expected an error naming device=cuda, got %s", d, err);
  g_free (err);
  g_free (d);

  g_string_truncate (infos, 0);
  d = g_strdup_printf (SRC "video/x-raw,width=32,height=24 ! neuralstyle model=%s "
      "device=auto cuda-device-id=4096 ! fakesink", m_identity);
  b = run (d, &err, infos, NULL);
  fail_unless (b != NULL, "%s: the CPU fallback failed: %s", d, err);
  fail_unless (strstr (infos->str, "Running on") == NULL, "%s: %s", d, infos->str);
  g_byte_array_unref (b);
  g_free (d);
  g_string_free (infos, TRUE);
}

GST_END_TEST;

GST_START_TEST (test_nvcodec)
{
  if (!have_element ("nvh264dec") || !have_element ("nvh264enc")) {
    g_print ("  skipped: nvh264dec/nvh264enc not available\n");
    return;
  }
  gchar *err = NULL;
  GstCaps *caps = NULL;
  gchar *d = g_strdup_printf ("videotestsrc num-buffers=30 ! video/x-raw,format=NV12,"
      "width=320,height=240 ! nvh264enc ! h264parse ! nvh264dec ! neuralstyle name=nf "
      "model=%s ! nvh264enc ! h264parse ! fakesink", m_slim);
  GByteArray *b = run (d, &err, NULL, &caps);
  fail_unless (b != NULL, "%s: %s", d, err);
  g_byte_array_unref (b);
  g_print ("  nvh264dec ! neuralstyle caps: %" GST_PTR_FORMAT "\n", caps);
  fail_unless (caps && gst_caps_features_contains (gst_caps_get_features (caps, 0),
          "memory:CUDAMemory"), "no CUDA memory between nvh264dec and neuralstyle");
  gst_caps_unref (caps);
  g_free (d);

  const gchar *clip = g_getenv ("NF_SAMPLE_CLIP");
  if (clip && g_file_test (clip, G_FILE_TEST_IS_REGULAR)) {
    d = g_strdup_printf ("filesrc location=%s ! qtdemux ! h264parse ! nvh264dec ! "
        "neuralstyle model=%s ! nvh264enc ! h264parse ! fakesink", clip, m_slim);
    b = run (d, &err, NULL, NULL);
    fail_unless (b != NULL, "%s: %s", d, err);
    g_byte_array_unref (b);
    g_free (d);
  }
}

GST_END_TEST;

/* ---- stabilize and preserve-color ---------------------------------------------------- */

#define CLIP_W 64
#define CLIP_H 40
#define CLIP_N 12

/* CLIP_N RGB frames: a seeded background with +-2 levels of noise per frame (still for
 * the stabiliser) and a 12-pixel square moving 3 pixels per frame. */
static void
make_clip (void)
{
  gsize frame = (gsize) CLIP_W * CLIP_H * 3;
  guint8 *bytes = g_malloc (frame * CLIP_N), *base = g_malloc (frame);
  GRand *r = g_rand_new_with_seed (11);
  for (gsize i = 0; i < frame; i++)
    base[i] = g_rand_int_range (r, 40, 200);
  for (gint t = 0; t < CLIP_N; t++) {
    guint8 *f = bytes + t * frame;
    for (gsize i = 0; i < frame; i++)
      f[i] = base[i] + g_rand_int_range (r, -2, 3);
    for (gint y = 12; y < 24; y++)
      for (gint x = 4 + 3 * t; x < 16 + 3 * t && x < CLIP_W; x++)
        memset (f + ((gsize) y * CLIP_W + x) * 3, 250, 3);
  }
  clip_raw = g_build_filename (model_dir, "clip.rgb", NULL);
  g_assert (g_file_set_contents (clip_raw, (const gchar *) bytes, frame * CLIP_N, NULL));
  g_rand_free (r);
  g_free (base);
  g_free (bytes);
}

#define PAN_W 160
#define PAN_H 120
#define PAN_N 10
#define PAN_PAD 24

/* PAN_N RGB frames of a camera panning over a seeded random scene: the scene moves 2
 * pixels right and 1 down per frame, +-2 levels of noise per frame (the stabiliser's
 * motion search, nf-stabilize-motion.h, needs frames this large). */
static void
make_pan_clip (void)
{
  gint sw = PAN_W + 2 * PAN_PAD, sh = PAN_H + 2 * PAN_PAD;
  gsize frame = (gsize) PAN_W * PAN_H * 3;
  guint8 *bytes = g_malloc (frame * PAN_N), *scene = g_malloc ((gsize) sw * sh * 3);
  GRand *r = g_rand_new_with_seed (12);
  for (gsize i = 0; i < (gsize) sw * sh * 3; i++)
    scene[i] = g_rand_int_range (r, 40, 200);
  for (gint t = 0; t < PAN_N; t++) {
    guint8 *f = bytes + t * frame;
    gint ox = PAN_PAD - 2 * t, oy = PAN_PAD - t;
    for (gint y = 0; y < PAN_H; y++)
      for (gint x = 0; x < PAN_W * 3; x++)
        f[(gsize) y * PAN_W * 3 + x] = scene[(gsize) (oy + y) * sw * 3 + ox * 3 + x]
            + g_rand_int_range (r, -2, 3);
  }
  pan_raw = g_build_filename (model_dir, "pan.rgb", NULL);
  g_assert (g_file_set_contents (pan_raw, (const gchar *) bytes, frame * PAN_N, NULL));
  g_rand_free (r);
  g_free (scene);
  g_free (bytes);
}

/* A clip (raw RGB w x h frames) as format, through neuralstyle with opts, as in_caps
 * (CUDA memory: through cudaupload/cudadownload). */
static gchar *
raw_pipeline (const gchar * path, gint w, gint h, const gchar * format,
    gboolean cuda_memory, const gchar * opts)
{
  return g_strdup_printf ("filesrc location=%s blocksize=%d ! rawvideoparse format=rgb "
      "width=%d height=%d framerate=30/1 ! videoconvert ! video/x-raw,format=%s ! %s"
      "neuralstyle name=nf model=%s %s ! %svideo/x-raw,format=%s ! appsink name=out "
      "sync=false", path, w * h * 3, w, h, format,
      cuda_memory ? "cudaupload ! " : "", m_slim, opts, cuda_memory ? "cudadownload ! " : "",
      format);
}

static gchar *
clip_pipeline (const gchar * format, gboolean cuda_memory, const gchar * opts)
{
  return raw_pipeline (clip_raw, CLIP_W, CLIP_H, format, cuda_memory, opts);
}

/* Mean byte difference between two runs. */
static double
mean_difference (const gchar * a, const gchar * b)
{
  gchar *err = NULL;
  GByteArray *x = run (a, &err, NULL, NULL);
  fail_unless (x != NULL, "%s: %s", a, err);
  GByteArray *y = run (b, &err, NULL, NULL);
  fail_unless (y != NULL, "%s: %s", b, err);
  fail_unless (x->len == y->len && x->len > 0);
  double sum = 0;
  for (guint i = 0; i < x->len; i++)
    sum += abs ((int) x->data[i] - (int) y->data[i]);
  g_byte_array_unref (x);
  g_byte_array_unref (y);
  return sum / MAX (x->len, 1);
}

GST_START_TEST (test_frame_steps)
{
  if (!have_element ("rawvideoparse")) {
    g_print ("  skipped: rawvideoparse not available\n");
    return;
  }
  static const gchar *steps[] = { "stabilize=0.8", "stabilize=1 preserve-color=true",
    "preserve-color=true strength=0.6"
  };
  /* on the CPU, each option changes this clip's output (else the comparison is empty) */
  for (guint k = 0; k < G_N_ELEMENTS (steps); k++) {
    gchar *opts = g_strdup_printf ("device=cpu precision=fp32 %s", steps[k]);
    gchar *with = clip_pipeline ("RGB", FALSE, opts);
    gchar *without = clip_pipeline ("RGB", FALSE, k == 2 ? "device=cpu precision=fp32 "
        "strength=0.6" : "device=cpu precision=fp32");
    double d = mean_difference (with, without);
    g_print ("  CPU, %s: mean change %.3f\n", steps[k], d);
    fail_unless (d > 0.5, "%s changes the clip's output by %.3f only", steps[k], d);
    g_free (opts);
    g_free (with);
    g_free (without);
  }
  /* each option on three formats: fp32, fp16, fp32 in CUDA memory */
  static const struct {
    guint step;
    const gchar *format;
    int mode;                   /* 0 fp32, 1 fp16, 2 fp32 in CUDA memory */
  } cases[] = {
    {0, "RGB", 0}, {0, "NV12", 1}, {0, "I420", 2},
    {1, "BGRA", 0}, {1, "I420", 1}, {1, "NV12", 2},
    {2, "I420", 0}, {2, "RGB", 1}, {2, "BGRA", 2},
  };
  gboolean cuda_memory_ok = have_element ("cudaupload") && have_element ("cudadownload");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    int mode = cases[i].mode;
    if (mode == 2 && !cuda_memory_ok) {
      g_print ("  skipped in CUDA memory: cudaupload/cudadownload not available\n");
      continue;
    }
    gchar *gopts = g_strdup_printf ("device=cuda precision=%s %s",
        mode == 1 ? "fp16" : "fp32", steps[cases[i].step]);
    gchar *copts = g_strdup_printf ("device=cpu precision=fp32 %s", steps[cases[i].step]);
    gchar *g = clip_pipeline (cases[i].format, mode == 2, gopts);
    gchar *c = clip_pipeline (cases[i].format, FALSE, copts);
    compare (g, c, mode == 1 ? 12 : 3, mode == 1 ? 1.0 : 0.1, mode == 2);
    g_free (gopts);
    g_free (copts);
    g_free (g);
    g_free (c);
  }

  /* stabilize with the camera's motion on the panning clip: on the CPU the motion
   * search changes the output; the GPU's search and moved state give the CPU's */
  gchar *on = raw_pipeline (pan_raw, PAN_W, PAN_H, "RGB", FALSE,
      "device=cpu precision=fp32 stabilize=1");
  gchar *off = raw_pipeline (pan_raw, PAN_W, PAN_H, "RGB", FALSE,
      "device=cpu precision=fp32 stabilize=1 stabilize-motion=false");
  double d = mean_difference (on, off);
  g_print ("  CPU, pan, stabilize=1: stabilize-motion changes the output by %.3f\n", d);
  fail_unless (d > 0.5, "stabilize-motion changes the panning clip's output by %.3f only",
      d);
  g_free (on);
  g_free (off);
  static const struct {
    const gchar *format;
    int mode;
  } pans[] = { {"RGB", 0}, {"NV12", 1}, {"I420", 2} };
  for (guint i = 0; i < G_N_ELEMENTS (pans); i++) {
    int mode = pans[i].mode;
    if (mode == 2 && !cuda_memory_ok)
      continue;
    gchar *gopts = g_strdup_printf ("device=cuda precision=%s stabilize=0.8",
        mode == 1 ? "fp16" : "fp32");
    gchar *g = raw_pipeline (pan_raw, PAN_W, PAN_H, pans[i].format, mode == 2, gopts);
    gchar *c = raw_pipeline (pan_raw, PAN_W, PAN_H, pans[i].format, FALSE,
        "device=cpu precision=fp32 stabilize=0.8");
    compare (g, c, mode == 1 ? 12 : 3, mode == 1 ? 1.0 : 0.1, mode == 2);
    g_free (gopts);
    g_free (g);
    g_free (c);
  }
}

GST_END_TEST;

static Suite *
gpu_elements_suite (void)
{
  Suite *s = suite_create ("gpu-elements");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 240);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_system_memory);
  tcase_add_test (tc, test_cuda_memory);
  tcase_add_test (tc, test_device_selection);
  tcase_add_test (tc, test_nvcodec);
  tcase_add_test (tc, test_frame_steps);
  return s;
}

int
main (int argc, char **argv)
{
  GError *e = NULL;
  if (nf_cuda_device_count (&e) == 0) {
    g_print ("SKIP: no usable GPU: %s\n", e->message);
    g_error_free (e);
    return 77;
  }
  gst_check_init (&argc, &argv);
  model_dir = g_dir_make_tmp ("nf-gpu-elements-XXXXXX", &e);
  g_assert (model_dir);
  make_models ();
  make_clip ();
  make_pan_clip ();
  int failed = gst_check_run_suite (gpu_elements_suite (), "gpu-elements", __FILE__);
  g_unlink (m_identity);
  g_unlink (m_slim);
  g_unlink (m_sr2);
  g_unlink (clip_raw);
  g_unlink (pan_raw);
  g_rmdir (model_dir);
  return failed ? 1 : 0;
}
