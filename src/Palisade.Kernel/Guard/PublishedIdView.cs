namespace Palisade.Kernel.Guard;

/// <summary>
/// The independent view of a kernel list for a cross-view check: an id array the list's owner republishes (under its
/// own lock) on every change, and the guard copies without locking.
/// </summary>
/// <param name="name">The view's name in dumps, e.g. "process index".</param>
internal sealed class PublishedIdView(string name) : IGuardedListView
{
    private long[] _ids = [];

    public string Name => name;

    /// <summary>Replaces the published ids; the array must not be changed afterwards.</summary>
    public void Publish(long[] ids) => Volatile.Write(ref _ids, ids);

    public int CopyMemberIds(Span<long> destination)
    {
        long[] ids = Volatile.Read(ref _ids);
        if (ids.Length > destination.Length)
        {
            return -ids.Length;
        }

        ids.CopyTo(destination);
        return ids.Length;
    }
}
