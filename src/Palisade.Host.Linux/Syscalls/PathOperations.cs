using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Authority;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Syscalls;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// rename*, unlink*, rmdir, truncate, chmod*, chown*: decoded once, decided, then performed by the supervisor as the
/// guest. Each path is split into the directory that holds its last component and that component; the directory is
/// resolved as the guest (its credentials and root, <see cref="GuestResolver"/>) and the operation acts on (directory
/// handle, last component), as Linux itself does: the guest's memory is never read again, flags are validated by Linux
/// exactly as for the guest, and a relative path under a directory deeper than PATH_MAX works as it does natively.
/// </summary>
internal sealed unsafe partial class Supervisor
{
    private void HandlePathOperation(in SeccompNotif n, SupervisedThread thread, Scratch s)
    {
        int tid = (int)n.Pid;
        int nr = n.Data.Nr;
        ulong a0 = n.Data.Args[0], a1 = n.Data.Args[1], a2 = n.Data.Args[2], a3 = n.Data.Args[3], a4 = n.Data.Args[4];

        // (dirfd, path) of the operand; for renames also (dirfd2, path2).
        int dirfd = Libc.AT_FDCWD, dirfd2 = Libc.AT_FDCWD;
        ulong pathAddress, path2Address = 0;
        uint flags = 0, mode = 0, owner = 0, group = 0;
        long length = 0;
        PathOperationKind kind;
        switch (nr)
        {
            case Sys.Rename:
                (kind, pathAddress, path2Address) = (PathOperationKind.Rename, a0, a1);
                break;
            case Sys.Renameat:
            case Sys.Renameat2:
                (kind, dirfd, pathAddress, dirfd2, path2Address) = (PathOperationKind.Rename, (int)a0, a1, (int)a2, a3);
                flags = nr == Sys.Renameat2 ? (uint)a4 : 0;
                break;
            case Sys.Unlink:
                (kind, pathAddress) = (PathOperationKind.Unlink, a0);
                break;
            case Sys.Unlinkat:
                (dirfd, pathAddress, flags) = ((int)a0, a1, (uint)a2);
                kind = (flags & Libc.AT_REMOVEDIR) != 0 ? PathOperationKind.RemoveDirectory : PathOperationKind.Unlink;
                break;
            case Sys.Rmdir:
                (kind, pathAddress, flags) = (PathOperationKind.RemoveDirectory, a0, (uint)Libc.AT_REMOVEDIR);
                break;
            case Sys.Truncate:
                (kind, pathAddress, length) = (PathOperationKind.Truncate, a0, (long)a1);
                break;
            case Sys.Chmod:
                (kind, pathAddress, mode) = (PathOperationKind.ChangeMode, a0, (uint)a1);
                break;
            case Sys.Fchmodat:
            case Sys.Fchmodat2:
                (kind, dirfd, pathAddress, mode) = (PathOperationKind.ChangeMode, (int)a0, a1, (uint)a2);
                flags = nr == Sys.Fchmodat2 ? (uint)a3 : 0;
                break;
            case Sys.Chown:
            case Sys.Lchown:
                (kind, pathAddress, owner, group) = (PathOperationKind.ChangeOwner, a0, (uint)a1, (uint)a2);
                flags = nr == Sys.Lchown ? (uint)Libc.AT_SYMLINK_NOFOLLOW : 0;
                break;
            default:
                (kind, dirfd, pathAddress, owner, group, flags) = (PathOperationKind.ChangeOwner, (int)a0, a1, (uint)a2, (uint)a3, (uint)a4);
                break;
        }

        int pathLength = ReadGuestPath(ref thread, n.Id, pathAddress, s.Path, s);
        int path2Length = kind == PathOperationKind.Rename && pathLength >= 0 ? ReadGuestPath(ref thread, n.Id, path2Address, s.Path2, s) : 0;
        if (pathLength < 0 || path2Length < 0)
        {
            Reply(n.Id, -(pathLength < 0 ? pathLength : path2Length));
            return;
        }

        if (!StillWaiting(n.Id))
        {
            return;
        }

        Requester requester = thread.Requester;
        GuestAuthority guest = thread.Authority;
        var path = s.Path.AsSpan(0, pathLength + 1);
        var path2 = s.Path2.AsSpan(0, path2Length + 1);
        int baseFd = PathResolution.OpenBase(tid, dirfd, path[..^1], s.Proc);
        int base2 = kind == PathOperationKind.Rename ? PathResolution.OpenBase(tid, dirfd2, path2[..^1], s.Proc) : Libc.AT_FDCWD;
        GuestFileFacts names = s.Names.Begin(guest);
        try
        {
            if ((baseFd < 0 && baseFd != Libc.AT_FDCWD) || (base2 < 0 && base2 != Libc.AT_FDCWD))
            {
                Reply(n.Id, -(baseFd < 0 && baseFd != Libc.AT_FDCWD ? baseFd : base2));
                return;
            }

            int absolute = PathResolution.Absolute(baseFd, path[..^1], s.Proc, s.Absolute);
            int absolute2 = kind == PathOperationKind.Rename ? PathResolution.Absolute(base2, path2[..^1], s.Proc, s.Absolute2) : 0;

            // /proc/self, /dev/fd, ... name the guest, not the supervisor that performs the operation.
            absolute = RewriteSelf(thread, s.Absolute, absolute, s, out bool rewritten);
            bool rewritten2 = false;
            if (kind == PathOperationKind.Rename)
            {
                absolute2 = RewriteSelf(thread, s.Absolute2, absolute2, s, out rewritten2);
            }

            (byte[] text, int textLength) = (s.Path, pathLength);
            (byte[] text2, int text2Length) = (s.Path2, path2Length);
            if (rewritten)
            {
                PathResolution.CloseBase(baseFd);
                baseFd = Libc.AT_FDCWD;
                s.Absolute[absolute] = 0;
                (text, textLength) = (s.Absolute, absolute);
            }

            if (rewritten2)
            {
                PathResolution.CloseBase(base2);
                base2 = Libc.AT_FDCWD;
                s.Absolute2[absolute2] = 0;
                (text2, text2Length) = (s.Absolute2, absolute2);
            }

            bool follow = kind switch
            {
                PathOperationKind.Truncate => true,
                PathOperationKind.ChangeMode or PathOperationKind.ChangeOwner => (flags & Libc.AT_SYMLINK_NOFOLLOW) == 0,
                _ => false,
            };
            names.SetName(baseFd, text, textLength, follow, FileObjectType.None);
            if (kind == PathOperationKind.Rename)
            {
                names.SetDestination(base2, text2, text2Length);
            }

            var request = new PathOperationCall
            {
                Kind = kind,
                Path = s.Absolute.AsSpan(0, absolute),
                NewPath = s.Absolute2.AsSpan(0, absolute2),
                Flags = flags,
                Mode = mode,
                Owner = owner,
                Group = group,
                Length = length,
                Facts = names,
            };
            int decision = _mediator.PathOperation(requester, request);
            if (decision != 0)
            {
                Reply(n.Id, decision);
                return;
            }

            // Act in the directories the decision saw (resolved now if no filter asked), on the last components.
            long result = names.ParentOf();
            if (result >= 0 && kind == PathOperationKind.Rename)
            {
                result = names.ParentOf(destination: true);
            }

            if (result >= 0 || result == Libc.AT_FDCWD)
            {
                result = Perform(guest, nr, kind, names, text, text2, flags, mode, owner, group, length);
            }

            int error = result < 0 ? (int)-result : 0;
            try
            {
                _mediator.PathOperationCompleted(requester, request, error);
            }
            finally
            {
                // Done is done: the guest gets the operation's own result even if the completion report throws.
                Reply(n.Id, error);
            }
        }
        finally
        {
            names.End();
            PathResolution.CloseBase(baseFd);
            PathResolution.CloseBase(base2);
        }
    }

    /// <summary>Performs the decided operation on (parent handle, last component) as the guest; its result or -errno.</summary>
    private static long Perform(GuestAuthority guest, int nr, PathOperationKind kind, GuestFileFacts names, byte[] text,
        byte[] text2, uint flags, uint mode, uint owner, uint group, long length)
    {
        int parent = names.ParentOf(), parent2 = kind == PathOperationKind.Rename ? names.ParentOf(destination: true) : 0;
        fixed (byte* p = text)
        fixed (byte* p2 = text2)
        {
            long name = (long)(p + names.NameAt()), name2 = (long)(p2 + names.NameAt(destination: true));
            var call = kind switch
            {
                PathOperationKind.Rename => new SyscallAction { Number = Sys.Renameat2, A1 = parent, A2 = name, A3 = parent2, A4 = name2, A5 = flags },
                PathOperationKind.Unlink or PathOperationKind.RemoveDirectory => new SyscallAction { Number = Sys.Unlinkat, A1 = parent, A2 = name, A3 = flags },
                PathOperationKind.ChangeMode when nr == Sys.Fchmodat2 => new SyscallAction { Number = Sys.Fchmodat2, A1 = parent, A2 = name, A3 = mode, A4 = flags },
                PathOperationKind.ChangeMode => new SyscallAction { Number = Sys.Fchmodat, A1 = parent, A2 = name, A3 = mode },
                PathOperationKind.ChangeOwner => new SyscallAction { Number = Sys.Fchownat, A1 = parent, A2 = name, A3 = owner, A4 = group, A5 = flags },
                _ => default,
            };
            if (kind != PathOperationKind.Truncate)
            {
                return GuestAction.Run(guest, ref call);
            }

            return TruncateAsGuest(guest, parent, p + names.NameAt(), length);
        }
    }

    /// <summary>
    /// truncate(2) has no *at form. The object is resolved as the guest (following a final symlink, as truncate does),
    /// then truncated through the supervisor's own /proc/self/fd link to it, with the guest's credentials: Linux checks
    /// write permission on the object itself, as it does for the guest's truncate.
    /// </summary>
    private static long TruncateAsGuest(GuestAuthority guest, int parent, byte* name, long length)
    {
        int nameLength = 0;
        while (name[nameLength] != 0)
        {
            nameLength++;
        }

        int target = GuestResolver.OpenObject(guest, parent, new ReadOnlySpan<byte>(name, nameLength + 1), follow: true);
        if (target < 0)
        {
            return target;
        }

        try
        {
            Span<byte> link = stackalloc byte[40];
            ProcFs.FormatSelfFd(link, target);
            fixed (byte* l = link)
            {
                var call = new SyscallAction { Number = Sys.Truncate, A1 = (long)l, A2 = length };
                return GuestAction.Run(guest, ref call, inGuestRoot: false);
            }
        }
        finally
        {
            Libc.CloseOwned(target);
        }
    }
}
