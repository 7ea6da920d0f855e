using Palisade.Interop;
using Palisade.Host.Linux.Authority;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Syscalls;
using FileIdentity = Palisade.Api.FileIdentity;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// execve and execveat. Linux offers no way to exec on a guest's behalf, so the supervisor resolves the
/// image itself, as the guest (its credentials and root: an O_PATH handle, its identity and canonical path), the
/// mediator decides on that, and
/// the call continues. Before it does, every image the exec will load is decided as an image load (<see cref="ExecImages"/>:
/// the file named, its <c>#!</c> interpreters, the ELF interpreter). Because Linux re-resolves the path, a racing guest
/// could swap the image in between; so the approved identities are remembered, and at the process's next mediated system
/// call /proc/{pid}/exe must be the approved program (exec succeeded) or the previous one (exec failed), and the approved ELF
/// interpreter must be mapped. Any other image is killed before its call is served. docs/security.md states what this does
/// not cover.
/// </summary>
internal sealed unsafe partial class Supervisor
{
    private void HandleExec(in SeccompNotif n, SupervisedThread thread, Scratch s)
    {
        int tid = (int)n.Pid;
        bool at = n.Data.Nr == Sys.Execveat;
        int dirfd = at ? (int)n.Data.Args[0] : Libc.AT_FDCWD;
        ulong pathAddress = at ? n.Data.Args[1] : n.Data.Args[0];
        int flags = at ? (int)n.Data.Args[4] : 0;

        int pathLength = ReadGuestPath(ref thread, n.Id, pathAddress, s.Path, s);
        if (pathLength < 0)
        {
            Reply(n.Id, -pathLength);
            return;
        }

        if (!StillWaiting(n.Id))
        {
            return;
        }

        Requester requester = thread.Requester with { CallId = n.Id };
        GuestAuthority guest = thread.Authority;

        var path = s.Path.AsSpan(0, pathLength + 1);
        bool emptyPath = pathLength == 0 && (flags & Libc.AT_EMPTY_PATH) != 0;
        int baseFd = emptyPath ? ProcFs.OpenGuestDirectory(tid, dirfd, s.Proc) : PathResolution.OpenBase(tid, dirfd, path[..^1], s.Proc);
        if (baseFd < 0 && baseFd != Libc.AT_FDCWD)
        {
            Reply(n.Id, -baseFd);
            return;
        }

        int image = -1;
        try
        {
            int absoluteLength = PathResolution.Absolute(baseFd, emptyPath ? default : path[..^1], s.Proc, s.Absolute);
            if (absoluteLength < 0)
            {
                Reply(n.Id, -absoluteLength);
                return;
            }

            absoluteLength = RewriteSelf(thread, s.Absolute, absoluteLength, s, out bool rewritten);
            if (emptyPath)
            {
                image = baseFd;
                baseFd = Libc.AT_FDCWD;
            }
            else
            {
                if (rewritten)
                {
                    PathResolution.CloseBase(baseFd);
                    baseFd = Libc.AT_FDCWD;
                    s.Absolute[absoluteLength] = 0;
                    path = s.Absolute.AsSpan(0, absoluteLength + 1);
                }

                // As for opens: no magic link may resolve in the supervisor, except a guest's /proc/PID/fd/N.
                bool descriptorLink = rewritten && guest.KernelRoot && PathResolution.IsGuestDescriptorLink(s.Absolute.AsSpan(0, absoluteLength));
                image = GuestResolver.OpenObject(guest, baseFd, path, follow: (flags & Libc.AT_SYMLINK_NOFOLLOW) == 0, descriptorLink);
                if (image < 0)
                {
                    Reply(n.Id, pathLength == 0 ? Errno.ENOENT : -image);
                    return;
                }
            }

            Stat stat;
            if (Libc.FStat(image, &stat) < 0)
            {
                Reply(n.Id, Libc.LastError);
                return;
            }

            int resolvedLength = ProcFs.ReadSelfFdLink(image, s.Proc, s.Resolved);
            var identity = new FileIdentity(stat.Dev, stat.Ino);
            string imagePath = System.Text.Encoding.UTF8.GetString(resolvedLength > 0 ? s.Resolved.AsSpan(0, resolvedLength) : s.Absolute.AsSpan(0, absoluteLength));

            // Every image this exec loads, read from the files Linux will load: the script's interpreters, the ELF interpreter.
            Api.ImageLoadInfo[] images = ExecImages.Find(guest, tid, requester.ProcessId, image, in stat, imagePath, s, out FileIdentity program, out FileIdentity elfInterpreter);
            resolvedLength = ProcFs.ReadSelfFdLink(image, s.Proc, s.Resolved);
            var request = new ExecCall
            {
                Path = s.Absolute.AsSpan(0, absoluteLength),
                ImagePath = resolvedLength > 0 ? s.Resolved.AsSpan(0, resolvedLength) : default,
                Image = identity,
                CommandLine = ReadArguments(thread.Process, at ? n.Data.Args[2] : n.Data.Args[1], s),
                Images = images,
            };
            int decision = _mediator.Exec(requester, request);
            if (decision != 0)
            {
                Reply(n.Id, decision);
                return;
            }

            var previous = ExeIdentity(requester.ProcessId, s);
            SetPendingExec(requester.ProcessId, new PendingExec(identity, previous, requester.ThreadId, SameFile(program, identity) ? default : program, elfInterpreter));
            Continue(n.Id);
        }
        finally
        {
            Libc.CloseOwned(image);
            PathResolution.CloseBase(baseFd);
        }
    }

    /// <summary>
    /// Checks a process that exec'd since its last mediated call runs an image that was decided on.
    /// Returns false (after killing it and answering) when it does not.
    /// </summary>
    private bool VerifyPendingExec(in SeccompNotif n, Requester requester, Scratch s)
    {
        PendingExec pending;
        lock (_pendingExecs)
        {
            if (!_pendingExecs.TryGetValue(requester.ProcessId, out pending))
            {
                return true;
            }
        }

        var current = ExeIdentity(requester.ProcessId, s);
        if (SameFile(current, pending.Approved) || (pending.Interpreter.Inode != 0 && SameFile(current, pending.Interpreter)))
        {
            ForgetPendingExec(requester.ProcessId);
            if (pending.ElfInterpreter.IsNone || MapsFile(requester.ProcessId, pending.ElfInterpreter, s))
            {
                return true;
            }

            // The exec ran, but Linux mapped another ELF interpreter than the one decided on (the name was swapped).
            _ = Libc.Kill(requester.ProcessId, Libc.SIGKILL);
            Reply(n.Id, Errno.EPERM);
            return false;
        }

        if (SameFile(current, pending.Previous))
        {
            // Still the old image: the exec failed if the thread that called it is back making calls;
            // another thread's call proves nothing (the exec may not have happened yet), so keep watching.
            if (requester.ThreadId == pending.Thread)
            {
                ForgetPendingExec(requester.ProcessId);
            }

            return true;
        }

        ForgetPendingExec(requester.ProcessId);
        _ = Libc.Kill(requester.ProcessId, Libc.SIGKILL);
        Reply(n.Id, Errno.EPERM);
        return false;
    }

    /// <summary>Remembers the image an exec of <paramref name="process"/> was allowed to run (the execs of several threads may be served at once).</summary>
    private void SetPendingExec(int process, PendingExec pending)
    {
        lock (_pendingExecs)
        {
            _pendingExecs[process] = pending;
            _pendingExecCount = _pendingExecs.Count;
        }
    }

    private void ForgetPendingExec(int process)
    {
        lock (_pendingExecs)
        {
            if (_pendingExecs.Remove(process))
            {
                _pendingExecCount = _pendingExecs.Count;
            }
        }
    }

    /// <summary>True when a mapping of <paramref name="process"/> is of <paramref name="file"/> (/proc/PID/maps).</summary>
    private static bool MapsFile(int process, FileIdentity file, Scratch s)
    {
        var maps = new ProcMaps(process, s.Proc2, s.Value);
        try
        {
            while (maps.Next(out MapLine line))
            {
                if (line.File == file)
                {
                    return true;
                }
            }

            return false;
        }
        finally
        {
            maps.Dispose();
        }
    }

    /// <summary>Reads argv (a NULL-terminated array of string pointers) into one space-separated line.</summary>
    private static ReadOnlySpan<byte> ReadArguments(SupervisedProcess process, ulong argv, Scratch s)
    {
        const int MaxArguments = 64, MaxLine = 4096;
        if (argv == 0)
        {
            return default;
        }

        Span<byte> pointers = stackalloc byte[MaxArguments * 8];
        int got = GuestMemory.Read(process, argv, pointers, pointers.Length);
        if (got <= 0)
        {
            return default;
        }

        byte[] line = new byte[MaxLine];
        int used = 0;
        for (int i = 0; i + 8 <= got && used < MaxLine; i += 8)
        {
            ulong p = BitConverter.ToUInt64(pointers.Slice(i, 8));
            if (p == 0)
            {
                break;
            }

            int length = GuestMemory.ReadPath(process, p, s.Path2);
            if (length < 0)
            {
                break;
            }

            if (used > 0 && used < MaxLine)
            {
                line[used++] = (byte)' ';
            }

            int take = Math.Min(length, MaxLine - used);
            s.Path2.AsSpan(0, take).CopyTo(line.AsSpan(used));
            used += take;
        }

        return line.AsSpan(0, used);
    }

    private static bool SameFile(FileIdentity a, FileIdentity b) => a.Device == b.Device && a.Inode == b.Inode;

    private static FileIdentity ExeIdentity(int process, Scratch s)
    {
        ProcFs.Format(s.Proc2, process, "exe"u8);
        Stat stat;
        fixed (byte* p = s.Proc2)
        {
            return Libc.FStatAt(Libc.AT_FDCWD, p, &stat, 0) == 0 ? new FileIdentity(stat.Dev, stat.Ino) : default;
        }
    }
}
