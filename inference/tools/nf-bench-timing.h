/* nf-bench-timing.h — what the benchmark tools share (nf-bench on the CPU backends,
 * tests/gpu/gpu-bench on the CUDA ones): a millisecond clock, the median of a set of
 * timings, and which networks a --nets / --arch list of name prefixes selects.
 *
 * What it does not: run or plan networks, print results (each tool has its own
 * format), or measure a machine's peak.
 */
#pragma once

#include <glib.h>

/* The monotonic clock in milliseconds. */
double nf_bench_now_ms (void);

/* The median of v[0..n-1] (n >= 1; the mean of the middle two when n is even). Sorts v
 * in place, so v[0] is the minimum afterwards. */
double nf_bench_median (double *v, int n);

/* Whether label starts with one of the prefixes in want (NULL-terminated); every label
 * is selected when want is NULL. */
gboolean nf_bench_selected (const char *label, char *const *want);
