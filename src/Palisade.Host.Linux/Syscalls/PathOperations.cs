using Palisade.Interop;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Syscalls;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// rename*, unlink*, rmdir, truncate, chmod*, chown*: decoded once, decided, then performed by the
/// supervisor with the raw system call on its own handle of the guest's directory, so the guest's memory
/// is never read again and flags are validated by Linux exactly as for the guest.
/// </summary>
internal sealed unsafe partial class Supervisor
{
    private void HandlePathOperation(in SeccompNotif n, Requester requester, Scratch s)
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

        int pathLength = GuestMemory.ReadPath(tid, pathAddress, s.Path);
        int path2Length = kind == PathOperationKind.Rename ? GuestMemory.ReadPath(tid, path2Address, s.Path2) : 0;
        if (pathLength < 0 || path2Length < 0)
        {
            Reply(n.Id, -(pathLength < 0 ? pathLength : path2Length));
            return;
        }

        if (!StillWaiting(n.Id))
        {
            return;
        }

        var path = s.Path.AsSpan(0, pathLength + 1);
        var path2 = s.Path2.AsSpan(0, path2Length + 1);
        int baseFd = PathResolution.OpenBase(tid, dirfd, path[..^1], s.Proc);
        int base2 = kind == PathOperationKind.Rename ? PathResolution.OpenBase(tid, dirfd2, path2[..^1], s.Proc) : Libc.AT_FDCWD;
        try
        {
            if ((baseFd < 0 && baseFd != Libc.AT_FDCWD) || (base2 < 0 && base2 != Libc.AT_FDCWD))
            {
                Reply(n.Id, -(baseFd < 0 && baseFd != Libc.AT_FDCWD ? baseFd : base2));
                return;
            }

            int absolute = PathResolution.Absolute(baseFd, path[..^1], s.Proc, s.Absolute);
            int absolute2 = kind == PathOperationKind.Rename ? PathResolution.Absolute(base2, path2[..^1], s.Proc, s.Absolute2) : 0;
            if (absolute < 0 || absolute2 < 0)
            {
                Reply(n.Id, -(absolute < 0 ? absolute : absolute2));
                return;
            }

            // /proc/self, /dev/fd, ... name the guest, not the supervisor that performs the operation.
            absolute = PathResolution.RewriteSelfReferences(s.Absolute, absolute, requester.ProcessId, tid, out bool rewritten);
            bool rewritten2 = false;
            if (kind == PathOperationKind.Rename)
            {
                absolute2 = PathResolution.RewriteSelfReferences(s.Absolute2, absolute2, requester.ProcessId, tid, out rewritten2);
            }
            if (rewritten)
            {
                PathResolution.CloseBase(baseFd);
                baseFd = Libc.AT_FDCWD;
                s.Absolute[absolute] = 0;
                path = s.Absolute.AsSpan(0, absolute + 1);
            }

            if (rewritten2)
            {
                PathResolution.CloseBase(base2);
                base2 = Libc.AT_FDCWD;
                s.Absolute2[absolute2] = 0;
                path2 = s.Absolute2.AsSpan(0, absolute2 + 1);
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
            };
            // The kernel boundary first: no guest changes the kernel's own files, whatever the drivers would say.
            int refusal = _boundary is null ? 0 : BoundaryRefusesPathOperation(kind, flags, baseFd, path, base2, path2, s);
            bool decides = (_families & SyscallFamilies.PathOperations) != 0;
            int decision = refusal != 0 ? refusal : decides ? _mediator.PathOperation(requester, request) : 0;
            if (decision != 0)
            {
                Reply(n.Id, decision);
                return;
            }

            long result;
            fixed (byte* p = path)
            fixed (byte* p2 = path2)
            {
                result = kind switch
                {
                    PathOperationKind.Rename => Libc.Syscall(Sys.Renameat2, baseFd, (long)p, base2, (long)p2, flags, 0),
                    PathOperationKind.Unlink or PathOperationKind.RemoveDirectory => Libc.Syscall(Sys.Unlinkat, baseFd, (long)p, flags, 0, 0, 0),
                    PathOperationKind.ChangeMode when nr == Sys.Fchmodat2 => Libc.Syscall(Sys.Fchmodat2, baseFd, (long)p, mode, flags, 0, 0),
                    PathOperationKind.ChangeMode => Libc.Syscall(Sys.Fchmodat, baseFd, (long)p, mode, 0, 0, 0),
                    PathOperationKind.ChangeOwner => Libc.Syscall(Sys.Fchownat, baseFd, (long)p, owner, group, flags, 0),
                    _ => TruncateAt(baseFd, path, length, s),
                };
            }

            int error = result < 0 ? Libc.LastError : 0;
            try
            {
                if (decides)
                {
                    _mediator.PathOperationCompleted(requester, request, error);
                }
            }
            finally
            {
                // Done is done: the guest gets the operation's own result even if the completion report throws.
                Reply(n.Id, error);
            }
        }
        finally
        {
            PathResolution.CloseBase(baseFd);
            PathResolution.CloseBase(base2);
        }
    }

    /// <summary>
    /// The kernel boundary's part of a path operation: 0, or EPERM when it would change the kernel's own files (the
    /// entries a rename or removal touches, the object a truncate, chmod or chown acts on).
    /// </summary>
    private int BoundaryRefusesPathOperation(PathOperationKind kind, uint flags, int baseFd, ReadOnlySpan<byte> path, int base2, ReadOnlySpan<byte> path2, Scratch s)
    {
        Boundary.KernelBoundary boundary = _boundary!;
        bool follow = (flags & Libc.AT_SYMLINK_NOFOLLOW) == 0;
        return kind switch
        {
            PathOperationKind.Rename => boundary.RefusesChange(baseFd, path, Boundary.ChangeKind.Entry, false, s) is int r and not 0 ? r
                : boundary.RefusesChange(base2, path2, Boundary.ChangeKind.Entry, false, s),
            PathOperationKind.Unlink or PathOperationKind.RemoveDirectory => boundary.RefusesChange(baseFd, path, Boundary.ChangeKind.Entry, false, s),
            PathOperationKind.Truncate => boundary.RefusesChange(baseFd, path, Boundary.ChangeKind.Object, true, s),
            _ => boundary.RefusesChange(baseFd, path, Boundary.ChangeKind.Object, follow, s),
        };
    }

    /// <summary>truncate(2) has no *at form: name the file through our directory handle's /proc/self/fd link.</summary>
    private long TruncateAt(int baseFd, ReadOnlySpan<byte> pathWithNul, long length, Scratch s)
    {
        if (baseFd == Libc.AT_FDCWD)
        {
            fixed (byte* p = pathWithNul)
            {
                return Libc.Syscall(Sys.Truncate, (long)p, length, 0, 0, 0, 0);
            }
        }

        int written = new Utf8Builder(s.Absolute2).Append("/proc/self/fd/"u8).Append(baseFd).Append("/"u8).Length;
        if (written + pathWithNul.Length > s.Absolute2.Length)
        {
            System.Runtime.InteropServices.Marshal.SetLastPInvokeError(Errno.ENAMETOOLONG);
            return -1;
        }

        pathWithNul.CopyTo(s.Absolute2.AsSpan(written));
        fixed (byte* p = s.Absolute2)
        {
            return Libc.Syscall(Sys.Truncate, (long)p, length, 0, 0, 0, 0);
        }
    }
}
