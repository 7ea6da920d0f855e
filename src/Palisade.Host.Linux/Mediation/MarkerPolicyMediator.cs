using Palisade.Host.Linux.Filtering;
using Palisade.Interop;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// A minimal policy: every file open, path operation and exec whose path (as named, or as resolved)
/// contains a marker is denied with Errno.EACCES; everything else is allowed. It serves the hidden
/// <c>__supervise</c> verb (benchmarks, manual checks) until the kernel's mediator is wired to <c>run</c>.
/// With an empty marker it allows everything without reading the opened file's path.
/// </summary>
internal sealed class MarkerPolicyMediator : ISyscallMediator
{
    private readonly byte[] _marker;

    /// <summary>Creates the policy for <paramref name="families"/>, denying paths that contain <paramref name="marker"/>.</summary>
    public MarkerPolicyMediator(SyscallFamilies families, string marker)
    {
        ArgumentNullException.ThrowIfNull(marker);
        Subscriptions = families;
        _marker = System.Text.Encoding.UTF8.GetBytes(marker);
    }

    /// <inheritdoc/>
    public SyscallFamilies Subscriptions { get; }

    /// <inheritdoc/>
    public int PreOpen(in Requester requester, in OpenCall request) => Check(request.Path);

    /// <inheritdoc/>
    public int PostOpen(in Requester requester, in OpenCall request, in OpenedFile file) => _marker.Length == 0 ? 0 : Check(file.ReadPath());

    /// <inheritdoc/>
    public int TakeHeldFile() => -1;

    /// <inheritdoc/>
    public void WaiterGone(in Requester requester)
    {
        // This policy holds no decision.
    }

    /// <inheritdoc/>
    public int PathOperation(in Requester requester, in PathOperationCall request) =>
        Check(request.Path) != 0 ? Errno.EACCES : Check(request.NewPath);

    /// <inheritdoc/>
    public void PathOperationCompleted(in Requester requester, in PathOperationCall request, int error)
    {
    }

    /// <inheritdoc/>
    public void Close(in Requester requester, int fd)
    {
    }

    /// <inheritdoc/>
    public int Exec(in Requester requester, in ExecCall request) =>
        Check(request.Path) != 0 ? Errno.EACCES : Check(request.ImagePath);

    /// <inheritdoc/>
    public int Network(in Requester requester, in NetworkCall request) => 0;

    /// <inheritdoc/>
    public int ProcessAccess(in Requester requester, in ProcessAccessCall request) => 0;

    /// <inheritdoc/>
    public int ProcessCreate(in Requester requester, in ProcessCreateCall request) => 0;

    /// <inheritdoc/>
    public void ProcessStarted(in Requester requester, int parentProcessId)
    {
    }

    /// <inheritdoc/>
    public void ThreadStarted(in Requester requester)
    {
    }

    /// <inheritdoc/>
    public bool TryTakeEndedProcess(out int processId)
    {
        // This mediator watches no process ends.
        processId = 0;
        return false;
    }

    /// <inheritdoc/>
    public void ProcessExit(in Requester requester, bool wholeProcess, int status)
    {
    }

    /// <inheritdoc/>
    public void Drain()
    {
    }

    private int Check(ReadOnlySpan<byte> path) => _marker.Length > 0 && path.IndexOf(_marker) >= 0 ? Errno.EACCES : 0;
}
