namespace Palisade.Kernel.Registry;

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
