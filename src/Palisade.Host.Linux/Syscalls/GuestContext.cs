using Palisade.Interop;
using Palisade.Host.Linux.Authority;
using Palisade.Host.Linux.Supervision;
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
internal sealed unsafe partial class Supervisor
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
    private bool HandleContextChange(in SeccompNotif n, SupervisedThread thread, Scratch s)
    {
        int tid = (int)n.Pid;
        int process = thread.Requester.ProcessId;
        switch (n.Data.Nr)
        {
            case Sys.LandlockRestrictSelf:
                return HandleLandlock(in n, thread, s);
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
                // Credentials are per thread: glibc makes each thread call setuid itself.
                _threads.ForgetThread(tid);
                break;
        }

        Continue(n.Id);
        return true;
    }

    /// <summary>landlock_restrict_self flags Linux 6.15 knows (the LANDLOCK_RESTRICT_SELF_LOG_* flags).</summary>
    private const uint KnownLandlockFlags = 0x7;

    /// <summary>
    /// A guest thread restricts itself with Landlock: the supervisor makes the same domain first, on a thread of its own
    /// created from the mirror of the guest's current domain, with a copy of the guest's very ruleset (pidfd_getfd).
    /// When Linux refuses the mirror (the ruleset is no ruleset, 16 layers are reached, the supervisor's limit of
    /// domains is reached), the guest's call gets that errno, as the guest's own call would for the first two. Otherwise
    /// the guest's call runs, and from its next call on, everything the supervisor does for it runs in the mirror.
    /// What Linux checks about the caller (no_new_privs or CAP_SYS_ADMIN, known flags, a ruleset descriptor at all) is
    /// left to Linux: then no domain is made for the guest either.
    /// </summary>
    private bool HandleLandlock(in SeccompNotif n, SupervisedThread thread, Scratch s)
    {
        const int CAP_SYS_ADMIN = 21;
        int tid = (int)n.Pid;
        int rulesetFd = (int)n.Data.Args[0];
        uint flags = (uint)n.Data.Args[1];
        GuestAuthority guest = thread.Authority;

        // Read now, not from what was kept: prctl(PR_SET_NO_NEW_PRIVS) is not notified, and sandboxing code sets it right
        // before this call. The thread waits in this call, so what is read is its state at the call.
        int length = ProcFs.ReadStatus(tid, s.Proc2, s.Status);
        if (length <= 0 || !ThreadStatus.TryParse(s.Status.AsSpan(0, length), out ThreadStatus status))
        {
            Reply(n.Id, Errno.ESRCH);
            return true;
        }

        bool permitted = status.NoNewPrivileges || (status.EffectiveCapabilities & (1UL << CAP_SYS_ADMIN)) != 0;
        bool onlyThread = ProcFs.TryField(s.Status.AsSpan(0, length), "Threads:"u8, 10, out long threads) && threads == 1;
        int ruleset = rulesetFd < 0 || (flags & ~KnownLandlockFlags) != 0 || !permitted ? -1 : TakeGuestFd(thread.Process, rulesetFd);
        if (ruleset < 0)
        {
            Continue(n.Id); // no new domain (a logging change), or Linux refuses the call itself
            return true;
        }

        if (guest.DomainUnknown)
        {
            // The supervisor does not know where this thread is; it performs nothing for it anyway. Let it restrict.
            Libc.CloseOwned(ruleset);
            Continue(n.Id);
            return true;
        }

        int error = LandlockDomain.Create(guest.Domain, ruleset, flags, out LandlockDomain? domain);
        Libc.CloseOwned(ruleset);
        if (error != 0)
        {
            Reply(n.Id, error);
            return true;
        }

        _threads.Lineage.Restricted(tid, thread.Requester.ProcessId, domain!, onlyThread);
        _threads.ForgetThread(tid);
        Continue(n.Id);
        return true;
    }
}
