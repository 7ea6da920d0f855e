using Palisade.Interop;
using Palisade.Kernel.Hosting;
using FileIdentity = Palisade.Api.FileIdentity;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// The host's part in a create a driver holds (<see cref="IHeldFileAccess"/>). Before it asks for the decision on an
/// open, the thread that serves it records here how the open will resolve its path (the base directory, the path, the
/// resolve flags, <c>O_NOFOLLOW</c>). If a filter holds the create, the kernel asks, on that same thread, for the file:
/// it is opened <c>O_PATH</c> exactly as the guest's open would resolve it, kept only if it is a regular file, and
/// reopened read-only and non-blocking for the filter to read. When the create is then allowed, the supervisor opens the
/// guest's file through the <c>O_PATH</c> descriptor (<see cref="Supervisor"/>), so the guest receives the file that was
/// decided on even if the path was changed while the decision was held.
/// </summary>
internal sealed unsafe class HeldCreates : IHeldFileAccess
{
    /// <summary>The one instance: the state is per thread.</summary>
    public static readonly HeldCreates Instance = new();

    [ThreadStatic]
    private static OpenTarget? t_target;

    private HeldCreates()
    {
    }

    /// <summary>Records, for the decision about to be asked on this thread, how the open resolves its path.</summary>
    /// <param name="baseFd">The directory a relative path resolves in, or AT_FDCWD.</param>
    /// <param name="path">The path as the open will use it, with its terminating NUL; the array is not copied.</param>
    /// <param name="length">The path's length, NUL included.</param>
    /// <param name="flags">The guest's open flags.</param>
    /// <param name="resolve">The resolve flags the open will use.</param>
    public static void Prepare(int baseFd, byte[] path, int length, int flags, ulong resolve)
    {
        OpenTarget t = t_target ??= new OpenTarget();
        t.BaseFd = baseFd;
        t.Path = path;
        t.Length = length;
        t.Flags = flags;
        t.Resolve = resolve;
    }

    /// <summary>The decision was made: what was recorded is no longer valid.</summary>
    public static void Clear()
    {
        if (t_target is { } t)
        {
            t.Path = null;
        }
    }

    /// <inheritdoc/>
    public int OpenHeldCreate(out int reader, out FileIdentity file)
    {
        reader = -Errno.EBADF;
        file = default;
        OpenTarget? t = t_target;
        if (t?.Path is not { } path)
        {
            return -Errno.EINVAL;
        }

        var how = new OpenHowArgs
        {
            Flags = (ulong)(Libc.O_PATH | Libc.O_CLOEXEC | (t.Flags & Libc.O_NOFOLLOW)),
            Resolve = t.Resolve,
        };
        long fd;
        fixed (byte* p = path)
        {
            fd = Libc.Syscall(Sys.Openat2, t.BaseFd, (long)p, (long)&how, sizeof(OpenHowArgs), 0, 0);
        }

        if (fd < 0)
        {
            return -Libc.LastError;
        }

        Stat stat;
        if (Libc.FStat((int)fd, &stat) < 0 || (stat.Mode & Libc.S_IFMT) != Libc.S_IFREG)
        {
            Libc.CloseOwned((int)fd);
            return -Errno.ENOENT;
        }

        file = new FileIdentity(stat.Dev, stat.Ino);
        reader = Reopen((int)fd, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY);
        return (int)fd;
    }

    /// <summary>Opens the file <paramref name="named"/> names (an O_PATH descriptor) again with <paramref name="flags"/>; the descriptor or -errno.</summary>
    public static int Reopen(int named, int flags)
    {
        Span<byte> link = stackalloc byte[32];
        int length = new Utf8Builder(link).Append("/proc/self/fd/"u8).Append(named).Append("\0"u8).Length;
        fixed (byte* p = link[..length])
        {
            int fd = Libc.OpenAt(Libc.AT_FDCWD, p, flags | Libc.O_CLOEXEC, 0);
            return fd < 0 ? -Libc.LastError : fd;
        }
    }

    private sealed class OpenTarget
    {
        public int BaseFd;
        public byte[]? Path;
        public int Length;
        public int Flags;
        public ulong Resolve;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct OpenHowArgs
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }
}
