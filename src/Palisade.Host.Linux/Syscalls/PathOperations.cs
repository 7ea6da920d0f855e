using System.Buffers.Binary;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Authority;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Syscalls;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Every call that changes a file system object without opening it for writing: rename*, unlink*, rmdir, truncate,
/// ftruncate, fallocate, chmod*, fchmod, chown*, fchown, utime, utimes, futimesat, utimensat (futimens), the setxattr
/// and removexattr families, link*, mkdir*, mknod*, symlink*. Each is decoded once, decided, then performed by the
/// supervisor as the guest (<see cref="GuestAction"/>).
/// <list type="bullet">
/// <item>A path is split into the directory that holds its last component and that component; the directory is
/// resolved as the guest (its credentials and root, <see cref="GuestFileFacts"/>) and the call acts on (directory
/// handle, last component), as Linux itself does: the guest's memory is never read again, flags are validated by Linux
/// exactly as for the guest, and a relative path under a directory deeper than PATH_MAX works.</item>
/// <item>A call on a descriptor acts on the supervisor's copy of it (pidfd_getfd: the same open file description, so a
/// read-only descriptor still cannot be truncated), and is decided on the file behind it.</item>
/// <item>Values in guest memory (times, attribute names and values, a link's text) are copied once, before the
/// decision, and the call is made with the copies.</item>
/// </list>
/// </summary>
internal sealed unsafe partial class Supervisor
{
    private const int XattrNameMax = 255;
    private const int XattrSizeMax = 65536;
    private const int XattrArgsSize = 16;

    /// <summary>One call that changes an object, decoded from its registers.</summary>
    private struct ChangeCall
    {
        public PathOperationKind Kind;
        public int Dirfd;
        public ulong PathAddress;
        public int Dirfd2;
        public ulong Path2Address;
        public int Descriptor;
        public uint Flags;
        public uint AtFlags;
        public uint Mode;
        public uint Owner;
        public uint Group;
        public long Length;
        public long Offset;
        public ulong Device;
        public ulong Times;
        public TimesForm TimesForm;
        public ulong NameAddress;
        public ulong ValueAddress;
        public ulong ValueSize;
        public ulong ArgsAddress;
        public ulong ArgsSize;
        public ulong TargetAddress;
        public bool Follow;
        public bool HasPath2;

        /// <summary>setxattrat or removexattrat (with AT_* flags and, for the set, a struct xattr_args).</summary>
        public bool AtForm;
    }

    /// <summary>How a times argument is laid out in guest memory.</summary>
    private enum TimesForm
    {
        None,
        Utimbuf,
        Timeval,
        Timespec,
    }

    private static ChangeCall Decode(int nr, ulong a0, ulong a1, ulong a2, ulong a3, ulong a4, ulong a5)
    {
        const uint NoFollow = Libc.AT_SYMLINK_NOFOLLOW;
        var c = new ChangeCall { Dirfd = Libc.AT_FDCWD, Dirfd2 = Libc.AT_FDCWD, Descriptor = -1 };
        switch (nr)
        {
            case Sys.Rename:
                (c.Kind, c.PathAddress, c.Path2Address, c.HasPath2) = (PathOperationKind.Rename, a0, a1, true);
                break;
            case Sys.Renameat:
            case Sys.Renameat2:
                (c.Kind, c.Dirfd, c.PathAddress, c.Dirfd2, c.Path2Address, c.HasPath2) = (PathOperationKind.Rename, (int)a0, a1, (int)a2, a3, true);
                c.Flags = nr == Sys.Renameat2 ? (uint)a4 : 0;
                break;
            case Sys.Unlink:
                (c.Kind, c.PathAddress) = (PathOperationKind.Unlink, a0);
                break;
            case Sys.Unlinkat:
                (c.Dirfd, c.PathAddress, c.Flags) = ((int)a0, a1, (uint)a2);
                c.Kind = (c.Flags & Libc.AT_REMOVEDIR) != 0 ? PathOperationKind.RemoveDirectory : PathOperationKind.Unlink;
                break;
            case Sys.Rmdir:
                (c.Kind, c.PathAddress, c.Flags) = (PathOperationKind.RemoveDirectory, a0, (uint)Libc.AT_REMOVEDIR);
                break;
            case Sys.Truncate:
                (c.Kind, c.PathAddress, c.Length, c.Follow) = (PathOperationKind.Truncate, a0, (long)a1, true);
                break;
            case Sys.Ftruncate:
                (c.Kind, c.Descriptor, c.Length) = (PathOperationKind.Truncate, (int)a0, (long)a1);
                break;
            case Sys.Fallocate:
                (c.Kind, c.Descriptor, c.Mode, c.Offset, c.Length) = (PathOperationKind.Allocate, (int)a0, (uint)a1, (long)a2, (long)a3);
                break;
            case Sys.Chmod:
                (c.Kind, c.PathAddress, c.Mode, c.Follow) = (PathOperationKind.ChangeMode, a0, (uint)a1, true);
                break;
            case Sys.Fchmod:
                (c.Kind, c.Descriptor, c.Mode) = (PathOperationKind.ChangeMode, (int)a0, (uint)a1);
                break;
            case Sys.Fchmodat:
            case Sys.Fchmodat2:
                (c.Kind, c.Dirfd, c.PathAddress, c.Mode) = (PathOperationKind.ChangeMode, (int)a0, a1, (uint)a2);
                c.Flags = nr == Sys.Fchmodat2 ? (uint)a3 : 0;
                c.Follow = (c.Flags & NoFollow) == 0;
                break;
            case Sys.Chown:
            case Sys.Lchown:
                (c.Kind, c.PathAddress, c.Owner, c.Group) = (PathOperationKind.ChangeOwner, a0, (uint)a1, (uint)a2);
                c.Flags = nr == Sys.Lchown ? NoFollow : 0;
                c.Follow = nr == Sys.Chown;
                break;
            case Sys.Fchown:
                (c.Kind, c.Descriptor, c.Owner, c.Group) = (PathOperationKind.ChangeOwner, (int)a0, (uint)a1, (uint)a2);
                break;
            case Sys.Fchownat:
                (c.Kind, c.Dirfd, c.PathAddress, c.Owner, c.Group, c.Flags) = (PathOperationKind.ChangeOwner, (int)a0, a1, (uint)a2, (uint)a3, (uint)a4);
                c.Follow = (c.Flags & NoFollow) == 0;
                break;
            case Sys.Utime:
                (c.Kind, c.PathAddress, c.Times, c.TimesForm, c.Follow) = (PathOperationKind.ChangeTimes, a0, a1, TimesForm.Utimbuf, true);
                break;
            case Sys.Utimes:
                (c.Kind, c.PathAddress, c.Times, c.TimesForm, c.Follow) = (PathOperationKind.ChangeTimes, a0, a1, TimesForm.Timeval, true);
                break;
            case Sys.Futimesat:
                (c.Kind, c.Dirfd, c.PathAddress, c.Times, c.TimesForm, c.Follow) = (PathOperationKind.ChangeTimes, (int)a0, a1, a2, TimesForm.Timeval, true);
                c.Descriptor = a1 == 0 ? (int)a0 : -1;
                break;
            case Sys.Utimensat:
                (c.Kind, c.Dirfd, c.PathAddress, c.Times, c.TimesForm, c.Flags) = (PathOperationKind.ChangeTimes, (int)a0, a1, a2, TimesForm.Timespec, (uint)a3);
                c.Follow = (c.Flags & NoFollow) == 0;
                c.Descriptor = a1 == 0 ? (int)a0 : -1; // futimens
                break;
            case Sys.Setxattr:
            case Sys.Lsetxattr:
                (c.Kind, c.PathAddress, c.NameAddress, c.ValueAddress, c.ValueSize, c.Flags) = (PathOperationKind.SetAttribute, a0, a1, a2, a3, (uint)a4);
                (c.Follow, c.AtFlags) = nr == Sys.Setxattr ? (true, 0u) : (false, NoFollow);
                break;
            case Sys.Fsetxattr:
                (c.Kind, c.Descriptor, c.NameAddress, c.ValueAddress, c.ValueSize, c.Flags) = (PathOperationKind.SetAttribute, (int)a0, a1, a2, a3, (uint)a4);
                break;
            case Sys.Setxattrat:
                (c.Kind, c.Dirfd, c.PathAddress, c.AtFlags, c.NameAddress, c.ArgsAddress, c.ArgsSize) = (PathOperationKind.SetAttribute, (int)a0, a1, (uint)a2, a3, a4, a5);
                (c.Follow, c.AtForm) = ((c.AtFlags & NoFollow) == 0, true);
                break;
            case Sys.Removexattr:
            case Sys.Lremovexattr:
                (c.Kind, c.PathAddress, c.NameAddress) = (PathOperationKind.RemoveAttribute, a0, a1);
                (c.Follow, c.AtFlags) = nr == Sys.Removexattr ? (true, 0u) : (false, NoFollow);
                break;
            case Sys.Fremovexattr:
                (c.Kind, c.Descriptor, c.NameAddress) = (PathOperationKind.RemoveAttribute, (int)a0, a1);
                break;
            case Sys.Removexattrat:
                (c.Kind, c.Dirfd, c.PathAddress, c.AtFlags, c.NameAddress) = (PathOperationKind.RemoveAttribute, (int)a0, a1, (uint)a2, a3);
                (c.Follow, c.AtForm) = ((c.AtFlags & NoFollow) == 0, true);
                break;
            case Sys.Link:
                (c.Kind, c.PathAddress, c.Path2Address, c.HasPath2) = (PathOperationKind.Link, a0, a1, true);
                break;
            case Sys.Linkat:
                (c.Kind, c.Dirfd, c.PathAddress, c.Dirfd2, c.Path2Address, c.Flags, c.HasPath2) = (PathOperationKind.Link, (int)a0, a1, (int)a2, a3, (uint)a4, true);
                c.Follow = (c.Flags & AtSymlinkFollow) != 0;
                break;
            case Sys.Mkdir:
                (c.Kind, c.PathAddress, c.Mode) = (PathOperationKind.MakeDirectory, a0, (uint)a1);
                break;
            case Sys.Mkdirat:
                (c.Kind, c.Dirfd, c.PathAddress, c.Mode) = (PathOperationKind.MakeDirectory, (int)a0, a1, (uint)a2);
                break;
            case Sys.Mknod:
                (c.Kind, c.PathAddress, c.Mode, c.Device) = (PathOperationKind.MakeNode, a0, (uint)a1, a2);
                break;
            case Sys.Mknodat:
                (c.Kind, c.Dirfd, c.PathAddress, c.Mode, c.Device) = (PathOperationKind.MakeNode, (int)a0, a1, (uint)a2, a3);
                break;
            case Sys.Symlink:
                (c.Kind, c.TargetAddress, c.PathAddress) = (PathOperationKind.MakeSymbolicLink, a0, a1);
                break;
            case Sys.Symlinkat:
                (c.Kind, c.TargetAddress, c.Dirfd, c.PathAddress) = (PathOperationKind.MakeSymbolicLink, a0, (int)a1, a2);
                break;
            default:
                (c.Kind, c.Dirfd, c.PathAddress, c.Owner, c.Group, c.Flags) = (PathOperationKind.ChangeOwner, (int)a0, a1, (uint)a2, (uint)a3, (uint)a4);
                break;
        }

        return c;
    }

    private const uint AtSymlinkFollow = 0x400;

    private void HandlePathOperation(in SeccompNotif n, SupervisedThread thread, Scratch s)
    {
        int tid = (int)n.Pid;
        ChangeCall c = Decode(n.Data.Nr, n.Data.Args[0], n.Data.Args[1], n.Data.Args[2], n.Data.Args[3], n.Data.Args[4], n.Data.Args[5]);
        if (c.Kind == PathOperationKind.ChangeTimes && c.PathAddress == 0 && c.Dirfd == Libc.AT_FDCWD)
        {
            Reply(n.Id, Errno.EFAULT); // utimensat(AT_FDCWD, NULL, ...): Linux reads the (missing) path
            return;
        }

        // Everything the call takes from guest memory, read once.
        int error = ReadChangeArguments(ref thread, n.Id, ref c, s, out int pathLength, out int path2Length, out int nameLength, out int targetLength, out int valueLength);
        if (error != 0)
        {
            Reply(n.Id, error);
            return;
        }

        if (!StillWaiting(n.Id))
        {
            return;
        }

        Requester requester = thread.Requester with { CallId = n.Id };
        GuestAuthority guest = thread.Authority;
        int copy = -1, baseFd = Libc.AT_FDCWD, base2 = Libc.AT_FDCWD;
        GuestFileFacts names = s.Names.Begin(guest);
        try
        {
            int absolute = 0, absolute2 = 0;
            (byte[] text, int textLength) = (s.Path, pathLength);
            (byte[] text2, int text2Length) = (s.Path2, path2Length);
            FileObjectFacts facts = names;
            if (c.Descriptor >= 0)
            {
                // A call on a descriptor: decided on, and made on, the very file behind it.
                copy = TakeGuestFd(thread.Process, c.Descriptor);
                if (copy < 0)
                {
                    Reply(n.Id, -copy);
                    return;
                }

                facts = s.Reopened.Set(copy);
            }
            else
            {
                var path = s.Path.AsSpan(0, pathLength + 1);
                baseFd = PathResolution.OpenBase(tid, c.Dirfd, path[..^1], s.Proc);
                if (baseFd < 0 && baseFd != Libc.AT_FDCWD)
                {
                    Reply(n.Id, -baseFd);
                    return;
                }

                if (c.HasPath2)
                {
                    base2 = PathResolution.OpenBase(tid, c.Dirfd2, s.Path2.AsSpan(0, path2Length), s.Proc);
                    if (base2 < 0 && base2 != Libc.AT_FDCWD)
                    {
                        Reply(n.Id, -base2);
                        return;
                    }
                }

                absolute = PathResolution.Absolute(baseFd, path[..^1], s.Proc, s.Absolute);
                absolute2 = c.HasPath2 ? PathResolution.Absolute(base2, s.Path2.AsSpan(0, path2Length), s.Proc, s.Absolute2) : 0;

                // /proc/self, /dev/fd, ... name the guest, not the supervisor that performs the operation.
                absolute = RewriteSelf(thread, s.Absolute, absolute, s, out bool rewritten);
                if (rewritten)
                {
                    PathResolution.CloseBase(baseFd);
                    baseFd = Libc.AT_FDCWD;
                    s.Absolute[absolute] = 0;
                    (text, textLength) = (s.Absolute, absolute);
                }

                if (c.HasPath2)
                {
                    absolute2 = RewriteSelf(thread, s.Absolute2, absolute2, s, out bool rewritten2);
                    if (rewritten2)
                    {
                        PathResolution.CloseBase(base2);
                        base2 = Libc.AT_FDCWD;
                        s.Absolute2[absolute2] = 0;
                        (text2, text2Length) = (s.Absolute2, absolute2);
                    }
                }

                names.SetName(baseFd, text, textLength, c.Follow, CreatesType(c));
                if (c.HasPath2)
                {
                    names.SetDestination(base2, text2, text2Length);
                }
            }

            var request = new PathOperationCall
            {
                Kind = c.Kind,
                Path = s.Absolute.AsSpan(0, absolute),
                NewPath = s.Absolute2.AsSpan(0, absolute2),
                Flags = c.Kind is PathOperationKind.SetAttribute or PathOperationKind.RemoveAttribute && c.AtFlags != 0 ? c.AtFlags | c.Flags : c.Flags,
                Mode = c.Mode,
                Owner = c.Owner,
                Group = c.Group,
                Length = c.Length,
                Offset = c.Offset,
                Facts = facts,
                OnDescriptor = c.Descriptor >= 0,
                AttributeName = s.Small.AsSpan(0, nameLength),
            };
            // The kernel boundary first: no guest changes the kernel's own files, whatever the drivers would say.
            int refusal = _boundary is null ? 0
                : BoundaryRefusesPathOperation(in c, copy, baseFd, text.AsSpan(0, textLength + 1), base2, text2.AsSpan(0, text2Length + 1), s);
            bool decides = (_families & (c.Kind is PathOperationKind.MakeDirectory or PathOperationKind.MakeNode or PathOperationKind.MakeSymbolicLink
                ? SyscallFamilies.CreateNames : SyscallFamilies.PathOperations)) != 0;
            int decision = refusal != 0 ? refusal : decides ? _mediator.PathOperation(requester, request) : 0;
            if (decision != 0)
            {
                Reply(n.Id, decision);
                return;
            }

            long result;
            if (copy >= 0)
            {
                result = PerformOnDescriptor(guest, in c, copy, s, valueLength);
            }
            else
            {
                // Act in the directories the decision saw (resolved now if no filter asked), on the last components.
                result = names.ParentOf();
                if ((result >= 0 || result == Libc.AT_FDCWD) && c.HasPath2)
                {
                    result = names.ParentOf(destination: true);
                }

                if (result >= 0 || result == Libc.AT_FDCWD)
                {
                    result = Perform(guest, n.Data.Nr, in c, names, text, text2, s, valueLength, targetLength);
                }
            }

            error = result < 0 ? (int)-result : 0;
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
            names.End();
            Libc.CloseOwned(copy);
            PathResolution.CloseBase(baseFd);
            PathResolution.CloseBase(base2);
        }
    }

    /// <summary>
    /// The kernel boundary's part of a change call: 0, or EPERM when it would change the kernel's own files (the entries a
    /// rename, removal, link or create touches, the object a truncate, chmod, chown, times or attribute change acts on,
    /// the file behind the descriptor of a call made on one).
    /// </summary>
    private int BoundaryRefusesPathOperation(in ChangeCall c, int copy, int baseFd, ReadOnlySpan<byte> path, int base2, ReadOnlySpan<byte> path2, Scratch s)
    {
        Boundary.KernelBoundary boundary = _boundary!;
        if (copy >= 0)
        {
            return boundary.RefusesChangeOn(copy);
        }

        return c.Kind switch
        {
            PathOperationKind.Rename => boundary.RefusesChange(baseFd, path, Boundary.ChangeKind.Entry, false, s) is int r and not 0 ? r
                : boundary.RefusesChange(base2, path2, Boundary.ChangeKind.Entry, false, s),
            PathOperationKind.Link => boundary.RefusesChange(baseFd, path, Boundary.ChangeKind.Object, c.Follow, s) is int r and not 0 ? r
                : boundary.RefusesChange(base2, path2, Boundary.ChangeKind.Entry, false, s),
            PathOperationKind.Unlink or PathOperationKind.RemoveDirectory or PathOperationKind.MakeDirectory or PathOperationKind.MakeNode
                or PathOperationKind.MakeSymbolicLink => boundary.RefusesChange(baseFd, path, Boundary.ChangeKind.Entry, false, s),
            PathOperationKind.Truncate => boundary.RefusesChange(baseFd, path, Boundary.ChangeKind.Object, true, s),
            _ => boundary.RefusesChange(baseFd, path, Boundary.ChangeKind.Object, c.Follow, s),
        };
    }

    /// <summary>The type a call makes when its name does not exist (for the facts of a create).</summary>
    private static FileObjectType CreatesType(in ChangeCall c) => c.Kind switch
    {
        PathOperationKind.MakeDirectory => FileObjectType.Directory,
        PathOperationKind.MakeSymbolicLink => FileObjectType.SymbolicLink,
        PathOperationKind.MakeNode => (c.Mode & Libc.S_IFMT) == 0 ? FileObjectType.Regular : Libc.TypeOf(c.Mode),
        _ => FileObjectType.None,
    };

    /// <summary>
    /// Reads the paths, times, attribute name and value, or link text a call takes from guest memory into the scratch
    /// buffers: s.Path and s.Path2 (the second path, or a symlink's text), s.Small (the attribute name, then 32 bytes of
    /// times at <see cref="TimesAt"/>), s.Value (an attribute's value). 0, or the errno Linux gives for the bad argument.
    /// </summary>
    private int ReadChangeArguments(ref SupervisedThread thread, ulong id, ref ChangeCall c, Scratch s,
        out int pathLength, out int path2Length, out int nameLength, out int targetLength, out int valueLength)
    {
        pathLength = path2Length = nameLength = targetLength = valueLength = 0;
        if (c.Descriptor < 0)
        {
            pathLength = ReadGuestPath(ref thread, id, c.PathAddress, s.Path, s);
            if (pathLength < 0)
            {
                return -pathLength;
            }
        }

        if (c.HasPath2)
        {
            path2Length = ReadGuestPath(ref thread, id, c.Path2Address, s.Path2, s);
            if (path2Length < 0)
            {
                return -path2Length;
            }
        }

        if (c.Kind == PathOperationKind.MakeSymbolicLink)
        {
            targetLength = ReadGuestPath(ref thread, id, c.TargetAddress, s.Path2, s);
            if (targetLength < 0)
            {
                return -targetLength;
            }
        }

        if (c.Kind is PathOperationKind.SetAttribute or PathOperationKind.RemoveAttribute)
        {
            int error = ReadAttribute(ref thread, id, ref c, s, ref pathLength, out nameLength, out valueLength);
            if (error != 0)
            {
                return error;
            }
        }

        if (c.Kind == PathOperationKind.ChangeTimes && c.Times != 0)
        {
            int size = c.TimesForm == TimesForm.Utimbuf ? 16 : 32;
            int got = ReadGuest(ref thread, id, c.Times, s.Small.AsSpan(TimesAt), size, s);
            if (got < size)
            {
                return Errno.EFAULT;
            }

            if (!ToTimespecs(s.Small.AsSpan(TimesAt, 32), c.TimesForm))
            {
                return Errno.EINVAL;
            }
        }

        return 0;
    }

    /// <summary>Where in s.Small the times (as two struct timespec) are kept, after an attribute name.</summary>
    private const int TimesAt = 512;

    /// <summary>The attribute name (s.Small) and, for a set, its value (s.Value), as setxattr(2) reads and checks them.</summary>
    private int ReadAttribute(ref SupervisedThread thread, ulong id, ref ChangeCall c, Scratch s, ref int pathLength, out int nameLength, out int valueLength)
    {
        nameLength = valueLength = 0;
        if (c.Kind == PathOperationKind.SetAttribute && c.AtForm)
        {
            // setxattrat: struct xattr_args { u64 value; u32 size; u32 flags; }.
            if (c.ArgsSize < XattrArgsSize)
            {
                return Errno.EINVAL;
            }

            if (ReadGuest(ref thread, id, c.ArgsAddress, s.Small.AsSpan(TimesAt), XattrArgsSize, s) < XattrArgsSize)
            {
                return Errno.EFAULT;
            }

            c.ValueAddress = BinaryPrimitives.ReadUInt64LittleEndian(s.Small.AsSpan(TimesAt));
            c.ValueSize = BinaryPrimitives.ReadUInt32LittleEndian(s.Small.AsSpan(TimesAt + 8));
            c.Flags = BinaryPrimitives.ReadUInt32LittleEndian(s.Small.AsSpan(TimesAt + 12));
        }

        int got = ReadGuest(ref thread, id, c.NameAddress, s.Small, XattrNameMax + 1, s);
        if (got <= 0)
        {
            return got == 0 ? Errno.EFAULT : -got;
        }

        nameLength = s.Small.AsSpan(0, got).IndexOf((byte)0);
        if (nameLength < 0)
        {
            return got > XattrNameMax ? Errno.ERANGE : Errno.EFAULT;
        }

        if (nameLength == 0)
        {
            return Errno.ERANGE;
        }

        if (c.Kind == PathOperationKind.SetAttribute && c.ValueSize > 0)
        {
            if (c.ValueSize > XattrSizeMax)
            {
                return Errno.E2BIG;
            }

            valueLength = ReadGuest(ref thread, id, c.ValueAddress, s.Value, (int)c.ValueSize, s);
            if (valueLength < (int)c.ValueSize)
            {
                return Errno.EFAULT;
            }
        }

        // setxattrat and removexattrat with AT_EMPTY_PATH and an empty path act on the descriptor itself.
        if (c.AtForm && (c.AtFlags & Libc.AT_EMPTY_PATH) != 0 && pathLength == 0)
        {
            c.Descriptor = c.Dirfd;
        }

        return 0;
    }

    /// <summary>Rewrites the times in <paramref name="times"/> (a utimbuf or two timevals) as two timespecs; false for an out-of-range microsecond value.</summary>
    private static bool ToTimespecs(Span<byte> times, TimesForm form)
    {
        switch (form)
        {
            case TimesForm.Utimbuf:
                long access = BinaryPrimitives.ReadInt64LittleEndian(times), modify = BinaryPrimitives.ReadInt64LittleEndian(times[8..]);
                BinaryPrimitives.WriteInt64LittleEndian(times, access);
                BinaryPrimitives.WriteInt64LittleEndian(times[8..], 0);
                BinaryPrimitives.WriteInt64LittleEndian(times[16..], modify);
                BinaryPrimitives.WriteInt64LittleEndian(times[24..], 0);
                return true;
            case TimesForm.Timeval:
                for (int i = 0; i < 2; i++)
                {
                    long micro = BinaryPrimitives.ReadInt64LittleEndian(times[((16 * i) + 8)..]);
                    if (micro is < 0 or >= 1_000_000)
                    {
                        return false;
                    }

                    BinaryPrimitives.WriteInt64LittleEndian(times[((16 * i) + 8)..], micro * 1000);
                }

                return true;
            default:
                return true;
        }
    }

    /// <summary>Performs the decided call on (parent handle, last component) as the guest; its result or -errno.</summary>
    private static long Perform(GuestAuthority guest, int nr, in ChangeCall c, GuestFileFacts names, byte[] text, byte[] text2, Scratch s, int valueLength, int targetLength)
    {
        int parent = names.ParentOf(), parent2 = c.HasPath2 ? names.ParentOf(destination: true) : 0;
        fixed (byte* p = text)
        fixed (byte* p2 = text2)
        fixed (byte* small = s.Small)
        fixed (byte* value = s.Value)
        {
            long name = (long)(p + names.NameAt()), name2 = (long)(p2 + names.NameAt(destination: true));
            long times = c.Times == 0 ? 0 : (long)(small + TimesAt);
            var args = stackalloc byte[XattrArgsSize];
            BinaryPrimitives.WriteUInt64LittleEndian(new Span<byte>(args, 8), (ulong)value);
            BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(args + 8, 4), (uint)valueLength);
            BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(args + 12, 4), c.Flags);
            uint at = c.AtFlags & ~(uint)Libc.AT_EMPTY_PATH;
            var call = c.Kind switch
            {
                PathOperationKind.Rename => new SyscallAction { Number = Sys.Renameat2, A1 = parent, A2 = name, A3 = parent2, A4 = name2, A5 = c.Flags },
                PathOperationKind.Unlink or PathOperationKind.RemoveDirectory => new SyscallAction { Number = Sys.Unlinkat, A1 = parent, A2 = name, A3 = c.Flags },
                PathOperationKind.ChangeMode when nr == Sys.Fchmodat2 => new SyscallAction { Number = Sys.Fchmodat2, A1 = parent, A2 = name, A3 = c.Mode, A4 = c.Flags },
                PathOperationKind.ChangeMode => new SyscallAction { Number = Sys.Fchmodat, A1 = parent, A2 = name, A3 = c.Mode },
                PathOperationKind.ChangeOwner => new SyscallAction { Number = Sys.Fchownat, A1 = parent, A2 = name, A3 = c.Owner, A4 = c.Group, A5 = c.Flags },
                PathOperationKind.ChangeTimes => new SyscallAction { Number = Sys.Utimensat, A1 = parent, A2 = name, A3 = times, A4 = c.Flags },
                PathOperationKind.SetAttribute => new SyscallAction { Number = Sys.Setxattrat, A1 = parent, A2 = name, A3 = at, A4 = (long)small, A5 = (long)args },
                PathOperationKind.RemoveAttribute => new SyscallAction { Number = Sys.Removexattrat, A1 = parent, A2 = name, A3 = at, A4 = (long)small },
                PathOperationKind.Link => new SyscallAction { Number = Sys.Linkat, A1 = parent, A2 = name, A3 = parent2, A4 = name2, A5 = c.Flags },
                PathOperationKind.MakeDirectory => new SyscallAction
                {
                    Number = Sys.Mkdirat, A1 = parent, A2 = name, A3 = c.Mode, Creates = true, Umask = guest.Umask, ModeArgument = 3,
                },
                PathOperationKind.MakeNode => new SyscallAction
                {
                    Number = Sys.Mknodat, A1 = parent, A2 = name, A3 = c.Mode, A4 = (long)c.Device, Creates = true, Umask = guest.Umask, ModeArgument = 3,
                },
                PathOperationKind.MakeSymbolicLink => new SyscallAction { Number = Sys.Symlinkat, A1 = (long)p2, A2 = parent, A3 = name },
                _ => default,
            };
            if (c.Kind == PathOperationKind.SetAttribute)
            {
                // setxattrat takes the size of its argument block as a sixth argument.
                return SetAttributeAsGuest(guest, ref call);
            }

            if (c.Kind != PathOperationKind.Truncate)
            {
                return GuestAction.Run(guest, ref call);
            }

            return TruncateAsGuest(guest, parent, p + names.NameAt(), c.Length);
        }
    }

    private static long SetAttributeAsGuest(GuestAuthority guest, ref SyscallAction call)
    {
        var action = new SetxattratAction { Call = call };
        return GuestAction.Run(guest, ref action);
    }

    /// <summary>setxattrat(dirfd, path, at_flags, name, &amp;args, sizeof args): the one six-argument call.</summary>
    private struct SetxattratAction : IGuestAction
    {
        public SyscallAction Call;

        public readonly long Run()
        {
            long r = Libc.Syscall(Sys.Setxattrat, Call.A1, Call.A2, Call.A3, Call.A4, Call.A5, XattrArgsSize);
            return r < 0 ? -Libc.LastError : r;
        }
    }

    /// <summary>Performs the decided call on the supervisor's copy of the guest's descriptor, as the guest; its result or -errno.</summary>
    private static long PerformOnDescriptor(GuestAuthority guest, in ChangeCall c, int copy, Scratch s, int valueLength)
    {
        fixed (byte* small = s.Small)
        fixed (byte* value = s.Value)
        {
            long times = c.Times == 0 ? 0 : (long)(small + TimesAt);
            var call = c.Kind switch
            {
                PathOperationKind.Truncate => new SyscallAction { Number = Sys.Ftruncate, A1 = copy, A2 = c.Length },
                PathOperationKind.Allocate => new SyscallAction { Number = Sys.Fallocate, A1 = copy, A2 = c.Mode, A3 = c.Offset, A4 = c.Length },
                PathOperationKind.ChangeMode => new SyscallAction { Number = Sys.Fchmod, A1 = copy, A2 = c.Mode },
                PathOperationKind.ChangeOwner => new SyscallAction { Number = Sys.Fchown, A1 = copy, A2 = c.Owner, A3 = c.Group },
                PathOperationKind.ChangeTimes => new SyscallAction { Number = Sys.Utimensat, A1 = copy, A2 = 0, A3 = times, A4 = c.Flags },
                PathOperationKind.SetAttribute => new SyscallAction { Number = Sys.Fsetxattr, A1 = copy, A2 = (long)small, A3 = (long)value, A4 = valueLength, A5 = c.Flags },
                PathOperationKind.RemoveAttribute => new SyscallAction { Number = Sys.Fremovexattr, A1 = copy, A2 = (long)small },
                _ => new SyscallAction { Number = -1 },
            };
            return call.Number < 0 ? -Errno.EBADF : GuestAction.Run(guest, ref call, inGuestRoot: false);
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
