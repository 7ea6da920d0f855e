using System.Buffers.Text;
using Palisade.Interop;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// What the supervisor learns about a guest thread through /proc: its cwd and descriptors as directory
/// handles, its thread group and parent, its umask. All formatting is done into caller buffers.
/// </summary>
internal static unsafe class ProcFs
{
    /// <summary>Writes "/proc/{tid}/{leaf}" NUL-terminated into <paramref name="buffer"/>.</summary>
    public static void Format(Span<byte> buffer, int tid, ReadOnlySpan<byte> leaf)
    {
        _ = new Utf8Builder(buffer).Append("/proc/"u8).Append(tid).Append("/"u8).Append(leaf).Append("\0"u8);
    }

    /// <summary>Writes "/proc/{tid}/fd/{fd}" NUL-terminated.</summary>
    public static void FormatFd(Span<byte> buffer, int tid, int fd)
    {
        _ = new Utf8Builder(buffer).Append("/proc/"u8).Append(tid).Append("/fd/"u8).Append(fd).Append("\0"u8);
    }

    /// <summary>Writes "/proc/self/fd/{fd}" NUL-terminated.</summary>
    public static void FormatSelfFd(Span<byte> buffer, int fd)
    {
        _ = new Utf8Builder(buffer).Append("/proc/self/fd/"u8).Append(fd).Append("\0"u8);
    }

    /// <summary>
    /// Opens, as an O_PATH handle, the guest's directory <paramref name="dirfd"/> (or its cwd for AT_FDCWD).
    /// Returns the handle or -errno (EBADF when the guest has no such descriptor).
    /// </summary>
    public static int OpenGuestDirectory(int tid, int dirfd, Span<byte> proc)
    {
        if (dirfd == Libc.AT_FDCWD)
        {
            Format(proc, tid, "cwd"u8);
        }
        else if (dirfd < 0)
        {
            return -Errno.EBADF;
        }
        else
        {
            FormatFd(proc, tid, dirfd);
        }

        fixed (byte* p = proc)
        {
            int fd = Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_PATH | Libc.O_CLOEXEC, 0);
            if (fd >= 0)
            {
                return fd;
            }

            int error = Libc.LastError;
            return -(error == Errno.ENOENT && dirfd != Libc.AT_FDCWD ? Errno.EBADF : error);
        }
    }

    /// <summary>readlink of /proc/self/fd/{fd} into <paramref name="destination"/>; the length or -errno.</summary>
    public static int ReadSelfFdLink(int fd, Span<byte> proc, Span<byte> destination)
    {
        FormatSelfFd(proc, fd);
        fixed (byte* p = proc)
        fixed (byte* d = destination)
        {
            nint n = Libc.ReadLinkAt(Libc.AT_FDCWD, p, d, (nuint)destination.Length);
            return n < 0 ? -Libc.LastError : (int)n;
        }
    }

    /// <summary>Reads /proc/{tid}/status into <paramref name="status"/>; its length or -errno.</summary>
    public static int ReadStatus(int tid, Span<byte> proc, Span<byte> status)
    {
        Format(proc, tid, "status"u8);
        return ReadStart(proc, status);
    }

    /// <summary>Reads the start of the file named by <paramref name="pathWithNul"/> into <paramref name="destination"/>; the length read, or -errno.</summary>
    private static int ReadStart(ReadOnlySpan<byte> pathWithNul, Span<byte> destination)
    {
        fixed (byte* p = pathWithNul)
        fixed (byte* d = destination)
        {
            int fd = Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
            if (fd < 0)
            {
                return -Libc.LastError;
            }

            nint n = Libc.Read(fd, d, (nuint)destination.Length);
            int error = Libc.LastError;
            Libc.CloseOwned(fd);
            return n < 0 ? -error : (int)n;
        }
    }

    /// <summary>Finds "Key:\t&lt;number&gt;" in a status file; <paramref name="radix"/> 8 for Umask.</summary>
    public static bool TryField(ReadOnlySpan<byte> status, ReadOnlySpan<byte> key, int radix, out long value)
    {
        value = 0;
        int at = status.IndexOf(key);
        while (at > 0 && status[at - 1] != (byte)'\n')
        {
            int next = status[(at + 1)..].IndexOf(key);
            at = next < 0 ? -1 : at + 1 + next;
        }

        if (at < 0)
        {
            return false;
        }

        var rest = status[(at + key.Length)..].TrimStart("\t "u8);
        if (radix == 10)
        {
            return Utf8Parser.TryParse(rest, out value, out _);
        }

        int i = 0;
        while (i < rest.Length && rest[i] >= (byte)'0' && rest[i] <= (byte)'7')
        {
            value = (value * 8) + (rest[i] - (byte)'0');
            i++;
        }

        return i > 0;
    }

    /// <summary>The parent of process <paramref name="pid"/> (PPid: of /proc/PID/status), or 0 when it is gone.</summary>
    public static int ParentOf(int pid) => StatusField(pid, "PPid:");

    /// <summary>The process (thread group) of thread <paramref name="tid"/>, or 0 when it is gone.</summary>
    public static int ThreadGroupOf(int tid) => StatusField(tid, "Tgid:");

    /// <summary>A numeric field of /proc/PID/status, or 0 when the process is gone.</summary>
    private static int StatusField(int pid, string field)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/" + pid + "/status"))
            {
                if (line.StartsWith(field, StringComparison.Ordinal))
                {
                    return int.Parse(line.AsSpan(field.Length).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    /// <summary>The canonical path of the image process <paramref name="pid"/> runs (/proc/PID/exe), empty when unreadable.</summary>
    public static string ImageOf(int pid)
    {
        try
        {
            return new FileInfo("/proc/" + pid + "/exe").LinkTarget ?? "";
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>
    /// True when descriptor <paramref name="fd"/> of <paramref name="pid"/> was opened for writing (the flags of its
    /// fdinfo). Raw calls into a stack buffer: this runs at every close a driver watches.
    /// </summary>
    public static bool WasOpenForWriting(int pid, int fd)
    {
        Span<byte> proc = stackalloc byte[64];
        Span<byte> info = stackalloc byte[256];
        int length = ReadFdInfo(pid, fd, proc, info);
        return length > 0 && TryField(info[..length], "flags:"u8, 8, out long flags) && (flags & Libc.O_ACCMODE) != Libc.O_RDONLY;
    }

    /// <summary>
    /// Reads the start of /proc/{pid}/fdinfo/{fd} into <paramref name="info"/> (its first lines: pos, flags, mnt_id, and
    /// for a pidfd its Pid); the length read, or -errno.
    /// </summary>
    public static int ReadFdInfo(int pid, int fd, Span<byte> proc, Span<byte> info)
    {
        _ = new Utf8Builder(proc).Append("/proc/"u8).Append(pid).Append("/fdinfo/"u8).Append(fd).Append("\0"u8);
        return ReadStart(proc, info);
    }

    /// <summary>What descriptor <paramref name="fd"/> of <paramref name="pid"/> names (the link of /proc/PID/fd/FD), or null.</summary>
    public static string? DescriptorTarget(int pid, int fd)
    {
        try
        {
            return new FileInfo(DescriptorPath(pid, fd)).LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>"/proc/PID/fd/FD" as a string.</summary>
    public static string DescriptorPath(int pid, int fd) => "/proc/" + pid + "/fd/" + fd;
}
