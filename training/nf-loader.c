/* nf-loader.c — the batch-making thread and its bounded queue.
 *
 * What it does: one GThread loops over batch indices, making each batch outside the
 * lock and appending it to a queue of at most `depth` entries (waiting on a condition
 * variable while full); the consumer takes them in order. An error ends the thread and
 * is handed to the consumer after the batches made before it. With the caller's memory
 * (nf_loader_new_full) the thread also waits for a free slot, copies the batch's pixels
 * into it and queues the slot's batch; nf_loader_release frees the slot again.
 * What it does not: make batches itself (nf-dataset.c), call the caller's allocator
 * from its thread.
 */
#include "nf-loader.h"

#include <string.h>

#include "nf-error.h"

/* One buffer set of the caller's memory and the batch that points into it. */
typedef struct {
  NfBatch batch;                /* hr, lr into the buffers below; file owned */
  float *hr;                    // (batch, 3, crop, crop), caller's memory
  float *lr;                    // (batch, 3, lr_size, lr_size), caller's memory, or NULL
  gboolean busy;                /* being filled, queued, or held by the consumer */
} Slot;

struct NfLoader {
  NfDataset *ds;
  NfBatchSpec spec;
  guint64 next_index;           /* thread: the batch it makes next */
  int depth;
  GThread *thread;
  GMutex lock;
  GCond cond;
  GQueue queue;                 /* NfBatch*, in index order */
  gboolean stop, finished;      /* finished: the thread has ended (error set or stopped) */
  GError *error;
  double waited;
  /* caller's memory (n_slots == 0: batches of their own) */
  NfLoaderMemory mem;
  int n_slots;                  /* depth + mem.held */
  Slot *slots;
  int held;                     /* batches the consumer has not released */
  size_t hr_floats, lr_floats;  /* per slot */
};

/* A free slot (lock held), or NULL. */
static Slot *
free_slot (NfLoader *l)
{
  for (int i = 0; i < l->n_slots; i++)
    if (!l->slots[i].busy)
      return &l->slots[i];
  return NULL;
}

static Slot *
slot_of (NfLoader *l, const NfBatch *b)
{
  for (int i = 0; i < l->n_slots; i++)
    if (&l->slots[i].batch == b)
      return &l->slots[i];
  return NULL;
}

/* Moves batch b's contents into slot s (frees b); FALSE with an error if the sizes are
 * not the ones the slots were made for. */
static gboolean
fill_slot (NfLoader *l, Slot *s, NfBatch *b, GError **error)
{
  size_t hr = (size_t) b->n * 3 * b->crop * b->crop;
  size_t lr = b->lr ? (size_t) b->n * 3 * b->lr_size * b->lr_size : 0;
  if (hr != l->hr_floats || lr != l->lr_floats) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "loader: batch %" G_GUINT64_FORMAT " has %zu + %zu floats, the slots %zu + %zu",
        b->index, hr, lr, l->hr_floats, l->lr_floats);
    nf_batch_free (b);
    return FALSE;
  }
  g_free (s->batch.file);
  s->batch = *b;
  memcpy (s->hr, b->hr, hr * sizeof (float));
  if (lr)
    memcpy (s->lr, b->lr, lr * sizeof (float));
  s->batch.hr = s->hr;
  s->batch.lr = lr ? s->lr : NULL;
  b->file = NULL;               /* now the slot's */
  nf_batch_free (b);
  return TRUE;
}

static gpointer
loader_thread (gpointer data)
{
  NfLoader *l = data;
  for (;;) {
    g_mutex_lock (&l->lock);
    Slot *slot = NULL;
    while (!l->stop && ((int) g_queue_get_length (&l->queue) >= l->depth
            || (l->n_slots && !(slot = free_slot (l)))))
      g_cond_wait (&l->cond, &l->lock);
    gboolean stop = l->stop;
    if (slot && !stop)
      slot->busy = TRUE;
    g_mutex_unlock (&l->lock);
    if (stop)
      break;
    GError *e = NULL;
    NfBatch *b = nf_dataset_make_batch (l->ds, &l->spec, l->next_index, &e);
    if (b && slot)
      b = fill_slot (l, slot, b, &e) ? &slot->batch : NULL;
    g_mutex_lock (&l->lock);
    if (!b) {
      if (slot)
        slot->busy = FALSE;
      l->error = e;
      l->finished = TRUE;
      g_cond_broadcast (&l->cond);
      g_mutex_unlock (&l->lock);
      return NULL;
    }
    l->next_index++;
    g_queue_push_tail (&l->queue, b);
    g_cond_broadcast (&l->cond);
    g_mutex_unlock (&l->lock);
  }
  g_mutex_lock (&l->lock);
  l->finished = TRUE;
  g_cond_broadcast (&l->cond);
  g_mutex_unlock (&l->lock);
  return NULL;
}

static void
free_slots (NfLoader *l)
{
  for (int i = 0; i < l->n_slots; i++) {
    Slot *s = &l->slots[i];
    if (s->hr)
      l->mem.free (l->mem.user, s->hr);
    if (s->lr)
      l->mem.free (l->mem.user, s->lr);
    g_free (s->batch.file);
  }
  g_free (l->slots);
  l->slots = NULL;
  l->n_slots = 0;
}

/* depth + held slots from the caller's allocator, in this thread. */
static gboolean
alloc_slots (NfLoader *l, const NfLoaderMemory *mem, GError **error)
{
  if (!mem->free || mem->held < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "loader memory: give alloc, free and held >= 1 (held %d)", mem->held);
    return FALSE;
  }
  const NfBatchSpec *sp = &l->spec;
  l->mem = *mem;
  l->hr_floats = (size_t) sp->batch * 3 * sp->crop * sp->crop;
  int lr_size = sp->sr_scale > 1 ? sp->crop / sp->sr_scale : 0;
  l->lr_floats = (size_t) sp->batch * 3 * lr_size * lr_size;
  l->n_slots = l->depth + mem->held;
  l->slots = g_new0 (Slot, l->n_slots);
  for (int i = 0; i < l->n_slots; i++) {
    Slot *s = &l->slots[i];
    if (!(s->hr = mem->alloc (mem->user, l->hr_floats * sizeof (float), error))
        || (l->lr_floats
            && !(s->lr = mem->alloc (mem->user, l->lr_floats * sizeof (float), error)))) {
      g_prefix_error (error, "loader: batch buffers (%d slots): ", l->n_slots);
      free_slots (l);
      return FALSE;
    }
  }
  return TRUE;
}

NfLoader *
nf_loader_new_full (NfDataset *ds, const NfBatchSpec *spec, guint64 first_batch, int depth,
    const NfLoaderMemory *mem, GError **error)
{
  if (!nf_batch_spec_validate (spec, error))
    return NULL;
  NfLoader *l = g_new0 (NfLoader, 1);
  l->ds = ds;
  l->spec = *spec;
  l->next_index = first_batch;
  l->depth = MAX (depth, 1);
  if (mem && mem->alloc && !alloc_slots (l, mem, error)) {
    g_free (l);
    return NULL;
  }
  g_mutex_init (&l->lock);
  g_cond_init (&l->cond);
  g_queue_init (&l->queue);
  l->thread = g_thread_try_new ("nf-loader", loader_thread, l, error);
  if (!l->thread) {
    free_slots (l);
    g_mutex_clear (&l->lock);
    g_cond_clear (&l->cond);
    g_free (l);
    return NULL;
  }
  return l;
}

NfLoader *
nf_loader_new (NfDataset *ds, const NfBatchSpec *spec, guint64 first_batch, int depth,
    GError **error)
{
  return nf_loader_new_full (ds, spec, first_batch, depth, NULL, error);
}

NfBatch *
nf_loader_next (NfLoader *l, GError **error)
{
  gint64 t0 = g_get_monotonic_time ();
  g_mutex_lock (&l->lock);
  if (l->n_slots && l->held >= l->mem.held) {
    g_mutex_unlock (&l->lock);
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "loader: the consumer already holds %d batches (its limit); release one first",
        l->held);
    return NULL;
  }
  while (g_queue_is_empty (&l->queue) && !l->finished)
    g_cond_wait (&l->cond, &l->lock);
  NfBatch *b = g_queue_pop_head (&l->queue);
  if (!b) {
    if (l->error)
      g_propagate_error (error, g_error_copy (l->error));
    else
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "the loader was stopped");
  } else if (l->n_slots) {
    l->held++;
  }
  g_cond_broadcast (&l->cond);
  g_mutex_unlock (&l->lock);
  l->waited += (g_get_monotonic_time () - t0) / 1e6;
  return b;
}

void
nf_loader_release (NfLoader *l, NfBatch *b)
{
  if (!b)
    return;
  if (!l->n_slots) {
    nf_batch_free (b);
    return;
  }
  g_mutex_lock (&l->lock);
  Slot *s = slot_of (l, b);
  if (s && s->busy) {
    s->busy = FALSE;
    l->held--;
    g_cond_broadcast (&l->cond);
  } else {
    g_warning ("nf_loader_release: batch %p is not one this loader handed out", b);
  }
  g_mutex_unlock (&l->lock);
}

double
nf_loader_wait_seconds (const NfLoader *l)
{
  return l->waited;
}

void
nf_loader_free (NfLoader *l)
{
  if (!l)
    return;
  g_mutex_lock (&l->lock);
  l->stop = TRUE;
  g_cond_broadcast (&l->cond);
  g_mutex_unlock (&l->lock);
  g_thread_join (l->thread);
  if (l->n_slots)
    g_queue_clear (&l->queue);  /* the batches live in the slots */
  else
    g_queue_clear_full (&l->queue, (GDestroyNotify) nf_batch_free);
  free_slots (l);
  g_clear_error (&l->error);
  g_mutex_clear (&l->lock);
  g_cond_clear (&l->cond);
  g_free (l);
}
