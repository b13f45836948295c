/* nf-recipe-schedule.c — the learning rate of a recipe at a step: warm-up, the step or
 * cosine schedule, and the linear ramp after an extension (a resume that raised iters).
 *
 * What it does not: apply the rate (nf-optim.h) or decide when a run is extended
 * (nf-trainer.c).
 */
#include "nf-recipe.h"

#include <math.h>

static double
schedule_lr_at (const NfRecipe *r, guint64 step)
{
  if (step < (guint64) r->warmup)
    return r->lr * (step + 1.0) / r->warmup;
  if (g_str_equal (r->anneal, "step") && r->lr_step > 0)
    return r->lr * pow (r->lr_gamma, (double) (step / (guint64) r->lr_step));
  if (g_str_equal (r->anneal, "cosine")) {
    double t = MIN ((double) step / MAX (r->iters, 1), 1.0);
    return r->lr_min + (r->lr - r->lr_min) * 0.5 * (1.0 + cos (G_PI * t));
  }
  return r->lr;
}

double
nf_recipe_lr_at (const NfRecipe *r, guint64 step)
{
  double lr = schedule_lr_at (r, step);
  if (r->extend_at > 0 && step >= (guint64) r->extend_at
      && step < (guint64) r->extend_at + (guint64) r->rewarmup) {
    double f = (step - (guint64) r->extend_at + 1.0) / r->rewarmup;
    lr = r->extend_lr + (lr - r->extend_lr) * f;
  }
  return lr;
}

void
nf_recipe_mark_extension (NfRecipe *r, int old_iters, guint64 steps_done)
{
  if (r->iters <= old_iters || steps_done == 0)
    return;
  int new_iters = r->iters;
  r->iters = old_iters;
  double last = nf_recipe_lr_at (r, steps_done - 1);   /* the rate of the last step done */
  r->iters = new_iters;
  r->extend_at = (int) steps_done;
  r->extend_lr = last;
}
