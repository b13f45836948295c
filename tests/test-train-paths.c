/* test-train-paths.c — portable paths in weight-file metadata (nf-portable-path.h), the
 * recipe's JSON both ways with them, and `nf-train relabel` on an in-memory file
 * (nf-relabel.h). No shared data needed.
 *
 * Checks: a path under the source root becomes root-relative, one under the root's
 * parent "../...", a sibling folder whose name starts with the root's is not taken for
 * the root, any other absolute path its file name, relative paths stay; resolving turns
 * them back into the absolute paths; the recipe's metadata JSON holds no absolute path
 * of the machine and reads back as absolute paths, while the checkpoint JSON keeps them
 * absolute; relabel rewrites exactly the path values of an old-style training string
 * (numbers written as nf-jsonw wrote them stay byte for byte), keeps every tensor byte
 * and every other metadata value, changes nothing the second time, and refuses
 * malformed files and metadata it cannot edit in place with an error.
 * Does not: run nf-train (the tool is a loop over nf_relabel_file).
 */
#include <stdio.h>
#include <string.h>

#include "nf-error.h"
#include "nf-jsonw.h"
#include "nf-portable-path.h"
#include "nf-recipe.h"
#include "nf-relabel.h"
#include "nf-safetensors.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

static char *root, *parent;     /* the source root and its parent, absolute */

static void
check_map (const char *in, const char *want)
{
  char *got = nf_portable_path (in);
  CHECK (g_strcmp0 (got, want) == 0, "portable (%s) = %s, want %s", in, got, want);
  g_free (got);
}

static void
test_portable (void)
{
  char *p = g_build_filename (root, "weights", "a.safetensors", NULL);
  check_map (p, "weights/a.safetensors");
  g_free (p);
  check_map (root, ".");
  p = g_build_filename (parent, "shared", "data", "photos", NULL);
  check_map (p, "../shared/data/photos");
  char *back = nf_portable_path_resolve ("../shared/data/photos");
  CHECK (g_strcmp0 (back, p) == 0, "resolve ../shared/data/photos = %s, want %s", back, p);
  g_free (back);
  g_free (p);
  p = g_strconcat (root, "-other/x.jpg", NULL);  /* a sibling, not inside the root */
  char *base = g_path_get_basename (root);
  char *want = g_strconcat ("../", base, "-other/x.jpg", NULL);
  check_map (p, g_strcmp0 (parent, "/") ? want : "x.jpg");
  g_free (want);
  g_free (base);
  g_free (p);
  p = g_build_filename (root, "runs", "..", "..", "shared", "y.png", NULL);
  check_map (p, "../shared/y.png");
  g_free (p);
  check_map ("/nf-no-such-top-folder/styles/starry.jpg", "starry.jpg");
  check_map ("relative/dir", "relative/dir");
  CHECK (nf_portable_path (NULL) == NULL, "portable (NULL)");
  back = nf_portable_path_resolve ("weights/a.safetensors");
  p = g_build_filename (root, "weights", "a.safetensors", NULL);
  CHECK (g_strcmp0 (back, p) == 0, "resolve weights/a.safetensors = %s", back);
  g_free (back);
  g_free (p);
  back = nf_portable_path_resolve ("/abs/x");
  CHECK (g_strcmp0 (back, "/abs/x") == 0, "resolve /abs/x = %s", back);
  g_free (back);
}

/* A style recipe with the paths a run on this machine has after nf_recipe_finalize. */
static NfRecipe *
machine_recipe (void)
{
  NfRecipe *r = nf_recipe_new ("style", NULL);
  g_strfreev (r->data);
  r->data = g_new0 (char *, 3);
  r->data[0] = g_build_filename (parent, "shared", "data", "photos", NULL);
  r->data[1] = g_build_filename (root, "tests", "data", NULL);
  r->style_image = g_build_filename (parent, "shared", "data", "styles", "wave.png", NULL);
  r->lossnet = g_strdup ("/nf-no-such-top-folder/vgg16.safetensors");
  r->run_dir = g_build_filename (root, "runs", "wave", NULL);
  r->output = g_build_filename (root, "runs", "wave", "model.safetensors", NULL);
  return r;
}

/* The text of an absolute path of this machine (parent + "/") in s? */
static gboolean
holds_machine_path (const char *s)
{
  char *pfx = g_strconcat (g_strcmp0 (parent, "/") ? parent : root, "/", NULL);
  gboolean in = strstr (s, pfx) != NULL;
  g_free (pfx);
  return in;
}

static void
test_recipe_json (void)
{
  NfRecipe *r = machine_recipe ();
  char *meta = nf_recipe_to_json (r, FALSE);
  CHECK (!holds_machine_path (meta), "metadata recipe holds a machine path: %s", meta);
  CHECK (strstr (meta, "\"data\":[\"../shared/data/photos\",\"tests/data\"]"),
      "metadata data: %s", meta);
  CHECK (strstr (meta, "\"style-image\":\"../shared/data/styles/wave.png\""), "%s", meta);
  CHECK (strstr (meta, "\"lossnet\":\"vgg16.safetensors\""), "%s", meta);
  CHECK (!strstr (meta, "\"run\""), "run settings in the metadata: %s", meta);
  char *ckpt = nf_recipe_to_json (r, TRUE);
  CHECK (strstr (ckpt, r->data[0]) && strstr (ckpt, r->run_dir),
      "checkpoint JSON lost the absolute paths: %s", ckpt);

  char *training = g_strdup_printf ("{\"recipe\":%s,\"steps\":3}", meta);
  GError *e = NULL;
  NfRecipe *back = nf_recipe_from_training_metadata (training, &e);
  CHECK (back, "from metadata: %s", e ? e->message : "?");
  if (back) {
    CHECK (g_strcmp0 (back->data[0], r->data[0]) == 0 && g_strcmp0 (back->data[1],
            r->data[1]) == 0 && back->data[2] == NULL, "data read back: %s, %s",
        back->data[0], back->data[1]);
    CHECK (g_strcmp0 (back->style_image, r->style_image) == 0, "style image read back: %s",
        back->style_image);
    char *want = g_build_filename (root, "vgg16.safetensors", NULL);
    CHECK (g_strcmp0 (back->lossnet, want) == 0, "lossnet read back: %s", back->lossnet);
    g_free (want);
    nf_recipe_free (back);
  }
  g_clear_error (&e);
  g_free (training);
  g_free (ckpt);
  g_free (meta);
  nf_recipe_free (r);
}

/* A weight file as an older nf-train wrote it: the recipe with absolute paths (run
 * settings included, to cover them), numbers in nf-jsonw's form. */
static GBytes *
old_file (const char *training)
{
  NfStWriter *w = nf_st_writer_new ();
  nf_st_writer_set_metadata (w, "name", "style-slim-wave");
  nf_st_writer_set_metadata (w, "training", training);
  nf_st_writer_set_metadata (w, "graph", "{\"nodes\":[]}");
  float a[6] = { 1.5f, -2.25f, 3.0f, 0.1f, 1e-8f, -0.0f };
  int64_t da[2] = { 2, 3 }, db[1] = { 4 };
  nf_st_writer_add (w, "conv.weight", NF_DTYPE_F32, 2, da, a);
  nf_st_writer_add (w, "conv.bias", NF_DTYPE_F16, 1, db, a);
  GBytes *b = nf_st_writer_to_bytes (w);
  nf_st_writer_free (w);
  return b;
}

static const guint8 *
data_section (GBytes *b, gsize *n)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (b, &len);
  guint64 h = 0;
  for (int i = 7; i >= 0; i--)
    h = (h << 8) | p[i];
  *n = len - 8 - h;
  return p + 8 + h;
}

static void
test_relabel (void)
{
  NfRecipe *r = machine_recipe ();
  char *rj = nf_recipe_to_json (r, TRUE);
  char *training = g_strdup_printf ("{\"tool\":\"nf-train (neuralfilter)\",\"recipe\":%s,"
      "\"elapsed_s\":0.1,\"final_losses\":{\"total\":1e-08}}", rj);
  GBytes *in = old_file (training);
  gsize in_len;
  const guint8 *in_bytes = g_bytes_get_data (in, &in_len);
  guint n = 0;
  GError *e = NULL;
  GBytes *out = nf_relabel_bytes (in_bytes, in_len, &n, &e);
  CHECK (out, "relabel: %s", e ? e->message : "?");
  g_clear_error (&e);
  /* data x2, style-image, lossnet, run, output */
  CHECK (n == 6, "relabel changed %u paths, want 6", n);
  if (out) {
    gsize dn_in, dn_out;
    const guint8 *d_in = data_section (in, &dn_in), *d_out = data_section (out, &dn_out);
    CHECK (dn_in == dn_out && memcmp (d_in, d_out, dn_in) == 0, "tensor bytes changed");
    gsize out_len;
    const guint8 *ob = g_bytes_get_data (out, &out_len);
    NfSafetensors *st = nf_safetensors_parse (ob, out_len, &e);
    CHECK (st, "relabelled file does not parse: %s", e ? e->message : "?");
    g_clear_error (&e);
    if (st) {
      const char *t = nf_safetensors_metadata (st, "training");
      CHECK (t && !holds_machine_path (t), "relabelled training: %s", t ? t : "none");
      CHECK (t && strstr (t, "\"elapsed_s\":0.1,\"final_losses\":{\"total\":1e-08}"),
          "numbers were rewritten: %s", t ? t : "none");
      CHECK (t && strstr (t, "\"run\":\"runs/wave\""), "run: %s", t ? t : "none");
      CHECK (g_strcmp0 (nf_safetensors_metadata (st, "name"), "style-slim-wave") == 0
          && g_strcmp0 (nf_safetensors_metadata (st, "graph"), "{\"nodes\":[]}") == 0,
          "other metadata changed");
      NfRecipe *back = t ? nf_recipe_from_training_metadata (t, NULL) : NULL;
      CHECK (back && g_strcmp0 (back->data[0], r->data[0]) == 0, "read back");
      if (back)
        nf_recipe_free (back);
      nf_safetensors_free (st);
    }
    /* a second relabel has nothing left to do */
    GBytes *again = nf_relabel_bytes (ob, out_len, &n, &e);
    CHECK (again && n == 0 && g_bytes_equal (again, out), "second relabel: %u changes", n);
    g_clear_error (&e);
    if (again)
      g_bytes_unref (again);
    g_bytes_unref (out);
  }
  g_bytes_unref (in);

  /* a path written with an escape nf-jsonw never writes: refused, not half-edited */
  char *escaped = g_strdup_printf ("{\"recipe\":{\"task\":\"style\",\"lossnet\":\"%s\\/x\"}}",
      parent);
  in = old_file (escaped);
  in_bytes = g_bytes_get_data (in, &in_len);
  out = nf_relabel_bytes (in_bytes, in_len, &n, &e);
  CHECK (!out && e && strstr (e->message, "in place"), "escaped path: %s",
      e ? e->message : "accepted");
  g_clear_error (&e);
  g_bytes_unref (in);
  g_free (escaped);

  /* a path field that is not a string */
  in = old_file ("{\"recipe\":{\"task\":\"style\",\"lossnet\":7}}");
  in_bytes = g_bytes_get_data (in, &in_len);
  out = nf_relabel_bytes (in_bytes, in_len, &n, &e);
  CHECK (!out && e && e->domain == NF_ERROR, "numeric path: %s", e ? e->message : "accepted");
  g_clear_error (&e);
  g_bytes_unref (in);

  /* no training metadata / a truncated file */
  in = old_file ("{\"not\":\"nf-train\"}");
  in_bytes = g_bytes_get_data (in, &in_len);
  out = nf_relabel_bytes (in_bytes, in_len, &n, &e);
  CHECK (out && n == 0 && g_bytes_equal (in, out), "foreign training metadata changed");
  if (out)
    g_bytes_unref (out);
  out = nf_relabel_bytes (in_bytes, in_len - 3, &n, &e);
  CHECK (!out && e, "truncated file accepted");
  g_clear_error (&e);
  g_bytes_unref (in);

  g_free (training);
  g_free (rj);
  nf_recipe_free (r);
}

int
main (void)
{
  root = nf_source_root ();
  parent = g_path_get_dirname (root);
  test_portable ();
  test_recipe_json ();
  test_relabel ();
  g_free (parent);
  g_free (root);
  if (failures) {
    printf ("%d failure(s)\n", failures);
    return 1;
  }
  printf ("test-train-paths: all passed\n");
  return 0;
}
