// A program that sandboxes itself, then reports what it may still do: Landlock (read only below the directories it is
// given, nothing written anywhere), or a seccomp filter of its own. usage:
//   sandbox landlock FILE NEWFILE DIR...   read FILE and create NEWFILE after allowing reads below each DIR
//   sandbox seccomp FILE                   read FILE after a filter of its own fails openat with EPERM
//   sandbox listener                       try to install a filter with a listener of its own
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *outcome(int r) { return r >= 0 ? "ok" : strerrorname_np(errno); }

static int filter(unsigned int action, unsigned int flags) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = 4, .filter = code };
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "landlock")) {
        struct landlock_ruleset_attr attr = { .handled_access_fs = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR
            | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_EXECUTE };
        int rs = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
        for (int i = 4; i < argc; i++) {
            struct landlock_path_beneath_attr pb = { .allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_EXECUTE };
            pb.parent_fd = open(argv[i], O_PATH);
            syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
            close(pb.parent_fd);
        }
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        printf("restrict %s\n", outcome(syscall(SYS_landlock_restrict_self, rs, 0)));
        printf("read %s\n", outcome(open(argv[2], O_RDONLY)));
        printf("create %s\n", outcome(open(argv[3], O_CREAT | O_WRONLY, 0644)));
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) { printf("child read %s\n", outcome(open(argv[2], O_RDONLY))); return 0; }
        waitpid(child, 0, 0);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "seccomp")) {
        printf("filter %s\n", outcome(filter(SECCOMP_RET_ERRNO | EPERM, 0)));
        printf("read %s\n", outcome(open(argv[2], O_RDONLY)));
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "listener")) {
        printf("listener %s\n", outcome(filter(SECCOMP_RET_USER_NOTIF, SECCOMP_FILTER_FLAG_NEW_LISTENER)));
        return 0;
    }
    fprintf(stderr, "usage: sandbox landlock|seccomp|listener ...\n");
    return 2;
}
