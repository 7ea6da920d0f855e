using Palisade.Api;

namespace Palisade.Kernel.Drivers;

/// <summary>
/// The loaded driver list: a doubly linked list (the structure a rootkit unlinks itself from) plus an independent
/// index by name; the guard cross-checks the two views.
/// </summary>
internal sealed class LoadedDriverList
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, DriverObject> _byName = new(StringComparer.Ordinal);
    private readonly Guard.PublishedIdView _index = new("loaded driver index");
    internal DriverObject? Head;

    public event Action? Changed;

    /// <summary>Opens the guard's sanctioned-change window around every change (set when the guard protects the list).</summary>
    public Guard.GuardGate? ChangeGate { get; set; }

    /// <summary>The list as its links show it.</summary>
    public Guard.IGuardedListView LinkedView => new Linked(this);

    /// <summary>The list as the index by name shows it (an id array republished on every change).</summary>
    public Guard.IGuardedListView IndexView => _index;

    private sealed class Linked(LoadedDriverList list) : Guard.LinkedListView<DriverObject>
    {
        public override string Name => "loaded driver links";

        protected override DriverObject? Head => Volatile.Read(ref list.Head);

        protected override DriverObject? Next(DriverObject member) => member.Next;

        protected override long IdOf(DriverObject member) => member.Id;
    }

    private void PublishIds()
    {
        var ids = new long[_byName.Count];
        int i = 0;
        foreach (DriverObject d in _byName.Values)
        {
            ids[i++] = d.Id;
        }

        _index.Publish(ids);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] // a guard change demands a kernel frame: never inlined into a caller
    public Status Add(DriverObject d)
    {
        lock (_lock)
        {
            using Guard.GuardChange scope = ChangeGate?.Open() ?? default;
            if (!_byName.TryAdd(d.Name, d))
            {
                return Status.ObjectNameCollision;
            }

            PublishIds();
            d.Next = Head;
            d.Previous = null;
            if (Head is not null)
            {
                Head.Previous = d;
            }

            Head = d;
        }

        Changed?.Invoke();
        return Status.Success;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] // a guard change demands a kernel frame: never inlined into a caller
    public void Remove(DriverObject d)
    {
        lock (_lock)
        {
            using Guard.GuardChange scope = ChangeGate?.Open() ?? default;
            if (!_byName.Remove(d.Name))
            {
                return;
            }

            PublishIds();
            if (d.Previous is not null)
            {
                d.Previous.Next = d.Next;
            }
            else
            {
                Head = d.Next;
            }

            if (d.Next is not null)
            {
                d.Next.Previous = d.Previous;
            }

            d.Next = d.Previous = null;
        }

        Changed?.Invoke();
    }

    public DriverObject? Find(string name)
    {
        lock (_lock)
        {
            return _byName.GetValueOrDefault(name);
        }
    }

    /// <summary>The drivers as the index sees them.</summary>
    public DriverObject[] Snapshot()
    {
        lock (_lock)
        {
            return [.. _byName.Values];
        }
    }

    /// <summary>The number of entries in the index view (for the guard's cross-check).</summary>
    public int IndexCount
    {
        get
        {
            lock (_lock)
            {
                return _byName.Count;
            }
        }
    }

    /// <summary>The number of entries reachable through the links (for the guard's cross-check).</summary>
    public int LinkedCount
    {
        get
        {
            int n = 0;
            for (DriverObject? d = Volatile.Read(ref Head); d is not null && n < 1_000_000; d = d.Next)
            {
                n++;
            }

            return n;
        }
    }
}
