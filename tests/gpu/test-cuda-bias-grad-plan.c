/* test-cuda-bias-grad-plan.c — the cut of the bias-gradient reduction
 * (inference/cuda/nf-cuda-bias-grad.h) checked on the host, no GPU: for shapes with
 * 1, 3, 64, 256, 300 and 600 channels, tiny and larger images, batch 1 and 3, and GPUs of
 * 1, 46 and 132 multiprocessors, both layouts, it walks what every block and thread of
 * nf-cuda-bias-grad.cu's kernels reads (the same loops, with the plan's numbers and
 * nf_bias_grad_tile) and checks that every element of dy is read exactly once, that
 * stage 1 writes only its n_partial partial sums and each once, that stage 2 finds each
 * channel's partials where stage 1 put them (per-channel sums of integer-valued data
 * equal the direct sums exactly), and that the work is spread: at least min(planes or
 * rows, 2 per SM) blocks where the tensor is large enough.
 * Exit: 0 pass, 1 a case failed.
 * Does not: run the kernels (test-gpu-backward compares the GPU's bias gradients with
 * cpu-ref).
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "nf-cuda-bias-grad.h"

static int n_cases, n_failed;

static void
expect (gboolean ok, const char *what, NfShape s, int nhwc, int sms)
{
  n_cases++;
  if (!ok) {
    n_failed++;
    printf ("FAIL %s (%dx%dx%dx%d %s, %d SMs)\n", what, s.n, s.c, s.h, s.w,
        nhwc ? "NHWC" : "NCHW", sms);
  }
}

/* Offset of (n, c, y, x) in the layout. */
static size_t
off (NfShape s, int nhwc, int n, int c, int y, int x)
{
  return nhwc ? (((size_t) n * s.h + y) * s.w + x) * s.c + c
      : (((size_t) n * s.c + c) * s.h + y) * s.w + x;
}

static void
check (NfShape s, int nhwc, int sms)
{
  size_t numel = nf_shape_numel (s);
  NfBiasGradPlan p = nf_bias_grad_plan (s, nhwc, sms);
  /* dy[n, c, y, x] = small integers, so double sums are exact */
  double *dy = g_new (double, numel);
  for (int n = 0; n < s.n; n++)
    for (int c = 0; c < s.c; c++)
      for (int y = 0; y < s.h; y++)
        for (int x = 0; x < s.w; x++)
          dy[off (s, nhwc, n, c, y, x)] = (double) ((n * 7 + c * 13 + y * 3 + x) % 11) - 5.0;
  int *reads = g_new0 (int, numel);
  double *partial = g_new0 (double, p.n_partial + 1);
  int *writes = g_new0 (int, p.n_partial + 1);
  gboolean bounds = TRUE;

  /* stage 1, block by block, thread by thread, as the kernels loop */
  for (unsigned b = 0; b < p.blocks; b++) {
    if (nhwc) {
      size_t r0 = (size_t) b * p.rows_per_block;
      size_t r1 = r0 + p.rows_per_block < p.rows ? r0 + p.rows_per_block : p.rows;
      for (int c0 = 0; c0 < p.c; c0 += p.threads) {
        int cw, g;
        nf_bias_grad_tile (&p, c0, &cw, &g);
        double sh[NF_BIAS_GRAD_THREADS] = { 0 };
        for (int t = 0; t < p.threads; t++) {
          if (t / cw >= g)
            continue;
          for (size_t r = r0 + t / cw; r < r1; r += g) {
            size_t i = r * p.c + c0 + t % cw;
            if (i >= numel) {
              bounds = FALSE;
              continue;
            }
            reads[i]++;
            sh[t] += dy[i];
          }
        }
        for (int t = 0; t < cw; t++) {
          double tot = 0.0;
          for (int j = 0; j < g; j++)
            tot += sh[j * cw + t];
          size_t w = (size_t) b * p.c + c0 + t;
          if (w >= p.n_partial) {
            bounds = FALSE;
            continue;
          }
          partial[w] = tot;
          writes[w]++;
        }
      }
    } else {
      size_t plane = b / p.chunks, ch = b % p.chunks;
      size_t begin = ch * p.chunk, end = begin + p.chunk < p.hw ? begin + p.chunk : p.hw;
      double tot = 0.0;
      for (int t = 0; t < p.threads; t++)
        for (size_t j = begin + t; j < end; j += p.threads) {
          size_t i = plane * p.hw + j;
          if (i >= numel) {
            bounds = FALSE;
            continue;
          }
          reads[i]++;
          tot += dy[i];
        }
      if (b >= p.n_partial)
        bounds = FALSE;
      else {
        partial[b] = tot;
        writes[b]++;
      }
    }
  }
  expect (bounds, "stage 1 stays inside dy and the partial sums", s, nhwc, sms);
  gboolean once = TRUE;
  for (size_t i = 0; i < numel; i++)
    once = once && reads[i] == 1;
  expect (once, "every element of dy is read exactly once", s, nhwc, sms);
  gboolean written = TRUE;
  for (size_t i = 0; i < p.n_partial; i++)
    written = written && writes[i] == 1;
  expect (written, "every partial sum is written exactly once", s, nhwc, sms);

  /* stage 2 against the direct per-channel sums */
  gboolean sums = TRUE;
  for (int c = 0; c < s.c; c++) {
    double got = 0.0, want = 0.0;
    for (size_t i = 0; i < p.outer; i++)
      for (size_t j = 0; j < p.inner; j++) {
        size_t k = (i * p.c + c) * p.inner + j;
        if (k >= p.n_partial)
          bounds = FALSE;
        else
          got += partial[k];
      }
    for (int n = 0; n < s.n; n++)
      for (int y = 0; y < s.h; y++)
        for (int x = 0; x < s.w; x++)
          want += dy[off (s, nhwc, n, c, y, x)];
    sums = sums && got == want;
  }
  expect (bounds && sums, "stage 2 adds each channel's partial sums", s, nhwc, sms);

  /* spread: enough blocks for the GPU where there is enough work */
  size_t units = nhwc ? p.rows / 32 : (size_t) s.n * s.c * ((p.hw + 1023) / 1024);
  size_t want_blocks = MIN (units, (size_t) 2 * sms);
  expect (p.blocks >= want_blocks, "the work is spread over the GPU", s, nhwc, sms);
  g_free (dy);
  g_free (reads);
  g_free (partial);
  g_free (writes);
}

int
main (void)
{
  const int cs[] = { 1, 3, 64, 256, 300, 600 };
  const int sms[] = { 1, 46, 132 };
  const struct {
    int n, h, w;
  } sizes[] = { {1, 1, 1}, {1, 7, 5}, {3, 33, 17}, {2, 128, 96}, {1, 270, 480} };
  for (guint i = 0; i < G_N_ELEMENTS (cs); i++)
    for (guint j = 0; j < G_N_ELEMENTS (sizes); j++)
      for (guint k = 0; k < G_N_ELEMENTS (sms); k++)
        for (int nhwc = 0; nhwc < 2; nhwc++) {
          NfShape s = { sizes[j].n, cs[i], sizes[j].h, sizes[j].w };
          if (nf_shape_numel (s) > 4000000)    /* keep the walk quick */
            continue;
          check (s, nhwc, sms[k]);
        }
  NfShape empty = { 0, 3, 4, 4 };
  NfBiasGradPlan p = nf_bias_grad_plan (empty, 1, 132);
  expect (p.blocks == 0 && p.n_partial == 0, "an empty tensor has no work", empty, 1, 132);
  printf ("%d of %d cases failed\n", n_failed, n_cases);
  return n_failed ? 1 : 0;
}
