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

/// <summary>What opening a hive found: how much of the file was good log and how much was a torn tail.</summary>
/// <param name="RecordCount">Records replayed.</param>
/// <param name="ValidLength">Length of the header and the good records.</param>
/// <param name="DiscardedBytes">Bytes after the last good record (a torn last write), removed from the file.</param>
internal readonly record struct HiveRecovery(int RecordCount, long ValidLength, long DiscardedBytes);

/// <summary>The result of checking a hive file.</summary>
/// <param name="Status">Success when the header is good and every record decodes and applies; RegistryCorrupt when
/// not; an I/O status when the file cannot be read.</param>
/// <param name="RecordCount">Good records.</param>
/// <param name="ValidLength">Length of the header and the good records.</param>
/// <param name="FileLength">Length of the file.</param>
internal readonly record struct HiveVerification(Api.Status Status, int RecordCount, long ValidLength, long FileLength)
{
    /// <summary>True when the file is entirely good: no corruption and no torn tail.</summary>
    public bool IsClean => Status.IsSuccess && ValidLength == FileLength;
}
