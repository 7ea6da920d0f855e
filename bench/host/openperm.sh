#!/usr/bin/env bash
# What a verdict cache that the Linux kernel enforces would cost per open (issue 16): native opens against opens
# decided by a fanotify permission event (a round trip per open) and opens of a file that carries an ignore mark
# (Linux answers itself), and opens each preceded by a write (which drops the mark: a changed file is decided again). Rounds are interleaved; prints each mode's median
# and its ratio to native. The file lives on a tmpfs mounted for the run, so the mount mark touches nothing else.
# Needs root (CAP_SYS_ADMIN) and a C compiler.
# usage: bench/host/openperm.sh [-n OPENS] [-r ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=200000 rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    *) echo "usage: openperm.sh [-n OPENS] [-r ROUNDS]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d /tmp/palisade-openperm.XXXXXX)
cleanup() { umount "$work/fs" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cc -O2 -pthread -o "$work/openperm" "$here/openperm.c"
mkdir "$work/fs"
mount -t tmpfs -o size=1m palisade-openperm "$work/fs"
modes=(native perm ignored modified)
for m in "${modes[@]}"; do : > "$work/$m"; done
for ((r = 0; r < rounds; r++)); do
  for m in "${modes[@]}"; do
    echo palisade > "$work/fs/target"
    line=$("$work/openperm" "$m" "$n" "$work/fs/target")
    echo "$line" >> "$work/lines"
    echo "$line" | sed -n 's/^openperm: .*, \([0-9.]*\) us\/open.*$/\1/p' >> "$work/$m"
  done
done
median() { sort -g "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
sed -n 1,4p "$work/lines"
base=$(median "$work/native")
for m in "${modes[@]}"; do
  v=$(median "$work/$m")
  printf '%-8s %8.3f us/open  ratio to native %5.2f\n' "$m" "$v" "$(echo "$v / $base" | bc -l)"
done
