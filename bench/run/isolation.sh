#!/usr/bin/env bash
# The cost of the isolated mode's boundary per decided operation: openloop (bench/reference/openloop.c) opens and
# closes a clean file N times under `palisade run --driver antivirus`, with the antivirus in the kernel (--in-kernel) and with it
# in a driver host (--isolated, the default). Every open is decided on the antivirus's verdict: the file is scanned once, at the first
# open, and its clean verdict cached with FileVerdictFlags.SkipPostCreate, so the kernel answers every later open
# itself, without calling the driver: isolated, no open crosses the boundary.
# Then the same with asyncScan=true (the antivirus holds opens, so it registers a pre-create): each open calls the
# pre-create, which pends the open and finds the cached verdict (PendPreOperation, GetFileVerdict) before it lets the
# open go. Isolated, that is three round trips per open (the callback and two calls back into the kernel while it
# waits), the boundary's price for a callback a driver cannot do without.
# Prints the median microseconds per open of each over ROUNDS runs, the ratios isolated/in-kernel, and for the holding
# antivirus the difference per round trip.
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
held=$(measure --in-kernel --param antivirus.asyncScan=true)
heldIsolated=$(measure --isolated --param antivirus.asyncScan=true)
echo "in-kernel antivirus: $kernel us/open"
echo "isolated antivirus:  $isolated us/open"
echo "in-kernel antivirus, holding: $held us/open"
echo "isolated antivirus, holding:  $heldIsolated us/open"
awk -v k="$kernel" -v i="$isolated" -v hk="$held" -v hi="$heldIsolated" 'BEGIN {
  printf "ratio isolated/in-kernel: %.2f (cached verdict, no callback)\n", i / k
  printf "ratio isolated/in-kernel, holding: %.2f\n", hi / hk
  printf "boundary cost, holding: %.1f us per open, %.1f us per round trip (3 per open)\n", hi - hk, (hi - hk) / 3
}'
