/* nf-loader.h — a background thread that keeps the trainer fed: it makes batches
 * first, first+1, ... with nf_dataset_make_batch (decoding, cropping, degrading) while
 * the trainer computes, holding at most `depth` finished batches.
 *
 * Because every batch is a pure function of its index, the batches (and so a training
 * run) do not depend on thread timing; a resumed run starts the loader at the batch
 * index it stopped at.
 *
 * Batch memory. nf_loader_new gives batches of their own (malloc); the consumer frees
 * each with nf_batch_free or nf_loader_release. nf_loader_new_full with an
 * NfLoaderMemory instead puts the batches' pixels (hr, lr) in buffers from the caller's
 * allocator — page-locked host memory when the consumer is a GPU, so that it can issue
 * asynchronous host-to-device copies straight from the batch while the thread decodes
 * the next one (the loader itself knows nothing of CUDA). Rules of that mode:
 *   - depth + held slots are allocated at creation, in the calling thread (so a CUDA
 *     allocator runs where the caller's device is current); alloc is never called
 *     again and free only from nf_loader_free, also in the caller's thread. The loader
 *     thread only writes into slots (one memcpy of the pixels per batch).
 *   - a batch from nf_loader_next belongs to the consumer until it hands it back with
 *     nf_loader_release; the loader does not write into its slot before that. Release a
 *     batch only when nothing reads its buffers any more, asynchronous copies included
 *     (after the stream they were queued on has been synchronised, or an event recorded
 *     after them has completed). Never nf_batch_free such a batch.
 *   - the consumer holds at most `held` batches at once: nf_loader_next with `held`
 *     batches unreleased is an NF_ERROR_ARGUMENT error (it would wait for ever).
 *   - nf_loader_free frees every slot, released or not: release (or stop using) every
 *     batch first.
 * nf_loader_release works in both modes, so a consumer can use it throughout.
 *
 * What it does not: decide what is in a batch (nf-dataset.h), allocate device memory or
 * copy to a device (the consumer does).
 */
#pragma once

#include <glib.h>
#include <stddef.h>

#include "nf-dataset.h"

G_BEGIN_DECLS

typedef struct NfLoader NfLoader;

/* A caller-supplied allocator for the batches' pixel buffers (see above). alloc
 * returns bytes of host memory (NULL + error on failure); free gives it back. */
typedef void *(*NfLoaderAllocFn) (gpointer user, size_t bytes, GError **error);
typedef void (*NfLoaderFreeFn) (gpointer user, void *p);

typedef struct {
  NfLoaderAllocFn alloc;
  NfLoaderFreeFn free;
  gpointer user;                /* passed to alloc and free */
  int held;                     /* batches the consumer holds at most at once (>= 1) */
} NfLoaderMemory;

/* ds and spec must outlive the loader (spec is copied). depth >= 1. */
NfLoader *nf_loader_new (NfDataset *ds, const NfBatchSpec *spec, guint64 first_batch,
    int depth, GError **error);
/* The same with the batches' pixels in the caller's memory; mem NULL (or without alloc)
 * is nf_loader_new. mem is copied. */
NfLoader *nf_loader_new_full (NfDataset *ds, const NfBatchSpec *spec, guint64 first_batch,
    int depth, const NfLoaderMemory *mem, GError **error);
/* The next batch in index order (waits for it); NULL with the loader's error. */
NfBatch *nf_loader_next (NfLoader *l, GError **error);
/* Hands a batch from nf_loader_next back: its slot may be refilled (caller's memory),
 * or it is freed (nf_loader_new). NULL is ignored. */
void nf_loader_release (NfLoader *l, NfBatch *b);
/* Seconds the caller has spent waiting in nf_loader_next (data starvation). */
double nf_loader_wait_seconds (const NfLoader *l);
/* Stops the thread (finishing the batch it is making) and frees everything queued
 * (and every slot of the caller's memory). */
void nf_loader_free (NfLoader *l);

G_END_DECLS
