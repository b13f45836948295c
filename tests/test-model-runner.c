/* test-model-runner.c — the elements' model runner (gst/nf-model-runner.c) on its own,
 * with the models of tests/data.
 *
 * Checks: lookup by name through $NEURALFILTER_MODEL_PATH (several folders, the first
 * one wins, ".safetensors" added) and by path, and each lookup error (no model, not
 * found with the places tried, a path is not searched in the folders); loading checks
 * the task; device=cpu, and device=auto picks the CPU exactly when no CUDA backend is
 * built or no GPU is usable (device=cuda is then an error that says so); a model set
 * while streaming is loaded in the background, planned for the last frame size, and
 * only swapped in by nf_model_runner_swap (frames in between still run the old one);
 * of two quick requests only the latest is kept; a damaged, missing or wrong-task model
 * keeps the old one running and is reported through load_failed with its error code,
 * and a restart with it fails; stop installs a loaded but unswapped model; close drops
 * everything; the owner's references are given back.
 * Does not: GStreamer elements or pixel formats (test-gst-elements), GPU frames
 * (tests/gpu).
 */
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gst/gst.h>

#include "nf-model-runner.h"
#include "nf-tensor.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

#define WAIT_US (120 * G_USEC_PER_SEC)

static gchar *data_dir, *tmp_dir;

/* ---- what the runner told its owner ---------------------------------------------- */

typedef struct {
  GMutex lock;
  gint n_loaded;
  gint n_failed;
  GError *failed;               /* the last load_failed error */
  gint n_installed;
  gchar *installed_old, *installed_now;     /* names of the last `installed` */
  gboolean installed_between_frames;
} Events;

static Events ev;

static void
on_loaded (gpointer owner, const NfLoadedModel * m)
{
  g_mutex_lock (&ev.lock);
  ev.n_loaded++;
  g_mutex_unlock (&ev.lock);
}

static void
on_load_failed (gpointer owner, const GError * error)
{
  g_mutex_lock (&ev.lock);
  ev.n_failed++;
  g_clear_error (&ev.failed);
  ev.failed = g_error_copy (error);
  g_mutex_unlock (&ev.lock);
}

static void
on_installed (gpointer owner, const NfLoadedModel * old, const NfLoadedModel * now,
    gboolean between_frames)
{
  g_mutex_lock (&ev.lock);
  ev.n_installed++;
  g_free (ev.installed_old);
  g_free (ev.installed_now);
  ev.installed_old = g_strdup (old ? old->name : NULL);
  ev.installed_now = g_strdup (now ? now->name : NULL);
  ev.installed_between_frames = between_frames;
  g_mutex_unlock (&ev.lock);
}

static const NfRunnerEvents events = { on_loaded, on_load_failed, on_installed };

static void
events_reset (void)
{
  g_mutex_lock (&ev.lock);
  ev.n_loaded = ev.n_failed = ev.n_installed = 0;
  g_clear_error (&ev.failed);
  g_clear_pointer (&ev.installed_old, g_free);
  g_clear_pointer (&ev.installed_now, g_free);
  ev.installed_between_frames = FALSE;
  g_mutex_unlock (&ev.lock);
}

/* ---- helpers ------------------------------------------------------------------------ */

static gchar *
data_file (const gchar * name)
{
  return g_build_filename (data_dir, name, NULL);
}

static NfModelRunner *
runner_new (NfTask task, NfRunnerDevice device, gpointer owner)
{
  NfModelRunner *r = nf_model_runner_new (task, owner, &events, NULL);
  NfDeviceChoice c = { device, NF_RUNNER_PRECISION_AUTO, -1 };
  nf_model_runner_set_device (r, &c);
  events_reset ();
  return r;
}

/* Plans and runs the model in use on a w x h ramp; the output, or NULL. */
static gfloat *
run_frame (NfModelRunner * r, gint w, gint h, NfShape * out_shape)
{
  GError *e = NULL;
  NfShape in;
  gboolean was_planned;

  if (!nf_model_runner_plan (r, w, h, &in, &was_planned, &e)) {
    CHECK (FALSE, "plan %dx%d: %s", w, h, e->message);
    g_error_free (e);
    return NULL;
  }
  NfLoadedModel *m = nf_model_runner_current (r);
  *out_shape = nf_engine_output_shape (m->engine);
  gsize n = nf_shape_numel (in);
  gfloat *x = g_new (gfloat, n), *y = g_new0 (gfloat, nf_shape_numel (*out_shape));
  for (gsize i = 0; i < n; i++)
    x[i] = (gfloat) ((i * 37) % 256);
  if (!nf_model_runner_run_host (r, x, in, y, &e)) {
    CHECK (FALSE, "run: %s", e->message);
    g_clear_error (&e);
    g_clear_pointer (&y, g_free);
  }
  g_free (x);
  return y;
}

static gboolean
same_floats (const gfloat * a, const gfloat * b, NfShape s)
{
  return a && b && memcmp (a, b, nf_shape_numel (s) * sizeof (gfloat)) == 0;
}

/* ---- lookup ------------------------------------------------------------------------ */

static void
expect_found (const gchar * value, const gchar * want)
{
  GError *e = NULL;
  gchar *got = nf_model_find_file (value, "no-weights-dir-here", &e);
  CHECK (got && g_str_equal (got, want), "find \"%s\": got %s, want %s", value,
      got ? got : e->message, want);
  g_free (got);
  g_clear_error (&e);
}

static void
expect_not_found (const gchar * value, gint code, const gchar * mentioned)
{
  GError *e = NULL;
  gchar *got = nf_model_find_file (value, "no-weights-dir-here", &e);
  CHECK (got == NULL, "find \"%s\" gave %s", value ? value : "(null)", got);
  CHECK (g_error_matches (e, NF_RUNNER_ERROR, code), "find \"%s\": code %d, want %d",
      value ? value : "(null)", e ? e->code : -1, code);
  CHECK (e && strstr (e->message, mentioned), "find \"%s\": \"%s\" does not mention %s",
      value ? value : "(null)", e ? e->message : "", mentioned);
  g_free (got);
  g_clear_error (&e);
}

static void
test_lookup (void)
{
  gchar *slim = data_file ("golden-style-slim.safetensors");
  gchar *slim_noext = data_file ("golden-style-slim");
  gchar *shadow = g_build_filename (tmp_dir, "golden-style-full.safetensors", NULL);
  gchar *full = data_file ("golden-style-full.safetensors");
  gchar *path = g_strjoin (G_SEARCHPATH_SEPARATOR_S, tmp_dir, data_dir, NULL);
  gchar *contents;
  gsize len;

  g_setenv ("NEURALFILTER_MODEL_PATH", path, TRUE);
  /* by name, in the second folder, with and without the extension */
  expect_found ("golden-style-slim", slim);
  expect_found ("golden-style-slim.safetensors", slim);
  /* by path, with and without the extension */
  expect_found (slim, slim);
  expect_found (slim_noext, slim);

  /* the first folder wins */
  expect_found ("golden-style-full", full);
  g_file_get_contents (full, &contents, &len, NULL);
  g_file_set_contents (shadow, contents, len, NULL);
  g_free (contents);
  expect_found ("golden-style-full", shadow);
  g_remove (shadow);

  expect_not_found (NULL, NF_RUNNER_ERROR_NO_MODEL, "No model is set");
  expect_not_found ("", NF_RUNNER_ERROR_NO_MODEL, "No model is set");
  /* the error lists the places tried, the weights folder included */
  expect_not_found ("no-such-model", NF_RUNNER_ERROR_NOT_FOUND, tmp_dir);
  expect_not_found ("no-such-model", NF_RUNNER_ERROR_NOT_FOUND, "no-weights-dir-here");
  /* a name with a folder part is a path: not searched in the folders */
  expect_not_found ("nowhere" G_DIR_SEPARATOR_S "golden-style-slim",
      NF_RUNNER_ERROR_NOT_FOUND, "nowhere");

  g_setenv ("NEURALFILTER_MODEL_PATH", data_dir, TRUE);
  g_free (slim);
  g_free (slim_noext);
  g_free (shadow);
  g_free (full);
  g_free (path);
}

/* ---- loading and devices ----------------------------------------------------------- */

/* The backend device=auto must pick on this machine: CUDA exactly when a CUDA backend
 * is built and can be created (a usable GPU). */
/* precision=auto on the CPU: bf16 where it is native, else fp32 */
static const gchar *
expected_cpu_backend (void)
{
  NfBackend *be = nf_backend_new ("cpu-bf16", NULL);
  nf_backend_free (be);
  return be ? "cpu-bf16" : "cpu";
}

static const gchar *
expected_auto_backend (void)
{
  if (nf_backend_lookup ("cuda") == NULL)
    return expected_cpu_backend ();
  NfBackend *be = nf_backend_new ("cuda-fp16", NULL);
  if (!be)
    return expected_cpu_backend ();
  nf_backend_free (be);
  return "cuda-fp16";
}

static void
test_load_and_devices (void)
{
  GError *e = NULL;
  NfModelRunner *r = runner_new (NF_TASK_STYLE, NF_RUNNER_DEVICE_CPU, NULL);
  gchar *slim = data_file ("golden-style-slim.safetensors");

  /* no model set */
  CHECK (!nf_model_runner_ensure (r, &e), "ensure without a model");
  CHECK (g_error_matches (e, NF_RUNNER_ERROR, NF_RUNNER_ERROR_NO_MODEL), "%s",
      e ? e->message : "no error");
  g_clear_error (&e);
  CHECK (nf_model_runner_current (r) == NULL, "a model without a setting");

  /* by name, on the CPU */
  nf_model_runner_set_model (r, "golden-style-slim");
  CHECK (nf_model_runner_ensure (r, &e), "ensure: %s", e ? e->message : "");
  g_clear_error (&e);
  NfLoadedModel *m = nf_model_runner_current (r);
  CHECK (m && g_str_equal (m->path, slim) && g_str_equal (m->name, "golden-style-slim"),
      "loaded %s", m ? m->path : "nothing");
  CHECK (m && g_str_equal (m->backend_name, expected_cpu_backend ()) && m->device_ctx == NULL,
      "device=cpu ran on %s", m ? m->backend_name : "nothing");
  CHECK (ev.n_installed == 1 && ev.installed_old == NULL
      && g_strcmp0 (ev.installed_now, "golden-style-slim") == 0
      && !ev.installed_between_frames, "installed event %d %s -> %s",
      ev.n_installed, ev.installed_old, ev.installed_now);
  /* the same settings again: nothing is reloaded */
  CHECK (nf_model_runner_ensure (r, NULL) && nf_model_runner_current (r) == m
      && ev.n_installed == 1 && ev.n_loaded == 1, "reloaded the same model");

  /* a superres model in a style runner: an error, the model in use stays */
  nf_model_runner_set_model (r, "golden-sr-subpixel-x2");
  CHECK (!nf_model_runner_ensure (r, &e), "a superres model taken for style");
  CHECK (g_error_matches (e, NF_RUNNER_ERROR, NF_RUNNER_ERROR_TASK)
      && strstr (e->message, "superres"), "%s", e ? e->message : "no error");
  g_clear_error (&e);
  CHECK (nf_model_runner_current (r) == m, "the model in use changed");

  /* device=auto: the CPU exactly when CUDA is not usable here */
  const gchar *want = expected_auto_backend ();
  NfDeviceChoice c = { NF_RUNNER_DEVICE_AUTO, NF_RUNNER_PRECISION_AUTO, -1 };
  nf_model_runner_set_device (r, &c);
  nf_model_runner_set_model (r, "golden-style-slim");
  CHECK (nf_model_runner_ensure (r, &e), "auto: %s", e ? e->message : "");
  g_clear_error (&e);
  m = nf_model_runner_current (r);
  CHECK (m && g_str_equal (m->backend_name, want) && m->choice.device == c.device,
      "device=auto ran on %s, want %s", m ? m->backend_name : "nothing", want);
  printf ("device=auto on this machine: %s\n", m ? m->backend_name : "nothing");

  /* precision on the CPU: fp32 is fp32; bf16 is bf16 where native, else fp32 (a warning,
   * not an error) */
  NfDeviceChoice cp = { NF_RUNNER_DEVICE_CPU, NF_RUNNER_PRECISION_FP32, -1 };
  const struct {
    NfRunnerPrecision p;
    gboolean no_bf16;           /* as on a CPU without native bf16 */
    const gchar *want;          /* NULL: expected_cpu_backend () */
  } steps[] = {
    {NF_RUNNER_PRECISION_FP32, FALSE, "cpu"}, {NF_RUNNER_PRECISION_BF16, TRUE, "cpu"},
    {NF_RUNNER_PRECISION_FP32, TRUE, "cpu"}, {NF_RUNNER_PRECISION_BF16, FALSE, NULL},
  };
  for (guint i = 0; i < G_N_ELEMENTS (steps); i++) {
    cp.precision = steps[i].p;
    if (steps[i].no_bf16)
      g_setenv ("NF_CPU_NO_BF16", "1", TRUE);
    nf_model_runner_set_device (r, &cp);
    gboolean ran = nf_model_runner_ensure (r, &e);
    const gchar *w = steps[i].want ? steps[i].want : expected_cpu_backend ();
    m = nf_model_runner_current (r);
    CHECK (ran && m && g_str_equal (m->backend_name, w), "precision=%s%s ran on %s (%s), "
        "want %s", steps[i].p == NF_RUNNER_PRECISION_BF16 ? "bf16" : "fp32",
        steps[i].no_bf16 ? " without native bf16" : "", m ? m->backend_name : "nothing",
        e ? e->message : "", w);
    g_clear_error (&e);
    g_unsetenv ("NF_CPU_NO_BF16");
  }
  nf_model_runner_set_device (r, &c);
  CHECK (nf_model_runner_ensure (r, &e), "auto again: %s", e ? e->message : "");
  g_clear_error (&e);
  m = nf_model_runner_current (r);

  /* device=cuda: an error saying why when CUDA is not usable */
  c.device = NF_RUNNER_DEVICE_CUDA;
  nf_model_runner_set_device (r, &c);
  gboolean ok = nf_model_runner_ensure (r, &e);
  if (g_str_has_prefix (want, "cpu")) {
    CHECK (!ok && g_error_matches (e, NF_RUNNER_ERROR, NF_RUNNER_ERROR_DEVICE)
        && strstr (e->message, "device=cuda"), "device=cuda without CUDA: %s",
        e ? e->message : "accepted");
    CHECK (nf_model_runner_current (r) == m, "the model in use changed");
  } else {
    CHECK (ok && g_str_has_prefix (nf_model_runner_current (r)->backend_name, "cuda"),
        "device=cuda: %s", e ? e->message : nf_model_runner_current (r)->backend_name);
  }
  g_clear_error (&e);

  nf_model_runner_close (r);
  CHECK (nf_model_runner_current (r) == NULL && ev.installed_now == NULL,
      "close kept a model");
  nf_model_runner_free (r);
  g_free (slim);
}

/* ---- background loads and the swap between frames ------------------------------------ */

static void
test_swap_between_frames (GObject * owner)
{
  NfModelRunner *r = runner_new (NF_TASK_STYLE, NF_RUNNER_DEVICE_CPU, owner);
  GError *e = NULL;
  NfShape os_slim, os;
  const gint w = 22, h = 13;    /* odd: padded to the size multiple */

  nf_model_runner_set_model (r, "golden-style-slim");
  CHECK (nf_model_runner_start (r, &e), "start: %s", e ? e->message : "");
  g_clear_error (&e);
  NfLoadedModel *slim = nf_model_runner_current (r);
  gfloat *y_slim = run_frame (r, w, h, &os_slim);

  /* requested while streaming: loaded in the background, not in use yet */
  events_reset ();
  nf_model_runner_set_model (r, "golden-style-full");
  CHECK (nf_model_runner_wait_loads (r, WAIT_US), "background load did not end");
  CHECK (ev.n_loaded == 1 && ev.n_failed == 0 && ev.n_installed == 0,
      "events: %d loaded, %d failed, %d installed", ev.n_loaded, ev.n_failed,
      ev.n_installed);
  CHECK (nf_model_runner_current (r) == slim, "swapped before the frame boundary");
  gfloat *y = run_frame (r, w, h, &os);
  CHECK (same_floats (y, y_slim, os_slim), "a frame after the load ran another model");
  g_free (y);

  /* between two frames */
  CHECK (nf_model_runner_swap (r), "nothing to swap in");
  NfLoadedModel *full = nf_model_runner_current (r);
  CHECK (full && g_str_equal (full->name, "golden-style-full"), "in use: %s",
      full ? full->name : "nothing");
  CHECK (ev.n_installed == 1 && ev.installed_between_frames
      && g_strcmp0 (ev.installed_old, "golden-style-slim") == 0
      && g_strcmp0 (ev.installed_now, "golden-style-full") == 0,
      "installed event %d %s -> %s (between frames %d)", ev.n_installed,
      ev.installed_old, ev.installed_now, ev.installed_between_frames);
  /* planned on the load thread for the last frame size */
  NfShape padded = { 1, 3, (h + full->model->size_multiple - 1)
        / full->model->size_multiple * full->model->size_multiple,
    (w + full->model->size_multiple - 1) / full->model->size_multiple
        * full->model->size_multiple };
  CHECK (nf_engine_is_planned_for (full->engine, padded),
      "the new model was not planned for %dx%d", w, h);
  y = run_frame (r, w, h, &os);
  CHECK (y && !same_floats (y, y_slim, os_slim), "the new model gave the old output");
  g_free (y);
  CHECK (!nf_model_runner_swap (r), "swapped twice");

  /* two quick requests: only the latest is kept */
  events_reset ();
  nf_model_runner_set_model (r, "golden-style-slim");
  nf_model_runner_set_model (r, "golden-transformernet");
  CHECK (nf_model_runner_wait_loads (r, WAIT_US), "background loads did not end");
  CHECK (nf_model_runner_swap (r), "nothing to swap in");
  CHECK (g_str_equal (nf_model_runner_current (r)->name, "golden-transformernet"),
      "in use after two requests: %s", nf_model_runner_current (r)->name);
  CHECK (ev.n_installed == 1, "%d models installed for two requests", ev.n_installed);
  /* ... also when the latest fails: the earlier one is not swapped in */
  events_reset ();
  nf_model_runner_set_model (r, "golden-style-full");
  nf_model_runner_set_model (r, "no-such-model");
  CHECK (nf_model_runner_wait_loads (r, WAIT_US), "background loads did not end");
  CHECK (!nf_model_runner_swap (r) && ev.n_failed == 1
      && g_str_equal (nf_model_runner_current (r)->name, "golden-transformernet"),
      "a superseded load was swapped in: %s", nf_model_runner_current (r)->name);

  /* stop installs a model loaded but not swapped in yet */
  events_reset ();
  nf_model_runner_set_model (r, "golden-style-slim");
  CHECK (nf_model_runner_wait_loads (r, WAIT_US), "background load did not end");
  nf_model_runner_stop (r);
  CHECK (g_str_equal (nf_model_runner_current (r)->name, "golden-style-slim")
      && ev.n_installed == 1 && !ev.installed_between_frames,
      "stop left %s in use", nf_model_runner_current (r)->name);
  /* not streaming: a new setting waits for the next ensure */
  nf_model_runner_set_model (r, "golden-style-full");
  CHECK (nf_model_runner_wait_loads (r, 0) && ev.n_loaded == 1 && !nf_model_runner_swap (r),
      "loaded in the background while stopped");

  nf_model_runner_close (r);
  nf_model_runner_free (r);
  g_free (y_slim);
}

/* A model that cannot be loaded while streaming: the old one keeps running. */
static void
expect_failed_load (NfModelRunner * r, const gchar * value, gint code,
    NfLoadedModel * old, const gfloat * y_old, NfShape os_old)
{
  NfShape os;

  events_reset ();
  nf_model_runner_set_model (r, value);
  CHECK (nf_model_runner_wait_loads (r, WAIT_US), "background load did not end");
  CHECK (ev.n_failed == 1 && g_error_matches (ev.failed, NF_RUNNER_ERROR, code),
      "%s: %d failures, error %s", value, ev.n_failed,
      ev.failed ? ev.failed->message : "none");
  CHECK (!nf_model_runner_swap (r) && nf_model_runner_current (r) == old,
      "%s replaced the model in use", value);
  gfloat *y = run_frame (r, 22, 13, &os);
  CHECK (same_floats (y, y_old, os_old), "%s: the old model does not run as before",
      value);
  g_free (y);
  gchar *setting = nf_model_runner_dup_model (r);
  CHECK (g_strcmp0 (setting, value) == 0, "the setting is %s, not %s", setting, value);
  g_free (setting);
}

static void
test_bad_model_keeps_old (void)
{
  NfModelRunner *r = runner_new (NF_TASK_STYLE, NF_RUNNER_DEVICE_CPU, NULL);
  GError *e = NULL;
  gchar *src = data_file ("golden-style-slim.safetensors");
  gchar *damaged = g_build_filename (tmp_dir, "damaged.safetensors", NULL);
  gchar *contents;
  gsize len;
  NfShape os;

  g_file_get_contents (src, &contents, &len, NULL);
  g_file_set_contents (damaged, contents, len / 2, NULL);
  g_free (contents);

  nf_model_runner_set_model (r, "golden-style-slim");
  CHECK (nf_model_runner_start (r, &e), "start: %s", e ? e->message : "");
  g_clear_error (&e);
  NfLoadedModel *old = nf_model_runner_current (r);
  gfloat *y_old = run_frame (r, 22, 13, &os);

  expect_failed_load (r, damaged, NF_RUNNER_ERROR_LOAD, old, y_old, os);
  CHECK (ev.failed && strstr (ev.failed->message, damaged), "error does not name %s",
      damaged);
  expect_failed_load (r, "no-such-model", NF_RUNNER_ERROR_NOT_FOUND, old, y_old, os);
  expect_failed_load (r, "golden-sr-subpixel-x2", NF_RUNNER_ERROR_TASK, old, y_old, os);

  /* a restart with the bad setting is an error (and keeps the old model) */
  nf_model_runner_stop (r);
  CHECK (!nf_model_runner_start (r, &e), "restarted with a wrong-task model");
  CHECK (g_error_matches (e, NF_RUNNER_ERROR, NF_RUNNER_ERROR_TASK), "restart: %s",
      e ? e->message : "no error");
  g_clear_error (&e);
  CHECK (nf_model_runner_current (r) == old, "the model in use changed");

  nf_model_runner_free (r);
  g_remove (damaged);
  g_free (damaged);
  g_free (src);
  g_free (y_old);
}

int
main (void)
{
  const gchar *d = g_getenv ("NF_TEST_DATA");
  GError *e = NULL;

  gst_init (NULL, NULL);
  g_mutex_init (&ev.lock);
  data_dir = g_strdup (d && *d ? d : NF_TEST_DATA);
  tmp_dir = g_dir_make_tmp ("nf-runner-XXXXXX", &e);
  if (!tmp_dir) {
    printf ("FAIL no temporary folder: %s\n", e->message);
    return 1;
  }
  g_setenv ("NEURALFILTER_MODEL_PATH", data_dir, TRUE);

  GObject *owner = g_object_new (G_TYPE_OBJECT, NULL);
  test_lookup ();
  test_load_and_devices ();
  test_swap_between_frames (owner);
  test_bad_model_keeps_old ();
  CHECK (owner->ref_count == 1, "the owner has %u references left", owner->ref_count);
  g_object_unref (owner);

  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  g_free (data_dir);
  events_reset ();
  if (failures)
    printf ("%d failures\n", failures);
  else
    printf ("all model runner checks passed\n");
  return failures ? 1 : 0;
}
