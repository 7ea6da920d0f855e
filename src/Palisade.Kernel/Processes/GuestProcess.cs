using Palisade.Api;
using Palisade.Kernel.Objects;

namespace Palisade.Kernel.Processes;

/// <summary>A guest process (EPROCESS): its ids, its program, its handle table, its links in the active process list.</summary>
internal sealed class GuestProcess : KernelObject
{
    public GuestProcess(ObjectType type, int processId, int parentProcessId, int userId, long startKey)
        : base(type, null)
    {
        ProcessId = processId;
        StartKey = startKey;
        ParentProcessId = parentProcessId;
        UserId = userId;
        Handles = new HandleTable();
    }

    public int ProcessId { get; }

    /// <summary>The process's identity for the kernel's life (ProcessStartKey in the API): never given to another process.</summary>
    public long StartKey { get; }

    public int ParentProcessId { get; }

    public int UserId { get; }

    public string ImagePath { get; set; } = "";

    public string CommandLine { get; set; } = "";

    public FileIdentity Image { get; set; }

    public HandleTable Handles { get; }

    public bool Exited { get; set; }

    /// <summary>True for a process entered only as the target of another's access (AttachProcess): not a guest, so the
    /// drivers' process control does not act on it.</summary>
    public bool Attached { get; set; }

    /// <summary>Links of the active process list (ActiveProcessLinks).</summary>
    internal GuestProcess? Next;
    internal GuestProcess? Previous;
}

/// <summary>A guest thread (ETHREAD).</summary>
internal sealed class GuestThread : KernelObject
{
    public GuestThread(ObjectType type, int processId, int threadId)
        : base(type, null)
    {
        ProcessId = processId;
        ThreadId = threadId;
    }

    public int ProcessId { get; }

    public int ThreadId { get; }
}
