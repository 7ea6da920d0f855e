namespace Palisade.Kernel.Registry;

/// <summary>When a write to the hive counts as done (acknowledged).</summary>
internal enum HiveDurability
{
    /// <summary>
    /// An operation is acknowledged once its record has been handed to the kernel with write(2). It survives the
    /// death of the Palisade process (even SIGKILL), because the data is in the page cache, but not a power loss or
    /// a host crash before the kernel writes it back. The default: one system call per write.
    /// </summary>
    ProcessCrash,

    /// <summary>
    /// An operation is acknowledged only after write(2) and fsync(2) of the hive, so it also survives a power loss.
    /// Each write then waits for the disk.
    /// </summary>
    PowerLoss,
}

/// <summary>How a hive is written. Validated when the hive is opened.</summary>
internal sealed record HiveOptions
{
    public static HiveOptions Default { get; } = new();

    public HiveDurability Durability { get; init; } = HiveDurability.ProcessCrash;

    /// <summary>
    /// The log is rewritten (compacted) once the bytes appended since the last compaction exceed both this
    /// threshold and the size of the compacted hive, so the cost of compaction stays proportional to the writes.
    /// At least 4 KiB.
    /// </summary>
    public long CompactionThreshold { get; init; } = 4L << 20;

    internal bool IsValid => Enum.IsDefined(Durability) && CompactionThreshold >= 4096;
}
