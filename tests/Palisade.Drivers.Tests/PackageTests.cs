using System.Security.Cryptography;
using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Drivers.Tests;

/// <summary>
/// Each sample driver as a package: its committed manifest.json and its assembly, signed with the committed development
/// key (as drivers/build.sh does), verified and loaded by the kernel's real loader into a load context of its own, and
/// started in a kernel with the parameters its README documents.
/// </summary>
public sealed class PackageTests : IDisposable
{
    private static readonly string s_repository = FindRepository();
    private readonly DriverHarness _h = new();

    public void Dispose() => _h.Dispose();

    private static string FindRepository()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Palisade.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("the tests run from inside the repository; Palisade.sln was not found above " + AppContext.BaseDirectory);
    }

    [Theory]
    [InlineData("Palisade.Drivers.Antivirus", "antivirus")]
    [InlineData("Palisade.Drivers.Firewall", "firewall")]
    [InlineData("Palisade.Drivers.AppControl", "appcontrol")]
    [InlineData("Palisade.Drivers.SelfProtection", "selfprotect")]
    public void The_sample_package_signed_with_the_development_key_loads_and_starts(string project, string name)
    {
        string package = Path.Combine(_h.Home, "packages", name);
        Directory.CreateDirectory(package);
        File.Copy(Path.Combine(s_repository, "drivers", project, "manifest.json"), Path.Combine(package, "manifest.json"));
        File.Copy(Path.Combine(AppContext.BaseDirectory, project + ".dll"), Path.Combine(package, project + ".dll"));
        string keyFile = Path.Combine(s_repository, "drivers", "dev-signing-key.pem");
        using (ECDsa key = SigningKeys.ImportPrivatePem(File.ReadAllText(keyFile), keyFile))
        {
            PackageSignature.Sign(package, key);
        }

        var trust = new TrustStore(Path.Combine(_h.Home, "trust"));
        trust.Add(File.ReadAllText(keyFile + SigningKeys.PublicKeySuffix), "palisade-dev", keyFile + SigningKeys.PublicKeySuffix);

        DriverLoadResult result = new DriverLoader(Palisade.Kernel.KernelFlavor.Protected, trust).Load(package, out LoadedPackage? loaded);

        Assert.True(result.IsLoaded, result.ToString());
        Assert.Equal(name, loaded!.Manifest.Name);
        Assert.NotSame(typeof(Antivirus.AntivirusDriver).Assembly, loaded.MainAssembly);
        Assert.Equal(Status.Success, _h.Kernel.StartDriver(new DriverObject(name, "Palisade sample drivers", "1.0.0", "", ""), loaded.Entry, ParametersFor(name)));
        Assert.Single(_h.Kernel.SecurityCenter.List());
    }

    private Dictionary<string, string> ParametersFor(string name) => name switch
    {
        "appcontrol" => new() { ["allowlist"] = _h.WriteFile("allow.list", "path /usr/bin/\n"), ["mode"] = "audit" },
        "selfprotect" => new() { ["processes"] = "/opt/product/bin/", ["files"] = "/opt/product" },
        _ => [],
    };
}
