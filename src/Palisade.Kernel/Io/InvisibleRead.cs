using Palisade.Interop;

namespace Palisade.Kernel.Io;

/// <summary>
/// A driver's own reads of a guest's file must not change what the guest observes. A read through the guest's own
/// open file description (pread: no offset moves, no lock or lease changes hands) still updates the file's access time
/// when the mount's atime rule says so; when it would, the read goes through a description of the kernel's own opened
/// with O_NOATIME instead. Linux lets the file's owner or a holder of CAP_FOWNER ask for that; otherwise the read goes
/// through the guest's description and the access time may move (docs/security.md, "A driver's own I/O").
/// </summary>
internal static unsafe class InvisibleRead
{
    private const ulong ST_RDONLY = 1;
    private const int O_NOATIME = 0x40000;
    private const long SecondsPerDay = 24 * 60 * 60;

    /// <summary>True when a read through <paramref name="fd"/> would update its file's access time (Linux's relatime rule).</summary>
    public static bool WouldTouchAccessTime(int fd)
    {
        if (FileFacts.FileSystemOf(fd, out StatfsBuffer fs) != 0
            || (fs.Flags & (ST_RDONLY | FileFacts.ST_NOATIME)) != 0
            || FileFacts.StatxOf(fd, FileFacts.STATX_BASIC_STATS, out StatxBuffer stat) != 0)
        {
            return false;
        }

        if ((fs.Flags & FileFacts.ST_RELATIME) == 0)
        {
            return true; // strictatime: every read updates it
        }

        long atime = stat.AccessSeconds, mtime = stat.ModifySeconds, ctime = stat.ChangeSeconds;
        bool modifiedSince = mtime > atime || (mtime == atime && stat.ModifyNanoseconds >= stat.AccessNanoseconds);
        bool changedSince = ctime > atime || (ctime == atime && stat.ChangeNanoseconds >= stat.AccessNanoseconds);
        return modifiedSince || changedSince || DateTimeOffset.UtcNow.ToUnixTimeSeconds() - atime >= SecondsPerDay;
    }

    /// <summary>
    /// A description of the same file as <paramref name="fd"/>, readable and opened with O_NOATIME (and O_NONBLOCK, so a
    /// lease someone holds is not waited for); -1 when Linux does not allow it. The caller closes it.
    /// </summary>
    public static int OpenWithoutAccessTime(int fd)
    {
        Span<byte> link = stackalloc byte[40];
        int length = System.Text.Encoding.ASCII.GetBytes("/proc/self/fd/" + fd.ToString(System.Globalization.CultureInfo.InvariantCulture), link);
        link[length] = 0;
        fixed (byte* p = link)
        {
            return Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NONBLOCK | O_NOATIME, 0);
        }
    }

    /// <summary>True when <paramref name="fd"/> was opened with read access.</summary>
    public static bool IsReadable(int fd)
    {
        int flags = Libc.Fcntl(fd, Libc.F_GETFL, 0);
        return flags >= 0 && (flags & Libc.O_ACCMODE) != Libc.O_WRONLY && (flags & Libc.O_PATH) == 0;
    }

    /// <summary>
    /// A readable description of the kernel's own of the file behind <paramref name="fd"/> (any descriptor, O_PATH
    /// included), opened as <see cref="OpenForReading"/> opens; fd or -errno. The caller closes it.
    /// </summary>
    public static int OpenThrough(int fd)
    {
        Span<byte> link = stackalloc byte[40];
        int length = System.Text.Encoding.ASCII.GetBytes("/proc/self/fd/" + fd.ToString(System.Globalization.CultureInfo.InvariantCulture), link);
        link[length] = 0;
        return OpenForReading(link[..(length + 1)]);
    }

    /// <summary>Opens <paramref name="pathWithNul"/> read-only for the kernel's own I/O: O_NOATIME where Linux allows it, never waiting on a lease or a FIFO; fd or -errno.</summary>
    public static int OpenForReading(ReadOnlySpan<byte> pathWithNul)
    {
        fixed (byte* p = pathWithNul)
        {
            const int Flags = Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NONBLOCK | Libc.O_NOCTTY;
            int fd = Libc.OpenAt(Libc.AT_FDCWD, p, Flags | O_NOATIME, 0);
            if (fd < 0 && Libc.LastError == Errno.EPERM)
            {
                fd = Libc.OpenAt(Libc.AT_FDCWD, p, Flags, 0); // not the owner, no CAP_FOWNER: the access time may move
            }

            return fd < 0 ? -Libc.LastError : fd;
        }
    }
}
