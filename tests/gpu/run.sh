#!/usr/bin/env bash
# tests/gpu/run.sh — everything the accelerator machine checks, in one run:
#   0. first, the versions: GPU and driver (nvidia-smi), the CUDA the driver supports, the
#      toolkit (nvcc), cuDNN (cudnn_version.h of the toolkit the build uses), GStreamer
#      (the development files the build uses and the gst-inspect-1.0 at hand);
#   1. build for sm_90 only (-Dgpu_archs=90) into $BUILD (default build-gpu): part check
#      builds only what steps 2-5 run;
#   2. probe the GPU (and the CUDA runtime, driver and cuDNN versions the binaries load):
#      without one (or without a driver) every GPU step is skipped with the reason and the
#      script exits 77 after the CPU-only step 6b;
#   3. test-gpu-ops: every op and every shipped architecture, "cuda" (fp32) and
#      "cuda-fp16" against cpu-ref on fresh random inputs (fp32 < 1e-5, fp16 < 2e-3
#      normalised error, no NaN, guard bytes intact);
#   3b. test-gpu-backward: every op's backward and the shipped architectures' gradients
#      (nf_engine_backward), "cuda" and "cuda-fp16" against cpu-ref (fp32 < 1e-5 per op,
#      1e-4 per network; fp16 < 3e-3 per op, 5e-2 per network; accumulation, guard
#      bytes);
#   3c. test-gpu-train-ops: the GPU training arithmetic (losses, Gram, preprocessing,
#      Adam, fp16 copies, NCCL all-reduce over every GPU) against the host functions;
#      test-gpu-train-device: the step's device paths (loss values read once, batch-norm
#      refold and chain rule, weights handed to cuda / cuda-fp16 on the device) against
#      their host twins;
#   3d. test-gpu-train-step: one training step per architecture, cuda vs CPU (parameters
#      within 1e-4); 3e. test-gpu-pixopt: the pixel optimiser, cuda vs CPU;
#   4. test-gpu-convert: the GPU pixel conversions against the CPU ones, every format;
#   5. test-gpu-elements: neuralstyle/superres with memory:CUDAMemory caps (and
#      nvh264dec/nvh264enc pipelines when those elements exist);
#      Steps 3-5 run at once as seven processes (3 and 3b for each precision; 3c-3e in
#      one chain, 4-5 in another), the GPU shared, each with its own log;
#   6. gpu-bench: ms per frame at 1280x720, 1920x1080, 3840x2160 for style-full and
#      style-slim, SR x2/x4 to 1080p and 4K output, fp32 and fp16; the networks' weights
#      are saved for 6b/7;
#   6e. fp16 first-layer input channel padding: style-full and sr-subpixel x4 at 1080p
#      with the RGB input unpadded, padded to 4 and to 8 channels (gpu-bench --pad-channels);
#   6c. training throughput: nf-train --benchmark (images/s at 256x256, batch 4 and 8)
#       for style-full, style-slim, sr-johnson x4, sr-subpixel x4 on cuda and cuda-fp16;
#   6d. a Gatys transfer of 200 L-BFGS iterations at 512x512 on cuda, timed;
#   6b. torch_bench.py verify (CPU): the PyTorch re-statement of the architectures
#      agrees with the golden float64 outputs and with nf-run (the C engine);
#   7. torch_bench.py bench: the same networks and weights in PyTorch on the same GPU
#      (fp16, channels_last, cudnn.benchmark);
#   8. a short table: ours fp32/fp16 vs PyTorch fp16, ratio; every step's status with
#      its seconds.
# Time: part check keeps within $CHECK_BUDGET seconds (default 285, so that it runs
# within 5 minutes on an H100 and a 15-minute device budget leaves time for a fix and a
# rerun): every step's time limit is cut to what is left of it, and a step that runs
# out is a failure that says so. Parts all and bench have no overall limit.
# Results (logs, JSON, models) go to $OUT (default $BUILD/gpu-results).
# Usage: tests/gpu/run.sh [all|check|bench] (check: steps 0-5, bench: 0-2 and 6-7).
# Exit: 0 all passed, 1 something failed, 77 no usable GPU (GPU steps skipped).
set -uo pipefail
# Part: all (default) | check (steps 1-5) | bench (steps 1-2 and 6-7), so the two halves
# can run as separate calls on a machine with a per-command time limit.
PART=${1:-all}
case $PART in
  all) CHECK=1; BENCH=1 ;; check) CHECK=1; BENCH=0 ;; bench) CHECK=0; BENCH=1 ;;
  *) echo "usage: tests/gpu/run.sh [all|check|bench]"; exit 2 ;;
esac
T0=$(date +%s)
cd "$(dirname "$0")/../.."

# ---- 0. versions (the first lines) ----------------------------------------------------------
CUDA_ROOT=/usr/local/cuda       # the build's default cudatoolkit_root
v_gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
  2> /dev/null | head -n 1)
v_drv_cuda=$(nvidia-smi 2> /dev/null | grep -o "CUDA Version: [0-9.]*" | head -n 1)
v_nvcc=$( ("$CUDA_ROOT/bin/nvcc" --version || nvcc --version) 2> /dev/null | grep -o "release [0-9.]*, V[0-9.]*")
v_cudnn=$(for h in "$CUDA_ROOT/include/cudnn_version.h" /usr/include/cudnn_version.h \
    /usr/include/x86_64-linux-gnu/cudnn_version.h; do
  [ -f "$h" ] && awk '/define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{v = v (v ? "." : "") $3}
    END {print v}' "$h" && break; done)
v_gst_dev=$(pkg-config --modversion gstreamer-1.0 2> /dev/null)
v_gst_bad=$(pkg-config --modversion gstreamer-cuda-1.0 2> /dev/null)
v_gst_rt=$(gst-inspect-1.0 --version 2> /dev/null | grep -o "GStreamer [0-9.]*")
echo "GPU:       ${v_gpu:-none found by nvidia-smi} (name, driver, memory)"
echo "driver:    ${v_drv_cuda:-no CUDA version from nvidia-smi}"
echo "CUDA:      toolkit ${v_nvcc:-not found} ($CUDA_ROOT)"
echo "cuDNN:     ${v_cudnn:-no cudnn_version.h} (headers)"
echo "GStreamer: ${v_gst_dev:-no development files} (development files; CUDA library ${v_gst_bad:-absent}), ${v_gst_rt:-no gst-inspect-1.0} (gst-inspect-1.0)"

ROOT=$PWD
BUILD=${BUILD:-build-gpu}
OUT=${OUT:-$BUILD/gpu-results}
BUDGET=999999
[ "$PART" = check ] && BUDGET=${CHECK_BUDGET:-285}
declare -A STATUS
ORDER=()

step () { echo; echo "==== [$(( $(date +%s) - T0 ))s] $*"; }
record () { STATUS[$1]=$2; ORDER+=("$1"); }
# lim N: a step's time limit: N seconds, or what is left of the budget (at least 5 s)
lim () {
  local left=$(( BUDGET - ($(date +%s) - T0) ))
  [ "$left" -lt 5 ] && left=5
  [ "$1" -lt "$left" ] && echo "$1" || echo "$left"
}
# status NAME RC SECONDS LIMIT WANTED [WHY]: records a step's outcome from its exit code
# (LIMIT: the time limit it ran under, WANTED: its own, before the budget cut it)
status () {
  case $2 in
    0) record "$1" "pass (${3}s)" ;;
    77) record "$1" skip ;;
    124) record "$1" "FAIL (timeout after ${4}s$([ "$4" -lt "$5" ] \
      && echo ": the ${BUDGET}s budget of part check ran out"))" ;;
    nb) record "$1" "FAIL (not built: $6)" ;;
    *) record "$1" "FAIL (exit $2, ${3}s)" ;;
  esac
}
# run NAME TIMEOUT CMD... : runs with a time limit (cut to the budget), log in
# $OUT/NAME.log, records status
run () {
  local name=$1 limit t rc; limit=$(lim "$2"); shift 2
  t=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  tail -n 25 "$OUT/$name.log"
  status "$name" $rc $(( $(date +%s) - t )) "$limit" "$2"
  return $rc
}
# job NAME TIMEOUT CMD... : as run, for a background process: nothing printed; its
# "rc seconds limit wanted" go to $OUT/NAME.rc for collect
job () {
  local name=$1 wanted=$2 limit t; limit=$(lim "$2"); shift 2
  t=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "$? $(( $(date +%s) - t )) $limit $wanted" > "$OUT/$name.rc"
}
# gpu_job NAME TIMEOUT BINARY [ENV...]: a tests/gpu binary through job; one that was not
# built (no GPU training kernels) is a failure, not a skip
gpu_job () {
  local name=$1 limit=$2 bin=$3; shift 3
  rm -f "$OUT/$name.rc"
  if [ -x "$B/tests/gpu/$bin" ]; then
    job "$name" "$limit" env "$@" "$B/tests/gpu/$bin"
  else
    echo "nb 0 0 0" > "$OUT/$name.rc"
  fi
}
# collect NAME: a background job's failures (the log's FAIL lines) and status
collect () {
  local rc=missing secs=0 limit=0 wanted=0
  [ -f "$OUT/$1.rc" ] && read -r rc secs limit wanted < "$OUT/$1.rc"
  echo "-- $1: exit $rc after ${secs}s (log $OUT/$1.log)"
  [ -f "$OUT/$1.log" ] && grep -E "^FAIL|^     |cases failed|^SKIP" "$OUT/$1.log" | tail -n 20
  status "$1" "$rc" "$secs" "$limit" "$wanted" \
    "no GPU training kernels, or no GStreamer plugin or gstreamer-check"
}

# ---- 1. build ------------------------------------------------------------------------
step "build (sm_90 only) in $BUILD"
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" --buildtype=release -Dgpu_archs=90 -Dcuda=enabled > /tmp/nf-gpu-setup.log 2>&1 \
    || { tail -n 30 /tmp/nf-gpu-setup.log; echo "run.sh: meson setup failed"; exit 1; }
fi
mkdir -p "$OUT"
ninja -C "$BUILD" build.ninja > /dev/null 2>&1   # regenerate first: the target list below reads it
TARGETS=(tests/gpu/test-gpu-ops tests/gpu/test-gpu-backward tests/gpu/test-gpu-convert
         tests/gpu/gpu-bench)
[ -n "$(ninja -C "$BUILD" -t targets all 2>/dev/null | grep -o '^tests/gpu/test-gpu-elements:')" ] \
  && TARGETS+=(tests/gpu/test-gpu-elements gst/libgstneuralfilter.so)
for t in test-gpu-train-ops test-gpu-train-device test-gpu-train-step test-gpu-pixopt; do
  [ -n "$(ninja -C "$BUILD" -t targets all 2>/dev/null | grep -o "^tests/gpu/$t:")" ] \
    && TARGETS+=(tests/gpu/$t)
done
[ $BENCH -eq 1 ] && TARGETS+=(inference/tools/nf-run training/nf-train training/nf-optimize)
t_build=$(date +%s)
if ! timeout "$(lim 600)" ninja -C "$BUILD" "${TARGETS[@]}" > "$OUT/build.log" 2>&1; then
  tail -n 40 "$OUT/build.log"; echo "run.sh: build failed (or ran out of time)"; exit 1
fi
record build "pass ($(( $(date +%s) - t_build ))s)"
echo "built in $(( $(date +%s) - t_build ))s: ${TARGETS[*]}"
B=$(cd "$BUILD" && pwd)         # absolute: the element test runs with these paths
OUT=$(cd "$OUT" && pwd)

# ---- 2. probe -------------------------------------------------------------------------
step "GPU probe"
command -v nvidia-smi > /dev/null && nvidia-smi -L 2>&1 | head -4
"$B/tests/gpu/gpu-bench" --probe
HAVE_GPU=$?
if [ $HAVE_GPU -ne 0 ]; then
  echo "run.sh: no usable GPU here: skipping steps 3-5, 6 and 7 (exit 77 at the end)"
  for s in ops-fp32 ops-fp16 backward-fp32 backward-fp16 train-ops train-device \
      train-step pixopt convert \
      elements bench pad-channels train-bench gatys-512 torch-bench; do
    record $s skip
  done
fi

# ---- 3-5. correctness ----------------------------------------------------------------------
if [ $HAVE_GPU -eq 0 ] && [ $CHECK -eq 1 ]; then
  step "3-5. correctness, seven processes at once ($(( BUDGET - ($(date +%s) - T0) ))s of the budget left)"
  PIDS=()
  for p in 32 16; do
    # 3, 3b: cpu-ref (the reference) is single-threaded
    gpu_job ops-fp$p 300 test-gpu-ops NF_GPU_TEST_PRECISION=fp$p OMP_NUM_THREADS=1 &
    PIDS+=($!)
    gpu_job backward-fp$p 300 test-gpu-backward NF_GPU_TEST_PRECISION=fp$p OMP_NUM_THREADS=1 &
    PIDS+=($!)
  done
  (  # 3c-3e: the training checks (their CPU side is multi-threaded)
    gpu_job train-ops 180 test-gpu-train-ops OMP_NUM_THREADS=4
    gpu_job train-device 60 test-gpu-train-device OMP_NUM_THREADS=4
    gpu_job train-step 240 test-gpu-train-step OMP_NUM_THREADS=4
    gpu_job pixopt 240 test-gpu-pixopt OMP_NUM_THREADS=4
  ) &
  PIDS+=($!)
  (  # 4, 5: pixel conversions, then the elements
    gpu_job convert 120 test-gpu-convert OMP_NUM_THREADS=2
    gpu_job elements 240 test-gpu-elements OMP_NUM_THREADS=2 GST_PLUGIN_PATH_1_0="$B/gst" \
      GST_REGISTRY_1_0="$OUT/gst-registry.bin" CK_DEFAULT_TIMEOUT=240 \
      NF_SAMPLE_CLIP="$ROOT/gst/samples/city.mp4"
  ) &
  PIDS+=($!)
  wait "${PIDS[@]}"
  step "3-5. results"
  for s in ops-fp32 ops-fp16 backward-fp32 backward-fp16 train-ops train-device \
      train-step pixopt convert \
      elements; do
    collect $s
  done
fi

# ---- 6. benchmark ----------------------------------------------------------------------------
if [ $BENCH -eq 1 ]; then      # ---- steps 6-7 (part "bench") ----
step "6. gpu-bench (models saved to $OUT/models)"
if [ $HAVE_GPU -eq 0 ]; then
  run bench 240 "$B/tests/gpu/gpu-bench" --iters 20 --save-models "$OUT/models" \
    --json "$OUT/nf-bench.json"
else
  "$B/tests/gpu/gpu-bench" --save-models "$OUT/models" --probe > /dev/null 2>&1
  ls "$OUT/models"
fi

# fp16's first-layer channel padding (3 -> 4 or 8 input channels, zero weights): what it
# gains, on the networks whose first layer is 3 -> 32 (style) and 3 -> 64 (SR).
if [ $HAVE_GPU -eq 0 ]; then
  step "6e. fp16 first layer: input channels unpadded (3), padded to 4, to 8 (the default)"
  pc_rc=0
  for pc in 1 4 8; do
    echo "-- --pad-channels $pc"
    timeout 120 "$B/tests/gpu/gpu-bench" --precision fp16 --nets style-full,sr-subpixel-x4 \
      --sizes 1920x1080 --iters 20 --pad-channels $pc 2>&1 || pc_rc=1
  done > "$OUT/pad-channels.log"
  grep -E "^--| ms |rror" "$OUT/pad-channels.log"
  [ $pc_rc -eq 0 ] && record pad-channels pass || record pad-channels "FAIL (see pad-channels.log)"
fi

# Training throughput and the Gatys run need the VGG16 loss network of ../shared/data.
VGG=$(ls "$ROOT"/../shared/data/lossnets/vgg16-*.safetensors 2> /dev/null | head -n 1)
if [ $HAVE_GPU -eq 0 ] && [ -n "$VGG" ]; then
  step "6c. training throughput (images/s, 256x256 crops, 30 steps after a warm-up step)"
  : > "$OUT/train-bench.log"
  tb_rc=0
  for be in cuda cuda-fp16; do
    for bs in 4 8; do
      for net in "style --arch style-full" "style --arch style-slim" \
          "sr --arch sr-johnson --scale 4" "sr --arch sr-subpixel --scale 4"; do
        extra=""
        case $net in style*) extra="--style-image $ROOT/weights/styles/starry_night.jpg" ;; esac
        echo "== $be batch $bs: $net" >> "$OUT/train-bench.log"
        # shellcheck disable=SC2086
        timeout 120 "$B/training/nf-train" $net --backend $be --batch $bs --crop 256 \
          --lossnet "$VGG" $extra --run "$OUT/train-bench-run" --benchmark 30 \
          >> "$OUT/train-bench.log" 2>&1 || tb_rc=1
      done
    done
  done
  grep -E "^==|img/s|images/s|rror" "$OUT/train-bench.log" | tail -n 48
  [ $tb_rc -eq 0 ] && record train-bench pass || record train-bench "FAIL (see train-bench.log)"

  step "6d. Gatys transfer, 512x512, 200 L-BFGS iterations on cuda"
  run gatys-512 300 "$B/training/nf-optimize" transfer \
    --content "$ROOT/../shared/data/photos/skimage_chelsea.jpg" \
    --style "$ROOT/../shared/data/styles/starry_night.jpg" --size 512 --square --iters 200 \
    --device cuda --lossnet "$VGG" -o "$OUT/gatys-512.png"
elif [ $HAVE_GPU -eq 0 ]; then
  echo "no ../shared/data/lossnets/vgg16-*.safetensors: skipping 6c and 6d"
  record train-bench skip; record gatys-512 skip
fi

step "6b. torch_bench.py verify (CPU): the PyTorch architectures are ours"
if python3 -c "import torch, numpy" 2> /dev/null; then
  run torch-verify 180 python3 tests/gpu/torch_bench.py verify --models "$OUT/models" \
    --nf-run "$B/inference/tools/nf-run" --work "$OUT/verify"
else
  echo "no torch/numpy for python3"; record torch-verify skip
fi

# ---- 7. PyTorch on the same GPU ------------------------------------------------------------------
if [ $HAVE_GPU -eq 0 ]; then
  step "7. torch_bench.py bench (fp16, channels_last, cudnn.benchmark)"
  run torch-bench 240 python3 tests/gpu/torch_bench.py bench --models "$OUT/models" \
    --json "$OUT/torch-bench.json" --iters 20
fi

fi                              # ---- end of part "bench" ----

# ---- 8. summary -------------------------------------------------------------------------------------
step "summary ($(( $(date +%s) - T0 ))s$([ "$PART" = check ] && echo " of a ${BUDGET}s budget"))"
FAILED=0
for s in "${ORDER[@]}"; do
  printf '  %-14s %s\n' "$s" "${STATUS[$s]}"
  case ${STATUS[$s]} in FAIL*) FAILED=1 ;; esac
done
if [ -f "$OUT/nf-bench.json" ]; then
  python3 - "$OUT/nf-bench.json" "$OUT/torch-bench.json" <<'EOF'
import json, os, sys
nf = json.load(open(sys.argv[1]))
torch = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else []
def key(r): return (r["net"], tuple(r["in"]))
t = {key(r): r["ms"] for r in torch}
rows = {}
for r in nf:
    rows.setdefault(key(r), {"out": r["out"]})[r["precision"]] = r["ms"]
print("\nms per frame (median); ratio = PyTorch fp16 / ours fp16 (> 1: ours is faster)")
print(f"{'network':15s} {'input':>9s} {'output':>9s} {'ours fp32':>10s} {'ours fp16':>10s} "
      f"{'torch fp16':>10s} {'ratio':>6s}")
for k, v in rows.items():
    tf = t.get(k)
    f16 = v.get("fp16")
    ratio = f"{tf / f16:6.2f}" if tf and f16 else "     -"
    fmt = lambda x: f"{x:10.2f}" if x is not None else "         -"
    print(f"{k[0]:15s} {k[1][0]:4d}x{k[1][1]:<4d} {v['out'][0]:4d}x{v['out'][1]:<4d} "
          f"{fmt(v.get('fp32'))} {fmt(f16)} {fmt(tf)} {ratio}")
EOF
fi
if [ $FAILED -ne 0 ]; then echo "run.sh: FAILED (logs in $OUT)"; exit 1; fi
if [ $HAVE_GPU -ne 0 ]; then echo "run.sh: SKIPPED the GPU steps: no usable GPU"; exit 77; fi
echo "run.sh: all passed"
exit 0
