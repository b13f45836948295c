/* nf-model.h — a network ready to run: graph + weights + metadata.
 *
 * What it does: loads a safetensors model file (ours, with a "graph" in __metadata__,
 * or a PyTorch fast_neural_style TransformerNet state_dict without one), checks every
 * tensor the graph needs is present with the right shape (extra running-stat tensors
 * of TransformerNet files are ignored; any other unused tensor is an error), folds
 * batch_norm into the conv2d before it, binds weight pointers into the ops, and saves
 * models back to safetensors with their metadata.
 * What it does not: run the network (nf-engine) or build architectures (nf-arch).
 */
#pragma once

#include <glib.h>

#include "nf-graph.h"
#include "nf-safetensors.h"

G_BEGIN_DECLS

typedef enum {
  NF_TASK_STYLE,
  NF_TASK_SUPERRES,
  NF_TASK_OTHER,
} NfTask;

#define NF_FORMAT_VERSION 1

typedef struct {
  NfGraph *graph;               /* as run: batch_norm folded, weights bound */
  NfGraph *source_graph;        /* as stored/trained: batch_norm ops kept */
  GHashTable *tensors;          /* name -> NfModelTensor*, owned (the stored weights) */
  GHashTable *folded;           /* conv name.weight/.bias -> NfModelTensor*, BN folded in */
  GHashTable *metadata;         /* string -> string, owned */
  NfTask task;
  int scale;                    /* superres upscale factor (1 for style) */
  float in_lo, in_hi;           /* input_range: what pixel 0 and 255 map to */
  float out_lo, out_hi;         /* output_range */
  int size_multiple;            /* input H and W must be multiples of this */
  /* Multi-style networks (cond_instance_norm ops; nf-model-styles.c). */
  int n_styles;                 /* 0: a network of one style (no cond_instance_norm) */
  char **style_names;           /* (n_styles), NULL-terminated: the "styles" metadata,
                                 * else "0", "1", ... */
  float *style_mix;             /* (n_styles) the weights every cond_instance_norm mixes
                                 * its rows with, read at each run; one-hot on style 0
                                 * when the model is made or loaded */
} NfModel;

typedef struct {
  NfShape shape;                /* up to 4 dims; unused leading dims are 1 */
  int ndim;
  int64_t dims[4];
  float *data;                  /* nf_alloc'd */
} NfModelTensor;

NfModel *nf_model_load (const char *path, GError **error);
NfModel *nf_model_load_bytes (const guint8 *bytes, gsize len, GError **error);
NfModel *nf_model_from_safetensors (const NfSafetensors *st, GError **error);
void nf_model_free (NfModel *m);

/* Creates a model from a graph (copied) and zero weights of the right shapes;
 * metadata keys may be NULL. Used by the builders and the trainer. */
NfModel *nf_model_new_for_graph (const NfGraph *g, NfTask task, int scale, GError **error);
/* Rebuilds the run graph from source_graph: folds batch_norm into the conv before it
 * and rebinds op weight pointers. Call after tensors changed (safe any time). */
gboolean nf_model_bind (NfModel *m, GError **error);
NfModelTensor *nf_model_tensor (NfModel *m, const char *name);
/* Number of floats of a tensor: the product of its dims (its shape field is not filled
 * for every tensor). */
size_t nf_model_tensor_numel (const NfModelTensor *t);
void nf_model_set_metadata (NfModel *m, const char *key, const char *value);
const char *nf_model_get_metadata (const NfModel *m, const char *key);

gboolean nf_model_save (NfModel *m, const char *path, NfDtype dtype, GError **error);

/* ---- styles of a multi-style network (nf-model-styles.c) ----
 * The "styles" metadata is a JSON list of the N style names (the paintings' file stems,
 * e.g. ["starry_night", "great_wave"]): N distinct non-empty names without ':' or ','
 * (the element's style-mix syntax uses those). A network without cond_instance_norm may
 * name its one style (a list of one) or have none. The mix is not saved. Not thread-safe:
 * set the mix between runs, on the thread that runs the model. */
/* Checks the styles of graph g (the run graph being bound) against m's metadata and
 * keeps m's mix when N is unchanged (else one-hot on style 0). Called by nf_model_bind. */
gboolean nf_model_styles_bind (NfModel *m, const NfGraph *g, GError **error);
/* The style of a name, else of a decimal index ("3"); -1 when neither. */
int nf_model_style_index (const NfModel *m, const char *name_or_index);
/* Copies w (n = m->n_styles finite weights); an error (mix unchanged) otherwise. */
gboolean nf_model_set_style_mix (NfModel *m, const float *w, int n, GError **error);
/* One-hot on style i. */
gboolean nf_model_set_style (NfModel *m, int i, GError **error);
/* Names the N styles (validated as the metadata is) and writes the "styles" metadata. */
gboolean nf_model_set_style_names (NfModel *m, const char *const *names, GError **error);

const char *nf_task_name (NfTask t);
/* Computes the multiple of input H/W that gives an output of exactly scale x input. */
int nf_graph_size_multiple (const NfGraph *g);

G_END_DECLS
