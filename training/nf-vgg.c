/* nf-vgg.c — the VGG loss network from safetensors (ours or torchvision's), as a graph.
 *
 * What it does: reads the conv tensors of a file, recovers the block structure from
 * the names (convB_I or features.N), builds conv/relu/pool ops named convB_I, reluB_I,
 * poolB up to the deepest requested layer, copies and shape-checks the weights, and
 * holds the preprocessing (permutation + affine per channel) with its inverse and
 * gradient. Also a seeded random VGG-shaped network for tests.
 * What it does not: run anything, or know about losses.
 */
#include "nf-vgg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nf-error.h"

typedef struct {
  int block, index;             /* convB_I */
  char *w_name, *b_name;        /* tensor names in the file (NULL for random nets) */
  int cin, cout;
} ConvSpec;

typedef struct {
  GArray *convs;                /* ConvSpec, in network order */
  gboolean *pool_after_block;   /* indexed by block (1-based), n_blocks + 1 entries */
  int n_blocks;
} VggLayout;

static void
layout_clear (VggLayout *l)
{
  if (l->convs) {
    for (guint i = 0; i < l->convs->len; i++) {
      ConvSpec *c = &g_array_index (l->convs, ConvSpec, i);
      g_free (c->w_name);
      g_free (c->b_name);
    }
    g_array_free (l->convs, TRUE);
  }
  g_free (l->pool_after_block);
  memset (l, 0, sizeof (*l));
}

/* Every layer name in order: convB_I, reluB_I, ..., poolB. */
static char **
layout_layer_names (const VggLayout *l)
{
  GPtrArray *a = g_ptr_array_new ();
  for (guint i = 0; i < l->convs->len; i++) {
    const ConvSpec *c = &g_array_index (l->convs, ConvSpec, i);
    g_ptr_array_add (a, g_strdup_printf ("conv%d_%d", c->block, c->index));
    g_ptr_array_add (a, g_strdup_printf ("relu%d_%d", c->block, c->index));
    gboolean last_of_block = i + 1 == l->convs->len
        || g_array_index (l->convs, ConvSpec, i + 1).block != c->block;
    if (last_of_block && l->pool_after_block[c->block])
      g_ptr_array_add (a, g_strdup_printf ("pool%d", c->block));
  }
  g_ptr_array_add (a, NULL);
  return (char **) g_ptr_array_free (a, FALSE);
}

static char *
join_layers (char **names)
{
  return g_strjoinv (", ", names);
}

/* The graph up to (and including) layer index `last` of names. */
static NfGraph *
build_graph (const VggLayout *l, NfVggPool pool, char **names, int last)
{
  NfGraphBuilder *b = nf_graph_builder_new ("x");
  int v = 0, k = 0;             /* current value id, index into names */
  for (guint i = 0; i < l->convs->len && k <= last; i++) {
    const ConvSpec *c = &g_array_index (l->convs, ConvSpec, i);
    NfOp conv = { .type = NF_OP_CONV2D, .k = 3, .stride = 1, .padding = 1,
      .pad_mode = NF_PAD_ZERO, .cin = c->cin, .cout = c->cout, .has_bias = TRUE
    };
    v = nf_graph_builder_add (b, &conv, names[k], &v, 1, names[k]);     // (1, cout, h, w)
    if (++k > last)
      break;
    NfOp relu = { .type = NF_OP_RELU };
    v = nf_graph_builder_add (b, &relu, NULL, &v, 1, names[k]);
    if (++k > last)
      break;
    if (names[k] && g_str_has_prefix (names[k], "pool")) {
      NfOp p = { .type = pool == NF_VGG_POOL_AVG ? NF_OP_AVG_POOL2D : NF_OP_MAX_POOL2D,
        .k = 2, .stride = 2
      };
      v = nf_graph_builder_add (b, &p, NULL, &v, 1, names[k]);          // (1, cout, h/2, w/2)
      k++;
    }
  }
  return nf_graph_builder_finish (b, v);
}

static void
set_preprocess (NfVgg *v, NfVggPreprocess p)
{
  v->preprocess = p;
  if (p == NF_VGG_PREPROCESS_TORCH) {
    static const float mean[3] = { 0.485f, 0.456f, 0.406f };
    static const float std[3] = { 0.229f, 0.224f, 0.225f };
    for (int c = 0; c < 3; c++) {
      v->perm[c] = c;
      v->scale[c] = 1.0f / (255.0f * std[c]);
      v->shift[c] = -mean[c] / std[c];
    }
  } else {
    static const float mean_bgr[3] = { 103.939f, 116.779f, 123.68f };
    for (int c = 0; c < 3; c++) {
      v->perm[c] = 2 - c;
      v->scale[c] = 1.0f;
      v->shift[c] = -mean_bgr[c];
    }
  }
}

/* Index in names of the deepest requested layer; -1 with an error if one is missing. */
static int
deepest_layer (const NfVgg *v, const NfVggOptions *opts, GError **error)
{
  int n = (int) g_strv_length (v->layers);
  if (!opts || !opts->layers)
    return n - 1;
  int deepest = -1;
  for (int i = 0; opts->layers[i]; i++) {
    int found = -1;
    for (int j = 0; j < n; j++)
      if (g_str_equal (v->layers[j], opts->layers[i]))
        found = j;
    if (found < 0) {
      char *have = join_layers (v->layers);
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
          "the loss network %s (%s) has no layer \"%s\"; it has: %s", v->arch, v->source,
          opts->layers[i], have);
      g_free (have);
      return -1;
    }
    deepest = MAX (deepest, found);
  }
  return deepest < 0 ? n - 1 : deepest;
}

/* ---- reading the layout from tensor names -------------------------------------- */

static int
cmp_int (gconstpointer a, gconstpointer b)
{
  return *(const int *) a - *(const int *) b;
}

static gboolean
layout_from_caffe_names (const NfSafetensors *st, VggLayout *l, GError **error)
{
  l->convs = g_array_new (FALSE, TRUE, sizeof (ConvSpec));
  GArray *keys = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < nf_safetensors_n_tensors (st); i++) {
    const char *name = nf_safetensors_entry (st, i)->name;
    int bl, ix, end = 0;
    if (sscanf (name, "conv%d_%d.weight%n", &bl, &ix, &end) == 2 && name[end] == '\0'
        && bl >= 1 && bl <= 9 && ix >= 1 && ix <= 99) {
      int key = bl * 100 + ix;
      g_array_append_val (keys, key);
    }
  }
  g_array_sort (keys, cmp_int);
  for (guint i = 0; i < keys->len; i++) {
    int key = g_array_index (keys, int, i);
    ConvSpec c = { .block = key / 100, .index = key % 100 };
    int expect_block = i == 0 ? 1 : g_array_index (l->convs, ConvSpec, i - 1).block;
    int expect_index = i == 0 ? 1 : g_array_index (l->convs, ConvSpec, i - 1).index + 1;
    if (!(c.block == expect_block && c.index == expect_index)
        && !(i > 0 && c.block == expect_block + 1 && c.index == 1)) {
      g_array_free (keys, TRUE);
      g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
          "conv%d_%d.weight does not follow the layer before it (expected conv%d_%d or "
          "conv%d_1)", c.block, c.index, expect_block, expect_index, expect_block + 1);
      return FALSE;
    }
    c.w_name = g_strdup_printf ("conv%d_%d.weight", c.block, c.index);
    c.b_name = g_strdup_printf ("conv%d_%d.bias", c.block, c.index);
    g_array_append_val (l->convs, c);
  }
  g_array_free (keys, TRUE);
  return TRUE;
}

static gboolean
layout_from_torch_names (const NfSafetensors *st, VggLayout *l, GError **error)
{
  l->convs = g_array_new (FALSE, TRUE, sizeof (ConvSpec));
  GArray *idx = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < nf_safetensors_n_tensors (st); i++) {
    const NfStEntry *e = nf_safetensors_entry (st, i);
    int n, end = 0;
    if (sscanf (e->name, "features.%d.weight%n", &n, &end) == 1 && e->name[end] == '\0') {
      if (e->ndim != 4) {
        g_array_free (idx, TRUE);
        g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
            "%s is not a convolution (%d dims): VGG with batch norm (vgg16_bn) is not "
            "supported as a loss network; use plain vgg16/vgg19", e->name, e->ndim);
        return FALSE;
      }
      g_array_append_val (idx, n);
    }
  }
  g_array_sort (idx, cmp_int);
  int block = 1, index = 1;
  for (guint i = 0; i < idx->len; i++) {
    int n = g_array_index (idx, int, i);
    if (i > 0) {
      int step = n - g_array_index (idx, int, i - 1);
      if (step == 2) {
        index++;
      } else if (step == 3) {
        block++;
        index = 1;
      } else {
        g_array_free (idx, TRUE);
        g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
            "features.%d.weight: torchvision VGG layers are conv, relu[, pool]; a gap of "
            "%d indices is not that layout", n, step);
        return FALSE;
      }
    } else if (n != 0) {
      g_array_free (idx, TRUE);
      g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
          "the first convolution is features.%d, expected features.0", n);
      return FALSE;
    }
    ConvSpec c = { .block = block, .index = index };
    c.w_name = g_strdup_printf ("features.%d.weight", n);
    c.b_name = g_strdup_printf ("features.%d.bias", n);
    g_array_append_val (l->convs, c);
  }
  g_array_free (idx, TRUE);
  return TRUE;
}

/* Shapes from the file; fills cin/cout and checks the chain. */
static gboolean
layout_check_shapes (const NfSafetensors *st, VggLayout *l, GError **error)
{
  int prev = 3;
  for (guint i = 0; i < l->convs->len; i++) {
    ConvSpec *c = &g_array_index (l->convs, ConvSpec, i);
    const NfStEntry *w = nf_safetensors_find (st, c->w_name);
    const NfStEntry *b = nf_safetensors_find (st, c->b_name);
    if (!b) {
      g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS, "%s has no %s", c->w_name, c->b_name);
      return FALSE;
    }
    if (w->ndim != 4 || w->dims[2] != 3 || w->dims[3] != 3 || w->dims[1] != prev
        || w->dims[0] < 1 || w->dims[0] > 65536) {
      g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
          "%s has shape %s(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", ...), expected "
          "(out, %d, 3, 3)", c->w_name, w->ndim == 4 ? "" : "of wrong rank ",
          w->dims[0], w->ndim > 1 ? w->dims[1] : 0, prev);
      return FALSE;
    }
    if (b->ndim != 1 || b->dims[0] != w->dims[0]) {
      g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
          "%s does not have shape (%" G_GINT64_FORMAT ")", c->b_name, w->dims[0]);
      return FALSE;
    }
    c->cin = prev;
    c->cout = (int) w->dims[0];
    prev = c->cout;
  }
  return TRUE;
}

static int
block_size (const VggLayout *l, int block)
{
  int n = 0;
  for (guint i = 0; i < l->convs->len; i++)
    n += g_array_index (l->convs, ConvSpec, i).block == block;
  return n;
}

static void
layout_set_pools (VggLayout *l, const char *arch, const char *pooling_after)
{
  l->n_blocks = l->convs->len ? g_array_index (l->convs, ConvSpec, l->convs->len - 1).block : 0;
  l->pool_after_block = g_new0 (gboolean, l->n_blocks + 2);
  for (int b = 1; b < l->n_blocks; b++)
    l->pool_after_block[b] = TRUE;
  /* The last block in the file: pooled when complete for the architecture, or when the
   * metadata says so. */
  static const int full16[] = { 0, 2, 2, 3, 3, 3 }, full19[] = { 0, 2, 2, 4, 4, 4 };
  int b = l->n_blocks;
  if (b >= 1 && b <= 5) {
    int have = block_size (l, b);
    if ((g_str_equal (arch, "vgg16") && have == full16[b])
        || (g_str_equal (arch, "vgg19") && have == full19[b]))
      l->pool_after_block[b] = TRUE;
  }
  if (pooling_after && b >= 1) {
    char **items = g_strsplit (pooling_after, ",", -1);
    const ConvSpec *last = &g_array_index (l->convs, ConvSpec, l->convs->len - 1);
    char *name = g_strdup_printf ("conv%d_%d", last->block, last->index);
    l->pool_after_block[b] = FALSE;
    for (int i = 0; items[i]; i++)
      if (g_str_equal (g_strstrip (items[i]), name))
        l->pool_after_block[b] = TRUE;
    g_free (name);
    g_strfreev (items);
  }
}

static const char *
guess_arch (const VggLayout *l)
{
  int b3 = block_size (l, 3);
  if (b3 == 4)
    return "vgg19";
  if (b3 == 3)
    return "vgg16";
  return "vgg";
}

/* ---- public -------------------------------------------------------------------- */

void
nf_vgg_free (NfVgg *v)
{
  if (!v)
    return;
  g_free (v->arch);
  g_free (v->source);
  nf_model_free (v->model);
  g_strfreev (v->layers);
  g_free (v);
}

static NfVgg *
finish (NfVgg *v, VggLayout *l, const NfVggOptions *opts, const NfSafetensors *st,
    guint64 seed, GError **error)
{
  v->pool = opts ? opts->pool : NF_VGG_POOL_MAX;
  v->layers = layout_layer_names (l);
  int last = deepest_layer (v, opts, error);
  if (last < 0)
    return NULL;
  NfGraph *g = build_graph (l, v->pool, v->layers, last);
  v->model = nf_model_new_for_graph (g, NF_TASK_OTHER, 1, error);
  nf_graph_free (g);
  if (!v->model)
    return NULL;
  NfRng rng;
  nf_rng_seed (&rng, seed);
  for (guint i = 0; i < l->convs->len; i++) {
    const ConvSpec *c = &g_array_index (l->convs, ConvSpec, i);
    char *wk = g_strdup_printf ("conv%d_%d.weight", c->block, c->index);
    char *bk = g_strdup_printf ("conv%d_%d.bias", c->block, c->index);
    NfModelTensor *w = nf_model_tensor (v->model, wk);
    NfModelTensor *b = nf_model_tensor (v->model, bk);
    g_free (wk);
    g_free (bk);
    if (!w)
      break;                    /* past the deepest requested layer */
    size_t nw = (size_t) c->cout * c->cin * 9;
    if (st) {
      float *fw = nf_safetensors_get_floats (st, nf_safetensors_find (st, c->w_name), error);
      float *fb = fw ? nf_safetensors_get_floats (st, nf_safetensors_find (st, c->b_name),
          error) : NULL;
      if (!fb) {
        nf_free (fw);
        g_prefix_error (error, "%s: ", v->source);
        return NULL;
      }
      memcpy (w->data, fw, nw * sizeof (float));
      memcpy (b->data, fb, (size_t) c->cout * sizeof (float));
      nf_free (fw);
      nf_free (fb);
    } else {
      float std = sqrtf (2.0f / (c->cin * 9.0f));       /* He-normal */
      for (size_t q = 0; q < nw; q++)
        w->data[q] = std * nf_rng_normal (&rng);
      for (int q = 0; q < c->cout; q++)
        b->data[q] = 0.01f * nf_rng_normal (&rng);
    }
  }
  if (!nf_model_bind (v->model, error))
    return NULL;
  nf_model_set_metadata (v->model, "name", v->arch);
  nf_model_set_metadata (v->model, "preprocess",
      v->preprocess == NF_VGG_PREPROCESS_TORCH ? "torch" : "caffe-bgr");
  return v;
}

NfVgg *
nf_vgg_load (const char *path, const NfVggOptions *opts, GError **error)
{
  NfSafetensors *st = nf_safetensors_load (path, error);
  if (!st)
    return NULL;
  VggLayout l = { 0 };
  NfVgg *v = g_new0 (NfVgg, 1);
  v->source = g_strdup (path);
  gboolean torch_names = nf_safetensors_find (st, "features.0.weight") != NULL;
  gboolean caffe_names = nf_safetensors_find (st, "conv1_1.weight") != NULL;
  if (!torch_names && !caffe_names) {
    g_set_error (error, NF_ERROR, NF_ERROR_WEIGHTS,
        "%s is not a VGG loss network: it has neither conv1_1.weight (our lossnets) "
        "nor features.0.weight (torchvision)", path);
    goto fail;
  }
  if (!(torch_names ? layout_from_torch_names (st, &l, error)
          : layout_from_caffe_names (st, &l, error))
      || !layout_check_shapes (st, &l, error)) {
    g_prefix_error (error, "%s: ", path);
    goto fail;
  }
  const char *arch = nf_safetensors_metadata (st, "architecture");
  v->arch = g_strdup (arch && (g_str_equal (arch, "vgg16") || g_str_equal (arch, "vgg19"))
      ? arch : guess_arch (&l));
  layout_set_pools (&l, v->arch, nf_safetensors_metadata (st, "pooling_after"));

  NfVggPreprocess pre = opts ? opts->preprocess : NF_VGG_PREPROCESS_AUTO;
  if (pre == NF_VGG_PREPROCESS_AUTO) {
    const char *m = nf_safetensors_metadata (st, "preprocess");
    if (m && g_str_equal (m, "torch"))
      pre = NF_VGG_PREPROCESS_TORCH;
    else if (m && g_str_equal (m, "caffe-bgr"))
      pre = NF_VGG_PREPROCESS_CAFFE_BGR;
    else if (m) {
      g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
          "%s: unknown preprocess \"%s\" in the metadata (known: caffe-bgr, torch)", path, m);
      goto fail;
    } else
      pre = torch_names ? NF_VGG_PREPROCESS_TORCH : NF_VGG_PREPROCESS_CAFFE_BGR;
  }
  set_preprocess (v, pre);
  if (!finish (v, &l, opts, st, 0, error))
    goto fail;
  layout_clear (&l);
  nf_safetensors_free (st);
  return v;

fail:
  layout_clear (&l);
  nf_safetensors_free (st);
  nf_vgg_free (v);
  return NULL;
}

NfVgg *
nf_vgg_new_random (int n_blocks, const int *convs, const int *widths,
    const NfVggOptions *opts, guint64 seed, GError **error)
{
  if (n_blocks < 1 || n_blocks > 9) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "1..9 blocks, not %d", n_blocks);
    return NULL;
  }
  VggLayout l = { 0 };
  l.convs = g_array_new (FALSE, TRUE, sizeof (ConvSpec));
  int prev = 3;
  for (int b = 0; b < n_blocks; b++)
    for (int i = 0; i < convs[b]; i++) {
      ConvSpec c = { .block = b + 1, .index = i + 1, .cin = prev, .cout = widths[b] };
      g_array_append_val (l.convs, c);
      prev = widths[b];
    }
  l.n_blocks = n_blocks;
  l.pool_after_block = g_new0 (gboolean, n_blocks + 2);
  for (int b = 1; b <= n_blocks; b++)
    l.pool_after_block[b] = TRUE;
  NfVgg *v = g_new0 (NfVgg, 1);
  v->arch = g_strdup ("random");
  v->source = g_strdup_printf ("seeded random, seed %" G_GUINT64_FORMAT, seed);
  set_preprocess (v, opts && opts->preprocess == NF_VGG_PREPROCESS_TORCH
      ? NF_VGG_PREPROCESS_TORCH : NF_VGG_PREPROCESS_CAFFE_BGR);
  if (!finish (v, &l, opts, NULL, seed, error)) {
    layout_clear (&l);
    nf_vgg_free (v);
    return NULL;
  }
  layout_clear (&l);
  return v;
}

int
nf_vgg_value (const NfVgg *v, const char *layer, GError **error)
{
  const NfGraph *g = v->model->graph;
  for (int i = 0; i < g->n_values; i++)
    if (g_str_equal (g->value_names[i], layer) && i != g->input)
      return i;
  char *have = join_layers (v->layers);
  if (g_strv_contains ((const char *const *) v->layers, layer))
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "layer \"%s\" is deeper than %s, the deepest layer this loss network was built "
        "for (list it in NfVggOptions.layers)", layer, g->value_names[g->output]);
  else
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "the loss network %s (%s) has no layer \"%s\"; it has: %s", v->arch, v->source,
        layer, have);
  g_free (have);
  return -1;
}

char *
nf_vgg_describe_layers (const NfVgg *v)
{
  return join_layers (v->layers);
}

void
nf_vgg_preprocess (const NfVgg *v, const float *rgb, float *x, int n, size_t hw)
{
  for (int b = 0; b < n; b++)
    for (int c = 0; c < 3; c++) {
      const float *src = rgb + ((size_t) b * 3 + v->perm[c]) * hw;
      float *dst = x + ((size_t) b * 3 + c) * hw;
      float s = v->scale[c], t = v->shift[c];
      for (size_t i = 0; i < hw; i++)
        dst[i] = src[i] * s + t;
    }
}

void
nf_vgg_deprocess (const NfVgg *v, const float *x, float *rgb, int n, size_t hw)
{
  for (int b = 0; b < n; b++)
    for (int c = 0; c < 3; c++) {
      const float *src = x + ((size_t) b * 3 + c) * hw;
      float *dst = rgb + ((size_t) b * 3 + v->perm[c]) * hw;
      float s = v->scale[c], t = v->shift[c];
      for (size_t i = 0; i < hw; i++)
        dst[i] = (src[i] - t) / s;
    }
}

void
nf_vgg_preprocess_backward (const NfVgg *v, const float *dx, float *drgb, int n, size_t hw)
{
  for (int b = 0; b < n; b++)
    for (int c = 0; c < 3; c++) {
      const float *src = dx + ((size_t) b * 3 + c) * hw;
      float *dst = drgb + ((size_t) b * 3 + v->perm[c]) * hw;
      float s = v->scale[c];
      for (size_t i = 0; i < hw; i++)
        dst[i] = src[i] * s;
    }
}
