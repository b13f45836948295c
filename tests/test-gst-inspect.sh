#!/usr/bin/env bash
# gst-inspect-1.0 on the built plugin lists both elements, their properties and pad
# templates, and the documented launch lines. Skips (77) without gst-inspect-1.0.
set -u
command -v gst-inspect-1.0 >/dev/null || { echo "gst-inspect-1.0 not installed: skip"; exit 77; }
fail=0
expect () {   # expect ELEMENT-OR-PLUGIN PATTERN...
  local what=$1; shift
  local out; out=$(gst-inspect-1.0 "$what" 2>&1)
  for pat in "$@"; do
    if grep -q -- "$pat" <<<"$out"; then echo "ok   $what: $pat"
    else echo "FAIL $what: no \"$pat\""; fail=1; fi
  done
}
expect neuralfilter "neuralstyle: Neural style transfer" "superres: Neural super-resolution"
expect neuralstyle "Filter/Effect/Video" "SINK template" "SRC template" "NV12" \
  "model  " "device  " "precision  " "strength  " "gst-launch-1.0"
expect superres "SINK template" "SRC template" "I420" "model  " "device  " "precision  " \
  "gst-launch-1.0"
exit $fail
