/* openloop-chunks: openloop (../shared/bench/openloop.c) that also prints the mean cost of each block of 2,000
 * open+close pairs, so that a one-time pause (the .NET runtime's tier-up) is told apart from the steady state.
 * usage: openloop-chunks N PATH */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: openloop-chunks N PATH\n"); return 2; }
    long n = atol(argv[1]);
    const long chunk = 2000;
    double start = now_us(), mark = start;
    printf("chunks:");
    for (long i = 0; i < n; i++) {
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd < 0) { perror("open"); return 1; }
        close(fd);
        if ((i + 1) % chunk == 0) { double t = now_us(); printf(" %.1f", (t - mark) / chunk); mark = t; }
    }
    printf("\nopenloop: %ld opens, %.3f us/open\n", n, (now_us() - start) / n);
    return 0;
}
