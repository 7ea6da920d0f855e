using System.Runtime.CompilerServices;
using Palisade.Interop;
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int OpenBase(int tid, int dirfd, ReadOnlySpan<byte> path, Span<byte> proc) =>
        path.Length > 0 && path[0] == (byte)'/' ? Libc.AT_FDCWD : ProcFs.OpenGuestDirectory(tid, dirfd, proc);

    /// <summary>
    /// Writes the absolute form of <paramref name="path"/> (relative to <paramref name="baseFd"/>) into
    /// <paramref name="destination"/>, as the guest spelled it (not resolved); returns its length. When the base folder
    /// cannot be named (deeper than PATH_MAX), the form written is <paramref name="path"/> itself, relative: the operation is
    /// still made from the base folder, as Linux makes it, and the request names the object relative to it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
            path.CopyTo(destination);
            return path.Length;
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

    /// <summary>
    /// Paths that name "the calling process" (/proc/self, /proc/thread-self, /dev/fd, /dev/stdin|stdout|stderr)
    /// would name the supervisor when the supervisor resolves them. Rewrites such a prefix of the absolute
    /// path in <paramref name="path"/> (capacity permitting) to the guest's own /proc entry and returns the
    /// new length; <paramref name="rewritten"/> tells whether it did.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool NamesCallingProcess(ReadOnlySpan<byte> path) =>
        path.Length >= 7 && path[1] is (byte)'p' or (byte)'d'
        && (StartsWithComponent(path, "/proc/self"u8) || StartsWithComponent(path, "/proc/thread-self"u8)
            || StartsWithComponent(path, "/dev/fd"u8) || StartsWithComponent(path, "/dev/stdin"u8)
            || StartsWithComponent(path, "/dev/stdout"u8) || StartsWithComponent(path, "/dev/stderr"u8));

    /// <summary>
    /// Rewrites a path that names the calling process (see <see cref="NamesCallingProcess"/>) to the entry of
    /// <paramref name="process"/> and <paramref name="thread"/>; see <see cref="RewriteSelfReferences"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int RewriteSelfReferences(Span<byte> path, int length, int process, int thread, out bool rewritten)
    {
        rewritten = false;
        var text = path[..length];
        Span<byte> prefix = stackalloc byte[64];
        int consumed;
        int written;
        if (StartsWithComponent(text, "/proc/self"u8))
        {
            consumed = 10;
            written = new Supervision.Utf8Builder(prefix).Append("/proc/"u8).Append(process).Length;
        }
        else if (StartsWithComponent(text, "/proc/thread-self"u8))
        {
            consumed = 17;
            written = new Supervision.Utf8Builder(prefix).Append("/proc/"u8).Append(process).Append("/task/"u8).Append(thread).Length;
        }
        else if (StartsWithComponent(text, "/dev/fd"u8))
        {
            consumed = 7;
            written = new Supervision.Utf8Builder(prefix).Append("/proc/"u8).Append(process).Append("/fd"u8).Length;
        }
        else if (StartsWithComponent(text, "/dev/stdin"u8))
        {
            consumed = 10;
            written = new Supervision.Utf8Builder(prefix).Append("/proc/"u8).Append(process).Append("/fd/0"u8).Length;
        }
        else if (StartsWithComponent(text, "/dev/stdout"u8))
        {
            consumed = 11;
            written = new Supervision.Utf8Builder(prefix).Append("/proc/"u8).Append(process).Append("/fd/1"u8).Length;
        }
        else if (StartsWithComponent(text, "/dev/stderr"u8))
        {
            consumed = 11;
            written = new Supervision.Utf8Builder(prefix).Append("/proc/"u8).Append(process).Append("/fd/2"u8).Length;
        }
        else
        {
            return length;
        }

        int newLength = length - consumed + written;
        if (newLength + 1 > path.Length)
        {
            return length;
        }

        path[consumed..length].CopyTo(path[written..]);
        prefix[..written].CopyTo(path);
        rewritten = true;
        return newLength;
    }

    /// <summary>
    /// True for exactly /proc/PID/fd/N or /proc/PID/task/TID/fd/N of a process other than the supervisor:
    /// the only magic link on that path is its last component, and it names a guest's descriptor.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool IsGuestDescriptorLink(ReadOnlySpan<byte> path) => TryParseDescriptorLink(path, out _);

    /// <summary>
    /// Parses exactly /proc/PID/fd/N or /proc/PID/task/TID/fd/N of a process other than the supervisor (PID is neither
    /// its process id nor a thread id of it) into the
    /// descriptor it names (for the kernel boundary's check that a reopen yields that descriptor's object).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool TryParseDescriptorLink(ReadOnlySpan<byte> path, out Boundary.DescriptorLink link)
    {
        link = Boundary.DescriptorLink.None;
        if (!path.StartsWith("/proc/"u8))
        {
            return false;
        }

        var rest = path[6..];
        int pidLength = Digits(rest);
        // Only a guest's descriptor: the kernel's (its process or a thread of it, by any id) is never reopened.
        if (pidLength == 0 || !System.Buffers.Text.Utf8Parser.TryParse(rest[..pidLength], out int pid, out _) || Boundary.KernelTasks.Includes(pid))
        {
            return false;
        }

        rest = rest[pidLength..];
        int tid = 0;
        if (rest.StartsWith("/task/"u8))
        {
            int tidLength = Digits(rest[6..]);
            if (tidLength == 0 || !System.Buffers.Text.Utf8Parser.TryParse(rest.Slice(6, tidLength), out tid, out _))
            {
                return false;
            }

            rest = rest[(6 + tidLength)..];
        }

        if (!rest.StartsWith("/fd/"u8))
        {
            return false;
        }

        int fdLength = Digits(rest[4..]);
        if (fdLength == 0 || fdLength != rest.Length - 4 || !System.Buffers.Text.Utf8Parser.TryParse(rest[4..], out int fd, out _))
        {
            return false;
        }

        link = new Boundary.DescriptorLink(pid, tid, fd);
        return true;
    }

    /// <summary>For a path /proc/PID/... or /proc/PID/task/TID/... (any pid), what follows that prefix ("/fd/3", "/uid_map").</summary>
    private static bool TryAfterTask(ReadOnlySpan<byte> path, out ReadOnlySpan<byte> rest)
    {
        rest = default;
        if (!path.StartsWith("/proc/"u8))
        {
            return false;
        }

        rest = path[6..];
        int pidLength = Digits(rest);
        if (pidLength == 0)
        {
            return false;
        }

        rest = rest[pidLength..];
        if (rest.StartsWith("/task/"u8) && Digits(rest[6..]) is > 0 and int tidLength)
        {
            rest = rest[(6 + tidLength)..];
        }

        return true;
    }

    /// <summary>
    /// For exactly /proc/PID/fd/N or /proc/PID/task/TID/fd/N (any pid), the descriptor number N.
    /// </summary>
    public static bool TryDescriptorNumber(ReadOnlySpan<byte> path, out int descriptor)
    {
        descriptor = -1;
        if (!TryAfterTask(path, out ReadOnlySpan<byte> rest))
        {
            return false;
        }

        return rest.StartsWith("/fd/"u8) && Digits(rest[4..]) == rest.Length - 4 && rest.Length > 4
            && System.Buffers.Text.Utf8Parser.TryParse(rest[4..], out descriptor, out _);
    }

    /// <summary>
    /// True for a file whose behaviour depends on the user namespace of the process that opened it: a process's id maps
    /// and setgroups switch (/proc/PID[/task/TID]/uid_map, gid_map, projid_map, setgroups, written from the parent or
    /// the namespace itself) and /dev/fuse (a FUSE mount is owned by its opener's namespace).
    /// </summary>
    public static bool IsOpenerNamespaceFile(ReadOnlySpan<byte> path)
    {
        if (path.SequenceEqual("/dev/fuse"u8))
        {
            return true;
        }

        if (!TryAfterTask(path, out ReadOnlySpan<byte> rest))
        {
            return false;
        }

        return rest.SequenceEqual("/uid_map"u8) || rest.SequenceEqual("/gid_map"u8) || rest.SequenceEqual("/projid_map"u8)
            || rest.SequenceEqual("/setgroups"u8);
    }

    private static int Digits(ReadOnlySpan<byte> text)
    {
        int i = 0;
        while (i < text.Length && text[i] >= (byte)'0' && text[i] <= (byte)'9')
        {
            i++;
        }

        return i;
    }

    private static bool StartsWithComponent(ReadOnlySpan<byte> path, ReadOnlySpan<byte> prefix) =>
        path.StartsWith(prefix) && (path.Length == prefix.Length || path[prefix.Length] == (byte)'/');

    /// <summary>
    /// Splits a guest path (<paramref name="pathWithNul"/>, NUL-terminated) into the directory that holds its last
    /// component and that component, so that an operation acts on (parent directory, name) as Linux does. The directory
    /// is written NUL-terminated into <paramref name="directory"/> (empty when the path has a single component: the
    /// parent is the base directory itself); <paramref name="nameAt"/> is where the last component starts in the path
    /// (with any trailing slashes, which keep their meaning). False for a path with no last component ("", "/", "//"):
    /// the operation then acts on the whole path.
    /// </summary>
    public static bool SplitLast(ReadOnlySpan<byte> pathWithNul, Span<byte> directory, out int directoryLength, out int nameAt)
    {
        ReadOnlySpan<byte> path = pathWithNul[..^1];
        directoryLength = 0;
        nameAt = 0;
        int end = path.Length;
        while (end > 0 && path[end - 1] == (byte)'/')
        {
            end--;
        }

        if (end == 0)
        {
            return false;
        }

        int slash = path[..end].LastIndexOf((byte)'/');
        if (slash < 0)
        {
            directory[0] = 0;
            return true;
        }

        // "/name": the directory is the root; "a//name": "a".
        int directoryEnd = slash;
        while (directoryEnd > 0 && path[directoryEnd - 1] == (byte)'/')
        {
            directoryEnd--;
        }

        directoryLength = directoryEnd == 0 ? 1 : directoryEnd;
        path[..directoryLength].CopyTo(directory);
        directory[directoryLength] = 0;
        nameAt = slash + 1;
        return true;
    }

    /// <summary>Closes a base handle from <see cref="OpenBase"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CloseBase(int baseFd)
    {
        if (baseFd != Libc.AT_FDCWD)
        {
            Libc.CloseOwned(baseFd);
        }
    }
}
