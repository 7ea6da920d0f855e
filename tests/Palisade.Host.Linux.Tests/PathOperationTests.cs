using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Tests;

/// <summary>After performing an allowed path operation the supervisor reports its result, before the guest sees it.</summary>
public sealed class PathOperationTests : IDisposable
{
    private readonly Guest _guest = new();

    [Fact]
    public void A_performed_rename_is_reported_completed_with_success()
    {
        File.WriteAllText(_guest.PathOf("before.txt"), "x");
        var mediator = new RecordingMediator(SyscallFamilies.PathOperations);

        int status = _guest.Shell(mediator, "mv before.txt after.txt");

        Assert.Equal(0, status);
        Assert.True(File.Exists(_guest.PathOf("after.txt")));
        Assert.Contains($"completed Rename {_guest.PathOf("before.txt")} error=0", mediator.Events);
    }

    [Fact]
    public void A_failed_unlink_is_reported_completed_with_its_errno()
    {
        var mediator = new RecordingMediator(SyscallFamilies.PathOperations);

        int status = _guest.Shell(mediator, "rm -f missing.txt; rmdir missing-dir 2> /dev/null; exit 0");

        Assert.Equal(0, status);
        Assert.Contains($"completed Unlink {_guest.PathOf("missing.txt")} error=2", mediator.Events);
        Assert.Contains($"completed RemoveDirectory {_guest.PathOf("missing-dir")} error=2", mediator.Events);
    }

    [Fact]
    public void A_denied_operation_is_not_reported_completed()
    {
        File.WriteAllText(_guest.PathOf("SECRET.txt"), "keep\n");
        var mediator = new DenyingPathMediator();

        int status = _guest.Shell(mediator, "rm -f SECRET.txt");

        Assert.NotEqual(0, status);
        Assert.True(File.Exists(_guest.PathOf("SECRET.txt")));
        Assert.Equal(0, mediator.Completions);
    }

    public void Dispose() => _guest.Dispose();

    /// <summary>Denies every path operation and counts completions (there must be none).</summary>
    private sealed class DenyingPathMediator : Palisade.Host.Linux.Mediation.ISyscallMediator
    {
        public int Completions;

        public SyscallFamilies Subscriptions => SyscallFamilies.PathOperations;

        public int PreOpen(in Palisade.Kernel.Hosting.Requester requester, in Palisade.Host.Linux.Mediation.OpenCall request) => 0;

        public int PostOpen(in Palisade.Kernel.Hosting.Requester requester, in Palisade.Host.Linux.Mediation.OpenCall request, in Palisade.Host.Linux.Mediation.OpenedFile file) => 0;

        public int PathOperation(in Palisade.Kernel.Hosting.Requester requester, in Palisade.Host.Linux.Mediation.PathOperationCall request) => 13;

        public int TakeHeldFile() => -1;

        public void WaiterGone(in Palisade.Kernel.Hosting.Requester requester)
        {
        }

        public void PathOperationCompleted(in Palisade.Kernel.Hosting.Requester requester, in Palisade.Host.Linux.Mediation.PathOperationCall request, int error) =>
            Interlocked.Increment(ref Completions);

        public void Close(in Palisade.Kernel.Hosting.Requester requester, int fd)
        {
        }

        public int Exec(in Palisade.Kernel.Hosting.Requester requester, in Palisade.Host.Linux.Mediation.ExecCall request) => 0;

        public int Network(in Palisade.Kernel.Hosting.Requester requester, in Palisade.Host.Linux.Mediation.NetworkCall request) => 0;

        public int ProcessAccess(in Palisade.Kernel.Hosting.Requester requester, in Palisade.Host.Linux.Mediation.ProcessAccessCall request) => 0;

        public int ProcessCreate(in Palisade.Kernel.Hosting.Requester requester, in Palisade.Host.Linux.Mediation.ProcessCreateCall request) => 0;

        public void ProcessStarted(in Palisade.Kernel.Hosting.Requester requester, int parentProcessId)
        {
        }

        public void ThreadStarted(in Palisade.Kernel.Hosting.Requester requester)
        {
        }

        public bool TryTakeEndedProcess(out int processId)
        {
            processId = 0;
            return false;
        }

        public void ProcessExit(in Palisade.Kernel.Hosting.Requester requester, bool wholeProcess, int status)
        {
        }

        public void Drain()
        {
        }
    }
}
