#!/usr/bin/env bash
# What a slow events consumer costs the guest. openloop-chunks opens and closes a file N times under `palisade run`
# with the self-protection driver subscribed to file create (every open is an operation line), four ways:
#   none       no --events
#   reading    --events FIFO, read as fast as it comes
#   drop-stall --events FIFO --events-policy drop, the reader stopped (SIGSTOP) for the whole guest run
#   block-stall --events FIFO --events-policy block, the reader stopped for STALL seconds, then resumed
# For each: the guest's own µs per open (openloop-chunks prints it, with the mean of each block of 2,000 opens), and
# what reached the reader: lines, and lines lost as the stream's gap lines report them.
# usage: bench/run/events-stall.sh [-n OPENS] [-s STALL-SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=50000 stall=3
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=$2; shift 2 ;;
    -s) stall=$2; shift 2 ;;
    *) echo "usage: events-stall.sh [-n OPENS] [-s STALL-SECONDS]" >&2; exit 2 ;;
  esac
done
out=$(mktemp -d)
reader=""
trap '[ -z "$reader" ] || kill -CONT "$reader" 2>/dev/null || true; rm -rf "$out"' EXIT
cc -O2 -Wall -o "$out/openloop-chunks" "$root/bench/run/openloop-chunks.c"
echo palisade > "$out/target.txt"
export PALISADE_HOME=${PALISADE_HOME:-$(mktemp -d)}
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null
guest=("$out/openloop-chunks" "$n" "$out/target.txt")
drivers=(--driver selfprotect --param selfprotect.files=/nonexistent/product --param selfprotect.processes=/nonexistent/product/)

# Lines that reached the reader, and the lines the stream says it lost (the sum of its gap lines).
count() {
  python3 - "$1" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
lost = sum(l["lost"] for l in lines if l["type"] == "gap")
ops = sum(1 for l in lines if l["type"] == "operation")
seqs = [l["seq"] for l in lines]
contiguous = seqs == list(range(1, len(seqs) + 1))
print(f"  reader got {len(lines)} lines ({ops} operation lines), {lost} lost in gap lines, seq contiguous: {contiguous}")
EOF
}

# Starts bench/run/fifo-reader.py on a new FIFO (stopped before it reads anything with "stopped"); returns once it
# has the FIFO open.
start_reader() {
  rm -f "$out/fifo" "$out/lines"
  mkfifo "$out/fifo"
  python3 "$root/bench/run/fifo-reader.py" "$out/fifo" "$out/lines" "$1" &
  reader=$!
  until [ -f "$out/lines.ready" ]; do sleep 0.05; done
  rm -f "$out/lines.ready"
}

echo "events-stall: $n opens per run; block-stall stops the reader for $stall s"

echo "none"
"$root/palisade" run "${drivers[@]}" -- "${guest[@]}" | sed 's/^/  /'

echo "reading"
start_reader running
"$root/palisade" run "${drivers[@]}" --events "$out/fifo" -- "${guest[@]}" | sed 's/^/  /'
wait "$reader"; reader=""
count "$out/lines"

echo "drop-stall"
start_reader stopped
"$root/palisade" run "${drivers[@]}" --events "$out/fifo" --events-policy drop -- "${guest[@]}" > "$out/guest" &
run=$!
until grep -q '^openloop:' "$out/guest" 2>/dev/null; do sleep 0.1; done
kill -CONT "$reader"
wait "$run"; wait "$reader"; reader=""
sed 's/^/  /' "$out/guest"
count "$out/lines"

echo "block-stall"
start_reader stopped
"$root/palisade" run "${drivers[@]}" --events "$out/fifo" --events-policy block -- "${guest[@]}" > "$out/guest" &
run=$!
sleep "$stall"
kill -CONT "$reader"
wait "$run"; wait "$reader"; reader=""
sed 's/^/  /' "$out/guest"
count "$out/lines"
