#!/usr/bin/env bash
# live-bench.sh — the live pipeline of issue 13, measured: a live 30 frames/s source
# into the element into a sink that syncs to the clock and drops frames later than
# 20 ms, for some seconds; then how that compares with what the network sustains.
#
#   gst/live-bench.sh [-B BUILD] [-s SECONDS] [-w WARMUP] [-p auto|fp32|bf16]
#                     [-S WxH] [-f FORMAT] [-a ARCH] [-i ITERS] MODEL
#
#   videotestsrc is-live=true pattern=ball !
#     video/x-raw[,format=FORMAT],width=W,height=H,framerate=30/1 !
#     neuralstyle|superres model=MODEL precision=P !
#     fpsdisplaysink text-overlay=false
#       video-sink="fakesink sync=true max-lateness=20000000 qos=true"
#
# Prints nf-live-bench's table (frames per second in, skipped by the element, made,
# shown, dropped late by the sink; the latency at the sink: render time - frame time)
# and its summary over the seconds after WARMUP (default 2: loading, planning),
# the network's rate from nf-bench at the same input size (run just before and just
# after the pipeline, same machine, the backend the element uses: cpu for fp32,
# cpu-bf16 for bf16 and for auto where the CPU has native bf16), and the two goals of
# issue 13: shown frames/s >= 90% of nf-bench's, latency at the sink (median)
# <= 3 frame intervals + one nf-bench processing time.
# FORMAT (e.g. I420, as cameras and decoders give; default: what negotiates first, BGRA)
# is the raw format through the element: a luma-only SR model (sr-light-x2) on I420 or
# NV12 takes the element's luma path (no RGB), on RGB formats the RGB one.
# MODEL is a name in $NEURALFILTER_MODEL_PATH (default: weights/) or a file; sr-* models
# run in superres (the size is the input's: 640x360 -> 1280x720 for x2), the others in
# neuralstyle. ARCH (nf-bench's --arch) is taken from the model's name (style-slim-*,
# style-full-*, style-rt-*, sr-subpixel-xN, sr-light-xN, sr-johnson-xN-*) unless given; nf-bench
# times seeded random weights of the architecture's default size, so give -a only for
# a model of that size.
# Not a test: it judges nothing by its exit status (0 unless something fails to run).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
SECONDS_RUN=10
WARMUP=2
PRECISION=auto
SIZE=640x360
ARCH=
ITERS=10
usage () { sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2; }
FORMAT=
while getopts "B:s:w:p:S:f:a:i:h" opt; do
  case $opt in
    B) BUILD=$OPTARG ;;
    s) SECONDS_RUN=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    p) PRECISION=$OPTARG ;;
    S) SIZE=$OPTARG ;;
    f) FORMAT=$OPTARG ;;
    a) ARCH=$OPTARG ;;
    i) ITERS=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
MODEL=$1
case $PRECISION in auto|fp32|bf16) ;; *) echo "live-bench: -p wants auto, fp32 or bf16" >&2; exit 2 ;; esac
[[ $SIZE =~ ^([0-9]+)x([0-9]+)$ ]] || { echo "live-bench: -S wants WxH" >&2; exit 2; }
W=${BASH_REMATCH[1]} H=${BASH_REMATCH[2]}

BENCH="$BUILD/inference/tools/nf-bench"
LIVE="$BUILD/gst/nf-live-bench"
for t in "$BENCH" "$LIVE" "$BUILD/gst/libgstneuralfilter.so"; do
  [ -e "$t" ] || { echo "live-bench: $t is missing: build first (ninja -C $BUILD)" >&2; exit 1; }
done
BUILD_ABS=$(realpath "$BUILD")
export GST_PLUGIN_PATH_1_0="$BUILD_ABS/gst${GST_PLUGIN_PATH_1_0:+:$GST_PLUGIN_PATH_1_0}"
export NEURALFILTER_MODEL_PATH=${NEURALFILTER_MODEL_PATH:-weights}

name=$(basename "$MODEL" .safetensors)
if [ -z "$ARCH" ]; then
  case $name in
    style-slim-*) ARCH=style-slim ;;
    style-full-*) ARCH=style-full ;;
    style-rt-*) ARCH=style-rt ;;
    sr-subpixel-x[234]*) ARCH=${name:0:14} ;;
    sr-light-x[234]*) ARCH=${name:0:11} ;;
    sr-johnson-x[24]*) ARCH=${name:0:13} ;;
    *) echo "live-bench: no architecture known for \"$name\": give -a ARCH" >&2; exit 2 ;;
  esac
fi
case $ARCH in sr-*) ELEMENT=superres ;; *) ELEMENT=neuralstyle ;; esac

# nf-bench's frames/s for the element's backend; sets NB_FPS and NB_BACKEND.
nf_bench_fps () {
  local backends out
  case $PRECISION in
    fp32) backends=cpu ;;
    *) backends= ;;     # cpu, and cpu-bf16 where the CPU has native bf16
  esac
  out=$("$BENCH" --arch "$ARCH" --size "$SIZE" --iters "$ITERS" ${backends:+--backend $backends})
  echo "$out" | grep -E "^cpu(-bf16)? +$ARCH " >&2
  NB_BACKEND=cpu
  if [ "$PRECISION" != fp32 ] && echo "$out" | grep -qE "^cpu-bf16 +$ARCH "; then
    NB_BACKEND=cpu-bf16
  elif [ "$PRECISION" = bf16 ]; then
    echo "live-bench: no native bf16 on this CPU: the element runs fp32" >&2
  fi
  NB_FPS=$(echo "$out" | awk -v b="$NB_BACKEND" -v a="$ARCH" \
    '$1 == b && $2 == a { for (i = 1; i < NF; i++) if ($(i + 1) == "fps") print $i }' | head -1)
  [ -n "$NB_FPS" ] || { echo "live-bench: no frames/s in nf-bench's output" >&2; exit 1; }
}

echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== nf-bench --arch $ARCH --size $SIZE --iters $ITERS (before)"
nf_bench_fps
FPS_BEFORE=$NB_FPS

PIPE="videotestsrc is-live=true pattern=ball ! video/x-raw${FORMAT:+,format=$FORMAT},width=$W,height=$H,framerate=30/1 ! \
$ELEMENT name=nf model=$MODEL precision=$PRECISION ! fpsdisplaysink name=fps text-overlay=false \
video-sink=\"fakesink name=sink sync=true max-lateness=20000000 qos=true\""
echo "== live pipeline, $SECONDS_RUN s"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
"$LIVE" --seconds "$SECONDS_RUN" --steady "$WARMUP" "$PIPE" | tee "$LOG"

echo "== nf-bench (after)"
nf_bench_fps
FPS_AFTER=$NB_FPS

awk -v before="$FPS_BEFORE" -v after="$FPS_AFTER" -v backend="$NB_BACKEND" '
  /^steady: shown/ {
    for (i = 1; i <= NF; i++) {
      if ($i == "shown") shown = $(i + 1)
      if ($i == "median") median = $(i + 1)
    }
  }
  END {
    fps = (before + after) / 2
    goal_lat = 3 * 1000 / 30 + 1000 / fps
    printf "== nf-bench %s: %.2f frames/s before, %.2f after: %.2f (%.1f ms per frame)\n",
      backend, before, after, fps, 1000 / fps
    printf "shown %.2f frames/s = %.0f%% of nf-bench (goal >= 90%%)\n", shown, 100 * shown / fps
    printf "latency at the sink (median) %.1f ms; goal <= 3 x 33.3 + %.1f = %.1f ms\n",
      median, 1000 / fps, goal_lat
  }' "$LOG"
