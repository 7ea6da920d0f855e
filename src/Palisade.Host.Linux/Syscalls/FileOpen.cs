using System.Runtime.CompilerServices;
using Palisade.Interop;
using Palisade.Host.Linux.Authority;
using Palisade.Host.Linux.Mediation;
using Palisade.Api;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Syscalls;


namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// open, openat, openat2, creat. The supervisor opens the file itself, as the guest (<see cref="GuestAction"/>: its
/// credentials, root and umask) with the guest's flags, so Linux checks permissions and validates flags exactly as for
/// the guest, and a FIFO or a leased file waits exactly as it would for the guest (see <see cref="ReceiverWatch"/>); then it
/// injects the descriptor with SECCOMP_IOCTL_NOTIF_ADDFD | SEND: the guest gets the very file that the pre and post
/// decisions saw. When a driver held the open on a file (<see cref="HeldCreates"/>), the guest's file is opened, as the
/// guest, through the descriptor of the file decided on. The kernel boundary decides first (<see cref="Boundary.KernelBoundary"/>).
/// </summary>
internal sealed unsafe partial class Supervisor
{

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    /// <summary>openat2 as the guest, with its umask for a file it creates.</summary>
    private struct OpenAction : IGuestAction
    {
        public int Directory;
        public byte* Path;
        public OpenHow* How;
        public uint Umask;
        public bool Creates;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly long Run()
        {
            if (Creates && !ActingThread.UseUmask(Umask))
            {
                // No private fs context: apply the umask by hand (a default ACL then loses to it).
                How->Mode &= ~(ulong)Umask;
            }

            long fd = Libc.Syscall(Sys.Openat2, Directory, (long)Path, (long)How, Libc.OPEN_HOW_SIZE_VER0, 0, 0);
            return fd < 0 ? -Libc.LastError : fd;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void HandleOpen(in SeccompNotif n, SupervisedThread thread, Scratch s)
    {
        int tid = (int)n.Pid;
        int nr = n.Data.Nr;
        ulong arg0 = n.Data.Args[0], arg1 = n.Data.Args[1], arg2 = n.Data.Args[2], arg3 = n.Data.Args[3];

        var call = nr switch { Sys.Open => OpenVariant.Open, Sys.Openat => OpenVariant.OpenAt, Sys.Openat2 => OpenVariant.OpenAt2, _ => OpenVariant.Creat };
        int dirfd = call is OpenVariant.OpenAt or OpenVariant.OpenAt2 ? (int)arg0 : Libc.AT_FDCWD;
        ulong pathAddress = call is OpenVariant.OpenAt or OpenVariant.OpenAt2 ? arg1 : arg0;
        var how = default(OpenHow);
        switch (call)
        {
            case OpenVariant.Open:
                how.Flags = (uint)arg1;
                how.Mode = (uint)arg2;
                break;
            case OpenVariant.OpenAt:
                how.Flags = (uint)arg2;
                how.Mode = (uint)arg3;
                break;
            case OpenVariant.Creat:
                how.Flags = Libc.O_CREAT | Libc.O_WRONLY | Libc.O_TRUNC;
                how.Mode = (uint)arg1;
                break;
            default:
                int howError = ReadOpenHow(ref thread, n.Id, arg2, arg3, s, ref how);
                if (howError != 0)
                {
                    Reply(n.Id, howError);
                    return;
                }

                break;
        }

        int pathLength = ReadGuestPath(ref thread, n.Id, pathAddress, s.Path, s);
        if (pathLength < 0)
        {
            Reply(n.Id, -pathLength);
            return;
        }

        Requester requester = thread.Requester with { CallId = n.Id };

        // The path was read by pid: an open that can change the file system first checks that the thread that asked still
        // waits, so the path is not another process's that reused its pid. A read-only open needs no such check: only that
        // very thread can receive the descriptor (ADDFD fails once it is gone), and a recycled pid would at worst give a
        // decision and an open that nobody receives. See docs/security.md.
        if (CanModify((int)how.Flags) && !StillWaiting(n.Id))
        {
            return;
        }

        var path = s.Path.AsSpan(0, pathLength + 1);

        // RESOLVE_BENEATH and RESOLVE_IN_ROOT anchor even an absolute path at dirfd: keep the guest's dirfd as base.
        bool anchored = (how.Resolve & (Libc.RESOLVE_BENEATH | Libc.RESOLVE_IN_ROOT)) != 0;
        int baseFd = anchored ? ProcFs.OpenGuestDirectory(tid, dirfd, s.Proc) : PathResolution.OpenBase(tid, dirfd, path[..^1], s.Proc);
        if (baseFd < 0 && baseFd != Libc.AT_FDCWD)
        {
            Reply(n.Id, -baseFd);
            return;
        }

        GuestFileFacts names = s.Names.Begin(thread.Authority);
        int descriptor = -1;
        try
        {
            int absoluteLength = PathResolution.Absolute(baseFd, path[..^1], s.Proc, s.Absolute);
            absoluteLength = RewriteSelf(thread, s.Absolute, absoluteLength, s, out bool rewritten);
            int guestFlags = (int)how.Flags;
            bool inGuestRoot = true;
            FileObjectFacts facts = names;
            byte[] pathBuffer = s.Path;
            int nameLength = pathLength;
            if (rewritten)
            {
                // The path named the guest itself (/proc/self, /dev/fd, ...): open the rewritten absolute path.
                PathResolution.CloseBase(baseFd);
                baseFd = Libc.AT_FDCWD;
                s.Absolute[absoluteLength] = 0;
                path = s.Absolute.AsSpan(0, absoluteLength + 1);
                (pathBuffer, nameLength) = (s.Absolute, absoluteLength);
                if (PathResolution.TryDescriptorNumber(s.Absolute.AsSpan(0, absoluteLength), out int guestFd))
                {
                    // One of its own descriptors: reopen the very file behind it, as Linux does for the guest's own
                    // /proc/self/fd/N (a process may always look at itself), through the supervisor's copy of it. The
                    // decision is on that file.
                    descriptor = TakeGuestFd(thread.Process, guestFd);
                    if (descriptor < 0)
                    {
                        Reply(n.Id, descriptor == -Errno.EBADF ? Errno.ENOENT : -descriptor);
                        return;
                    }

                    facts = s.Reopened.Set(descriptor);
                    ProcFs.FormatSelfFd(s.Directory, descriptor);
                    path = s.Directory.AsSpan(0, s.Directory.AsSpan().IndexOf((byte)0) + 1);
                    inGuestRoot = false;
                }
            }

            if (descriptor < 0)
            {
                bool exclusiveCreate = (guestFlags & (Libc.O_CREAT | Libc.O_EXCL)) == (Libc.O_CREAT | Libc.O_EXCL);
                bool follow = (guestFlags & Libc.O_NOFOLLOW) == 0 && !exclusiveCreate;
                names.SetName(baseFd, pathBuffer, nameLength, follow, (guestFlags & Libc.O_CREAT) != 0 ? FileObjectType.Regular : FileObjectType.None, how.Resolve);
            }

            // Magic links (/proc/PID/fd/N, /proc/self/...) would resolve in the supervisor: allow only one
            // naming a guest's descriptor as the last component; refuse (ELOOP) any other on the way.
            bool descriptorLink = PathResolution.TryParseDescriptorLink(s.Absolute.AsSpan(0, absoluteLength), out Boundary.DescriptorLink link);
            ulong resolve = how.Resolve;
            if (descriptor < 0 && !descriptorLink)
            {
                resolve |= Libc.RESOLVE_NO_MAGICLINKS;
            }

            // The kernel boundary first, whatever the drivers would say: no kernel task's /proc entry, no write to the
            // kernel's own files (docs/security.md).
            Boundary.OpenPlan plan = Boundary.OpenPlan.Admit;
            if (_boundary is not null)
            {
                int refusal;
                if (descriptor >= 0)
                {
                    // A reopen of the guest's own descriptor, through the supervisor's copy: what it opens is checked.
                    refusal = CanModify(guestFlags) ? _boundary.RefusesChangeOn(descriptor) : 0;
                    (plan, descriptorLink) = (Boundary.OpenPlan.CheckAfter, false);
                }
                else
                {
                    refusal = BoundaryBeforeOpen(baseFd, path, absoluteLength, guestFlags, rewritten, descriptorLink, requester, s, ref plan);
                }

                if (refusal != 0)
                {
                    Reply(n.Id, refusal);
                    return;
                }
            }

            var request = new OpenCall
            {
                Call = call,
                Path = s.Absolute.AsSpan(0, absoluteLength),
                Flags = guestFlags,
                Mode = (uint)how.Mode,
                Resolve = how.Resolve,
                Facts = facts,
            };

            int decision = ISyscallMediator.AllowWithoutPost;
            int held = -1;
            if ((_families & SyscallFamilies.FileOpen) != 0)
            {
                // Should a driver hold this open, the file it holds it on is opened, as the guest, as this open will
                // resolve its path.
                HeldCreates.Prepare(baseFd, pathBuffer, path.Length, guestFlags, resolve, thread.Authority, inGuestRoot);
                decision = _mediator.PreOpen(requester, request);
                HeldCreates.Clear();
                held = decision == 0 || decision == ISyscallMediator.AllowWithoutPost ? _mediator.TakeHeldFile() : -1;
            }

            if (decision != 0 && decision != ISyscallMediator.AllowWithoutPost)
            {
                Reply(n.Id, decision);
                return;
            }

            bool post = decision == 0 && (_families & SyscallFamilies.FileOpenPost) != 0;

            if ((guestFlags & Libc.O_PATH) != 0)
            {
                // Linux cannot inject an O_PATH descriptor (ADDFD refuses it): let the guest's own call run.
                // An O_PATH descriptor gives no access to data; see docs/security.md.
                Continue(n.Id);
                return;
            }

            if (!thread.Authority.InitialUserNamespace && PathResolution.IsOpenerNamespaceFile(s.Absolute.AsSpan(0, absoluteLength)))
            {
                // What this file does depends on the user namespace of whoever opened it (an id map is written by
                // its opener's namespace, /dev/fuse mounts in it), and the supervisor's threads cannot be in the
                // guest's: the guest opens it itself, with its own authority. See docs/security.md.
                Continue(n.Id);
                return;
            }

            bool creates = (guestFlags & Libc.O_CREAT) != 0 || (guestFlags & Libc.O_TMPFILE) == Libc.O_TMPFILE;
            var ours = how;
            if (call != OpenVariant.OpenAt2)
            {
                // open/openat ignore unknown flags and a mode without O_CREAT; openat2 (used for all) would not.
                ours.Flags &= Libc.VALID_OPEN_FLAGS;
                ours.Mode = creates ? ours.Mode & 0xfff : 0;
            }

            ours.Resolve = resolve;
            if (held >= 0)
            {
                // The held file was resolved when it was held, not confined to the root mount: check what was opened.
                if (plan == Boundary.OpenPlan.RootMountFirst)
                {
                    plan = Boundary.OpenPlan.CheckAfter;
                }

                ours.Flags |= Libc.O_CLOEXEC | Libc.O_NOCTTY;
                AfterOpen(n.Id, requester, in request, OpenHeld(held, thread.Authority, ref ours, creates, s), post, plan, descriptorLink, in link, guestFlags, CreateResult.Opened, s);
                return;
            }

            int openFrom = baseFd;
            if (names.HasParent && how.Resolve == 0)
            {
                // A filter looked at the object: open the last component in the very directory it saw.
                int parent = names.ParentOf();
                if (parent < 0 && parent != Libc.AT_FDCWD)
                {
                    Reply(n.Id, -parent);
                    return;
                }

                openFrom = parent;
                path = path[names.NameAt()..];

                // The directory was resolved through whatever links the path holds: it may be on any mount.
                if (plan == Boundary.OpenPlan.RootMountFirst)
                {
                    plan = Boundary.OpenPlan.CheckAfter;
                }
            }

            ours.Flags |= Libc.O_CLOEXEC | Libc.O_NOCTTY;
            int fd;
            CreateResult result;
            if (post && (guestFlags & (Libc.O_CREAT | Libc.O_EXCL)) == Libc.O_CREAT && (guestFlags & Libc.O_TMPFILE) != Libc.O_TMPFILE)
            {
                // A post callback is told whether the open created the file, which Linux does not say: learn it.
                fd = OpenLearningCreation(thread.Authority, openFrom, path, ref ours, inGuestRoot, ref plan, out result);
            }
            else
            {
                fd = OpenOnReceiver(thread.Authority, openFrom, path, ref ours, creates, inGuestRoot, ref plan);
                result = (guestFlags & (Libc.O_CREAT | Libc.O_EXCL)) == (Libc.O_CREAT | Libc.O_EXCL) || (guestFlags & Libc.O_TMPFILE) == Libc.O_TMPFILE
                    ? CreateResult.Created : CreateResult.Opened;
            }

            AfterOpen(n.Id, requester, in request, fd, post, plan, descriptorLink, in link, guestFlags, result, s);
        }
        finally
        {
            Libc.CloseOwned(descriptor);
            names.End();
            PathResolution.CloseBase(baseFd);
        }
    }

    /// <summary>
    /// Opens as an <c>O_CREAT</c> open without <c>O_EXCL</c> does, and learns whether it created the file (see
    /// <see cref="FileOperation.CreateResult"/>): an exclusive create first (it succeeds only when this open makes the file),
    /// and on <c>EEXIST</c> an open without <c>O_CREAT</c> (which cannot make it). A name that vanished in between is tried
    /// once more; then (a dangling symbolic link, or a name that keeps coming and going) the guest's own flags are used and
    /// the result is <see cref="CreateResult.Unknown"/>. Every error the guest's own open would get is the error returned:
    /// an exclusive create fails as the plain one would, except on an existing name (EEXIST, which is not returned), and
    /// the open without <c>O_CREAT</c> of an existing name fails as the plain one would, except that it can open a
    /// directory, which <see cref="AfterOpen"/> refuses with the plain open's EISDIR. The kernel boundary's plan is
    /// restored before each attempt, so that what one attempt settled never admits another's path.
    /// </summary>
    private int OpenLearningCreation(GuestAuthority guest, int baseFd, ReadOnlySpan<byte> pathWithNul, ref OpenHow how, bool inGuestRoot, ref Boundary.OpenPlan plan, out CreateResult result)
    {
        OpenHow asked = how;
        Boundary.OpenPlan planned = plan;
        for (int attempt = 0; attempt < 2; attempt++)
        {
            (how, plan) = (asked, planned);
            how.Flags |= Libc.O_EXCL;
            int fd = OpenOnReceiver(guest, baseFd, pathWithNul, ref how, creates: true, inGuestRoot, ref plan);
            if (fd != -Errno.EEXIST)
            {
                result = CreateResult.Created;
                return fd;
            }

            (how, plan) = (asked, planned);
            how.Flags &= ~(ulong)Libc.O_CREAT;
            how.Mode = 0; // openat2 refuses a mode without O_CREAT
            fd = OpenOnReceiver(guest, baseFd, pathWithNul, ref how, creates: false, inGuestRoot, ref plan);
            if (fd != -Errno.ENOENT)
            {
                result = CreateResult.Opened;
                return fd;
            }
        }

        (how, plan) = (asked, planned);
        result = CreateResult.Unknown;
        return OpenOnReceiver(guest, baseFd, pathWithNul, ref how, creates: true, inGuestRoot, ref plan);
    }

    /// <summary>
    /// After the open (<paramref name="fd"/>, or -errno): the kernel boundary's check of what was opened when its plan
    /// asks for one, the identity for the post decision, then <see cref="FinishOpen"/>. Consumes <paramref name="fd"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AfterOpen(ulong id, Requester requester, in OpenCall request, int fd, bool post, Boundary.OpenPlan plan, bool descriptorLink, in Boundary.DescriptorLink link, int guestFlags, CreateResult result, Scratch s)
    {
        if (fd < 0)
        {
            Reply(id, -fd);
            return;
        }

        if (plan == Boundary.OpenPlan.CheckAfter && _boundary!.CheckOpened(fd, descriptorLink ? link : Boundary.DescriptorLink.None, (guestFlags & Libc.O_ACCMODE) != Libc.O_RDONLY, s) is int refused and not 0)
        {
            Libc.CloseOwned(fd);
            Reply(id, refused);
            return;
        }

        // The identity is for the post decision only: an open that needs none saves the system call. One statx gives the
        // identity, the type, the change stamp and the mount (whose file system is then known without an fstatfs).
        StatxBuffer stat = default;
        if (post && FileFacts.StatxOf(fd, PostStatxMask, out stat) is int failed and not 0)
        {
            Libc.CloseOwned(fd);
            Reply(id, failed);
            return;
        }

        if (post)
        {
            bool directory = (stat.Mode & Libc.S_IFMT) == Libc.S_IFDIR;
            if (directory && (guestFlags & Libc.O_CREAT) != 0)
            {
                // Only the open without O_CREAT of OpenLearningCreation opens a directory here; Linux refuses O_CREAT on one.
                Libc.CloseOwned(fd);
                Reply(id, Errno.EISDIR);
                return;
            }

            if (result == CreateResult.Opened && (guestFlags & Libc.O_TRUNC) != 0 && (stat.Mode & Libc.S_IFMT) == Libc.S_IFREG)
            {
                result = CreateResult.Overwritten;
            }
        }

        FinishOpen(id, requester, request, fd, in stat, post, result, s);
    }

    /// <summary>What the post decision of an open reads of the opened file, in one statx.</summary>
    private const uint PostStatxMask = FileFacts.STATX_TYPE | FileFacts.STATX_MODE | FileFacts.STATX_INO | FileFacts.STATX_MNT_ID_UNIQUE | ChangeStamps.Mask;

    /// <summary>True for an open that can change the file system: it creates, truncates, or opens for writing.</summary>
    private static bool CanModify(int flags) =>
        (flags & (Libc.O_CREAT | Libc.O_TRUNC | Libc.O_ACCMODE)) != 0 || (flags & Libc.O_TMPFILE) == Libc.O_TMPFILE;

    private int ReadOpenHow(ref SupervisedThread thread, ulong id, ulong address, ulong size, Scratch s, ref OpenHow how)
    {
        if (size < Libc.OPEN_HOW_SIZE_VER0)
        {
            return Errno.EINVAL;
        }

        if (size > (ulong)s.Small.Length)
        {
            return Errno.E2BIG;
        }

        int got = ReadGuest(ref thread, id, address, s.Small, (int)size, s);
        if (got < (int)size)
        {
            return Errno.EFAULT;
        }

        if (s.Small.AsSpan(Libc.OPEN_HOW_SIZE_VER0, (int)size - Libc.OPEN_HOW_SIZE_VER0).ContainsAnyExcept((byte)0))
        {
            return Errno.E2BIG;
        }

        how = System.Runtime.InteropServices.MemoryMarshal.Read<OpenHow>(s.Small);
        return 0;
    }

    /// <summary>
    /// Performs the open as the guest (<paramref name="guest"/>'s credentials, root and umask), with our flags and
    /// blocking as the guest asked; the fd or -errno. If the open waits (a FIFO end without its partner, a lease being
    /// broken), the <see cref="ReceiverWatch"/> gives the listener to a new receiving thread meanwhile, and this one
    /// answers this notification when the open returns.
    /// </summary>
    /// <remarks>
    /// With <see cref="Boundary.OpenPlan.RootMountFirst"/> the open is first confined to the root mount
    /// (RESOLVE_NO_XDEV): if that succeeds the file cannot be a kernel task's /proc entry and the plan becomes
    /// <see cref="Boundary.OpenPlan.Admit"/>; if the path leaves the root mount (EXDEV) it is opened as asked and the plan
    /// becomes <see cref="Boundary.OpenPlan.CheckAfter"/>.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int OpenOnReceiver(GuestAuthority guest, int baseFd, ReadOnlySpan<byte> pathWithNul, ref OpenHow how, bool creates, bool inGuestRoot, ref Boundary.OpenPlan plan)
    {
        bool confined = plan == Boundary.OpenPlan.RootMountFirst && (how.Resolve & Libc.RESOLVE_NO_XDEV) == 0;
        if (confined)
        {
            how.Resolve |= Libc.RESOLVE_NO_XDEV;
        }

        int result = OpenAs(guest, baseFd, pathWithNul, ref how, creates, inGuestRoot);
        if (confined)
        {
            how.Resolve &= ~Libc.RESOLVE_NO_XDEV;
            plan = result != -Errno.EXDEV ? Boundary.OpenPlan.Admit : Boundary.OpenPlan.CheckAfter;
            if (result == -Errno.EXDEV)
            {
                result = OpenAs(guest, baseFd, pathWithNul, ref how, creates, inGuestRoot);
            }
        }

        return result >= 0 ? result : -AfterWait(-result);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int OpenAs(GuestAuthority guest, int baseFd, ReadOnlySpan<byte> pathWithNul, ref OpenHow how, bool creates, bool inGuestRoot)
    {
        fixed (byte* p = pathWithNul)
        fixed (OpenHow* h = &how)
        {
            var open = new OpenAction { Directory = baseFd, Path = p, How = h, Umask = guest.Umask, Creates = creates };
            return (int)GuestAction.Run(guest, ref open, inGuestRoot);
        }
    }

    /// <summary>
    /// Opens the guest's file, as the guest, through <paramref name="held"/>, the descriptor of the file a driver held the
    /// open on (and consumes it), with the guest's flags: the file decided on is the file received. Its path was
    /// resolved, as the guest and with the guest's resolve flags, when it was held; here only the magic link to it is
    /// followed. The fd or -errno.
    /// </summary>
    private int OpenHeld(int held, GuestAuthority guest, ref OpenHow how, bool creates, Scratch s)
    {
        try
        {
            int length = new Utf8Builder(s.Proc2).Append("/proc/self/fd/"u8).Append(held).Append("\0"u8).Length;
            var through = how;
            through.Flags &= ~(ulong)Libc.O_NOFOLLOW;
            through.Resolve = 0;
            int fd = OpenAs(guest, Libc.AT_FDCWD, s.Proc2.AsSpan(0, length), ref through, creates, inGuestRoot: false);
            return fd >= 0 ? fd : -AfterWait(-fd);
        }
        finally
        {
            Libc.CloseOwned(held);
        }
    }

    /// <summary>
    /// The kernel boundary's part before an open (see <see cref="Boundary.KernelBoundary"/>): 0 or the errno that refuses
    /// it; <paramref name="plan"/> says how the open is to be made and checked.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int BoundaryBeforeOpen(int baseFd, ReadOnlySpan<byte> pathWithNul, int absoluteLength, int flags, bool rewritten, bool descriptorLink, Requester requester, Scratch s, ref Boundary.OpenPlan plan)
    {
        bool fromRoot = baseFd == Libc.AT_FDCWD || rewritten;
        plan = _boundary!.PlanOpen(s.Absolute.AsSpan(0, absoluteLength), fromRoot, descriptorLink, requester.ProcessId, requester.ThreadId);
        if (plan == Boundary.OpenPlan.Refuse)
        {
            return Errno.EACCES;
        }

        // A guest's own /proc entries (a rewritten /proc/self) are never the kernel's files.
        if (!CanModify(flags) || rewritten || (flags & Libc.O_PATH) != 0)
        {
            return 0;
        }

        bool follow = (flags & Libc.O_NOFOLLOW) == 0 && (flags & (Libc.O_CREAT | Libc.O_EXCL)) != (Libc.O_CREAT | Libc.O_EXCL);
        return _boundary.RefusesChange(baseFd, pathWithNul, Boundary.ChangeKind.Write, follow, s);
    }

    /// <summary>
    /// Post decision (when <paramref name="post"/>; <paramref name="stat"/> is then the file's) and injection.
    /// Consumes <paramref name="fd"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void FinishOpen(ulong id, Requester requester, in OpenCall request, int fd, in StatxBuffer stat, bool post, CreateResult result, Scratch s)
    {
        try
        {
            if (post)
            {
                var opened = new OpenedFile(new FileIdentity(stat.Device, stat.Ino), stat.Mode, fd, s.Proc, s.Resolved, s.Opened.Set(fd, in stat), ChangeStamps.From(in stat, fd))
                {
                    Result = result,
                };
                int decision = _mediator.PostOpen(requester, request, opened);
                if (decision != 0)
                {
                    Reply(id, decision);
                    return;
                }
            }

            if (_lastCloses is not null && (request.Flags & Libc.O_ACCMODE) != Libc.O_RDONLY && WatchLastClose(fd, post ? (uint)stat.Mode : 0u))
            {
                // The guest's copy must hold the last reference before the guest can close it: install it, close ours,
                // then answer (the guest waits in its call meanwhile). Otherwise a quick close by the guest would make
                // the supervisor's own close the last one, which the watch does not report.
                int number = Seccomp.AddFd(_listener, id, fd, (request.Flags & Libc.O_CLOEXEC) != 0);
                Libc.CloseOwned(fd);
                fd = -1;
                if (number != -Errno.ENOENT)
                {
                    Reply(id, number < 0 ? -number : 0, number);
                }

                return;
            }

            int injected = Seccomp.AddFdAndSend(_listener, id, fd, (request.Flags & Libc.O_CLOEXEC) != 0);
            if (injected < 0 && injected != -Errno.ENOENT)
            {
                Reply(id, -injected);
            }
        }
        finally
        {
            Libc.CloseOwned(fd);
        }
    }

    /// <summary>
    /// Watches the last close of <paramref name="fd"/>, opened for writing for a guest, when it is a regular file
    /// (<paramref name="mode"/> is its st_mode when known, else 0 and it is stated). True when it is watched.
    /// </summary>
    private bool WatchLastClose(int fd, uint mode)
    {
        if (mode == 0)
        {
            Stat st;
            if (Libc.FStat(fd, &st) != 0)
            {
                return false;
            }

            mode = st.Mode;
        }

        return (mode & Libc.S_IFMT) == Libc.S_IFREG && _lastCloses!.Watch(fd) == 0;
    }
}
