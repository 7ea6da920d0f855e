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

    /// <summary>The kernel's own O_NOATIME description of the opened file, when a read through the guest's would move its access time.</summary>
    private int _quietDescriptor = -1;
    private bool _readPrepared;

    public void Reset()
    {
        Palisade.Interop.Libc.CloseOwned(_quietDescriptor);
        _quietDescriptor = -1;
        _readPrepared = false;
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

    /// <summary>
    /// Reads the opened file for a filter without the guest seeing it: through the guest's own description with pread
    /// (its offset does not move), or through a description of the kernel's own opened with O_NOATIME when the read
    /// would otherwise update the access time (<see cref="Io.InvisibleRead"/>). Only a regular file is read: reading a
    /// FIFO, a socket or a device would take data the guest is to receive.
    /// </summary>
    public Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        if (Descriptor < 0)
        {
            return Status.InvalidDeviceState;
        }

        if (Operation.FileType is not (FileObjectType.Regular or FileObjectType.Unknown))
        {
            return Status.NotSupported;
        }

        if (!_readPrepared)
        {
            _readPrepared = true;
            if (Io.InvisibleRead.IsReadable(Descriptor) && Io.InvisibleRead.WouldTouchAccessTime(Descriptor))
            {
                _quietDescriptor = Io.InvisibleRead.OpenWithoutAccessTime(Descriptor);
            }
        }

        int errno = Palisade.Interop.Libc.PRead(_quietDescriptor >= 0 ? _quietDescriptor : Descriptor, buffer, offset, out bytesRead);
        return errno == 0 ? Status.Success : errno == Palisade.Interop.Errno.EBADF ? Status.AccessDenied : Status.Unsuccessful;
    }
}
