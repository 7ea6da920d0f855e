using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Events;
using Palisade.Kernel.Io;

namespace Palisade.Kernel.Hosting;

/// <summary>
/// One file operation that the host performs itself, between its two services (BeginFileOperation and
/// CompleteFileOperation): the operation as minifilters see it, what the filter manager remembers between the
/// halves, the event line, and the host's descriptor of an opened file, through which a post callback reads it.
/// Reused: <see cref="KernelHost"/> keeps one spare per thread.
/// </summary>
/// <remarks>
/// A create a filter holds also owns the two descriptors the host opened for it (<see cref="IHeldFileAccess"/>): one
/// that names the file (the host later opens the guest's file through it) and one to read it while it is held.
/// </remarks>
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

    /// <summary>The host's access to the files of held creates; set by <see cref="KernelHost"/> for a guest's create.</summary>
    public IHeldFileAccess? HeldFiles;

    /// <summary>For a held create: the host's descriptor that names the file decided on (moved to the host when the open goes on).</summary>
    public int HeldPath = -1;

    /// <summary>For a held create: the host's read-only descriptor of the file, open while the create is held.</summary>
    private int _heldReader = -1;

    /// <summary>Why the held create has no reader: <see cref="Status.ObjectNameNotFound"/> (no regular file) or <see cref="Status.AccessDenied"/>.</summary>
    private Status _heldReadStatus = Status.ObjectNameNotFound;

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

    /// <summary>The opened file's change stamp, once taken (before the first read through <see cref="Descriptor"/>).</summary>
    private FileChangeStamp _stamp;
    private bool _stampTaken;

    public void Reset()
    {
        Palisade.Interop.Libc.CloseOwned(_quietDescriptor);
        _quietDescriptor = -1;
        _readPrepared = false;
        _stamp = default;
        _stampTaken = false;
        Operation = default;
        Record = null;
        Descriptor = -1;
        Facts = null;
        NeedsCompletion = false;
        HeldFiles = null;
        if (HeldPath >= 0)
        {
            Libc.CloseOwned(HeldPath);
            HeldPath = -1;
        }

        CloseHeldReader();
    }

    /// <summary>
    /// Opens the file this create names for a hold, through the host, on the thread that serves the guest; sets the
    /// operation's <see cref="FileOperation.File"/> to its identity. Does nothing for a create that names no existing
    /// regular file.
    /// </summary>
    public void OpenHeld()
    {
        if (HeldFiles is null || HeldPath >= 0 || Operation.Kind != FileOperationKind.Create)
        {
            return;
        }

        int path = HeldFiles.OpenHeldCreate(out int reader, out FileIdentity file);
        if (path < 0)
        {
            return;
        }

        HeldPath = path;

        // Before anything reads the held file: a change made while it is scanned leaves this stamp behind.
        Operation.ChangeStamp = Palisade.Interop.ChangeStamps.Of(path);
        _heldReader = reader;
        _heldReadStatus = reader >= 0 ? Status.Success : reader == -Errno.EACCES || reader == -Errno.EPERM ? Status.AccessDenied : Status.Unsuccessful;
        Operation.File = file;
    }

    /// <summary>Reads the held create's file (the caller holds the hold's lock, so the reader stays open).</summary>
    public Status ReadHeld(long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        if (_heldReader < 0)
        {
            return _heldReadStatus;
        }

        int errno = Libc.PRead(_heldReader, buffer, offset, out bytesRead);
        return errno == 0 ? Status.Success : Status.Unsuccessful;
    }

    /// <summary>Closes the held create's reader (the hold ended); the descriptor that names the file stays for the open.</summary>
    public void CloseHeldReader()
    {
        if (_heldReader >= 0)
        {
            Libc.CloseOwned(_heldReader);
            _heldReader = -1;
        }

        _heldReadStatus = Status.ObjectNameNotFound;
    }

    /// <summary>Makes <paramref name="facts"/> the source of the operation's object facts (none when null).</summary>
    public void UseFacts(FileObjectFacts? facts)
    {
        Facts = facts;

        // Always this request: the change stamp of the opened file comes from the host's descriptor even without facts.
        Operation.Source = this;
    }

    /// <summary>Takes <paramref name="stamp"/> as the opened file's change stamp when it is one (the host took it with the identity).</summary>
    public void UseStamp(FileChangeStamp stamp)
    {
        if (!stamp.IsNone)
        {
            _stamp = stamp;
            _stampTaken = true;
        }
    }

    string? IFileObjectSource.ResolvedPath() => Facts?.ResolvedPath();

    string? IFileObjectSource.ResolvedNewPath() => Facts?.ResolvedNewPath();

    FileIdentity IFileObjectSource.Identity() => Facts?.Identity() ?? default;

    FileObjectType IFileObjectSource.Type() => Facts?.Type() ?? FileObjectType.Unknown;

    long IFileObjectSource.FileSystemType() => Facts?.FileSystemType() ?? 0;

    FileChangeStamp IFileObjectSource.ChangeStamp() => TakeStamp();

    /// <summary>The opened file's stamp from the descriptor the guest receives, taken once, before the first read for a filter.</summary>
    private FileChangeStamp TakeStamp()
    {
        if (!_stampTaken && Descriptor >= 0)
        {
            _stampTaken = true;
            _stamp = Palisade.Interop.ChangeStamps.Of(Descriptor);
        }

        return _stamp;
    }

    /// <summary>True for an O_PATH descriptor.</summary>
    private static bool IsPathOnly(int fd)
    {
        int flags = Libc.Fcntl(fd, Libc.F_GETFL, 0);
        return flags >= 0 && (flags & Libc.O_PATH) != 0;
    }

    /// <summary>The host performs the operation itself; the filter manager never asks this performer to.</summary>
    public Status Perform(ref FileOperation operation) => Status.NotSupported;

    public void CancelCreate(ref FileOperation operation)
    {
        // The host closes its descriptor when the completion denies.
    }

    /// <summary>The state of the opened file, through the descriptor the guest receives (its stamp taken first, as for a read).</summary>
    public Status QueryOpened(Processes.ProcessTable guests, out FileState state)
    {
        TakeStamp();
        return Io.FileStateQuery.Of(Descriptor, guests, out state);
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

        TakeStamp();

        if (!_readPrepared)
        {
            _readPrepared = true;
            if (IsPathOnly(Descriptor))
            {
                // The host named the file without opening it (the image of an exec): the kernel opens it to read.
                _quietDescriptor = Io.InvisibleRead.OpenThrough(Descriptor);
            }
            else if (Io.InvisibleRead.IsReadable(Descriptor) && Io.InvisibleRead.WouldTouchAccessTime(Descriptor))
            {
                _quietDescriptor = Io.InvisibleRead.OpenWithoutAccessTime(Descriptor);
            }
        }

        int errno = Palisade.Interop.Libc.PRead(_quietDescriptor >= 0 ? _quietDescriptor : Descriptor, buffer, offset, out bytesRead);
        return errno == 0 ? Status.Success : errno == Palisade.Interop.Errno.EBADF ? Status.AccessDenied : Status.Unsuccessful;
    }
}

/// <summary>
/// The host's part in holding a create (see <see cref="IFilterManager.PendPreOperation"/>): when a filter holds a guest's
/// create, the kernel asks the host, on the thread that serves the guest and while the guest's call is being decided, to
/// open the file the create names, so that the filter can read it and the guest later receives that same file.
/// </summary>
public interface IHeldFileAccess
{
    /// <summary>
    /// Opens the file the create being decided on the calling thread names, resolved exactly as the guest's open would
    /// resolve it, without following further than the guest's flags allow and without side effects (no create, no
    /// truncation, no blocking).
    /// </summary>
    /// <param name="reader">A read-only descriptor of the file, or -errno when the guest could not read it.</param>
    /// <param name="file">The file's identity.</param>
    /// <returns>A descriptor that names the file (the host opens the guest's file through it once the create is allowed), or
    /// -errno when the create names no existing regular file. The kernel closes both descriptors.</returns>
    int OpenHeldCreate(out int reader, out FileIdentity file);
}
