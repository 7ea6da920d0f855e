#!/usr/bin/env bash
# Mediation cost of `palisade run` against the C reference mediator, side by side (../shared/bench/compare.sh):
# openloop opens and closes a file N times natively, under ref-supervisor, and under `palisade run` with the
# self-protection driver subscribed to file create (it guards a product folder: every open goes through the filter manager
# and the driver's pre-create callback, and is allowed). The last line is the ratio palisade/reference (1.00 is parity).
# usage: bench/run/compare-run.sh [-n OPENS] [-r ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# The shared scripts sit beside the clone (../shared); a git worktree is one level deeper (../../shared).
compare=${PALISADE_COMPARE:-}
for candidate in "$root/../shared/bench/compare.sh" "$root/../../shared/bench/compare.sh"; do
  [ -n "$compare" ] || [ ! -f "$candidate" ] || compare=$candidate
done
[ -n "$compare" ] || { echo "compare-run.sh: ../shared/bench/compare.sh not found (set PALISADE_COMPARE)" >&2; exit 1; }
[ -x "$compare" ] || compare="bash $compare"
export PALISADE_HOME=${PALISADE_HOME:-$(mktemp -d)}
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
$compare "$@" -- "$root/palisade" run --driver selfprotect --param selfprotect.files=/nonexistent/product --param selfprotect.processes=/nonexistent/product/ --
