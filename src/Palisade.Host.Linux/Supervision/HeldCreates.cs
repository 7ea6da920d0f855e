using Palisade.Host.Linux.Authority;
using Palisade.Interop;
using Palisade.Kernel.Hosting;
using FileIdentity = Palisade.Api.FileIdentity;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// The host's part in a create a driver holds (<see cref="IHeldFileAccess"/>). Before it asks for the decision on an
/// open, the thread that serves it records here how the open will resolve its path (the base directory, the path, the
/// resolve flags, <c>O_NOFOLLOW</c>). If a filter holds the create, the kernel asks, on that same thread, for the file:
/// it is opened <c>O_PATH</c>, as the guest (its credentials and root), exactly as the guest's open would resolve it, kept only if it is a regular file, and
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
    /// <param name="guest">The guest the open is made for: the held file is resolved with its authority.</param>
    /// <param name="inGuestRoot">False when the path goes through the supervisor's own /proc/self/fd (already resolved in the guest's root).</param>
    public static void Prepare(int baseFd, byte[] path, int length, int flags, ulong resolve, GuestAuthority guest, bool inGuestRoot)
    {
        OpenTarget t = t_target ??= new OpenTarget();
        t.BaseFd = baseFd;
        t.Path = path;
        t.Length = length;
        t.Flags = flags;
        t.Resolve = resolve;
        t.Guest = guest;
        t.InGuestRoot = inGuestRoot;
    }

    /// <summary>The decision was made: what was recorded is no longer valid.</summary>
    public static void Clear()
    {
        if (t_target is { } t)
        {
            t.Path = null;
            t.Guest = null;
        }
    }

    /// <inheritdoc/>
    public int OpenHeldCreate(out int reader, out FileIdentity file)
    {
        reader = -Errno.EBADF;
        file = default;
        OpenTarget? t = t_target;
        if (t?.Path is not { } path || t.Guest is not { } guest)
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
            var open = new SyscallAction { Number = Sys.Openat2, A1 = t.BaseFd, A2 = (long)p, A3 = (long)&how, A4 = sizeof(OpenHowArgs) };
            fd = GuestAction.Run(guest, ref open, t.InGuestRoot);
        }

        if (fd < 0)
        {
            return (int)fd;
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
        public GuestAuthority? Guest;
        public bool InGuestRoot;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct OpenHowArgs
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }
}
