using System.Runtime.CompilerServices;
using Palisade.Interop;
using Palisade.Host.Linux.Supervision;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// Makes the calling supervisor thread act as a guest thread for the length of one operation, and come back: the
/// guest's root directory (and with it its mount namespace), then its credentials (file-system uid and gid,
/// supplementary groups, effective capabilities), each changed on this thread only with the raw system calls, and
/// only where it differs from what the thread has. A thread whose credentials equal the guest's changes nothing: the
/// cost of acting for a guest with the supervisor's own credentials and root is one reference comparison.
/// </summary>
/// <remarks>
/// <para>
/// Every <see cref="Enter"/> is paired with a <see cref="Leave"/> in a finally block (<see cref="GuestAction"/> does
/// this), so kernel and driver code always runs with the kernel's credentials and root, and a thread that acted for one
/// guest never acts for another without switching: <see cref="Enter"/> compares against what the thread really holds,
/// not against what it was last asked for. A thread that cannot come back (a failed restore: the supervisor lost a
/// capability it had) marks itself tainted and refuses to act for any guest from then on.
/// </para>
/// <para>
/// The root is taken with chroot on a thread whose fs context is its own (<see cref="Prepare"/>): chroot("/proc/TID/root")
/// follows the guest's root link, which names a directory in the guest's mount namespace, so every later lookup from
/// that root (absolute paths, absolute symlinks, "..", mounts crossed on the way) is the guest's, exactly as Linux
/// resolves them for the guest. Only the lookup runs in that window; the supervisor's own /proc work happens outside it.
/// </para>
/// <para>
/// The umask is set on the thread's private fs context when a creating operation needs the guest's, and left so (it
/// only ever narrows the mode of files created on this thread); the guest's mode is passed unmasked so that Linux
/// applies umask or a default ACL exactly as it would for the guest.
/// </para>
/// </remarks>
internal static unsafe class ActingThread
{
    /// <summary>What this thread acts with now; null until it first acted (the kernel's).</summary>
    [ThreadStatic]
    private static ActingCredentials? t_acting;

    [ThreadStatic]
    private static bool t_rooted;

    [ThreadStatic]
    private static bool t_privateFs;

    /// <summary>The thread's umask plus one; 0 when unknown.</summary>
    [ThreadStatic]
    private static uint t_umaskPlusOne;

    [ThreadStatic]
    private static bool t_tainted;

    private static readonly int KernelRootFd = OpenKernelRoot();

    /// <summary>True when this thread's cwd, root and umask are its own (see <see cref="Prepare"/>).</summary>
    public static bool HasPrivateFs => t_privateFs;

    /// <summary>The credentials this thread acts with now.</summary>
    public static ActingCredentials Current => t_acting ?? ActingCredentials.Kernel;

    /// <summary>True while this thread is inside the guest's root.</summary>
    public static bool InGuestRoot => t_rooted;

    /// <summary>
    /// Gives the calling thread its own cwd, root and umask (unshare CLONE_FS) and a zero umask, so that it can take a
    /// guest's root and umask without touching the rest of the process. Call once, on a thread that acts for guests.
    /// </summary>
    public static void Prepare()
    {
        _ = ActingCredentials.Kernel;
        if (t_privateFs || Libc.Unshare(Libc.CLONE_FS) != 0)
        {
            return;
        }

        // A new thread shares its creator's fs context until it unshares it, and its creator may have taken a guest's
        // root meanwhile: start from the kernel's root whatever was copied (without CAP_SYS_CHROOT no thread takes a
        // guest's root, and this fails harmlessly).
        _ = ThreadCredentials.ChangeRoot(KernelRootFd);
        _ = ThreadCredentials.SetUmask(0);
        t_umaskPlusOne = 1;
        t_privateFs = true;
    }

    /// <summary>
    /// Takes <paramref name="guest"/>'s root and credentials on this thread. Returns 0, or the errno the guest's call
    /// gets when the supervisor cannot act for it (EPERM). <see cref="Leave"/> must follow in every case, including a
    /// failure here (it undoes what was done).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Enter(GuestAuthority guest, bool inGuestRoot = true)
    {
        if (t_tainted)
        {
            return Errno.EPERM;
        }

        if (inGuestRoot && !guest.KernelRoot)
        {
            int rooted = EnterRoot(guest.Requester.ThreadId);
            if (rooted != 0)
            {
                return rooted;
            }
        }

        ActingCredentials current = Current;
        return ReferenceEquals(guest.Acting, current) ? 0 : Switch(current, guest.Acting);
    }

    /// <summary>Comes back to the kernel's credentials and root (nothing to do when they never changed).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Leave()
    {
        ActingCredentials current = Current;
        if (!ReferenceEquals(current, ActingCredentials.Kernel) && Switch(current, ActingCredentials.Kernel) != 0)
        {
            t_tainted = true;
        }

        if (t_rooted)
        {
            if (ThreadCredentials.ChangeRoot(KernelRootFd) != 0)
            {
                t_tainted = true;
                return;
            }

            t_rooted = false;
        }
    }

    /// <summary>Gives this thread the umask <paramref name="mask"/> (for an operation that creates); false without a private fs context.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool UseUmask(uint mask)
    {
        if (!t_privateFs)
        {
            return false;
        }

        if (t_umaskPlusOne != mask + 1)
        {
            _ = ThreadCredentials.SetUmask(mask);
            t_umaskPlusOne = mask + 1;
        }

        return true;
    }

    private static int EnterRoot(int tid)
    {
        if (!t_privateFs)
        {
            return Errno.EPERM;
        }

        Span<byte> path = stackalloc byte[48];
        ProcFs.Format(path, tid, "root"u8);
        fixed (byte* p = path)
        {
            int error = ThreadCredentials.ChangeRoot(p);
            if (error != 0)
            {
                // The guest is gone (ENOENT), or the supervisor may not chroot (no CAP_SYS_CHROOT): refuse rather than
                // resolve in the supervisor's root.
                return error == Errno.ENOENT ? Errno.ESRCH : Errno.EPERM;
            }
        }

        t_rooted = true;
        return 0;
    }

    /// <summary>Moves this thread from <paramref name="from"/> to <paramref name="to"/>; 0 or the errno (EPERM).</summary>
    private static int Switch(ActingCredentials from, ActingCredentials to)
    {
        ActingCredentials kernel = ActingCredentials.Kernel;
        if (!ReferenceEquals(from, kernel))
        {
            // Back to the kernel's first, capabilities before ids: they are what allow the other changes. Only the
            // parts that differ were ever changed, so only those come back. The ids come back to the kernel's own,
            // which Linux always allows, so they are not read back: a thread that somehow kept a guest's would act
            // with less than the kernel's authority, never more.
            bool uid = from.FileSystemUser != kernel.FileSystemUser, gid = from.FileSystemGroup != kernel.FileSystemGroup;
            if ((from.Effective != kernel.Effective || uid)
                && ThreadCredentials.SetCapabilities(kernel.Effective, ActingCredentials.KernelPermitted, ActingCredentials.KernelInheritable) != 0)
            {
                return Taint();
            }

            ThreadCredentials.RestoreFileSystemIds(kernel.FileSystemUser, kernel.FileSystemGroup, uid, gid);
            if (!from.SameGroups(kernel) && ThreadCredentials.SetGroups(kernel.Groups) != 0)
            {
                return Taint();
            }

            t_acting = kernel;
        }

        if (ReferenceEquals(to, kernel))
        {
            return 0;
        }

        // Groups and gid while the capabilities to change them are still effective, the uid (which drops the
        // file-system capabilities when it leaves 0), then exactly the guest's effective set.
        t_acting = to; // from here on the thread may hold a mix: Leave restores every part that differs
        bool changesUid = to.FileSystemUser != kernel.FileSystemUser;
        if ((!to.SameGroups(kernel) && ThreadCredentials.SetGroups(to.Groups) != 0)
            || (to.FileSystemGroup != kernel.FileSystemGroup && !ThreadCredentials.SetFileSystemGroup(to.FileSystemGroup))
            || (changesUid && !ThreadCredentials.SetFileSystemUser(to.FileSystemUser))
            || ((changesUid || to.Effective != kernel.Effective)
                && ThreadCredentials.SetCapabilities(to.Effective & ActingCredentials.KernelPermitted, ActingCredentials.KernelPermitted, ActingCredentials.KernelInheritable) != 0))
        {
            return Errno.EPERM;
        }

        return 0;
    }

    /// <summary>The thread cannot come back to the kernel's credentials: it refuses every guest from now on.</summary>
    private static int Taint()
    {
        t_acting = null;
        t_tainted = true;
        return Errno.EPERM;
    }

    private static int OpenKernelRoot()
    {
        byte* root = stackalloc byte[2];
        root[0] = (byte)'/';
        root[1] = 0;
        return Libc.OpenAt(Libc.AT_FDCWD, root, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
    }
}
