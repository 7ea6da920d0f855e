#!/usr/bin/env bash
# Mediation cost of Palisade's supervisor on open(2), against native and the C reference
# (bench/reference/compare.sh). The mediator is `palisade __supervise --`: the host's supervisor with an
# allow-all policy that still takes the pre and post decisions on every open (so it pays for decoding,
# path resolution, the open, the identity and canonical path, and fd injection).
# usage: bench/host/compare-open.sh [-n OPENS] [-r ROUNDS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dotnet build -c Release "$repo/src/Palisade.Cli/Palisade.Cli.csproj" >/dev/null
palisade=$repo/src/Palisade.Cli/bin/Release/net10.0/palisade
exec bash "$repo/bench/reference/compare.sh" "$@" -- "$palisade" __supervise --
