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
internal sealed class FileMediator(KernelHost host)
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
        };
        return StatusErrno.ErrnoOf(host.CompleteOpen(in requester, in completion));
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

        if (!DescribeDescriptor(requester.ProcessId, fd, out FileIdentity id, out FileObjectType type, out long fileSystemType)
            || type == FileObjectType.Directory)
        {
            return;
        }

        host.CleanupFile(in requester, target, id, fd, type, fileSystemType);
    }

    /// <summary>The identity, type and file system of the file behind a guest's descriptor (through its /proc link).</summary>
    private static unsafe bool DescribeDescriptor(int processId, int fd, out FileIdentity identity, out FileObjectType type, out long fileSystemType)
    {
        identity = default;
        type = FileObjectType.Unknown;
        fileSystemType = 0;
        Span<byte> link = stackalloc byte[48];
        ProcFs.FormatFd(link, processId, fd);
        int handle;
        fixed (byte* l = link)
        {
            handle = Libc.OpenAt(Libc.AT_FDCWD, l, Libc.O_PATH | Libc.O_CLOEXEC, 0);
        }

        if (handle < 0)
        {
            return false;
        }

        try
        {
            Stat stat;
            if (Libc.FStat(handle, &stat) != 0)
            {
                return false;
            }

            identity = new FileIdentity(stat.Dev, stat.Ino);
            type = Libc.TypeOf(stat.Mode);
            fileSystemType = FileFacts.FileSystemOf(handle, out StatfsBuffer fs) == 0 ? fs.Type : 0;
            return true;
        }
        finally
        {
            Libc.CloseOwned(handle);
        }
    }
}
