/* test-evaluate-styles.c — nf-evaluate's style and flicker tasks on a multi-style model,
 * run as the tool (its path is argv[1]) on fixtures made here: synthetic photos, two
 * synthetic paintings in a stand-in shared data folder (NF_SHARED_DATA/styles, found by
 * the style names), and a seeded random VGG-shaped loss network (no real shared data).
 *
 * The models: x -> 1x1 conv (4) -> cond_instance_norm (2 styles: checker_red,
 * stripes_blue, each with its own scale and shift rows) -> 1x1 conv to 3; and for each
 * style a single-style twin whose instance_norm holds that style's rows (one-hot mixes
 * give exactly the twin's output, test-condnorm.c).
 * Checks:
 *   - `style` on the multi-style model scores every style against its own painting: one
 *     header naming the painting and one summary line "NAME/STYLE: content loss ..." per
 *     style, with exactly the numbers of the twin scored against that painting; the two
 *     styles' numbers differ; --csv rows carry the NAME/STYLE labels;
 *   - --style NAME (or an index) scores that style alone;
 *   - errors: --style-image without --style on a multi-style model, an unknown --style, a
 *     --style for a model of one style (exit 2); a style whose painting is nowhere (exit
 *     1, the error naming the style and the folder searched);
 *   - `flicker` runs the first style by default and --style's when given (the label says
 *     which, and the two differ in their output change).
 * Does not: the scores' arithmetic (test-train-metrics.c, test-flicker.c), nf-run
 * (test-nf-run-styles.c).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "nf-graph.h"
#include "nf-image.h"
#include "nf-model.h"
#include "nf-vgg.h"
#include "nf-test-files.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)
#define S(x) ((x) ? (x) : "(none)")

static const char *nf_evaluate;
static char *root, *shared, *photos, *vgg, *m_multi, *m_lost, *m_twin[2], *paint[2];
static const char *style_names[2] = { "checker_red", "stripes_blue" };

/* ---- fixtures ---------------------------------------------------------------------------- */

static const char *graph_json =
    "{\"input\": \"x\", \"output\": \"y\", \"ops\": ["
    "{\"op\": \"conv2d\", \"name\": \"c1\", \"in\": \"x\", \"out\": \"c1\", \"k\": 1, "
    "\"cin\": 3, \"cout\": 4},"
    "{\"op\": \"%s\", \"name\": \"n1\", \"in\": \"c1\", \"out\": \"n1\", \"c\": 4%s},"
    "{\"op\": \"conv2d\", \"name\": \"c2\", \"in\": \"n1\", \"out\": \"y\", \"k\": 1, "
    "\"cin\": 4, \"cout\": 3}]}";

static const float rows_w[2][4] = { {40, -30, 25, 10}, {-20, 35, 30, 15} };
static const float rows_b[2][4] = { {120, 90, 140, 0}, {70, 150, 60, 20} };

/* style < 0: the 2-style model named `names`; else the twin of that style. */
static char *
make_model (const char *file, int style, const char *const *names)
{
  GError *e = NULL;
  gboolean multi = style < 0;
  char *json = g_strdup_printf (graph_json, multi ? "cond_instance_norm" : "instance_norm",
      multi ? ", \"styles\": 2" : ", \"affine\": true");
  NfGraph *g = nf_graph_from_json (json, &e);
  g_free (json);
  NfModel *m = g ? nf_model_new_for_graph (g, NF_TASK_STYLE, 1, &e) : NULL;
  nf_graph_free (g);
  if (!m)
    g_error ("model: %s", e->message);
  static const float w1[12] = { 0.6f, -0.3f, 0.2f, 0.1f, 0.5f, -0.4f, -0.2f, 0.3f, 0.7f,
    0.4f, 0.4f, -0.5f
  };
  static const float w2[12] = { 1, 0, 0, 0.2f, 0, 1, 0, -0.3f, 0, 0, 1, 0.1f };
  memcpy (nf_model_tensor (m, "c1.weight")->data, w1, sizeof w1);
  memcpy (nf_model_tensor (m, "c2.weight")->data, w2, sizeof w2);
  float *w = nf_model_tensor (m, "n1.weight")->data, *b = nf_model_tensor (m, "n1.bias")->data;
  for (int s = 0; s < 2; s++)
    if (multi || s == style) {
      memcpy (w + (multi ? 4 * s : 0), rows_w[s], sizeof rows_w[s]);
      memcpy (b + (multi ? 4 * s : 0), rows_b[s], sizeof rows_b[s]);
    }
  if (!nf_model_bind (m, &e) || (multi && !nf_model_set_style_names (m, names, &e)))
    g_error ("model: %s", e->message);
  nf_model_set_metadata (m, "name", multi ? "tiny" : style_names[style]);
  char *path = g_build_filename (root, file, NULL);
  if (!nf_model_save (m, path, NF_DTYPE_F32, &e))
    g_error ("saving %s: %s", path, e->message);
  nf_model_free (m);
  return path;
}

static void
write_photo (const char *path, int w, int h, int seed)
{
  NfImage *img = nf_image_new (w, h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        img->rgb[((size_t) y * w + x) * 3 + c] = (uint8_t) (128 + 100 * sin (0.11 * (seed
                    + 1) * x + 0.7 * c) * cos (0.17 * y - 0.3 * c * seed));
  nf_image_save (img, path, NULL);
  nf_image_free (img);
}

static void
make_fixtures (void)
{
  GError *e = NULL;
  root = g_dir_make_tmp ("nf-test-evaluate-styles-XXXXXX", &e);
  if (!root)
    g_error ("temporary folder: %s", e->message);
  shared = g_build_filename (root, "shared", NULL);
  photos = g_build_filename (shared, "photos", NULL);
  char *styles = g_build_filename (shared, "styles", NULL);
  g_mkdir_with_parents (photos, 0755);
  g_mkdir_with_parents (styles, 0755);
  for (int i = 0; i < 3; i++) {
    char *n = g_strdup_printf ("p%d.png", i);
    char *p = g_build_filename (photos, n, NULL);
    write_photo (p, 72 + 4 * i, 64 + 2 * i, i);
    g_free (p);
    g_free (n);
  }
  for (int s = 0; s < 2; s++) {
    char *n = g_strconcat (style_names[s], ".png", NULL);
    paint[s] = g_build_filename (styles, n, NULL);
    nf_test_write_painting (paint[s], s);
    g_free (n);
  }
  g_free (styles);
  if (!(vgg = nf_test_write_random_vgg (root, &e)))
    g_error ("random VGG: %s", e->message);
  const char *names[] = { style_names[0], style_names[1], NULL };
  const char *lost[] = { style_names[0], "nowhere", NULL };
  m_multi = make_model ("multi.safetensors", -1, names);
  m_lost = make_model ("lost.safetensors", -1, lost);
  m_twin[0] = make_model ("twin0.safetensors", 0, NULL);
  m_twin[1] = make_model ("twin1.safetensors", 1, NULL);
}


/* ---- running the tool --------------------------------------------------------------------- */

typedef struct {
  int status;                   /* exit code, -1 when it did not exit */
  char *out, *err;
} Run;

static void
run_clear (Run *r)
{
  g_free (r->out);
  g_free (r->err);
}

/* nf-evaluate TASK MODEL <the fixtures' data options> then the given options
 * (NULL-terminated), with NF_SHARED_DATA the stand-in folder. */
static Run
run (const char *task, const char *model, ...)
{
  Run r = { -1, NULL, NULL };
  GPtrArray *argv = g_ptr_array_new ();
  const char *fixed[] = { nf_evaluate, task, model, "--data", photos, "--split", "all",
    "--lossnet", vgg, "--layers", "relu1_2,relu2_2", "--size", "64", "--backend", "cpu"
  };
  for (guint i = 0; i < G_N_ELEMENTS (fixed); i++)
    g_ptr_array_add (argv, (gpointer) fixed[i]);
  va_list ap;
  va_start (ap, model);
  for (const char *a; (a = va_arg (ap, const char *));)
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  char **env = g_environ_setenv (g_get_environ (), "NF_SHARED_DATA", shared, TRUE);
  GError *e = NULL;
  int ws = 0;
  if (!g_spawn_sync (NULL, (char **) argv->pdata, env, G_SPAWN_DEFAULT, NULL, NULL, &r.out,
          &r.err, &ws, &e)) {
    printf ("FAIL cannot run %s: %s\n", nf_evaluate, e->message);
    failures++;
    g_error_free (e);
  } else if (WIFEXITED (ws)) {
    r.status = WEXITSTATUS (ws);
  }
  g_strfreev (env);
  g_ptr_array_free (argv, TRUE);
  return r;
}

/* What follows "  LABEL: " on the summary line of LABEL in text (g_free), or NULL. */
static char *
summary (const char *text, const char *label)
{
  char *key = g_strdup_printf ("\n  %s: content loss", label);
  const char *p = text ? strstr (text, key) : NULL;
  char *res = NULL;
  if (p) {
    p += strlen (label) + 5;
    const char *end = strchr (p, '\n');
    res = end ? g_strndup (p, end - p) : g_strdup (p);
  }
  g_free (key);
  return res;
}

static int
count (const char *text, const char *what)
{
  int n = 0;
  for (const char *p = text; p && (p = strstr (p, what)); p += strlen (what))
    n++;
  return n;
}

/* ---- checks ---------------------------------------------------------------------------- */

static void
test_style_all (void)
{
  char *csv = g_build_filename (root, "scores.csv", NULL);
  Run r = run ("style", m_multi, "--csv", csv, NULL);
  CHECK (r.status == 0, "style on the multi-style model: exit %d: %s", r.status, S (r.err));
  CHECK (count (r.out, ": content loss") == 2, "%d summary lines, not 2:\n%s",
      count (r.out, ": content loss"), S (r.out));
  char *line[2] = { NULL, NULL };
  for (int s = 0; s < 2; s++) {
    char *label = g_strconcat ("tiny/", style_names[s], NULL);
    char *head = g_strdup_printf ("(%s), style %s.png at", label, style_names[s]);
    CHECK (r.out && strstr (r.out, head), "no header \"%s\":\n%s", head, S (r.out));
    line[s] = summary (r.out, label);
    CHECK (line[s] != NULL, "no summary line of %s:\n%s", label, S (r.out));
    Run t = run ("style", m_twin[s], "--style-image", paint[s], NULL);
    char *want = summary (t.out, style_names[s]);
    CHECK (t.status == 0 && want, "the twin of %s: exit %d: %s", style_names[s], t.status,
        S (t.err));
    CHECK (line[s] && want && g_str_equal (line[s], want),
        "%s scores \"%s\", its single-style twin \"%s\"", label, S (line[s]), S (want));
    g_free (want);
    run_clear (&t);
    g_free (head);
    g_free (label);
  }
  CHECK (line[0] && line[1] && !g_str_equal (line[0], line[1]),
      "the two styles score the same: %s", S (line[0]));
  char *text = NULL;
  CHECK (g_file_get_contents (csv, &text, NULL, NULL) && count (text, "\ntiny/checker_red,")
      == 3 && count (text, "\ntiny/stripes_blue,") == 3, "csv rows:\n%s", S (text));
  g_free (text);
  g_free (line[0]);
  g_free (line[1]);
  run_clear (&r);
  g_free (csv);
}

static void
test_style_one (void)
{
  const char *sel[] = { "stripes_blue", "1" };
  for (int k = 0; k < 2; k++) {
    Run r = run ("style", m_multi, "--style", sel[k], NULL);
    CHECK (r.status == 0, "--style %s: exit %d: %s", sel[k], r.status, S (r.err));
    CHECK (count (r.out, ": content loss") == 1 && summary (r.out, "tiny/stripes_blue")
        != NULL, "--style %s does not score stripes_blue alone:\n%s", sel[k], S (r.out));
    run_clear (&r);
  }
  /* the painting given: stripes_blue's network against checker_red's painting */
  Run r = run ("style", m_multi, "--style", "stripes_blue", "--style-image", paint[0], NULL);
  char *got = summary (r.out, "tiny/stripes_blue");
  Run t = run ("style", m_twin[1], "--style-image", paint[0], NULL);
  char *want = summary (t.out, "stripes_blue");
  CHECK (r.status == 0 && r.out && strstr (r.out, "style checker_red.png at"),
      "--style with --style-image: exit %d: %s%s", r.status, S (r.out), S (r.err));
  CHECK (got && want && g_str_equal (got, want), "--style-image: \"%s\", the twin \"%s\"",
      S (got), S (want));
  g_free (got);
  g_free (want);
  run_clear (&r);
  run_clear (&t);
}

static void
check_refused (int status, const char *want, const char *task, const char *model,
    const char *o1, const char *v1)
{
  Run r = run (task, model, o1, v1, NULL);
  CHECK (r.status == status, "%s %s %s: exit %d, not %d", task, S (o1), S (v1), r.status,
      status);
  CHECK (r.err && strstr (r.err, want), "%s %s %s: the error does not say \"%s\": %s", task,
      S (o1), S (v1), want, S (r.err));
  run_clear (&r);
}

static void
test_errors (void)
{
  check_refused (2, "give --style NAME with --style-image", "style", m_multi, "--style-image",
      paint[0]);
  check_refused (2, "has no such style (its styles: checker_red, stripes_blue", "style",
      m_multi, "--style", "stripes");
  check_refused (2, "has no such style", "flicker", m_multi, "--style", "2");
  check_refused (2, "has one style", "style", m_twin[0], "--style", "checker_red");
  check_refused (2, "has one style", "flicker", m_twin[0], "--style", "0");
  char *want = g_strdup_printf ("no painting for style 1 (nowhere): tried %s", shared);
  check_refused (1, want, "style", m_lost, NULL, NULL);
  g_free (want);
}

static void
test_flicker (void)
{
  Run a = run ("flicker", m_multi, "--max-images", "1", "--frames", "3", NULL);
  Run b = run ("flicker", m_multi, "--max-images", "1", "--frames", "3", "--style",
      "stripes_blue", NULL);
  CHECK (a.status == 0 && a.out && strstr (a.out, "(tiny/checker_red): flicker on")
      && strstr (a.out, "  tiny/checker_red: static flicker ratio"),
      "flicker by default: exit %d: %s%s", a.status, S (a.out), S (a.err));
  CHECK (b.status == 0 && b.out && strstr (b.out, "(tiny/stripes_blue): flicker on")
      && strstr (b.out, "  tiny/stripes_blue: static flicker ratio"),
      "flicker --style stripes_blue: exit %d: %s%s", b.status, S (b.out), S (b.err));
  /* the per-clip rows: the same input, another style's output */
  const char *ra = a.out ? strstr (a.out, "p0.png") : NULL;
  const char *rb = b.out ? strstr (b.out, "p0.png") : NULL;
  char *la = ra ? g_strndup (ra, strcspn (ra, "\n")) : NULL;
  char *lb = rb ? g_strndup (rb, strcspn (rb, "\n")) : NULL;
  CHECK (la && lb && !g_str_equal (la, lb), "flicker rows of the two styles: \"%s\", \"%s\"",
      S (la), S (lb));
  g_free (la);
  g_free (lb);
  run_clear (&a);
  run_clear (&b);
}

int
main (int argc, char **argv)
{
  if (argc != 2) {
    fprintf (stderr, "usage: %s PATH-OF-NF-EVALUATE\n", argv[0]);
    return 1;
  }
  nf_evaluate = argv[1];
  make_fixtures ();
  test_style_all ();
  test_style_one ();
  test_errors ();
  test_flicker ();
  nf_test_rm_tree (root);
  g_free (root);
  g_free (shared);
  g_free (photos);
  g_free (vgg);
  g_free (m_multi);
  g_free (m_lost);
  for (int s = 0; s < 2; s++) {
    g_free (m_twin[s]);
    g_free (paint[s]);
  }
  printf ("%s\n", failures ? "FAILED" : "all nf-evaluate style checks passed");
  return failures ? 1 : 0;
}
