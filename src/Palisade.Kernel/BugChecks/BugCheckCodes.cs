namespace Palisade.Kernel.BugChecks;

/// <summary>Bug check codes Palisade raises and the process exit status that follows one.</summary>
internal static class BugCheckCodes
{
    /// <summary>CRITICAL_STRUCTURE_CORRUPTION: the guard found protected code or a protected structure modified.</summary>
    internal const ulong CriticalStructureCorruption = 0x109;

    /// <summary>MANUALLY_INITIATED_CRASH: an administrator stopped the system on purpose (<c>palisade bugcheck</c>).</summary>
    internal const ulong ManuallyInitiatedCrash = 0xE2;

    /// <summary>The exit status of a process stopped by a bug check (documented in docs/bugchecks.md).</summary>
    internal const int ExitStatus = 109;

    internal static string NameOf(ulong code) => code switch
    {
        CriticalStructureCorruption => "CRITICAL_STRUCTURE_CORRUPTION",
        ManuallyInitiatedCrash => "MANUALLY_INITIATED_CRASH",
        _ => "BUGCHECK_0x" + code.ToString("X", System.Globalization.CultureInfo.InvariantCulture),
    };
}
