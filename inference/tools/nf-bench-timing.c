/* nf-bench-timing.c — clock, median and network selection of the benchmark tools (see
 * nf-bench-timing.h); no output of its own.
 */
#include "nf-bench-timing.h"

#include <stdlib.h>

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

double
nf_bench_now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

double
nf_bench_median (double *v, int n)
{
  qsort (v, n, sizeof (double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

gboolean
nf_bench_selected (const char *label, char *const *want)
{
  if (!want)
    return TRUE;
  for (int k = 0; want[k]; k++)
    if (g_str_has_prefix (label, want[k]))
      return TRUE;
  return FALSE;
}
