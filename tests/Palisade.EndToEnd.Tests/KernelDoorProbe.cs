namespace Palisade.EndToEnd.Tests;

/// <summary>
/// An attacker's program, run as a guest under <c>palisade run</c>: it tries one door into the kernel (the supervisor,
/// which is its parent) and prints one line, "DOOR reached" when the door opened, else "DOOR ERRNO" with the name of
/// the error that refused it. Everything it needs to find (a thread of the kernel) it finds as an attacker would, with
/// calls the kernel does not mediate (stat).
/// </summary>
internal static class KernelDoorProbe
{
    /// <summary>The compiled probe; fails the test when gcc rejects the source.</summary>
    public static string Path => CProbes.Compile("kernel-door", Source) ?? throw new InvalidOperationException("gcc is missing");

    private const string Source = """
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <sched.h>
        #include <signal.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <dirent.h>
        #include <unistd.h>
        #include <linux/perf_event.h>
        #include <linux/kcmp.h>
        #include <sys/ioctl.h>
        #include <sys/ptrace.h>
        #include <sys/resource.h>
        #include <sys/socket.h>
        #include <sys/stat.h>
        #include <sys/syscall.h>
        #include <sys/uio.h>
        #include <sys/un.h>

        static pid_t kernel;
        static const char *door;

        static int report(long result) {
            if (result >= 0) { printf("%s reached\n", door); return 0; }
            printf("%s %s\n", door, strerrorname_np(errno));
            return 0;
        }

        /* A thread of the kernel other than its main one, found with stat (not mediated). */
        static pid_t kernel_thread(void) {
            char p[64];
            struct stat st;
            for (pid_t t = kernel + 1; t < kernel + 4096; t++) {
                snprintf(p, sizeof p, "/proc/%d/task/%d", kernel, t);
                if (stat(p, &st) == 0) return t;
            }
            return -1;
        }

        static int open_at(const char *format, long a, long b, int flags) {
            char p[256];
            snprintf(p, sizeof p, format, a, b);
            return open(p, flags);
        }

        int main(int argc, char **argv) {
            /* The kernel is the parent of the first guest; a probe started by a guest shell is told its pid. */
            kernel = getenv("KERNEL_PID") ? atoi(getenv("KERNEL_PID")) : getppid();
            door = argv[1];
            const char *arg = argc > 2 ? argv[2] : "";
            char path[512];
            if (!strcmp(door, "mem")) return report(open_at("/proc/%ld/mem", kernel, 0, O_RDWR));
            if (!strcmp(door, "environ")) return report(open_at("/proc/%ld/environ", kernel, 0, O_RDONLY));
            if (!strcmp(door, "maps")) return report(open_at("/proc/%ld/maps", kernel, 0, O_RDONLY));
            if (!strcmp(door, "status")) return report(open_at("/proc/%ld/status", kernel, 0, O_RDONLY));
            if (!strcmp(door, "thread-mem")) return report(open_at("/proc/%ld/mem", kernel_thread(), 0, O_RDWR));
            if (!strcmp(door, "task-mem")) return report(open_at("/proc/%ld/task/%ld/mem", kernel, kernel_thread(), O_RDWR));
            if (!strcmp(door, "dotdot")) return report(open_at("/proc/self/../%ld/mem", kernel, 0, O_RDWR));
            if (!strcmp(door, "fds")) {
                for (int fd = 0; fd < 64; fd++) {
                    int got = open_at("/proc/%ld/fd/%ld", kernel, fd, O_RDONLY);
                    if (got >= 0) return report(got);
                }
                return report(open_at("/proc/%ld/fd/%ld", kernel, 3, O_RDONLY));
            }
            if (!strcmp(door, "symlink")) {
                snprintf(path, sizeof path, "/proc/%d", kernel);
                unlink(arg);
                if (symlink(path, arg) != 0) return report(-1);
                snprintf(path, sizeof path, "%s/mem", arg);
                return report(open(path, O_RDWR));
            }
            if (!strcmp(door, "mount")) {
                snprintf(path, sizeof path, "%s/%d/mem", arg, kernel);
                return report(open(path, O_RDWR));
            }
            if (!strcmp(door, "cwd")) {
                snprintf(path, sizeof path, "/proc/%d", kernel);
                if (chdir(path) != 0) return report(-1);
                return report(open("mem", O_RDWR));
            }
            if (!strcmp(door, "opath-reopen")) {
                snprintf(path, sizeof path, "/proc/%d", kernel);
                unlink(arg);
                if (symlink(path, arg) != 0) return report(-1);
                snprintf(path, sizeof path, "%s/mem", arg);
                int o = open(path, O_PATH);
                if (o < 0) return report(o);
                return report(open_at("/proc/self/fd/%ld", o, 0, O_RDWR));
            }
            if (!strcmp(door, "fd-chain")) {
                /* A descriptor of the link /proc/KERNEL/fd/N itself, reopened: the reopen must not follow it into the kernel. */
                snprintf(path, sizeof path, "/proc/%d", kernel);
                unlink(arg);
                if (symlink(path, arg) != 0) return report(-1);
                int error = ENOENT;
                for (int fd = 0; fd < 64; fd++) {
                    snprintf(path, sizeof path, "%s/fd/%d", arg, fd);
                    int o = open(path, O_PATH | O_NOFOLLOW);
                    if (o < 0) { if (errno != ENOENT) error = errno; continue; }
                    int got = open_at("/proc/self/fd/%ld", o, 0, O_RDONLY);
                    if (got >= 0) return report(got);
                    error = errno;
                    close(o);
                }
                errno = error;
                return report(-1);
            }
            if (!strcmp(door, "ptrace")) return report(ptrace(PTRACE_ATTACH, kernel, 0, 0));
            if (!strcmp(door, "ptrace-thread")) return report(ptrace(PTRACE_SEIZE, kernel_thread(), 0, 0));
            if (!strcmp(door, "vm-read") || !strcmp(door, "vm-write")) {
                char buffer[16];
                struct iovec local = { buffer, sizeof buffer }, remote = { (void *)0x10000, sizeof buffer };
                return report(!strcmp(door, "vm-read") ? process_vm_readv(kernel, &local, 1, &remote, 1, 0)
                                                     : process_vm_writev(kernel, &local, 1, &remote, 1, 0));
            }
            if (!strcmp(door, "pidfd")) return report(syscall(SYS_pidfd_open, kernel, 0));
            if (!strcmp(door, "pidfd-thread")) return report(syscall(SYS_pidfd_open, kernel_thread(), 0x80 /* PIDFD_THREAD */));
            if (!strcmp(door, "kill")) return report(kill(kernel, SIGKILL));
            if (!strcmp(door, "tkill")) return report(syscall(SYS_tkill, kernel_thread(), SIGKILL));
            if (!strcmp(door, "tgkill")) return report(syscall(SYS_tgkill, kernel, kernel_thread(), SIGKILL));
            if (!strcmp(door, "sigqueue")) {
                siginfo_t info = { 0 };
                info.si_code = SI_QUEUE;
                return report(syscall(SYS_rt_sigqueueinfo, kernel, SIGKILL, &info));
            }
            if (!strcmp(door, "kill-group")) return report(kill(-getpgid(kernel), SIGKILL));
            if (!strcmp(door, "own-group")) { printf("%s %s\n", door, getpgid(0) != getpgid(kernel) ? "separate" : "shared"); return 0; }
            if (!strcmp(door, "setpgid")) return report(setpgid(0, getpgid(kernel)));
            if (!strncmp(door, "setown", 6) || !strcmp(door, "fiosetown")) {
                int pair[2];
                if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return report(-1);
                if (!strcmp(door, "setown")) return report(fcntl(pair[0], F_SETOWN, kernel));
                if (!strcmp(door, "setown-group")) return report(fcntl(pair[0], F_SETOWN, -getpgid(kernel)));
                if (!strcmp(door, "setown-ex")) {
                    struct f_owner_ex owner = { F_OWNER_PID, kernel };
                    return report(fcntl(pair[0], F_SETOWN_EX, &owner));
                }
                int owner = kernel;
                return report(ioctl(pair[0], FIOSETOWN, &owner));
            }
            if (!strcmp(door, "perf") || !strcmp(door, "perf-cpu")) {
                struct perf_event_attr attr = { 0 };
                attr.size = sizeof attr;
                attr.type = PERF_TYPE_SOFTWARE;
                attr.config = PERF_COUNT_SW_CPU_CLOCK;
                return report(!strcmp(door, "perf") ? syscall(SYS_perf_event_open, &attr, kernel, -1, -1, 0)
                                                    : syscall(SYS_perf_event_open, &attr, -1, 0, -1, 0));
            }
            if (!strcmp(door, "prlimit")) {
                struct rlimit none = { 0, 0 };
                return report(prlimit(kernel, RLIMIT_NOFILE, &none, NULL));
            }
            if (!strcmp(door, "setpriority")) return report(setpriority(PRIO_PROCESS, kernel, 19));
            if (!strcmp(door, "affinity")) {
                cpu_set_t one;
                CPU_ZERO(&one);
                CPU_SET(0, &one);
                return report(sched_setaffinity(kernel, sizeof one, &one));
            }
            if (!strcmp(door, "kcmp")) return report(syscall(SYS_kcmp, getpid(), kernel, KCMP_FILE, 0, 0));
            if (!strcmp(door, "userfaultfd")) return report(syscall(SYS_userfaultfd, O_CLOEXEC));
            if (!strcmp(door, "userfaultfd-user")) return report(syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */));
            if (!strcmp(door, "connect")) {
                int s = socket(AF_UNIX, SOCK_STREAM, 0);
                struct sockaddr_un a = { .sun_family = AF_UNIX };
                strncpy(a.sun_path, arg, sizeof a.sun_path - 1);
                return report(connect(s, (struct sockaddr *)&a, sizeof a));
            }
            if (!strcmp(door, "write")) {
                int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0) return report(fd);
                return report(write(fd, "attacker\n", 9));
            }
            if (!strcmp(door, "append")) {
                int fd = open(arg, O_WRONLY | O_APPEND);
                if (fd < 0) return report(fd);
                return report(write(fd, "attacker\n", 9));
            }
            if (!strcmp(door, "rename")) return report(rename(arg, argv[3]));
            if (!strcmp(door, "unlink")) return report(unlink(arg));
            if (!strcmp(door, "truncate")) return report(truncate(arg, 0));
            if (!strcmp(door, "chmod")) return report(chmod(arg, 0777));
            if (!strcmp(door, "diagnostics")) {
                DIR *d = opendir(arg);
                struct dirent *e;
                char mark[32];
                snprintf(mark, sizeof mark, "-%d-", kernel);
                if (!d) return report(-1);
                while ((e = readdir(d))) if (strstr(e->d_name, mark)) { printf("%s found %s\n", door, e->d_name); return 0; }
                printf("%s none\n", door);
                return 0;
            }
            if (!strcmp(door, "descriptors")) {
                DIR *d = opendir("/proc/self/fd");
                struct dirent *e;
                int others = 0;
                if (!d) return report(-1);
                while ((e = readdir(d))) if (e->d_name[0] != '.' && atoi(e->d_name) > 2 && atoi(e->d_name) != dirfd(d)) others++;
                printf("%s %d\n", door, others);
                return 0;
            }
            if (!strcmp(door, "threads") || !strcmp(door, "threads-at-most")) {
                /* The kernel's threads, counted with stat (not mediated); with a limit, counted again until they are at most that many. */
                int limit = argc > 2 ? atoi(arg) : 0x7fffffff, count = 0;
                for (int round = 0; round < 2000; round++) {
                    char p[64];
                    struct stat st;
                    count = 0;
                    for (pid_t t = 1; t < 4194304 && t < kernel + 65536; t++) {
                        snprintf(p, sizeof p, "/proc/%d/task/%d", kernel, t);
                        if (stat(p, &st) == 0) count++;
                    }
                    if (count <= limit) break;
                    usleep(10000);
                }
                printf("%s %d\n", door, count);
                return 0;
            }
            printf("%s unknown\n", door);
            return 2;
        }
        """;
}
