#!/usr/bin/env bash
# test-cudnn-version.sh — the configure-time cuDNN version check of inference/cuda/
# meson.build, against fake toolkits (a cudnn.h with only its version macros and an nvcc
# that is a shell script), so it runs on any machine:
#   cuDNN 7 with -Dcuda=enabled: configure fails, saying the backend needs cuDNN 8 or 9;
#   cuDNN 7 with -Dcuda=auto: configure succeeds without the CUDA backend, with a warning;
#   a cudnn.h without CUDNN_MAJOR: fails the same way, saying the version is unknown;
#   cuDNN 8 and 9: the check passes (configure then goes on to look for the libraries,
#   which the fake toolkit lacks).
# Usage: test-cudnn-version.sh SOURCE_ROOT. Exit: 0 pass, 1 a case failed.
# Does not: build anything, or check a real toolkit (the normal configure does that).
set -uo pipefail
SRC=$(cd "${1:?usage: test-cudnn-version.sh SOURCE_ROOT}" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILED=0

# fake_toolkit DIR MAJOR: DIR/bin/nvcc and DIR/include/cudnn.h (MAJOR "none": no macros)
fake_toolkit () {
  mkdir -p "$1/bin" "$1/include" "$1/lib64"
  printf '#!/bin/sh\necho "fake nvcc"\n' > "$1/bin/nvcc"
  chmod +x "$1/bin/nvcc"
  if [ "$2" = none ]; then
    echo '/* no version macros */' > "$1/include/cudnn.h"
  else
    printf '#define CUDNN_MAJOR %s\n#define CUDNN_MINOR 1\n#define CUDNN_PATCHLEVEL 2\n' \
      "$2" > "$1/include/cudnn.h"
  fi
}

# configure NAME MAJOR CUDA_OPTION: meson setup against a fake toolkit; log in $TMP/NAME.log
configure () {
  fake_toolkit "$TMP/$1-cuda" "$2"
  meson setup "$TMP/$1-build" "$SRC" -Dcuda="$3" -Dcudatoolkit_root="$TMP/$1-cuda" \
    -Dtests=false -Dgst=disabled > "$TMP/$1.log" 2>&1
}

# check WHAT CONDITION...: a case
check () {
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; FAILED=1; fi
}

configure v7-enabled 7 enabled
rc=$?
check "cuDNN 7, cuda=enabled: configure fails" test $rc -ne 0
check "cuDNN 7, cuda=enabled: says 8 or 9 is needed" \
  grep -q "is version 7.1.2: the CUDA backend needs cuDNN 8 or 9" "$TMP/v7-enabled.log"

configure v7-auto 7 auto
rc=$?
check "cuDNN 7, cuda=auto: configure succeeds" test $rc -eq 0
check "cuDNN 7, cuda=auto: warns and builds without CUDA" \
  grep -q "needs cuDNN 8 or 9; building without it" "$TMP/v7-auto.log"
check "cuDNN 7, cuda=auto: no CUDA backend" grep -Eq "CUDA backend *: *(NO|False)" \
  "$TMP/v7-auto.log"

configure none-enabled none enabled
rc=$?
check "no CUDNN_MAJOR, cuda=enabled: configure fails" test $rc -ne 0
check "no CUDNN_MAJOR, cuda=enabled: says the version is unknown" \
  grep -q "is version unknown (no CUDNN_MAJOR in cudnn.h)" "$TMP/none-enabled.log"

for v in 8 9; do
  configure v$v-enabled $v enabled
  rc=$?
  check "cuDNN $v: the version check passes" \
    bash -c "! grep -q 'needs cuDNN 8 or 9' '$TMP/v$v-enabled.log'"
  # the fake toolkit has no libraries: configure stops there, unless the system has them
  check "cuDNN $v: configure goes on to the libraries" bash -c "[ $rc -eq 0 ] || grep -q \
    'the CUDA runtime, cuDNN or libstdc++ was not found' '$TMP/v$v-enabled.log'"
done

if [ $FAILED -ne 0 ]; then
  echo "--- logs ---"
  tail -n 5 "$TMP"/*.log
  exit 1
fi
exit 0
