// The checks the loader makes on a package's assemblies by reading their metadata only (System.Reflection.Metadata):
// nothing here loads or runs driver code. A driver may reference Palisade.Api and the .NET libraries, never the
// kernel's own assemblies, because kernel internals change in every release and a driver bound to them is a driver
// that patches the kernel.
using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Runtime.InteropServices;

namespace Palisade.Kernel.Drivers;

/// <summary>Metadata checks of a package's assemblies before any of them is loaded.</summary>
internal static class DriverAssemblyCheck
{
    /// <summary>The name of the only kernel assembly a driver may reference.</summary>
    public const string ApiAssemblyName = "Palisade.Api";

    /// <summary>Kernel assemblies a driver may neither reference nor contain. "palisade" is the CLI's assembly name.</summary>
    public static readonly string[] KernelAssemblyNames = ["Palisade.Kernel", "Palisade.Host.Linux", "Palisade.Cli", "palisade"];

    /// <summary>True when <paramref name="assemblyName"/> names a kernel assembly that drivers may not use.</summary>
    public static bool IsKernelAssembly(string? assemblyName)
    {
        foreach (string name in KernelAssemblyNames)
        {
            if (string.Equals(name, assemblyName, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Checks every managed assembly in the package, then the manifest's entry type in the main assembly.
    /// </summary>
    /// <param name="package">The verified package.</param>
    /// <param name="manifest">Its manifest.</param>
    /// <param name="apiVersion">The kernel's API version (major.minor).</param>
    /// <param name="assemblies">The package's assemblies by simple name, for the load context to resolve.</param>
    /// <returns>Null when the package passes, else the refusal.</returns>
    public static DriverLoadResult? Check(
        DriverPackage package,
        DriverManifest manifest,
        Version apiVersion,
        out Dictionary<string, PackageFile> assemblies)
    {
        ArgumentNullException.ThrowIfNull(package);
        ArgumentNullException.ThrowIfNull(manifest);
        assemblies = new Dictionary<string, PackageFile>(StringComparer.OrdinalIgnoreCase);
        foreach (PackageFile file in package.Files)
        {
            if (!LooksLikePortableExecutable(file.Content))
            {
                continue;
            }

            DriverLoadResult? refusal = CheckAssembly(file, apiVersion, assemblies);
            if (refusal is not null)
            {
                return refusal;
            }
        }

        PackageFile? main = package.Find(manifest.Assembly);
        if (main is null)
        {
            return DriverLoadResult.Refused(DriverLoadRefusal.InvalidAssembly,
                $"the manifest names the assembly {manifest.Assembly}, which is not in the package.");
        }

        if (!assemblies.ContainsValue(main))
        {
            return DriverLoadResult.Refused(DriverLoadRefusal.InvalidAssembly,
                $"{manifest.Assembly} is not a .NET assembly.");
        }

        return CheckEntryType(main, manifest.EntryType);
    }

    private static bool LooksLikePortableExecutable(byte[] content) => content.Length >= 2 && content[0] == (byte)'M' && content[1] == (byte)'Z';

    private static DriverLoadResult? CheckAssembly(PackageFile file, Version apiVersion, Dictionary<string, PackageFile> assemblies)
    {
        try
        {
            using var pe = new PEReader(ImmutableCollectionsMarshal.AsImmutableArray(file.Content));
            if (!pe.HasMetadata)
            {
                return null;
            }

            MetadataReader reader = pe.GetMetadataReader();
            if (!reader.IsAssembly)
            {
                return null;
            }

            string name = reader.GetString(reader.GetAssemblyDefinition().Name);
            if (IsKernelAssembly(name))
            {
                return DriverLoadResult.Refused(DriverLoadRefusal.ReferencesKernelAssembly,
                    $"{file.Path} is the kernel assembly {name}; a package may not contain kernel assemblies.");
            }

            foreach (AssemblyReferenceHandle handle in reader.AssemblyReferences)
            {
                AssemblyReference reference = reader.GetAssemblyReference(handle);
                string referenced = reader.GetString(reference.Name);
                if (IsKernelAssembly(referenced))
                {
                    return DriverLoadResult.Refused(DriverLoadRefusal.ReferencesKernelAssembly,
                        $"{file.Path} references the kernel assembly {referenced}; drivers may use only {ApiAssemblyName}.");
                }

                if (string.Equals(referenced, ApiAssemblyName, StringComparison.OrdinalIgnoreCase)
                    && (reference.Version.Major, reference.Version.Minor).CompareTo((apiVersion.Major, apiVersion.Minor)) > 0)
                {
                    return DriverLoadResult.Refused(DriverLoadRefusal.NeedsNewerApi,
                        $"{file.Path} was built against {ApiAssemblyName} {reference.Version.Major}.{reference.Version.Minor}; this kernel provides API {apiVersion.Major}.{apiVersion.Minor}.");
                }
            }

            if (string.Equals(name, ApiAssemblyName, StringComparison.OrdinalIgnoreCase))
            {
                // A bundled copy of the API is never loaded: the load context always answers with the kernel's own.
                return null;
            }

            if (assemblies.TryGetValue(name, out PackageFile? other))
            {
                return DriverLoadResult.Refused(DriverLoadRefusal.InvalidAssembly,
                    $"{other.Path} and {file.Path} both define the assembly {name}.");
            }

            assemblies.Add(name, file);
            return null;
        }
        catch (BadImageFormatException e)
        {
            if (file.Path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
            {
                return DriverLoadResult.Refused(DriverLoadRefusal.InvalidAssembly, $"{file.Path} is not a valid assembly: {e.Message}");
            }

            return null;
        }
    }

    private static DriverLoadResult? CheckEntryType(PackageFile main, string entryType)
    {
        int dot = entryType.LastIndexOf('.');
        string typeNamespace = dot < 0 ? string.Empty : entryType[..dot];
        string typeName = dot < 0 ? entryType : entryType[(dot + 1)..];
        using var pe = new PEReader(ImmutableCollectionsMarshal.AsImmutableArray(main.Content));
        MetadataReader reader = pe.GetMetadataReader();
        if (!TryFindTopLevelType(reader, typeNamespace, typeName, out TypeDefinition type))
        {
            return DriverLoadResult.Refused(DriverLoadRefusal.EntryTypeMissing,
                $"the entry type {entryType} is not defined in {main.Path}.");
        }

        TypeAttributes attributes = type.Attributes;
        string? problem =
            (attributes & TypeAttributes.VisibilityMask) != TypeAttributes.Public ? "is not public"
            : (attributes & TypeAttributes.Interface) != 0 ? "is an interface"
            : (attributes & TypeAttributes.Abstract) != 0 ? "is abstract"
            : null;
        return problem is null
            ? null
            : DriverLoadResult.Refused(DriverLoadRefusal.EntryTypeNotDriver,
                $"the entry type {entryType} {problem}; it must be a public, non-abstract class that implements IDriver.");
    }

    private static bool TryFindTopLevelType(MetadataReader reader, string typeNamespace, string typeName, out TypeDefinition found)
    {
        foreach (TypeDefinitionHandle handle in reader.TypeDefinitions)
        {
            TypeDefinition candidate = reader.GetTypeDefinition(handle);
            if (candidate.GetDeclaringType().IsNil
                && reader.StringComparer.Equals(candidate.Name, typeName)
                && reader.StringComparer.Equals(candidate.Namespace, typeNamespace))
            {
                found = candidate;
                return true;
            }
        }

        found = default;
        return false;
    }
}
