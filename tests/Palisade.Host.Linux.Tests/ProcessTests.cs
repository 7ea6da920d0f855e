using System.Diagnostics;
using Palisade.Host.Linux.Mediation;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Tests;

public sealed class ProcessTests : IDisposable
{
    private readonly Guest _guest = new();

    [Fact]
    public void Denied_kill_leaves_the_target_alive()
    {
        using var target = Process.Start("sleep", "60");
        var mediator = new RecordingMediator(SyscallFamilies.ProcessAccess)
        {
            DenyProcessAccess = request => request.TargetProcessId == target.Id && request.Rights.HasFlag(ProcessRights.Terminate),
        };

        int status = _guest.Shell(mediator, $"kill -9 {target.Id}");

        Assert.NotEqual(0, status);
        Assert.False(target.HasExited);
        target.Kill();
    }

    [Fact]
    public void Denied_fork_fails_the_shell_command()
    {
        var mediator = new RecordingMediator(SyscallFamilies.ProcessLifetime) { DenyCreate = request => request.Kind != ProcessCreateKind.Thread };

        int status = _guest.Shell(mediator, "/bin/true; echo unreachable > out.txt");

        Assert.NotEqual(0, status);
        Assert.False(File.Exists(_guest.PathOf("out.txt")));
    }

    [Fact]
    public void A_child_process_is_reported_started_and_exited()
    {
        var mediator = new RecordingMediator(SyscallFamilies.ProcessLifetime);

        int status = _guest.Shell(mediator, "/bin/sh -c 'exit 3'; exit 0");

        Assert.Equal(0, status);
        Assert.Contains(mediator.Events, e => e.StartsWith("create ", StringComparison.Ordinal) && !e.StartsWith("create Thread", StringComparison.Ordinal));
        Assert.Contains(mediator.Events, e => e.StartsWith("exit ", StringComparison.Ordinal) && e.EndsWith("whole=True status=3", StringComparison.Ordinal));
    }

    [Fact]
    public void With_exits_alone_mediated_a_fork_interrupted_by_a_handled_signal_never_fails()
    {
        // A shell's SIGCHLD handler has no SA_RESTART: a fork waiting for the supervisor when a child's SIGCHLD
        // arrives would fail with EINTR ("Cannot fork"). With only exits mediated, forks do not wait for anyone.
        string? probe = Guest.Probe("forkint", """
            #include <errno.h>
            #include <signal.h>
            #include <string.h>
            #include <sys/wait.h>
            #include <unistd.h>
            static void onchld(int s) { (void)s; }
            int main(void) {
                struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = onchld; sigaction(SIGCHLD, &sa, 0);
                int failed = 0;
                for (int i = 0; i < 200; i++) { pid_t p = fork(); if (p == 0) _exit(0); if (p < 0) failed++; }
                while (waitpid(-1, 0, 0) > 0 || errno == EINTR) {}
                return failed == 0 ? 0 : 1;
            }
            """);
        Assert.NotNull(probe);
        var mediator = new RecordingMediator(SyscallFamilies.ProcessExits);

        int status = Guest.Run(mediator, probe, []);

        Assert.Equal(0, status);
        Assert.Contains(mediator.Events, e => e.StartsWith("exit ", StringComparison.Ordinal) && e.EndsWith("whole=True status=0", StringComparison.Ordinal));
        Assert.DoesNotContain(mediator.Events, e => e.StartsWith("create ", StringComparison.Ordinal));
    }

    [Fact]
    public void New_threads_are_reported_once_at_their_first_mediated_call_when_clone_runs_natively()
    {
        // Each worker thread ends with the raw exit system call (a mediated one), so each is seen exactly once.
        string? probe = Guest.Probe("threads", """
            #include <pthread.h>
            #include <stdio.h>
            #include <sys/syscall.h>
            #include <unistd.h>
            static void *work(void *arg) { (void)arg; printf("tid=%ld\n", (long)syscall(SYS_gettid)); fflush(stdout); syscall(SYS_exit, 0); return 0; }
            int main(void) {
                pthread_t t[3];
                for (int i = 0; i < 3; i++) { pthread_create(&t[i], 0, work, 0); pthread_join(t[i], 0); }
                return 0;
            }
            """);
        Assert.NotNull(probe);
        var mediator = new RecordingMediator(SyscallFamilies.ProcessExits);

        int status = Guest.Run(mediator, probe, []);

        Assert.Equal(0, status);

        // The main thread makes no mediated call before the workers: the first worker seen starts the process
        // (the kernel mediator reports that thread with it), each later one is a thread of a known process, and
        // a process whose only seen thread has exited is not started again.
        Assert.Single(mediator.Events, e => e.StartsWith("started ", StringComparison.Ordinal));
        string[] threads = [.. mediator.Events.Where(e => e.StartsWith("thread ", StringComparison.Ordinal))];
        Assert.True(threads.Length == 2, string.Join(" | ", mediator.Events));
        Assert.Equal(2, threads.Distinct().Count());
        Assert.Equal(3, mediator.Events.Count(e => e.StartsWith("exit ", StringComparison.Ordinal) && e.Contains("whole=False", StringComparison.Ordinal)));
    }

    [Fact]
    public void Exec_decision_sees_the_canonical_image_behind_a_symlink()
    {
        File.CreateSymbolicLink(_guest.PathOf("alias"), "/bin/true");
        var mediator = new RecordingMediator(SyscallFamilies.Exec) { DenyExecImage = image => image.EndsWith("/true", StringComparison.Ordinal) };

        int status = _guest.Shell(mediator, "./alias");

        Assert.Equal(126, status);
    }

    [Fact]
    public void Memfd_exec_reaches_the_mediator_as_a_memfd_image()
    {
        string? probe = Guest.Probe("memfdexec", """
            #define _GNU_SOURCE
            #include <fcntl.h>
            #include <stdio.h>
            #include <sys/mman.h>
            #include <sys/syscall.h>
            #include <unistd.h>
            int main(void) {
                int in = open("/bin/true", O_RDONLY);
                int fd = memfd_create("payload", MFD_CLOEXEC);
                char buf[65536]; ssize_t n;
                while ((n = read(in, buf, sizeof buf)) > 0) write(fd, buf, n);
                char *argv[] = { "payload", 0 }, *envp[] = { 0 };
                syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
                perror("execveat");
                return 9;
            }
            """);
        Assert.NotNull(probe);
        var mediator = new RecordingMediator(SyscallFamilies.Exec | SyscallFamilies.FileOpen) { DenyExecImage = image => image.StartsWith("/memfd:", StringComparison.Ordinal) };

        int status = _guest.Shell(mediator, $"'{probe}' 2> err.txt");

        Assert.Equal(9, status);
        Assert.Contains("Permission denied", File.ReadAllText(_guest.PathOf("err.txt")));
    }

    public void Dispose() => _guest.Dispose();
}
