using System.Reflection;
using Palisade.Api;
using Palisade.Kernel.Guard;

namespace Palisade.Kernel.Hosting;

/// <summary>
/// A piece of a host's wiring that the guard watches while it lives: for the Linux host, a supervisor's seccomp listener
/// descriptor (its number and the file it names) and the mediator objects it asks. The kernel does not know the host's
/// types: the host describes the wiring as numbers, and the guard digests them on every sweep against the values it saw
/// when the wiring was registered (<see cref="KernelHost.WatchWiring"/>).
/// </summary>
public interface IHostWiring
{
    /// <summary>What the wiring is, as the crash dump names it (for example <c>supervisor listener 7</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Copies the wiring's current values into <paramref name="destination"/> (descriptor numbers, device and inode of
    /// what they name, identity hashes of the objects wired together) and returns how many there are; when the
    /// destination is too small, returns the needed count negated and copies nothing. Called on the guard's threads:
    /// it must not allocate, block or throw.
    /// </summary>
    int CopyState(Span<long> destination);
}

/// <summary>A wiring under watch; disposing it (before the wiring is torn down, e.g. before the listener is closed) ends the watch.</summary>
public sealed class HostWatch : IDisposable
{
    private readonly KernelGuard? _guard;
    private readonly GuardAuthority? _authority;
    private int _region;

    internal HostWatch(KernelGuard? guard, GuardAuthority? authority, int region)
    {
        _guard = guard;
        _authority = authority;
        _region = region;
    }

    /// <summary>Ends the watch. Idempotent.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] // a guard change demands a kernel frame: never inlined into a caller
    public void Dispose()
    {
        int region = Interlocked.Exchange(ref _region, 0);
        if (region != 0 && _guard is not null && _authority is not null && !_guard.HasStopped)
        {
            _guard.Retire(_authority, region);
        }
    }
}

/// <summary>A host wiring as the guard sees it: a structure whose digest is the wiring's values.</summary>
internal sealed class HostWiringStructure(IHostWiring wiring) : IGuardedStructure
{
    private const int MaxValues = 64;

    public string Name { get; } = "host wiring: " + wiring.Name;

    public GuardRegionType RegionType => GuardRegionType.HostMediation;

    public void AppendDigest(ref GuardHasher hasher)
    {
        Span<long> values = stackalloc long[MaxValues];
        int count = wiring.CopyState(values);
        hasher.Add((long)count);
        for (int i = 0; i < count && i < MaxValues; i++)
        {
            hasher.Add(values[i]);
        }
    }

    public void DescribeEntries(ICollection<GuardedEntry> entries)
    {
        Span<long> values = stackalloc long[MaxValues];
        int count = wiring.CopyState(values);
        for (int i = 0; i < count && i < MaxValues; i++)
        {
            entries.Add(new GuardedEntry(Name + " value " + i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "0x" + values[i].ToString("X", System.Globalization.CultureInfo.InvariantCulture)));
        }

        if (count < 0 || count > MaxValues)
        {
            entries.Add(new GuardedEntry(Name + " count", count.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
    }
}

/// <summary>What a host asked the guard to watch, kept until the guard runs (a host may register before it starts).</summary>
internal sealed class HostWatchList
{
    private readonly Lock _lock = new();
    private readonly List<MethodInfo> _code = [];
    private KernelGuard? _guard;
    private GuardAuthority? _authority;

    /// <summary>Puts what was registered so far under <paramref name="guard"/>, and everything registered later.</summary>
    public void Attach(KernelGuard guard, GuardAuthority authority)
    {
        lock (_lock)
        {
            _guard = guard;
            _authority = authority;
            foreach (MethodInfo m in _code)
            {
                guard.Protect(new MethodCodeRegion(m));
            }
        }
    }

    public Status AddCode(MethodInfo method)
    {
        lock (_lock)
        {
            if (_code.Contains(method))
            {
                return Status.Success;
            }

            if (_guard is not null)
            {
                _guard.Protect(new MethodCodeRegion(method));
            }

            _code.Add(method);
            return Status.Success;
        }
    }

    public HostWatch AddWiring(IHostWiring wiring)
    {
        lock (_lock)
        {
            // A wiring registered before the guard runs is not watched: it is the host's to register after the guard starts.
            return _guard is null ? new HostWatch(null, null, 0)
                : new HostWatch(_guard, _authority, _guard.Protect(new HostWiringStructure(wiring)));
        }
    }
}
