/* test-nf-run-styles.c — nf-run's --style and --style-mix on a multi-style model, run as
 * the tool (its path is argv[1]) on models and images made here.
 *
 * The model: x -> 1x1 conv (4) -> cond_instance_norm (4 channels, 3 styles: starry_night,
 * great_wave, the_scream) -> 1x1 conv (identity on the first 3 channels). Each style has
 * its own scale and shift rows, so:
 *   - on a frame of one colour instance norm gives exactly the shift: 100, 60, 200 per
 *     style (every channel), and a mix their weighted sum;
 *   - on a textured image the styles' outputs differ, and the output is affine in the
 *     mix (before the 8-bit rounding; the values stay inside 0..255).
 * Checks:
 *   - the default is the first style; --style by name and by index; the styles' outputs
 *     differ on the textured image; --style-mix "NAME:1" (and "INDEX:1") gives exactly
 *     --style NAME's file; a 50/50 mix is within one level of the mean of the two styles
 *     and differs from both; the known values of single styles and of a 0.25/0.75 mix;
 *   - errors (exit 2, a message naming the problem, no output file): an unknown name or
 *     index in --style and --style-mix, malformed mixes (no weight, a weight that is not a
 *     number, an empty entry, a style named twice), both options at once, and either
 *     option with a model of one style (which runs without them).
 * Does not: the op's arithmetic (test-condnorm.c), the element (test-condnorm-gst.c).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "nf-graph.h"
#include "nf-image.h"
#include "nf-model.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static const char *nf_run;
static char *dir, *m_multi, *m_single, *flat_png, *tex_png;

#define TW 20
#define TH 14

/* ---- fixtures ---------------------------------------------------------------------------- */

static const char *graph_json =
    "{\"input\": \"x\", \"output\": \"y\", \"ops\": ["
    "{\"op\": \"conv2d\", \"name\": \"c1\", \"in\": \"x\", \"out\": \"c1\", \"k\": 1, "
    "\"cin\": 3, \"cout\": 4},"
    "{\"op\": \"%s\", \"name\": \"n1\", \"in\": \"c1\", \"out\": \"n1\", \"c\": 4%s},"
    "{\"op\": \"conv2d\", \"name\": \"c2\", \"in\": \"n1\", \"out\": \"y\", \"k\": 1, "
    "\"cin\": 4, \"cout\": 3}]}";

static const float shift[3] = { 100.0f, 60.0f, 200.0f };
static const float scale[3][4] = { {18, -12, 9, 5}, {-8, 15, 14, 3}, {6, 7, -16, 11} };

static char *
make_model (gboolean multi)
{
  GError *e = NULL;
  char *json = g_strdup_printf (graph_json, multi ? "cond_instance_norm" : "instance_norm",
      multi ? ", \"styles\": 3" : ", \"affine\": true");
  NfGraph *g = nf_graph_from_json (json, &e);
  g_free (json);
  if (!g)
    g_error ("graph: %s", e->message);
  NfModel *m = nf_model_new_for_graph (g, NF_TASK_STYLE, 1, &e);
  nf_graph_free (g);
  if (!m)
    g_error ("model: %s", e->message);
  NfModelTensor *c1 = nf_model_tensor (m, "c1.weight"), *c2 = nf_model_tensor (m, "c2.weight");
  static const float w1[12] = { 0.6f, -0.3f, 0.2f, 0.1f, 0.5f, -0.4f, -0.2f, 0.3f, 0.7f,
    0.4f, 0.4f, -0.5f
  };
  memcpy (c1->data, w1, sizeof w1);
  memset (c2->data, 0, 12 * sizeof (float));
  for (int k = 0; k < 3; k++)
    c2->data[k * 4 + k] = 1.0f; /* y_k = n1_k */
  NfModelTensor *w = nf_model_tensor (m, "n1.weight"), *b = nf_model_tensor (m, "n1.bias");
  for (int s = 0; s < (multi ? 3 : 1); s++)
    for (int c = 0; c < 4; c++) {
      w->data[s * 4 + c] = multi ? scale[s][c] : 10.0f;
      b->data[s * 4 + c] = multi ? shift[s] : 50.0f;
    }
  if (!nf_model_bind (m, &e))
    g_error ("bind: %s", e->message);
  if (multi) {
    const char *names[] = { "starry_night", "great_wave", "the_scream", NULL };
    if (!nf_model_set_style_names (m, names, &e))
      g_error ("names: %s", e->message);
  }
  char *path = g_build_filename (dir, multi ? "multi.safetensors" : "single.safetensors", NULL);
  if (!nf_model_save (m, path, NF_DTYPE_F32, &e))
    g_error ("saving %s: %s", path, e->message);
  nf_model_free (m);
  return path;
}

static char *
make_image (const char *name, gboolean flat)
{
  NfImage *img = nf_image_new (TW, TH);
  for (int y = 0; y < TH; y++)
    for (int x = 0; x < TW; x++)
      for (int c = 0; c < 3; c++)
        img->rgb[((size_t) y * TW + x) * 3 + c] = flat ? (uint8_t) (90 + 20 * c)
            : (uint8_t) (128 + 90 * sin (0.4 * x + 0.9 * c) * cos (0.3 * y - 0.5 * c));
  char *path = g_build_filename (dir, name, NULL);
  GError *e = NULL;
  if (!nf_image_save (img, path, &e))
    g_error ("saving %s: %s", path, e->message);
  nf_image_free (img);
  return path;
}

/* ---- running the tool --------------------------------------------------------------------- */

typedef struct {
  int status;                   /* exit code, -1 when it did not exit */
  char *err;                    /* stderr */
  NfImage *out;                 /* the output image, NULL when none was written */
} Run;

static void
run_clear (Run *r)
{
  g_free (r->err);
  nf_image_free (r->out);
}

/* nf-run -m model -i in -o DIR/out.png, then the given options (NULL-terminated). */
static Run
run (const char *model, const char *in, ...)
{
  Run r = { -1, NULL, NULL };
  char *out = g_build_filename (dir, "out.png", NULL);
  g_unlink (out);
  GPtrArray *argv = g_ptr_array_new ();
  const char *fixed[] = { nf_run, "-m", model, "-i", in, "-o", out };
  for (guint i = 0; i < G_N_ELEMENTS (fixed); i++)
    g_ptr_array_add (argv, (gpointer) fixed[i]);
  va_list ap;
  va_start (ap, in);
  for (const char *a; (a = va_arg (ap, const char *));)
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  GError *e = NULL;
  int ws = 0;
  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
          NULL, &r.err, &ws, &e)) {
    printf ("FAIL cannot run %s: %s\n", nf_run, e->message);
    failures++;
    g_error_free (e);
  } else if (WIFEXITED (ws)) {
    r.status = WEXITSTATUS (ws);
  }
  if (g_file_test (out, G_FILE_TEST_EXISTS))
    r.out = nf_image_load (out, NULL);
  g_ptr_array_free (argv, TRUE);
  g_free (out);
  return r;
}

/* The output of a run that must succeed (NULL after reporting a failure). */
static NfImage *
run_ok (const char *what, const char *model, const char *in, const char *o1, const char *v1)
{
  Run r = run (model, in, o1, v1, NULL);
  CHECK (r.status == 0 && r.out, "%s: exit %d, stderr: %s", what, r.status, r.err);
  NfImage *img = r.status == 0 ? r.out : NULL;
  if (!img)
    nf_image_free (r.out);
  g_free (r.err);
  return img;
}

static gboolean
same (const NfImage *a, const NfImage *b)
{
  return a && b && a->width == b->width && a->height == b->height
      && memcmp (a->rgb, b->rgb, (size_t) a->width * a->height * 3) == 0;
}

/* Largest |a - b| over the pixels (-1 when either is missing or the sizes differ). */
static int
max_diff (const NfImage *a, const NfImage *b)
{
  if (!a || !b || a->width != b->width || a->height != b->height)
    return -1;
  int d = 0;
  for (size_t i = 0; i < (size_t) a->width * a->height * 3; i++)
    d = MAX (d, abs ((int) a->rgb[i] - (int) b->rgb[i]));
  return d;
}

/* ---- checks ---------------------------------------------------------------------------- */

/* Every value of img within 1 of v. */
static void
check_flat (const char *what, const NfImage *img, double v)
{
  if (!img)
    return;
  int worst = 0;
  for (size_t i = 0; i < (size_t) img->width * img->height * 3; i++)
    worst = MAX (worst, (int) fabs (img->rgb[i] - v));
  CHECK (worst <= 1, "%s: a value %d away from %g", what, worst, v);
}

static void
test_known_values (void)
{
  NfImage *d = run_ok ("flat default", m_multi, flat_png, NULL, NULL);
  NfImage *a = run_ok ("flat starry_night", m_multi, flat_png, "--style", "starry_night");
  NfImage *b = run_ok ("flat 1", m_multi, flat_png, "--style", "1");
  NfImage *c = run_ok ("flat the_scream", m_multi, flat_png, "-s", "the_scream");
  NfImage *x = run_ok ("flat mix", m_multi, flat_png, "--style-mix",
      " great_wave : 0.25 , the_scream:0.75");
  check_flat ("default (first style)", d, shift[0]);
  check_flat ("--style starry_night", a, shift[0]);
  check_flat ("--style 1 (great_wave)", b, shift[1]);
  check_flat ("--style the_scream", c, shift[2]);
  check_flat ("--style-mix great_wave:0.25,the_scream:0.75", x,
      0.25 * shift[1] + 0.75 * shift[2]);
  nf_image_free (d);
  nf_image_free (a);
  nf_image_free (b);
  nf_image_free (c);
  nf_image_free (x);
}

static void
test_textured (void)
{
  static const char *names[3] = { "starry_night", "great_wave", "the_scream" };
  NfImage *s[3];
  for (int i = 0; i < 3; i++)
    s[i] = run_ok (names[i], m_multi, tex_png, "--style", names[i]);
  NfImage *d = run_ok ("default", m_multi, tex_png, NULL, NULL);
  CHECK (same (d, s[0]), "the default is not the first style");
  for (int i = 0; i < 3; i++)
    for (int j = i + 1; j < 3; j++)
      CHECK (max_diff (s[i], s[j]) > 20, "%s and %s: outputs differ by at most %d levels",
          names[i], names[j], max_diff (s[i], s[j]));
  NfImage *one = run_ok ("mix great_wave:1", m_multi, tex_png, "--style-mix", "great_wave:1.0");
  NfImage *idx = run_ok ("mix 2:1", m_multi, tex_png, "--style-mix", "2:1");
  CHECK (same (one, s[1]), "--style-mix great_wave:1.0 differs from --style great_wave "
      "(by up to %d)", max_diff (one, s[1]));
  CHECK (same (idx, s[2]), "--style-mix 2:1 differs from --style the_scream (by up to %d)",
      max_diff (idx, s[2]));
  NfImage *half = run_ok ("mix 50/50", m_multi, tex_png, "--style-mix",
      "starry_night:0.5,the_scream:0.5");
  if (half && s[0] && s[2]) {
    int worst = 0;
    for (size_t i = 0; i < (size_t) TW * TH * 3; i++)
      worst = MAX (worst, (int) ceil (fabs (half->rgb[i] - 0.5 * (s[0]->rgb[i]
                      + s[2]->rgb[i]))));
    CHECK (worst <= 1, "a 50/50 mix is %d levels from the mean of the two styles", worst);
    CHECK (max_diff (half, s[0]) > 10 && max_diff (half, s[2]) > 10,
        "a 50/50 mix is one of its styles");
  }
  for (int i = 0; i < 3; i++)
    nf_image_free (s[i]);
  nf_image_free (d);
  nf_image_free (one);
  nf_image_free (idx);
  nf_image_free (half);
}

/* A run that must fail with exit 2, an error naming `want`, and no output. */
static void
check_refused (const char *model, const char *o1, const char *v1, const char *o2,
    const char *v2, const char *want)
{
  Run r = run (model, tex_png, o1, v1, o2, v2, NULL);
  CHECK (r.status == 2, "%s %s %s %s: exit %d, not 2", o1, v1, o2 ? o2 : "", v2 ? v2 : "",
      r.status);
  CHECK (r.err && strstr (r.err, want), "%s %s: the error does not say \"%s\": %s", o1, v1,
      want, r.err ? r.err : "(none)");
  CHECK (!r.out, "%s %s: an output was written", o1, v1);
  run_clear (&r);
}

static void
test_errors (void)
{
  check_refused (m_multi, "--style", "starry", NULL, NULL,
      "no style \"starry\" (its styles: starry_night, great_wave, the_scream");
  check_refused (m_multi, "--style", "3", NULL, NULL, "no style \"3\"");
  check_refused (m_multi, "--style", "-1", NULL, NULL, "no style \"-1\"");
  check_refused (m_multi, "--style-mix", "starry_night:0.5,wave:0.5", NULL, NULL,
      "no style \"wave\"");
  check_refused (m_multi, "--style-mix", "starry_night", NULL, NULL, "has no weight");
  check_refused (m_multi, "--style-mix", "starry_night:half", NULL, NULL,
      "\"half\" of starry_night is not a finite number");
  check_refused (m_multi, "--style-mix", "starry_night:nan", NULL, NULL, "not a finite");
  check_refused (m_multi, "--style-mix", "starry_night:1,,great_wave:0", NULL, NULL,
      "an empty entry");
  check_refused (m_multi, "--style-mix", ":1", NULL, NULL, "no style name");
  check_refused (m_multi, "--style-mix", "0:0.5,starry_night:0.5", NULL, NULL,
      "named twice");
  check_refused (m_multi, "--style", "great_wave", "--style-mix", "great_wave:1",
      "not both");
  check_refused (m_single, "--style", "starry_night", NULL, NULL, "the model has one style");
  check_refused (m_single, "--style-mix", "0:1", NULL, NULL, "the model has one style");
  NfImage *one = run_ok ("a model of one style", m_single, tex_png, NULL, NULL);
  nf_image_free (one);
}

int
main (int argc, char **argv)
{
  if (argc != 2) {
    fprintf (stderr, "usage: %s PATH-OF-NF-RUN\n", argv[0]);
    return 1;
  }
  nf_run = argv[1];
  GError *e = NULL;
  dir = g_dir_make_tmp ("nf-run-styles-XXXXXX", &e);
  if (!dir)
    g_error ("temporary folder: %s", e->message);
  m_multi = make_model (TRUE);
  m_single = make_model (FALSE);
  flat_png = make_image ("flat.png", TRUE);
  tex_png = make_image ("textured.png", FALSE);

  test_known_values ();
  test_textured ();
  test_errors ();

  const char *files[] = { m_multi, m_single, flat_png, tex_png };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    g_unlink (files[i]);
  char *out = g_build_filename (dir, "out.png", NULL);
  g_unlink (out);
  g_rmdir (dir);
  g_free (out);
  g_free (m_multi);
  g_free (m_single);
  g_free (flat_png);
  g_free (tex_png);
  g_free (dir);
  printf ("%s\n", failures ? "FAILED" : "all nf-run style checks passed");
  return failures ? 1 : 0;
}
