using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Palisade.Api;

namespace Palisade.Kernel.Interop;

/// <summary>The few libc calls the kernel itself needs (file identity, and the path operations of a driver's own I/O).
/// Each call is checked; errno is returned.</summary>
internal static unsafe partial class Libc
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct Stat
    {
        public ulong Dev;
        public ulong Ino;
        public ulong Nlink;
        public uint Mode;
        public uint Uid;
        public uint Gid;
        private readonly int _pad0;
        public ulong Rdev;
        public long Size;
        public long BlkSize;
        public long Blocks;
        public long Atime, AtimeNsec, Mtime, MtimeNsec, Ctime, CtimeNsec;
        private readonly long _reserved0, _reserved1, _reserved2;
    }

    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int FStatRaw(int fd, Stat* buf);

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatRaw(string path, Stat* buf);

    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LStatRaw(string path, Stat* buf);

    /// <summary>Whether a path is a regular file, not following a final symbolic link; errno on failure.</summary>
    /// <remarks>.NET reports FIFOs, sockets and devices as ordinary files; reading a FIFO blocks forever.</remarks>
    public static int IsRegularFile(string path, out bool isRegular)
    {
        Stat st;
        if (LStatRaw(path, &st) != 0)
        {
            isRegular = false;
            return Marshal.GetLastPInvokeError();
        }

        isRegular = (st.Mode & 0xF000) == 0x8000;
        return 0;
    }

    /// <summary>The identity of an open file; errno on failure.</summary>
    public static int FileIdentityOf(SafeFileHandle handle, out FileIdentity identity, out bool isDirectory)
    {
        Stat st;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (FStatRaw((int)handle.DangerousGetHandle(), &st) != 0)
            {
                identity = default;
                isDirectory = false;
                return Marshal.GetLastPInvokeError();
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }

        identity = new FileIdentity(st.Dev, st.Ino);
        isDirectory = (st.Mode & 0xF000) == 0x4000;
        return 0;
    }

    /// <summary>The identity of a path (following links); errno on failure.</summary>
    public static int FileIdentityOf(string path, out FileIdentity identity, out bool isDirectory)
    {
        Stat st;
        if (StatRaw(path, &st) != 0)
        {
            identity = default;
            isDirectory = false;
            return Marshal.GetLastPInvokeError();
        }

        identity = new FileIdentity(st.Dev, st.Ino);
        isDirectory = (st.Mode & 0xF000) == 0x4000;
        return 0;
    }

    private const int AtFdCwd = -100;
    private const uint RenameNoReplace = 1;

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2Raw(int oldDirectory, string oldPath, int newDirectory, string newPath, uint flags);

    [LibraryImport("libc", EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkRaw(string path);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChmodRaw(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChownRaw(string path, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "truncate", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int TruncateRaw(string path, long length);

    /// <summary>Renames without ever replacing an existing <paramref name="newPath"/> (RENAME_NOREPLACE); errno on failure.</summary>
    public static int RenameNoReplaceAt(string path, string newPath) =>
        RenameAt2Raw(AtFdCwd, path, AtFdCwd, newPath, RenameNoReplace) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>Removes a name that is not a directory; errno on failure (EISDIR for a directory).</summary>
    public static int Unlink(string path) => UnlinkRaw(path) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>Changes the permission bits; errno on failure.</summary>
    public static int Chmod(string path, uint mode) => ChmodRaw(path, mode) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>Changes owner and group (uint.MaxValue leaves one unchanged); errno on failure.</summary>
    public static int Chown(string path, uint owner, uint group) => ChownRaw(path, owner, group) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>Sets the size; errno on failure.</summary>
    public static int Truncate(string path, long length) => TruncateRaw(path, length) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>The status a failed path operation's errno stands for, in the API's vocabulary.</summary>
    public static Status StatusOf(int errno) => errno switch
    {
        0 => Status.Success,
        2 => Status.ObjectNameNotFound, // ENOENT
        20 => Status.ObjectPathNotFound, // ENOTDIR
        1 or 13 or 21 => Status.AccessDenied, // EPERM, EACCES, EISDIR
        17 => Status.ObjectNameCollision, // EEXIST
        39 => Status.KeyHasChildren, // ENOTEMPTY
        16 => Status.SharingViolation, // EBUSY
        18 or 22 => Status.InvalidParameter, // EXDEV, EINVAL
        12 => Status.InsufficientResources, // ENOMEM
        9 => Status.InvalidHandle, // EBADF
        95 => Status.NotSupported, // EOPNOTSUPP
        _ => Status.Unsuccessful,
    };
}
