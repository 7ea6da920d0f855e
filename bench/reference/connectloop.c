/* connectloop: the guest side of the classify benchmark.
 * Listens on a loopback port of its own, then N times connects a new TCP socket to it (a blocking connect: one
 * classification at the connect layer), accepts the connection and closes both ends; prints the mean cost of one
 * iteration. usage: connectloop N */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: connectloop N\n"); return 2; }
    long n = atol(argv[1]);
    int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0 };
    socklen_t len = sizeof a;
    if (srv < 0 || bind(srv, (struct sockaddr *)&a, sizeof a) < 0 || listen(srv, 64) < 0
        || getsockname(srv, (struct sockaddr *)&a, &len) < 0) { perror("listen"); return 1; }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
        int s = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0) { perror("accept"); return 1; }
        close(c);
        close(s);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / n;
    printf("connectloop: %ld connects, %.3f us/connect\n", n, us);
    return 0;
}
