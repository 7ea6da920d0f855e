using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Tests.Drivers;

public sealed class DriverLoaderTests : IDisposable
{
    private static readonly Dictionary<string, string> NoParameters = [];

    private readonly PackageWorkspace workspace = new();
    private readonly KernelEventLog events = new();
    private readonly TestKernel kernel;

    public DriverLoaderTests() => kernel = new TestKernel(events: events.Sink);

    public void Dispose()
    {
        kernel.Dispose();
        events.Dispose();
        workspace.Dispose();
    }

    private static Dictionary<string, string> Behaviour(string behaviour) => new() { ["behaviour"] = behaviour };

    private DriverLoader ProtectedLoader() => new(KernelFlavor.Protected, workspace.Trust);

    private DriverLoadResult LoadAndRelease(DriverLoader loader, string package)
    {
        DriverLoadResult result = loader.Load(package, out LoadedDriver? driver);
        Assert.Equal(result.IsLoaded, driver is not null);
        driver?.Stop(kernel.Kernel);
        return result;
    }

    private string TrustedSignedPackage(string project = PackageWorkspace.SampleProject, string? manifest = null)
    {
        if (workspace.Trust.Find(workspace.VendorKeyId) is null)
        {
            workspace.TrustVendor();
        }

        return workspace.CreateSignedPackage(project, manifest);
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
        DriverLoadResult result = ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);

        Assert.True(result.IsLoaded, result.Message);
        Assert.Equal(Status.Success, result.Status);
        Assert.Equal(PackageWorkspace.SampleEntryType, driver!.Entry.GetType().FullName);
        Assert.Equal("test-vendor", driver.Signature.Signer?.Name);
        AssemblyLoadContext? context = AssemblyLoadContext.GetLoadContext(driver.MainAssembly);
        Assert.NotSame(AssemblyLoadContext.Default, context);
        Assert.True(context!.IsCollectible);
        Assert.Equal("driver:sample-driver", context.Name);
        driver.Stop(kernel.Kernel);
    }

    [Fact]
    public void Driver_sees_the_kernels_own_api_assembly()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);

        Assert.Contains(driver!.MainAssembly.GetReferencedAssemblies(), name => name.Name == "Palisade.Api");
        Assert.Same(typeof(IDriver).Assembly, driver.Entry.GetType().GetInterface(nameof(IDriver))!.Assembly);
        driver.Stop(kernel.Kernel);
    }

    [Fact]
    public void Unsigned_package_is_refused()
    {
        workspace.TrustVendor();

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), workspace.CreatePackage());

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
        string package = workspace.CreateSignedPackage();

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.UntrustedSigner, Status.UntrustedSigner, workspace.VendorKeyId);
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
        string package = workspace.CreatePackage();
        string poker = PackageWorkspace.KernelReferencingProject + ".dll";
        File.Copy(Path.Combine(PackageWorkspace.FixtureDirectory(PackageWorkspace.KernelReferencingProject), poker), Path.Combine(package, poker));
        workspace.TrustVendor();
        PackageSignature.Sign(package, workspace.VendorKey);

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.ReferencesKernelAssembly, Status.DriverBlocked, poker + " references the kernel assembly Palisade.Kernel");
    }

    [Fact]
    public void Package_that_ships_a_kernel_assembly_is_refused()
    {
        string package = workspace.CreatePackage();
        File.Copy(typeof(DriverLoader).Assembly.Location, Path.Combine(package, "Palisade.Kernel.dll"));
        workspace.TrustVendor();
        PackageSignature.Sign(package, workspace.VendorKey);

        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), package);

        AssertRefused(result, DriverLoadRefusal.ReferencesKernelAssembly, Status.DriverBlocked, "Palisade.Kernel.dll is the kernel assembly");
    }

    [Fact]
    public void Kernel_assembly_asked_for_by_name_at_run_time_is_refused_to_the_driver()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);

        Assert.Equal(Status.Success, driver!.Start(kernel.Kernel, Behaviour("load-kernel-by-name")));

        Assert.Contains(events.Lines(), e => e.StartsWith("kernel-by-name: refused: driver sample-driver may not load the kernel assembly Palisade.Kernel", StringComparison.Ordinal));
        driver.Stop(kernel.Kernel);
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
        DriverLoadResult result = LoadAndRelease(ProtectedLoader(), Path.Combine(workspace.Root, "no-such-package"));

        AssertRefused(result, DriverLoadRefusal.PackageUnreadable, Status.ObjectPathNotFound, "does not exist");
    }

    [Fact]
    public void Compat_flavor_loads_an_unsigned_driver_and_records_that_it_is_unsigned()
    {
        var loader = new DriverLoader(KernelFlavor.Compat, workspace.Trust);

        DriverLoadResult result = loader.Load(workspace.CreatePackage(), out LoadedDriver? driver);

        Assert.True(result.IsLoaded, result.Message);
        Assert.Equal(SignatureOutcome.Unsigned, driver!.Signature.Outcome);
        Assert.Contains("compat flavor, signature not enforced", result.Message, StringComparison.Ordinal);
        driver.Stop(kernel.Kernel);
    }

    [Fact]
    public void Compat_flavor_still_refuses_a_driver_referencing_the_kernel()
    {
        var loader = new DriverLoader(KernelFlavor.Compat, workspace.Trust);
        string package = workspace.CreatePackage(
            PackageWorkspace.KernelReferencingProject,
            PackageWorkspace.Manifest(PackageWorkspace.KernelReferencingEntryType, PackageWorkspace.KernelReferencingProject + ".dll"));

        DriverLoadResult result = LoadAndRelease(loader, package);

        AssertRefused(result, DriverLoadRefusal.ReferencesKernelAssembly, Status.DriverBlocked, "Palisade.Kernel");
    }

    [Fact]
    public void Loaded_driver_has_a_kernel_record_listing_every_assembly_of_its_package()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);

        DriverRecord record = driver!.Record;

        Assert.Equal("sample-driver", record.Name);
        Assert.Equal("1.0.0", record.Version);
        Assert.Equal(Path.Combine(driver.PackageDirectory, PackageWorkspace.SampleProject + ".dll"), record.AssemblyPath);
        Assert.Equal(
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(record.AssemblyPath))),
            record.AssemblySha256);
        Assert.Equal(
            ["Palisade.TestDrivers.Helper", PackageWorkspace.SampleProject],
            record.Assemblies.Select(a => a.GetName().Name).Order(StringComparer.Ordinal));
        Assert.Contains(driver.MainAssembly, record.Assemblies);
        driver.Stop(kernel.Kernel);
    }

    [Fact]
    public void Start_lists_the_driver_and_calls_its_load_which_uses_its_shipped_dependency()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);

        Status status = driver!.Start(kernel.Kernel, NoParameters);

        Assert.Equal(Status.Success, status);
        Assert.Same(driver.Record, kernel.Kernel.Drivers.Find("sample-driver"));
        Assert.Equal(["loaded: hello from sample-driver", "kernel driver-loaded: sample-driver 1.0.0"], events.Lines());
        driver.Stop(kernel.Kernel);
    }

    [Fact]
    public void Stop_calls_the_drivers_unload_then_the_kernel_removes_what_it_left_registered()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);
        driver!.Start(kernel.Kernel, NoParameters);

        DriverUnloadResult result = driver.Stop(kernel.Kernel);

        Assert.Equal(Status.Success, result.Status);
        Assert.Equal(
            ["unloaded: goodbye from sample-driver", "kernel driver-unloaded: sample-driver (1 registrations removed by the kernel)"],
            events.Lines().Skip(2));
        Assert.Equal(0, kernel.Kernel.RegistrationCount);
        Assert.Null(kernel.Kernel.Drivers.Find("sample-driver"));
        Assert.True(driver.IsUnloaded);
        Assert.Throws<ObjectDisposedException>(() => driver.Entry);
    }

    [Fact]
    public void Driver_loaded_but_never_started_is_released_without_calling_its_unload()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);

        DriverUnloadResult result = driver!.Stop(kernel.Kernel);

        Assert.Equal(Status.Success, result.Status);
        Assert.Empty(events.Lines());
        Assert.True(driver.IsUnloaded);
    }

    [Fact]
    public void Unloaded_driver_cannot_be_stopped_again()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);
        driver!.Stop(kernel.Kernel);

        Assert.Throws<InvalidOperationException>(() => driver.Stop(kernel.Kernel));
    }

    [Fact]
    public void Started_driver_cannot_be_started_again()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);
        driver!.Start(kernel.Kernel, NoParameters);

        Assert.Throws<InvalidOperationException>(() => driver.Start(kernel.Kernel, NoParameters));
        driver.Stop(kernel.Kernel);
    }

    [Fact]
    public void Second_driver_with_the_same_name_fails_to_start_and_is_released()
    {
        DriverLoader loader = ProtectedLoader();
        string package = TrustedSignedPackage();
        loader.Load(package, out LoadedDriver? first);
        loader.Load(package, out LoadedDriver? second);
        first!.Start(kernel.Kernel, NoParameters);

        Status status = second!.Start(kernel.Kernel, NoParameters);

        Assert.Equal(Status.ObjectNameCollision, status);
        Assert.True(second.IsUnloaded);
        Assert.Same(first.Record, kernel.Kernel.Drivers.Find("sample-driver"));
        first.Stop(kernel.Kernel);
    }

    [Fact]
    public void Load_returning_an_error_leaves_nothing_registered_and_releases_the_driver_without_calling_its_unload()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);

        Status status = driver!.Start(kernel.Kernel, Behaviour("load-fails"));

        Assert.Equal(Status.AccessDenied, status);
        Assert.Equal(["loaded: hello from sample-driver"], events.Lines());
        Assert.Equal(0, kernel.Kernel.RegistrationCount);
        Assert.Null(kernel.Kernel.Drivers.Find("sample-driver"));
        Assert.True(driver.IsUnloaded);
    }

    [Fact]
    public void Load_that_throws_is_contained_as_callback_faulted()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);

        Status status = driver!.Start(kernel.Kernel, Behaviour("load-throws"));

        Assert.Equal(Status.CallbackFaulted, status);
        Assert.Equal(["fault: Load threw InvalidOperationException: the sample driver was told to throw from Load"], events.Lines());
        Assert.True(driver.IsUnloaded);
    }

    [Fact]
    public void Unload_that_throws_is_contained_and_the_driver_is_still_removed_and_released()
    {
        ProtectedLoader().Load(TrustedSignedPackage(), out LoadedDriver? driver);
        driver!.Start(kernel.Kernel, Behaviour("unload-throws"));

        DriverUnloadResult result = driver.Stop(kernel.Kernel);

        Assert.Equal(Status.Success, result.Status);
        Assert.Contains("fault: Unload threw InvalidOperationException: the sample driver was told to throw from Unload", events.Lines());
        Assert.Equal(0, kernel.Kernel.RegistrationCount);
        Assert.True(driver.IsUnloaded);
    }

    [Fact]
    public void Unloaded_driver_load_context_is_collected_while_the_kernel_still_holds_the_driver_record()
    {
        (LoadedDriver record, WeakReference loadContext) = LoadStartAndStop(ProtectedLoader(), TrustedSignedPackage(), kernel.Kernel);

        for (int attempt = 0; attempt < 20 && loadContext.IsAlive; attempt++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        Assert.False(loadContext.IsAlive, "the driver's load context is still referenced after unload");
        Assert.True(record.IsUnloaded);
        Assert.Empty(record.Record.Assemblies);
    }

    // Kept out of line so that no local of the test method refers to the driver's code; the driver's records are
    // returned on purpose, as the kernel may keep them after unload.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (LoadedDriver Record, WeakReference LoadContext) LoadStartAndStop(DriverLoader loader, string package, PalisadeKernel kernel)
    {
        DriverLoadResult result = loader.Load(package, out LoadedDriver? driver);
        Assert.True(result.IsLoaded, result.Message);
        Assert.Equal(Status.Success, driver!.Start(kernel, NoParameters));
        return (driver, driver.Stop(kernel).LoadContext);
    }
}
