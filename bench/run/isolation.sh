#!/usr/bin/env bash
# The cost of the isolated mode's boundary per decided operation: openloop (bench/reference/openloop.c) opens and
# closes a clean file N times under `palisade run --driver antivirus`, with the antivirus in the kernel (--in-kernel) and with it in a
# driver host (--isolated; the default). Every open is decided by the antivirus: its pre-create asks for a post-create, whose verdict
# cache lookup finds the file clean (the file is scanned once, at the first open). In isolated mode each open therefore
# crosses the boundary for two callbacks (pre-create, post-create) and one call back into the kernel while the
# post-create waits (GetFileVerdict): three round trips. Prints the median microseconds per open of each mode over
# ROUNDS runs, the ratio isolated/in-kernel, and the difference per callback round trip.
# usage: bench/run/isolation.sh [-n OPENS] [-r ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
opens=20000
rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    -n) opens=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    *) echo "usage: bench/run/isolation.sh [-n OPENS] [-r ROUNDS]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PALISADE_HOME=$work/home
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
gcc -O2 -o "$work/openloop" "$root/bench/reference/openloop.c"
echo "a clean file" > "$work/clean.txt"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

measure() {
  for _ in $(seq "$rounds"); do
    "$root/palisade" run --driver antivirus "$@" -- "$work/openloop" "$opens" "$work/clean.txt" \
      | sed -n 's/.* \([0-9.]*\) us\/open.*/\1/p'
  done | median
}

kernel=$(measure --in-kernel)
isolated=$(measure --isolated)
echo "in-kernel antivirus: $kernel us/open"
echo "isolated antivirus:  $isolated us/open"
awk -v k="$kernel" -v i="$isolated" 'BEGIN {
  printf "ratio isolated/in-kernel: %.2f\n", i / k
  printf "boundary cost: %.1f us per open, %.1f us per round trip (3 per open)\n", i - k, (i - k) / 3
}'
