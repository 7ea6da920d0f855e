#!/usr/bin/env bash
# Start-up of `palisade run -- /bin/true` (issue 16): this clone, and optionally a baseline clone of another commit,
# run interleaved N times each; prints each median (wall clock, from fork to the guest's end and palisade's exit) and
# the ratio of this clone to the baseline. Both clones are built first by their own ./palisade wrapper.
# usage: bench/run/startup.sh [-n RUNS] [-d DRIVER]... [BASELINE_CLONE]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
runs=21
drivers=()
baseline=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs=$2; shift 2 ;;
    -d) drivers+=(--driver "$2"); shift 2 ;;
    -*) echo "usage: startup.sh [-n RUNS] [-d DRIVER]... [BASELINE_CLONE]" >&2; exit 2 ;;
    *) baseline=$(cd "$1" && pwd); shift ;;
  esac
done

work=$(mktemp -d /tmp/palisade-startup.XXXXXX)
trap 'rm -rf "$work"' EXIT
export PALISADE_HOME=$work/home
mkdir -p "$PALISADE_HOME"

clones=("$root")
[ -z "$baseline" ] || clones+=("$baseline")
for c in "${clones[@]}"; do
  "$c/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
  "$c/palisade" run "${drivers[@]}" -- /bin/true   # builds on first use, warms the page cache
done

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
once() {
  local start end
  start=$(date +%s.%N)
  "$1/palisade" run "${drivers[@]}" -- /bin/true
  end=$(date +%s.%N)
  echo "$end - $start" | bc >> "$2"
}

for _ in $(seq "$runs"); do
  once "$root" "$work/this"
  [ -z "$baseline" ] || once "$baseline" "$work/base"
done

this=$(median "$work/this")
printf 'this clone (%s): median %.3f s over %d runs\n' "$(git -C "$root" rev-parse --short HEAD)" "$this" "$runs"
if [ -n "$baseline" ]; then
  base=$(median "$work/base")
  printf 'baseline (%s): median %.3f s\n' "$(git -C "$baseline" rev-parse --short HEAD)" "$base"
  printf 'ratio this/baseline: %.2f\n' "$(echo "$this / $base" | bc -l)"
fi
