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

/// <summary>
/// What a detector hands to <see cref="KernelBugCheck.Raise"/>. For 0x109 the region and the evidence say what was
/// corrupted; for 0xE2 (<see cref="ManuallyInitiated"/>) there is no region, and <see cref="Reason"/> says why.
/// </summary>
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
    IReadOnlyList<Guard.RegionEvidence> Found)
{
    /// <summary>The administrator's reason for a manually initiated crash ("" when none was given); null otherwise.</summary>
    public string? Reason { get; init; }

    /// <summary>True for 0x109: a protected region changed, and the dump carries the region and the analysis of the change.</summary>
    public bool IsCorruption => Code == BugCheckCodes.CriticalStructureCorruption;

    /// <summary>
    /// Bug check 0xE2 MANUALLY_INITIATED_CRASH, asked for through the control socket. Windows leaves its parameters 0;
    /// Palisade records who asked: parameter 1 is the requesting process's id, parameter 2 its user id (both from the
    /// socket's SO_PEERCRED), parameters 3 and 4 are 0.
    /// </summary>
    public static BugCheckRequest ManuallyInitiated(int processId, uint userId, string reason) =>
        new(
            BugCheckCodes.ManuallyInitiatedCrash,
            (ulong)processId,
            userId,
            0,
            0,
            "",
            "",
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"palisade bugcheck (process {processId}, user {userId})"),
            0,
            [],
            [])
        {
            Reason = reason,
        };
}
