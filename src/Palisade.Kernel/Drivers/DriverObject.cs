using Palisade.Api;

namespace Palisade.Kernel.Drivers;

/// <summary>
/// The kernel's record of one loaded driver (its driver object): identity from the manifest, the hash of its
/// assembly, its entry object and its context. Linked into the loaded driver list.
/// </summary>
internal sealed class DriverObject
{
    public DriverObject(string name, string vendor, string version, string assemblyPath, string assemblySha256)
    {
        Name = name;
        Vendor = vendor;
        Version = version;
        AssemblyPath = assemblyPath;
        AssemblySha256 = assemblySha256;
    }

    public string Name { get; }

    public string Vendor { get; }

    public string Version { get; }

    public string AssemblyPath { get; }

    public string AssemblySha256 { get; }

    /// <summary>The assemblies that belong to the driver (its load context), to attribute code to it.</summary>
    public IReadOnlyList<System.Reflection.Assembly> Assemblies { get; set; } = [];

    public IDriver? Entry { get; set; }

    /// <summary>The verified package the driver came from; null for a driver started in-process (tests, benchmarks).</summary>
    public LoadedPackage? Package { get; set; }

    public DriverContext? Context { get; set; }

    /// <summary>The processes kept out of this driver's file callbacks (IPortManager.ExcludeProcess, port clients).</summary>
    public Ports.ProcessExclusions Exclusions { get; } = new();

    private static long s_nextId;

    /// <summary>A stable id for the guard's cross-check of the loaded driver list.</summary>
    internal long Id { get; } = Interlocked.Increment(ref s_nextId);

    /// <summary>Links of the loaded driver list (the kernel's PsLoadedModuleList counterpart).</summary>
    internal DriverObject? Next;
    internal DriverObject? Previous;

    public override string ToString() => Name;
}
