/* nf-test-harness.h — what the op-by-op backend comparisons share: tests/test-ops.c (cpu
 * against cpu-ref) and tests/gpu/test-gpu-ops.c, test-gpu-backward.c (the CUDA backends
 * against cpu-ref).
 *
 *   NfTestBe             a backend under test (interface + instance) and, optionally, a
 *                        check of a buffer's guard bytes after a run (the GPU tests pass
 *                        nf_cuda_buffer_guard_ok; NULL: no guard bytes)
 *   NfTestRandom         seeded host inputs, weights and biases, rounded to fp16 and
 *                        back when the backend under test stores half precision (so the
 *                        reference gets exactly the values that backend gets)
 *   nf_test_run_forward  one op through the backend interface: alloc, prepare, upload,
 *                        forward `repeats` times into a NaN-filled output (an element left
 *                        unwritten shows), synchronize, guard bytes, download into a host
 *                        buffer with NF_TEST_N_SENTINEL sentinel floats after the end,
 *                        which must be intact
 *   nf_test_norm_err     the normalised error max|got - ref| / (max|ref| + 1e-6); a NaN in
 *                        either is an infinite error
 *   nf_test_compare_op   one forward case of all that, printed as one line
 *   NfTestCounts         cases run and failed; nf_test_expect for a plain check
 *
 * What it does not: pick backends, cases or tolerances, or include device code (device
 * checks come in through NfTestBe.buffer_ok).
 */
#pragma once

#include <glib.h>

#include "nf-backend.h"
#include "nf-model.h"

/* Sentinel floats after a downloaded output or a parameter-gradient buffer. */
#define NF_TEST_SENTINEL 12345.0f
#define NF_TEST_N_SENTINEL 16

typedef struct {
  const NfBackendIface *iface;
  NfBackend *be;
  /* Optional: FALSE + error when the guard bytes after buf were overwritten. */
  gboolean (*buffer_ok) (NfBackend *be, const void *buf, GError **error);
} NfTestBe;

typedef struct {
  NfRng rng;
  gboolean round_half;          /* round every value to fp16 and back */
} NfTestRandom;

/* x[i] = fp16 (x[i]) as float. */
void nf_test_round_to_half (float *x, size_t n);

/* n floats uniform in [lo, hi] (nf_alloc_floats; nf_free). */
float *nf_test_random (NfTestRandom *r, size_t n, float lo, float hi);

/* Random parameters of op (NULL, 0 where it has none): conv2d / conv_transpose2d weights
 * (cin * cout * k * k) uniform in +-1/sqrt(cin k k) and bias (cout, when has_bias) in
 * +-0.5; affine instance_norm scale (c) in [0.5, 1.5] and shift (c) in +-0.5. Drawn in
 * that order. */
void nf_test_random_params (NfTestRandom *r, const NfOp *op, float **w, size_t *nw, float **b,
    size_t *nb);

/* Rounds every tensor of m to fp16 and back, binds the model and rounds the folded
 * tensors too (batch norm folded into convolutions): the reference then runs the
 * weights an fp16 backend runs. */
gboolean nf_test_model_round_to_half (NfModel *m, GError **error);

/* Runs op on one backend (see above): the downloaded output, numel (out_s) floats then
 * the sentinels (nf_free), or NULL and *why (g_free) naming the backend and the failure. */
float *nf_test_run_forward (NfTestBe *b, const NfOp *op, const NfShape *in_s,
    float *const *in_host, NfShape out_s, int repeats, char **why);

/* The outcome of one comparison case. */
typedef enum {
  NF_TEST_NOT_A_CASE,           /* the op cannot take these shapes */
  NF_TEST_PASSED,
  NF_TEST_FAILED
} NfTestResult;

/* Cases run and failed (the test's summary line and exit code). */
typedef struct {
  int cases, failed;
} NfTestCounts;

/* Counts one result (a NF_TEST_NOT_A_CASE not at all). */
void nf_test_count (NfTestCounts *c, NfTestResult r);

/* A check that cond holds: counts it and prints "ok"/"FAIL", what and e's message. */
void nf_test_expect (NfTestCounts *c, gboolean cond, const char *what, const GError *e);

/* One op on random inputs in [lo, hi] with random parameters (nf_test_random_params),
 * run once on ref and `repeats` times on be through nf_test_run_forward; passes when the
 * normalised error is at most tol. Prints one line: "ok"/"FAIL", desc (padded to
 * desc_width), the shapes, the error and tol, and why it failed. */
NfTestResult nf_test_compare_op (NfTestRandom *r, NfTestBe *ref, NfTestBe *be, NfOp op,
    const NfShape *in_s, float lo, float hi, int repeats, double tol, int desc_width,
    const char *desc);

/* max |x[i]| */
double nf_test_max_abs (const float *x, size_t n);
/* max |got[i] - ref[i]|; INFINITY when either holds a NaN */
double nf_test_abs_err (const float *ref, const float *got, size_t n);
/* nf_test_abs_err / (max |ref| + 1e-6) */
double nf_test_norm_err (const float *ref, const float *got, size_t n);
