// What a verdict cache enforced by Linux itself would cost per open (issue 16, docs/benchmarks.md "Opens the Linux
// kernel decides"): a child opens and closes one file N times while this process holds a fanotify group with
// FAN_OPEN_PERM on the file's mount, in one of four modes:
//   native   no fanotify group at all
//   perm     every open is a permission event answered FAN_ALLOW by this process (a round trip per open)
//   ignored  the first event is answered and the file then gets an ignore mark: Linux answers later opens itself
//   modified as ignored, but the child writes one byte to the file before each open (through a descriptor it opened
//            before the loop): the write drops the ignore mark (set without FAN_MARK_IGNORED_SURV_MODIFY), so every
//            open is an event again; the time includes the writes
// Prints "openperm: MODE N opens, X us/open, E events" (E counts the permission events answered: N for perm, 1 for
// ignored, N + 1 for modified: a change drops the cache, and so does a writer merely holding the file open). Needs
// CAP_SYS_ADMIN. Build: cc -O2 -pthread -o openperm openperm.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int group = -1;
static int ignore_after_first;
static volatile long events;

static void fail(const char *what) {
    fprintf(stderr, "openperm: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *respond(void *unused) {
    (void)unused;
    char buffer[4096] __attribute__((aligned(8)));
    for (;;) {
        ssize_t len = read(group, buffer, sizeof buffer);
        if (len <= 0) {
            if (len < 0 && errno == EINTR) continue;
            return NULL;
        }
        for (struct fanotify_event_metadata *m = (void *)buffer; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
            if (m->fd < 0) continue;
            if (ignore_after_first &&
                fanotify_mark(group, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, FAN_OPEN_PERM, m->fd, NULL) != 0)
                fail("fanotify_mark (ignore)");
            __atomic_add_fetch(&events, 1, __ATOMIC_SEQ_CST);
            struct fanotify_response r = {.fd = m->fd, .response = FAN_ALLOW};
            if (write(group, &r, sizeof r) != sizeof r) fail("write response");
            close(m->fd);
        }
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: openperm native|perm|ignored|modified N FILE\n");
        return 2;
    }
    const char *mode = argv[1], *path = argv[3];
    long n = atol(argv[2]);
    if (n <= 0) { fprintf(stderr, "openperm: N must be positive\n"); return 2; }
    if (strcmp(mode, "native") != 0) {
        group = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE);
        if (group < 0) fail("fanotify_init");
        if (fanotify_mark(group, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN_PERM, AT_FDCWD, path) != 0) fail("fanotify_mark");
        ignore_after_first = strcmp(mode, "ignored") == 0 || strcmp(mode, "modified") == 0;
        pthread_t thread;
        if (pthread_create(&thread, NULL, respond, NULL) != 0) fail("pthread_create");
        pthread_detach(thread);
    }
    int modify = strcmp(mode, "modified") == 0;
    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        // Only the modified mode holds a writer: while any descriptor has the file open for writing, Linux (6.18 here)
        // does not apply the ignore mark, so every open is an event again (measured: N + 1 events).
        int writer = modify ? open(path, O_WRONLY | O_APPEND) : -1;
        if (modify && writer < 0) fail("open for writing");
        double start = now();
        for (long i = 0; i < n; i++) {
            if (modify && write(writer, "x", 1) != 1) fail("write");
            int fd = open(path, O_RDONLY);
            if (fd < 0) fail("open");
            close(fd);
        }
        printf("openperm: %s %ld opens, %.3f us/open", mode, n, (now() - start) * 1e6 / n);
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) < 0) fail("waitpid");
    printf(", %ld events\n", __atomic_load_n(&events, __ATOMIC_SEQ_CST));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
