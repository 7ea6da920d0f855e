using System.Runtime.CompilerServices;

namespace Palisade.Kernel.Guard;

/// <summary>
/// A range of native memory the kernel owns, such as the system service table (a NativeMemory block of function
/// pointers). The kernel must keep the range allocated for as long as the guard runs.
/// </summary>
internal sealed class NativeMemoryRegion : GuardedRegion
{
    private readonly nint _address;
    private readonly int _length;
    private readonly bool _holdsPointers;

    /// <param name="name">The region's name.</param>
    /// <param name="type">The region type, e.g. <see cref="GuardRegionType.SystemServiceTable"/>.</param>
    /// <param name="address">Start of the range.</param>
    /// <param name="length">Length in bytes; a multiple of 8 when <paramref name="holdsPointers"/>.</param>
    /// <param name="holdsPointers">True when the range is a table of pointers; the dump then lists changed slots.</param>
    internal NativeMemoryRegion(string name, GuardRegionType type, nint address, int length, bool holdsPointers)
        : base(name, type)
    {
        if (address == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(address), "The region's address must not be null.");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        if (holdsPointers && length % 8 != 0)
        {
            throw new ArgumentException("A pointer table's length must be a multiple of 8 bytes.", nameof(length));
        }

        _address = address;
        _length = length;
        _holdsPointers = holdsPointers;
    }

    internal override ulong Address => (ulong)_address;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal override void AppendDigest(ref GuardHasher hasher) => hasher.Add(NativeCode.View(_address, _length));

    internal override IReadOnlyList<RegionEvidence> CaptureEvidence()
    {
        if (!_holdsPointers)
        {
            return [new RegionEvidence("data", EvidenceKind.Data, (ulong)_address, NativeCode.View(_address, _length).ToArray())];
        }

        var items = new List<RegionEvidence>(_length / 8);
        for (int offset = 0; offset < _length; offset += 8)
        {
            items.Add(new RegionEvidence(
                $"slot {offset / 8}",
                EvidenceKind.Pointer,
                (ulong)(_address + offset),
                NativeCode.View(_address + offset, 8).ToArray()));
        }

        return items;
    }
}
