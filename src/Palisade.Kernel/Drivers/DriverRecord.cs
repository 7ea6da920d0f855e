using Palisade.Api;

namespace Palisade.Kernel.Drivers;

/// <summary>
/// The kernel's record of one loaded driver (its driver object): identity from the manifest, the hash of its
/// assembly, its entry object and its context. Linked into the loaded driver list.
/// </summary>
internal sealed class DriverRecord
{
    public DriverRecord(string name, string vendor, string version, string assemblyPath, string assemblySha256)
    {
        Name = name;
        Vendor = vendor;
        Version = version;
        AssemblyPath = assemblyPath;
        AssemblySha256 = assemblySha256;
    }

    public string Name { get; }

    public string Vendor { get; }

    public string Version { get; }

    public string AssemblyPath { get; }

    public string AssemblySha256 { get; }

    /// <summary>The assemblies that belong to the driver (its load context), to attribute code to it.</summary>
    public IReadOnlyList<System.Reflection.Assembly> Assemblies { get; set; } = [];

    public IDriver? Entry { get; set; }

    /// <summary>The verified package the driver came from; null for a driver started in-process (tests, benchmarks).</summary>
    public LoadedDriver? Package { get; set; }

    public DriverContext? Context { get; set; }

    /// <summary>Links of the loaded driver list (the kernel's PsLoadedModuleList counterpart).</summary>
    internal DriverRecord? Next;
    internal DriverRecord? Previous;

    public override string ToString() => Name;
}

/// <summary>
/// The loaded driver list: a doubly linked list (the structure a rootkit unlinks itself from) plus an independent
/// index by name; the guard cross-checks the two views.
/// </summary>
internal sealed class LoadedDriverList
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, DriverRecord> _byName = new(StringComparer.Ordinal);
    internal DriverRecord? Head;

    public event Action? Changed;

    public Status Add(DriverRecord d)
    {
        lock (_lock)
        {
            if (!_byName.TryAdd(d.Name, d))
            {
                return Status.ObjectNameCollision;
            }

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

    public void Remove(DriverRecord d)
    {
        lock (_lock)
        {
            if (!_byName.Remove(d.Name))
            {
                return;
            }

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

    public DriverRecord? Find(string name)
    {
        lock (_lock)
        {
            return _byName.GetValueOrDefault(name);
        }
    }

    /// <summary>The drivers as the index sees them.</summary>
    public DriverRecord[] Snapshot()
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
            for (DriverRecord? d = Volatile.Read(ref Head); d is not null && n < 1_000_000; d = d.Next)
            {
                n++;
            }

            return n;
        }
    }
}
