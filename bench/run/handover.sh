#!/usr/bin/env bash
# The hand-over: how fast one guest opens files while another guest's operation is held, against the same run with
# nothing held. openloop (bench/reference/openloop.c) opens and closes a file N times under `palisade run`:
#   firewall  the sample firewall with an interactive rule (ask out tcp 127.0.0.1); its prompt program listens but
#             never answers, so a Python connect to a loopback listener stays held for the whole measurement.
#   antivirus the sample antivirus with a scanning service (scanService); the service answers every scan at once
#             except the one of held.txt, so a `cat held.txt` stays held. openloop's own opens go through the
#             antivirus too (each is held, its file found cached clean, and the hold withdrawn at once).
# Rounds alternate held and not held; the medians are printed with opens per second and the ratio held/alone.
# usage: bench/run/handover.sh [-n OPENS] [-r ROUNDS] [firewall|antivirus]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=20000 rounds=5 driver=firewall
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    firewall|antivirus) driver=$1; shift ;;
    *) echo "usage: handover.sh [-n OPENS] [-r ROUNDS] [firewall|antivirus]" >&2; exit 2 ;;
  esac
done
python=${PYTHON:-/usr/bin/python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$root/bench/reference/build.sh" "$out" >/dev/null
echo palisade > "$out/target.txt"
echo held > "$out/held.txt"
export PALISADE_HOME=${PALISADE_HOME:-$(mktemp -d)}
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null

# A channel program for either driver: opens FOLDER/requests (which names it to the driver), then opens READY (a FIFO
# the script waits on); answers "clean" at once to every request except one for held.txt (never answered), and
# writes "asked" to ASKED when it receives a request it will not answer (the firewall's, or held.txt's).
cat > "$out/channel.py" <<'EOF'
import os, sys
folder, ready, asked = sys.argv[1:4]
requests = os.path.join(folder, "requests")
os.mkfifo(requests, 0o600)
with open(os.open(requests, os.O_RDWR), "r", buffering=1) as lines:
    open(ready, "w").close()
    for line in lines:
        rid, what = line.rstrip("\n").split(" ", 1)
        if what.startswith("connect") or what.endswith("held.txt"):
            with open(asked, "w") as f: f.write("asked\n")
            continue
        name = os.path.join(folder, rid + ".clean")
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600))
        os.unlink(name)
EOF
cat > "$out/connect.py" <<'EOF'
import socket
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
socket.create_connection(("127.0.0.1", server.getsockname()[1]))
EOF
printf 'ask out tcp 127.0.0.1\nallow out any\nallow in any\n' > "$out/fw.rules"

once() {
  local held=$1
  rm -rf "$out/spool" "$out/ready" "$out/asked"
  mkdir -m 700 "$out/spool"
  mkfifo "$out/ready" "$out/asked"
  local options=() hold=
  if [ "$driver" = firewall ]; then
    options=(--driver firewall --param "firewall.rules=$out/fw.rules" --param "firewall.prompt=$out/spool")
    hold="$python $out/connect.py"
  else
    options=(--driver antivirus --param "antivirus.scanService=$out/spool" --param antivirus.holdTime=600)
    hold="cat $out/held.txt"
  fi
  local script="$python $out/channel.py $out/spool $out/ready $out/asked & channel=\$!; cat $out/ready;"
  if [ "$held" = held ]; then
    script+=" $hold >/dev/null 2>&1 & cat $out/asked >/dev/null;"
  fi
  script+=" $out/openloop $n $out/target.txt; kill \$channel"
  "$root/palisade" run "${options[@]}" -- /bin/sh -c "$script" 2>/dev/null | sed -n 's/^openloop: .*, \([0-9.]*\) us\/open$/\1/p' || true
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for _ in $(seq "$rounds"); do
  once alone >> "$out/alone"
  once held >> "$out/held"
done
alone=$(median < "$out/alone")
held=$(median < "$out/held")
[ -n "$alone" ] && [ -n "$held" ] || { echo "handover.sh: openloop did not report (see palisade run's errors)" >&2; exit 1; }
printf '%-9s %-26s %8s us/open %9.0f opens/s\n' "$driver" "nothing held" "$alone" "$(awk -v u="$alone" 'BEGIN{print 1e6/u}')"
printf '%-9s %-26s %8s us/open %9.0f opens/s\n' "$driver" "another guest held" "$held" "$(awk -v u="$held" 'BEGIN{print 1e6/u}')"
awk -v h="$held" -v a="$alone" 'BEGIN { printf "ratio held/alone: %.2f\n", h / a }'
