using Palisade.Interop;
using Palisade.Host.Linux.Authority;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// The calls that change what the supervisor must act with for a guest: its credentials (the set*id family,
/// setgroups, capset), its sandbox (landlock_restrict_self, its own seccomp filters), its root, mount namespace or
/// umask (chroot, pivot_root, unshare, setns, umask), its image (execve, execveat: a set-id image changes its
/// credentials) and its end (exit, exit_group). The filter notifies them whenever the supervisor acts for guests;
/// each is let run as the guest made it, after the supervisor forgot what the change makes stale, so the guest's next
/// mediated call is read again (<see cref="GuestThreads"/>). They are rare, so this costs nothing on the hot path.
/// </summary>
internal sealed partial class Supervisor
{
    /// <summary>True for a call the filter notifies because it changes a guest's context.</summary>
    private static bool IsContextChange(int nr) => nr is Sys.Setuid or Sys.Setgid or Sys.Setreuid or Sys.Setregid
        or Sys.Setresuid or Sys.Setresgid or Sys.Setfsuid or Sys.Setfsgid or Sys.Setgroups or Sys.Capset
        or Sys.LandlockRestrictSelf or Sys.Seccomp or Sys.Prctl or Sys.Umask or Sys.Chroot or Sys.PivotRoot
        or Sys.Unshare or Sys.Setns or Sys.Execve or Sys.Execveat;

    /// <summary>
    /// Forgets what <paramref name="n"/>'s call makes stale. Returns true when it also answered (the call continues);
    /// false when a family handler still has to decide it (an exec the mediator watches).
    /// </summary>
    private bool HandleContextChange(in SeccompNotif n, SupervisedThread thread)
    {
        int tid = (int)n.Pid;
        int process = thread.Requester.ProcessId;
        switch (n.Data.Nr)
        {
            case Sys.Execve:
            case Sys.Execveat:
                // A set-id image (or file capabilities) changes the credentials, and the exec replaces the address space.
                _threads.ProcessExecs(process);
                if ((_families & SyscallFamilies.Exec) != 0)
                {
                    return false;
                }

                break;
            case Sys.Seccomp:
            case Sys.Prctl:
                // A filter of the guest's own (prctl is notified for PR_SET_SECCOMP only); with TSYNC it reaches every
                // thread of the process, and a filter can end a thread without an exit call: read them all again.
                _threads.ForgetThreadsOf(process);
                break;
            case Sys.Umask:
            case Sys.Chroot:
            case Sys.PivotRoot:
            case Sys.Unshare:
            case Sys.Setns:
                // The fs context (root, cwd, umask) may be shared with other threads and processes (CLONE_FS), and
                // pivot_root moves the root of every process whose root was the old one: read everyone again.
                _threads.InvalidateAll();
                break;
            default:
                // Credentials and Landlock domains are per thread: glibc makes each thread call setuid itself.
                _threads.ForgetThread(tid);
                break;
        }

        Continue(n.Id);
        return true;
    }
}
