#!/usr/bin/env bash
# Cost per open and supervisor memory as the number of live guest processes grows (issue 16, item 5). For each N, one
# `palisade run` (with the antivirus, so every open is decided and scanned once, then served from the verdict cache)
# starts N guest processes that stay alive (each has exec'd and opened its libraries, so the supervisor knows it),
# then runs openloop (20,000 opens of one file); the supervisor's resident memory and thread count are read from
# outside while the N processes live. A flat µs/open column is the goal.
# usage: bench/run/scale.sh [-n OPENS] [N ...]      (default N: 1 10 100 1000)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
opens=20000
if [ "${1-}" = -n ]; then opens=$2; shift 2; fi
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 10 100 1000)

work=$(mktemp -d /tmp/palisade-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
export PALISADE_HOME=${PALISADE_HOME:-$work/home}
mkdir -p "$PALISADE_HOME"
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
"$root/bench/reference/build.sh" "$work" >/dev/null
echo palisade > "$work/target.txt"

supervisor_of() { # the palisade run process whose guest tree holds marker $1
  local pid
  for pid in $(pgrep -f "palisade.dll run"); do
    if grep -qs -- "$1" "/proc/$pid/cmdline"; then echo "$pid"; return; fi
  done
}

printf '%8s %10s %12s %10s\n' processes us/open "rss (MiB)" threads
for n in "${counts[@]}"; do
  marker="scale-$n-$$"
  rm -f "$work/ready" "$work/done" "$work/result"
  "$root/palisade" run --driver antivirus -- sh -c '
    n=$1 work=$2 opens=$3
    i=0 pids=""
    while [ "$i" -lt "$n" ]; do sleep 600 & pids="$pids $!"; i=$((i + 1)); done
    # Measure only once every process runs sleep (started and past its exec), not while they start.
    bin=$(readlink -f "$(command -v sleep)")
    while :; do
      c=0; for p in $pids; do [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$bin" ] && c=$((c + 1)); done
      [ "$c" -ge "$n" ] && break
      sleep 0.2
    done
    sleep 1
    "$work/openloop" "$opens" "$work/target.txt" > "$work/result" 2>&1
    : > "$work/ready"
    while [ ! -e "$work/done" ]; do sleep 0.2; done
    # No kill and wait: the run ends its guests when this shell exits. (A dash "kill" of many processes under
    # palisade can fail with EINTR when their SIGCHLD arrives before the supervisor received the next kill:
    # docs/security.md, known limits; "wait" would then wait for the sleeps it failed to kill.)
    exit 0' "$marker" "$n" "$work" "$opens" &
  runner=$!
  while [ ! -e "$work/ready" ]; do
    kill -0 "$runner" 2>/dev/null || { echo "scale.sh: the run for $n processes ended early" >&2; exit 1; }
    sleep 0.2
  done
  sup=$(supervisor_of "$marker")
  rss=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$sup/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$sup/status")
  : > "$work/done"
  wait "$runner"
  us=$(sed -n 's/^openloop: .*, \([0-9.]*\) us\/open$/\1/p' "$work/result")
  printf '%8s %10s %12s %10s\n' "$n" "$us" "$rss" "$threads"
done
