namespace Palisade.Kernel.Guard;

/// <summary>
/// One protected region: a name, a region type (bug check parameter 4), an address or id (parameter 1) and a way to
/// digest its current contents without allocating. Evidence (the bytes, pointers or entries behind the digest) is
/// captured only at baseline and at a bug check, where allocation is fine, so the dump can show what changed.
/// </summary>
internal abstract class GuardedRegion
{
    protected GuardedRegion(string name, GuardRegionType type)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Type = type;
    }

    /// <summary>The region's name as shown in dumps and on the stop screen.</summary>
    internal string Name { get; }

    /// <summary>The region type, bug check parameter 4.</summary>
    internal GuardRegionType Type { get; }

    /// <summary>Bug check parameter 1: the region's address, or its identifier when it has no single address.</summary>
    internal abstract ulong Address { get; }

    /// <summary>
    /// True when the region compares against a baseline; false when it carries its own reference (cross views).
    /// </summary>
    internal virtual bool HasBaseline => true;

    /// <summary>
    /// True for a kernel structure the kernel changes through the guard's sanctioned window (a table, a list); false for
    /// code and fixed tables, which no window may ever cover.
    /// </summary>
    internal virtual bool Mutable => false;

    /// <summary>Adds the region's current contents to <paramref name="hasher"/>. Must not allocate.</summary>
    internal abstract void AppendDigest(ref GuardHasher hasher);

    /// <summary>
    /// For regions without a baseline: compares the region with itself (two views) and returns the two digests.
    /// </summary>
    internal virtual bool SelfConsistent(out ulong expected, out ulong found)
    {
        expected = 0;
        found = 0;
        return true;
    }

    /// <summary>Captures what the digest covers, for the crash dump. May allocate.</summary>
    internal abstract IReadOnlyList<RegionEvidence> CaptureEvidence();

    internal ulong ComputeDigest(in GuardKey key)
    {
        var hasher = new GuardHasher(key);
        AppendDigest(ref hasher);
        return hasher.Finish();
    }
}

/// <summary>What one piece of evidence is, which decides how the analysis reads it.</summary>
internal enum EvidenceKind
{
    /// <summary>Bytes of machine code starting at <see cref="RegionEvidence.Address"/>.</summary>
    Code,

    /// <summary>A pointer-sized value stored at <see cref="RegionEvidence.Address"/> (a cell, a vtable slot).</summary>
    Pointer,

    /// <summary>Plain data bytes.</summary>
    Data,

    /// <summary>An entry of a kernel structure (a callback, a list member) described by text and its owner.</summary>
    Entry,
}

/// <summary>
/// One piece of a region's evidence. <see cref="Key"/> pairs a baseline item with the current one.
/// For entries, <see cref="Owner"/> names the assembly that supplied the entry (a callback's declaring assembly).
/// </summary>
internal sealed record RegionEvidence(
    string Key,
    EvidenceKind Kind,
    ulong Address,
    byte[] Bytes,
    string? Description = null,
    string? Owner = null)
{
    internal ulong PointerValue => Bytes.Length >= 8 ? BitConverter.ToUInt64(Bytes, 0) : 0;
}
