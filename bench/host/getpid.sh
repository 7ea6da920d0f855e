#!/usr/bin/env bash
# An unmediated system call (getpid) must cost the same under the supervisor as natively: the generated
# filter depends only on arch and nr, so Linux's seccomp cache skips it. Prints ns/call for both.
# usage: bench/host/getpid.sh [CALLS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-10000000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat > "$out/getpidloop.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_getpid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f ns/getpid\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
C
cc -O2 -o "$out/getpidloop" "$out/getpidloop.c"
dotnet build -c Release "$repo/src/Palisade.Cli/Palisade.Cli.csproj" >/dev/null
palisade=$repo/src/Palisade.Cli/bin/Release/net10.0/palisade
printf 'native      '; "$out/getpidloop" "$n"
printf 'supervised  '; "$palisade" __supervise -- "$out/getpidloop" "$n"
