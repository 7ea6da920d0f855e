using System.Runtime.CompilerServices;

namespace Palisade.Kernel.Guard;

/// <summary>Adapts a kernel structure to a region; the id stands in for an address in bug check parameter 1.</summary>
internal sealed class GuardedStructureRegion : GuardedRegion
{
    private readonly ulong _id;

    internal GuardedStructureRegion(IGuardedStructure structure, ulong id)
        : base(structure.Name, structure.RegionType)
    {
        Structure = structure;
        _id = id;
    }

    internal IGuardedStructure Structure { get; }

    internal override ulong Address => _id;

    internal override bool Mutable => true;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal override void AppendDigest(ref GuardHasher hasher) => Structure.AppendDigest(ref hasher);

    internal override IReadOnlyList<RegionEvidence> CaptureEvidence()
    {
        var entries = new List<GuardedEntry>();
        Structure.DescribeEntries(entries);
        var items = new List<RegionEvidence>(entries.Count);
        foreach (GuardedEntry entry in entries)
        {
            string? owner = entry.Callback?.Method.DeclaringType?.Assembly.GetName().Name;
            items.Add(new RegionEvidence(
                entry.Key,
                EvidenceKind.Entry,
                (ulong)entry.Pointer,
                entry.Pointer != 0 ? BitConverter.GetBytes((ulong)entry.Pointer) : [],
                entry.Callback is { } callback ? $"{entry.Description}: {callback.Method.DeclaringType?.FullName}.{callback.Method.Name}" : entry.Description,
                owner));
        }

        return items;
    }
}
