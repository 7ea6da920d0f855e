using Palisade.Kernel.Objects;

namespace Palisade.Kernel.Processes;

/// <summary>
/// The process and thread table. Processes are kept twice: in the active process list (linked, the view a rootkit
/// unlinks a process from) and in an index by pid (the view the dispatcher uses). The guard cross-checks them.
/// </summary>
internal sealed class ProcessTable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, GuestProcess> _byPid = [];
    private readonly Dictionary<int, GuestThread> _threads = [];
    private readonly Guard.PublishedIdView _index = new("process index");
    internal GuestProcess? Head;

    public ProcessTable(ObjectType processType, ObjectType threadType)
    {
        ProcessType = processType;
        ThreadType = threadType;
    }

    public ObjectType ProcessType { get; }

    public ObjectType ThreadType { get; }

    public event Action? Changed;

    /// <summary>Opens the guard's sanctioned-change window around every change (set when the guard protects the list).</summary>
    public Guard.GuardGate? ChangeGate { get; set; }

    /// <summary>The processes as the active process list's links show them (member id: the pid).</summary>
    public Guard.IGuardedListView LinkedView => new Linked(this);

    /// <summary>The processes as the index by pid shows them (a pid array republished on every change).</summary>
    public Guard.IGuardedListView IndexView => _index;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byPid.Count;
            }
        }
    }

    private long _lastStartKey;

    /// <summary>A start key no process had before: 1, 2, 3… for the kernel's life (a 64-bit counter never wraps).</summary>
    public long ReserveStartKey() => Interlocked.Increment(ref _lastStartKey);

    /// <summary>The live process whose start key is <paramref name="startKey"/>, or null (a walk: for driver requests, not hot paths).</summary>
    public GuestProcess? FindByStartKey(long startKey)
    {
        lock (_lock)
        {
            foreach (GuestProcess p in _byPid.Values)
            {
                if (p.StartKey == startKey)
                {
                    return p;
                }
            }

            return null;
        }
    }

    /// <summary>The start key of the live process <paramref name="pid"/>, or 0 when the kernel does not know it.</summary>
    public long StartKeyOf(int pid) => Find(pid)?.StartKey ?? 0;

    /// <summary>Creates the process record; returns the existing one when the pid is already known.
    /// <paramref name="startKey"/> is one <see cref="ReserveStartKey"/> gave, or 0 for a new one.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] // a guard change demands a kernel frame: never inlined into a caller
    public GuestProcess Add(int pid, int parentPid, int userId, out bool created, long startKey = 0)
    {
        GuestProcess p;
        lock (_lock)
        {
            if (_byPid.TryGetValue(pid, out GuestProcess? existing))
            {
                created = false;
                return existing;
            }

            p = new GuestProcess(ProcessType, pid, parentPid, userId, startKey != 0 ? startKey : ReserveStartKey());
            using Guard.GuardChange scope = ChangeGate?.Open() ?? default;
            _byPid.Add(pid, p);
            PublishPids();
            p.Next = Head;
            if (Head is not null)
            {
                Head.Previous = p;
            }

            Head = p;
            _threads[pid] = new GuestThread(ThreadType, pid, pid);
            created = true;
        }

        Changed?.Invoke();
        return p;
    }

    public GuestProcess? Find(int pid)
    {
        lock (_lock)
        {
            return _byPid.GetValueOrDefault(pid);
        }
    }

    public GuestThread? FindThread(int tid)
    {
        lock (_lock)
        {
            return _threads.GetValueOrDefault(tid);
        }
    }

    public GuestThread AddThread(int pid, int tid, out bool created)
    {
        lock (_lock)
        {
            if (_threads.TryGetValue(tid, out GuestThread? t))
            {
                created = false;
                return t;
            }

            t = new GuestThread(ThreadType, pid, tid);
            _threads.Add(tid, t);
            created = true;
            return t;
        }
    }

    public bool RemoveThread(int tid)
    {
        GuestThread? t;
        lock (_lock)
        {
            if (!_threads.Remove(tid, out t))
            {
                return false;
            }
        }

        t.Release();
        return true;
    }

    /// <summary>Unlinks and forgets a process; returns it, or null when unknown.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] // a guard change demands a kernel frame: never inlined into a caller
    public GuestProcess? Remove(int pid)
    {
        GuestProcess? p;
        lock (_lock)
        {
            if (!_byPid.ContainsKey(pid))
            {
                return null;
            }

            using Guard.GuardChange scope = ChangeGate?.Open() ?? default;
            _byPid.Remove(pid, out p);
            PublishPids();
            if (p!.Previous is not null)
            {
                p.Previous.Next = p.Next;
            }
            else
            {
                Head = p.Next;
            }

            if (p.Next is not null)
            {
                p.Next.Previous = p.Previous;
            }

            p.Next = p.Previous = null;
            p.Exited = true;
            if (_threads.Remove(pid, out GuestThread? main))
            {
                main.Release();
            }
        }

        Changed?.Invoke();
        p.Handles.CloseAll();
        p.Release();
        return p;
    }

    private void PublishPids()
    {
        var pids = new long[_byPid.Count];
        int i = 0;
        foreach (int pid in _byPid.Keys)
        {
            pids[i++] = pid;
        }

        _index.Publish(pids);
    }

    private sealed class Linked(ProcessTable table) : Guard.LinkedListView<GuestProcess>
    {
        public override string Name => "active process links";

        protected override GuestProcess? Head => Volatile.Read(ref table.Head);

        protected override GuestProcess? Next(GuestProcess member) => member.Next;

        protected override long IdOf(GuestProcess member) => member.ProcessId;
    }

    public GuestProcess[] Snapshot()
    {
        lock (_lock)
        {
            return [.. _byPid.Values];
        }
    }

    /// <summary>The number of processes in the index view.</summary>
    public int IndexCount => Count;

    /// <summary>The number of processes reachable through the active process list.</summary>
    public int LinkedCount
    {
        get
        {
            int n = 0;
            for (GuestProcess? p = Volatile.Read(ref Head); p is not null && n < 10_000_000; p = p.Next)
            {
                n++;
            }

            return n;
        }
    }
}
