using System.Collections.Concurrent;
using Palisade.Interop;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// A Landlock domain a guest thread restricted itself into, mirrored by supervisor threads restricted the same way, so
/// that every operation the supervisor performs for that guest is checked by Landlock exactly as the guest's own call
/// would be. landlock_restrict_self acts on the calling thread only and a thread inherits its creator's domain; so the
/// mirror of a domain is a thread created by the mirror of its parent domain (or by an unrestricted supervisor thread
/// for a first domain) that restricts itself with a copy of the guest's ruleset (pidfd_getfd: the same ruleset).
/// </summary>
/// <remarks>
/// <para>
/// Each domain has a spawner thread, which never acts for guests: it creates the domain's workers and the threads of
/// child domains (they must be created by a thread of this domain). Operations run on a worker; a worker that waits
/// (a FIFO open) does not hold the others back: a busy domain gets another worker, up to <see cref="MaxWorkers"/>.
/// Workers live as long as the supervisor; at most <see cref="MaxDomains"/> domains are mirrored per supervisor, and a
/// guest that would create more is refused (landlock_restrict_self fails with E2BIG, as Linux's own layer limit does).
/// </para>
/// <para>
/// A mirror is a sibling of the guest's domain with the same rules, not the same domain: Landlock's scoping (ptrace,
/// signals, abstract sockets) treats it as another domain, so a guest's operation through the supervisor that Landlock
/// scopes to its own domain (opening its own /proc/PID/maps, connecting to an abstract socket it created) is refused
/// where Linux would allow it. Refused, never allowed beyond the guest's sandbox (docs/security.md, "Landlock").
/// </para>
/// </remarks>
internal sealed class LandlockDomain
{
    /// <summary>Workers per domain.</summary>
    public const int MaxWorkers = 8;

    /// <summary>Domains mirrored per supervisor.</summary>
    public const int MaxDomains = 256;

    private static int s_domains;

    private readonly DomainThread _spawner;
    private readonly ConcurrentBag<DomainThread> _idle = [];
    private int _workers;

    private LandlockDomain(LandlockDomain? parent, DomainThread spawner, ulong stamp)
    {
        Parent = parent;
        Depth = (parent?.Depth ?? 0) + 1;
        _spawner = spawner;
        Stamp = stamp;
    }

    /// <summary>The domain this one nests in, or null for a first domain.</summary>
    public LandlockDomain? Parent { get; }

    /// <summary>How many layers the domain has (Linux allows 16).</summary>
    public int Depth { get; }

    /// <summary>
    /// A point in the order in which Linux allocates pids (the pidfs inode of the domain's spawner, created before the
    /// guest's own restriction took effect): a process whose pid was allocated before it cannot be in this domain.
    /// </summary>
    public ulong Stamp { get; }

    /// <summary>True when <paramref name="other"/> is this domain or one it nests in.</summary>
    public bool IsWithin(LandlockDomain? other)
    {
        for (LandlockDomain? d = this; d is not null; d = d.Parent)
        {
            if (ReferenceEquals(d, other))
            {
                return true;
            }
        }

        return other is null;
    }

    /// <summary>
    /// Creates the mirror of the domain a guest's landlock_restrict_self(<paramref name="ruleset"/>, <paramref name="flags"/>)
    /// makes from <paramref name="parent"/> (null: from no domain). Returns 0 and the domain, or the errno Linux's
    /// restriction gave the mirror (the guest's own call, with the same ruleset at the same depth, gets the same).
    /// Call on an unrestricted supervisor thread with the kernel's credentials.
    /// </summary>
    public static int Create(LandlockDomain? parent, int ruleset, uint flags, out LandlockDomain? domain)
    {
        domain = null;
        if (Interlocked.Increment(ref s_domains) > MaxDomains)
        {
            Interlocked.Decrement(ref s_domains);
            return Errno.E2BIG;
        }

        int error = 0;
        DomainThread? spawner = null;
        ulong stamp = 0;
        void Start()
        {
            // On the new thread: a fs context of its own (the creator's may be an acting thread's), restrict, then
            // serve as the domain's spawner.
            ActingThread.Prepare();
            long r = Libc.Syscall(Sys.LandlockRestrictSelf, ruleset, flags, 0, 0, 0, 0);
            if (r < 0 && Libc.LastError == Errno.EPERM && ThreadCredentials.SetNoNewPrivileges() == 0)
            {
                // Without CAP_SYS_ADMIN a thread must set no_new_privs first, as the guest did.
                r = Libc.Syscall(Sys.LandlockRestrictSelf, ruleset, flags, 0, 0, 0, 0);
            }

            error = r < 0 ? Libc.LastError : 0;
        }

        if (parent is null)
        {
            (spawner, stamp) = DomainThread.Start("palisade-landlock", Start);
        }
        else
        {
            (spawner, stamp) = parent._spawner.Spawn("palisade-landlock", Start);
        }

        if (error != 0)
        {
            spawner.Stop();
            Interlocked.Decrement(ref s_domains);
            return error;
        }

        domain = new LandlockDomain(parent, spawner, stamp);
        return 0;
    }

    /// <summary>Runs <paramref name="action"/> as <paramref name="guest"/> on a worker of this domain and waits for it; its result.</summary>
    public long Run(GuestAuthority guest, IGuestAction action, bool inGuestRoot)
    {
        if (!_idle.TryTake(out DomainThread? worker))
        {
            if (Interlocked.Increment(ref _workers) <= MaxWorkers)
            {
                (worker, _) = _spawner.Spawn("palisade-landlock-worker", ActingThread.Prepare);
            }
            else
            {
                Interlocked.Decrement(ref _workers);
                worker = null;
            }
        }

        if (worker is null)
        {
            // Every worker waits in an operation: this one waits for the first to come back.
            return RunWhenIdle(guest, action, inGuestRoot);
        }

        try
        {
            return worker.Run(() => GuestAction.RunHere(guest, action, inGuestRoot));
        }
        finally
        {
            _idle.Add(worker);
        }
    }

    /// <summary>Waits for a worker to come back, then runs on it (the rare case of every worker busy).</summary>
    private long RunWhenIdle(GuestAuthority guest, IGuestAction action, bool inGuestRoot)
    {
        DomainThread? worker;
        var wait = new SpinWait();
        while (!_idle.TryTake(out worker))
        {
            wait.SpinOnce(sleep1Threshold: 10);
        }

        try
        {
            return worker.Run(() => GuestAction.RunHere(guest, action, inGuestRoot));
        }
        finally
        {
            _idle.Add(worker);
        }
    }
}

/// <summary>A supervisor thread that runs what it is handed, one item at a time, and can create threads (which inherit its domain).</summary>
internal sealed class DomainThread
{
    private readonly BlockingCollection<Action> _work = [];

    private DomainThread()
    {
    }

    /// <summary>Starts a thread from the calling thread; it runs <paramref name="first"/>, then serves. Returns it with its pidfs stamp.</summary>
    public static (DomainThread Thread, ulong Stamp) Start(string name, Action first)
    {
        var created = new DomainThread();
        ulong stamp = 0;
        using var started = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            first();
            stamp = OwnStamp();
            started.Set();
            created.Serve();
        })
        {
            IsBackground = true,
            Name = name,
        };
        thread.Start();
        started.Wait();
        return (created, stamp);
    }

    /// <summary>Starts a new thread from this one (so it inherits this thread's domain).</summary>
    public (DomainThread Thread, ulong Stamp) Spawn(string name, Action first) => Run(() => Start(name, first));

    /// <summary>Runs <paramref name="work"/> on this thread and waits for its result.</summary>
    public T Run<T>(Func<T> work)
    {
        T result = default!;
        Exception? failure = null;
        using var done = new ManualResetEventSlim();
        _work.Add(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                done.Set();
            }
        });
        done.Wait();
        return failure is null ? result : throw new InvalidOperationException("a domain thread failed", failure);
    }

    /// <summary>Ends the thread after what it was handed.</summary>
    public void Stop() => _work.CompleteAdding();

    private void Serve()
    {
        foreach (Action item in _work.GetConsumingEnumerable())
        {
            item();
        }
    }

    /// <summary>The pidfs inode of the calling thread: where its tid stands in the order Linux allocates pids.</summary>
    private static unsafe ulong OwnStamp()
    {
        const int PIDFD_THREAD = Libc.O_EXCL;
        long tid = Libc.Syscall(Sys.Gettid, 0, 0, 0, 0, 0, 0);
        long fd = Libc.Syscall(Sys.PidfdOpen, tid, PIDFD_THREAD, 0, 0, 0, 0);
        if (fd < 0)
        {
            return 0;
        }

        Stat stat;
        int r = Libc.FStat((int)fd, &stat);
        Libc.CloseOwned((int)fd);
        return r == 0 ? stat.Ino : 0;
    }
}
