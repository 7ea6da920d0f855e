// The driver loader: from a package folder to an instantiated IDriver, or a refusal with a reason. The order of the
// checks is the point: the package is read once into memory; its signature is verified against the trust store
// before anything in it is interpreted; the manifest, the API version and the assemblies' metadata are checked
// without loading code; in the protected flavor the driver verifier then reads every assembly's IL (still without
// loading it); only then is the main assembly loaded, into a collectible context of its own, and the entry type
// instantiated.
using System.Reflection;
using Palisade.Api;
using Palisade.Kernel.Drivers.Verification;

namespace Palisade.Kernel.Drivers;

/// <summary>Verifies and loads driver packages. One loader per kernel; its flavor is fixed when it is created.</summary>
internal sealed class DriverLoader
{
    /// <param name="flavor">The kernel's flavor: <see cref="KernelFlavor.Protected"/> enforces signatures.</param>
    /// <param name="trustStore">The keys whose signatures are accepted.</param>
    public DriverLoader(KernelFlavor flavor, TrustStore trustStore)
    {
        ArgumentNullException.ThrowIfNull(trustStore);
        if (!Enum.IsDefined(flavor))
        {
            throw new ArgumentOutOfRangeException(nameof(flavor), flavor, "unknown kernel flavor.");
        }

        Flavor = flavor;
        TrustStore = trustStore;
    }

    /// <summary>The API version this kernel implements, <see cref="PalisadeKernel.ApiVersion"/> as major.minor.</summary>
    public static Version ApiVersion { get; } = new(PalisadeKernel.ApiVersion.Major, PalisadeKernel.ApiVersion.Minor);

    /// <summary>The flavor: whether signatures are enforced.</summary>
    public KernelFlavor Flavor { get; }

    /// <summary>The trust store signatures are checked against.</summary>
    public TrustStore TrustStore { get; }

    /// <summary>
    /// Verifies a package and, when every check passes, loads its main assembly in a load context of its own and
    /// creates the entry object. The driver's IDriver.Load is not called here: the kernel does that
    /// (<see cref="PalisadeKernel.StartDriver"/>) once it has made the driver's record and context.
    /// </summary>
    /// <param name="packageDirectory">The package folder.</param>
    /// <param name="driver">The loaded driver, or null when refused.</param>
    /// <returns>The outcome: <see cref="DriverLoadResult.IsLoaded"/>, or the refusal with its status and message.</returns>
    public DriverLoadResult Load(string packageDirectory, out LoadedPackage? driver) => Load(packageDirectory, beforeCode: null, out driver);

    /// <summary>
    /// As <see cref="Load(string, out LoadedPackage?)"/>; <paramref name="beforeCode"/>, when given, runs after every check
    /// passed and before any code of the package loads (a driver host gives up its privileges there, having read the
    /// package and the trust store with them).
    /// </summary>
    public DriverLoadResult Load(string packageDirectory, Action? beforeCode, out LoadedPackage? driver) =>
        Load(packageDirectory, verifiedByKernel: null, beforeCode, out driver);

    /// <summary>
    /// As <see cref="Load(string, Action?, out LoadedPackage?)"/>, in a driver host: <paramref name="verifiedByKernel"/>,
    /// when given, is the content digest (<see cref="PackageDigest.ContentDigest"/>) of the package the kernel verified.
    /// Every other check runs again (the signature against the trust store, the manifest, the assemblies' metadata);
    /// the driver verifier's verdict is the kernel's when the package read here has that very digest (the same bytes),
    /// and a package that changed since is refused rather than verified anew.
    /// </summary>
    public DriverLoadResult Load(string packageDirectory, byte[]? verifiedByKernel, Action? beforeCode, out LoadedPackage? driver)
    {
        driver = null;
        DriverLoadResult? refusal = Check(packageDirectory, verifiedByKernel, out VerifiedPackage? verified);
        return refusal ?? Load(verified!, beforeCode, out driver);
    }

    /// <summary>
    /// Loads a package <see cref="Verify"/> passed, from the bytes that were verified (the package is read once, so
    /// what loads is what was checked): its main assembly in a load context of its own, and the entry object.
    /// </summary>
    public DriverLoadResult Load(VerifiedPackage verified, Action? beforeCode, out LoadedPackage? driver)
    {
        ArgumentNullException.ThrowIfNull(verified);
        driver = null;
        (DriverPackage package, DriverManifest manifest, SignatureVerification signature, Dictionary<string, PackageFile> assemblies) =
            (verified.Package, verified.Manifest, verified.Signature, verified.Assemblies);
        beforeCode?.Invoke();
        var context = new DriverLoadContext(manifest.Name, package, assemblies);
        DriverLoadResult? refusal = Instantiate(context, package, manifest, assemblies, out Assembly? mainAssembly, out List<Assembly>? loaded, out IDriver? entry);
        if (refusal is not null)
        {
            context.Unload();
            return refusal;
        }

        byte[] mainSha256 = package.Find(manifest.Assembly)!.Sha256;
        driver = new LoadedPackage(manifest, package.Directory, signature, context, mainAssembly!, loaded!, mainSha256, entry!)
        {
            PackageObjects = verified.PackageObjects,
        };
        return new DriverLoadResult(Status.Success, DriverLoadRefusal.None, "loaded " + verified.Describe(Flavor));
    }

    /// <summary>
    /// Every check of <see cref="Load(string, out LoadedPackage?)"/> (package, signature, manifest, API version, assemblies'
    /// metadata, the driver verifier in the protected flavor) without loading any of the package's code: what the kernel
    /// does for a driver that runs isolated, whose host then loads it.
    /// </summary>
    public DriverLoadResult Verify(string packageDirectory, out VerifiedPackage? verified)
    {
        DriverLoadResult? refusal = Check(packageDirectory, verifiedByKernel: null, out verified);
        return refusal ?? new DriverLoadResult(Status.Success, DriverLoadRefusal.None, "verified " + verified!.Describe(Flavor));
    }

    private DriverLoadResult? Check(string packageDirectory, byte[]? verifiedByKernel, out VerifiedPackage? verified)
    {
        ArgumentNullException.ThrowIfNull(packageDirectory);
        verified = null;
        if (!DriverPackage.TryRead(packageDirectory, out DriverPackage? package, out string? error))
        {
            return DriverLoadResult.Refused(DriverLoadRefusal.PackageUnreadable, error);
        }

        SignatureVerification signature = PackageSignature.Verify(package, TrustStore);
        if (!signature.IsValid && Flavor == KernelFlavor.Protected)
        {
            return DriverLoadResult.Refused(RefusalOf(signature.Outcome), signature.Message);
        }

        PackageFile? manifestFile = package.Find(DriverManifest.FileName);
        if (manifestFile is null)
        {
            return DriverLoadResult.Refused(DriverLoadRefusal.ManifestInvalid, $"the package {package.Directory} has no {DriverManifest.FileName}.");
        }

        if (!DriverManifest.TryParse(manifestFile.Content, out DriverManifest? manifest, out error))
        {
            return DriverLoadResult.Refused(DriverLoadRefusal.ManifestInvalid, error);
        }

        if (manifest.MinimumApiVersion > ApiVersion)
        {
            return DriverLoadResult.Refused(DriverLoadRefusal.NeedsNewerApi,
                $"driver {manifest.Name} needs API {manifest.MinimumApiVersion}; this kernel provides API {ApiVersion}.");
        }

        DriverLoadResult? refusal = DriverAssemblyCheck.Check(package, manifest, ApiVersion, out Dictionary<string, PackageFile> assemblies);
        if (refusal is not null)
        {
            return refusal;
        }

        // In the protected flavor every package passes the verifier before any of its code loads, in the kernel or in a
        // driver host (which loads only the bytes the kernel verified). There is no switch that skips it; only the compat
        // flavor, which also accepts unsigned drivers and runs without the guard, does not verify.
        if (Flavor == KernelFlavor.Protected && verifiedByKernel is not null)
        {
            if (!PackageDigest.ContentDigest(package).AsSpan().SequenceEqual(verifiedByKernel))
            {
                return DriverLoadResult.Refused(DriverLoadRefusal.VerifierRefused,
                    $"the package of {manifest.Name} changed after the kernel verified it; it is not loaded.");
            }
        }
        else if (Flavor == KernelFlavor.Protected)
        {
            VerificationReport report = DriverVerifier.Verify(package);
            if (!report.IsClean)
            {
                return DriverLoadResult.Refused(DriverLoadRefusal.VerifierRefused,
                    $"the driver verifier refused {manifest.Name}: {report.Summary()}");
            }
        }

        verified = new VerifiedPackage(package, manifest, signature, assemblies);
        return null;
    }

    private static DriverLoadResult? Instantiate(
        DriverLoadContext context,
        DriverPackage package,
        DriverManifest manifest,
        Dictionary<string, PackageFile> assemblies,
        out Assembly? mainAssembly,
        out List<Assembly>? loaded,
        out IDriver? entry)
    {
        entry = null;
        mainAssembly = null;
        loaded = null;
        Type? type;
        ConstructorInfo? constructor;
        try
        {
            mainAssembly = context.LoadPackageAssembly(package.Find(manifest.Assembly)!);
            loaded = LoadAll(context, assemblies);
            type = mainAssembly.GetType(manifest.EntryType, throwOnError: false);
            if (type is null)
            {
                return DriverLoadResult.Refused(DriverLoadRefusal.EntryTypeMissing, $"the entry type {manifest.EntryType} is not defined in {manifest.Assembly}.");
            }

            if (!typeof(IDriver).IsAssignableFrom(type))
            {
                return DriverLoadResult.Refused(DriverLoadRefusal.EntryTypeNotDriver,
                    $"the entry type {manifest.EntryType} does not implement {typeof(IDriver).FullName}.");
            }

            constructor = type.GetConstructor(Type.EmptyTypes);
        }
        catch (Exception e) when (e is BadImageFormatException or FileLoadException or FileNotFoundException or TypeLoadException)
        {
            // Resolving the entry type's base types and interfaces loads the package's other assemblies; a missing or
            // broken one surfaces here.
            return DriverLoadResult.Refused(DriverLoadRefusal.InvalidAssembly, $"{manifest.Assembly} could not be loaded: {e.Message}");
        }

        if (constructor is null)
        {
            return DriverLoadResult.Refused(DriverLoadRefusal.EntryTypeNotDriver,
                $"the entry type {manifest.EntryType} has no public parameterless constructor.");
        }

        try
        {
            entry = (IDriver)constructor.Invoke(null);
            return null;
        }
        catch (Exception e) when (e is TargetInvocationException or TypeInitializationException)
        {
            // A throwing constructor arrives wrapped in TargetInvocationException, a throwing static constructor in
            // TypeInitializationException; either way the driver's own exception is the inner one.
            Exception cause = e.InnerException ?? e;
            return DriverLoadResult.Refused(DriverLoadRefusal.EntryTypeFaulted,
                $"the constructor of {manifest.EntryType} threw {cause.GetType().Name}: {cause.Message}");
        }
    }

    // Loading an assembly runs none of its code; loading them all now gives the kernel's record the complete list of
    // the driver's code, so a crash dump can attribute any of it to the driver.
    private static List<Assembly> LoadAll(DriverLoadContext context, Dictionary<string, PackageFile> assemblies)
    {
        var loaded = new List<Assembly>(assemblies.Count);
        foreach (string name in assemblies.Keys)
        {
            loaded.Add(context.LoadFromAssemblyName(new AssemblyName(name)));
        }

        return loaded;
    }

    private static DriverLoadRefusal RefusalOf(SignatureOutcome outcome) => outcome switch
    {
        SignatureOutcome.Unsigned => DriverLoadRefusal.Unsigned,
        SignatureOutcome.Malformed => DriverLoadRefusal.SignatureMalformed,
        SignatureOutcome.UntrustedSigner => DriverLoadRefusal.UntrustedSigner,
        _ => DriverLoadRefusal.Tampered,
    };
}

/// <summary>A package that passed every check of the loader; none of its code is loaded.</summary>
internal sealed record VerifiedPackage(DriverPackage Package, DriverManifest Manifest, SignatureVerification Signature, Dictionary<string, PackageFile> Assemblies)
{
    /// <summary>The package's folders and files (with its signature), which the kernel keeps guests from changing.</summary>
    public IReadOnlyList<(FileIdentity Identity, bool IsFolder)> PackageObjects { get; } =
    [
        .. Package.Folders.Select(f => (f, true)),
        .. Package.Files.Select(f => (f.Identity, false)),
        .. (Package.Signature is null ? [] : new[] { (Package.SignatureIdentity, false) }),
    ];

    /// <summary>The SHA-256 of the main assembly.</summary>
    public byte[] MainSha256 => Package.Find(Manifest.Assembly)!.Sha256;

    /// <summary>What was checked, for the load message.</summary>
    public string Describe(KernelFlavor flavor)
    {
        string how = flavor == KernelFlavor.Protected
            ? Signature.Message + "; code verified"
            : Signature.IsValid
                ? Signature.Message + "; compat flavor, code not verified"
                : $"compat flavor, signature not enforced ({Signature.Outcome}: {Signature.Message}), code not verified";
        return $"driver {Manifest.Name} {Manifest.Version} by {Manifest.Vendor}; {how}";
    }
}
