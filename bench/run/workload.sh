#!/usr/bin/env bash
# A developer's minute, natively and under `palisade run`, interleaved, printing each configuration's median time and
# its ratio to native (issue 16). The work, run by bench/run/workload-steps.sh in a fresh folder each time:
#   git clone (--no-local: objects copied) of this repository, git log --stat, git status, grep -rn over src,
#   eight gcc -O2 compiles, tar czf / tar xzf of src and docs, a python3 start importing json, sqlite3, email,
#   http.client and unittest, and a real test suite: CPython's own test_json and test_base64 (python3 -m unittest).
# Configurations: native; palisade with no driver; with the antivirus; with the antivirus and application control in
# enforce mode (the allow list admits /usr/**, /bin/** and the compilers' helpers, which is what the work runs); with all
# four sample drivers. Start-up of `palisade run -- /bin/true` is measured the same way and printed, so the ratio can be
# read with and without it.
# -p PLACEMENT (isolated or in-kernel) places every driver of every run so; by default each runs where its manifest says
# (the samples: isolated).
# usage: bench/run/workload.sh [-r ROUNDS] [-k KEEP_DIR] [-p isolated|in-kernel]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rounds=5
keep=""
placement=""
while [ $# -gt 0 ]; do
  case "$1" in
    -r) rounds=$2; shift 2 ;;
    -k) keep=$2; shift 2 ;;
    -p) case "$2" in isolated|in-kernel) placement="--$2" ;; *) echo "workload.sh: -p takes isolated or in-kernel" >&2; exit 2 ;; esac; shift 2 ;;
    *) echo "usage: workload.sh [-r ROUNDS] [-k KEEP_DIR] [-p isolated|in-kernel]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d /tmp/palisade-workload.XXXXXX)
[ -n "$keep" ] || trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
export PALISADE_HOME=${PALISADE_HOME:-$work/home}
mkdir -p "$PALISADE_HOME"
"$root/palisade" trust add "$root/drivers/dev-signing-key.pem.pub" --name palisade-dev-ONLY >/dev/null

cat > "$work/allow.list" <<'EOF'
path /usr/**
path /bin/**
path /lib/**
path /lib64/**
path /root/.pyenv/**
EOF

steps="$root/bench/run/workload-steps.sh"
# The repository's committed state, cloned once as the source of every run's clone (no build outputs).
git clone -q --bare "$root" "$work/source.git"

declare -A cmd
names=(native none antivirus av+appcontrol all-four)
cmd[native]=""
cmd[none]="$root/palisade run --"
cmd[antivirus]="$root/palisade run $placement --driver antivirus --"
cmd[av+appcontrol]="$root/palisade run $placement --driver antivirus --driver appcontrol --param appcontrol.allowlist=$work/allow.list --param appcontrol.mode=enforce --"
cmd[all-four]="$root/palisade run $placement --driver antivirus --driver appcontrol --param appcontrol.allowlist=$work/allow.list --param appcontrol.mode=enforce --driver firewall --driver selfprotect --param selfprotect.files=/nonexistent/product --param selfprotect.processes=/nonexistent/product/ --"

now() { date +%s.%N; }
once() {
  local name=$1 dir
  dir=$(mktemp -d "$work/run.XXXXXX")
  local start end
  start=$(now)
  # shellcheck disable=SC2086
  if ! ${cmd[$name]} bash "$steps" "$work/source.git" "$root" "$dir" > "$dir.log" 2>&1; then
    echo "workload.sh: the work failed under '$name' (log: $dir.log)" >&2
    tail -20 "$dir.log" >&2
    exit 1
  fi
  end=$(now)
  rm -rf "$dir"
  echo "$end - $start" | bc >> "$work/$name.times"
}
startup() {
  local start end
  start=$(now)
  "$root/palisade" run -- /bin/true
  end=$(now)
  echo "$end - $start" | bc >> "$work/startup.times"
}

# One warm-up of each, not counted (page cache, the CLI's first build, the runtime's first start).
for name in "${names[@]}"; do once "$name"; rm -f "$work/$name.times"; done
startup; rm -f "$work/startup.times"

for _ in $(seq "$rounds"); do
  for name in "${names[@]}"; do once "$name"; done
  startup
done

median() { sort -g "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
native=$(median "$work/native.times")
boot=$(median "$work/startup.times")
printf 'commit %s, %s rounds, %s\n' "$(git -C "$root" rev-parse --short HEAD)" "$rounds" "$(nproc) CPUs"
printf '%-14s %8s %8s %8s %14s\n' configuration median min max "ratio (-start)"
for name in "${names[@]}"; do
  m=$(median "$work/$name.times")
  lo=$(sort -g "$work/$name.times" | head -1)
  hi=$(sort -g "$work/$name.times" | tail -1)
  if [ "$name" = native ]; then
    printf '%-14s %8.3f %8.3f %8.3f %6.2f\n' "$name" "$m" "$lo" "$hi" 1
  else
    printf '%-14s %8.3f %8.3f %8.3f %6.2f (%.2f)\n' "$name" "$m" "$lo" "$hi" "$(echo "$m / $native" | bc -l)" "$(echo "($m - $boot) / $native" | bc -l)"
  fi
done
printf 'start-up of palisade run -- /bin/true: median %.3f s\n' "$boot"
