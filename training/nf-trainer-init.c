/* nf-trainer-init.c — a training run's starting weights from a weight file (--init).
 *
 * What it does: copies every tensor of the seeded model from the same-named,
 * same-shaped tensor of a weight file, with clear errors for a missing, reshaped or
 * extra tensor, and the fixed input blur's rule (below).
 * What it does not: restore a checkpoint (resume: nf-trainer.c), or train.
 */
#include "nf-trainer-private.h"

#include <math.h>
#include <string.h>

#include "nf-arch.h"
#include "nf-error.h"

/* --init: every tensor of the seeded model replaced by the same-named, same-shaped
 * tensor of a weight file of the same architecture (fine-tuning a shipped model); a
 * tensor missing from the file, one of another shape or one too many is an error, except
 * the fixed input blur (--input-blur): a file without one gains this recipe's, and a
 * file with one must hold exactly this recipe's (the trainer never changes it). */
gboolean
nf_trainer_init_from_file (NfModel *m, const char *path, GError **error)
{
  NfModel *src = nf_model_load (path, error);
  if (!src)
    return FALSE;
  gboolean ok = TRUE;
  GHashTableIter it;
  gpointer key, val;
  guint added = 0;              /* the input blur, when the file has none */
  g_hash_table_iter_init (&it, m->tensors);
  while (ok && g_hash_table_iter_next (&it, &key, &val)) {
    NfModelTensor *dst = val, *from = g_hash_table_lookup (src->tensors, key);
    if (g_str_equal (key, NF_ARCH_INPUT_BLUR ".weight")) {
      size_t n = (size_t) 9 * dst->dims[2] * dst->dims[3];
      if (!from) {
        added++;
        continue;
      }
      gboolean same_blur = from->ndim == dst->ndim;
      for (int d = 0; same_blur && d < dst->ndim; d++)
        same_blur = from->dims[d] == dst->dims[d];
      for (size_t i = 0; same_blur && i < n; i++)   /* files may hold it in fp16 */
        same_blur = fabsf (from->data[i] - dst->data[i]) <= 1e-3f * (fabsf (dst->data[i])
            + 1e-3f);
      if (!same_blur) {
        g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "--init %s: its input blur is not "
            "this recipe's --input-blur (%s in the file)", path,
            nf_model_get_metadata (src, "input_blur") ? nf_model_get_metadata (src,
                "input_blur") : "unknown sigma");
        ok = FALSE;
        break;
      }
      continue;
    }
    gboolean same = from && from->ndim == dst->ndim;
    size_t numel = 1;
    for (int d = 0; same && d < dst->ndim; d++) {
      same = from->dims[d] == dst->dims[d];
      numel *= (size_t) dst->dims[d];
    }
    if (!same) {
      g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "--init %s: %s %s (not the same "
          "architecture, width, blocks or scale?)", path, (const char *) key,
          from ? "has another shape there than in the network" : "is not in the file");
      ok = FALSE;
      break;
    }
    memcpy (dst->data, from->data, sizeof (float) * numel);
  }
  if (ok && !nf_model_tensor (m, NF_ARCH_INPUT_BLUR ".weight")
      && g_hash_table_lookup (src->tensors, NF_ARCH_INPUT_BLUR ".weight")) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "--init %s: the file's network starts "
        "with a fixed input blur (sigma %s): give the recipe --input-blur with that sigma",
        path, nf_model_get_metadata (src, "input_blur") ? nf_model_get_metadata (src,
            "input_blur") : "unknown");
    ok = FALSE;
  }
  if (ok && g_hash_table_size (src->tensors) + added != g_hash_table_size (m->tensors)) {
    g_set_error (error, NF_ERROR, NF_ERROR_ARGUMENT, "--init %s: %u tensors where the network "
        "has %u (not the same architecture?)", path, g_hash_table_size (src->tensors),
        g_hash_table_size (m->tensors));
    ok = FALSE;
  }
  nf_model_free (src);
  return ok && nf_model_bind (m, error);
}
