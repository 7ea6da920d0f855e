using System.Reflection;
using Palisade.Kernel.Guard;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// Turns a region's baseline and current evidence into the dump's list of changes and names the probable culprit:
/// the loaded assembly whose method a changed jump or pointer now leads to, or that supplied an entry which
/// appeared in a kernel table outside the API. Runs inside the stopped kernel, where the culprit is still loaded.
/// </summary>
internal static class CorruptionAnalyzer
{
    private static readonly string KernelAssembly = typeof(CorruptionAnalyzer).Assembly.GetName().Name!;

    internal static (List<ChangeSection> Changes, CulpritSection? Culprit) Analyze(
        IReadOnlyList<RegionEvidence> expected,
        IReadOnlyList<RegionEvidence> found,
        IReadOnlyList<DumpDriverEntry> drivers)
    {
        var baseline = new Dictionary<string, RegionEvidence>(StringComparer.Ordinal);
        foreach (RegionEvidence item in expected)
        {
            baseline[item.Key] = item;
        }

        var changes = new List<ChangeSection>();
        CulpritSection? culprit = null;
        CodeOwnerIndex? index = null;
        foreach (RegionEvidence now in found)
        {
            baseline.Remove(now.Key, out RegionEvidence? before);
            if (before is not null && before.Bytes.AsSpan().SequenceEqual(now.Bytes) && before.Description == now.Description)
            {
                continue;
            }

            ulong? target = null;
            string? instruction = null;
            int at = 0;
            switch (now.Kind)
            {
                case EvidenceKind.Code:
                    // Whole bodies are kept: decode where the change starts, which may be deep inside the method.
                    at = before is null ? 0 : CodeDecoder.ChangedInstruction(before.Bytes, now.Bytes, now.Address);
                    CodeDecoder.Decoded decoded = CodeDecoder.Decode(now.Bytes[at..], now.Address + (ulong)at);
                    instruction = decoded.Instruction;
                    target = decoded.Target ?? ReadLiveCell(decoded.IndirectCell);
                    break;
                case EvidenceKind.Pointer:
                    target = now.PointerValue;
                    break;
                case EvidenceKind.Entry when now.Address != 0:
                    target = now.Address;
                    break;
            }

            string? targetOwner = null;
            MethodBase? ownerMethod = null;
            if (target is { } address)
            {
                index ??= CodeOwnerIndex.Build();
                ownerMethod = index.Find(address);
                targetOwner = ownerMethod is not null ? Describe(ownerMethod) : DescribeMapping(address);
            }

            changes.Add(new ChangeSection(
                now.Key,
                now.Kind.ToString(),
                CodeDecoder.Hex(now.Address + (ulong)at),
                before is null ? null : Convert.ToHexString(before.Bytes),
                Convert.ToHexString(now.Bytes),
                before is null ? "added: " + now.Description
                    : before.Description != now.Description ? $"was: {before.Description}; now: {now.Description}"
                    : now.Description,
                instruction,
                target is { } t ? CodeDecoder.Hex(t) : null,
                targetOwner));

            culprit ??= CulpritOf(now, before, ownerMethod, instruction, target, at, drivers);
        }

        foreach (RegionEvidence removed in baseline.Values)
        {
            changes.Add(new ChangeSection(
                removed.Key,
                removed.Kind.ToString(),
                CodeDecoder.Hex(removed.Address),
                Convert.ToHexString(removed.Bytes),
                null,
                "removed: " + removed.Description,
                null,
                null,
                null));
        }

        return (changes, culprit);
    }

    private static CulpritSection? CulpritOf(
        RegionEvidence now,
        RegionEvidence? before,
        MethodBase? ownerMethod,
        string? instruction,
        ulong? target,
        int at,
        IReadOnlyList<DumpDriverEntry> drivers)
    {
        string? assembly = ownerMethod?.DeclaringType?.Assembly.GetName().Name;
        string? member = ownerMethod is null ? null : $"{ownerMethod.DeclaringType?.FullName}.{ownerMethod.Name}";
        // An entry whose callback still comes from the same assembly had only its state changed (enabled, policy, a code
        // pointer rewritten in place): its owner is the victim, not the culprit.
        if (assembly is null && now.Kind == EvidenceKind.Entry && now.Owner is not null && (before is null || before.Owner != now.Owner))
        {
            assembly = now.Owner;
            member = now.Description;
        }

        if (assembly is null || assembly == KernelAssembly)
        {
            return null;
        }

        string what = now.Kind switch
        {
            EvidenceKind.Code => $"the code at {CodeDecoder.Hex(now.Address + (ulong)at)} ({now.Key} +{CodeDecoder.Hex((ulong)at)}) now holds `{instruction}`, which leads to {CodeDecoder.Hex(target ?? 0)} in {member}",
            EvidenceKind.Pointer => $"the pointer at {CodeDecoder.Hex(now.Address)} ({now.Key}) was changed to {CodeDecoder.Hex(target ?? 0)}, which is {member}",
            _ => before is null
                ? $"the entry \"{now.Key}\" appeared outside the API and is owned by {assembly}"
                : $"the entry \"{now.Key}\" was changed outside the API to {member}",
        };

        DumpDriverEntry? driver = null;
        foreach (DumpDriverEntry candidate in drivers)
        {
            if (string.Equals(candidate.AssemblyName, assembly, StringComparison.OrdinalIgnoreCase))
            {
                driver = candidate;
                break;
            }
        }

        return new CulpritSection(assembly, member, driver?.Name, what);
    }

    private static ulong? ReadLiveCell(ulong? cell)
    {
        if (cell is not { } address)
        {
            return null;
        }

        return ProcessMaps.Find(address) is { IsReadable: true } mapping && address + 8 <= mapping.End
            ? (ulong)NativeCode.ReadPointer((nint)address)
            : null;
    }

    private static string Describe(MethodBase method) =>
        $"{method.DeclaringType?.Assembly.GetName().Name}!{method.DeclaringType?.FullName}.{method.Name}";

    private static string DescribeMapping(ulong address) => ProcessMaps.Find(address) switch
    {
        { } mapping when mapping.Path == "[anonymous]" => $"anonymous memory {mapping.Permissions} (no loaded method owns it)",
        { } mapping => $"{mapping.Path} ({mapping.Permissions})",
        null => "unmapped address",
    };
}
