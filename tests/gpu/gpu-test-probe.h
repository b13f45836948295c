/* gpu-test-probe.h — the first lines of every GPU test: is a GPU usable here?
 *
 * nf_gpu_test_probe() returns the number of usable CUDA devices after printing
 * "device 0: <description> (<n> devices)", or 0 after printing "SKIP: no usable GPU: why";
 * the test then returns 77 so meson (and CI, which has no GPU) counts it as skipped.
 * What it does not: pick a device or create a backend.
 */
#pragma once

#include <glib.h>
#include <stdio.h>

#include "nf-cuda.h"

static inline int
nf_gpu_test_probe (void)
{
  GError *e = NULL;
  int devices = nf_cuda_device_count (&e);
  if (devices == 0) {
    printf ("SKIP: no usable GPU: %s\n", e ? e->message : "no device");
    g_clear_error (&e);
    return 0;
  }
  char *desc = nf_cuda_device_description (0, NULL);
  printf ("device 0: %s (%d device%s)\n", desc ? desc : "?", devices, devices > 1 ? "s" : "");
  g_free (desc);
  return devices;
}
