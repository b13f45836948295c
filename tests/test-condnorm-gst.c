/* test-condnorm-gst.c — neuralstyle's style, style-mix and style-position properties
 * with a multi-style model, through GstHarness (the element PLAYING all along).
 *
 * The models are made here: x -> 1x1 conv (4) -> cond_instance_norm (4 channels, 3
 * styles: starry_night, great_wave, the_scream) -> 1x1 conv (identity on the first 3
 * channels). On a frame of one colour instance norm gives exactly its shift, so the
 * output is a known value per style: 100, 60, 200, and any mix their weighted sum. A
 * single-style twin (instance_norm, shift 50) stands for the models of one style.
 * Checks, one frame out for every frame in (none dropped):
 *   - the default (the first style), style by name and by index, style-mix blends,
 *     style-position between neighbours, clearing back to the default, the values read
 *     back as set;
 *   - style-position animated by a GstInterpolationControlSource (linear, frame
 *     timestamps), and style-mix by a control binding of strings (the string properties
 *     are controllable too);
 *   - bad values (malformed mixes, a mix in style, an unknown name, a style the model does
 *     not have): a WARNING each, once, and the previous mix stays;
 *   - all with the element's default stabilize (0.8) on still frames: a new mix starts
 *     the stabilisation afresh, or the values would fade from the old style's;
 *   - a model of one style ignores the settings with one warning; swapped for the
 *     multi-style model while PLAYING, the setting applies to it at once.
 * Does not: the op's arithmetic (test-condnorm.c) or the CUDA path.
 */
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/controller/gstdirectcontrolbinding.h>
#include <gst/controller/gstinterpolationcontrolsource.h>

#include "nf-graph.h"
#include "nf-model.h"

static gchar *model_dir, *m_multi, *m_single;

#define W 8
#define H 8
#define CAPS "video/x-raw,format=RGBx,width=8,height=8,framerate=30/1"

/* ---- models ------------------------------------------------------------------------------ */

static const gchar *graph_json =
    "{\"input\": \"x\", \"output\": \"y\", \"ops\": ["
    "{\"op\": \"conv2d\", \"name\": \"c1\", \"in\": \"x\", \"out\": \"c1\", \"k\": 1, "
    "\"cin\": 3, \"cout\": 4},"
    "{\"op\": \"%s\", \"name\": \"n1\", \"in\": \"c1\", \"out\": \"n1\", \"c\": 4%s},"
    "{\"op\": \"conv2d\", \"name\": \"c2\", \"in\": \"n1\", \"out\": \"y\", \"k\": 1, "
    "\"cin\": 4, \"cout\": 3}]}";

static const float shift[3] = { 100.0f, 60.0f, 200.0f };

static gchar *
make_model (gboolean multi)
{
  GError *e = NULL;
  gchar *json = g_strdup_printf (graph_json, multi ? "cond_instance_norm" : "instance_norm",
      multi ? ", \"styles\": 3" : "");
  NfGraph *g = nf_graph_from_json (json, &e);
  g_free (json);
  if (!g)
    g_error ("graph: %s", e->message);
  NfModel *m = nf_model_new_for_graph (g, NF_TASK_STYLE, 1, &e);
  nf_graph_free (g);
  if (!m)
    g_error ("model: %s", e->message);
  NfModelTensor *c1 = nf_model_tensor (m, "c1.weight"), *c2 = nf_model_tensor (m, "c2.weight");
  for (int i = 0; i < 12; i++)
    c1->data[i] = 0.01f * (i + 1);
  memset (c2->data, 0, 12 * sizeof (float));
  for (int k = 0; k < 3; k++)
    c2->data[k * 4 + k] = 1.0f;   /* y_k = n1_k */
  NfModelTensor *b = nf_model_tensor (m, "n1.bias");
  for (int s = 0; s < (multi ? 3 : 1); s++)
    for (int c = 0; c < 4; c++)
      b->data[s * 4 + c] = multi ? shift[s] : 50.0f;
  nf_model_bind (m, NULL);
  if (multi) {
    const char *names[] = { "starry_night", "great_wave", "the_scream", NULL };
    if (!nf_model_set_style_names (m, names, &e))
      g_error ("names: %s", e->message);
  }
  gchar *path = g_build_filename (model_dir, multi ? "multi.safetensors"
      : "single.safetensors", NULL);
  if (!nf_model_save (m, path, NF_DTYPE_F32, &e))
    g_error ("saving %s: %s", path, e->message);
  nf_model_free (m);
  return path;
}

/* ---- helpers --------------------------------------------------------------------------- */

typedef struct {
  GstHarness *h;
  GstBus *bus;
  guint64 n;                    /* frames pushed */
} Fx;

static void
fx_init (Fx * f, const gchar * model)
{
  GstElement *e = gst_element_factory_make ("neuralstyle", NULL);
  fail_unless (e != NULL);
  g_object_set (e, "model", model, NULL);
  gst_util_set_object_arg (G_OBJECT (e), "precision", "fp32");
  f->h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  f->bus = gst_bus_new ();
  gst_element_set_bus (f->h->element, f->bus);
  gst_harness_set_src_caps_str (f->h, CAPS);
  f->n = 0;
}

static void
fx_clear (Fx * f)
{
  gst_element_set_bus (f->h->element, NULL);
  gst_object_unref (f->bus);
  gst_harness_teardown (f->h);
}

/* Pushes a grey frame at n/30 s and returns the output's R value (all pixels and
 * channels must agree: a frame of one colour). */
static gint
push (Fx * f)
{
  GstBuffer *in = gst_buffer_new_allocate (NULL, W * H * 4, NULL);
  gst_buffer_memset (in, 0, 128, W * H * 4);
  GST_BUFFER_PTS (in) = gst_util_uint64_scale (f->n, GST_SECOND, 30);
  GST_BUFFER_DURATION (in) = GST_SECOND / 30;
  f->n++;
  GstBuffer *out = gst_harness_push_and_pull (f->h, in);
  fail_unless (out != NULL, "no output for frame %" G_GUINT64_FORMAT, f->n - 1);
  GstMapInfo map;
  gst_buffer_map (out, &map, GST_MAP_READ);
  gint v = map.data[0];
  for (gsize i = 0; i < map.size; i++)
    if (i % 4 != 3)
      fail_unless (abs (map.data[i] - v) <= 1, "a frame of one colour came out uneven");
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  return v;
}

/* The next frame's value is v (within 1). */
#define EXPECT(f, v) do { gint got_ = push (f); \
    fail_unless (abs (got_ - (gint) lrint (v)) <= 1, "frame %" G_GUINT64_FORMAT \
        ": %d, expected %g", (f)->n - 1, got_, (double) (v)); } while (0)

/* WARNING messages waiting on the bus; the first's text into *text (g_free) if asked. */
static gint
warnings (Fx * f, gchar ** text)
{
  gint n = 0;
  GstMessage *m;
  while ((m = gst_bus_pop_filtered (f->bus, GST_MESSAGE_WARNING | GST_MESSAGE_ERROR))) {
    fail_unless (GST_MESSAGE_TYPE (m) == GST_MESSAGE_WARNING, "an ERROR message");
    GError *e;
    gst_message_parse_warning (m, &e, NULL);
    GST_INFO ("warning: %s", e->message);
    if (n == 0 && text)
      *text = g_strdup (e->message);
    g_error_free (e);
    gst_message_unref (m);
    n++;
  }
  return n;
}

/* ---- tests ---------------------------------------------------------------------------------- */

GST_START_TEST (test_settings)
{
  Fx f;
  fx_init (&f, m_multi);
  EXPECT (&f, shift[0]);        /* the default: the first style */
  g_object_set (f.h->element, "style", "great_wave", NULL);
  EXPECT (&f, shift[1]);        /* the very next frame */
  g_object_set (f.h->element, "style", "2", NULL);
  EXPECT (&f, shift[2]);
  g_object_set (f.h->element, "style-mix", "starry_night:0.5, great_wave:0.5", NULL);
  EXPECT (&f, 0.5 * shift[0] + 0.5 * shift[1]);
  g_object_set (f.h->element, "style-mix", "the_scream:0.25,0:0.75", NULL);
  EXPECT (&f, 0.25 * shift[2] + 0.75 * shift[0]);
  g_object_set (f.h->element, "style-mix", "great_wave:1.5,starry_night:-0.5", NULL);
  EXPECT (&f, 1.5 * shift[1] - 0.5 * shift[0]);         /* as given: extrapolates */
  g_object_set (f.h->element, "style-position", 1.5, NULL);
  EXPECT (&f, 0.5 * shift[1] + 0.5 * shift[2]);
  g_object_set (f.h->element, "style-position", 0.25, NULL);
  EXPECT (&f, 0.75 * shift[0] + 0.25 * shift[1]);
  g_object_set (f.h->element, "style-position", 7.0, NULL);
  EXPECT (&f, shift[2]);        /* clamped to the last */
  gchar *style, *mix;
  gdouble pos;
  g_object_get (f.h->element, "style", &style, "style-mix", &mix, "style-position", &pos,
      NULL);
  fail_unless (g_strcmp0 (style, "2") == 0 && g_strcmp0 (mix,
          "great_wave:1.5,starry_night:-0.5") == 0 && pos == 7.0, "read back %s, %s, %g",
      style, mix, pos);
  g_free (style);
  g_free (mix);
  g_object_set (f.h->element, "style-position", -1.0, NULL);
  EXPECT (&f, shift[0]);        /* cleared: the default */
  g_object_set (f.h->element, "style", "the_scream", NULL);
  EXPECT (&f, shift[2]);
  fail_unless_equals_int (warnings (&f, NULL), 0);
  fx_clear (&f);
}

GST_END_TEST;

GST_START_TEST (test_bad_values)
{
  Fx f;
  fx_init (&f, m_multi);
  g_object_set (f.h->element, "style-mix", "starry_night:0.5,great_wave:0.5", NULL);
  EXPECT (&f, 80);
  const gchar *bad_mix[] = { "starry_night:abc", "starry_night", "great_wave:0.5,,a:1",
    ":0.5", "a:1,a:2", "great_wave:nan", "great_wave:inf"
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad_mix); i++) {
    gchar *text = NULL;
    g_object_set (f.h->element, "style-mix", bad_mix[i], NULL);
    fail_unless_equals_int (warnings (&f, &text), 1);
    fail_unless (strstr (text, "style-mix") && strstr (text, "previous"), "%s", text);
    g_free (text);
    EXPECT (&f, 80);            /* the previous mix stays */
  }
  gchar *mix;
  g_object_get (f.h->element, "style-mix", &mix, NULL);
  fail_unless_equals_string (mix, "starry_night:0.5,great_wave:0.5");
  g_free (mix);
  g_object_set (f.h->element, "style", "a:1", NULL);
  fail_unless_equals_int (warnings (&f, NULL), 1);
  EXPECT (&f, 80);

  /* names the model lacks: one warning at the frame that finds out, the mix stays */
  const struct {
    const gchar *prop, *value;
  } unknown[] = { {"style-mix", "mona_lisa:1"}, {"style", "mona_lisa"}, {"style", "3"},
  {"style-mix", "great_wave:0.5,1:0.5"}
  };
  for (guint i = 0; i < G_N_ELEMENTS (unknown); i++) {
    gchar *text = NULL;
    g_object_set (f.h->element, unknown[i].prop, unknown[i].value, NULL);
    fail_unless_equals_int (warnings (&f, NULL), 0);
    for (int k = 0; k < 3; k++)
      EXPECT (&f, 80);
    fail_unless_equals_int (warnings (&f, &text), 1);
    fail_unless (strstr (text, "starry_night") || strstr (text, "twice"), "%s", text);
    g_free (text);
  }
  g_object_set (f.h->element, "style", "great_wave", NULL);
  EXPECT (&f, shift[1]);
  fail_unless_equals_int (warnings (&f, NULL), 0);
  fx_clear (&f);
}

GST_END_TEST;

GST_START_TEST (test_single_style_model)
{
  Fx f;
  fx_init (&f, m_single);
  EXPECT (&f, 50);
  g_object_set (f.h->element, "style-mix", "starry_night:0.5,great_wave:0.5", NULL);
  gchar *text = NULL;
  for (int k = 0; k < 4; k++)
    EXPECT (&f, 50);
  fail_unless_equals_int (warnings (&f, &text), 1);
  fail_unless (strstr (text, "one style") != NULL, "%s", text);
  g_free (text);
  /* other values (an animated style-position) on the same model: no more warnings */
  for (int k = 0; k < 4; k++) {
    g_object_set (f.h->element, "style-position", 0.5 * k, NULL);
    EXPECT (&f, 50);
  }
  fail_unless_equals_int (warnings (&f, NULL), 0);
  /* to the multi-style model while PLAYING: the setting applies to it */
  g_object_set (f.h->element, "model", m_multi, NULL);
  gint v = 50;
  for (int k = 0; k < 500 && v == 50; k++) {
    v = push (&f);
    if (v == 50)
      g_usleep (10000);
  }
  /* the last setting, style-position 1.5: great_wave and the_scream half each */
  fail_unless (abs (v - 130) <= 1, "after the swap: %d", v);
  fail_unless_equals_int (warnings (&f, NULL), 0);
  fx_clear (&f);
}

GST_END_TEST;

/* style-position from a linear interpolation source: 0 at 0 s to 2 at 2 s. */
GST_START_TEST (test_controller_position)
{
  Fx f;
  fx_init (&f, m_multi);
  GstControlSource *cs = gst_interpolation_control_source_new ();
  g_object_set (cs, "mode", GST_INTERPOLATION_MODE_LINEAR, NULL);
  GstTimedValueControlSource *tv = GST_TIMED_VALUE_CONTROL_SOURCE (cs);
  /* direct bindings map 0..1 onto the property's range -1..1024 */
  gst_timed_value_control_source_set (tv, 0, (0.0 + 1.0) / 1025.0);
  gst_timed_value_control_source_set (tv, 2 * GST_SECOND, (2.0 + 1.0) / 1025.0);
  fail_unless (gst_object_add_control_binding (GST_OBJECT (f.h->element),
          gst_direct_control_binding_new (GST_OBJECT (f.h->element), "style-position", cs)));
  for (int i = 0; i <= 60; i++) {
    gdouble p = i / 30.0;       /* the position at this frame's time */
    gint k = MIN ((gint) floor (p), 1);
    gdouble fr = p - k;
    EXPECT (&f, (1 - fr) * shift[k] + fr * shift[k + 1]);
  }
  fail_unless_equals_int (warnings (&f, NULL), 0);
  gst_object_unref (cs);
  fx_clear (&f);
}

GST_END_TEST;

/* A control binding of strings for style-mix: a new mix every 10 frames. */
typedef struct {
  GstControlBinding parent;
} StrBinding;
typedef struct {
  GstControlBindingClass parent_class;
} StrBindingClass;

G_DEFINE_TYPE (StrBinding, str_binding, GST_TYPE_CONTROL_BINDING);

static const gchar *const timed_mixes[] = { "starry_night:1", "great_wave:1",
  "starry_night:0.5,the_scream:0.5", "great_wave:0.25,the_scream:0.75"
};

static const gchar *
mix_at (GstClockTime t)
{
  /* frame n is at n/30 s, truncated to ns: round back to n, ten frames per mix */
  return timed_mixes[MIN (gst_util_uint64_scale_round (t, 30, GST_SECOND) / 10, 3)];
}

static gboolean
str_binding_sync (GstControlBinding * b, GstObject * object, GstClockTime t,
    GstClockTime last)
{
  g_object_set (object, b->name, mix_at (t), NULL);
  return TRUE;
}

static GValue *
str_binding_value (GstControlBinding * b, GstClockTime t)
{
  GValue *v = g_new0 (GValue, 1);
  g_value_init (v, G_TYPE_STRING);
  g_value_set_string (v, mix_at (t));
  return v;
}

static void
str_binding_class_init (StrBindingClass * k)
{
  GST_CONTROL_BINDING_CLASS (k)->sync_values = str_binding_sync;
  GST_CONTROL_BINDING_CLASS (k)->get_value = str_binding_value;
}

static void
str_binding_init (StrBinding * b)
{
}

GST_START_TEST (test_controller_mix)
{
  Fx f;
  fx_init (&f, m_multi);
  GstControlBinding *b = g_object_new (str_binding_get_type (), "object", f.h->element,
      "name", "style-mix", NULL);
  fail_unless (gst_object_add_control_binding (GST_OBJECT (f.h->element), b),
      "style-mix is not controllable");
  const gdouble want[4] = { shift[0], shift[1], 0.5 * shift[0] + 0.5 * shift[2],
    0.25 * shift[1] + 0.75 * shift[2]
  };
  for (int i = 0; i < 40; i++)
    EXPECT (&f, want[MIN (i / 10, 3)]);
  fail_unless_equals_int (warnings (&f, NULL), 0);
  fx_clear (&f);
}

GST_END_TEST;

static Suite *
condnorm_gst_suite (void)
{
  Suite *s = suite_create ("condnorm-gst");
  TCase *tc = tcase_create ("style-mix");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_settings);
  tcase_add_test (tc, test_bad_values);
  tcase_add_test (tc, test_single_style_model);
  tcase_add_test (tc, test_controller_position);
  tcase_add_test (tc, test_controller_mix);
  return s;
}

int
main (int argc, char **argv)
{
  model_dir = g_dir_make_tmp ("nf-condnorm-gst-XXXXXX", NULL);
  g_assert (model_dir != NULL);
  m_multi = make_model (TRUE);
  m_single = make_model (FALSE);
  gst_check_init (&argc, &argv);
  GstPluginFeature *feat = gst_registry_lookup_feature (gst_registry_get (), "neuralstyle");
  int failed = 1;
  if (feat) {
    gst_object_unref (feat);
    failed = gst_check_run_suite (condnorm_gst_suite (), "condnorm-gst", __FILE__);
  } else {
    g_printerr ("the neuralfilter plugin was not found: set GST_PLUGIN_PATH_1_0 to the "
        "build's gst/ folder (meson test does)\n");
  }
  g_unlink (m_multi);
  g_unlink (m_single);
  g_rmdir (model_dir);
  g_free (m_multi);
  g_free (m_single);
  g_free (model_dir);
  return failed;
}
