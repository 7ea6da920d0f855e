// The assembly load context of one driver. Each driver gets its own collectible context so that unloading the
// driver can release its code, and so that two drivers may ship different versions of one dependency.
using System.Reflection;
using System.Runtime.Loader;
using Palisade.Api;

namespace Palisade.Kernel.Drivers;

/// <summary>A collectible load context that resolves a driver's assemblies from its verified package bytes.</summary>
internal sealed class DriverLoadContext : AssemblyLoadContext
{
    private readonly string _driverName;
    private readonly Dictionary<string, PackageFile> _assemblies;
    private readonly DriverPackage _package;

    /// <param name="driverName">The driver's name, which also names the context.</param>
    /// <param name="package">The verified package the assemblies come from (for their symbols).</param>
    /// <param name="assemblies">The package's assemblies by simple name, from <see cref="DriverAssemblyCheck.Check"/>.</param>
    public DriverLoadContext(string driverName, DriverPackage package, Dictionary<string, PackageFile> assemblies)
        : base("driver:" + driverName, isCollectible: true)
    {
        _driverName = driverName;
        _package = package;
        _assemblies = assemblies;
    }

    /// <summary>Loads one of the _package's _assemblies from its verified bytes, with its .pdb when the _package has one.</summary>
    public Assembly LoadPackageAssembly(PackageFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        using var image = new MemoryStream(file.Content, writable: false);
        PackageFile? symbols = _package.Find(Path.ChangeExtension(file.Path, ".pdb"));
        if (symbols is null)
        {
            return LoadFromStream(image);
        }

        using var symbolStream = new MemoryStream(symbols.Content, writable: false);
        return LoadFromStream(image, symbolStream);
    }

    /// <summary>
    /// Palisade.Api always resolves to the kernel's own copy, so that the driver's IDriver is the kernel's IDriver.
    /// Kernel _assemblies are refused even when asked for at run time (Assembly.Load by name). The _package's own
    /// _assemblies come from its verified bytes; anything else (the .NET libraries) falls back to the default context.
    /// </summary>
    protected override Assembly? Load(AssemblyName assemblyName)
    {
        string? name = assemblyName.Name;
        if (string.Equals(name, DriverAssemblyCheck.ApiAssemblyName, StringComparison.OrdinalIgnoreCase))
        {
            return typeof(IDriver).Assembly;
        }

        if (DriverAssemblyCheck.IsKernelAssembly(name))
        {
            throw new FileLoadException($"driver {_driverName} may not load the kernel assembly {name}; drivers use only {DriverAssemblyCheck.ApiAssemblyName}.");
        }

        return name is not null && _assemblies.TryGetValue(name, out PackageFile? file) ? LoadPackageAssembly(file) : null;
    }
}
