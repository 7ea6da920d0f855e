namespace Palisade.Kernel.BugChecks;

/// <summary>What a bug check sink receives: the dump as written and where it was written.</summary>
/// <param name="Code">The bug check code.</param>
/// <param name="Parameter1">Parameter 1: the region's address or id (0x109), or the context index for heartbeat failures.</param>
/// <param name="Parameter2">Parameter 2: the expected digest.</param>
/// <param name="Parameter3">Parameter 3: the digest found.</param>
/// <param name="Parameter4">Parameter 4: the region type.</param>
/// <param name="Dump">The dump's content.</param>
/// <param name="DumpPath">The dump's file, or null when it could not be written (the reason is on the stop screen).</param>
internal sealed record BugCheckReport(
    ulong Code,
    ulong Parameter1,
    ulong Parameter2,
    ulong Parameter3,
    ulong Parameter4,
    CrashDump Dump,
    string? DumpPath);

/// <summary>What a detector hands to <see cref="KernelBugCheck.Raise"/>.</summary>
internal sealed record BugCheckRequest(
    ulong Code,
    ulong Parameter1,
    ulong Parameter2,
    ulong Parameter3,
    ulong Parameter4,
    string RegionName,
    string RegionTypeName,
    string DetectedBy,
    long DetectorSweep,
    IReadOnlyList<Guard.RegionEvidence> Expected,
    IReadOnlyList<Guard.RegionEvidence> Found);
