namespace Palisade.Kernel.Guard;

/// <summary>
/// A guarded list as its links show it: walks from the head through each member's next link. The other view of a
/// cross-view check is usually a <see cref="PublishedIdView"/>; a member unlinked from one shows up as a difference.
/// </summary>
/// <typeparam name="T">The member type.</typeparam>
internal abstract class LinkedListView<T> : IGuardedListView
    where T : class
{
    public abstract string Name { get; }

    /// <summary>The first member, read as the list's writers publish it.</summary>
    protected abstract T? Head { get; }

    public int CopyMemberIds(Span<long> destination)
    {
        int n = 0;
        for (T? member = Head; member is not null && n <= destination.Length; member = Next(member))
        {
            if (n < destination.Length)
            {
                destination[n] = IdOf(member);
            }

            n++;
        }

        return n <= destination.Length ? n : -n;
    }

    /// <summary>The member after <paramref name="member"/>.</summary>
    protected abstract T? Next(T member);

    /// <summary>The id the other view also lists.</summary>
    protected abstract long IdOf(T member);
}
