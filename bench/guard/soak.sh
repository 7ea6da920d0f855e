#!/usr/bin/env bash
# The guard's no-false-positive soak for longer than CI's 60 seconds: legitimate churn under a protected kernel.
# usage: bench/guard/soak.sh [SECONDS]   (default 600)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
PALISADE_SOAK_SECONDS=${1:-600} dotnet test "$root/tests/Palisade.Guard.Tests" -c Release --filter "FullyQualifiedName~SoakTests"
