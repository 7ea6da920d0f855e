using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Palisade.Interop;

/// <summary>
/// The libc entry points the host calls. Every import is blittable (no marshalling, no allocation per
/// call) and records errno; callers read it with <see cref="Marshal.GetLastPInvokeError"/> right after
/// a negative return. System calls without a glibc wrapper go through <see cref="Syscall"/>.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    public const int AT_FDCWD = -100;
    public const uint RENAME_NOREPLACE = 1;
    public const int AT_EMPTY_PATH = 0x1000;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_REMOVEDIR = 0x200;

    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_RDWR = 2;
    public const int O_ACCMODE = 3;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;
    public const int O_NOCTTY = 0x100;
    public const int O_TRUNC = 0x200;
    public const int O_APPEND = 0x400;
    public const int O_NONBLOCK = 0x800;
    public const int O_DIRECTORY = 0x10000;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_CLOEXEC = 0x80000;
    public const int O_PATH = 0x200000;
    public const int O_TMPFILE = 0x410000;

    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
    public const int F_DUPFD_CLOEXEC = 1030;

    public const uint S_IFMT = 0xF000;
    public const uint S_IFIFO = 0x1000;
    public const uint S_IFDIR = 0x4000;
    public const uint S_IFREG = 0x8000;
    public const uint S_IFCHR = 0x2000;
    public const uint S_IFBLK = 0x6000;
    public const uint S_IFLNK = 0xA000;
    public const uint S_IFSOCK = 0xC000;

    public const short POLLIN = 1;
    public const short POLLPRI = 2;
    public const short POLLHUP = 0x10;

    public const int SIGKILL = 9;

    public const int PR_SET_NO_NEW_PRIVS = 38;
    public const int PR_SET_DUMPABLE = 4;
    public const int PR_SET_CHILD_SUBREAPER = 36;
    public const int PR_GET_DUMPABLE = 3;
    public const int PR_SET_PDEATHSIG = 1;

    public const int P_PID = 1;
    public const int P_PIDFD = 3;
    public const int WNOHANG = 1;
    public const int WEXITED = 4;
    public const int WSTOPPED = 2;
    public const int WNOWAIT = 0x01000000;
    public const int CLD_EXITED = 1;
    public const int CLD_KILLED = 2;
    public const int CLD_DUMPED = 3;
    public const int CLD_STOPPED = 5;

    public const int AF_UNIX = 1;
    public const int AF_INET = 2;
    public const int AF_INET6 = 10;
    public const int SOCK_STREAM = 1;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_TYPE_MASK = 0xF;
    public const int IPPROTO_TCP = 6;
    public const int IPPROTO_UDP = 17;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOCK_NONBLOCK = 0x800;
    public const int AF_UNSPEC = 0;
    public const int AF_NETLINK = 16;
    public const int NETLINK_SOCK_DIAG = 4;
    public const int SO_LINGER = 13;
    public const int SO_COOKIE = 57;
    public const int IPPROTO_IP = 0;
    public const int IP_BIND_ADDRESS_NO_PORT = 24;

    public const int CLONE_FS = 0x200;
    public const ulong CLONE_VFORK = 0x4000;
    public const ulong CLONE_THREAD = 0x10000;
    public const uint CLONE_NEWNS = 0x20000;
    public const uint CLONE_NEWCGROUP = 0x2000000;
    public const uint CLONE_NEWUTS = 0x4000000;
    public const uint CLONE_NEWIPC = 0x8000000;
    public const uint CLONE_NEWUSER = 0x10000000;
    public const uint CLONE_NEWPID = 0x20000000;
    public const uint CLONE_NEWNET = 0x40000000;

    public const int SIGCHLD = 17;

    public const int SOL_SOCKET = 1;
    public const int SO_TYPE = 3;
    public const int SO_PROTOCOL = 38;
    public const int SO_DOMAIN = 39;

    /// <summary>sizeof(struct sockaddr_storage).</summary>
    public const int SOCKADDR_STORAGE_SIZE = 128;

    /// <summary>sizeof(struct msghdr) on x86-64.</summary>
    public const int MSGHDR_SIZE = 56;

    /// <summary>sizeof(struct mmsghdr) on x86-64.</summary>
    public const int MMSGHDR_SIZE = 64;

    public const int UIO_MAXIOV = 1024;

    /// <summary>sizeof(struct open_how), version 0 (flags, mode, resolve).</summary>
    public const int OPEN_HOW_SIZE_VER0 = 24;
    public const ulong RESOLVE_NO_XDEV = 0x01;
    public const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    public const ulong RESOLVE_NO_SYMLINKS = 0x04;
    public const ulong RESOLVE_BENEATH = 0x08;
    public const ulong RESOLVE_IN_ROOT = 0x10;

    /// <summary>The open flags Linux accepts (VALID_OPEN_FLAGS); openat2 refuses any other bit with EINVAL.</summary>
    public const ulong VALID_OPEN_FLAGS = 0x7FFFC3;

    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, void* argument);

    [LibraryImport(Lib, EntryPoint = "openat", SetLastError = true)]
    public static partial int OpenAt(int dirfd, byte* path, int flags, uint mode);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nuint count);

    /// <summary><see cref="Read"/>, asked again when a signal interrupts it before it read anything.</summary>
    public static nint ReadRestarting(int fd, void* buffer, nuint count)
    {
        nint got;
        do
        {
            got = Read(fd, buffer, count);
        }
        while (got < 0 && LastError == Errno.EINTR);

        return got;
    }

    /// <summary><see cref="Write"/>, asked again when a signal interrupts it before it wrote anything.</summary>
    public static nint WriteRestarting(int fd, void* buffer, nuint count)
    {
        nint put;
        do
        {
            put = Write(fd, buffer, count);
        }
        while (put < 0 && LastError == Errno.EINTR);

        return put;
    }

    [LibraryImport(Lib, EntryPoint = "pread", SetLastError = true)]
    public static partial nint PRead(int fd, void* buffer, nuint count, long offset);

    [LibraryImport(Lib, EntryPoint = "readlinkat", SetLastError = true)]
    public static partial nint ReadLinkAt(int dirfd, byte* path, byte* buffer, nuint size);

    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, long argument);

    [LibraryImport(Lib, EntryPoint = "fstat", SetLastError = true)]
    public static partial int FStat(int fd, Stat* buffer);

    [LibraryImport(Lib, EntryPoint = "fstatat", SetLastError = true)]
    public static partial int FStatAt(int dirfd, byte* path, Stat* buffer, int flags);

    [LibraryImport(Lib, EntryPoint = "process_vm_readv", SetLastError = true)]
    public static partial nint ProcessVmReadv(int pid, IoVec* local, ulong localCount, IoVec* remote, ulong remoteCount, ulong flags);

    [LibraryImport(Lib, EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, ulong a2, ulong a3, ulong a4, ulong a5);

    [LibraryImport(Lib, EntryPoint = "socketpair", SetLastError = true)]
    public static partial int SocketPair(int domain, int type, int protocol, int* fds);

    [LibraryImport(Lib, EntryPoint = "execvp", SetLastError = true)]
    public static partial int ExecVp(byte* file, byte** argv);

    [LibraryImport(Lib, EntryPoint = "umask")]
    public static partial uint Umask(uint mask);

    [LibraryImport(Lib, EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Unsetenv(string name);

    [LibraryImport(Lib, EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Setenv(string name, string value, int overwrite);

    [LibraryImport(Lib, EntryPoint = "execv", SetLastError = true)]
    public static partial int ExecV(byte* path, byte** argv);

    [LibraryImport(Lib, EntryPoint = "unshare", SetLastError = true)]
    public static partial int Unshare(int flags);

    /// <summary>sysconf name: clock ticks per second (the unit of /proc/PID/stat times).</summary>
    public const int SC_CLK_TCK = 2;

    [LibraryImport(Lib, EntryPoint = "sysconf")]
    public static partial long Sysconf(int name);

    [LibraryImport(Lib, EntryPoint = "getuid")]
    public static partial uint GetUid();

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    public static partial uint GetEUid();

    [LibraryImport(Lib, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport(Lib, EntryPoint = "waitid", SetLastError = true)]
    public static partial int WaitId(int idType, int id, SigInfo* info, int options);

    [LibraryImport(Lib, EntryPoint = "renameat2", SetLastError = true)]
    public static partial int RenameAt2(int olddirfd, byte* oldpath, int newdirfd, byte* newpath, uint flags);

    [LibraryImport(Lib, EntryPoint = "unlinkat", SetLastError = true)]
    public static partial int UnlinkAt(int dirfd, byte* path, int flags);

    [LibraryImport(Lib, EntryPoint = "fchmodat", SetLastError = true)]
    public static partial int FChmodAt(int dirfd, byte* path, uint mode, int flags);

    [LibraryImport(Lib, EntryPoint = "fchownat", SetLastError = true)]
    public static partial int FChownAt(int dirfd, byte* path, uint owner, uint group, int flags);

    [LibraryImport(Lib, EntryPoint = "truncate", SetLastError = true)]
    public static partial int Truncate(byte* path, long length);

    [LibraryImport(Lib, EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(int fd, byte* address, uint length);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, byte* address, uint length);

    [LibraryImport(Lib, EntryPoint = "listen", SetLastError = true)]
    public static partial int Listen(int fd, int backlog);

    [LibraryImport(Lib, EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int GetSockOpt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport(Lib, EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, byte* address, uint* length);

    [LibraryImport(Lib, EntryPoint = "getpeername", SetLastError = true)]
    public static partial int GetPeerName(int fd, byte* address, uint* length);

    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    [LibraryImport(Lib, EntryPoint = "accept4", SetLastError = true)]
    public static partial int Accept4(int fd, byte* address, uint* length, int flags);

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Lib, EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, void* buffer, nuint length, int flags);

    [LibraryImport(Lib, EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, void* buffer, nuint length, int flags);

    [LibraryImport(Lib, EntryPoint = "process_vm_writev", SetLastError = true)]
    public static partial nint ProcessVmWritev(int pid, IoVec* local, ulong localCount, IoVec* remote, ulong remoteCount, ulong flags);

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, ulong count, int timeoutMilliseconds);

    [LibraryImport(Lib, EntryPoint = "fchdir", SetLastError = true)]
    public static partial int Fchdir(int fd);

    [LibraryImport(Lib, EntryPoint = "fstatfs", SetLastError = true)]
    public static partial int FStatFs(int fd, StatFs* buffer);

    [LibraryImport(Lib, EntryPoint = "faccessat", SetLastError = true)]
    public static partial int FAccessAt(int dirfd, byte* path, int mode, int flags);

    /// <summary>statfs f_type of procfs (PROC_SUPER_MAGIC).</summary>
    public const long PROC_SUPER_MAGIC = 0x9fa0;

    /// <summary>statx mask bit for the mount id (STATX_MNT_ID, Linux 5.8).</summary>
    public const uint STATX_MNT_ID = 0x1000;

    /// <summary>The mount id of an open file (statx STATX_MNT_ID), or -errno.</summary>
    public static long MountIdOf(int fd)
    {
        byte* statx = stackalloc byte[256];
        byte empty = 0;
        if (Syscall(Sys.Statx, fd, (long)&empty, AT_EMPTY_PATH, STATX_MNT_ID, (long)statx, 0) < 0)
        {
            return -LastError;
        }

        // struct statx: stx_mask at 0, stx_mnt_id at 0x90.
        return (*(uint*)statx & STATX_MNT_ID) != 0 ? (long)*(ulong*)(statx + 0x90) : -Errno.EOPNOTSUPP;
    }

    /// <summary>errno of the last failed import on this thread.</summary>
    /// <summary>The identity of a path, following links (stat); 0 or the errno.</summary>
    public static int FileIdentityOf(string path, out Palisade.Api.FileIdentity identity, out bool isDirectory) =>
        FileIdentityOf(path, followLinks: true, out identity, out isDirectory);

    /// <summary>The identity of a path, following a final symbolic link or not (stat or lstat); 0 or the errno.</summary>
    public static int FileIdentityOf(string path, bool followLinks, out Palisade.Api.FileIdentity identity, out bool isDirectory)
    {
        int errno = StatPath(path, followLinks ? 0 : AT_SYMLINK_NOFOLLOW, out Stat st);
        identity = errno == 0 ? new Palisade.Api.FileIdentity(st.Dev, st.Ino) : default;
        isDirectory = errno == 0 && (st.Mode & S_IFMT) == S_IFDIR;
        return errno;
    }

    /// <summary>The identity of an open file (fstat); 0 or the errno.</summary>
    public static int FileIdentityOf(Microsoft.Win32.SafeHandles.SafeFileHandle handle, out Palisade.Api.FileIdentity identity, out bool isDirectory)
    {
        int errno = FileIdentityOf(handle, out identity, out uint mode);
        isDirectory = errno == 0 && (mode & S_IFMT) == S_IFDIR;
        return errno;
    }

    /// <summary>The identity and st_mode of an open file (fstat); 0 or the errno.</summary>
    public static int FileIdentityOf(Microsoft.Win32.SafeHandles.SafeFileHandle handle, out Palisade.Api.FileIdentity identity, out uint mode)
    {
        Stat st;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (FStat((int)handle.DangerousGetHandle(), &st) != 0)
            {
                identity = default;
                mode = 0;
                return LastError;
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }

        identity = new Palisade.Api.FileIdentity(st.Dev, st.Ino);
        mode = st.Mode;
        return 0;
    }

    /// <summary>The API's name for the file type bits of an st_mode.</summary>
    public static Palisade.Api.FileObjectType TypeOf(uint mode) => (mode & S_IFMT) switch
    {
        S_IFREG => Palisade.Api.FileObjectType.Regular,
        S_IFDIR => Palisade.Api.FileObjectType.Directory,
        S_IFLNK => Palisade.Api.FileObjectType.SymbolicLink,
        S_IFCHR => Palisade.Api.FileObjectType.CharacterDevice,
        S_IFBLK => Palisade.Api.FileObjectType.BlockDevice,
        S_IFIFO => Palisade.Api.FileObjectType.Fifo,
        S_IFSOCK => Palisade.Api.FileObjectType.Socket,
        _ => Palisade.Api.FileObjectType.Unknown,
    };

    /// <summary>The owner, mode bits (type and permissions) and identity of a path, not following a final symbolic
    /// link (lstat); 0 or the errno.</summary>
    public static int OwnerAndMode(string path, out uint uid, out uint mode, out Palisade.Api.FileIdentity identity)
    {
        int errno = StatPath(path, AT_SYMLINK_NOFOLLOW, out Stat st);
        uid = errno == 0 ? st.Uid : 0;
        mode = errno == 0 ? st.Mode : 0;
        identity = errno == 0 ? new Palisade.Api.FileIdentity(st.Dev, st.Ino) : default;
        return errno;
    }

    /// <summary>
    /// Opens <paramref name="path"/> for reading without following a final symbolic link and without blocking (a FIFO or
    /// a device opens at once); an invalid handle with <paramref name="errno"/> (ELOOP for a link) when it cannot.
    /// </summary>
    public static Microsoft.Win32.SafeHandles.SafeFileHandle OpenForReading(string path, out int errno)
    {
        int max = System.Text.Encoding.UTF8.GetMaxByteCount(path.Length) + 1;
        Span<byte> bytes = max <= 1024 ? stackalloc byte[max] : new byte[max];
        bytes[System.Text.Encoding.UTF8.GetBytes(path, bytes)] = 0;
        fixed (byte* p = bytes)
        {
            int fd = OpenAt(AT_FDCWD, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
            errno = fd < 0 ? LastError : 0;
            return new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        }
    }

    /// <summary>The identity and size of an open regular file: 0, -1 when it is not a regular file, or the errno of fstat.</summary>
    public static int RegularFileIdentity(Microsoft.Win32.SafeHandles.SafeFileHandle handle, out Palisade.Api.FileIdentity identity, out long size)
    {
        Stat st;
        bool added = false;
        identity = default;
        size = 0;
        try
        {
            handle.DangerousAddRef(ref added);
            if (FStat((int)handle.DangerousGetHandle(), &st) != 0)
            {
                return LastError;
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }

        if ((st.Mode & S_IFMT) != S_IFREG)
        {
            return -1;
        }

        identity = new Palisade.Api.FileIdentity(st.Dev, st.Ino);
        size = st.Size;
        return 0;
    }

    /// <summary>Reads from <paramref name="fd"/> at <paramref name="offset"/> without moving its position; 0 or the errno.</summary>
    public static int PRead(int fd, Span<byte> buffer, long offset, out int bytesRead)
    {
        fixed (byte* b = buffer)
        {
            nint n = PRead(fd, b, (nuint)buffer.Length, offset);
            if (n < 0)
            {
                bytesRead = 0;
                return LastError;
            }

            bytesRead = (int)n;
            return 0;
        }
    }

    /// <summary>fstatat(AT_FDCWD, path) with <paramref name="flags"/> (AT_*); 0 or the errno.</summary>
    private static int StatPath(string path, int flags, out Stat st)
    {
        int max = System.Text.Encoding.UTF8.GetMaxByteCount(path.Length) + 1;
        Span<byte> bytes = max <= 1024 ? stackalloc byte[max] : new byte[max];
        bytes[System.Text.Encoding.UTF8.GetBytes(path, bytes)] = 0;
        fixed (byte* p = bytes)
        fixed (Stat* s = &st)
        {
            return FStatAt(AT_FDCWD, p, s, flags) == 0 ? 0 : LastError;
        }
    }

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2Path(int oldDirectory, string oldPath, int newDirectory, string newPath, uint flags);

    [LibraryImport("libc", EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkPath(string path);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChmodPath(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChownPath(string path, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "truncate", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int TruncatePath(string path, long length);

    /// <summary>Renames without ever replacing an existing <paramref name="newPath"/> (RENAME_NOREPLACE); 0 or the errno.</summary>
    public static int RenameNoReplace(string path, string newPath) =>
        RenameAt2Path(AT_FDCWD, path, AT_FDCWD, newPath, RENAME_NOREPLACE) == 0 ? 0 : LastError;

    /// <summary>Removes a name that is not a directory; 0 or the errno (EISDIR for a directory).</summary>
    public static int Unlink(string path) => UnlinkPath(path) == 0 ? 0 : LastError;

    /// <summary>Changes the permission bits; 0 or the errno.</summary>
    public static int Chmod(string path, uint mode) => ChmodPath(path, mode) == 0 ? 0 : LastError;

    /// <summary>Changes owner and group (uint.MaxValue leaves one unchanged); 0 or the errno.</summary>
    public static int Chown(string path, uint owner, uint group) => ChownPath(path, owner, group) == 0 ? 0 : LastError;

    /// <summary>Sets the size; 0 or the errno.</summary>
    public static int Truncate(string path, long length) => TruncatePath(path, length) == 0 ? 0 : LastError;

    public static int LastError => Marshal.GetLastPInvokeError();

    /// <summary>Closes a descriptor the host owns; a failure here means a bookkeeping bug, not a guest error.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CloseOwned(int fd)
    {
        if (fd >= 0)
        {
            _ = Close(fd);
        }
    }
}

/// <summary>struct pollfd.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    public int Fd;
    public short Events;
    public short Revents;
}

/// <summary>struct iovec.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoVec
{
    public void* Base;
    public nuint Length;
}

/// <summary>struct stat on x86-64 (144 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Stat
{
    public ulong Dev;
    public ulong Ino;
    public ulong NLink;
    public uint Mode;
    public uint Uid;
    public uint Gid;
    public int Pad0;
    public ulong RDev;
    public long Size;
    public long BlkSize;
    public long Blocks;
    public long ATime;
    public long ATimeNs;
    public long MTime;
    public long MTimeNs;
    public long CTime;
    public long CTimeNs;
    public long Reserved0;
    public long Reserved1;
    public long Reserved2;
}

/// <summary>The leading fields of siginfo_t as waitid(2) fills them; padded to its 128 bytes.</summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal struct SigInfo
{
    [FieldOffset(0)] public int Signo;
    [FieldOffset(4)] public int Errno;
    [FieldOffset(8)] public int Code;
    [FieldOffset(16)] public int Pid;
    [FieldOffset(20)] public int Uid;
    [FieldOffset(24)] public int Status;
}

/// <summary>struct statfs on x86-64 (the fields the host reads; the rest is spare).</summary>
[StructLayout(LayoutKind.Sequential, Size = 120)]
internal struct StatFs
{
    public long Type;
    public long BlockSize;
}
