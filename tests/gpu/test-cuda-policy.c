/* test-cuda-policy.c — the CUDA backend's host-side decisions (inference/cuda/
 * nf-cuda-policy.h) with made-up inputs; needs the CUDA and cuDNN headers, no GPU.
 *
 * Checks: the cuDNN statuses that mean out of memory (cuDNN 9's two allocation sub-codes,
 * or cuDNN 8's ALLOC_FAILED) and that every other failure is FAILED; the sticky CUDA
 * errors against the toolkit's own driver_types.h (every error whose comment says the
 * process "must be terminated and relaunched" is sticky, no other but the uncorrectable
 * ECC error; a newer toolkit that adds one fails here until the table learns it); the
 * order in which convolution algorithms are tried (fp32: GEMM family only, deterministic
 * first, so conv_transpose2d's forward takes backward-data ALGO_1 before the faster ALGO_0
 * that sums with atomics; fp16: cuDNN's order) over made-up candidate lists; which
 * convolutions fp16 runs with zero-padded input channels, and to how many (and that the
 * backend refuses other pad_input_channels values); what a
 * fused-convolution trial means for cuDNN's failures (unfused) and sticky CUDA errors
 * (fatal).
 * Exit: 0 pass, 1 a case failed.
 * Does not: run anything on a GPU (the gpu suite does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nf-backend.h"
#include "nf-cuda-policy.h"
#include "nf-error.h"

static int n_cases, n_failed;

static void
expect (gboolean ok, const char *what)
{
  n_cases++;
  if (!ok) {
    n_failed++;
    printf ("FAIL %s\n", what);
  }
}

/* ---- cuDNN statuses as error codes ------------------------------------------------------ */

static void
test_error_codes (void)
{
#if CUDNN_MAJOR >= 9
  const cudnnStatus_t oom[] = { CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED,
    CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED };
  const cudnnStatus_t failed[] = { CUDNN_STATUS_NOT_INITIALIZED, CUDNN_STATUS_BAD_PARAM,
    CUDNN_STATUS_BAD_PARAM_NULL_POINTER, CUDNN_STATUS_NOT_SUPPORTED,
    CUDNN_STATUS_NOT_SUPPORTED_SHAPE, CUDNN_STATUS_INTERNAL_ERROR,
    CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED, CUDNN_STATUS_EXECUTION_FAILED,
    CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER, CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED };
#else
  const cudnnStatus_t oom[] = { CUDNN_STATUS_ALLOC_FAILED };
  const cudnnStatus_t failed[] = { CUDNN_STATUS_NOT_INITIALIZED, CUDNN_STATUS_BAD_PARAM,
    CUDNN_STATUS_INTERNAL_ERROR, CUDNN_STATUS_INVALID_VALUE, CUDNN_STATUS_ARCH_MISMATCH,
    CUDNN_STATUS_EXECUTION_FAILED, CUDNN_STATUS_NOT_SUPPORTED };
#endif
  char what[128];
  for (guint i = 0; i < G_N_ELEMENTS (oom); i++) {
    g_snprintf (what, sizeof what, "cuDNN status %d is out of memory", (int) oom[i]);
    expect (nf_cudnn_error_code (oom[i]) == NF_CUDA_ERROR_OUT_OF_MEMORY, what);
  }
  for (guint i = 0; i < G_N_ELEMENTS (failed); i++) {
    g_snprintf (what, sizeof what, "cuDNN status %d is a plain failure", (int) failed[i]);
    expect (nf_cudnn_error_code (failed[i]) == NF_CUDA_ERROR_FAILED, what);
  }
}

/* ---- sticky CUDA errors ------------------------------------------------------------------ */

static void
test_sticky (void)
{
  char *text = NULL;
  GError *e = NULL;
  if (!g_file_get_contents (NF_CUDA_DRIVER_TYPES_H, &text, NULL, &e)) {
    expect (FALSE, e->message);
    g_error_free (e);
    return;
  }
  /* every documented cudaError: its comment, its name and its value */
  GRegex *re = g_regex_new ("/\\*\\*((?:(?!\\*/).)*)\\*/\\s*(cudaError\\w+)\\s*=\\s*(\\d+)",
      G_REGEX_DOTALL, 0, NULL);
  GMatchInfo *m = NULL;
  int n_errors = 0, n_sticky = 0;
  char what[160];
  for (g_regex_match (re, text, 0, &m); g_match_info_matches (m); g_match_info_next (m, NULL)) {
    char *doc = g_match_info_fetch (m, 1), *name = g_match_info_fetch (m, 2);
    char *num = g_match_info_fetch (m, 3);
    int v = atoi (num);
    /* the comment's words, without the line breaks and leading asterisks */
    char **words = g_regex_split_simple ("[\\s*]+", doc, 0, 0);
    char *flat = g_strjoinv (" ", words);
    gboolean documented = strstr (flat, "terminated and relaunched") != NULL;
    g_strfreev (words);
    g_free (flat);
    gboolean want = documented || v == 214;     /* + cudaErrorECCUncorrectable */
    n_errors++;
    n_sticky += want;
    g_snprintf (what, sizeof what, "%s (%d) is %ssticky", name, v, want ? "" : "not ");
    expect (nf_cuda_error_is_sticky ((cudaError_t) v) == want, what);
    g_free (doc);
    g_free (name);
    g_free (num);
  }
  g_match_info_free (m);
  g_regex_unref (re);
  g_free (text);
  printf ("driver_types.h: %d documented errors, %d sticky\n", n_errors, n_sticky);
  expect (n_errors > 100 && n_sticky >= 10, "driver_types.h parsed (100+ errors, 10+ sticky)");
  expect (!nf_cuda_error_is_sticky (cudaSuccess), "cudaSuccess is not sticky");
}

/* ---- algorithm order ---------------------------------------------------------------------- */

#define DET CUDNN_DETERMINISTIC
#define NONDET CUDNN_NON_DETERMINISTIC
#define OK CUDNN_STATUS_SUCCESS

/* nf_cuda_algo_order over cands (in cuDNN's order) must give want (n_want indices). */
static void
check_order (const char *what, NfCudaAlgoKind kind, gboolean fp16, const NfCudaAlgoCand *c,
    int n, const int *want, int n_want)
{
  int order[16];
  for (int i = 0; i < 16; i++)
    order[i] = -1;
  int k = nf_cuda_algo_order (kind, fp16, c, n, order);
  gboolean same = k == n_want;
  for (int i = 0; same && i < k; i++)
    same = order[i] == want[i];
  GString *got = g_string_new (NULL);
  for (int i = 0; i < k; i++)
    g_string_append_printf (got, " %d", order[i]);
  char *msg = g_strdup_printf ("%s (%s): order%s", what, fp16 ? "fp16" : "fp32", got->str);
  expect (same, msg);
  g_free (msg);
  g_string_free (got, TRUE);
}

static void
test_algo_order (void)
{
  const cudnnMathType_t m = CUDNN_DEFAULT_MATH;
  /* conv_transpose2d forward = backward data: the timed fastest is ALGO_0 (atomics) */
  const NfCudaAlgoCand bwd_data[] = {
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, OK, NONDET, m},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, OK, DET, m},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, OK, DET, m},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, OK, DET, m},
  };
  const int bwd_data_32[] = { 2, 0 }, bwd_data_16[] = { 0, 1, 2, 3 };
  check_order ("backward data: deterministic ALGO_1 before the faster ALGO_0, no FFT",
      NF_CUDA_ALGO_BWD_DATA, FALSE, bwd_data, 4, bwd_data_32, 2);
  check_order ("backward data: cuDNN's order", NF_CUDA_ALGO_BWD_DATA, TRUE, bwd_data, 4,
      bwd_data_16, 4);

  /* forward: FFT/Winograd out for fp32, failed candidates out for both */
  const NfCudaAlgoCand fwd[] = {
    {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, OK, DET, m},
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, OK, DET, m},
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT, OK, DET, m},
    {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_STATUS_NOT_SUPPORTED, DET, m},
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, OK, DET, m},
    {CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, CUDNN_STATUS_NOT_SUPPORTED, DET, m},
  };
  const int fwd_32[] = { 1, 4 }, fwd_16[] = { 0, 1, 2, 4 };
  check_order ("forward: GEMM family only", NF_CUDA_ALGO_FWD, FALSE, fwd, 6, fwd_32, 2);
  check_order ("forward: every successful candidate", NF_CUDA_ALGO_FWD, TRUE, fwd, 6, fwd_16,
      4);

  /* backward filter: deterministic ALGO_1 first, then ALGO_3 and ALGO_0 in cuDNN's order */
  const NfCudaAlgoCand filt[] = {
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, OK, NONDET, m},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, OK, DET, m},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, OK, NONDET, m},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, OK, DET, m},
  };
  const int filt_32[] = { 3, 0, 2 }, filt_16[] = { 0, 1, 2, 3 };
  check_order ("backward filter: deterministic first", NF_CUDA_ALGO_BWD_FILTER, FALSE, filt,
      4, filt_32, 3);
  check_order ("backward filter: cuDNN's order", NF_CUDA_ALGO_BWD_FILTER, TRUE, filt, 4,
      filt_16, 4);

  /* only a non-deterministic candidate: still usable (better than no plan) */
  const NfCudaAlgoCand only_atomic[] = {
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_STATUS_NOT_SUPPORTED, DET, m},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, OK, NONDET, m},
  };
  const int only_atomic_want[] = { 1 };
  check_order ("backward data: the non-deterministic one when it is all there is",
      NF_CUDA_ALGO_BWD_DATA, FALSE, only_atomic, 2, only_atomic_want, 1);
  check_order ("no candidates", NF_CUDA_ALGO_FWD, FALSE, fwd, 0, NULL, 0);

  /* the fp32 lists themselves */
  expect (!nf_cuda_algo_allowed (NF_CUDA_ALGO_FWD, FALSE, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD),
      "fp32 forward: no Winograd");
  expect (!nf_cuda_algo_allowed (NF_CUDA_ALGO_FWD, FALSE, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING),
      "fp32 forward: no FFT tiling");
  expect (nf_cuda_algo_allowed (NF_CUDA_ALGO_FWD, FALSE, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT),
      "fp32 forward: direct");
  expect (!nf_cuda_algo_allowed (NF_CUDA_ALGO_BWD_FILTER, FALSE,
          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED), "fp32 filter: no Winograd");
  expect (nf_cuda_algo_allowed (NF_CUDA_ALGO_BWD_FILTER, TRUE,
          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT), "fp16 filter: FFT");
}

/* ---- input channel padding --------------------------------------------------------------- */

static void
test_input_channels (void)
{
  const struct {
    gboolean fp16, transposed;
    int cin, pad_to, want;
  } cases[] = {
    {TRUE, FALSE, 3, 0, 8},     /* the first layer's RGB, default */
    {TRUE, FALSE, 3, 8, 8},
    {TRUE, FALSE, 3, 4, 4},
    {TRUE, FALSE, 3, 1, 3},     /* padding off */
    {TRUE, FALSE, 1, 0, 8},
    {TRUE, FALSE, 4, 4, 4},
    {TRUE, FALSE, 6, 0, 8},
    {TRUE, FALSE, 8, 0, 8},
    {TRUE, FALSE, 32, 0, 32},
    {TRUE, FALSE, 64, 4, 64},
    {TRUE, TRUE, 3, 0, 3},      /* transposed: never */
    {FALSE, FALSE, 3, 0, 3},    /* fp32: never */
    {FALSE, FALSE, 3, 8, 3},
  };
  char what[128];
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    int got = nf_cuda_conv_input_channels (cases[i].fp16, cases[i].transposed, cases[i].cin,
        cases[i].pad_to);
    g_snprintf (what, sizeof what, "input channels: %s%s, %d in, pad_to %d: %d (got %d)",
        cases[i].fp16 ? "fp16" : "fp32", cases[i].transposed ? " transposed" : "",
        cases[i].cin, cases[i].pad_to, cases[i].want, got);
    expect (got == cases[i].want, what);
  }
  /* a value the config does not take is an argument error, before any device work */
  const int bad[] = { -1, 2, 3, 5, 16 };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    NfCudaConfig cfg = {.precision = NF_CUDA_FP16,.pad_input_channels = bad[i] };
    GError *e = NULL;
    NfBackend *be = nf_cuda_backend_new (&cfg, &e);
    g_snprintf (what, sizeof what, "pad_input_channels %d is refused with a message", bad[i]);
    expect (!be && g_error_matches (e, NF_ERROR, NF_ERROR_ARGUMENT)
        && strstr (e->message, "pad_input_channels"), what);
    if (be)
      nf_backend_free (be);
    g_clear_error (&e);
  }
}

/* ---- the fused-convolution trial ----------------------------------------------------------- */

static void
test_fused_trial (void)
{
#if CUDNN_MAJOR >= 9
  const cudnnStatus_t refused[] = { CUDNN_STATUS_NOT_SUPPORTED,
    CUDNN_STATUS_NOT_SUPPORTED_SHAPE, CUDNN_STATUS_NOT_SUPPORTED_LAYOUT, CUDNN_STATUS_BAD_PARAM,
    CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED, CUDNN_STATUS_INTERNAL_ERROR,
    CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED,
    CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED,
    CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED, CUDNN_STATUS_EXECUTION_FAILED,
    CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER, CUDNN_STATUS_EXECUTION_FAILED_CUDART };
#else
  const cudnnStatus_t refused[] = { CUDNN_STATUS_NOT_SUPPORTED, CUDNN_STATUS_BAD_PARAM,
    CUDNN_STATUS_INTERNAL_ERROR, CUDNN_STATUS_ALLOC_FAILED, CUDNN_STATUS_EXECUTION_FAILED,
    CUDNN_STATUS_ARCH_MISMATCH };
#endif
  char what[160];
  expect (nf_cuda_fused_trial (CUDNN_STATUS_SUCCESS, cudaSuccess) == NF_CUDA_FUSED_RUNS,
      "fused trial: success runs fused");
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++) {
    g_snprintf (what, sizeof what, "fused trial: cuDNN status %d runs unfused",
        (int) refused[i]);
    expect (nf_cuda_fused_trial (refused[i], cudaSuccess) == NF_CUDA_FUSED_UNFUSED, what);
    g_snprintf (what, sizeof what, "fused trial: cuDNN status %d + illegal address is fatal",
        (int) refused[i]);
    expect (nf_cuda_fused_trial (refused[i], cudaErrorIllegalAddress) == NF_CUDA_FUSED_FATAL,
        what);
  }
  /* cuDNN said yes but a launch was rejected (not sticky): unfused */
  expect (nf_cuda_fused_trial (CUDNN_STATUS_SUCCESS, cudaErrorLaunchOutOfResources)
      == NF_CUDA_FUSED_UNFUSED, "fused trial: a rejected launch runs unfused");
  expect (nf_cuda_fused_trial (CUDNN_STATUS_SUCCESS, cudaErrorInvalidConfiguration)
      == NF_CUDA_FUSED_UNFUSED, "fused trial: an invalid launch configuration runs unfused");
  expect (nf_cuda_fused_trial (CUDNN_STATUS_SUCCESS, cudaErrorLaunchFailure)
      == NF_CUDA_FUSED_FATAL, "fused trial: a kernel that failed is fatal");
  expect (nf_cuda_fused_trial (CUDNN_STATUS_SUCCESS, cudaErrorMisalignedAddress)
      == NF_CUDA_FUSED_FATAL, "fused trial: a misaligned access is fatal");
}

int
main (void)
{
  printf ("cuDNN headers %d.%d.%d, CUDA runtime headers %d\n", CUDNN_MAJOR, CUDNN_MINOR,
      CUDNN_PATCHLEVEL, CUDART_VERSION);
  test_error_codes ();
  test_sticky ();
  test_algo_order ();
  test_input_channels ();
  test_fused_trial ();
  printf ("%d of %d cases failed\n", n_failed, n_cases);
  return n_failed ? 1 : 0;
}
