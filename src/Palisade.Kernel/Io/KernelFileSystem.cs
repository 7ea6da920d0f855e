using Microsoft.Win32.SafeHandles;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Hosting;

namespace Palisade.Kernel.Io;

/// <summary>
/// The kernel's own file system access: the performer behind a driver's own I/O (<c>OpenFile</c>, <c>RenameFile</c>,
/// <c>DeleteFile</c>, <c>SetFileInformation</c>) and behind in-process callers such as tests. It acts on real host
/// files; the handle a create produced is handed back through <see cref="Opened"/>.
/// </summary>
internal sealed class KernelFileSystem : IFileSystemPerformer
{
    public SafeFileHandle? Opened { get; private set; }

    public FileAccess Access { get; init; } = FileAccess.Read;

    /// <summary>For a rename or delete, the identity the name must still have (none: act on the path as given).</summary>
    public FileIdentity Expected { get; init; }

    public Status Perform(ref FileOperation operation)
    {
        switch (operation.Kind)
        {
            case FileOperationKind.Create:
                break;
            case FileOperationKind.Rename:
                return Expected.IsNone ? StatusErrno.StatusOf(Libc.RenameNoReplace(operation.Path, operation.NewPath!))
                    : DecidedFile.Rename(operation.Path, operation.NewPath!, Expected);
            case FileOperationKind.Delete:
                return Expected.IsNone ? StatusErrno.StatusOf(Libc.Unlink(operation.Path)) : DecidedFile.Delete(operation.Path, Expected);
            case FileOperationKind.SetInformation:
                long value = operation.InformationValue;
                return StatusErrno.StatusOf(operation.InformationClass switch
                {
                    FileInformationClass.Size => Libc.Truncate(operation.Path, value),
                    FileInformationClass.Mode => Libc.Chmod(operation.Path, (uint)value),
                    _ => Libc.Chown(operation.Path, (uint)(value & 0xFFFF_FFFF), (uint)((ulong)value >> 32)),
                });
            default:
                return Status.NotSupported;
        }

        FileMode mode = operation.Disposition switch
        {
            CreateDisposition.Create => FileMode.CreateNew,
            CreateDisposition.OpenIf => FileMode.OpenOrCreate,
            CreateDisposition.Overwrite => FileMode.Truncate,
            CreateDisposition.OverwriteIf => FileMode.Create,
            _ => FileMode.Open,
        };
        Status opened = Access == FileAccess.Read && mode == FileMode.Open ? OpenForReading(operation.Path) : OpenThroughSystemIo(operation.Path, mode);
        if (opened.IsError || Opened is null)
        {
            return opened.IsError ? opened : Status.Unsuccessful;
        }

        if (Libc.FileIdentityOf(Opened, out FileIdentity id, out uint fileMode) == 0)
        {
            operation = operation with { FileType = Libc.TypeOf(fileMode), FileSystemType = FileSystemOf(Opened) };
            operation.File = id;

            // Before any filter reads the file through this handle (a post-create scan of the filter's own open).
            operation.ChangeStamp = Palisade.Interop.ChangeStamps.Of((int)Opened.DangerousGetHandle());
        }

        return Status.Success;
    }

    /// <summary>A filter's own read: as invisible to the guests as Linux allows (<see cref="InvisibleRead"/>).</summary>
    private Status OpenForReading(string path)
    {
        int fd = InvisibleRead.OpenForReading(System.Text.Encoding.UTF8.GetBytes(path + "\0"));
        if (fd < 0)
        {
            return fd switch
            {
                -Errno.ENOENT => Status.ObjectNameNotFound,
                -Errno.ENOTDIR => Status.ObjectPathNotFound,
                -Errno.EACCES or -Errno.EPERM => Status.AccessDenied,
                _ => Status.Unsuccessful,
            };
        }

        Opened = new SafeFileHandle(fd, ownsHandle: true);
        return Status.Success;
    }

    private Status OpenThroughSystemIo(string path, FileMode mode)
    {
        try
        {
            Opened = File.OpenHandle(path, mode, Access, FileShare.ReadWrite | FileShare.Delete);
            return Status.Success;
        }
        catch (FileNotFoundException)
        {
            return Status.ObjectNameNotFound;
        }
        catch (DirectoryNotFoundException)
        {
            return Status.ObjectPathNotFound;
        }
        catch (UnauthorizedAccessException)
        {
            return Status.AccessDenied;
        }
        catch (IOException) when (mode == FileMode.CreateNew && File.Exists(path))
        {
            return Status.ObjectNameCollision;
        }
        catch (IOException)
        {
            return Status.Unsuccessful;
        }
    }

    private static long FileSystemOf(SafeFileHandle handle)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return FileFacts.FileSystemOf((int)handle.DangerousGetHandle(), out StatfsBuffer fs) == 0 ? fs.Type : 0;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    public Status QueryOpened(Processes.ProcessTable guests, out FileState state) => FileStateQuery.Of(Opened, guests, out state);

    public Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        if (Opened is null)
        {
            return Status.InvalidDeviceState;
        }

        try
        {
            bytesRead = RandomAccess.Read(Opened, buffer, offset);
            return Status.Success;
        }
        catch (UnauthorizedAccessException)
        {
            return Status.AccessDenied;
        }
        catch (NotSupportedException)
        {
            return Status.AccessDenied;
        }
        catch (IOException)
        {
            return Status.Unsuccessful;
        }
    }

    public void CancelCreate(ref FileOperation operation)
    {
        Opened?.Dispose();
        Opened = null;
    }
}
