using System.Runtime.CompilerServices;

namespace Palisade.Kernel.Guard;

/// <summary>
/// A cross-view check of a list: two independent views must hold the same members. No baseline: the list changes
/// legitimately all the time, but never in one view only. A disagreement is re-read a few times before it counts,
/// because the kernel updates the two views one after the other.
/// </summary>
internal sealed class CrossViewRegion : GuardedRegion
{
    private const int Capacity = 4096;
    private const int Attempts = 4;

    private readonly IGuardedListView _primary;
    private readonly IGuardedListView _independent;
    private readonly ulong _id;

    // One scratch per guard thread, allocated on its first check: no lock a tamperer could hold to stall every
    // context at once, and nothing allocated per sweep.
    [ThreadStatic]
    private static long[]? t_scratch;

    internal CrossViewRegion(string name, GuardRegionType type, ulong id, IGuardedListView primary, IGuardedListView independent)
        : base(name, type)
    {
        ArgumentNullException.ThrowIfNull(primary);
        ArgumentNullException.ThrowIfNull(independent);
        _primary = primary;
        _independent = independent;
        _id = id;
    }

    internal override ulong Address => _id;

    internal override bool HasBaseline => false;

    internal override bool Mutable => true;

    internal override void AppendDigest(ref GuardHasher hasher)
    {
        hasher.Add(SetDigest(_primary));
        hasher.Add(SetDigest(_independent));
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal override bool SelfConsistent(out ulong expected, out ulong found)
    {
        expected = 0;
        found = 0;
        for (int attempt = 0; attempt < Attempts; attempt++)
        {
            expected = SetDigest(_primary);
            found = SetDigest(_independent);

            if (expected == found)
            {
                return true;
            }

            Thread.Yield();
        }

        return false;
    }

    internal override IReadOnlyList<RegionEvidence> CaptureEvidence()
    {
        HashSet<long> primary = Members(_primary);
        HashSet<long> independent = Members(_independent);
        var items = new List<RegionEvidence>();
        foreach (long id in primary)
        {
            items.Add(new RegionEvidence(
                $"member {id}",
                EvidenceKind.Entry,
                (ulong)id,
                BitConverter.GetBytes(id),
                independent.Contains(id) ? $"in both views" : $"in {_primary.Name} only, hidden from {_independent.Name}"));
        }

        foreach (long id in independent)
        {
            if (!primary.Contains(id))
            {
                items.Add(new RegionEvidence(
                    $"member {id}",
                    EvidenceKind.Entry,
                    (ulong)id,
                    BitConverter.GetBytes(id),
                    $"in {_independent.Name} only, hidden from {_primary.Name}"));
            }
        }

        return items;
    }

    // Order-independent: each id is mixed alone and the results summed, so the views may list members in any order.
    private static ulong SetDigest(IGuardedListView view)
    {
        long[] scratch = t_scratch ??= new long[Capacity];
        int count = view.CopyMemberIds(scratch);
        if (count < 0)
        {
            // More members than the scratch holds: fold the count in so the views still have to agree on size.
            return unchecked((ulong)count * 0x9E3779B97F4A7C15UL);
        }

        ulong sum = (ulong)count;
        for (int i = 0; i < count; i++)
        {
            ulong x = unchecked((ulong)scratch[i] * 0x9E3779B97F4A7C15UL);
            x ^= x >> 29;
            x = unchecked(x * 0xBF58476D1CE4E5B9UL);
            x ^= x >> 32;
            sum = unchecked(sum + x);
        }

        return sum;
    }

    private static HashSet<long> Members(IGuardedListView view)
    {
        var buffer = new long[Capacity];
        int count = view.CopyMemberIds(buffer);
        if (count < 0)
        {
            buffer = new long[-count];
            count = Math.Max(0, view.CopyMemberIds(buffer));
        }

        return [.. buffer.AsSpan(0, count).ToArray()];
    }
}
