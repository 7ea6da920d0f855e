using Palisade.Interop;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// fork, vfork, clone, exit, exit_group. Their arguments are all in registers, so after the decision the
/// call continues in Linux unchanged (no copy to race with). clone3 never gets here: the filter answers
/// ENOSYS so that libc falls back to clone, whose flags the filter and this handler can see.
/// </summary>
internal sealed unsafe partial class Supervisor
{

    private void HandleLifetime(in SeccompNotif n, Requester requester)
    {
        switch (n.Data.Nr)
        {
            case Sys.Exit:
            case Sys.ExitGroup:
                bool whole = n.Data.Nr == Sys.ExitGroup;
                if ((_families & (SyscallFamilies.ProcessLifetime | SyscallFamilies.ProcessExits)) != 0)
                {
                    _mediator.ProcessExit(requester, whole, (int)n.Data.Args[0]);
                }

                if (whole)
                {
                    ForgetProcess(requester.ProcessId);
                }
                else
                {
                    _threads.ThreadEnds(requester.ThreadId);
                }

                Continue(n.Id);
                return;
            default:
                ulong flags = n.Data.Nr switch
                {
                    Sys.Fork => (ulong)Libc.SIGCHLD,
                    Sys.Vfork => Libc.CLONE_VFORK | 0x100 /* CLONE_VM */ | (ulong)Libc.SIGCHLD,
                    _ => n.Data.Args[0],
                };
                var kind = (flags & Libc.CLONE_THREAD) != 0 ? ProcessCreateKind.Thread
                    : (flags & Libc.CLONE_VFORK) != 0 ? ProcessCreateKind.VforkProcess
                    : ProcessCreateKind.Process;
                int decision = _mediator.ProcessCreate(requester, new ProcessCreateCall(kind, flags));
                if (decision != 0)
                {
                    Reply(n.Id, decision);
                    return;
                }

                Continue(n.Id);
                return;
        }
    }
}
