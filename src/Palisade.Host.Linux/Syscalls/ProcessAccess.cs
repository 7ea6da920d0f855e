using Palisade.Interop;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Signals, pidfds, ptrace and cross-process memory access. The target is in a register (a pid) or is a
/// pidfd the guest holds, whose target is read from /proc/{tid}/fdinfo. After the decision the call
/// continues in Linux (see docs/security.md for the pidfd race this leaves).
/// </summary>
internal sealed unsafe partial class Supervisor
{
    private void HandleProcessAccess(in SeccompNotif n, Requester requester, Scratch s)
    {
        ulong a0 = n.Data.Args[0], a1 = n.Data.Args[1], a2 = n.Data.Args[2];
        int nr = n.Data.Nr;

        // The kernel boundary first: no call that names the kernel's process, a thread of it or its process group goes
        // on, whatever the drivers would say; kill(-1) is performed without the kernel.
        if (_boundary is not null)
        {
            int refusal = _boundary.DecideProcessCall(nr, a0, a1, n.Data.Args[4], (int)n.Pid);
            if (refusal == Boundary.KernelBoundary.SignalEveryone)
            {
                Reply(n.Id, Boundary.EveryProcessSignal.Send(requester.ProcessId, requester.ThreadId, (int)a1));
                return;
            }

            if (refusal != 0)
            {
                Reply(n.Id, refusal);
                return;
            }

            if ((_families & SyscallFamilies.ProcessAccess) == 0 || !IsObjectAccess(nr))
            {
                Continue(n.Id);
                return;
            }
        }

        ProcessAccessCall request;
        switch (nr)
        {
            case Sys.Kill:
                request = new ProcessAccessCall(nr, (int)a0, 0, (int)a1, SignalRights((int)a1));
                break;
            case Sys.Tkill:
                request = new ProcessAccessCall(nr, ProcessOf((int)a0, s), (int)a0, (int)a1, SignalRights((int)a1));
                break;
            case Sys.Tgkill:
                request = new ProcessAccessCall(nr, (int)a0, (int)a1, (int)a2, SignalRights((int)a2));
                break;
            case Sys.PidfdSendSignal:
                request = new ProcessAccessCall(nr, PidOfPidfd((int)n.Pid, (int)a0, s), 0, (int)a1, SignalRights((int)a1));
                break;
            case Sys.PidfdOpen:
                request = new ProcessAccessCall(nr, (int)a0, 0, 0, ProcessRights.OpenHandle);
                break;
            case Sys.PidfdGetfd:
                request = new ProcessAccessCall(nr, PidOfPidfd((int)n.Pid, (int)a0, s), 0, 0, ProcessRights.DuplicateHandle);
                break;
            case Sys.Ptrace:
                // PTRACE_TRACEME (0) makes the parent the tracer: the target is the caller itself.
                request = new ProcessAccessCall(nr, a0 == 0 ? requester.ProcessId : (int)a1, 0, 0, ProcessRights.Debug);
                break;
            case Sys.ProcessVmReadv:
                request = new ProcessAccessCall(nr, (int)a0, 0, 0, ProcessRights.ReadMemory);
                break;
            case Sys.ProcessVmWritev:
                request = new ProcessAccessCall(nr, (int)a0, 0, 0, ProcessRights.WriteMemory);
                break;
            default:
                // Only subscribed numbers reach the supervisor; anything else is a filter bug. Refuse it.
                Reply(n.Id, Errno.ENOSYS);
                return;
        }

        int decision = _mediator.ProcessAccess(requester, request);
        if (decision != 0)
        {
            Reply(n.Id, decision);
            return;
        }

        Continue(n.Id);
    }

    /// <summary>The calls the drivers' object callbacks decide (ProcessAccess); the boundary notifies more.</summary>
    private static bool IsObjectAccess(int nr) => nr is Sys.Kill or Sys.Tkill or Sys.Tgkill or Sys.PidfdSendSignal or Sys.PidfdOpen
        or Sys.PidfdGetfd or Sys.Ptrace or Sys.ProcessVmReadv or Sys.ProcessVmWritev;

    private static ProcessRights SignalRights(int signal) => signal switch
    {
        1 or 2 or 3 or 6 or 9 or 15 => ProcessRights.Terminate,
        _ => ProcessRights.Signal,
    };

    private int ProcessOf(int tid, Scratch s)
    {
        int process = _threads.ProcessOf(tid);
        if (process != 0)
        {
            return process;
        }

        int length = ProcFs.ReadStatus(tid, s.Proc2, s.Status);
        return length > 0 && ProcFs.TryField(s.Status.AsSpan(0, length), "Tgid:"u8, 10, out long tgid) ? (int)tgid : 0;
    }

    /// <summary>The pid a guest's pidfd refers to (fdinfo "Pid:"), or 0 when it is not a pidfd.</summary>
    private static int PidOfPidfd(int tid, int pidfd, Scratch s)
    {
        int n = ProcFs.ReadFdInfo(tid, pidfd, s.Proc2, s.Status);
        return n > 0 && ProcFs.TryField(s.Status.AsSpan(0, n), "Pid:"u8, 10, out long pid) ? (int)pid : 0;
    }
}
