/* nf-loader.c — the batch-making thread and its bounded queue.
 *
 * What it does: one GThread loops over batch indices, making each batch outside the
 * lock and appending it to a queue of at most `depth` entries (waiting on a condition
 * variable while full); the consumer takes them in order. An error ends the thread and
 * is handed to the consumer after the batches made before it.
 * What it does not: make batches itself (nf-dataset.c).
 */
#include "nf-loader.h"

#include "nf-error.h"

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
};

static gpointer
loader_thread (gpointer data)
{
  NfLoader *l = data;
  for (;;) {
    g_mutex_lock (&l->lock);
    while (!l->stop && (int) g_queue_get_length (&l->queue) >= l->depth)
      g_cond_wait (&l->cond, &l->lock);
    gboolean stop = l->stop;
    g_mutex_unlock (&l->lock);
    if (stop)
      break;
    GError *e = NULL;
    NfBatch *b = nf_dataset_make_batch (l->ds, &l->spec, l->next_index, &e);
    g_mutex_lock (&l->lock);
    if (!b) {
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

NfLoader *
nf_loader_new (NfDataset *ds, const NfBatchSpec *spec, guint64 first_batch, int depth,
    GError **error)
{
  if (!nf_batch_spec_validate (spec, error))
    return NULL;
  NfLoader *l = g_new0 (NfLoader, 1);
  l->ds = ds;
  l->spec = *spec;
  l->next_index = first_batch;
  l->depth = MAX (depth, 1);
  g_mutex_init (&l->lock);
  g_cond_init (&l->cond);
  g_queue_init (&l->queue);
  l->thread = g_thread_try_new ("nf-loader", loader_thread, l, error);
  if (!l->thread) {
    g_mutex_clear (&l->lock);
    g_cond_clear (&l->cond);
    g_free (l);
    return NULL;
  }
  return l;
}

NfBatch *
nf_loader_next (NfLoader *l, GError **error)
{
  gint64 t0 = g_get_monotonic_time ();
  g_mutex_lock (&l->lock);
  while (g_queue_is_empty (&l->queue) && !l->finished)
    g_cond_wait (&l->cond, &l->lock);
  NfBatch *b = g_queue_pop_head (&l->queue);
  if (!b) {
    if (l->error)
      g_propagate_error (error, g_error_copy (l->error));
    else
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "the loader was stopped");
  }
  g_cond_broadcast (&l->cond);
  g_mutex_unlock (&l->lock);
  l->waited += (g_get_monotonic_time () - t0) / 1e6;
  return b;
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
  g_queue_clear_full (&l->queue, (GDestroyNotify) nf_batch_free);
  g_clear_error (&l->error);
  g_mutex_clear (&l->lock);
  g_cond_clear (&l->cond);
  g_free (l);
}
