using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Launch;

namespace Palisade.Host.Linux.Tests;

/// <summary>
/// Operations the supervisor waits in on a guest's behalf (a FIFO open) hold a thread each: released when the guest goes,
/// and bounded per run (<see cref="Supervision.ReceiverWatch.MaxWaitingThreads"/>, EAGAIN beyond).
/// </summary>
public sealed class WaitingOperationTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly Guest _guest = new();

    public void Dispose() => _guest.Dispose();

    [ProgramFact("gcc", "mkfifo")]
    public void Each_open_abandoned_by_a_killed_guest_gives_its_thread_back()
    {
        string fifo = _guest.PathOf("fifo");
        Assert.Equal(0, ProcessRunner.Run("mkfifo", [fifo]).ExitCode);
        string output = _guest.PathOf("out.txt");

        using (var guest = SupervisedGuest.Start(Guest.Launcher, Guest.DenyMarker(families: SyscallFamilies.FileOpen), "/bin/sh",
            ["-c", $"'{FifoProbe.Path}' '{fifo}' 30 kill > '{output}'"]))
        {
            Assert.Equal(0, guest.WaitForExit());
            Assert.True(guest.Supervisor.WaitForEnd(Patience), "the supervisor did not end");
            Assert.True(SpinWait.SpinUntil(() => guest.Supervisor.WaitingThreads == 0, Patience),
                $"{guest.Supervisor.WaitingThreads} operations still hold a thread");
            Assert.True(guest.Supervisor.AbandonedWaits > 0, "no wait was abandoned: no open was taken over before its guest died");
        }

        Assert.Equal("killed 30\n", File.ReadAllText(output));
    }

    [ProgramFact("gcc", "mkfifo")]
    public void Opens_that_would_wait_beyond_the_runs_bound_fail_with_EAGAIN()
    {
        string fifo = _guest.PathOf("fifo");
        Assert.Equal(0, ProcessRunner.Run("mkfifo", [fifo]).ExitCode);
        int beyond = Supervision.ReceiverWatch.MaxWaitingThreads + 3;

        int status = _guest.Shell(Guest.DenyMarker(families: SyscallFamilies.FileOpen), $"'{FifoProbe.Path}' '{fifo}' {beyond} keep > out.txt");

        Assert.Equal(0, status);
        Assert.Equal($"opened {Supervision.ReceiverWatch.MaxWaitingThreads} again 3\n", File.ReadAllText(_guest.PathOf("out.txt")));
    }
}
