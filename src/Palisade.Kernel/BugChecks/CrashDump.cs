using System.Text.Json;
using System.Text.Json.Serialization;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// The crash dump written by a bug check, exactly as it is stored (JSON, format "palisade-crash-dump/1",
/// documented in docs/bugchecks.md). Addresses, parameters and bytes are hex strings so no reader loses bits. A 0x109
/// dump has a region; a manually initiated one (0xE2) has none, and carries the administrator's reason instead.
/// </summary>
internal sealed record CrashDump(
    string Format,
    BugCheckSection BugCheck,
    RegionSection? Region,
    string DetectedBy,
    long DetectorSweep,
    IReadOnlyList<ChangeSection> Changes,
    CulpritSection? Culprit,
    IReadOnlyList<DumpDriverEntry> Drivers,
    IReadOnlyList<SyscallRecord> RecentSystemCalls,
    KernelSection Kernel,
    DateTimeOffset Time,
    int ProcessId,
    string? Reason = null)
{
    internal const string CurrentFormat = "palisade-crash-dump/1";

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    internal string ToJson() => JsonSerializer.Serialize(this, Options);

    /// <summary>Reads a dump; throws <see cref="InvalidDataException"/> when the text is not a Palisade dump.</summary>
    internal static CrashDump FromJson(string json)
    {
        CrashDump? dump;
        try
        {
            dump = JsonSerializer.Deserialize<CrashDump>(json, Options);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Not a Palisade crash dump: {e.Message}", e);
        }

        if (dump is null || dump.Format != CurrentFormat || dump.BugCheck is null
            || (dump.Region is null && dump.BugCheck.Code == CodeDecoder.Hex(BugCheckCodes.CriticalStructureCorruption)))
        {
            throw new InvalidDataException($"Not a Palisade crash dump (expected format \"{CurrentFormat}\").");
        }

        return dump;
    }
}

/// <summary>The bug check code, its name and its four parameters.</summary>
internal sealed record BugCheckSection(string Code, string Name, IReadOnlyList<string> Parameters);

/// <summary>The corrupted region: its type (parameter 4) and name, and its address or id (parameter 1).</summary>
internal sealed record RegionSection(string Type, string TypeName, string Name, string Address);

/// <summary>
/// One changed piece of the region: expected (baseline) and found bytes, and for code or pointers the decoded
/// instruction, the address control now goes to, and who owns that address.
/// </summary>
internal sealed record ChangeSection(
    string Key,
    string Kind,
    string Address,
    string? Expected,
    string? Found,
    string? Description,
    string? Instruction,
    string? Target,
    string? TargetOwner);

/// <summary>The probable culprit: the assembly (and driver, when it is a loaded driver) that owns the new code or entry.</summary>
internal sealed record CulpritSection(string Assembly, string? Member, string? Driver, string Reason);

/// <summary>The kernel that stopped: version and flavor.</summary>
internal sealed record KernelSection(string Version, string Flavor);
