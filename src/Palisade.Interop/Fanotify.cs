using System.Runtime.InteropServices;

namespace Palisade.Interop;

/// <summary>
/// fanotify(7), for the one event the kernel needs from it: FAN_CLOSE_WRITE, which Linux raises at the final release
/// of an open file description that was open for writing (its last close, including the implicit closes of a process's
/// exit), with a new read-only descriptor of the file. A privileged group (CAP_SYS_ADMIN), without FID reporting.
/// </summary>
internal static unsafe class Fanotify
{
    private const int SysInit = 300;
    private const int SysMark = 301;
    private const int O_LARGEFILE = 0x8000;

    public const uint FAN_CLOEXEC = 0x1;
    public const uint FAN_NONBLOCK = 0x2;
    public const uint FAN_CLASS_NOTIF = 0x0;
    public const uint FAN_UNLIMITED_QUEUE = 0x10;

    public const uint FAN_MARK_ADD = 0x1;
    public const uint FAN_MARK_EVICTABLE = 0x200;

    public const ulong FAN_CLOSE_WRITE = 0x8;
    public const ulong FAN_Q_OVERFLOW = 0x4000;

    /// <summary>The event_metadata version this code reads.</summary>
    public const byte FANOTIFY_METADATA_VERSION = 3;

    /// <summary>struct fanotify_event_metadata.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct EventMetadata
    {
        public uint EventLength;
        public byte Version;
        public byte Reserved;
        public ushort MetadataLength;
        public ulong Mask;
        public int Fd;
        public int Pid;
    }

    /// <summary>
    /// A notification group whose event descriptors are opened read-only and close-on-exec (not O_NOATIME: an event whose
    /// descriptor cannot be opened is lost, and O_NOATIME fails on a file of another owner without CAP_FOWNER).
    /// Returns the group's descriptor or -errno (EPERM without CAP_SYS_ADMIN).
    /// </summary>
    public static int Init(uint flags)
    {
        long fd = Libc.Syscall(SysInit, flags, Libc.O_RDONLY | O_LARGEFILE | Libc.O_CLOEXEC, 0, 0, 0, 0);
        return fd < 0 ? -Libc.LastError : (int)fd;
    }

    /// <summary>
    /// Marks the inode behind <paramref name="fd"/> for FAN_CLOSE_WRITE, evictably (the mark does not keep the inode in
    /// memory; an inode with an open description cannot be evicted, so the mark lasts as long as a watched description).
    /// 0 or -errno.
    /// </summary>
    public static int MarkCloseWrite(int group, int fd)
    {
        long r = Libc.Syscall(SysMark, group, FAN_MARK_ADD | FAN_MARK_EVICTABLE, (long)FAN_CLOSE_WRITE, fd, 0, 0);
        return r < 0 ? -Libc.LastError : 0;
    }
}
