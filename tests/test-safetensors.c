/* test-safetensors.c — the safetensors reader and writer.
 *
 * Covers: writer -> reader round trips (F32, F16, BF16, F64; 0-D to 4-D and zero-size
 * shapes; metadata including a long JSON value) with byte-level checks of the file
 * layout; a hand-built file; every malformed-header case the reader must reject, each
 * with the message it must give; every truncation of a valid file; a fixed-seed fuzz
 * loop of random byte flips; loading from disk, a missing path and a directory.
 * Does not: interpret tensors as a model (test-model-errors.c does).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "nf-error.h"
#include "nf-safetensors.h"

static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
      printf ("FAIL %s:%d: ", __FILE__, __LINE__); printf (__VA_ARGS__); printf ("\n"); } \
    } while (0)

/* ---- building files by hand ------------------------------------------------------ */

/* 8-byte little-endian header length `hlen`, then `header` (header_len bytes), then
 * data_len bytes of data (zeros when data is NULL). */
static guint8 *
build_raw (guint64 hlen, const char *header, gsize header_len, const guint8 *data,
    gsize data_len, gsize *out_len)
{
  gsize len = 8 + header_len + data_len;
  guint8 *b = g_malloc0 (len);
  for (int i = 0; i < 8; i++)
    b[i] = (guint8) (hlen >> (8 * i));
  memcpy (b + 8, header, header_len);
  if (data)
    memcpy (b + 8 + header_len, data, data_len);
  *out_len = len;
  return b;
}

static guint8 *
build (const char *header, gsize data_len, gsize *out_len)
{
  return build_raw (strlen (header), header, strlen (header), NULL, data_len, out_len);
}

static void
expect_bytes_error (const guint8 *bytes, gsize len, const char *substring, const char *what)
{
  GError *e = NULL;
  NfSafetensors *st = nf_safetensors_parse (bytes, len, &e);
  CHECK (st == NULL, "%s: accepted", what);
  nf_safetensors_free (st);
  if (!e) {
    CHECK (FALSE, "%s: no GError set", what);
    return;
  }
  CHECK (e->domain == NF_ERROR && e->code == NF_ERROR_FORMAT, "%s: wrong error kind",
      what);
  CHECK (strstr (e->message, substring) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
      e->message, substring);
  if (strstr (e->message, substring))
    printf ("ok   %s: %s\n", what, e->message);
  g_error_free (e);
}

/* header JSON followed by data_len zero bytes must fail with substring. */
static void
expect_error (const char *header, gsize data_len, const char *substring)
{
  gsize len;
  guint8 *b = build (header, data_len, &len);
  expect_bytes_error (b, len, substring, header);
  g_free (b);
}

/* header JSON followed by data_len zero bytes must parse. */
static void
expect_ok (const char *header, gsize data_len, guint n_tensors)
{
  gsize len;
  guint8 *b = build (header, data_len, &len);
  GError *e = NULL;
  NfSafetensors *st = nf_safetensors_parse (b, len, &e);
  CHECK (st != NULL, "valid header rejected: %s: %s", header, e ? e->message : "");
  if (st) {
    CHECK (nf_safetensors_n_tensors (st) == n_tensors, "%s: %u tensors, expected %u",
        header, nf_safetensors_n_tensors (st), n_tensors);
    printf ("ok   accepted: %s\n", header);
  }
  g_clear_error (&e);
  nf_safetensors_free (st);
  g_free (b);
}

/* ---- the hand-built file ---------------------------------------------------------- */

/* Tensors out of alphabetical order with __metadata__ between them, every dtype, a
 * scalar, a zero-size tensor, an 8-D tensor with an unknown (ignored) key, a gap of
 * unused bytes (22..24) and trailing header spaces. */
static const char *hand_header =
    "{\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[16,20]},"
    "\"__metadata__\":{\"k\":\"v\",\"graph\":\"{\\\"a\\\": [1, 2]}\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
    "\"c\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[20,22]},"
    "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[24,32]},"
    "\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[22,22]},"
    "\"extra\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1],\"data_offsets\":[32,36],"
    "\"ignored\":[true,false,null,-1.5e3]}}      ";

static guint8 *
hand_file (gsize *len)
{
  guint8 data[36] = { 0 };
  const float a[4] = { 1.0f, -2.5f, 3.25f, 1e-3f };
  for (int i = 0; i < 4; i++) {
    guint32 u;
    memcpy (&u, &a[i], 4);
    for (int k = 0; k < 4; k++)
      data[4 * i + k] = (guint8) (u >> (8 * k));
  }
  data[16] = 0x00;              /* F16 1.0 = 0x3c00 */
  data[17] = 0x3c;
  data[18] = 0x00;              /* F16 -2.0 = 0xc000 */
  data[19] = 0xc0;
  data[20] = 0xc0;              /* BF16 1.5 = 0x3fc0 */
  data[21] = 0x3f;
  data[22] = 0xaa;              /* the gap */
  data[23] = 0xbb;
  double d = 3.25;
  guint64 du;
  memcpy (&du, &d, 8);
  for (int k = 0; k < 8; k++)
    data[24 + k] = (guint8) (du >> (8 * k));
  const float x = 7.0f;
  guint32 xu;
  memcpy (&xu, &x, 4);
  for (int k = 0; k < 4; k++)
    data[32 + k] = (guint8) (xu >> (8 * k));
  return build_raw (strlen (hand_header), hand_header, strlen (hand_header), data,
      sizeof data, len);
}

static void
check_floats (const NfSafetensors *st, const char *name, const float *want, size_t n)
{
  const NfStEntry *e = nf_safetensors_find (st, name);
  CHECK (e != NULL, "tensor %s not found", name);
  if (!e)
    return;
  CHECK (nf_st_entry_numel (e) == n, "%s: numel %zu, expected %zu", name,
      nf_st_entry_numel (e), n);
  GError *err = NULL;
  float *f = nf_safetensors_get_floats (st, e, &err);
  CHECK (f != NULL, "%s: get_floats failed: %s", name, err ? err->message : "");
  g_clear_error (&err);
  for (size_t i = 0; f && i < n && i < nf_st_entry_numel (e); i++)
    CHECK (f[i] == want[i], "%s[%zu] = %g, expected %g", name, i, f[i], want[i]);
  nf_free (f);
}

static void
test_hand_built (void)
{
  gsize len;
  guint8 *b = hand_file (&len);
  GError *e = NULL;
  NfSafetensors *st = nf_safetensors_parse (b, len, &e);
  CHECK (st != NULL, "hand-built file rejected: %s", e ? e->message : "");
  g_clear_error (&e);
  if (!st) {
    g_free (b);
    return;
  }
  const char *order[] = { "b", "a", "c", "d", "z", "extra" };
  CHECK (nf_safetensors_n_tensors (st) == 6, "%u tensors", nf_safetensors_n_tensors (st));
  for (guint i = 0; i < 6 && i < nf_safetensors_n_tensors (st); i++)
    CHECK (strcmp (nf_safetensors_entry (st, i)->name, order[i]) == 0,
        "entry %u is %s, expected %s (file order)", i, nf_safetensors_entry (st, i)->name,
        order[i]);
  CHECK (nf_safetensors_entry (st, 6) == NULL, "entry past the end");
  CHECK (nf_safetensors_find (st, "nope") == NULL, "found a missing tensor");
  CHECK (nf_safetensors_find (st, "__metadata__") == NULL, "__metadata__ is a tensor");
  const NfStEntry *a = nf_safetensors_find (st, "a");
  CHECK (a && a->dtype == NF_DTYPE_F32 && a->ndim == 2 && a->dims[0] == 2
      && a->dims[1] == 2 && a->begin == 0 && a->end == 16, "entry a wrong");
  const NfStEntry *d = nf_safetensors_find (st, "d");
  CHECK (d && d->dtype == NF_DTYPE_F64 && d->ndim == 0 && nf_st_entry_numel (d) == 1,
      "scalar d wrong");
  const NfStEntry *x = nf_safetensors_find (st, "extra");
  CHECK (x && x->ndim == 8, "8-D tensor wrong");
  CHECK (g_strcmp0 (nf_safetensors_metadata (st, "k"), "v") == 0, "metadata k");
  CHECK (g_strcmp0 (nf_safetensors_metadata (st, "graph"), "{\"a\": [1, 2]}") == 0,
      "metadata graph: %s", nf_safetensors_metadata (st, "graph"));
  CHECK (nf_safetensors_metadata (st, "missing") == NULL, "missing metadata found");
  GHashTable *md = nf_safetensors_metadata_table (st);
  CHECK (md && g_hash_table_size (md) == 2, "metadata table size");

  const float fa[] = { 1.0f, -2.5f, 3.25f, 1e-3f };
  const float fb[] = { 1.0f, -2.0f };
  const float fc[] = { 1.5f };
  const float fd[] = { 3.25f };
  const float fx[] = { 7.0f };
  check_floats (st, "a", fa, 4);
  check_floats (st, "b", fb, 2);
  check_floats (st, "c", fc, 1);
  check_floats (st, "d", fd, 1);
  check_floats (st, "z", NULL, 0);
  check_floats (st, "extra", fx, 1);

  /* an entry that does not fit the file is refused, not read */
  NfStEntry bogus = *a;
  bogus.end = 1000;
  float *f = nf_safetensors_get_floats (st, &bogus, &e);
  CHECK (f == NULL && e && e->domain == NF_ERROR, "bogus entry read");
  nf_free (f);
  g_clear_error (&e);
  printf ("ok   hand-built file: 6 tensors in file order, all dtypes converted\n");
  nf_safetensors_free (st);
  g_free (b);
}

/* ---- malformed files ---------------------------------------------------------------- */

static void
test_malformed (void)
{
  gsize len;
  guint8 *b;

  /* the length field itself */
  for (gsize n = 0; n < 8; n++) {
    guint8 tiny[8] = { 2, 0, 0, 0, 0, 0, 0, 0 };
    char what[32];
    g_snprintf (what, sizeof what, "%zu-byte file", n);
    expect_bytes_error (n ? tiny : NULL, n, "shorter than the 8-byte", what);
  }
  b = build_raw (0, "{}", 2, NULL, 0, &len);
  expect_bytes_error (b, len, "header length is 0", "zero header length");
  g_free (b);
  b = build_raw (3, "{}", 2, NULL, 0, &len);
  expect_bytes_error (b, len, "exceeds the 2 bytes", "header length past the end");
  g_free (b);
  b = build_raw (200u * 1000 * 1000, "{}", 2, NULL, 0, &len);
  expect_bytes_error (b, len, "100 MB limit", "200 MB header length");
  g_free (b);
  b = build_raw (G_MAXUINT64, "{}", 2, NULL, 0, &len);
  expect_bytes_error (b, len, "100 MB limit", "2^64-1 header length");
  g_free (b);
  b = build_raw (4, "{\xff}", 3, NULL, 0, &len);
  expect_bytes_error (b, len, "exceeds the 3 bytes", "header length one past the end");
  g_free (b);
  b = build_raw (3, "{\xff}", 3, NULL, 0, &len);
  expect_bytes_error (b, len, "not valid UTF-8", "invalid UTF-8");
  g_free (b);
  b = build_raw (4, "{\0}", 3, NULL, 1, &len);
  expect_bytes_error (b, len, "not valid UTF-8", "NUL byte in the header");
  g_free (b);

  /* JSON shape */
  expect_error ("{", 0, "not valid JSON");
  expect_error ("{\"a\" 1}", 0, "not valid JSON");
  expect_error ("[]", 0, "not an object");
  expect_error ("\"text\"", 0, "not an object");
  expect_error ("   ", 0, "not an object");
  expect_error ("{}{}", 0, "trailing data");
  expect_error ("{} x", 0, "trailing data");
  expect_error ("{'a':1}", 0, "unexpected character '''");
  expect_error ("{\"a\":1} // comment", 0, "trailing data");
  expect_error ("{\"a\":{\"dtype\":\"F32\",\"shape\":[0x1],\"data_offsets\":[0,4]}}", 4,
      "malformed number");
  expect_error ("{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4,
      "malformed number");
  expect_error ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,"
      "18446744073709551620]}}", 4, "more than 18 integer digits");
  expect_error ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-9999999999999999999],"
      "\"data_offsets\":[0,0]}}", 0, "more than 18 integer digits");
  expect_error ("{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", 0, "nested deeper");
  expect_error ("{\"a\\u0000b\":{}}", 0, "escaped NUL");
  expect_error ("{\"a\":\"x\ty\"}", 0, "raw control character");
  expect_error ("{\"a\":\"\\q\"}", 0, "invalid escape");
  expect_error ("{\"a\":\"\\u12\"}", 0, "invalid \\u escape");
  expect_error ("{\"a\":\"open}", 0, "unterminated string");
  expect_error ("{\"a\":True}", 0, "unexpected word 'True'");

  /* entries */
  expect_error ("{\"w\":5}", 0, "entry for tensor 'w' is not an object");
  expect_error ("{\"w\":[1]}", 0, "entry for tensor 'w' is not an object");
  expect_error ("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
      "tensor 'w' has no \"dtype\"");
  expect_error ("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
      "tensor 'w': \"dtype\" is not a string");
  expect_error ("{\"w\":{\"dtype\":null,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
      "\"dtype\" is not a string");
  expect_error ("{\"w\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
      "tensor 'w' has unknown dtype 'I8' (known: F32, F16, BF16, F64)");
  expect_error ("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
      "unknown dtype 'f32'");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
      "tensor 'w' has no \"shape\"");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4,
      "tensor 'w': \"shape\" is not an array");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,2.5],\"data_offsets\":[0,4]}}", 4,
      "tensor 'w': shape element 1 is not an integer");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,\"2\"],\"data_offsets\":[0,8]}}", 8,
      "shape element 1 is not an integer");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,true],\"data_offsets\":[0,4]}}", 4,
      "shape element 1 is not an integer");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1.0],\"data_offsets\":[0,4]}}", 4,
      "shape element 1 is not an integer");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}", 4,
      "shape element 0 is not an integer");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,0]}}", 0,
      "tensor 'w': shape element 1 is negative (-3)");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
      "\"data_offsets\":[0,4]}}", 4, "tensor 'w' has 9 dimensions, more than the maximum of 8");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
      "tensor 'w' has no \"data_offsets\"");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4,
      "tensor 'w': \"data_offsets\" is not an array of two integers");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
      "\"data_offsets\" is not an array of two integers");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0-4\"}}", 4,
      "\"data_offsets\" is not an array of two integers");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4,
      "tensor 'w': data_offsets element 1 is not an integer");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
      "tensor 'w': data_offsets element 0 is negative");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8,
      "tensor 'w': data_offsets begin 8 is greater than end 4");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
      "tensor 'w': data_offsets end 8 is beyond the data section (4 bytes)");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9,9]}}", 4,
      "data_offsets end 9 is beyond the data section");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24,
      "tensor 'w': shape [2, 3] of F32 needs 24 bytes but data_offsets cover 20");
  expect_error ("{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,12]}}", 12,
      "shape [3] of F16 needs 6 bytes but data_offsets cover 12");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
      "\"data_offsets\":[0,0]}}", 0, "tensor 'w': byte size of shape [4294967296, "
      "4294967296, 16] overflows");
  expect_error ("{\"w\":{\"dtype\":\"F64\",\"shape\":[3000000000,3000000000,3000000000],"
      "\"data_offsets\":[0,0]}}", 0, "overflows");
  expect_error ("{\"p\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"q\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
      "tensors 'p' [0, 8) and 'q' [4, 12) overlap");
  expect_error ("{\"q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
      "\"p\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
      "\"r\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16,
      "tensors 'p' [0, 16) and 'q' [4, 8) overlap");
  expect_error ("{\"p\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "overlap");
  /* a later tensor inside an earlier long one, with a third in between */
  expect_error ("{\"p\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
      "\"q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]},"
      "\"r\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]}}", 20,
      "tensors 'p' [0, 16) and 'r' [8, 12) overlap");

  /* metadata */
  expect_error ("{\"__metadata__\":[\"a\"]}", 0, "__metadata__ is not an object");
  expect_error ("{\"__metadata__\":\"a\"}", 0, "__metadata__ is not an object");
  expect_error ("{\"__metadata__\":{\"ok\":\"1\",\"n\":1}}", 0,
      "__metadata__ value for key 'n' is not a string");
  expect_error ("{\"__metadata__\":{\"o\":{\"x\":\"y\"}}}", 0,
      "__metadata__ value for key 'o' is not a string");
  expect_error ("{\"__metadata__\":{\"z\":null}}", 0,
      "__metadata__ value for key 'z' is not a string");

  /* duplicates */
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
      "duplicate tensor name 'w'");
  expect_error ("{\"__metadata__\":{},\"__metadata__\":{}}", 0,
      "duplicate tensor name '__metadata__'");
  expect_error ("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],"
      "\"data_offsets\":[0,4]}}", 4, "duplicate key 'dtype'");
  expect_error ("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate key 'k'");

  /* edges that are valid */
  expect_ok ("{}", 0, 0);
  expect_ok ("{}        ", 3, 0);
  expect_ok (" \n{\"__metadata__\":{}}\t", 0, 0);
  expect_ok ("{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
      "\"f\":{\"dtype\":\"F16\",\"shape\":[5,0],\"data_offsets\":[0,0]}}", 0, 2);
  expect_ok ("{\"p\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[2,2]},"
      "\"q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 3);
  expect_ok ("{\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,2]}}", 2, 1);
  expect_ok ("{\"caf\xc3\xa9 \\u00e9\\\"\":{\"dtype\":\"F32\",\"shape\":[1],"
      "\"data_offsets\":[0,4]}}", 4, 1);
}

/* ---- writer round trip ------------------------------------------------------------- */

typedef struct {
  const char *name;
  NfDtype dtype;
  int ndim;
  int64_t dims[4];
} Spec;

static char *
long_json_value (void)
{
  GString *s = g_string_new ("{\"input\": \"x\", \"output\": \"y\", \"ops\": [");
  for (int i = 0; i < 400; i++)
    g_string_append_printf (s, "%s{\"op\": \"conv2d\", \"name\": \"conv%d\", \"k\": 3,"
        " \"note\": \"tab\\there \\\"quoted\\\" back\\\\slash caf\xc3\xa9 \xe2\x9c\x93\"}",
        i ? ", " : "", i);
  g_string_append (s, "]}\n\tend / \x7f");
  return g_string_free (s, FALSE);
}

static void
test_round_trip (void)
{
  static const Spec specs[] = {
    { "one_d", NF_DTYPE_F32, 1, { 5 } },
    { "conv.weight", NF_DTYPE_F32, 4, { 4, 3, 3, 3 } },
    { "half", NF_DTYPE_F16, 2, { 3, 7 } },
    { "half4", NF_DTYPE_F16, 4, { 1, 2, 3, 3 } },
    { "odd_half", NF_DTYPE_F16, 1, { 3 } },     /* leaves the next tensor unaligned */
    { "after_odd", NF_DTYPE_F32, 2, { 2, 2 } },
    { "scalar", NF_DTYPE_F32, 0, { 0 } },
    { "empty", NF_DTYPE_F32, 2, { 0, 4 } },
    { "bf", NF_DTYPE_BF16, 1, { 6 } },
    { "dbl", NF_DTYPE_F64, 3, { 2, 1, 3 } },
  };
  const guint n_specs = G_N_ELEMENTS (specs);
  float *data[G_N_ELEMENTS (specs)];
  size_t numel[G_N_ELEMENTS (specs)];
  NfRng rng;
  nf_rng_seed (&rng, 7);

  NfStWriter *w = nf_st_writer_new ();
  char *graph = long_json_value ();
  nf_st_writer_set_metadata (w, "format_version", "0");
  nf_st_writer_set_metadata (w, "graph", graph);
  nf_st_writer_set_metadata (w, "name", "round trip \xe2\x9c\x93");
  nf_st_writer_set_metadata (w, "format_version", "1");        /* replaces */
  nf_st_writer_set_metadata (w, "empty", "");
  for (guint i = 0; i < n_specs; i++) {
    numel[i] = 1;
    for (int d = 0; d < specs[i].ndim; d++)
      numel[i] *= (size_t) specs[i].dims[d];
    data[i] = nf_alloc_floats (numel[i]);
    nf_rng_fill_uniform (&rng, data[i], numel[i], -3.0f, 3.0f);
    if (numel[i] > 2) {
      data[i][0] = 0.0f;
      data[i][1] = -1.0f / 3.0f;
    }
    nf_st_writer_add (w, specs[i].name, specs[i].dtype, specs[i].ndim, specs[i].dims,
        data[i]);
  }
  GBytes *bytes = nf_st_writer_to_bytes (w);
  CHECK (bytes != NULL, "to_bytes failed");
  gsize len = 0;
  const guint8 *b = bytes ? g_bytes_get_data (bytes, &len) : NULL;

  /* layout: header length, JSON padded with spaces, data 8-byte aligned */
  guint64 hlen = 0;
  for (int i = 7; b && i >= 0; i--)
    hlen = (hlen << 8) | b[i];
  CHECK (b && hlen > 0 && hlen < len, "header length %" G_GUINT64_FORMAT, hlen);
  CHECK ((8 + hlen) % 8 == 0, "data section at %" G_GUINT64_FORMAT " not 8-aligned",
      8 + hlen);
  CHECK (b && b[8] == '{', "header does not start with {");
  if (b) {
    const char *hdr = (const char *) b + 8;
    gsize last = (gsize) hlen;
    while (last > 0 && hdr[last - 1] == ' ')
      last--;
    CHECK (last > 0 && hdr[last - 1] == '}', "header not '}' + spaces");
    CHECK (hlen - last < 8, "more than 7 padding spaces");
    const char *md = g_strstr_len (hdr, (gssize) hlen, "\"__metadata__\"");
    const char *first = g_strstr_len (hdr, (gssize) hlen, "\"one_d\"");
    CHECK (md && first && md < first, "__metadata__ not written first");
  }

  GError *e = NULL;
  NfSafetensors *st = b ? nf_safetensors_parse (b, len, &e) : NULL;
  CHECK (st != NULL, "round trip rejected: %s", e ? e->message : "");
  g_clear_error (&e);
  if (st) {
    CHECK (nf_safetensors_n_tensors (st) == n_specs, "%u tensors",
        nf_safetensors_n_tensors (st));
    CHECK (g_strcmp0 (nf_safetensors_metadata (st, "graph"), graph) == 0,
        "long JSON metadata value changed");
    CHECK (g_strcmp0 (nf_safetensors_metadata (st, "format_version"), "1") == 0,
        "metadata not replaced");
    CHECK (g_strcmp0 (nf_safetensors_metadata (st, "name"), "round trip \xe2\x9c\x93") == 0,
        "UTF-8 metadata");
    CHECK (g_strcmp0 (nf_safetensors_metadata (st, "empty"), "") == 0, "empty metadata");
    CHECK (g_hash_table_size (nf_safetensors_metadata_table (st)) == 4, "metadata size");
    guint64 expect_offset = 0;
    const guint8 *data_section = b + 8 + hlen;
    for (guint i = 0; i < n_specs && i < nf_safetensors_n_tensors (st); i++) {
      const NfStEntry *en = nf_safetensors_entry (st, i);
      const Spec *s = &specs[i];
      CHECK (strcmp (en->name, s->name) == 0, "entry %u is %s, expected %s", i, en->name,
          s->name);
      CHECK (en->dtype == s->dtype && en->ndim == s->ndim, "%s: dtype/ndim", s->name);
      for (int d = 0; d < s->ndim; d++)
        CHECK (en->dims[d] == s->dims[d], "%s: dim %d", s->name, d);
      CHECK (en->begin == expect_offset, "%s: begin %" G_GUINT64_FORMAT ", expected %"
          G_GUINT64_FORMAT " (contiguous)", s->name, en->begin, expect_offset);
      CHECK (nf_st_entry_numel (en) == numel[i], "%s: numel", s->name);

      /* byte-level: the stored bytes are exactly the little-endian encoding */
      gsize esize = s->dtype == NF_DTYPE_F32 ? 4 : s->dtype == NF_DTYPE_F64 ? 8 : 2;
      CHECK (en->end - en->begin == numel[i] * esize, "%s: byte length", s->name);
      gboolean bytes_ok = TRUE;
      for (size_t k = 0; k < numel[i]; k++) {
        const guint8 *p = data_section + en->begin + k * esize;
        guint64 got = 0, want = 0;
        for (gsize q = 0; q < esize; q++)
          got |= (guint64) p[q] << (8 * q);
        if (s->dtype == NF_DTYPE_F32) {
          guint32 u;
          memcpy (&u, &data[i][k], 4);
          want = u;
        } else if (s->dtype == NF_DTYPE_F16) {
          want = nf_float_to_half (data[i][k]);
        } else if (s->dtype == NF_DTYPE_BF16) {
          guint32 u;
          memcpy (&u, &data[i][k], 4);
          want = (u + 0x7fff + ((u >> 16) & 1)) >> 16;
        } else {
          double dv = data[i][k];
          memcpy (&want, &dv, 8);
        }
        if (got != want)
          bytes_ok = FALSE;
      }
      CHECK (bytes_ok, "%s: stored bytes differ from the encoding", s->name);

      float *f = nf_safetensors_get_floats (st, en, &e);
      CHECK (f != NULL, "%s: get_floats: %s", s->name, e ? e->message : "");
      g_clear_error (&e);
      gboolean values_ok = TRUE;
      for (size_t k = 0; f && k < numel[i]; k++) {
        float want = data[i][k];
        if (s->dtype == NF_DTYPE_F16)
          want = nf_half_to_float (nf_float_to_half (want));
        else if (s->dtype == NF_DTYPE_BF16)
          values_ok &= fabsf (f[k] - want) <= fabsf (want) / 128.0f;
        if (s->dtype != NF_DTYPE_BF16 && memcmp (&f[k], &want, 4) != 0)
          values_ok = FALSE;
      }
      CHECK (values_ok, "%s: values differ after the round trip", s->name);
      nf_free (f);
      expect_offset = en->end;
    }
    CHECK (8 + hlen + expect_offset == len, "file has %" G_GSIZE_FORMAT
        " bytes, expected %" G_GUINT64_FORMAT, len, 8 + hlen + expect_offset);
    printf ("ok   round trip: %u tensors, %" G_GSIZE_FORMAT " bytes, header %"
        G_GUINT64_FORMAT " bytes, metadata value of %zu bytes\n", n_specs, len, hlen,
        strlen (graph));
    nf_safetensors_free (st);
  }

  /* to disk and back through nf_safetensors_load: same bytes, same answers */
  char *dir = g_dir_make_tmp ("nf-st-XXXXXX", NULL);
  CHECK (dir != NULL, "no temporary directory");
  if (dir && bytes) {
    char *path = g_build_filename (dir, "rt.safetensors", NULL);
    CHECK (nf_st_writer_write (w, path, &e), "write: %s", e ? e->message : "");
    g_clear_error (&e);
    char *disk;
    gsize disk_len;
    CHECK (g_file_get_contents (path, &disk, &disk_len, NULL), "written file unreadable");
    CHECK (disk_len == len && memcmp (disk, b, len) == 0, "file differs from to_bytes");
    g_free (disk);
    NfSafetensors *ld = nf_safetensors_load (path, &e);
    CHECK (ld != NULL, "load: %s", e ? e->message : "");
    g_clear_error (&e);
    if (ld) {
      CHECK (nf_safetensors_n_tensors (ld) == n_specs, "loaded tensor count");
      const NfStEntry *cw = nf_safetensors_find (ld, "conv.weight");
      float *f = cw ? nf_safetensors_get_floats (ld, cw, &e) : NULL;
      CHECK (f && memcmp (f, data[1], numel[1] * 4) == 0, "loaded conv.weight differs");
      g_clear_error (&e);
      nf_free (f);
      CHECK (g_strcmp0 (nf_safetensors_metadata (ld, "graph"), graph) == 0,
          "loaded metadata differs");
      printf ("ok   write + load (mmap): identical bytes and values\n");
      nf_safetensors_free (ld);
    }

    /* a path that cannot be written */
    char *bad = g_build_filename (dir, "no-such-dir", "x.safetensors", NULL);
    CHECK (!nf_st_writer_write (w, bad, &e), "wrote into a missing directory");
    CHECK (e && e->domain == NF_ERROR && e->code == NF_ERROR_IO
        && strstr (e->message, bad), "write error: %s", e ? e->message : "(none)");
    if (e)
      printf ("ok   unwritable path: %s\n", e->message);
    g_clear_error (&e);
    g_free (bad);

    /* a directory, an empty file and a missing path are load errors */
    NfSafetensors *none = nf_safetensors_load (dir, &e);
    CHECK (none == NULL && e && e->domain == NF_ERROR, "loaded a directory");
    if (e)
      printf ("ok   directory: %s\n", e->message);
    g_clear_error (&e);
    char *empty = g_build_filename (dir, "empty.safetensors", NULL);
    g_file_set_contents (empty, "", 0, NULL);
    none = nf_safetensors_load (empty, &e);
    CHECK (none == NULL && e && e->domain == NF_ERROR && e->code == NF_ERROR_FORMAT
        && strstr (e->message, "shorter than") && strstr (e->message, empty),
        "empty file: %s", e ? e->message : "(none)");
    if (e)
      printf ("ok   empty file: %s\n", e->message);
    g_clear_error (&e);
    g_unlink (empty);
    g_free (empty);
    g_unlink (path);
    g_free (path);
    g_rmdir (dir);
  }
  g_free (dir);

  NfSafetensors *missing = nf_safetensors_load ("/nonexistent/dir/model.safetensors", &e);
  CHECK (missing == NULL, "missing file loaded");
  CHECK (e && e->domain == NF_ERROR && e->code == NF_ERROR_IO
      && strstr (e->message, "/nonexistent/dir/model.safetensors"),
      "missing file error: %s", e ? e->message : "(none)");
  if (e)
    printf ("ok   missing path: %s\n", e->message);
  g_clear_error (&e);

  if (bytes)
    g_bytes_unref (bytes);
  nf_st_writer_free (w);
  g_free (graph);
  for (guint i = 0; i < n_specs; i++)
    nf_free (data[i]);
}

static void
test_writer_edges (void)
{
  GError *e = NULL;

  /* nothing at all: "{}" padded to 8 bytes */
  NfStWriter *w = nf_st_writer_new ();
  GBytes *bytes = nf_st_writer_to_bytes (w);
  gsize len = 0;
  const guint8 *b = g_bytes_get_data (bytes, &len);
  CHECK (len == 16 && b[0] == 8 && memcmp (b + 8, "{}      ", 8) == 0,
      "empty writer gives %" G_GSIZE_FORMAT " bytes", len);
  NfSafetensors *st = nf_safetensors_parse (b, len, &e);
  CHECK (st && nf_safetensors_n_tensors (st) == 0, "empty file rejected");
  g_clear_error (&e);
  nf_safetensors_free (st);
  g_bytes_unref (bytes);
  nf_st_writer_free (w);

  /* invalid adds are reported by write (NF_ERROR_ARGUMENT), and to_bytes gives NULL */
  static const struct {
    const char *what;
    const char *substring;
  } cases[] = {
    { "9 dimensions", "dimensions" },
    { "negative dim", "negative" },
    { "duplicate", "added twice" },
    { "__metadata__", "not allowed" },
    { "dtype", "unknown dtype" },
    { "no data", "no data" },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    float x[4] = { 1, 2, 3, 4 };
    int64_t d9[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    int64_t neg = -1, four = 4;
    w = nf_st_writer_new ();
    switch (c) {
      case 0:
        nf_st_writer_add (w, "t", NF_DTYPE_F32, 9, d9, x);
        break;
      case 1:
        nf_st_writer_add (w, "t", NF_DTYPE_F32, 1, &neg, x);
        break;
      case 2:
        nf_st_writer_add (w, "t", NF_DTYPE_F32, 1, &four, x);
        nf_st_writer_add (w, "t", NF_DTYPE_F16, 1, &four, x);
        break;
      case 3:
        nf_st_writer_add (w, "__metadata__", NF_DTYPE_F32, 1, &four, x);
        break;
      case 4:
        nf_st_writer_add (w, "t", (NfDtype) 42, 1, &four, x);
        break;
      case 5:
        nf_st_writer_add (w, "t", NF_DTYPE_F32, 1, &four, NULL);
        break;
    }
    CHECK (nf_st_writer_to_bytes (w) == NULL, "%s: to_bytes succeeded", cases[c].what);
    CHECK (!nf_st_writer_write (w, "/nonexistent/never-written", &e), "%s: written",
        cases[c].what);
    CHECK (e && e->domain == NF_ERROR && e->code == NF_ERROR_ARGUMENT
        && strstr (e->message, cases[c].substring), "%s: error %s", cases[c].what,
        e ? e->message : "(none)");
    if (e)
      printf ("ok   writer refuses %s: %s\n", cases[c].what, e->message);
    g_clear_error (&e);
    nf_st_writer_free (w);
  }

  /* F16 specials survive; NaN stays NaN through F32 */
  w = nf_st_writer_new ();
  float sp[6] = { INFINITY, -INFINITY, NAN, 65504.0f, 1e-7f, -0.0f };
  int64_t six = 6;
  nf_st_writer_add (w, "h", NF_DTYPE_F16, 1, &six, sp);
  nf_st_writer_add (w, "f", NF_DTYPE_F32, 1, &six, sp);
  bytes = nf_st_writer_to_bytes (w);
  b = g_bytes_get_data (bytes, &len);
  st = nf_safetensors_parse (b, len, &e);
  CHECK (st != NULL, "specials rejected: %s", e ? e->message : "");
  g_clear_error (&e);
  if (st) {
    float *h = nf_safetensors_get_floats (st, nf_safetensors_find (st, "h"), NULL);
    float *f = nf_safetensors_get_floats (st, nf_safetensors_find (st, "f"), NULL);
    CHECK (h && isinf (h[0]) && h[0] > 0 && isinf (h[1]) && h[1] < 0 && isnan (h[2])
        && h[3] == 65504.0f && signbit (h[5]), "F16 specials wrong");
    CHECK (f && memcmp (f, sp, sizeof sp) == 0, "F32 specials not bit-exact");
    nf_free (h);
    nf_free (f);
    nf_safetensors_free (st);
  }
  g_bytes_unref (bytes);
  nf_st_writer_free (w);
}

/* ---- truncation and fuzzing --------------------------------------------------------- */

static void
test_truncation (void)
{
  gsize len;
  guint8 *b = hand_file (&len);
  guint failed_cleanly = 0;
  for (gsize n = 0; n < len; n++) {
    /* an exact-size heap copy, so valgrind sees any read past the prefix */
    guint8 *p = g_memdup2 (b, n);
    GError *e = NULL;
    NfSafetensors *st = nf_safetensors_parse (p, n, &e);
    CHECK (st == NULL, "prefix of %" G_GSIZE_FORMAT " bytes accepted", n);
    CHECK (e && e->domain == NF_ERROR && e->message[0], "prefix %" G_GSIZE_FORMAT
        ": no error", n);
    if (!st && e)
      failed_cleanly++;
    nf_safetensors_free (st);
    g_clear_error (&e);
    g_free (p);
  }
  NfSafetensors *st = nf_safetensors_parse (b, len, NULL);
  CHECK (st != NULL, "whole file rejected");
  nf_safetensors_free (st);
  printf ("ok   truncation: %u of %" G_GSIZE_FORMAT " prefixes rejected with an error\n",
      failed_cleanly, len);
  g_free (b);
}

static void
exercise (const NfSafetensors *st)
{
  for (guint i = 0; i < nf_safetensors_n_tensors (st); i++) {
    const NfStEntry *e = nf_safetensors_entry (st, i);
    CHECK (nf_safetensors_find (st, e->name) == e, "find(%s) is not entry %u", e->name, i);
    GError *err = NULL;
    float *f = nf_safetensors_get_floats (st, e, &err);
    CHECK (f != NULL, "accepted tensor %s unreadable: %s", e->name,
        err ? err->message : "");
    g_clear_error (&err);
    nf_free (f);
  }
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, nf_safetensors_metadata_table (st));
  while (g_hash_table_iter_next (&it, &k, &v))
    CHECK (g_utf8_validate (k, -1, NULL) && g_utf8_validate (v, -1, NULL), "bad metadata");
}

static void
fuzz (const guint8 *valid, gsize len, guint iterations, guint64 seed, const char *what)
{
  static const char json_chars[] = "{}[]\":,0123456789-.e \\u";
  NfRng rng;
  nf_rng_seed (&rng, seed);
  guint accepted = 0, rejected = 0;
  for (guint it = 0; it < iterations; it++) {
    guint8 *p = g_memdup2 (valid, len);
    guint flips = 1 + nf_rng_u32 (&rng) % 4;
    for (guint f = 0; f < flips; f++) {
      gsize pos = nf_rng_u32 (&rng) % len;
      guint8 x = (guint8) (1 + nf_rng_u32 (&rng) % 255);
      if (nf_rng_u32 (&rng) % 2)        /* half the time a JSON-ish character */
        x = p[pos] ^ (guint8) json_chars[nf_rng_u32 (&rng) % strlen (json_chars)];
      p[pos] ^= x ? x : 1;
    }
    GError *e = NULL;
    NfSafetensors *st = nf_safetensors_parse (p, len, &e);
    if (st) {
      accepted++;
      CHECK (e == NULL, "fuzz %u: parsed and set an error", it);
      exercise (st);
    } else {
      rejected++;
      CHECK (e && e->domain == NF_ERROR && e->message[0], "fuzz %u: no error", it);
    }
    nf_safetensors_free (st);
    g_clear_error (&e);
    g_free (p);
  }
  printf ("ok   fuzz %s: %u byte-flip variants, %u parsed, %u rejected, no crash\n", what,
      iterations, accepted, rejected);
}

static void
test_fuzz (void)
{
  gsize len;
  guint8 *b = hand_file (&len);
  fuzz (b, len, 2000, 20240601, "hand-built file");
  g_free (b);

  /* and a writer-made file with metadata */
  NfStWriter *w = nf_st_writer_new ();
  nf_st_writer_set_metadata (w, "task", "style");
  nf_st_writer_set_metadata (w, "graph", "{\"ops\": [1, 2, {\"k\": \"v\"}]}");
  float x[6] = { 1, 2, 3, 4, 5, 6 };
  int64_t d2[2] = { 2, 3 }, d1 = 2;
  nf_st_writer_add (w, "w", NF_DTYPE_F32, 2, d2, x);
  nf_st_writer_add (w, "h", NF_DTYPE_F16, 1, &d1, x);
  GBytes *bytes = nf_st_writer_to_bytes (w);
  const guint8 *wb = g_bytes_get_data (bytes, &len);
  fuzz (wb, len, 2000, 99, "writer file");
  g_bytes_unref (bytes);
  nf_st_writer_free (w);
}

int
main (void)
{
  test_hand_built ();
  test_malformed ();
  test_round_trip ();
  test_writer_edges ();
  test_truncation ();
  test_fuzz ();
  if (failures) {
    printf ("%d failure(s)\n", failures);
    return 1;
  }
  printf ("all safetensors tests passed\n");
  return 0;
}
