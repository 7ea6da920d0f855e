namespace Palisade.Testing;

/// <summary>Measures what a hot path allocates once it is warm.</summary>
internal static class Allocations
{
    /// <summary>
    /// Runs <paramref name="body"/> <paramref name="iterations"/> times per round, for up to <paramref name="rounds"/>
    /// rounds, and returns the fewest bytes a round allocated on this thread (0 ends the rounds early). A path that
    /// allocates on every call allocates in every round, so it never measures 0; what happens once per object (the
    /// runtime's first contention on a lock, which creates its wait event) falls in one round only, whichever other
    /// thread (a stream's writer, a driver's worker) happened to hold the lock at that moment.
    /// </summary>
    public static long SteadyState(Action body, int iterations, int rounds = 3)
    {
        ArgumentNullException.ThrowIfNull(body);
        long fewest = long.MaxValue;
        for (int round = 0; round < rounds && fewest != 0; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < iterations; i++)
            {
                body();
            }

            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        return fewest;
    }
}
