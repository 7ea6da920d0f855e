#!/usr/bin/env bash
# Mediation cost of `palisade run` against the C reference mediator, side by side (bench/reference/compare.sh):
# openloop opens and closes a file N times natively, under ref-supervisor, and under `palisade run` with the
# self-protection driver subscribed to file create (it guards a product folder: every open goes through the filter manager
# and the driver's pre-create callback, and is allowed). The last line is the ratio palisade/reference (1.00 is parity).
# usage: bench/run/compare-run.sh [-n OPENS] [-r ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# The C reference and the side-by-side script are in the repository (bench/reference); PALISADE_COMPARE may name
# another compare.sh to measure against.
compare=${PALISADE_COMPARE:-$root/bench/reference/compare.sh}
[ -x "$compare" ] || compare="bash $compare"
export PALISADE_HOME=${PALISADE_HOME:-$(mktemp -d)}
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
$compare "$@" -- "$root/palisade" run --driver selfprotect --param selfprotect.files=/nonexistent/product --param selfprotect.processes=/nonexistent/product/ --
