#!/usr/bin/env bash
# Adds every public symbol of Palisade.Api that the PublicApiAnalyzers report as undeclared (RS0016) to
# PublicAPI.Unshipped.txt, so that a change to the public surface shows up in review as a change to that file.
set -euo pipefail
cd "$(dirname "$0")/.."
proj=src/Palisade.Api
out=$(dotnet build "$proj" -v q -nologo 2>&1 || true)
syms=$(printf '%s\n' "$out" | grep -o "RS0016: Symbol '[^']*'" | sed "s/^RS0016: Symbol '//; s/'\$//" | sort -u || true)
[ -n "$syms" ] || { echo "public API files are current"; exit 0; }
{ cat "$proj/PublicAPI.Unshipped.txt"; printf '%s\n' "$syms"; } | awk 'NR==1 || !seen[$0]++' > "$proj/PublicAPI.Unshipped.txt.new"
{ head -n1 "$proj/PublicAPI.Unshipped.txt.new"; tail -n +2 "$proj/PublicAPI.Unshipped.txt.new" | sort; } > "$proj/PublicAPI.Unshipped.txt"
rm "$proj/PublicAPI.Unshipped.txt.new"
echo "added $(printf '%s\n' "$syms" | wc -l) symbols to $proj/PublicAPI.Unshipped.txt"
