using System.Runtime.CompilerServices;
using Palisade.Interop;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Syscalls;
using FileIdentity = Palisade.Api.FileIdentity;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// open, openat, openat2, creat. The supervisor opens the file itself with the guest's flags (so Linux
/// validates them exactly as for the guest, and a FIFO or a leased file waits exactly as it would for the
/// guest: see <see cref="ReceiverWatch"/>), then injects the descriptor with SECCOMP_IOCTL_NOTIF_ADDFD | SEND:
/// the guest gets the very file that the pre and post decisions saw. When a driver held the open on a file
/// (<see cref="HeldCreates"/>), the guest's file is opened through the descriptor of the file decided on.
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void HandleOpen(in SeccompNotif n, Requester requester, Scratch s)
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
                int howError = ReadOpenHow(tid, arg2, arg3, s, ref how);
                if (howError != 0)
                {
                    Reply(n.Id, howError);
                    return;
                }

                break;
        }

        int pathLength = GuestMemory.ReadPath(tid, pathAddress, s.Path);
        if (pathLength < 0)
        {
            Reply(n.Id, -pathLength);
            return;
        }

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

        try
        {
            int absoluteLength = PathResolution.Absolute(baseFd, path[..^1], s.Proc, s.Absolute);
            if (absoluteLength < 0)
            {
                Reply(n.Id, -absoluteLength);
                return;
            }

            absoluteLength = PathResolution.RewriteSelfReferences(s.Absolute, absoluteLength, requester.ProcessId, tid, out bool rewritten);
            byte[] pathBuffer = s.Path;
            if (rewritten)
            {
                // The path named the guest itself (/proc/self, /dev/fd, ...): open the rewritten absolute path.
                PathResolution.CloseBase(baseFd);
                baseFd = Libc.AT_FDCWD;
                s.Absolute[absoluteLength] = 0;
                path = s.Absolute.AsSpan(0, absoluteLength + 1);
                pathBuffer = s.Absolute;
            }

            // Magic links (/proc/PID/fd/N, /proc/self/...) would resolve in the supervisor: allow only one
            // naming a guest's descriptor as the last component; refuse (ELOOP) any other on the way.
            bool descriptorLink = PathResolution.TryParseDescriptorLink(s.Absolute.AsSpan(0, absoluteLength), out Boundary.DescriptorLink link);
            ulong resolve = how.Resolve;
            if (!descriptorLink)
            {
                resolve |= Libc.RESOLVE_NO_MAGICLINKS;
            }

            int guestFlags = (int)how.Flags;

            // The kernel boundary first, whatever the drivers would say: no kernel task's /proc entry, no write to the
            // kernel's own files (docs/security.md).
            Boundary.OpenPlan plan = Boundary.OpenPlan.Admit;
            if (_boundary is not null)
            {
                int refusal = BoundaryBeforeOpen(baseFd, path, absoluteLength, guestFlags, rewritten, descriptorLink, requester, s, ref plan);
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
            };

            int decision = ISyscallMediator.AllowWithoutPost;
            int held = -1;
            if ((_families & SyscallFamilies.FileOpen) != 0)
            {
                // Should a driver hold this open, the file it holds it on is opened as this open will resolve its path.
                HeldCreates.Prepare(baseFd, pathBuffer, path.Length, guestFlags, resolve);
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
                Libc.CloseOwned(held);
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

            if (creates)
            {
                ours.Mode &= ~(ulong)GuestUmask(tid, s);
            }

            ours.Resolve = resolve;
            ours.Flags |= Libc.O_CLOEXEC | Libc.O_NOCTTY;
            int fd;
            if (held < 0)
            {
                fd = OpenOnReceiver(baseFd, path, ref ours, ref plan);
            }
            else
            {
                // The held file was resolved when it was held, not confined to the root mount: check what was opened.
                if (plan == Boundary.OpenPlan.RootMountFirst)
                {
                    plan = Boundary.OpenPlan.CheckAfter;
                }

                fd = OpenHeld(held, ref ours, s);
            }

            if (fd < 0)
            {
                Reply(n.Id, -fd);
                return;
            }

            if (plan == Boundary.OpenPlan.CheckAfter && _boundary!.CheckOpened(fd, descriptorLink ? link : Boundary.DescriptorLink.None, (guestFlags & Libc.O_ACCMODE) != Libc.O_RDONLY, s) is int refused and not 0)
            {
                Libc.CloseOwned(fd);
                Reply(n.Id, refused);
                return;
            }

            // The identity is for the post decision only: an open that needs none saves the system call.
            Stat stat = default;
            if (post && Libc.FStat(fd, &stat) < 0)
            {
                int error = Libc.LastError;
                Libc.CloseOwned(fd);
                Reply(n.Id, error);
                return;
            }

            FinishOpen(n.Id, requester, request, fd, in stat, post, s);
        }
        finally
        {
            PathResolution.CloseBase(baseFd);
        }
    }

    /// <summary>True for an open that can change the file system: it creates, truncates, or opens for writing.</summary>
    private static bool CanModify(int flags) =>
        (flags & (Libc.O_CREAT | Libc.O_TRUNC | Libc.O_ACCMODE)) != 0 || (flags & Libc.O_TMPFILE) == Libc.O_TMPFILE;

    private static int ReadOpenHow(int tid, ulong address, ulong size, Scratch s, ref OpenHow how)
    {
        if (size < Libc.OPEN_HOW_SIZE_VER0)
        {
            return Errno.EINVAL;
        }

        if (size > (ulong)s.Small.Length)
        {
            return Errno.E2BIG;
        }

        int got = GuestMemory.Read(tid, address, s.Small, (int)size);
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
    /// Performs the open as the guest's call would, with our flags and blocking as the guest asked; the fd or -errno.
    /// If the open waits (a FIFO end without its partner, a lease being broken), the <see cref="ReceiverWatch"/> gives the
    /// listener to a new receiving thread meanwhile, and this one answers this notification when the open returns.
    /// </summary>
    /// <remarks>
    /// With <see cref="Boundary.OpenPlan.RootMountFirst"/> the open is first confined to the root mount
    /// (RESOLVE_NO_XDEV): if that succeeds the file cannot be a kernel task's /proc entry and the plan becomes
    /// <see cref="Boundary.OpenPlan.Admit"/>; if the path leaves the root mount (EXDEV) it is opened as asked and the plan
    /// becomes <see cref="Boundary.OpenPlan.CheckAfter"/>.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int OpenOnReceiver(int baseFd, ReadOnlySpan<byte> pathWithNul, ref OpenHow how, ref Boundary.OpenPlan plan)
    {
        bool confined = plan == Boundary.OpenPlan.RootMountFirst && (how.Resolve & Libc.RESOLVE_NO_XDEV) == 0;
        if (confined)
        {
            how.Resolve |= Libc.RESOLVE_NO_XDEV;
        }

        int result = Openat2(baseFd, pathWithNul, ref how);
        if (confined)
        {
            how.Resolve &= ~Libc.RESOLVE_NO_XDEV;
            plan = result != -Errno.EXDEV ? Boundary.OpenPlan.Admit : Boundary.OpenPlan.CheckAfter;
            if (result == -Errno.EXDEV)
            {
                result = Openat2(baseFd, pathWithNul, ref how);
            }
        }

        return result >= 0 ? result : -AfterWait(-result);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Openat2(int baseFd, ReadOnlySpan<byte> pathWithNul, ref OpenHow how)
    {
        long fd;
        fixed (byte* p = pathWithNul)
        fixed (OpenHow* h = &how)
        {
            fd = Libc.Syscall(Sys.Openat2, baseFd, (long)p, (long)h, Libc.OPEN_HOW_SIZE_VER0, 0, 0);
        }

        return fd < 0 ? -Libc.LastError : (int)fd;
    }

    /// <summary>
    /// Opens the guest's file through <paramref name="held"/>, the descriptor of the file a driver held the open on (and
    /// consumes it), with the guest's flags: the file decided on is the file received. Its path was resolved, with the
    /// guest's resolve flags, when it was held; here only the magic link to it is followed.
    /// </summary>
    private static int OpenHeld(int held, ref OpenHow how, Scratch s)
    {
        try
        {
            int length = new Utf8Builder(s.Proc2).Append("/proc/self/fd/"u8).Append(held).Append("\0"u8).Length;
            var through = how;
            through.Flags &= ~(ulong)Libc.O_NOFOLLOW;
            through.Resolve = 0;
            return Openat2(Libc.AT_FDCWD, s.Proc2.AsSpan(0, length), ref through);
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
    private void FinishOpen(ulong id, Requester requester, in OpenCall request, int fd, in Stat stat, bool post, Scratch s)
    {
        try
        {
            if (post)
            {
                var opened = new OpenedFile(new FileIdentity(stat.Dev, stat.Ino), stat.Mode, fd, s.Proc, s.Resolved);
                int decision = _mediator.PostOpen(requester, request, opened);
                if (decision != 0)
                {
                    Reply(id, decision);
                    return;
                }
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

    private uint GuestUmask(int tid, Scratch s)
    {
        int length = ProcFs.ReadStatus(tid, s.Proc2, s.Status);
        return length > 0 && ProcFs.TryField(s.Status.AsSpan(0, length), "Umask:"u8, 8, out long mask) ? (uint)mask : 0022;
    }
}
