using Palisade.Api;
using Palisade.Kernel.Events;
using Palisade.Kernel.Io;

namespace Palisade.Kernel.Hosting;

/// <summary>
/// One file operation that the host performs itself, between its two services (BeginFileOperation and
/// CompleteFileOperation): the operation as minifilters see it, what the filter manager remembers between the
/// halves, the event line, and the host's descriptor of an opened file, through which a post callback reads it.
/// Reused: <see cref="KernelHost"/> keeps one spare per thread.
/// </summary>
internal sealed class FileRequest : IFileSystemPerformer, IFileObjectSource
{
    public FileOperation Operation;
    public readonly IoState State = new();
    public OperationRecord? Record;
    public int Descriptor = -1;

    /// <summary>The host's facts of the operation's object, behind <see cref="FileOperation.Source"/>; null when none.</summary>
    public FileObjectFacts? Facts;

    /// <summary>Set by BeginFileOperation: the operation goes on, and CompleteFileOperation must follow.</summary>
    public bool NeedsCompletion;

    /// <summary>True when some filter asked for a post callback (a completion has something to do).</summary>
    public bool WantsPost()
    {
        bool[] wantsPost = State.WantsPost;
        for (int i = State.Last; i >= 0; i--)
        {
            if (wantsPost[i])
            {
                return true;
            }
        }

        return false;
    }

    public void Reset()
    {
        Operation = default;
        Record = null;
        Descriptor = -1;
        Facts = null;
        NeedsCompletion = false;
    }

    /// <summary>Makes <paramref name="facts"/> the source of the operation's object facts (none when null).</summary>
    public void UseFacts(FileObjectFacts? facts)
    {
        Facts = facts;
        Operation.Source = facts is null ? null : this;
    }

    string? IFileObjectSource.ResolvedPath() => Facts?.ResolvedPath();

    string? IFileObjectSource.ResolvedNewPath() => Facts?.ResolvedNewPath();

    FileIdentity IFileObjectSource.Identity() => Facts?.Identity() ?? default;

    FileObjectType IFileObjectSource.Type() => Facts?.Type() ?? FileObjectType.Unknown;

    long IFileObjectSource.FileSystemType() => Facts?.FileSystemType() ?? 0;

    /// <summary>The host performs the operation itself; the filter manager never asks this performer to.</summary>
    public Status Perform(ref FileOperation operation) => Status.NotSupported;

    public void CancelCreate(ref FileOperation operation)
    {
        // The host closes its descriptor when the completion denies.
    }

    public Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        if (Descriptor < 0)
        {
            return Status.InvalidDeviceState;
        }

        int errno = Palisade.Interop.Libc.PRead(Descriptor, buffer, offset, out bytesRead);
        return errno == 0 ? Status.Success : errno == Palisade.Interop.Errno.EBADF ? Status.AccessDenied : Status.Unsuccessful;
    }
}
