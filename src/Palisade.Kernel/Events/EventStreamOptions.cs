namespace Palisade.Kernel.Events;

/// <summary>What the kernel does when the consumer of the event stream (<c>--events</c>) reads slower than lines are made.</summary>
internal enum EventsPolicy
{
    /// <summary>
    /// Lines that do not fit in their channel are dropped and counted; the stream then carries a <c>gap</c> line with
    /// the exact count and range. Nothing waits for the consumer. The default.
    /// </summary>
    Drop,

    /// <summary>
    /// Nothing is dropped: a guest operation whose line does not fit waits, before the guest gets its answer, until the
    /// consumer has made room. Callbacks and <c>ReportEvent</c> never wait; their lines may exceed a channel's
    /// capacity up to its ring (twice the capacity), which only an operation's end lets drain.
    /// </summary>
    Block,
}

/// <summary>The event stream's policy and channel sizes, validated at construction.</summary>
internal sealed record EventStreamOptions
{
    /// <summary>The kernel channel's capacity (operation lines, kernel lines, driver faults): 4 MiB.</summary>
    public const int DefaultKernelChannelBytes = 4 << 20;

    /// <summary>Each driver's channel capacity (its ReportEvent lines): 1 MiB.</summary>
    public const int DefaultDriverChannelBytes = 1 << 20;

    /// <summary>Under <see cref="EventsPolicy.Block"/>, a channel's ring is this many times its capacity.</summary>
    public const int BlockOverflowFactor = 2;

    public EventStreamOptions(EventsPolicy policy = EventsPolicy.Drop, int kernelChannelBytes = DefaultKernelChannelBytes, int driverChannelBytes = DefaultDriverChannelBytes)
    {
        if (!Enum.IsDefined(policy))
        {
            throw new ArgumentOutOfRangeException(nameof(policy), policy, "unknown events policy");
        }

        if (kernelChannelBytes < 4096 || kernelChannelBytes > (256 << 20) || kernelChannelBytes % 8 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(kernelChannelBytes), kernelChannelBytes, "a channel holds 4 KiB to 256 MiB, a multiple of 8 bytes");
        }

        if (driverChannelBytes < 4096 || driverChannelBytes > (256 << 20) || driverChannelBytes % 8 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(driverChannelBytes), driverChannelBytes, "a channel holds 4 KiB to 256 MiB, a multiple of 8 bytes");
        }

        Policy = policy;
        KernelChannelBytes = kernelChannelBytes;
        DriverChannelBytes = driverChannelBytes;
    }

    public static EventStreamOptions Default { get; } = new();

    public EventsPolicy Policy { get; }

    public int KernelChannelBytes { get; }

    public int DriverChannelBytes { get; }

    /// <summary>The ring size of a channel of <paramref name="capacity"/> bytes under this policy.</summary>
    public int RingSize(int capacity) => Policy == EventsPolicy.Block ? capacity * BlockOverflowFactor : capacity;
}
