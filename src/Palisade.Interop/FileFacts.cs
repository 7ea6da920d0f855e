using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Palisade.Interop;

/// <summary>
/// statx(2) and fstatfs(2): what a file is (type, identity, mount) and what file system holds it, read through a
/// descriptor the caller owns or a path relative to one.
/// </summary>
internal static unsafe class FileFacts
{
    public const uint STATX_TYPE = 0x1;
    public const uint STATX_MODE = 0x2;
    public const uint STATX_INO = 0x100;
    public const uint STATX_MNT_ID = 0x1000;
    public const uint STATX_MNT_ID_UNIQUE = 0x4000;
    public const uint STATX_BASIC_STATS = 0x7ff;

    public const long PROC_SUPER_MAGIC = 0x9fa0;
    public const long SYSFS_MAGIC = 0x62656572;
    public const long DEVPTS_SUPER_MAGIC = 0x1cd1;
    public const long DEBUGFS_MAGIC = 0x64626720;
    public const long TRACEFS_MAGIC = 0x74726163;
    public const long SECURITYFS_MAGIC = 0x73636673;
    public const long CGROUP_SUPER_MAGIC = 0x27e0eb;
    public const long CGROUP2_SUPER_MAGIC = 0x63677270;
    public const long BPF_FS_MAGIC = unchecked((long)0xcafe4a11);
    public const long PSTOREFS_MAGIC = 0x6165676C;
    public const long EFIVARFS_MAGIC = unchecked((long)0xde5e81e4);
    public const long CONFIGFS_MAGIC = 0x62656570;
    public const long FUSECTL_SUPER_MAGIC = 0x65735543;
    public const long MQUEUE_MAGIC = 0x19800202;
    public const long NSFS_MAGIC = 0x6e736673;
    public const long PIPEFS_MAGIC = 0x50495045;
    public const long SOCKFS_MAGIC = 0x534F434B;
    public const long ANON_INODE_FS_MAGIC = 0x09041934;
    public const long PIDFS_MAGIC = 0x50494446;

    public const ulong ST_NOATIME = 1024;
    public const ulong ST_RELATIME = 4096;

    /// <summary>statx with <paramref name="flags"/> (AT_*) and <paramref name="mask"/> (STATX_*); 0 or the errno.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Statx(int dirfd, byte* path, int flags, uint mask, out StatxBuffer buffer)
    {
        fixed (StatxBuffer* b = &buffer)
        {
            return Libc.Syscall(Sys.Statx, dirfd, (long)path, flags, mask, (long)b, 0) < 0 ? Libc.LastError : 0;
        }
    }

    /// <summary>statx of the open file <paramref name="fd"/> itself (AT_EMPTY_PATH); 0 or the errno.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int StatxOf(int fd, uint mask, out StatxBuffer buffer)
    {
        byte empty = 0;
        return Statx(fd, &empty, Libc.AT_EMPTY_PATH, mask, out buffer);
    }

    /// <summary>fstatfs of <paramref name="fd"/>; 0 or the errno.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int FileSystemOf(int fd, out StatfsBuffer buffer)
    {
        fixed (StatfsBuffer* b = &buffer)
        {
            return Libc.Syscall(Sys.Fstatfs, fd, (long)b, 0, 0, 0, 0) < 0 ? Libc.LastError : 0;
        }
    }
}

/// <summary>struct statx (256 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 256)]
internal struct StatxBuffer
{
    [FieldOffset(0)] public uint Mask;
    [FieldOffset(16)] public uint NLink;
    [FieldOffset(20)] public uint Uid;
    [FieldOffset(24)] public uint Gid;
    [FieldOffset(28)] public ushort Mode;
    [FieldOffset(32)] public ulong Ino;
    [FieldOffset(40)] public ulong Size;
    [FieldOffset(64)] public long AccessSeconds;
    [FieldOffset(72)] public uint AccessNanoseconds;
    [FieldOffset(80)] public long BirthSeconds;
    [FieldOffset(88)] public uint BirthNanoseconds;
    [FieldOffset(96)] public long ChangeSeconds;
    [FieldOffset(104)] public uint ChangeNanoseconds;
    [FieldOffset(112)] public long ModifySeconds;
    [FieldOffset(120)] public uint ModifyNanoseconds;
    [FieldOffset(136)] public uint DevMajor;
    [FieldOffset(140)] public uint DevMinor;
    [FieldOffset(144)] public ulong MountId;

    /// <summary>The device number as stat(2) reports it in st_dev (glibc's makedev of the major and minor).</summary>
    public readonly ulong Device =>
        ((ulong)(DevMajor & 0xfffff000) << 32) | ((ulong)(DevMajor & 0xfff) << 8) | ((ulong)(DevMinor & 0xffffff00) << 12) | (DevMinor & 0xff);
}

/// <summary>struct statfs on x86-64 (120 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 120)]
internal struct StatfsBuffer
{
    [FieldOffset(0)] public long Type;
    [FieldOffset(80)] public ulong Flags;
}
