#!/usr/bin/env bash
# test-machine-paths.sh — fails when a tracked file, or the metadata of a tracked
# safetensors file, holds an absolute path of the machine it runs on.
#
# The machine's paths, computed at run time so the test works in any clone: the source
# root and its parent folder, each as given and with symbolic links resolved. A parent
# that is "/" or a shared temporary folder (/tmp, /var/tmp, $TMPDIR: a clone made there)
# would flag every path into it, so there only the root and PARENT/shared (the data
# folder beside the repository) count. A path is flagged where it starts a word (not
# after a letter, digit, '.', '_', '~' or '-', so "../work" and "host/work" are not).
# Tracked files are read as they are in the working tree (uncommitted edits count);
# of a safetensors file only the JSON header (names, shapes, metadata) is read, never
# the tensor bytes.
#
# Usage: test-machine-paths.sh [SOURCE_ROOT]   (default: the folder above this script)
# Exit: 0 none found, 1 found (each as FILE:LINE:PATH), 77 skipped (no git, or not a
# git checkout, e.g. a release tarball).
# What it does not: read untracked or ignored files (build folders, runs/), or judge
# paths that are the same on every machine (/usr/share/..., /dev/null, /tmp/x.log).
set -u
root=${1:-$(dirname "$0")/..}
command -v git >/dev/null || { echo "git not installed: skip"; exit 77; }
git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
  || { echo "$root is not a git checkout: skip"; exit 77; }

# The prefixes, regex-escaped, one alternation.
prefixes=()
add () { [ -n "$1" ] && [ "$1" != / ] && prefixes+=("$1"); }
for r in "$(cd "$root" && pwd -L)" "$(cd "$root" && pwd -P)"; do
  add "$r"
  p=$(dirname "$r")
  case "$p" in
    / | /tmp | /var/tmp | "${TMPDIR:-/tmp}") add "${p%/}/shared" ;;
    *) add "$p" ;;
  esac
done
alt=$(printf '%s\n' "${prefixes[@]}" | sort -u | sed 's/[][\.*^$+?(){}|]/\\&/g' | paste -sd '|')
pat="(^|[^A-Za-z0-9._~-])($alt)(/[^[:space:]\"'\`),;\\]*|[^A-Za-z0-9._~/-]|\$)"
echo "machine paths: $(printf '%s\n' "${prefixes[@]}" | sort -u | paste -sd ' ')"

cd "$root" || exit 1
hits=$(mktemp)
trap 'rm -f "$hits"' EXIT

# Every tracked file but the safetensors ones, as text (-a: also inside other binaries).
git ls-files -z | grep -zv '\.safetensors$' \
  | xargs -0 -r grep -s -a -n -o -E -- "$pat" >> "$hits"

# Safetensors: u64 little-endian header length N, then N bytes of JSON.
n_st=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  n_st=$((n_st + 1))
  size=$(stat -c %s "$f")
  len=$(od -An --endian=little -t u8 -N 8 "$f" | tr -d ' ')
  if [ "$size" -ge 8 ] && [ "$len" -le $((size - 8)) ] 2>/dev/null; then
    head -c $((8 + len)) "$f" | tail -c "$len" | grep -a -o -E -- "$pat" \
      | sed "s|^|$f (metadata):|" >> "$hits"
  else                          # not a safetensors file (a Git LFS pointer?): as text
    grep -s -a -n -o -E -- "$pat" "$f" | sed "s|^|$f:|" >> "$hits"
  fi
done < <(git ls-files -z -- '*.safetensors')

n_files=$(git ls-files | wc -l)
if [ -s "$hits" ]; then
  echo "FAIL: absolute paths of this machine in tracked files (relative paths or file"
  echo "names instead; old weight files: nf-train relabel FILE, see training/README.md):"
  cat "$hits"
  exit 1
fi
echo "ok: none in $n_files tracked files ($n_st safetensors headers)"
exit 0
