namespace Palisade.Host.Linux.Tests;

/// <summary>Each probe prints one word on stdout (redirected to a file) and exits 0 when Linux behaved as asserted.</summary>
public sealed class BypassTests : IDisposable
{
    private const string Prelude = """
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <pthread.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/syscall.h>
        #include <unistd.h>
        """;

    private readonly Guest _guest = new();

    [ProgramFact("gcc")]
    public void I386_int_0x80_never_reaches_a_system_call()
    {
        string probe = Compile("int80", Prelude + "\n" + """
            int main(void) {
                long ret;
                /* eax = 20 is getpid in the i386 table. */
                __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
                printf("%ld\n", ret);
                return 0;
            }
            """);

        // Some hypervisors (this CI's included) have no i386 entry at all: int 0x80 faults natively.
        // Then the supervised run must fault the same way; otherwise the filter must answer ENOSYS.
        using var native = System.Diagnostics.Process.Start(probe);
        native.WaitForExit();
        if (native.ExitCode != 0)
        {
            Assert.Equal(128 + 11, _guest.Shell(Guest.DenyMarker(), $"'{probe}'"));
            return;
        }

        Assert.Equal("-38", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void X32_system_call_numbers_are_refused_with_ENOSYS()
    {
        string probe = Compile("x32", Prelude + "\n" + """
            int main(void) {
                long r = syscall(0x40000000L | 39 /* getpid */);
                printf("%d\n", r < 0 ? errno : 0);
                return 0;
            }
            """);

        Assert.Equal("38", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void Io_uring_setup_is_refused_with_EPERM()
    {
        string probe = Compile("iouring", Prelude + "\n" + """
            int main(void) {
                char params[120] = {0};
                long r = syscall(425, 8, params);
                printf("%d\n", r < 0 ? errno : 0);
                return 0;
            }
            """);

        Assert.Equal("1", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void Open_by_handle_at_is_refused_with_EPERM()
    {
        string probe = Compile("byhandle", Prelude + "\n" + """
            int main(void) {
                char handle[136] = {0};
                *(unsigned *)handle = 128;
                long r = syscall(304, AT_FDCWD, handle, O_RDONLY);
                printf("%d\n", r < 0 ? errno : 0);
                return 0;
            }
            """);

        Assert.Equal("1", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void Clone3_is_refused_with_ENOSYS_so_libc_falls_back_to_clone()
    {
        string probe = Compile("clone3", Prelude + "\n" + """
            static void *run(void *arg) { return arg; }
            int main(void) {
                unsigned long long args[11] = {0};
                long r = syscall(435, args, sizeof args);
                int clone3_errno = r < 0 ? errno : 0;
                pthread_t t;
                int created = pthread_create(&t, 0, run, 0) == 0 && pthread_join(t, 0) == 0;
                printf("%d-%s\n", clone3_errno, created ? "threads-work" : "threads-broken");
                return 0;
            }
            """);

        Assert.Equal("38-threads-work", RunProbe(probe));
    }

    [RootFact("gcc")]
    public void A_root_guest_unshares_a_mount_namespace_as_it_would_natively()
    {
        string probe = Compile("unshare", Prelude + "\n" + """
            #include <sched.h>
            int main(void) {
                int r = unshare(CLONE_NEWNS);
                printf("%d\n", r < 0 ? errno : 0);
                return 0;
            }
            """);

        Assert.Equal("0", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void Open_with_a_bad_path_pointer_gets_EFAULT()
    {
        string probe = Compile("efault", Prelude + "\n" + """
            int main(void) {
                long r = syscall(SYS_openat, AT_FDCWD, (char *)8, O_RDONLY);
                printf("%d\n", r < 0 ? errno : 0);
                return 0;
            }
            """);

        Assert.Equal("14", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void Open_of_an_over_long_path_gets_ENAMETOOLONG()
    {
        string probe = Compile("toolong", Prelude + "\n" + """
            int main(void) {
                static char path[6000];
                memset(path, 'a', sizeof path - 1);
                long r = open(path, O_RDONLY);
                printf("%d\n", r < 0 ? errno : 0);
                return 0;
            }
            """);

        Assert.Equal("36", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void Openat2_with_unknown_flags_gets_EINVAL()
    {
        string probe = Compile("openat2inval", Prelude + "\n" + """
            int main(void) {
                unsigned long long how[3] = { 1ULL << 40, 0, 0 };
                long r = syscall(437, AT_FDCWD, "/etc/passwd", how, sizeof how);
                printf("%d\n", r < 0 ? errno : 0);
                return 0;
            }
            """);

        Assert.Equal("22", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void Openat2_in_root_resolves_absolute_paths_inside_the_guest_dirfd()
    {
        File.WriteAllText(_guest.PathOf("inside.txt"), "x");
        string probe = Compile("inroot", Prelude + "\n" + """
            int main(void) {
                int dir = open(".", O_PATH | O_DIRECTORY);
                unsigned long long how[3] = { O_RDONLY, 0, 0x10 /* RESOLVE_IN_ROOT */ };
                long outside = syscall(437, dir, "/etc/passwd", how, sizeof how);
                int outside_errno = outside < 0 ? errno : 0;
                long inside = syscall(437, dir, "/inside.txt", how, sizeof how);
                printf("%d-%s\n", outside_errno, inside >= 0 ? "inside-opened" : "inside-failed");
                return 0;
            }
            """);

        Assert.Equal("2-inside-opened", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void A_thread_rewriting_the_path_buffer_cannot_read_a_denied_file()
    {
        File.WriteAllText(_guest.PathOf("SECRET.txt"), "classified");
        File.WriteAllText(_guest.PathOf("public.txt"), "harmless!!");
        string probe = Compile("pathrace", Prelude + "\n" + """
            static char path[64] = "public.txt";
            static volatile int stop;
            static void *flip(void *arg) {
                for (unsigned long i = 0; !stop; i++) {
                    memcpy(path, (i & 1) ? "SECRET.txt" : "public.txt", 10);
                    for (volatile int spin = 0; spin < 2000; spin++) { }
                }
                return arg;
            }
            int main(void) {
                pthread_t t;
                pthread_create(&t, 0, flip, 0);
                int leaked = 0, opened = 0, denied = 0;
                for (int i = 0; i < 20000; i++) {
                    int fd = open(path, O_RDONLY);
                    if (fd < 0) { denied++; continue; }
                    char buf[16] = {0};
                    if (read(fd, buf, 10) == 10 && memcmp(buf, "classified", 10) == 0) leaked++;
                    opened++;
                    close(fd);
                }
                stop = 1;
                pthread_join(t, 0);
                printf("%s\n", leaked ? "leaked" : opened && denied ? "held" : "race-not-exercised");
                fprintf(stderr, "opened %d denied %d\n", opened, denied);
                return 0;
            }
            """);

        Assert.Equal("held", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void A_symlink_swapped_during_opens_cannot_read_a_denied_file()
    {
        File.WriteAllText(_guest.PathOf("SECRET.txt"), "classified");
        File.WriteAllText(_guest.PathOf("public.txt"), "harmless!!");
        string probe = Compile("linkrace", Prelude + "\n" + """
            static volatile int stop;
            static void *swap(void *arg) {
                while (!stop) {
                    symlink("SECRET.txt", "tmp-a"); rename("tmp-a", "link");
                    symlink("public.txt", "tmp-b"); rename("tmp-b", "link");
                }
                return arg;
            }
            int main(void) {
                symlink("public.txt", "link");
                pthread_t t;
                pthread_create(&t, 0, swap, 0);
                int leaked = 0, opened = 0, denied = 0;
                for (int i = 0; i < 5000; i++) {
                    int fd = open("link", O_RDONLY);
                    if (fd < 0) { denied++; continue; }
                    char buf[16] = {0};
                    if (read(fd, buf, 10) == 10 && memcmp(buf, "classified", 10) == 0) leaked++;
                    opened++;
                    close(fd);
                }
                stop = 1;
                pthread_join(t, 0);
                printf("%s\n", leaked ? "leaked" : opened && denied ? "held" : "race-not-exercised");
                return 0;
            }
            """);

        Assert.Equal("held", RunProbe(probe));
    }

    [ProgramFact("gcc")]
    public void An_image_swapped_in_during_exec_is_killed_before_its_first_mediated_call()
    {
        string writer = Compile("escapee", Prelude + "\n" + """
            int main(void) {
                int fd = open("escaped.txt", O_WRONLY | O_CREAT, 0644);
                return fd < 0 ? 3 : 0;
            }
            """);
        File.Copy(writer, _guest.PathOf("SECRET-prog"));
        File.Copy("/bin/true", _guest.PathOf("ok-prog"));
        File.SetUnixFileMode(_guest.PathOf("SECRET-prog"), (UnixFileMode)0x1ed);
        File.SetUnixFileMode(_guest.PathOf("ok-prog"), (UnixFileMode)0x1ed);
        string racer = Compile("execrace", Prelude + "\n" + """
            #include <signal.h>
            #include <sys/wait.h>
            static volatile int stop;
            static void *swap(void *arg) {
                while (!stop) {
                    symlink("SECRET-prog", "tmp-a"); rename("tmp-a", "link");
                    symlink("ok-prog", "tmp-b"); rename("tmp-b", "link");
                }
                return arg;
            }
            int main(void) {
                symlink("ok-prog", "link");
                pthread_t t;
                pthread_create(&t, 0, swap, 0);
                int ran = 0, denied = 0, killed = 0, other = 0;
                for (int i = 0; i < 300; i++) {
                    pid_t child = fork();
                    if (child == 0) { char *argv[] = { "link", 0 }; execv("./link", argv); _exit(errno == EACCES ? 126 : 127); }
                    int status;
                    waitpid(child, &status, 0);
                    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) killed++;
                    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ran++;
                    else if (WIFEXITED(status) && WEXITSTATUS(status) == 126) denied++;
                    else other++;
                }
                stop = 1;
                pthread_join(t, 0);
                printf("%s\n", access("escaped.txt", F_OK) == 0 ? "escaped" : ran && denied ? "held" : "race-not-exercised");
                fprintf(stderr, "ran %d denied %d killed %d other %d\n", ran, denied, killed, other);
                return 0;
            }
            """);

        Assert.Equal("held", RunProbe(racer));
    }

    public void Dispose() => _guest.Dispose();

    /// <summary>Compiles a probe (the tests that call it need gcc: <see cref="ProgramFactAttribute"/> skips them without it).</summary>
    private static string Compile(string name, string source) =>
        Guest.Probe(name, source) ?? throw new InvalidOperationException($"gcc could not compile the probe {name}");

    private string RunProbe(string probe)
    {
        int status = _guest.Shell(Guest.DenyMarker(), $"'{probe}' > probe.out");
        Assert.Equal(0, status);
        return File.ReadAllText(_guest.PathOf("probe.out")).Trim();
    }
}
