using System.Diagnostics;
using Palisade.Host.Linux.Mediation;
using Palisade.Host.Linux.Seccomp;

namespace Palisade.Host.Linux.Tests;

public sealed class ProcessTests : IDisposable
{
    private readonly Guest guest = new();

    [Fact]
    public void Denied_kill_leaves_the_target_alive()
    {
        using var target = Process.Start("sleep", "60");
        var mediator = new RecordingMediator(SyscallFamilies.ProcessAccess)
        {
            DenyProcessAccess = request => request.TargetProcessId == target.Id && request.Rights.HasFlag(ProcessRights.Terminate),
        };

        int status = this.guest.Shell(mediator, $"kill -9 {target.Id}");

        Assert.NotEqual(0, status);
        Assert.False(target.HasExited);
        target.Kill();
    }

    [Fact]
    public void Denied_fork_fails_the_shell_command()
    {
        var mediator = new RecordingMediator(SyscallFamilies.ProcessLifetime) { DenyCreate = request => request.Kind != ProcessCreateKind.Thread };

        int status = this.guest.Shell(mediator, "/bin/true; echo unreachable > out.txt");

        Assert.NotEqual(0, status);
        Assert.False(File.Exists(this.guest.PathOf("out.txt")));
    }

    [Fact]
    public void A_child_process_is_reported_started_and_exited()
    {
        var mediator = new RecordingMediator(SyscallFamilies.ProcessLifetime);

        int status = this.guest.Shell(mediator, "/bin/sh -c 'exit 3'; exit 0");

        Assert.Equal(0, status);
        Assert.Contains(mediator.Events, e => e.StartsWith("create ", StringComparison.Ordinal) && !e.StartsWith("create Thread", StringComparison.Ordinal));
        Assert.Contains(mediator.Events, e => e.StartsWith("exit ", StringComparison.Ordinal) && e.EndsWith("whole=True status=3", StringComparison.Ordinal));
    }

    [Fact]
    public void Exec_decision_sees_the_canonical_image_behind_a_symlink()
    {
        File.CreateSymbolicLink(this.guest.PathOf("alias"), "/bin/true");
        var mediator = new RecordingMediator(SyscallFamilies.Exec) { DenyExecImage = image => image.EndsWith("/true", StringComparison.Ordinal) };

        int status = this.guest.Shell(mediator, "./alias");

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

        int status = this.guest.Shell(mediator, $"'{probe}' 2> err.txt");

        Assert.Equal(9, status);
        Assert.Contains("Permission denied", File.ReadAllText(this.guest.PathOf("err.txt")));
    }

    public void Dispose() => this.guest.Dispose();
}
