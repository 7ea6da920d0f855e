using System.Runtime.InteropServices;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.Tests;

/// <summary>The region kinds other than code: native tables, kernel structures, cross views; and the cost of a digest.</summary>
public sealed unsafe class RegionTests
{
    [Fact]
    public void Native_table_digest_changes_when_one_slot_is_rewritten()
    {
        nint* table = (nint*)NativeMemory.AllocZeroed(16 * 8);
        try
        {
            var region = new NativeMemoryRegion("service table", GuardRegionType.SystemServiceTable, (nint)table, 16 * 8, holdsPointers: true);
            GuardKey key = GuardKey.CreateRandom();
            ulong before = region.ComputeDigest(key);

            table[5] = 0x1234;

            Assert.NotEqual(before, region.ComputeDigest(key));
        }
        finally
        {
            NativeMemory.Free(table);
        }
    }

    [Fact]
    public void Cross_view_finds_a_member_hidden_from_one_view()
    {
        var region = new CrossViewRegion("process list", GuardRegionType.ProcessList, 1, new ListView("table", [1, 2, 3]), new ListView("pidfds", [1, 3]));

        Assert.False(region.SelfConsistent(out _, out _));
        Assert.Contains(region.CaptureEvidence(), e => e.Key == "member 2" && e.Description!.Contains("hidden from pidfds", StringComparison.Ordinal));
    }

    [Fact]
    public void Cross_view_accepts_the_same_members_in_any_order()
    {
        var region = new CrossViewRegion("process list", GuardRegionType.ProcessList, 1, new ListView("table", [3, 1, 2]), new ListView("pidfds", [1, 2, 3]));

        Assert.True(region.SelfConsistent(out ulong a, out ulong b));
        Assert.Equal(a, b);
    }

    [Fact]
    public void Digesting_every_kind_of_region_allocates_nothing()
    {
        nint table = (nint)NativeMemory.AllocZeroed(64 * 8);
        try
        {
            GuardedRegion[] regions =
            [
                new NativeMemoryRegion("service table", GuardRegionType.SystemServiceTable, table, 64 * 8, holdsPointers: true),
                new MethodCodeRegion(typeof(SyscallRing).GetMethod(nameof(SyscallRing.Record), System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!),
                new JitEntryRegion(),
                new GuardedStructureRegion(CallbackTable.With(static pid => GC.KeepAlive(pid)), 7),
                new CrossViewRegion("process list", GuardRegionType.ProcessList, 1, new ListView("a", [1, 2]), new ListView("b", [2, 1])),
            ];
            GuardKey key = GuardKey.CreateRandom();
            DigestAll(regions, key);

            long before = GC.GetAllocatedBytesForCurrentThread();
            DigestAll(regions, key);

            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        finally
        {
            NativeMemory.Free((void*)table);
        }
    }

    [Fact]
    public void Recording_a_system_call_allocates_nothing()
    {
        var ring = new SyscallRing(8);
        ring.Record(1, 1, 0, 0, 0, 0, 0);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            ring.Record(10, 11, 257, i, 0, 0, 3);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Syscall_ring_keeps_the_most_recent_calls_oldest_first()
    {
        var ring = new SyscallRing(4);
        for (int i = 1; i <= 6; i++)
        {
            ring.Record(100, 101, i, 0, 0, 0, 0);
        }

        Assert.Equal([3, 4, 5, 6], ring.Snapshot().Select(r => r.Number));
    }

    private static ulong DigestAll(GuardedRegion[] regions, GuardKey key)
    {
        ulong sum = 0;
        foreach (GuardedRegion region in regions)
        {
            if (region.HasBaseline)
            {
                sum ^= region.ComputeDigest(key);
            }
            else
            {
                region.SelfConsistent(out ulong a, out _);
                sum ^= a;
            }
        }

        return sum;
    }
}

/// <summary>A kernel list view over a fixed set of ids, as the kernel's process table or pidfd set would be.</summary>
internal sealed class ListView(string name, long[] ids) : IGuardedListView
{
    public string Name => name;

    public int CopyMemberIds(Span<long> destination)
    {
        if (destination.Length < ids.Length)
        {
            return -ids.Length;
        }

        ids.CopyTo(destination);
        return ids.Length;
    }
}

/// <summary>
/// A callback table as the kernel keeps one: an immutable array swapped atomically, so the guard always digests a
/// consistent state.
/// </summary>
internal sealed class CallbackTable : IGuardedStructure
{
    private Action<int>[] _callbacks = [];

    public string Name => "process-create callbacks";

    public GuardRegionType RegionType => GuardRegionType.NotificationCallout;

    internal static CallbackTable With(Action<int> callback)
    {
        var table = new CallbackTable();
        table.Add(callback);
        return table;
    }

    internal void Add(Action<int> callback) => Volatile.Write(ref _callbacks, [.. Volatile.Read(ref _callbacks), callback]);

    public void AppendDigest(ref GuardHasher hasher)
    {
        Action<int>[] callbacks = Volatile.Read(ref _callbacks);
        hasher.Add((ulong)callbacks.Length);
        foreach (Action<int> callback in callbacks)
        {
            hasher.Add(callback);
        }
    }

    public void DescribeEntries(ICollection<GuardedEntry> entries)
    {
        Action<int>[] callbacks = Volatile.Read(ref _callbacks);
        for (int i = 0; i < callbacks.Length; i++)
        {
            entries.Add(new GuardedEntry($"process-create #{i}", "process-create callback", callbacks[i]));
        }
    }
}

/// <summary>A kernel callback table (changed only through its own methods and the guard's gate), as a protected structure.</summary>
internal sealed class KernelTable : IGuardedStructure
{
    internal Palisade.Kernel.Callbacks.CallbackTable<Palisade.Kernel.Callbacks.CallbackRegistration<Palisade.Api.ProcessCreateCallback>> Table { get; } =
        new("process-create callbacks", 64, byAltitude: false);

    public string Name => Table.Name;

    public GuardRegionType RegionType => GuardRegionType.NotificationCallout;

    internal static Palisade.Kernel.Callbacks.CallbackRegistration<Palisade.Api.ProcessCreateCallback> Entry() =>
        new(null, static (in Palisade.Api.ProcessCreateInfo _) => Palisade.Api.Status.Success);

    public void AppendDigest(ref GuardHasher hasher)
    {
        var entries = Table.Snapshot;
        hasher.Add((ulong)entries.Length);
        foreach (var e in entries)
        {
            e.AppendState(ref hasher);
        }
    }

    public void DescribeEntries(ICollection<GuardedEntry> entries)
    {
        foreach (var e in Table.Snapshot)
        {
            entries.Add(new GuardedEntry("process-create #" + e.Cookie.Value, "registered by " + e.OwnerName + (e.Disabled ? " (disabled)" : " (enabled)"), e.Callback));
        }
    }
}
