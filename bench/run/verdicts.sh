#!/usr/bin/env bash
# Supervisor memory with many cached verdicts (issue 16, item 5). For each capacity C, one `palisade run` with the
# antivirus (`--param antivirus.verdictCache=C`) reads FILES distinct small files twice: the first pass scans each and
# caches its clean verdict, the second is served from the cache where it kept the verdict. The supervisor's resident
# memory is read from outside after the second pass, with the seconds each pass took.
# usage: bench/run/verdicts.sh [-f FILES] [CAPACITY ...]     (default: 100000 files; capacities 4096 131072)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
files=100000
if [ "${1-}" = -f ]; then files=$2; shift 2; fi
capacities=("$@")
[ ${#capacities[@]} -gt 0 ] || capacities=(4096 131072)

work=$(mktemp -d /tmp/palisade-verdicts.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
export PALISADE_HOME=${PALISADE_HOME:-$work/home}
mkdir -p "$PALISADE_HOME" "$work/files"
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
# Files of distinct content in folders of 1,000 (consecutive inodes, as a file system hands them out).
python3 - "$work/files" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, str(i // 1000))
    if i % 1000 == 0:
        os.mkdir(d)
    with open(os.path.join(d, str(i)), "w") as f:
        f.write(f"file {i}\n")
PY

printf '%10s %8s %14s %14s %12s\n' capacity files "first pass s" "second pass s" "rss (MiB)"
for c in "${capacities[@]}"; do
  marker="verdicts-$c-$$"
  rm -f "$work/ready" "$work/done" "$work/times"
  "$root/palisade" run --driver antivirus --param "antivirus.verdictCache=$c" -- sh -c '
    work=$1
    t0=$(date +%s.%N); find "$work/files" -type f -exec cat {} + > /dev/null
    t1=$(date +%s.%N); find "$work/files" -type f -exec cat {} + > /dev/null
    t2=$(date +%s.%N)
    echo "$t0 $t1 $t2" > "$work/times"
    : > "$work/ready"
    while [ ! -e "$work/done" ]; do sleep 0.2; done' "$marker" "$work" &
  runner=$!
  while [ ! -e "$work/ready" ]; do
    kill -0 "$runner" 2>/dev/null || { echo "verdicts.sh: the run for capacity $c ended early" >&2; exit 1; }
    sleep 0.2
  done
  sup=""
  for pid in $(pgrep -f "palisade.dll run"); do
    if grep -qs -- "$marker" "/proc/$pid/cmdline"; then sup=$pid; break; fi
  done
  rss=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$sup/status")
  : > "$work/done"
  wait "$runner"
  read -r t0 t1 t2 < "$work/times"
  printf '%10s %8s %14.2f %14.2f %12s\n' "$c" "$files" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$rss"
done
