#!/usr/bin/env bash
# The cost of the isolated mode's boundary per classification: connectloop (bench/reference/connectloop.c) connects to a
# loopback listener of its own N times under `palisade run` with the test driver NetworkRegistry (a callout on every
# IPv4 TCP connect, which answers Continue), in the kernel and in a driver host (--isolated). Isolated, each connect
# crosses the boundary once (the classify function; its result is all that comes back); the accept meets no callout.
# Also measured: no driver at all (the mediation of connect and accept alone). Prints the median microseconds per
# connect of each mode over ROUNDS runs, the ratio isolated/in-kernel and the difference per classification.
# Needs the test driver built (dotnet build tests/Palisade.EndToEnd.Tests -c Release; ./test.sh does).
# usage: bench/run/isolation-classify.sh [-n CONNECTS] [-r ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
connects=5000
rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    -n) connects=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    *) echo "usage: bench/run/isolation-classify.sh [-n CONNECTS] [-r ROUNDS]" >&2; exit 2 ;;
  esac
done

project=Palisade.TestDrivers.NetworkRegistry
built="$root/tests/Palisade.EndToEnd.Tests/bin/Release/net10.0/TestDrivers/$project/$project.dll"
[ -f "$built" ] || { echo "$built is missing: dotnet build tests/Palisade.EndToEnd.Tests -c Release" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PALISADE_HOME=$work/home
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
gcc -O2 -o "$work/connectloop" "$root/bench/reference/connectloop.c"
mkdir "$work/netreg"
cp "$built" "$work/netreg/"
cat > "$work/netreg/manifest.json" <<JSON
{ "name": "netreg", "vendor": "Palisade tests", "version": "1.0.0", "assembly": "$project.dll",
  "entryType": "Palisade.TestDrivers.NetworkRegistry.NetworkRegistryDriver", "minimumApiVersion": "1.0" }
JSON
"$root/palisade" driver sign "$work/netreg" --key "$root/drivers/dev-signing-key.pem" >/dev/null

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

measure() {
  for _ in $(seq "$rounds"); do
    "$root/palisade" run "$@" -- "$work/connectloop" "$connects" | sed -n 's/.* \([0-9.]*\) us\/connect.*/\1/p'
  done | median
}

# Port 1 never matches a connect of the loop: the callout answers Continue to each.
none=$(measure)
kernel=$(measure --in-kernel --driver "$work/netreg" --param netreg.port=1)
isolated=$(measure --isolated --driver "$work/netreg" --param netreg.port=1)
echo "no driver:          $none us/connect"
echo "in-kernel callout:  $kernel us/connect"
echo "isolated callout:   $isolated us/connect"
awk -v k="$kernel" -v i="$isolated" 'BEGIN {
  printf "ratio isolated/in-kernel: %.2f\n", i / k
  printf "boundary cost: %.1f us per classification (1 round trip per connect)\n", i - k
}'
