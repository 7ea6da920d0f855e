using System.Runtime.CompilerServices;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Supervision;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// The file family of <see cref="KernelMediator"/> (open, openat, openat2, creat; rename, unlink, rmdir, truncate,
/// chmod, chown; close): decodes each call into the kernel's request, issues it through the hosting surface and maps
/// the status to an errno.
/// </summary>
internal sealed class FileMediator(KernelHost host) : ILastCloseSink
{
    /// <summary>Before an open: the pre-create decision. 0, <see cref="ISyscallMediator.AllowWithoutPost"/>, or an errno.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public int PreOpen(in Requester requester, in OpenCall call)
    {
        OpenRequest request = RequestDecoder.Open(in call);
        Status s = host.BeginOpen(in requester, in request, out bool completionNeeded);
        if (s.IsError)
        {
            return StatusErrno.ErrnoOf(s);
        }

        return completionNeeded ? 0 : ISyscallMediator.AllowWithoutPost;
    }

    /// <summary>After the supervisor opened the file: the post-create decision. 0 or an errno.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public int PostOpen(in Requester requester, in OpenedFile file)
    {
        var completion = new OpenCompletion
        {
            File = file.Identity,
            IsDirectory = file.IsDirectory,
            Type = file.Type,
            Descriptor = file.Descriptor,
            Facts = file.Facts,
            ChangeStamp = file.ChangeStamp,
            Result = file.Result,
        };
        return StatusErrno.ErrnoOf(host.CompleteOpen(in requester, in completion));
    }

    /// <summary>
    /// Before an exec: the minifilters decide on the image about to run as a create with execute access (the kernel reads
    /// it, for a post callback, through the supervisor's descriptor of the resolved file). 0 or an errno.
    /// </summary>
    public int Execute(in Requester requester, in ExecCall call)
    {
        var request = new ExecuteRequest
        {
            RequestedPath = call.Path.IsEmpty ? null : System.Text.Encoding.UTF8.GetString(call.Path),
            Path = System.Text.Encoding.UTF8.GetString(call.ImagePath.IsEmpty ? call.Path : call.ImagePath),
            File = call.Image,
            Type = call.ImageType,
            FileSystemType = FileFacts.FileSystemOf(call.ImageDescriptor, out StatfsBuffer fs) == 0 ? fs.Type : 0,
            Descriptor = call.ImageDescriptor,
        };
        return StatusErrno.ErrnoOf(host.ExecuteFile(in requester, in request));
    }

    /// <summary>Before a path operation: 0 (the supervisor performs it, then <see cref="PathOperationCompleted"/>) or an errno.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public int PathOperation(in Requester requester, in PathOperationCall call)
    {
        PathOperationRequest request = RequestDecoder.PathOperation(in call);
        return StatusErrno.ErrnoOf(host.BeginPathOperation(in requester, in request));
    }

    /// <summary>A path operation was performed with result <paramref name="error"/> (0 or Linux's errno).</summary>
    public void PathOperationCompleted(in Requester requester, int error) =>
        host.CompletePathOperation(in requester, StatusErrno.StatusOf(error));

    /// <summary>
    /// A descriptor is being closed: when it names a regular file the guest opened for writing, minifilters get a
    /// cleanup notification. The close itself is the guest's.
    /// </summary>
    public void Close(in Requester requester, int fd)
    {
        // Most descriptors closed were opened for reading: one fdinfo read settles those before any path work.
        if (!ProcFs.WasOpenForWriting(requester.ProcessId, fd))
        {
            return;
        }

        string? target = ProcFs.DescriptorTarget(requester.ProcessId, fd);
        if (target is null || target.Length == 0 || target[0] != '/')
        {
            return;
        }

        int handle = OpenThroughLink(ProcFs.DescriptorPath(requester.ProcessId, fd), Libc.O_PATH);
        int reader = -1;
        try
        {
            if (!Describe(handle, out FileIdentity id, out FileObjectType type, out long fileSystemType) || type != FileObjectType.Regular)
            {
                return;
            }

            // A read-only description of the kernel's own, through which a cleanup callback reads the file (-1 when the
            // kernel may not read it).
            reader = OpenThroughLink(ProcFs.DescriptorPath(Environment.ProcessId, handle), Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY);
            host.CleanupFile(in requester, new CleanupRequest { Path = target, File = id, Type = type, FileSystemType = fileSystemType, Descriptor = fd, Reader = reader });
        }
        finally
        {
            Libc.CloseOwned(reader);
            Libc.CloseOwned(handle);
        }
    }

    /// <summary>
    /// The last close of a description opened for writing (see <see cref="LastCloseWatch"/>): minifilters get a cleanup
    /// notification for the regular file <paramref name="reader"/> reads, in the name of the process that released it.
    /// </summary>
    public void LastClose(int processId, int reader)
    {
        if (!Describe(reader, out FileIdentity id, out FileObjectType type, out long fileSystemType) || type != FileObjectType.Regular)
        {
            return;
        }

        string? path = ProcFs.DescriptorTarget(Environment.ProcessId, reader);
        if (path is null || path.Length == 0 || path[0] != '/')
        {
            return;
        }

        // The release may come from the process's exit: its credentials may be gone with it.
        int userId = CredentialsReader.Read(processId) is { } credentials ? (int)credentials.RealUserId : -1;
        host.CleanupFile(new Requester(processId, 0) { UserId = userId }, new CleanupRequest
        {
            Path = path,
            File = id,
            Type = type,
            FileSystemType = fileSystemType,
            Descriptor = -1,
            Reader = reader,
        });
    }

    /// <summary>Opens <paramref name="link"/> (a /proc descriptor link) with <paramref name="flags"/>; the descriptor or -errno.</summary>
    private static unsafe int OpenThroughLink(string link, int flags)
    {
        Span<byte> path = stackalloc byte[64];
        int length = System.Text.Encoding.ASCII.GetBytes(link, path);
        path[length] = 0;
        fixed (byte* l = path)
        {
            int fd = Libc.OpenAt(Libc.AT_FDCWD, l, flags | Libc.O_CLOEXEC, 0);
            return fd >= 0 ? fd : -Libc.LastError;
        }
    }

    /// <summary>The identity, type and file system of the file behind one of the kernel's descriptors.</summary>
    private static unsafe bool Describe(int handle, out FileIdentity identity, out FileObjectType type, out long fileSystemType)
    {
        identity = default;
        type = FileObjectType.Unknown;
        fileSystemType = 0;
        Stat stat;
        if (handle < 0 || Libc.FStat(handle, &stat) != 0)
        {
            return false;
        }

        identity = new FileIdentity(stat.Dev, stat.Ino);
        type = Libc.TypeOf(stat.Mode);
        fileSystemType = FileFacts.FileSystemOf(handle, out StatfsBuffer fs) == 0 ? fs.Type : 0;
        return true;
    }
}
