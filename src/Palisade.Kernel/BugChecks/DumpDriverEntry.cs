namespace Palisade.Kernel.BugChecks;

/// <summary>
/// One loaded driver as a crash dump lists it. The kernel's driver list supplies these; the analysis maps a culprit
/// assembly to the driver that brought it.
/// </summary>
/// <param name="Name">The driver's name from its manifest.</param>
/// <param name="Version">The driver's version from its manifest.</param>
/// <param name="AssemblyName">The simple name of the driver's assembly.</param>
/// <param name="Path">Where the assembly was loaded from.</param>
/// <param name="Sha256">SHA-256 of the assembly file, lowercase hex.</param>
internal sealed record DumpDriverEntry(string Name, string Version, string AssemblyName, string Path, string Sha256);
