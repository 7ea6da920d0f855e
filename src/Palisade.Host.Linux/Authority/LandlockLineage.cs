using Palisade.Interop;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// Which Landlock domain each guest thread is in. Linux does not say (a domain has no name a process can read), so the
/// supervisor follows how domains are made and inherited:
/// <list type="bullet">
/// <item>a thread that calls landlock_restrict_self enters a new domain nested in its own (notified, mirrored:
/// <see cref="Restricted"/>);</item>
/// <item>a new thread is in its creator's domain: the domain of its process, when all the process's threads share one
/// (or the deepest, when they restricted themselves one after another: a superset of restrictions, never fewer);</item>
/// <item>a new process is in the domain its parent had when it forked: the parent's domains are kept in the order they
/// were made, each stamped with a point in the order Linux allocates pids (<see cref="LandlockDomain.Stamp"/>), and the
/// child's own pid shows which of them it was forked under;</item>
/// <item>a child whose parent ended before the child's first mediated call is found in the list the parent's
/// exit_group left (<see cref="ProcessEnds"/>).</item>
/// </list>
/// A process whose domain cannot be told this way (an orphan of a parent killed by a signal, created after some domain
/// existed; children of a process whose threads are in domains that are not nested in each other) gets
/// <see cref="LandlockDomain"/> <c>null</c> with <see cref="Unknown"/> set: the supervisor refuses its operations
/// (EACCES) rather than perform them outside a sandbox it may be in.
/// </summary>
/// <remarks>Used by the supervisor's receiving thread only.</remarks>
internal sealed class LandlockLineage
{
    private readonly Dictionary<int, LandlockDomain?> _threads = [];
    private readonly Dictionary<int, ProcessDomains> _processes = [];
    private readonly Dictionary<int, ProcessDomains> _orphans = [];
    private ulong _firstStamp;

    /// <summary>True once any guest thread restricted itself: until then every lookup is free.</summary>
    public bool Any => _firstStamp != 0;

    /// <summary>
    /// The domain of thread <paramref name="tid"/> of <paramref name="process"/> (whose pidfd gives its creation stamp),
    /// child of <paramref name="parent"/>; null when it is in none. <paramref name="unknown"/> when it cannot be told.
    /// </summary>
    public LandlockDomain? DomainOf(int tid, SupervisedProcess process, int parent, bool newProcess, out bool unknown)
    {
        unknown = false;
        if (!Any)
        {
            // No domain yet: every process is in none, and is followed from here on.
            if (newProcess)
            {
                _processes[process.ProcessId] = new ProcessDomains(null, unknown: false);
            }

            return null;
        }

        if (_threads.TryGetValue(tid, out LandlockDomain? known))
        {
            return known;
        }

        LandlockDomain? domain;
        if (!newProcess && _processes.TryGetValue(process.ProcessId, out ProcessDomains? own))
        {
            // A thread of a process we follow: its creator was one of the process's threads.
            domain = own.Current(out unknown);
        }
        else
        {
            // A process first seen: its parent's domain when it forked.
            ulong stamp = StampOf(process);
            ProcessDomains? origin = _processes.GetValueOrDefault(parent) ?? _orphans.GetValueOrDefault(process.ProcessId);
            if (origin is not null && stamp != 0)
            {
                domain = origin.At(stamp, out unknown);
            }
            else
            {
                domain = null;
                unknown = stamp == 0 || stamp > _firstStamp;
            }

            _orphans.Remove(process.ProcessId);
            _processes[process.ProcessId] = new ProcessDomains(domain, unknown);
        }

        if (!unknown)
        {
            _threads[tid] = domain;
        }

        return domain;
    }

    /// <summary>Thread <paramref name="tid"/> of <paramref name="processId"/> entered <paramref name="domain"/> (its own landlock_restrict_self).</summary>
    public void Restricted(int tid, int processId, LandlockDomain domain, bool onlyThread)
    {
        if (_firstStamp == 0)
        {
            _firstStamp = domain.Stamp == 0 ? 1 : domain.Stamp;
        }

        _threads[tid] = domain;
        if (!_processes.TryGetValue(processId, out ProcessDomains? p))
        {
            _processes[processId] = p = new ProcessDomains(domain.Parent, unknown: false);
        }

        p.Entered(domain, onlyThread);
    }

    /// <summary>The domain a thread is in now (before a restriction it asks for), as <see cref="DomainOf"/> found it.</summary>
    public LandlockDomain? Current(int tid) => _threads.GetValueOrDefault(tid);

    /// <summary>A thread ended: its id may name another thread later.</summary>
    public void ThreadEnds(int tid) => _threads.Remove(tid);

    /// <summary>
    /// A process ends (its exit_group). Its children that the supervisor has not seen yet keep what they were forked
    /// under: they are found by walking /proc for processes whose parent it is (only when any domain exists).
    /// </summary>
    public void ProcessEnds(int processId, IEnumerable<int> threads)
    {
        if (!_processes.Remove(processId, out ProcessDomains? ending) || !Any)
        {
            return;
        }

        foreach (int tid in threads)
        {
            _threads.Remove(tid);
        }

        foreach (int child in Launch.GuestTree.Children(processId))
        {
            if (!_processes.ContainsKey(child))
            {
                _orphans[child] = ending;
            }
        }
    }

    private static unsafe ulong StampOf(SupervisedProcess process)
    {
        Stat stat;
        bool added = false;
        try
        {
            process.Pidfd.DangerousAddRef(ref added);
            return Libc.FStat((int)process.Pidfd.DangerousGetHandle(), &stat) == 0 ? stat.Ino : 0;
        }
        finally
        {
            if (added)
            {
                process.Pidfd.DangerousRelease();
            }
        }
    }

    /// <summary>The domains a process has had, in the order its threads made them.</summary>
    private sealed class ProcessDomains(LandlockDomain? initial, bool unknown)
    {
        private readonly LandlockDomain? _initial = initial;
        private List<LandlockDomain>? _made;
        private LandlockDomain? _current = initial;
        private bool _unknown = unknown;

        /// <summary>A thread of the process entered <paramref name="domain"/>.</summary>
        public void Entered(LandlockDomain domain, bool onlyThread)
        {
            (_made ??= []).Add(domain);
            if (domain.IsWithin(_current))
            {
                _current = domain; // deeper on the same line: every thread now has at most the restrictions of this one
            }
            else if (!onlyThread && !(_current?.IsWithin(domain) ?? false))
            {
                _unknown = true; // two threads on different lines: a new thread could be either's
            }
            else
            {
                _current = domain;
            }
        }

        /// <summary>The domain a new thread of the process is in.</summary>
        public LandlockDomain? Current(out bool unknown)
        {
            unknown = _unknown;
            return _current;
        }

        /// <summary>The domain a child forked when Linux allocated pids at <paramref name="stamp"/> is in.</summary>
        public LandlockDomain? At(ulong stamp, out bool unknown)
        {
            unknown = _unknown;
            LandlockDomain? domain = _initial;
            foreach (LandlockDomain d in _made ?? [])
            {
                if (d.Stamp != 0 && d.Stamp < stamp)
                {
                    domain = d;
                }
            }

            return domain;
        }
    }
}
