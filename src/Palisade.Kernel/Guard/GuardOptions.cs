namespace Palisade.Kernel.Guard;

/// <summary>
/// The guard's schedule. Every value is bounded: no setting turns the guard off or stretches it into uselessness,
/// because the bounds below are enforced at <see cref="KernelGuard.Start"/>. docs/bugchecks.md documents them.
/// </summary>
internal sealed class GuardOptions
{
    /// <summary>Fewest checking contexts allowed: with one, nobody checks the checker.</summary>
    internal const int MinContexts = 2;

    /// <summary>Most checking contexts allowed (one code copy each, see <see cref="GuardContext"/>).</summary>
    internal const int MaxContexts = 4;

    /// <summary>The longest interval allowed between two sweeps of one context.</summary>
    internal static readonly TimeSpan LongestInterval = TimeSpan.FromSeconds(5);

    /// <summary>The shortest interval allowed between two sweeps of one context.</summary>
    internal static readonly TimeSpan ShortestInterval = TimeSpan.FromMilliseconds(1);

    /// <summary>The default schedule: 3 contexts plus the watchdog, each sweeping every 0.5 to 2 seconds.</summary>
    internal static GuardOptions Default { get; } = new();

    /// <summary>Checking contexts (each sweeps every region); a watchdog thread comes on top. Default 3.</summary>
    public int ContextCount { get; init; } = 3;

    /// <summary>Shortest randomized wait between two sweeps of a context. Default 500 ms.</summary>
    public TimeSpan MinInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest randomized wait between two sweeps of a context. Default 2 s.</summary>
    public TimeSpan MaxInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a heartbeat may stay unchanged before its context counts as stopped: 2 × MaxInterval + 1 s.</summary>
    internal TimeSpan HeartbeatBound => (2 * MaxInterval) + TimeSpan.FromSeconds(1);

    /// <summary>
    /// How many of its own sweeps an observer must complete while a peer's heartbeat stays unchanged before the peer
    /// counts as late. Counting sweeps as well as time keeps a pause of the whole process (a GC, a descheduled
    /// container) from looking like one stopped context.
    /// </summary>
    internal int LateSweeps => (2 * (int)Math.Ceiling(MaxInterval / MinInterval)) + 2;

    internal void Validate()
    {
        if (ContextCount is < MinContexts or > MaxContexts)
        {
            throw new ArgumentOutOfRangeException(nameof(ContextCount), ContextCount, $"The guard needs {MinContexts} to {MaxContexts} contexts.");
        }

        if (MinInterval < ShortestInterval || MinInterval > LongestInterval)
        {
            throw new ArgumentOutOfRangeException(nameof(MinInterval), MinInterval, $"MinInterval must lie within {ShortestInterval} and {LongestInterval}.");
        }

        if (MaxInterval < MinInterval || MaxInterval > LongestInterval)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxInterval), MaxInterval, $"MaxInterval must lie within MinInterval ({MinInterval}) and {LongestInterval}.");
        }
    }
}
