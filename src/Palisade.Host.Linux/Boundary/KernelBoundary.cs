using System.Runtime.CompilerServices;
using Palisade.Host.Linux.Mediation;
using Palisade.Host.Linux.Supervision;
using Palisade.Interop;
using Palisade.Kernel.Hosting;
using FileIdentity = Palisade.Api.FileIdentity;

namespace Palisade.Host.Linux.Boundary;

/// <summary>How an open is placed with respect to the kernel boundary before it is made.</summary>
internal enum OpenPlan
{
    /// <summary>The path names a kernel task's /proc entry: refused (EACCES) without opening anything.</summary>
    Refuse,

    /// <summary>The path stays inside a guest's /proc entry: nothing to check once opened.</summary>
    Admit,

    /// <summary>Open it on the root mount only (RESOLVE_NO_XDEV); if that succeeds nothing is left to check, else open as
    /// asked and check the object.</summary>
    RootMountFirst,

    /// <summary>Open as asked, then check the object before it is handed over.</summary>
    CheckAfter,
}

/// <summary>What a change to the file system acts on, for <see cref="KernelBoundary.RefusesChange"/>.</summary>
internal enum ChangeKind
{
    /// <summary>The entry itself (unlink, rmdir, either side of a rename): refused on a kernel object or an entry of a kernel folder.</summary>
    Entry,

    /// <summary>The object the path names (chmod, chown, truncate): refused on a kernel file or folder.</summary>
    Object,

    /// <summary>An open that writes, truncates or creates: refused on a kernel file, or in a kernel folder (following links as the open will).</summary>
    Write,
}

/// <summary>
/// The user/kernel boundary, Linux side: what no guest reaches whatever the drivers decide (docs/security.md). The
/// supervisor consults it before the mediator for every call the <see cref="Filtering.SyscallFamilies.KernelBoundary"/>
/// family notifies:
/// <list type="bullet">
/// <item>a call that names the kernel's process or one of its threads (signals, ptrace, cross-process memory, pidfds,
/// perf, kcmp, resource limits, scheduling, NUMA moves) or its process group is refused with EPERM; <c>kill(-1)</c> is
/// performed by the boundary without the kernel (<see cref="EveryProcessSignal"/>); a descriptor's signal is never
/// directed at the kernel (F_SETOWN and its kin);</item>
/// <item>an open that would hand a guest a procfs object of a kernel task is refused with EACCES, however the path was
/// spelled and wherever procfs is mounted (<see cref="ProcfsObjects"/>); a reopen through <c>/proc/PID/fd/N</c> must
/// yield the very object behind the guest's descriptor;</item>
/// <item>no guest changes the kernel's own files (<see cref="KernelFileKind"/>): EPERM, as for an immutable file;</item>
/// <item>no guest connects to a socket the kernel owns, unless it is a port for clients: EACCES.</item>
/// </list>
/// Checks that cannot concern the kernel cost nothing: an absolute open that stays on the root mount is made with
/// RESOLVE_NO_XDEV and needs no check at all.
/// </summary>
internal sealed unsafe class KernelBoundary
{
    /// <summary>From <see cref="DecideProcessCall"/>: kill(-1), which the boundary performs itself.</summary>
    public const int SignalEveryone = -2;

    private const int PtraceTraceme = 0;
    private const int PrioProcess = 0, PrioProcessGroup = 1;
    private const int IoprioWhoProcess = 1, IoprioWhoProcessGroup = 2;
    private const uint PerfFlagPidCgroup = 4;

    private readonly ISyscallMediator _kernel;
    private readonly MountTable _mounts = new();
    private readonly ProcfsObjects _procfs;
    private readonly bool _rootIsOrdinary;
    private const long Cgroup2SuperMagic = 0x63677270;
    private Launch.RunCgroup? _cgroup;

    /// <summary>A boundary for the kernel behind <paramref name="kernel"/> (which says which files are the kernel's).</summary>
    public KernelBoundary(ISyscallMediator kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        _procfs = new ProcfsObjects(_mounts);
        byte* root = stackalloc byte[] { (byte)'/', 0 };
        int fd = Libc.OpenAt(Libc.AT_FDCWD, root, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        StatFs fs;
        _rootIsOrdinary = fd >= 0 && Libc.FStatFs(fd, &fs) == 0 && fs.Type != Libc.PROC_SUPER_MAGIC;
        Libc.CloseOwned(fd);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Processes

    /// <summary>
    /// Decides a call that names another process by a register: 0 to let it go on (to the drivers, then Linux), EPERM
    /// (or EACCES for perf) when it would reach the kernel, or <see cref="SignalEveryone"/> for kill(-1).
    /// </summary>
    public int DecideProcessCall(int nr, ulong a0, ulong a1, ulong a4, int callerThread)
    {
        int first = (int)a0, second = (int)a1;
        switch (nr)
        {
            case Sys.Kill:
                return first == -1 ? SignalEveryone
                    : first > 0 ? Refuse(KernelTasks.Includes(first))
                    : Refuse(KernelTasks.IsKernelGroup(first == 0 ? ProcessGroupOf(callerThread) : -first));
            case Sys.Tkill:
            case Sys.RtSigqueueinfo:
            case Sys.PidfdOpen:
            case Sys.ProcessVmReadv:
            case Sys.ProcessVmWritev:
                return Refuse(KernelTasks.Includes(first));
            case Sys.Tgkill:
            case Sys.RtTgsigqueueinfo:
            case Sys.Kcmp:
                return Refuse(KernelTasks.Includes(first) || KernelTasks.Includes(second));
            case Sys.Ptrace:
                return first == PtraceTraceme ? 0 : Refuse(KernelTasks.Includes(second));
            case Sys.PerfEventOpen:
                // CPU-wide (pid -1) and cgroup-wide events watch whatever runs, the kernel included.
                return second == -1 || ((uint)a4 & PerfFlagPidCgroup) != 0 || KernelTasks.Includes(second) ? Errno.EACCES : 0;
            case Sys.Prlimit64:
            case Sys.GetRobustList:
            case Sys.MovePages:
            case Sys.MigratePages:
            case Sys.SchedSetparam:
            case Sys.SchedSetscheduler:
            case Sys.SchedSetaffinity:
            case Sys.SchedSetattr:
                return Refuse(KernelTasks.Includes(first));
            case Sys.Setpriority:
                return first == PrioProcess ? Refuse(KernelTasks.Includes(second))
                    : first == PrioProcessGroup ? Refuse(KernelTasks.IsKernelGroup(second == 0 ? ProcessGroupOf(callerThread) : second))
                    : 0;
            case Sys.IoprioSet:
                return first == IoprioWhoProcess ? Refuse(KernelTasks.Includes(second))
                    : first == IoprioWhoProcessGroup ? Refuse(KernelTasks.IsKernelGroup(second == 0 ? ProcessGroupOf(callerThread) : second))
                    : 0;
            case Sys.Setpgid:
                // Joining the kernel's process group would put the kernel in the guest's kill(0) and F_SETOWN(-pgrp).
                return Refuse(KernelTasks.Includes(first) || KernelTasks.IsKernelGroup(second));
            default:
                return 0;
        }
    }

    /// <summary>
    /// For a descriptor's signal owner (F_SETOWN's argument: a pid, or minus a process group): EPERM when the signal would
    /// go to the kernel, else 0.
    /// </summary>
    public static int DecideSignalOwner(int owner) =>
        owner > 0 ? Refuse(KernelTasks.Includes(owner)) : owner < 0 ? Refuse(KernelTasks.IsKernelGroup(-owner)) : 0;

    // ---------------------------------------------------------------------------------------------------------------
    // Opens

    /// <summary>
    /// Places an open before it is made. <paramref name="path"/> is the absolute form the supervisor computed;
    /// <paramref name="fromRoot"/> is true when the open itself resolves that absolute path from the root (false when it
    /// resolves a relative path from the guest's directory).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public OpenPlan PlanOpen(ReadOnlySpan<byte> path, bool fromRoot, bool descriptorLink, int guestProcess, int guestThread)
    {
        int text = _procfs.ClassifyText(path, guestProcess, guestThread);
        if (text > 0)
        {
            return OpenPlan.Refuse;
        }

        if (descriptorLink || !fromRoot)
        {
            return OpenPlan.CheckAfter;
        }

        if (text == 0)
        {
            return OpenPlan.Admit;
        }

        return _rootIsOrdinary && !_mounts.MayCross(path) ? OpenPlan.RootMountFirst : OpenPlan.CheckAfter;
    }

    /// <summary>
    /// Checks a file the supervisor opened for a guest before it is handed over: 0, or EACCES when it is a procfs object of
    /// a kernel task; for a reopen of the guest's descriptor (<paramref name="link"/>), ELOOP when that descriptor is a
    /// symbolic link (as Linux answers) and EACCES when what was opened is not the object behind it.
    /// </summary>
    public int CheckOpened(int fd, in DescriptorLink link, bool writes, Scratch s)
    {
        StatFs fs;
        if (Libc.FStatFs(fd, &fs) != 0)
        {
            return Errno.EACCES;
        }

        if (fs.Type == Libc.PROC_SUPER_MAGIC && _procfs.ProcfsObjectBelongsToKernel(fd, s.Resolved, s.Proc2))
        {
            return Errno.EACCES;
        }

        if (fs.Type == Cgroup2SuperMagic && writes && _cgroup is not null && MovesOutOfTheRun(fd, s))
        {
            return Errno.EPERM;
        }

        return link.Fd >= 0 ? link.Verify(fd) : 0;
    }

    /// <summary>The run's cgroup, which no guest may leave (see <see cref="Launch.RunCgroup"/>).</summary>
    public void ConfineTo(Launch.RunCgroup cgroup) => _cgroup = cgroup;

    /// <summary>
    /// True for a cgroup.procs or cgroup.threads file (opened for writing) of a cgroup outside the run's: writing a pid
    /// there would move a guest out of the run's cgroup.
    /// </summary>
    private bool MovesOutOfTheRun(int fd, Scratch s)
    {
        int length = ProcFs.ReadSelfFdLink(fd, s.Proc2, s.Resolved);
        if (length <= 0)
        {
            return true;
        }

        ReadOnlySpan<byte> path = s.Resolved.AsSpan(0, length);
        int slash = path.LastIndexOf((byte)'/');
        ReadOnlySpan<byte> name = path[(slash + 1)..];
        if (!name.SequenceEqual("cgroup.procs"u8) && !name.SequenceEqual("cgroup.threads"u8))
        {
            return false;
        }

        s.Resolved[slash <= 0 ? 1 : slash] = 0;
        fixed (byte* folder = s.Resolved)
        {
            int directory = Libc.OpenAt(Libc.AT_FDCWD, folder, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            try
            {
                return directory < 0 || !_cgroup!.Contains(directory);
            }
            finally
            {
                Libc.CloseOwned(directory);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // The kernel's own files

    /// <summary>
    /// 0, or EPERM when a change (<paramref name="kind"/>) to <paramref name="pathWithNul"/> relative to
    /// <paramref name="baseFd"/> would touch the kernel's own files. <paramref name="follow"/>: the operation follows a
    /// final symbolic link. Two stats in the common case; a followed link costs a readlink more per link.
    /// </summary>
    public int RefusesChange(int baseFd, ReadOnlySpan<byte> pathWithNul, ChangeKind kind, bool follow, Scratch s)
    {
        ReadOnlySpan<byte> path = pathWithNul[..^1];
        Stat st;
        bool exists = StatAt(baseFd, pathWithNul, follow && kind != ChangeKind.Entry ? 0 : Libc.AT_SYMLINK_NOFOLLOW, &st);
        if (exists)
        {
            KernelFileKind k = KindOf(in st);
            if (k is KernelFileKind.File or KernelFileKind.Folder or KernelFileKind.ClientPort
                || (k == KernelFileKind.Ancestor && kind == ChangeKind.Entry))
            {
                return Errno.EPERM;
            }
        }

        if (kind == ChangeKind.Object)
        {
            return 0;
        }

        // The folder the entry is in (for a write through links: the folder of the last link's target).
        int dirLength = kind == ChangeKind.Write && follow ? FinalEntry(baseFd, path, s.Resolved, out baseFd) : Parent(path, s.Resolved);
        if (dirLength < 0)
        {
            return Errno.EPERM; // A link chain too long to follow: Linux fails it too (ELOOP); refuse before opening.
        }

        s.Resolved[dirLength] = 0;
        return StatAt(baseFd, s.Resolved.AsSpan(0, dirLength + 1), 0, &st) && KindOf(in st) == KernelFileKind.Folder ? Errno.EPERM : 0;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Sockets

    /// <summary>0, or EACCES when the socket file behind <paramref name="socketFile"/> (an O_PATH descriptor) is the kernel's and not a port for clients.</summary>
    public int RefusesSocket(int socketFile, ReadOnlySpan<byte> parentWithNul, int parentBase)
    {
        Stat st;
        if (Libc.FStat(socketFile, &st) != 0)
        {
            return 0;
        }

        KernelFileKind k = KindOf(in st);
        if (k == KernelFileKind.ClientPort)
        {
            return 0;
        }

        if (k != KernelFileKind.None)
        {
            return Errno.EACCES;
        }

        return StatAt(parentBase, parentWithNul, 0, &st) && KindOf(in st) == KernelFileKind.Folder ? Errno.EACCES : 0;
    }

    /// <summary>0, or EPERM when the file behind <paramref name="fd"/> (a guest's descriptor a change call acts on) is one of the kernel's files or folders.</summary>
    public int RefusesChangeOn(int fd)
    {
        Stat st;
        return Libc.FStat(fd, &st) == 0 && KindOf(in st) is KernelFileKind.File or KernelFileKind.Folder ? Errno.EPERM : 0;
    }

    private KernelFileKind KindOf(in Stat st) => _kernel.KernelFileKindOf(new FileIdentity(st.Dev, st.Ino));

    private static int Refuse(bool reachesKernel) => reachesKernel ? Errno.EPERM : 0;

    private static bool StatAt(int baseFd, ReadOnlySpan<byte> pathWithNul, int flags, Stat* st)
    {
        if (pathWithNul.Length <= 1)
        {
            return false; // An empty path names nothing (the call fails with ENOENT on its own).
        }

        fixed (byte* p = pathWithNul)
        {
            return Libc.FStatAt(baseFd, p, st, flags) == 0;
        }
    }

    /// <summary>Writes the folder part of <paramref name="path"/> ("." when it has none) into <paramref name="into"/>; its length.</summary>
    internal static int Parent(ReadOnlySpan<byte> path, Span<byte> into)
    {
        path = path.TrimEnd((byte)'/');
        int slash = path.LastIndexOf((byte)'/');
        ReadOnlySpan<byte> folder = slash < 0 ? "."u8 : slash == 0 ? "/"u8 : path[..slash];
        folder.CopyTo(into);
        return folder.Length;
    }

    /// <summary>
    /// Follows a final symbolic link chain of <paramref name="path"/> (relative to <paramref name="baseFd"/>) as an open
    /// would, and writes the folder of the last entry into <paramref name="into"/>; its length (the folder is relative to
    /// <paramref name="folderBase"/>), or -1 after 40 links.
    /// </summary>
    private static int FinalEntry(int baseFd, ReadOnlySpan<byte> path, Span<byte> into, out int folderBase)
    {
        folderBase = baseFd;
        Span<byte> current = stackalloc byte[Scratch.PathMax + 1];
        Span<byte> target = stackalloc byte[Scratch.PathMax + 1];
        if (path.Length > Scratch.PathMax)
        {
            return Parent(path, into);
        }

        path.CopyTo(current);
        int length = path.Length;
        for (int links = 0; links < 40; links++)
        {
            current[length] = 0;
            nint n;
            fixed (byte* c = current)
            fixed (byte* t = target)
            {
                n = Libc.ReadLinkAt(baseFd, c, t, (nuint)Scratch.PathMax);
            }

            if (n <= 0)
            {
                return Parent(current[..length], into); // Not a link (or gone): this is the entry.
            }

            // A relative target is relative to the link's folder.
            if (target[0] == (byte)'/')
            {
                target[..(int)n].CopyTo(current);
                length = (int)n;
                folderBase = Libc.AT_FDCWD;
                baseFd = Libc.AT_FDCWD;
            }
            else
            {
                int folder = Parent(current[..length], into);
                if (folder + 1 + n > Scratch.PathMax)
                {
                    return -1;
                }

                into[..folder].CopyTo(current);
                current[folder] = (byte)'/';
                target[..(int)n].CopyTo(current[(folder + 1)..]);
                length = folder + 1 + (int)n;
            }
        }

        return -1;
    }

    private static int ProcessGroupOf(int thread)
    {
        long group = Libc.Syscall(Sys.Getpgid, thread, 0, 0, 0, 0, 0);
        return group < 0 ? 0 : (int)group;
    }
}

/// <summary>
/// A reopen of a guest's descriptor through <c>/proc/PID/fd/N</c> (or <c>/proc/PID/task/TID/fd/N</c>): what it must
/// yield is the object behind that descriptor, read through the supervisor's own copy of it (pidfd_getfd), so that no
/// chain of magic links (a descriptor of a link into the kernel's own <c>/proc/PID/fd</c>) reaches anything else.
/// </summary>
internal readonly record struct DescriptorLink(int Process, int Thread, int Fd)
{
    /// <summary>No descriptor link.</summary>
    public static DescriptorLink None => new(0, 0, -1);

    /// <summary>0 when <paramref name="opened"/> is the object behind the guest's descriptor; ELOOP for a descriptor of a link; EACCES otherwise.</summary>
    public unsafe int Verify(int opened)
    {
        int pidfd = (int)Libc.Syscall(Sys.PidfdOpen, Thread > 0 ? Thread : Process, Thread > 0 ? Pidfd.PIDFD_THREAD : 0, 0, 0, 0, 0);
        if (pidfd < 0)
        {
            return Errno.EACCES;
        }

        int copy = (int)Libc.Syscall(Sys.PidfdGetfd, pidfd, Fd, 0, 0, 0, 0);
        Libc.CloseOwned(pidfd);
        if (copy < 0)
        {
            return Errno.EACCES;
        }

        try
        {
            Stat theirs, ours;
            if (Libc.FStat(copy, &theirs) != 0 || Libc.FStat(opened, &ours) != 0)
            {
                return Errno.EACCES;
            }

            if ((theirs.Mode & Libc.S_IFMT) == Libc.S_IFLNK)
            {
                return Errno.ELOOP;
            }

            return theirs.Dev == ours.Dev && theirs.Ino == ours.Ino ? 0 : Errno.EACCES;
        }
        finally
        {
            Libc.CloseOwned(copy);
        }
    }
}
