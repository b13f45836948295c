#!/usr/bin/env bash
# Fuzzes the model loader, the image loader and the recipe JSON for a bounded time each.
#
#   tests/fuzz/run-fuzz.sh [SECONDS_EACH]        (default 60)
#
# Configures (once) a separate clang build directory with -Dfuzz=enabled (every target
# built with libFuzzer coverage, ASan, LeakSanitizer and UBSan), builds the three fuzz
# targets and the seed writer, writes the seed corpora, replays the committed
# regression inputs (meson suite 'fuzz'), then runs each target for SECONDS_EACH
# seconds on seeds + regression inputs + what earlier runs in this build directory
# found (with tests/fuzz/TARGET.dict where there is one). Exit 1 on any finding (crash,
# sanitizer report, leak, GLib critical, an input slower than 25 s or above 2 GB); the
# input is left in $BUILD/fuzz-findings/ and the last lines of the log are printed.
# libFuzzer's random seed is fixed (FUZZ_SEED, 1) so that a run repeats its mutations:
# what a CI run finds, the same command finds again.
# Needs clang, libclang-rt-14-dev, libomp-14-dev (tests/install-deps.sh fuzz).
set -euo pipefail
cd "$(dirname "$0")/../.."
EACH=${1:-60}
BUILD=${FUZZ_BUILD:-_build-fuzz}
TARGETS=(model image recipe)

if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang meson setup "$BUILD" --buildtype=debugoptimized -Dfuzz=enabled -Dcuda=disabled \
    -Dgst=disabled
fi
ninja -C "$BUILD" tests/fuzz/fuzz-seeds "${TARGETS[@]/#/tests/fuzz/fuzz-}"
"$BUILD/tests/fuzz/fuzz-seeds" "$BUILD/fuzz-seeds" weights
meson test -C "$BUILD" --no-rebuild --suite fuzz --print-errorlogs

export OMP_NUM_THREADS=1
mkdir -p "$BUILD/fuzz-findings"
status=0
for t in "${TARGETS[@]}"; do
  corpus="$BUILD/fuzz-corpus/$t"
  log="$BUILD/fuzz-$t.log"
  flags=() dirs=()
  [ -f "tests/fuzz/$t.dict" ] && flags+=(-dict="tests/fuzz/$t.dict")
  [ -d "tests/fuzz/regress/$t" ] && dirs+=("tests/fuzz/regress/$t")
  mkdir -p "$corpus"
  echo "fuzz-$t: ${EACH} s"
  if "$BUILD/tests/fuzz/fuzz-$t" -seed="${FUZZ_SEED:-1}" -max_total_time="$EACH" -timeout=25 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-findings/$t-" "${flags[@]}" \
      "$corpus" "$BUILD/fuzz-seeds/$t" "${dirs[@]}" > "$log" 2>&1; then
    grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)" "$log" \
      | sed "s/^/  /"
  else
    echo "fuzz-$t: FINDING (log: $log)"
    tail -n 60 "$log"
    status=1
  fi
done
exit $status
