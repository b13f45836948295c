#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build, test and run the project; with the
# argument "fuzz", those of the fuzz targets instead (clang, its libFuzzer/sanitizer
# runtimes and OpenMP; tests/fuzz/run-fuzz.sh).
# Idempotent: does nothing when everything is already there. Needs root (or sudo).
set -euo pipefail
if [ "${1:-}" = fuzz ]; then
  PKGS=(clang libclang-rt-14-dev libomp-14-dev)
else
PKGS=(
  build-essential meson ninja-build pkg-config
  libglib2.0-dev libjson-glib-dev liborc-0.4-dev libdnnl-dev liblbfgs-dev
  libpng-dev libjpeg62-turbo-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav
  liborc-0.4-dev-bin valgrind
)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
