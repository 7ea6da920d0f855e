#!/usr/bin/env bash
# Steady state against warm-up: runs openloop-chunks (µs per open for each block of 2,000 opens) ROUNDS times under
# the C reference mediator and under `palisade run` (the compare-run.sh driver), interleaved. A steady-state ratio near
# 1.00 with one slow block early in palisade's rows is the runtime's one-time tier-up, not the per-open cost.
# With --one-cpu both run under `taskset -c 0`, which removes the cross-CPU wake-ups that dominate on a 2-vCPU VM.
# usage: bench/run/warmup.sh [-n OPENS] [-r ROUNDS] [--one-cpu]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=20000 rounds=3 pin=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    --one-cpu) pin=(taskset -c 0); shift ;;
    *) echo "usage: warmup.sh [-n OPENS] [-r ROUNDS] [--one-cpu]" >&2; exit 2 ;;
  esac
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -Wall -o "$out/openloop-chunks" "$root/bench/run/openloop-chunks.c"
cc -O2 -Wall -o "$out/ref-supervisor" "$root/bench/reference/ref-supervisor.c"
echo palisade > "$out/target.txt"
export PALISADE_HOME=${PALISADE_HOME:-$(mktemp -d)}
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
for _ in $(seq "$rounds"); do
  printf 'reference  '; "${pin[@]}" "$out/ref-supervisor" /nonexistent-deny-marker -- "$out/openloop-chunks" "$n" "$out/target.txt" 2>/dev/null | paste -sd' '
  printf 'palisade   '; "${pin[@]}" "$root/palisade" run --driver selfprotect --param selfprotect.files=/nonexistent/product \
    --param selfprotect.processes=/nonexistent/product/ -- "$out/openloop-chunks" "$n" "$out/target.txt" | paste -sd' '
done
