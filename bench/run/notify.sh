#!/usr/bin/env bash
# What a process notification costs the guest in the isolated mode: a shell forks N subshells that exit at once
# (`( : )`: a fork and an exit, no exec) under `palisade run` with no driver, with the process-watch test driver
# (tests/Palisade.TestDrivers/ProcessWatch: fork and exit callbacks, each reporting an event) in the kernel, and with it
# in a driver host (--isolated), where its fork and exit callbacks are one-way Notify records the guest does not wait
# for. Prints the median microseconds per subshell of each mode over ROUNDS runs.
# usage: bench/run/notify.sh [-n SUBSHELLS] [-r ROUNDS]   (build first: dotnet build Palisade.sln -c Release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
count=2000
rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    -n) count=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    *) echo "usage: bench/run/notify.sh [-n SUBSHELLS] [-r ROUNDS]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PALISADE_HOME=$work/home
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
project=Palisade.TestDrivers.ProcessWatch
mkdir "$work/processwatch"
cp "$root/tests/Palisade.TestDrivers/ProcessWatch/bin/Release/net10.0/$project.dll" "$work/processwatch/"
cat > "$work/processwatch/manifest.json" <<JSON
{ "name": "processwatch", "vendor": "Palisade bench", "version": "1.0.0", "assembly": "$project.dll",
  "entryType": "$project.ProcessWatchDriver", "minimumApiVersion": "1.0" }
JSON
"$root/palisade" driver sign "$work/processwatch" --key "$root/drivers/dev-signing-key.pem" >/dev/null

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The loop times itself with the shell's own clock reads (two execs of date, outside the loop).
script='i=0; s=$(date +%s%N); while [ $i -lt '"$count"' ]; do ( : ); i=$((i+1)); done; e=$(date +%s%N); echo $(( (e - s) / '"$count"' / 1000 ))'

measure() {
  for _ in $(seq "$rounds"); do
    "$root/palisade" run "$@" -- /bin/sh -c "$script"
  done | median
}

none=$(measure)
kernel=$(measure --in-kernel --driver "$work/processwatch")
isolated=$(measure --isolated --driver "$work/processwatch")
echo "no driver:                 $none us/subshell"
echo "process-watch in kernel:   $kernel us/subshell"
echo "process-watch isolated:    $isolated us/subshell"
