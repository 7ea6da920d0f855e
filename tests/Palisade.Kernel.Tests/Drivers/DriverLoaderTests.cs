using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Tests.Drivers;

public sealed class DriverLoaderTests : IDisposable
{
    private static readonly Dictionary<string, string> NoParameters = [];

    private readonly PackageWorkspace _workspace = new();
    private readonly KernelEventLog _events = new();
    private readonly TestKernel _kernel;

    public DriverLoaderTests()
    {
        _kernel = new TestKernel(events: _events.Sink);
        _events.Flush = _kernel.Kernel.Events.Flush;
    }

    public void Dispose()
    {
        _kernel.Dispose();
        _events.Dispose();
        _workspace.Dispose();
    }

    private static Dictionary<string, string> Behaviour(string behaviour) => new() { ["behaviour"] = behaviour };

    /// <summary>A signed package whose key the _kernel's own trust store (in the test _kernel's home) trusts.</summary>
    private string KernelTrustedPackage()
    {
        TrustStore kernelTrust = TrustStore.ForHome(_kernel.Home);
        if (kernelTrust.Find(_workspace.VendorKeyId) is null)
        {
            kernelTrust.Add(SigningKeys.ExportPublicPem(_workspace.VendorKey), "test-vendor", "the test vendor key");
        }

        return _workspace.CreateSignedPackage();
    }

    private Status StartInKernel(string package, Dictionary<string, string> parameters, out DriverObject? record) =>
        _kernel.Kernel.LoadDriverPackage(package, parameters, out record, out _);

    private DriverLoader ProtectedLoader() => new(KernelFlavor.Protected, _workspace.Trust);

    private DriverLoadResult LoadAndRelease(DriverLoader loader, string package)
    {
        DriverLoadResult result = loader.Load(package, out LoadedPackage? driver);
        Assert.Equal(result.IsLoaded, driver is not null);
        driver?.Unload(static () => { });
        return result;
    }

    private string TrustedSignedPackage(string project = PackageWorkspace.SampleProject, string? manifest = null)
    {
        if (_workspace.Trust.Find(_workspace.VendorKeyId) is null)
        {
            _workspace.TrustVendor();
        }

        return _workspace.CreateSignedPackage(project, manifest);
    }

    private void AssertRefused(DriverLoadResult result, DriverLoadRefusal refusal, Status status, string messagePart)
    {
        Assert.False(result.IsLoaded);
        Assert.Equal(refusal, result.Refusal);
        Assert.Equal(status, result.Status);
        Assert.Contains(messagePart, result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Kernel_api_version_is_the_version_of_the_api_assembly()
    {
        Assert.Equal(new Version(1, 0), DriverLoader.ApiVersion);
    }

    [Fact]
    public void Signed_and_trusted_driver_loads_in_a_collectible_context_of_its_own()
    {
        DriverLoadResult result = ProtectedLoader().Load(TrustedSignedPackage(), out LoadedPackage? driver);

        Assert.True(result.IsLoaded, result.Message);
        Assert.Equal(Status.Success, result.Status);
        Assert.Equal(PackageWorkspace.SampleEntryType, driver!.Entry.GetType().FullName);
        Assert.Equal("test-vendor", driver.Signature.Signer?.Name);
        AssemblyLoadContext? context = AssemblyLoadContext.GetLoadContext(driver.MainAssembly);
        Assert.NotSame(AssemblyLoadContext.Default, context);
        Assert.True(context!.IsCollectible);
        Assert.Equal("driver:sample-driver", context.Name);
        driver.Unload(static () => { });
    }

    [Fact]
    public void Driver_sees_the_kernels_own_api_assembly()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedPackage? driver);

        Assert.Contains(driver!.MainAssembly.GetReferencedAssemblies(), name => name.Name == "Palisade.Api");
        Assert.Same(typeof(IDriver).Assembly, driver.Entry.GetType().GetInterface(nameof(IDriver))!.Assembly);
        driver.Unload(static () => { });
    }

    [Fact]
    public void Unsigned_package_is_refused()
    {
        _workspace.TrustVendor();

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), _workspace.CreatePackage());

        AssertRefused(result, DriverLoadRefusal.Unsigned, Status.InvalidSignature, "is not signed");
    }

    [Fact]
    public void Package_with_one_byte_changed_in_its_assembly_is_refused_as_tampered()
    {
        string package = TrustedSignedPackage();
        PackageWorkspace.FlipOneByte(Path.Combine(package, PackageWorkspace.SampleProject + ".dll"));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.Tampered, Status.InvalidSignature, PackageWorkspace.SampleProject + ".dll was changed");
    }

    [Fact]
    public void Package_with_one_byte_changed_in_a_dependency_is_refused_as_tampered()
    {
        string package = TrustedSignedPackage();
        PackageWorkspace.FlipOneByte(Path.Combine(package, "Palisade.TestDrivers.Helper.dll"));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.Tampered, Status.InvalidSignature, "Palisade.TestDrivers.Helper.dll was changed");
    }

    [Fact]
    public void Package_with_one_byte_changed_in_its_manifest_is_refused_as_tampered()
    {
        string package = TrustedSignedPackage();
        string manifest = Path.Combine(package, DriverManifest.FileName);
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("\"1.0\"", "\"0.0\"", StringComparison.Ordinal));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.Tampered, Status.InvalidSignature, "manifest.json was changed");
    }

    [Fact]
    public void Package_with_a_garbled_signature_file_is_refused_as_malformed()
    {
        string package = TrustedSignedPackage();
        File.WriteAllText(Path.Combine(package, DriverPackage.SignatureFileName), "{}");

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.SignatureMalformed, Status.InvalidSignature, "signature.json is malformed");
    }

    [Fact]
    public void Package_signed_by_an_untrusted_key_is_refused()
    {
        string package = _workspace.CreateSignedPackage();

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.UntrustedSigner, Status.UntrustedSigner, _workspace.VendorKeyId);
    }

    [Fact]
    public void Driver_needing_a_newer_api_is_refused()
    {
        string package = TrustedSignedPackage(manifest: PackageWorkspace.Manifest(minimumApiVersion: "1.1"));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.NeedsNewerApi, Status.RevisionMismatch, "needs API 1.1; this kernel provides API 1.0");
    }

    [Fact]
    public void Driver_referencing_the_kernel_assembly_is_refused()
    {
        string package = TrustedSignedPackage(
            PackageWorkspace.KernelReferencingProject,
            PackageWorkspace.Manifest(PackageWorkspace.KernelReferencingEntryType, PackageWorkspace.KernelReferencingProject + ".dll"));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.ReferencesKernelAssembly, Status.DriverBlocked, "references the kernel assembly Palisade.Kernel");
    }

    [Fact]
    public void Driver_whose_dependency_references_the_kernel_assembly_is_refused()
    {
        string package = _workspace.CreatePackage();
        string poker = PackageWorkspace.KernelReferencingProject + ".dll";
        File.Copy(Path.Combine(PackageWorkspace.FixtureDirectory(PackageWorkspace.KernelReferencingProject), poker), Path.Combine(package, poker));
        _workspace.TrustVendor();
        PackageSignature.Sign(package, _workspace.VendorKey);

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.ReferencesKernelAssembly, Status.DriverBlocked, poker + " references the kernel assembly Palisade.Kernel");
    }

    [Fact]
    public void Package_that_ships_a_kernel_assembly_is_refused()
    {
        string package = _workspace.CreatePackage();
        File.Copy(typeof(DriverLoader).Assembly.Location, Path.Combine(package, "Palisade.Kernel.dll"));
        _workspace.TrustVendor();
        PackageSignature.Sign(package, _workspace.VendorKey);

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.ReferencesKernelAssembly, Status.DriverBlocked, "Palisade.Kernel.dll is the kernel assembly");
    }

    [Fact]
    public void Kernel_assembly_asked_for_by_name_at_run_time_is_refused_to_the_driver_in_the_compat_flavor()
    {
        // The protected flavor's verifier refuses Assembly.Load before the driver runs; the compat flavor does not
        // verify, and its load context still refuses the kernel assembly.
        using var compatEvents = new KernelEventLog();
        using var compat = new TestKernel(events: compatEvents.Sink, flavor: KernelFlavor.Compat);
        compatEvents.Flush = compat.Kernel.Events.Flush;
        string package = _workspace.CreatePackage(UnverifiableProject,
            PackageWorkspace.Manifest("Palisade.TestDrivers.Unverifiable.KernelByNameDriver", UnverifiableProject + ".dll", name: "kernel-by-name"));

        Status status = compat.Kernel.LoadDriverPackage(package, NoParameters, out DriverObject? record, out string message);

        Assert.True(status.IsSuccess, message);
        Assert.Contains(compatEvents.Lines(), e => e.StartsWith("kernel-by-name: refused: driver kernel-by-name may not load the kernel assembly Palisade.Kernel", StringComparison.Ordinal));
        compat.Kernel.StopDriver(record!);
    }

    private const string UnverifiableProject = "Palisade.TestDrivers.Unverifiable";

    [Fact]
    public void Protected_flavor_refuses_a_package_the_verifier_refuses_naming_member_method_and_rule()
    {
        string package = TrustedSignedPackage(UnverifiableProject,
            PackageWorkspace.Manifest("Palisade.TestDrivers.Unverifiable.KernelByNameDriver", UnverifiableProject + ".dll", name: "kernel-by-name"));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.VerifierRefused, Status.DriverBlocked, "the driver verifier refused kernel-by-name: Palisade.TestDrivers.Unverifiable.dll: refused: ");
        Assert.Matches(@"refused: .+ in .+ \(rule PV0\d\d [^)]+\)", result.Message);
    }

    [Fact]
    public void Protected_flavor_refuses_an_unverifiable_package_before_any_of_its_code_loads()
    {
        string package = TrustedSignedPackage(UnverifiableProject,
            PackageWorkspace.Manifest("Palisade.TestDrivers.Unverifiable.KernelByNameDriver", UnverifiableProject + ".dll", name: "kernel-by-name"));

        ProtectedLoader().Load(package, out LoadedPackage? driver);

        Assert.Null(driver);
        Assert.DoesNotContain(AssemblyLoadContext.All, c => c.Name == "driver:kernel-by-name");
    }

    [Fact]
    public void Compat_flavor_loads_an_unverifiable_package_and_says_its_code_was_not_verified()
    {
        var loader = new DriverLoader(KernelFlavor.Compat, _workspace.Trust);
        string package = _workspace.CreatePackage(UnverifiableProject,
            PackageWorkspace.Manifest("Palisade.TestDrivers.Unverifiable.KernelByNameDriver", UnverifiableProject + ".dll", name: "kernel-by-name"));

        DriverLoadResult result = loader.Load(package, out LoadedPackage? driver);

        Assert.True(result.IsLoaded, result.Message);
        Assert.Contains("code not verified", result.Message, StringComparison.Ordinal);
        driver!.Unload(static () => { });
    }

    [Fact]
    public void Protected_flavor_loads_and_starts_ordinary_csharp_that_the_verifier_accepts()
    {
        string package = TrustedSignedPackage("Palisade.TestDrivers.Verifiable",
            PackageWorkspace.Manifest("Palisade.TestDrivers.Verifiable.OrdinaryDriver", "Palisade.TestDrivers.Verifiable.dll", name: "ordinary"));
        TrustStore.ForHome(_kernel.Home).Add(SigningKeys.ExportPublicPem(_workspace.VendorKey), "test-vendor", "the test vendor key");

        Status status = _kernel.Kernel.LoadDriverPackage(package, NoParameters, out DriverObject? record, out string message);

        Assert.Equal(Status.Success, status);
        Assert.Equal("loaded in the kernel", message);
        Assert.StartsWith("started: 2 rules", _events.Lines()[0], StringComparison.Ordinal);
        _kernel.Kernel.StopDriver(record!);
    }

    [Fact]
    public void Package_with_an_invalid_manifest_is_refused_naming_the_property()
    {
        var loader = new DriverLoader(KernelFlavor.Compat, _workspace.Trust);
        string package = _workspace.CreatePackage(manifest: PackageWorkspace.Manifest(minimumApiVersion: "latest"));

        DriverLoadResult result = LoadAndRelease(loader, package);

        AssertRefused(result, DriverLoadRefusal.ManifestInvalid, Status.InvalidParameter, "\"minimumApiVersion\"");
    }

    [Fact]
    public void Package_without_a_manifest_is_refused()
    {
        var loader = new DriverLoader(KernelFlavor.Compat, _workspace.Trust);
        string package = _workspace.CreatePackage();
        File.Delete(Path.Combine(package, DriverManifest.FileName));

        DriverLoadResult result = LoadAndRelease(loader, package);

        AssertRefused(result, DriverLoadRefusal.ManifestInvalid, Status.InvalidParameter, "has no manifest.json");
    }

    [Fact]
    public void Main_assembly_that_is_not_a_dotnet_assembly_is_refused()
    {
        string package = _workspace.CreatePackage(manifest: PackageWorkspace.Manifest(assembly: "Native.dll"));
        File.WriteAllText(Path.Combine(package, "Native.dll"), "not a portable executable");
        _workspace.TrustVendor();
        PackageSignature.Sign(package, _workspace.VendorKey);

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.InvalidAssembly, Status.DriverBlocked, "Native.dll is not a .NET assembly");
    }

    [Fact]
    public void Two_files_defining_the_same_assembly_are_refused()
    {
        string package = _workspace.CreatePackage();
        Directory.CreateDirectory(Path.Combine(package, "lib"));
        File.Copy(Path.Combine(package, "Palisade.TestDrivers.Helper.dll"), Path.Combine(package, "lib", "Other.dll"));
        _workspace.TrustVendor();
        PackageSignature.Sign(package, _workspace.VendorKey);

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.InvalidAssembly, Status.DriverBlocked, "both define the assembly Palisade.TestDrivers.Helper");
    }

    [Fact]
    public void Entry_type_missing_from_the_assembly_is_refused()
    {
        string package = TrustedSignedPackage(manifest: PackageWorkspace.Manifest(entryType: "Palisade.TestDrivers.Sample.NoSuchDriver"));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.EntryTypeMissing, Status.DriverBlocked, "NoSuchDriver is not defined in Palisade.TestDrivers.Sample.dll");
    }

    [Fact]
    public void Entry_type_that_is_not_an_idriver_is_refused()
    {
        string package = TrustedSignedPackage(manifest: PackageWorkspace.Manifest(entryType: "Palisade.TestDrivers.Sample.NotADriver"));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.EntryTypeNotDriver, Status.DriverBlocked, "does not implement Palisade.Api.IDriver");
    }

    [Fact]
    public void Abstract_entry_type_is_refused()
    {
        string package = TrustedSignedPackage(manifest: PackageWorkspace.Manifest(entryType: "Palisade.TestDrivers.Sample.AbstractDriver"));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.EntryTypeNotDriver, Status.DriverBlocked, "AbstractDriver is abstract");
    }

    [Fact]
    public void Entry_type_without_a_parameterless_constructor_is_refused()
    {
        string package = TrustedSignedPackage(manifest: PackageWorkspace.Manifest(entryType: "Palisade.TestDrivers.Sample.DriverWithoutDefaultConstructor"));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.EntryTypeNotDriver, Status.DriverBlocked, "no public parameterless constructor");
    }

    [Fact]
    public void Entry_type_whose_constructor_throws_is_refused_and_contained()
    {
        string package = TrustedSignedPackage(manifest: PackageWorkspace.Manifest(entryType: "Palisade.TestDrivers.Sample.ThrowingConstructorDriver"));

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.EntryTypeFaulted, Status.CallbackFaulted, "the constructor refuses to run");
    }

    [Fact]
    public void Missing_package_folder_is_refused()
    {
        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), Path.Combine(_workspace.Root, "no-such-package"));

        AssertRefused(result, DriverLoadRefusal.PackageUnreadable, Status.ObjectPathNotFound, "does not exist");
    }

    [Fact]
    public void Compat_flavor_loads_an_unsigned_driver_and_records_that_it_is_unsigned()
    {
        var loader = new DriverLoader(KernelFlavor.Compat, _workspace.Trust);

        DriverLoadResult result = loader.Load(_workspace.CreatePackage(), out LoadedPackage? driver);

        Assert.True(result.IsLoaded, result.Message);
        Assert.Equal(SignatureOutcome.Unsigned, driver!.Signature.Outcome);
        Assert.Contains("compat flavor, signature not enforced", result.Message, StringComparison.Ordinal);
        driver.Unload(static () => { });
    }

    [Fact]
    public void Compat_flavor_still_refuses_a_driver_referencing_the_kernel()
    {
        var loader = new DriverLoader(KernelFlavor.Compat, _workspace.Trust);
        string package = _workspace.CreatePackage(
            PackageWorkspace.KernelReferencingProject,
            PackageWorkspace.Manifest(PackageWorkspace.KernelReferencingEntryType, PackageWorkspace.KernelReferencingProject + ".dll"));

        DriverLoadResult result = LoadAndRelease(loader, package);

        AssertRefused(result, DriverLoadRefusal.ReferencesKernelAssembly, Status.DriverBlocked, "Palisade.Kernel");
    }

    [Fact]
    public void Loaded_driver_lists_every_assembly_of_its_package()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedPackage? driver);

        Assert.Equal(
            ["Palisade.TestDrivers.Helper", PackageWorkspace.SampleProject],
            driver!.Assemblies.Select(a => a.GetName().Name).Order(StringComparer.Ordinal));
        Assert.Contains(driver.MainAssembly, driver.Assemblies);
        Assert.All(driver.Assemblies, a => Assert.Same(AssemblyLoadContext.GetLoadContext(driver.MainAssembly), AssemblyLoadContext.GetLoadContext(a)));
        driver.Unload(static () => { });
    }

    [Fact]
    public void Loaded_driver_carries_the_sha256_of_the_main_assembly_bytes_it_verified()
    {
        string package = TrustedSignedPackage();
        string expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(package, PackageWorkspace.SampleProject + ".dll"))));

        ProtectedLoader().Load(package, out LoadedPackage? driver);

        Assert.Equal(expected, driver!.MainAssemblySha256);
        driver.Unload(static () => { });
    }

    [Fact]
    public void Kernel_starts_a_trusted_package_and_the_driver_uses_its_shipped_dependency()
    {
        Status status = StartInKernel(KernelTrustedPackage(), NoParameters, out DriverObject? record);

        Assert.Equal(Status.Success, status);
        Assert.Same(record, _kernel.Kernel.Drivers.Find("sample-driver"));
        Assert.Equal(["loaded: hello from sample-driver", "kernel driver-loaded: sample-driver 1.0.0 in-kernel"], _events.Lines());
        _kernel.Kernel.StopDriver(record!);
    }

    [Theory]
    [InlineData("Unstated", "Protected", DriverMode.Default, true)]
    [InlineData("Unstated", "Compat", DriverMode.Default, false)]
    [InlineData("InKernel", "Protected", DriverMode.Default, false)]
    [InlineData("Isolated", "Compat", DriverMode.Default, true)]
    [InlineData("InKernel", "Protected", DriverMode.Isolated, true)]
    [InlineData("Isolated", "Protected", DriverMode.InKernel, false)]
    [InlineData("Unstated", "Compat", DriverMode.Isolated, true)]
    public void A_driver_runs_isolated_unless_its_manifest_or_the_run_or_the_compat_flavor_places_it_in_the_kernel(
        string manifest, string flavor, DriverMode mode, bool isolated)
    {
        Assert.Equal(isolated, PalisadeKernel.RunsIsolated(Enum.Parse<DriverHosting>(manifest), Enum.Parse<KernelFlavor>(flavor), mode));
    }

    [Fact]
    public void A_manifest_that_asks_for_the_kernel_is_loaded_in_the_kernel_by_default_after_verification()
    {
        TrustStore.ForHome(_kernel.Home).Add(SigningKeys.ExportPublicPem(_workspace.VendorKey), "test-vendor", "the test vendor key");
        string package = _workspace.CreateSignedPackage(manifest: PackageWorkspace.Manifest().Replace(
            "\"vendor\": \"Palisade Tests\",", "\"vendor\": \"Palisade Tests\", \"hosting\": \"in-kernel\",", StringComparison.Ordinal));

        Status status = _kernel.Kernel.LoadDriverPackage(package, NoParameters, DriverMode.Default, host: null, out DriverObject? record, out string message);

        Assert.True(status.IsSuccess, message);
        Assert.Equal("loaded in the kernel", message);
        Assert.NotNull(record!.Package);
        Assert.Contains("kernel driver-loaded: sample-driver 1.0.0 in-kernel", _events.Lines());
        _kernel.Kernel.StopDriver(record);
    }

    [Fact]
    public void A_driver_placed_isolated_without_a_host_command_is_refused()
    {
        string package = KernelTrustedPackage();

        Status status = _kernel.Kernel.LoadDriverPackage(package, NoParameters, DriverMode.Default, host: null, out DriverObject? record, out string message);

        Assert.Equal(Status.InvalidParameter, status);
        Assert.Null(record);
        Assert.Contains("runs isolated and no driver host command", message, StringComparison.Ordinal);
        Assert.Null(_kernel.Kernel.Drivers.Find("sample-driver"));
    }

    [Fact]
    public void A_driver_host_loads_the_package_the_kernel_verified_under_its_digest()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreateSignedPackage();
        Assert.True(ProtectedLoader().Verify(package, out VerifiedPackage? verified).IsLoaded);
        byte[] digest = PackageDigest.ContentDigest(verified!.Package);

        DriverLoadResult result = ProtectedLoader().Load(package, digest, beforeCode: null, out LoadedPackage? loaded);

        Assert.True(result.IsLoaded, result.Message);
        loaded!.Unload(static () => { });
    }

    [Fact]
    public void A_driver_host_refuses_a_package_that_changed_after_the_kernel_verified_it_even_when_signed_again()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreateSignedPackage();
        Assert.True(ProtectedLoader().Verify(package, out VerifiedPackage? verified).IsLoaded);
        byte[] digest = PackageDigest.ContentDigest(verified!.Package);
        File.WriteAllText(Path.Combine(package, "extra.txt"), "added after the kernel verified the package");
        PackageSignature.Sign(package, _workspace.VendorKey);

        DriverLoadResult result = ProtectedLoader().Load(package, digest, beforeCode: null, out LoadedPackage? loaded);

        Assert.False(result.IsLoaded);
        Assert.Null(loaded);
        Assert.Equal(DriverLoadRefusal.VerifierRefused, result.Refusal);
        Assert.Contains("changed after the kernel verified it", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Kernel_refuses_a_package_its_trust_store_does_not_trust()
    {
        Status status = _kernel.Kernel.LoadDriverPackage(_workspace.CreateSignedPackage(), NoParameters, out DriverObject? record, out string message);

        Assert.Equal(Status.UntrustedSigner, status);
        Assert.Null(record);
        Assert.Contains("not in the trust store", message, StringComparison.Ordinal);
        Assert.Null(_kernel.Kernel.Drivers.Find("sample-driver"));
    }

    [Fact]
    public void Stopping_calls_the_drivers_unload_then_the_kernel_removes_what_it_left_registered()
    {
        StartInKernel(KernelTrustedPackage(), NoParameters, out DriverObject? record);

        Status status = _kernel.Kernel.StopDriver(record!);

        Assert.Equal(Status.Success, status);
        Assert.Equal(
            ["unloaded: goodbye from sample-driver", "kernel driver-unloaded: sample-driver (1 registrations removed by the kernel)"],
            _events.Lines().Skip(2));
        Assert.Equal(0, _kernel.Kernel.RegistrationCount);
        Assert.Null(_kernel.Kernel.Drivers.Find("sample-driver"));
        Assert.True(record!.Package!.IsUnloaded);
        Assert.Throws<ObjectDisposedException>(() => record.Package.Entry);
    }

    [Fact]
    public void Load_returning_an_error_leaves_nothing_registered_and_releases_the_driver_without_calling_its_unload()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedPackage? driver);
        var context = new DriverContext(_kernel.Kernel, new DriverObject("sample-driver", "tests", "1.0", "", ""), Behaviour("load-fails"));
        int removals = 0;

        Status status = driver!.Start(context, () => removals++, out Exception? fault);

        Assert.Equal(Status.AccessDenied, status);
        Assert.Null(fault);
        Assert.Equal(1, removals);
        Assert.True(driver.IsUnloaded);
        Assert.Equal(["loaded: hello from sample-driver"], _events.Lines());
    }

    [Fact]
    public void Kernel_reports_a_driver_whose_load_fails_and_keeps_nothing_of_it()
    {
        Status status = StartInKernel(KernelTrustedPackage(), Behaviour("load-fails"), out DriverObject? record);

        Assert.Equal(Status.AccessDenied, status);
        Assert.Null(record);
        Assert.Equal(0, _kernel.Kernel.RegistrationCount);
        Assert.Null(_kernel.Kernel.Drivers.Find("sample-driver"));
    }

    [Fact]
    public void Load_that_throws_is_contained_as_callback_faulted()
    {
        Status status = StartInKernel(KernelTrustedPackage(), Behaviour("load-throws"), out _);

        Assert.Equal(Status.CallbackFaulted, status);
        Assert.Equal(["fault: Load threw InvalidOperationException: the sample driver was told to throw from Load"], _events.Lines());
        Assert.Null(_kernel.Kernel.Drivers.Find("sample-driver"));
    }

    [Fact]
    public void Unload_that_throws_is_contained_and_the_driver_is_still_removed_and_released()
    {
        StartInKernel(KernelTrustedPackage(), Behaviour("unload-throws"), out DriverObject? record);

        _kernel.Kernel.StopDriver(record!);

        Assert.Contains("fault: Unload threw InvalidOperationException: the sample driver was told to throw from Unload", _events.Lines());
        Assert.Equal(0, _kernel.Kernel.RegistrationCount);
        Assert.True(record!.Package!.IsUnloaded);
    }

    [Fact]
    public void Driver_loaded_but_never_started_is_released_without_calling_its_unload()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedPackage? driver);
        int removals = 0;

        DriverUnloadResult result = driver!.Unload(() => removals++);

        Assert.Equal(Status.Success, result.Status);
        Assert.Null(result.Fault);
        Assert.Equal(1, removals);
        Assert.Empty(_events.Lines());
        Assert.True(driver.IsUnloaded);
    }

    [Fact]
    public void Unloaded_driver_cannot_be_unloaded_again()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedPackage? driver);
        driver!.Unload(static () => { });

        Assert.Throws<InvalidOperationException>(() => driver.Unload(static () => { }));
    }

    [Fact]
    public void Unloaded_driver_load_context_is_collected_while_its_loaded_driver_object_is_still_held()
    {
        (LoadedPackage package, WeakReference loadContext) = StartAndStopInKernel(_kernel.Kernel, KernelTrustedPackage());

        for (int attempt = 0; attempt < 20 && loadContext.IsAlive; attempt++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        Assert.False(loadContext.IsAlive, "the driver's load context is still referenced after unload");
        Assert.True(package.IsUnloaded);
        Assert.Empty(package.Assemblies);
    }

    // Kept out of line so that no local of the test method refers to the driver's code. The LoadedPackage is returned
    // on purpose: a _kernel may keep it after unload, and it must not pin the driver's code. The sample driver leaves a
    // process-exit callback registered, so collection also proves that the _kernel removed it.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (LoadedPackage Package, WeakReference LoadContext) StartAndStopInKernel(PalisadeKernel _kernel, string package)
    {
        Status status = _kernel.LoadDriverPackage(package, NoParameters, out DriverObject? record, out string message);
        Assert.True(status.IsSuccess, message);
        var loadContext = new WeakReference(AssemblyLoadContext.GetLoadContext(record!.Package!.MainAssembly));
        Assert.Equal(Status.Success, _kernel.StopDriver(record));
        return (record.Package, loadContext);
    }
}
