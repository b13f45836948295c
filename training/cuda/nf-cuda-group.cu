/* nf-cuda-group.cu — a data-parallel group of GPUs in one process: one NCCL communicator
 * per device 0..n-1 (ncclCommInitAll), and the gradient all-reduce (sum on the rank's
 * backend stream, then a multiplication by 1/size: the mean gradient).
 *
 * Built with NCCL (NF_HAVE_NCCL, when nccl.h and libnccl were found at configure time):
 * any n up to the device count. Without NCCL: a group of one only (its all-reduce is the
 * identity); asking for more is an NF_ERROR_UNSUPPORTED error saying why.
 * Threads: every rank's thread calls nf_cuda_group_allreduce_mean with its own rank and
 * backend (NCCL's one-thread-per-device model); the calls of one all-reduce must be made
 * by all ranks, in the same order, or the group hangs (NCCL's contract).
 * What it does not: create the ranks' backends or split batches (the trainer).
 */
#include "nf-cuda-train-private.h"

#ifdef NF_HAVE_NCCL
#include <nccl.h>
#endif

#include "nf-error.h"

struct NfCudaGroup {
  int n;
#ifdef NF_HAVE_NCCL
  ncclComm_t *comms;            /* (n), comms[r] on device r; NULL for a group of one */
#endif
};

#ifdef NF_HAVE_NCCL
static gboolean
nccl_ok (ncclResult_t st, ncclComm_t comm, const char *what, GError **error)
{
  if (st == ncclSuccess)
    return TRUE;
  const char *last = comm ? ncclGetLastError (comm) : NULL;
  g_set_error (error, NF_CUDA_ERROR, NF_CUDA_ERROR_FAILED, "nccl: %s: %s (%d)%s%s", what,
      ncclGetErrorString (st), (int) st, last && *last ? ": " : "", last ? last : "");
  return FALSE;
}
#endif

NfCudaGroup *
nf_cuda_group_new (int n_devices, GError **error)
{
  if (n_devices < 1) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "a GPU group of %d devices", n_devices);
    return NULL;
  }
  int have = nf_cuda_device_count (error);
  if (have == 0)
    return NULL;
  if (n_devices > have) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "%d GPUs asked for, this machine has %d", n_devices, have);
    return NULL;
  }
  NfCudaGroup *g = g_new0 (NfCudaGroup, 1);
  g->n = n_devices;
  if (n_devices == 1)
    return g;                   /* a group of one needs no communicator */
#ifdef NF_HAVE_NCCL
  g->comms = g_new0 (ncclComm_t, n_devices);
  /* devlist NULL: devices 0..n-1, rank r on device r */
  if (!nccl_ok (ncclCommInitAll (g->comms, n_devices, NULL), NULL, "ncclCommInitAll",
          error)) {
    g_free (g->comms);
    g_free (g);
    return NULL;
  }
  return g;
#else
  g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED,
      "%d GPUs need NCCL, which this build does not have (nccl.h and libnccl were not "
      "found under the CUDA toolkit at configure time)", n_devices);
  g_free (g);
  return NULL;
#endif
}

void
nf_cuda_group_free (NfCudaGroup *g)
{
  if (!g)
    return;
#ifdef NF_HAVE_NCCL
  if (g->comms) {
    /* one thread holds every rank's communicator: finalise them together (in a group,
     * as NCCL asks of one thread finalising several), then free each */
    ncclResult_t st = ncclGroupStart ();
    for (int r = 0; st == ncclSuccess && r < g->n; r++)
      if (g->comms[r])
        st = ncclCommFinalize (g->comms[r]);
    ncclResult_t end = ncclGroupEnd ();
    if (st != ncclSuccess || end != ncclSuccess)
      g_warning ("nf_cuda_group_free: ncclCommFinalize: %s",
          ncclGetErrorString (st != ncclSuccess ? st : end));
    for (int r = 0; r < g->n; r++) {
      if (!g->comms[r])
        continue;
      ncclResult_t st = ncclCommDestroy (g->comms[r]);
      if (st != ncclSuccess)
        g_warning ("nf_cuda_group_free: ncclCommDestroy (rank %d): %s", r,
            ncclGetErrorString (st));
    }
    g_free (g->comms);
  }
#endif
  g_free (g);
}

int
nf_cuda_group_size (const NfCudaGroup *g)
{
  return g ? g->n : 0;
}

gboolean
nf_cuda_group_allreduce_mean (NfCudaGroup *g, int rank, NfCudaTrain *ct, float *buf,
    size_t n, GError **error)
{
  if (!g || !ct || rank < 0 || rank >= g->n) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "nf_cuda_group_allreduce_mean: rank %d of a group of %d", rank, g ? g->n : 0);
    return FALSE;
  }
  if (!nf_ct_need (buf, "nf_cuda_group_allreduce_mean (buf)", error))
    return FALSE;
  if (g->n == 1 || n == 0)
    return TRUE;                /* the mean over one rank is the buffer itself */
#ifdef NF_HAVE_NCCL
  if (!ct->cb->cfg.use_current_context && ct->cb->device != rank) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT,
        "nf_cuda_group_allreduce_mean: rank %d's backend is on device %d (rank r must run "
        "on device r)", rank, ct->cb->device);
    return FALSE;
  }
  if (!nf_ct_enter (ct, error))
    return FALSE;
  if (!nccl_ok (ncclAllReduce (buf, buf, n, ncclFloat, ncclSum, g->comms[rank],
              nf_ct_stream (ct)), g->comms[rank], "ncclAllReduce (sum)", error))
    return FALSE;
  return nf_cuda_affine (ct, buf, buf, n, 1.0f / (float) g->n, 0.0f, error);
#else
  g_set_error (error, NF_ERROR, NF_ERROR_UNSUPPORTED, "a GPU group of %d without NCCL", g->n);
  return FALSE;
#endif
}
