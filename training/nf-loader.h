/* nf-loader.h — a background thread that keeps the trainer fed: it makes batches
 * first, first+1, ... with nf_dataset_make_batch (decoding, cropping, degrading) while
 * the trainer computes, holding at most `depth` finished batches.
 *
 * Because every batch is a pure function of its index, the batches (and so a training
 * run) do not depend on thread timing; a resumed run starts the loader at the batch
 * index it stopped at.
 *
 * What it does not: decide what is in a batch (nf-dataset.h).
 */
#pragma once

#include <glib.h>

#include "nf-dataset.h"

G_BEGIN_DECLS

typedef struct NfLoader NfLoader;

/* ds and spec must outlive the loader (spec is copied). depth >= 1. */
NfLoader *nf_loader_new (NfDataset *ds, const NfBatchSpec *spec, guint64 first_batch,
    int depth, GError **error);
/* The next batch in index order (waits for it); NULL with the loader's error. */
NfBatch *nf_loader_next (NfLoader *l, GError **error);
/* Seconds the caller has spent waiting in nf_loader_next (data starvation). */
double nf_loader_wait_seconds (const NfLoader *l);
/* Stops the thread (finishing the batch it is making) and frees everything queued. */
void nf_loader_free (NfLoader *l);

G_END_DECLS
