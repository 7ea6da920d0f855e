#!/usr/bin/env bash
# The work of bench/run/workload.sh, run as one program (natively or as the guest of `palisade run`).
# usage: workload-steps.sh SOURCE_GIT REPOSITORY WORKDIR
set -euo pipefail
source_git=$1 repo=$2 work=$3
cd "$work"

# History and search.
git clone -q --no-local "$source_git" clone
git -C clone log --stat -n 200 > /dev/null
git -C clone status --porcelain > /dev/null
grep -rn "Status" clone/src > /dev/null

# Eight compiles of real C (the reference mediator, its open loop, and the benchmark helpers), -O2.
mkdir cc
i=0
for c in "$repo"/bench/reference/openloop.c "$repo"/bench/reference/ref-supervisor.c "$repo"/bench/run/openloop-chunks.c; do
  for _ in 1 2 3; do
    [ "$i" -lt 8 ] || break
    gcc -O2 -c -o "cc/$i.o" "$c"
    i=$((i + 1))
  done
done

# Archives.
tar czf src.tgz -C clone src docs
mkdir unpacked
tar xzf src.tgz -C unpacked

# An interpreter's start, then a real test suite.
python3 -c 'import json, sqlite3, email, http.client, unittest'
python3 -m unittest -q test.test_json test.test_base64 2> unittest.log || { cat unittest.log >&2; exit 1; }
