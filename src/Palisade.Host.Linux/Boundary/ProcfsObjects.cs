using System.Buffers.Text;
using System.Runtime.CompilerServices;
using Palisade.Interop;

namespace Palisade.Host.Linux.Boundary;

/// <summary>
/// Which procfs objects belong to a kernel task. The supervisor opens files for guests in its own process, where Linux
/// lets any thread reach its own process's <c>/proc</c> entries (<c>mem</c>, <c>environ</c>, <c>fd/*</c>, ...) whatever
/// the credentials; so every file opened for a guest that can be a procfs object is placed before it is handed over:
/// <list type="bullet">
/// <item>by its text, when it is <c>/proc/N/...</c> in the procfs instance of the supervisor's pid namespace mounted at
/// <c>/proc</c>, without <c>.</c> or <c>..</c> components and not a descriptor link (<c>fd/M</c>): opened with no
/// magic links, such a path stays inside task N's directory, so N decides;</item>
/// <item>otherwise by the object: <c>fstatfs</c> says whether it is procfs at all; a procfs object is placed by its
/// mount (the instance and the part of it the mount shows) and its path in that mount, and its first component is the
/// task. A procfs object the supervisor cannot place (a bind mount of part of another pid namespace's procfs) is refused.</item>
/// </list>
/// </summary>
internal sealed unsafe class ProcfsObjects
{
    private readonly MountTable _mounts;
    private readonly ulong _procDevice;
    private readonly bool _procIsOurs;

    /// <summary>Places procfs objects with <paramref name="mounts"/>; finds the supervisor's own procfs instance at /proc.</summary>
    public ProcfsObjects(MountTable mounts)
    {
        _mounts = mounts;
        MountTable.Mount? proc = null;
        foreach (MountTable.Mount m in mounts.Mounts)
        {
            if (m.FileSystem == "proc" && m.Point.AsSpan().SequenceEqual("/proc"u8) && m.Root.AsSpan().SequenceEqual("/"u8))
            {
                proc = m;
            }
        }

        _procDevice = proc?.Device ?? 0;

        // /proc is the instance of our pid namespace when its "self" names this process.
        _procIsOurs = proc is not null && SelfIn("/proc\0"u8) == KernelTasks.ProcessId;
    }

    /// <summary>True when <c>/proc</c> is the procfs instance of the supervisor's pid namespace (then the text path applies).</summary>
    public bool ProcIsOurs => _procIsOurs;

    /// <summary>
    /// For an absolute path: 1 when it is <c>/proc/N</c> or below and N (or a <c>task/T</c> under it) is a kernel task,
    /// 0 when it is below a guest's <c>/proc/N</c> in a way that stays there (no <c>.</c>, <c>..</c> or descriptor link),
    /// -1 when the text does not tell (the object must be placed once opened). The requesting guest's own ids
    /// (<paramref name="guestProcess"/>, <paramref name="guestThread"/>) are known not to be the kernel's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int ClassifyText(ReadOnlySpan<byte> absolutePath, int guestProcess, int guestThread)
    {
        if (!_procIsOurs || !absolutePath.StartsWith("/proc/"u8))
        {
            return -1;
        }

        ReadOnlySpan<byte> rest = absolutePath[6..];
        int n = Digits(rest);
        if (n == 0 || (n < rest.Length && rest[n] != (byte)'/') || !Utf8Parser.TryParse(rest[..n], out int task, out _))
        {
            return -1;
        }

        bool guests = task == guestProcess || task == guestThread;
        if (!guests && KernelTasks.Includes(task))
        {
            return 1;
        }

        rest = rest[n..];
        if (rest.StartsWith("/task/"u8))
        {
            int t = Digits(rest[6..]);
            if (t > 0 && Utf8Parser.TryParse(rest.Slice(6, t), out int thread, out _) && !guests && KernelTasks.Includes(thread))
            {
                return 1;
            }
        }

        // "." or ".." could climb out of task N's directory; fd/M and the like are magic links to anything.
        return HasDotComponent(rest) || Contains(rest, "/fd/"u8) || Contains(rest, "/map_files/"u8) ? -1 : 0;
    }

    /// <summary>
    /// True when <paramref name="fd"/> is a procfs object of a kernel task (or a procfs object that cannot be placed).
    /// One <c>fstatfs</c> for anything that is not procfs; for procfs, its link, mount id and perhaps the mount table.
    /// </summary>
    /// <param name="fd">A descriptor the supervisor opened.</param>
    /// <param name="buffer">Scratch for the descriptor's path (PATH_MAX + 1 bytes).</param>
    /// <param name="proc">Scratch for /proc paths (64 bytes).</param>
    /// <param name="fd">A descriptor the supervisor opened.</param>
    /// <param name="buffer">Scratch for the descriptor's path (PATH_MAX + 1 bytes).</param>
    /// <param name="proc">Scratch for /proc paths (64 bytes).</param>
    public bool BelongsToKernel(int fd, Span<byte> buffer, Span<byte> proc)
    {
        StatFs fs;
        return Libc.FStatFs(fd, &fs) != 0 || (fs.Type == Libc.PROC_SUPER_MAGIC && ProcfsObjectBelongsToKernel(fd, buffer, proc));
    }

    /// <summary>For <paramref name="fd"/> known to be a procfs object: true when it belongs to a kernel task (or cannot be placed).</summary>
    public bool ProcfsObjectBelongsToKernel(int fd, Span<byte> buffer, Span<byte> proc)
    {
        int length = Supervision.ProcFs.ReadSelfFdLink(fd, proc, buffer);
        long mountId = Libc.MountIdOf(fd);
        MountTable.Mount? mount = mountId < 0 ? null : _mounts.Find(mountId);
        if (length <= 0 || mount is null || !buffer[..length].StartsWith(mount.Point))
        {
            return true;
        }

        // The object's path inside the procfs instance: the mount's root, then what follows its mount point.
        ReadOnlySpan<byte> below = buffer[(mount.Point.Length == 1 ? 0 : mount.Point.Length)..length];
        ReadOnlySpan<byte> first = FirstComponent(mount.Root.Length > 1 ? mount.Root : below);
        int n = Digits(first);
        if (n == 0 || n != first.Length || !Utf8Parser.TryParse(first, out int task, out _))
        {
            return false; // Not below a task's directory: /proc/sys, /proc/meminfo, ...
        }

        if (mount.Device == _procDevice && _procIsOurs)
        {
            return KernelTasks.Includes(task);
        }

        // Another instance (another pid namespace, or another mount of ours): our numbers there come from its "self".
        return mount.Root.Length != 1 || InstanceIncludesKernel(mount.Point, task, proc);
    }

    /// <summary>readlink of "DIR/self" (DIR NUL-terminated): this process's id in that procfs instance, or 0.</summary>
    private static int SelfIn(ReadOnlySpan<byte> directory)
    {
        fixed (byte* d = directory)
        {
            int dir = Libc.OpenAt(Libc.AT_FDCWD, d, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (dir < 0)
            {
                return 0;
            }

            try
            {
                return SelfAt(dir);
            }
            finally
            {
                Libc.CloseOwned(dir);
            }
        }
    }

    private static int SelfAt(int directory)
    {
        byte* link = stackalloc byte[32];
        byte* self = stackalloc byte[] { (byte)'s', (byte)'e', (byte)'l', (byte)'f', 0 };
        nint n = Libc.ReadLinkAt(directory, self, link, 32);
        return n > 0 && Utf8Parser.TryParse(new ReadOnlySpan<byte>(link, (int)n), out int pid, out _) ? pid : 0;
    }

    /// <summary>For the instance mounted (whole) at <paramref name="point"/>: is <paramref name="task"/> the kernel or one of its threads there?</summary>
    private static bool InstanceIncludesKernel(byte[] point, int task, Span<byte> proc)
    {
        Span<byte> path = stackalloc byte[point.Length + 1];
        point.CopyTo(path);
        path[^1] = 0;
        fixed (byte* p = path)
        {
            int dir = Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (dir < 0)
            {
                return true;
            }

            try
            {
                int self = SelfAt(dir);
                if (self == 0)
                {
                    return false; // The kernel is not in that pid namespace: none of its tasks can appear there.
                }

                if (task == self)
                {
                    return true;
                }

                _ = new Supervision.Utf8Builder(proc).Append(self).Append("/task/"u8).Append(task).Append("\0"u8);
                fixed (byte* t = proc)
                {
                    return Libc.FAccessAt(dir, t, 0, Libc.AT_SYMLINK_NOFOLLOW) == 0;
                }
            }
            finally
            {
                Libc.CloseOwned(dir);
            }
        }
    }

    private static ReadOnlySpan<byte> FirstComponent(ReadOnlySpan<byte> path)
    {
        path = path.TrimStart((byte)'/');
        int slash = path.IndexOf((byte)'/');
        return slash < 0 ? path : path[..slash];
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

    private static bool Contains(ReadOnlySpan<byte> text, ReadOnlySpan<byte> part) => text.IndexOf(part) >= 0;

    /// <summary>True when a component of <paramref name="path"/> is "." or ".." (or the path has an empty component).</summary>
    private static bool HasDotComponent(ReadOnlySpan<byte> path)
    {
        while (path.Length > 0)
        {
            path = path[1..];
            int slash = path.IndexOf((byte)'/');
            ReadOnlySpan<byte> component = slash < 0 ? path : path[..slash];
            if (component.Length == 0 || component.SequenceEqual("."u8) || component.SequenceEqual(".."u8))
            {
                return true;
            }

            path = slash < 0 ? default : path[slash..];
        }

        return false;
    }
}
