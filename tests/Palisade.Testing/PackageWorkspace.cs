// A temporary folder with everything a driver package test needs: a Palisade home with its trust store, a vendor
// signing key, and package folders assembled from the fixture drivers that the test project builds
// (TestDrivers/<project>/, see tests/TestDrivers.targets).
using System.Security.Cryptography;
using Palisade.Kernel.Drivers;

namespace Palisade.Testing;

internal sealed class PackageWorkspace : IDisposable
{
    public const string SampleProject = "Palisade.TestDrivers.Sample";
    public const string KernelReferencingProject = "Palisade.TestDrivers.KernelReferencing";
    public const string SampleEntryType = "Palisade.TestDrivers.Sample.SampleDriver";
    public const string KernelReferencingEntryType = "Palisade.TestDrivers.KernelReferencing.KernelReferencingDriver";

    private int _packages;

    public PackageWorkspace()
    {
        Root = Directory.CreateTempSubdirectory("palisade-drivers-").FullName;
        Home = Path.Combine(Root, "home");
        Trust = TrustStore.ForHome(Home);
        VendorKey = SigningKeys.Generate();
    }

    public string Root { get; }

    public string Home { get; }

    public TrustStore Trust { get; }

    public ECDsa VendorKey { get; }

    public string VendorKeyId => SigningKeys.KeyId(VendorKey);

    public static string FixtureDirectory(string project)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "TestDrivers", project);
        Assert.True(File.Exists(Path.Combine(directory, project + ".dll")), $"the fixture driver {project} was not built into {directory}");
        return directory;
    }

    public static string Manifest(
        string entryType = SampleEntryType,
        string assembly = SampleProject + ".dll",
        string minimumApiVersion = "1.0",
        string name = "sample-driver") =>
        $$"""
        {
          "name": "{{name}}",
          "vendor": "Palisade Tests",
          "version": "1.0.0",
          "assembly": "{{assembly}}",
          "entryType": "{{entryType}}",
          "minimumApiVersion": "{{minimumApiVersion}}",
          "altitudes": [ { "kind": "files", "altitude": "320000" } ]
        }
        """;

    /// <summary>Makes a package folder from a fixture project's output and a manifest.</summary>
    public string CreatePackage(string project = SampleProject, string? manifest = null)
    {
        string package = Path.Combine(Root, "packages", (++_packages).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(package);
        foreach (string file in Directory.EnumerateFiles(FixtureDirectory(project)))
        {
            File.Copy(file, Path.Combine(package, Path.GetFileName(file)));
        }

        File.WriteAllText(Path.Combine(package, DriverManifest.FileName), manifest ?? Manifest());
        return package;
    }

    public string CreateSignedPackage(string project = SampleProject, string? manifest = null)
    {
        string package = CreatePackage(project, manifest);
        PackageSignature.Sign(package, VendorKey);
        return package;
    }

    public TrustedKey TrustVendor() => Trust.Add(SigningKeys.ExportPublicPem(VendorKey), "test-vendor", "the test vendor key");

    /// <summary>Flips one bit of one byte in the middle of a file.</summary>
    public static void FlipOneByte(string path)
    {
        byte[] content = File.ReadAllBytes(path);
        content[content.Length / 2] ^= 0x01;
        File.WriteAllBytes(path, content);
    }

    public void Dispose()
    {
        VendorKey.Dispose();
        Directory.Delete(Root, recursive: true);
    }
}
