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
        int error = DecideExec(in n, ref thread, s, out string? named, out FileIdentity resolved);
        if (error != 0)
        {
            // Failed before Linux saw it (a path that names nothing, a denial): the mediator learns the result, the guest its errno.
            if (named is not null)
            {
                _mediator.ExecCompleted(thread.Requester with { CallId = n.Id }, new ExecOutcome { ImagePath = named, Image = resolved, Errno = error });
            }

            Reply(n.Id, error);
        }
    }

    /// <summary>
    /// Resolves and decides one exec; 0 when it was let continue (or the guest no longer waits), or the errno to answer.
    /// <paramref name="named"/> and <paramref name="resolved"/> describe the image for the exec's result (the canonical
    /// path and identity once resolved, the path as named before); <paramref name="named"/> is null when there is nothing
    /// to report now.
    /// </summary>
    private int DecideExec(in SeccompNotif n, ref SupervisedThread thread, Scratch s, out string? named, out FileIdentity resolved)
    {
        int tid = (int)n.Pid;
        bool at = n.Data.Nr == Sys.Execveat;
        int dirfd = at ? (int)n.Data.Args[0] : Libc.AT_FDCWD;
        ulong pathAddress = at ? n.Data.Args[1] : n.Data.Args[0];
        int flags = at ? (int)n.Data.Args[4] : 0;
        resolved = default;
        named = "";

        int pathLength = ReadGuestPath(ref thread, n.Id, pathAddress, s.Path, s);
        if (pathLength < 0)
        {
            return -pathLength;
        }

        named = System.Text.Encoding.UTF8.GetString(s.Path.AsSpan(0, pathLength));
        if (!StillWaiting(n.Id))
        {
            named = null;
            return 0;
        }

        Requester requester = thread.Requester with { CallId = n.Id };
        GuestAuthority guest = thread.Authority;

        var path = s.Path.AsSpan(0, pathLength + 1);
        bool emptyPath = pathLength == 0 && (flags & Libc.AT_EMPTY_PATH) != 0;
        int baseFd = emptyPath ? ProcFs.OpenGuestDirectory(tid, dirfd, s.Proc) : PathResolution.OpenBase(tid, dirfd, path[..^1], s.Proc);
        if (baseFd < 0 && baseFd != Libc.AT_FDCWD)
        {
            return -baseFd;
        }

        int image = -1;
        try
        {
            int absoluteLength = PathResolution.Absolute(baseFd, emptyPath ? default : path[..^1], s.Proc, s.Absolute);
            if (absoluteLength < 0)
            {
                return -absoluteLength;
            }

            named = System.Text.Encoding.UTF8.GetString(s.Absolute.AsSpan(0, absoluteLength));
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
                    return pathLength == 0 ? Errno.ENOENT : -image;
                }
            }

            Stat stat;
            if (Libc.FStat(image, &stat) < 0)
            {
                return Libc.LastError;
            }

            int resolvedLength = ProcFs.ReadSelfFdLink(image, s.Proc, s.Resolved);
            var identity = new FileIdentity(stat.Dev, stat.Ino);
            string imagePath = System.Text.Encoding.UTF8.GetString(resolvedLength > 0 ? s.Resolved.AsSpan(0, resolvedLength) : s.Absolute.AsSpan(0, absoluteLength));
            named = imagePath;
            resolved = identity;

            // Every image this exec loads, read from the files Linux will load: the script's interpreters, the ELF interpreter.
            Api.ImageLoadInfo[] images = ExecImages.Find(guest, tid, requester.ProcessId, image, in stat, imagePath, s, out FileIdentity program, out FileIdentity elfInterpreter);

            // argv and envp as the caller passes them, read once each; the calling thread's working directory.
            int budget = ExecArguments.LinuxLimit;
            List<string> arguments = ExecArguments.Read(thread.Process, at ? n.Data.Args[2] : n.Data.Args[1], ref budget);
            List<string> environment = ExecArguments.Read(thread.Process, at ? n.Data.Args[3] : n.Data.Args[2], ref budget);
            string? workingDirectory = WorkingDirectoryOf(tid, s);
            resolvedLength = ProcFs.ReadSelfFdLink(image, s.Proc, s.Resolved);
            var request = new ExecCall
            {
                Path = s.Absolute.AsSpan(0, absoluteLength),
                ImagePath = resolvedLength > 0 ? s.Resolved.AsSpan(0, resolvedLength) : default,
                Image = identity,
                Arguments = arguments,
                EnvironmentVariables = environment,
                WorkingDirectory = workingDirectory,
                ImageType = Libc.TypeOf(stat.Mode),
                ImageDescriptor = image,
                Images = images,
            };
            int decision = _mediator.Exec(requester, request);
            if (decision != 0)
            {
                return decision;
            }

            var previous = ExeIdentity(requester.ProcessId, s);
            SetPendingExec(requester.ProcessId, new PendingExec(identity, previous, requester.ThreadId, SameFile(program, identity) ? default : program, elfInterpreter, imagePath));
            Continue(n.Id);
            named = null;
            return 0;
        }
        finally
        {
            Libc.CloseOwned(image);
            PathResolution.CloseBase(baseFd);
        }
    }

    /// <summary>The working directory of thread <paramref name="tid"/> as Linux resolves it (/proc/TID/cwd); null when
    /// it cannot be read.</summary>
    private static string? WorkingDirectoryOf(int tid, Scratch s)
    {
        ProcFs.Format(s.Proc2, tid, "cwd"u8);
        fixed (byte* p = s.Proc2)
        fixed (byte* d = s.Directory)
        {
            nint n = Libc.ReadLinkAt(Libc.AT_FDCWD, p, d, (nuint)s.Directory.Length);
            return n < 0 || n >= s.Directory.Length ? null : System.Text.Encoding.UTF8.GetString(s.Directory, 0, (int)n);
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
            _mediator.ExecCompleted(requester with { ThreadId = pending.Thread }, new ExecOutcome { ImagePath = pending.ImagePath, Image = pending.Approved, Succeeded = true });
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
                // Linux failed it; its errno went to the guest, unseen (the exec was let continue).
                ForgetPendingExec(requester.ProcessId);
                _mediator.ExecCompleted(requester, new ExecOutcome { ImagePath = pending.ImagePath, Image = pending.Approved });
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
