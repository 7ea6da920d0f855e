// One file system call per run, for tests that compare what Linux does natively with what it does under palisade run.
// usage: fsops OP PATH [ARG...]; prints "OP ok" or "OP ERRNO" (the errno's name) and exits 0.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/falloc.h>

static int on(const char *path, int flags) { return open(path, flags); }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: fsops OP PATH [ARG...]\n"); return 2; }
    const char *op = argv[1], *path = argv[2], *arg = argc > 3 ? argv[3] : "0", *arg2 = argc > 4 ? argv[4] : "0";
    int r, fd;
    if (!strcmp(op, "read")) { r = on(path, O_RDONLY); }
    else if (!strcmp(op, "write")) { r = on(path, O_WRONLY | O_APPEND); }
    else if (!strcmp(op, "create")) { r = open(path, O_CREAT | O_EXCL | O_WRONLY, strtol(arg, 0, 8)); }
    else if (!strcmp(op, "chmod")) { r = chmod(path, strtol(arg, 0, 8)); }
    else if (!strcmp(op, "fchmod")) { fd = on(path, O_RDONLY); r = fd < 0 ? fd : fchmod(fd, strtol(arg, 0, 8)); }
    else if (!strcmp(op, "chown")) { r = chown(path, atoi(arg), atoi(arg2)); }
    else if (!strcmp(op, "fchown")) { fd = on(path, O_RDONLY); r = fd < 0 ? fd : fchown(fd, atoi(arg), atoi(arg2)); }
    else if (!strcmp(op, "truncate")) { r = truncate(path, atoi(arg)); }
    else if (!strcmp(op, "ftruncate")) { fd = on(path, O_WRONLY); r = fd < 0 ? fd : ftruncate(fd, atoi(arg)); }
    else if (!strcmp(op, "ftruncate-fd")) { r = ftruncate(atoi(path), atoi(arg)); } /* a descriptor the caller opened */
    else if (!strcmp(op, "punch-fd")) { r = fallocate(atoi(path), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1); }
    else if (!strcmp(op, "fchmod-fd")) { r = fchmod(atoi(path), strtol(arg, 0, 8)); }
    else if (!strcmp(op, "punch")) { fd = on(path, O_RDWR); r = fd < 0 ? fd : fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1); }
    else if (!strcmp(op, "utimens")) { struct timespec t[2] = {{1000000000, 0}, {1000000000, 0}}; r = utimensat(AT_FDCWD, path, t, 0); }
    else if (!strcmp(op, "futimens")) { struct timespec t[2] = {{1000000000, 0}, {1000000000, 0}}; fd = on(path, O_RDONLY); r = fd < 0 ? fd : futimens(fd, t); }
    else if (!strcmp(op, "setxattr")) { r = setxattr(path, "user.palisade", "1", 1, 0); }
    else if (!strcmp(op, "lsetxattr")) { r = lsetxattr(path, "user.palisade", "1", 1, 0); }
    else if (!strcmp(op, "fsetxattr")) { fd = on(path, O_RDONLY); r = fd < 0 ? fd : fsetxattr(fd, "user.palisade", "1", 1, 0); }
    else if (!strcmp(op, "removexattr")) { r = removexattr(path, "user.palisade"); }
    else if (!strcmp(op, "link")) { r = link(path, arg); }
    else if (!strcmp(op, "exchange")) { r = renameat2(AT_FDCWD, path, AT_FDCWD, arg, RENAME_EXCHANGE); }
    else if (!strcmp(op, "rename")) { r = rename(path, arg); }
    else if (!strcmp(op, "mknod")) { r = mknod(path, S_IFIFO | 0644, 0); }
    else if (!strcmp(op, "mkdir")) { r = mkdir(path, 0755); }
    else if (!strcmp(op, "symlink")) { r = symlink(arg, path); }
    else if (!strcmp(op, "unlink")) { r = unlink(path); }
    else if (!strcmp(op, "stat")) {
        struct stat st;
        if (lstat(path, &st) == 0) { printf("%s %u:%u %o %lld\n", op, st.st_uid, st.st_gid, st.st_mode & 07777, (long long)st.st_size); return 0; }
        r = -1;
    }
    else { fprintf(stderr, "fsops: unknown operation %s\n", op); return 2; }
    printf("%s %s\n", op, r >= 0 ? "ok" : strerrorname_np(errno));
    return 0;
}
