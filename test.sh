#!/usr/bin/env bash
# Runs every test of the solution: builds, checks that the generated API reference is current, runs the xunit
# projects, then prints the runner's own per-project summaries and one total line. Exits non-zero on any failure.
# usage: ./test.sh [--soak]   (--soak also runs the long soaks, trait Category=Soak: the 60 s guard soak; CI passes it)
set -uo pipefail
soak=0
for arg in "$@"; do
  case "$arg" in
    --soak) soak=1 ;;
    *) echo "usage: ./test.sh [--soak]" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"
results="$root/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"

echo "== build"
dotnet build Palisade.sln -c Release -nologo -v q || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
./palisade --version >/dev/null || { echo "the palisade command does not start"; echo "0 passed, 1 failed"; exit 1; }
if [ -x drivers/build.sh ]; then drivers/build.sh || { echo "sample drivers failed to build"; echo "0 passed, 1 failed"; exit 1; }; fi
if [ -x attacks/build.sh ]; then attacks/build.sh || { echo "attack drivers failed to build"; echo "0 passed, 1 failed"; exit 1; }; fi

echo "== API reference is current"
docs_failed=0
./palisade api docs --out docs/api --check || docs_failed=1

echo "== tests"
# One test project at a time: the end-to-end tests run real programs under the kernel and the guard soak keeps
# a core busy for a minute; running them side by side on two cores only adds load, not speed.
filter=()
[ "$soak" -eq 1 ] || filter=(--filter "Category!=Soak")
dotnet test Palisade.sln -c Release --no-build -nologo -m:1 "${filter[@]}" --logger "trx" --logger "console;verbosity=minimal" --results-directory "$results"
test_rc=$?

passed=0 failed=0 skipped=0 aborted=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  t=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$counters"); e=$(sed -n 's/.* executed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${t:-0} - ${e:-0}))
  # A test host that crashed leaves its run aborted: it counts as a failure (its unrun tests are not in the counters).
  if grep -q '<ResultSummary outcome="\(Aborted\|Failed\)"' "$trx" && [ "${f:-0}" -eq 0 ]; then aborted=$((aborted + 1)); failed=$((failed + 1)); fi
done
failed=$((failed + docs_failed))
if [ "$test_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
[ "$aborted" -eq 0 ] || echo "${aborted} test run(s) aborted: a test host crashed (see above)"
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" -eq 0 ] && [ "$test_rc" -eq 0 ]
