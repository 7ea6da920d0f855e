// The Driver Verifier, in the manner of the WDK's: before any code of a package that will run inside the kernel
// process is loaded, every assembly of the package is read from its verified bytes (metadata and IL only, nothing is
// loaded for execution or run) and checked against the rules in VerifierRules. The loader refuses a package with any
// finding in the protected flavor; `palisade driver verify` prints every finding.
using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Runtime.InteropServices;

namespace Palisade.Kernel.Drivers.Verification;

/// <summary>Verifies the assemblies of a driver package.</summary>
internal static class DriverVerifier
{
    /// <summary>Verifies every .NET assembly of the package (a bundled copy of Palisade.Api, which is never loaded,
    /// excepted).</summary>
    /// <param name="package">The package, as read into memory.</param>
    /// <returns>Every finding; none when the package may run inside the kernel.</returns>
    public static VerificationReport Verify(DriverPackage package)
    {
        ArgumentNullException.ThrowIfNull(package);
        var findings = new List<VerifierFinding>();
        var images = new Dictionary<string, (PackageFile File, PEReader Image)>(StringComparer.OrdinalIgnoreCase);
        try
        {
            foreach (PackageFile file in package.Files)
            {
                if (Open(file, findings) is not { } image)
                {
                    continue;
                }

                string name = image.GetMetadataReader().GetString(image.GetMetadataReader().GetAssemblyDefinition().Name);
                if (string.Equals(name, DriverAssemblyCheck.ApiAssemblyName, StringComparison.OrdinalIgnoreCase) || images.ContainsKey(name))
                {
                    // The kernel always supplies its own Palisade.Api, and the loader refuses two files of one name.
                    image.Dispose();
                    continue;
                }

                images.Add(name, (file, image));
            }

            if (images.Count > 0)
            {
                VerifyAll(images, findings);
            }
        }
        finally
        {
            foreach ((PackageFile _, PEReader image) in images.Values)
            {
                image.Dispose();
            }
        }

        return new VerificationReport(findings, [.. images.Values.Select(v => v.File.Path)]);
    }

    private static PEReader? Open(PackageFile file, List<VerifierFinding> findings)
    {
        if (file.Content.Length < 2 || file.Content[0] != (byte)'M' || file.Content[1] != (byte)'Z')
        {
            return null;
        }

        var image = new PEReader(ImmutableCollectionsMarshal.AsImmutableArray(file.Content));
        try
        {
            if (image.HasMetadata && image.GetMetadataReader().IsAssembly)
            {
                return image;
            }
        }
        catch (BadImageFormatException e)
        {
            if (file.Path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
            {
                findings.Add(new VerifierFinding(VerifierRules.Unresolved, "an image that is not a valid assembly: " + e.Message, "the assembly", file.Path));
            }
        }

        image.Dispose();
        return null;
    }

    private static void VerifyAll(Dictionary<string, (PackageFile File, PEReader Image)> images, List<VerifierFinding> findings)
    {
        var bytes = new Dictionary<string, byte[]>(StringComparer.OrdinalIgnoreCase);
        foreach ((string name, (PackageFile file, PEReader _)) in images)
        {
            bytes.Add(name, file.Content);
        }

        using var universe = new VerifierUniverse(bytes);
        var judge = new ReferenceJudge(universe);
        foreach ((string name, (PackageFile file, PEReader image)) in images)
        {
            try
            {
                Assembly assembly = universe.Load(new AssemblyName(name));
                var resolver = new ModuleResolver(universe, assembly, image);
                new AssemblyVerifier(resolver, judge, file.Path, bytes.Keys, findings).Verify();
            }
#pragma warning disable CA1031 // Untrusted bytes: the verifier fails closed, and never takes the kernel down.
            catch (Exception e)
#pragma warning restore CA1031
            {
                findings.Add(new VerifierFinding(VerifierRules.Unresolved, $"an assembly the verifier cannot read ({e.GetType().Name}: {e.Message})", "the assembly", file.Path));
            }
        }
    }
}
