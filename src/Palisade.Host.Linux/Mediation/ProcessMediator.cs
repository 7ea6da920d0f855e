using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Supervision;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// The process family of <see cref="KernelMediator"/>: exec (process creation and image load), signals, ptrace and
/// cross-process memory or descriptor access (object callbacks), and the lifetime of processes and threads (first
/// call, exit, exit_group, and ends no call announces, which <see cref="ProcessExitWatcher"/> sees).
/// </summary>
internal sealed class ProcessMediator : IProcessControl
{
    private readonly KernelHost _host;
    private readonly ProcessExitWatcher _exits;

    // Ends the watcher saw (no exit call reached the supervisor), for the supervisor to forget.
    private readonly System.Collections.Concurrent.ConcurrentQueue<int> _ended = new();

    public ProcessMediator(KernelHost host)
    {
        _host = host;
        _exits = new ProcessExitWatcher((pid, code, signal) =>
        {
            _host.ProcessExited(pid, code, signal);
            _ended.Enqueue(pid);
        });
        host.AddProcessControl(this);
    }

    /// <summary>The drivers' process control (terminate, suspend, resume) acts through the pidfds of the processes this
    /// mediator watches.</summary>
    public int SendSignal(int processId, int signal) => _exits.SendSignal(processId, signal);

    /// <summary>An execve/execveat: the kernel's process creation. 0 or an errno.</summary>
    public int Exec(in Requester requester, in ExecCall call)
    {
        ProcessImageRequest request = RequestDecoder.Image(in call, ProcFs.ParentOf(requester.ProcessId)) with
        {
            Credentials = CredentialsReader.Read(requester.ThreadId),
        };
        Status s = _host.CreateProcess(in requester, in request);
        if (s.IsSuccess)
        {
            _exits.Watch(requester.ProcessId);
        }

        return StatusErrno.ErrnoOf(s);
    }

    /// <summary>How an exec ended: the kernel's exec result.</summary>
    public void ExecCompleted(in Requester requester, in ExecOutcome outcome)
    {
        var request = new ExecOutcomeRequest
        {
            ImagePath = outcome.ImagePath,
            Image = outcome.Image,
            Succeeded = outcome.Succeeded,
            Errno = outcome.Errno,
        };
        _ = _host.ExecCompleted(in requester, in request);
    }

    /// <summary>A file about to be mapped executable: the kernel's image load. 0 or an errno.</summary>
    public int ImageMapping(in Requester requester, in ImageMappingCall call)
    {
        var request = new ImageMappingRequest
        {
            ImagePath = System.Text.Encoding.UTF8.GetString(call.Path),
            Image = call.Image,
            FileType = call.Type,
        };
        return StatusErrno.ErrnoOf(_host.LoadImage(in requester, in request));
    }

    /// <summary>
    /// A signal, pidfd, ptrace or memory access aimed at another process: object callbacks decide. A target the kernel
    /// does not know yet is attached first (and watched, so that its end is reported). 0 or an errno (EPERM for a
    /// stripped right, as Linux answers a permission failure there).
    /// </summary>
    public int Access(in Requester requester, in ProcessAccessCall call)
    {
        int target = call.TargetProcessId;
        if (target <= 0 && call.TargetThreadId > 0)
        {
            target = ProcFs.ThreadGroupOf(call.TargetThreadId);
        }

        if (target <= 0 || target == requester.ProcessId)
        {
            return 0; // Process groups and oneself: see docs/security.md.
        }

        if (!_host.IsKnownProcess(target)
            && _host.AttachProcess(target, ProcFs.ParentOf(target), requester.UserId, ProcFs.ImageOf(target)).IsSuccess)
        {
            _exits.Watch(target);
        }

        ObjectAccessKind kind = RequestDecoder.AccessKindOf(call.SystemCall);
        Status s = _host.OpenProcess(in requester, target, RequestDecoder.AccessRightsOf(call.Rights), kind,
            kind is ObjectAccessKind.Signal or ObjectAccessKind.ThreadSignal or ObjectAccessKind.PidfdSignal ? call.Signal : 0);
        return s.IsSuccess ? 0 : s == Status.AccessDenied ? Errno.EPERM : StatusErrno.ErrnoOf(s);
    }

    /// <summary>The first mediated call of a process: the kernel's fork (and thread) services; its end is watched.</summary>
    public void ProcessStarted(in Requester requester, int parentProcessId)
    {
        string? image = _host.IsKnownProcess(parentProcessId) ? null : ProcFs.ImageOf(requester.ProcessId);
        _host.ProcessStarted(in requester, parentProcessId, image);
        _exits.Watch(requester.ProcessId);
    }

    /// <summary>The first mediated call of a new thread of a known process.</summary>
    public void ThreadStarted(in Requester requester) => _host.ThreadStarted(in requester);

    /// <summary>exit (a thread) or exit_group (<paramref name="wholeProcess"/>), with the guest's status argument.</summary>
    public void Exit(in Requester requester, bool wholeProcess, int status)
    {
        if (wholeProcess)
        {
            // exit_group: the end is reported now, while the process still exists; the watcher learns it was.
            if (_exits.Claim(requester.ProcessId))
            {
                _host.ProcessExited(requester.ProcessId, status & 0xFF, 0);
            }

            return;
        }

        _host.ThreadExited(in requester, status & 0xFF);
    }

    /// <summary>Takes one process that ended without an exit call the supervisor saw; false when none.</summary>
    public bool TryTakeEnded(out int processId) => _ended.TryDequeue(out processId);

    /// <summary>Reports the end of every process known to have ended and not reported yet.</summary>
    public void Drain() => _exits.Drain();
}
