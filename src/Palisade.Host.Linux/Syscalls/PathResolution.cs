using Palisade.Host.Linux.Interop;
using Palisade.Host.Linux.Supervision;

namespace Palisade.Host.Linux.Syscalls;

/// <summary>
/// Turns a guest (dirfd, path) pair into what the supervisor acts on: a base directory handle of its own
/// (the guest's directory, reopened through /proc) and the absolute path the mediator decides on.
/// </summary>
internal static class PathResolution
{
    /// <summary>
    /// Opens the base directory for <paramref name="path"/>: AT_FDCWD (no handle) for an absolute path,
    /// else an O_PATH handle on the guest's <paramref name="dirfd"/> or cwd. Returns it or -errno.
    /// </summary>
    public static int OpenBase(int tid, int dirfd, ReadOnlySpan<byte> path, Span<byte> proc) =>
        path.Length > 0 && path[0] == (byte)'/' ? Libc.AT_FDCWD : ProcFs.OpenGuestDirectory(tid, dirfd, proc);

    /// <summary>
    /// Writes the absolute form of <paramref name="path"/> (relative to <paramref name="baseFd"/>) into
    /// <paramref name="destination"/>; returns its length or -errno.
    /// </summary>
    public static int Absolute(int baseFd, ReadOnlySpan<byte> path, Span<byte> proc, Span<byte> destination)
    {
        if (baseFd == Libc.AT_FDCWD)
        {
            path.CopyTo(destination);
            return path.Length;
        }

        int length = ProcFs.ReadSelfFdLink(baseFd, proc, destination[..Scratch.PathMax]);
        if (length < 0)
        {
            return length;
        }

        if (path.Length == 0)
        {
            return length;
        }

        if (length == 0 || destination[length - 1] != (byte)'/')
        {
            destination[length++] = (byte)'/';
        }

        path.CopyTo(destination[length..]);
        return length + path.Length;
    }

    /// <summary>Closes a base handle from <see cref="OpenBase"/>.</summary>
    public static void CloseBase(int baseFd)
    {
        if (baseFd != Libc.AT_FDCWD)
        {
            Libc.CloseOwned(baseFd);
        }
    }
}
