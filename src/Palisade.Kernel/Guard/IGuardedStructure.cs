namespace Palisade.Kernel.Guard;

/// <summary>
/// A kernel-managed structure the guard protects (a callback table, a driver object, a list): the kernel
/// implements it, the guard keeps the baseline. Register it with <see cref="KernelGuard.Protect(IGuardedStructure)"/>
/// and change the structure only inside <see cref="KernelGuard.BeginChange"/>, which re-baselines it.
/// </summary>
internal interface IGuardedStructure
{
    /// <summary>The structure's name as shown in dumps.</summary>
    string Name { get; }

    /// <summary>The region type, e.g. <see cref="GuardRegionType.NotificationCallout"/>.</summary>
    GuardRegionType RegionType { get; }

    /// <summary>
    /// Adds the structure's current contents to <paramref name="hasher"/>: compute the digest now. Called on guard
    /// threads, concurrently with the kernel; it must read a consistent state (e.g. an immutable array swapped
    /// atomically) and must not allocate.
    /// </summary>
    void AppendDigest(ref GuardHasher hasher);

    /// <summary>
    /// Describes the entries for a crash dump: one item per entry, with a stable key and, for callbacks, the
    /// assembly that supplied it. Called at baseline and at a bug check only; may allocate.
    /// </summary>
    void DescribeEntries(ICollection<GuardedEntry> entries);
}

/// <summary>One entry of a kernel structure: a stable key, what it is, and the delegate or pointer it holds.</summary>
/// <param name="Key">Stable identity of the entry (e.g. "process-create #3").</param>
/// <param name="Description">What the entry holds, for a reader of the dump.</param>
/// <param name="Callback">The callback held, if any; its declaring assembly is the entry's owner.</param>
/// <param name="Pointer">The native pointer held, if any; its owner is found from the loaded code.</param>
internal sealed record GuardedEntry(string Key, string Description, Delegate? Callback = null, nint Pointer = 0);

/// <summary>
/// One independent view of a kernel list (the active process list, the loaded driver list): the ids of its members.
/// Two views built from different sources must agree; a member that one view shows and the other hides is the
/// signature of a rootkit unlinking itself.
/// </summary>
internal interface IGuardedListView
{
    /// <summary>The view's name, e.g. "process table" or "pidfd set".</summary>
    string Name { get; }

    /// <summary>
    /// Copies the member ids into <paramref name="destination"/> in any order and returns how many there are; when
    /// the destination is too small, returns the needed count negated and copies nothing. Must not allocate.
    /// </summary>
    int CopyMemberIds(Span<long> destination);
}
