#!/usr/bin/env bash
# The whole test suite: installs dependencies, configures a fresh build directory,
# builds everything (the CUDA backend too when nvcc and cuDNN are found), runs the
# unit tests, then the loader tests again under valgrind. Ends with meson's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/install-deps.sh
BUILD=${BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" --buildtype=release
fi
ninja -C "$BUILD"
# The loader tests under valgrind (memory errors and leaks in every malformed-file path).
meson test -C "$BUILD" --suite valgrind --print-errorlogs --num-processes 2 || {
  echo "valgrind suite failed"; exit 1; }
meson test -C "$BUILD" --no-suite valgrind --print-errorlogs --num-processes 2
