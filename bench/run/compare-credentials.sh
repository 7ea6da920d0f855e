#!/usr/bin/env bash
# Mediation cost of `palisade run` for a guest with credentials other than the supervisor's, against the C reference:
# the same runs as compare-run.sh, with openloop started under `setpriv --reuid=65534 --regid=65534 --clear-groups`
# inside palisade, so that every open the supervisor performs for it changes the acting thread's groups, fsgid, fsuid
# and capabilities and changes them back (docs/security.md, "Credentials"). Needs root (setpriv changes users).
# The reference and native rows run openloop as the caller, as in compare-run.sh. The last line is palisade/reference.
# usage: bench/run/compare-credentials.sh [-n OPENS] [-r ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
compare=${PALISADE_COMPARE:-$root/bench/reference/compare.sh}
[ -x "$compare" ] || compare="bash $compare"
export PALISADE_HOME=${PALISADE_HOME:-$(mktemp -d)}
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
$compare "$@" -- "$root/palisade" run --driver selfprotect --param selfprotect.files=/nonexistent/product --param selfprotect.processes=/nonexistent/product/ -- \
  setpriv --reuid=65534 --regid=65534 --clear-groups
