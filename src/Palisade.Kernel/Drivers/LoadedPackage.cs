// A driver the loader has verified and instantiated, and the rest of its life. The kernel lists it, makes its
// context and calls Start here; to stop it, it calls Unload with its own removal of the driver's registrations.
// The order inside Unload is the point: the driver's Unload runs first (it may still unregister through its
// context), then the kernel removes whatever registrations remain, and only then is the load context released, so
// that no callback can point into code that is being unloaded.
using System.Reflection;
using Palisade.Api;

namespace Palisade.Kernel.Drivers;

/// <summary>The result of unloading a driver.</summary>
/// <param name="Status"><see cref="Status.Success"/>, or <see cref="Status.CallbackFaulted"/> when IDriver.Unload threw.</param>
/// <param name="Fault">The exception IDriver.Unload threw, if any.</param>
/// <param name="LoadContext">The driver's load context: it is collected once nothing references the driver's code
/// any more (a thread the driver started keeps it alive), which lets the kernel report an unload still pending.</param>
internal sealed record DriverUnloadResult(Status Status, Exception? Fault, WeakReference LoadContext);

/// <summary>A loaded driver: its manifest, signature, entry object, assemblies and load context.</summary>
internal sealed class LoadedPackage
{
    private const int Loaded = 0;
    private const int Started = 1;
    private const int Released = 2;

    private DriverLoadContext? _loadContext;
    private Assembly? _mainAssembly;
    private IReadOnlyList<Assembly> _assemblies;
    private IDriver? _entry;
    private int _state;

    internal LoadedPackage(
        DriverManifest manifest,
        string packageDirectory,
        SignatureVerification signature,
        DriverLoadContext loadContext,
        Assembly mainAssembly,
        IReadOnlyList<Assembly> assemblies,
        byte[] mainAssemblySha256,
        IDriver entry)
    {
        Manifest = manifest;
        MainAssemblySha256 = Convert.ToHexStringLower(mainAssemblySha256);
        PackageDirectory = packageDirectory;
        Signature = signature;
        _loadContext = loadContext;
        _mainAssembly = mainAssembly;
        _assemblies = assemblies;
        _entry = entry;
    }

    /// <summary>The driver's manifest; <see cref="DriverManifest.Name"/> names the driver.</summary>
    public DriverManifest Manifest { get; }

    /// <summary>The package folder it was loaded from.</summary>
    public string PackageDirectory { get; }

    /// <summary>The identities of the package's folders and files as they were read and verified: kernel objects while it is loaded.</summary>
    public IReadOnlyList<(Palisade.Api.FileIdentity Identity, bool IsFolder)> PackageObjects { get; init; } = [];

    /// <summary>The signature check. Always valid in the protected flavor; in the compat flavor it records what was found.</summary>
    public SignatureVerification Signature { get; }

    /// <summary>The SHA-256 (lowercase hex) of the main assembly's bytes as verified and loaded, which may differ from
    /// the file on disk if someone has replaced it since; the kernel's driver record should carry this one.</summary>
    public string MainAssemblySha256 { get; }

    /// <summary>The driver's main assembly.</summary>
    /// <exception cref="ObjectDisposedException">The driver is unloaded.</exception>
    public Assembly MainAssembly => _mainAssembly ?? throw Unloaded();

    /// <summary>
    /// Every assembly of the package, all loaded up front (loading runs none of their code) so that any code of the
    /// driver can be attributed to it, for example in a crash dump. Empty once unloaded; a copy kept elsewhere keeps
    /// the driver's code in memory.
    /// </summary>
    public IReadOnlyList<Assembly> Assemblies => _assemblies;

    /// <summary>The instance of the manifest's _entry type.</summary>
    /// <exception cref="ObjectDisposedException">The driver is unloaded.</exception>
    public IDriver Entry => _entry ?? throw Unloaded();

    /// <summary>True once the driver's code has been released (by <see cref="Unload"/> or a failed <see cref="Start"/>).</summary>
    public bool IsUnloaded => Volatile.Read(ref _state) == Released;

    /// <summary>
    /// Calls IDriver.Load with the driver's context. When it fails (an error status, or an exception, reported as
    /// <see cref="Status.CallbackFaulted"/>), the kernel's registrations for the driver are removed and the driver is
    /// released without calling IDriver.Unload, as the API documents.
    /// </summary>
    /// <param name="context">The context the kernel made for this driver.</param>
    /// <param name="removeRegistrations">Removes every registration the driver made through <paramref name="context"/>.</param>
    /// <param name="fault">The exception IDriver.Load threw, if any.</param>
    /// <returns>The status IDriver.Load returned, or <see cref="Status.CallbackFaulted"/>.</returns>
    /// <exception cref="InvalidOperationException">The driver was already started or unloaded (a kernel bug).</exception>
    public Status Start(IDriverContext context, Action removeRegistrations, out Exception? fault)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(removeRegistrations);
        if (Interlocked.CompareExchange(ref _state, Started, Loaded) != Loaded)
        {
            throw new InvalidOperationException($"driver {Manifest.Name} was already started or unloaded.");
        }

        Status status;
        fault = null;
        try
        {
            status = _entry!.Load(context);
        }
#pragma warning disable CA1031 // A driver's exception is contained, whatever it is: it must never take the kernel down.
        catch (Exception e)
#pragma warning restore CA1031
        {
            fault = e;
            status = Status.CallbackFaulted;
        }

        if (status.IsError)
        {
            Volatile.Write(ref _state, Released);
            removeRegistrations();
            Release();
        }

        return status;
    }

    /// <summary>
    /// Unloads the driver: IDriver.Unload (contained; not called for a driver that was never started), then the
    /// kernel removes what is left, then the load context is released.
    /// </summary>
    /// <param name="removeRegistrations">Removes every registration the driver still has.</param>
    /// <returns>The outcome, with a weak reference to the released load context.</returns>
    /// <exception cref="InvalidOperationException">The driver is already unloaded (a kernel bug).</exception>
    public DriverUnloadResult Unload(Action removeRegistrations)
    {
        ArgumentNullException.ThrowIfNull(removeRegistrations);
        int previous = Interlocked.Exchange(ref _state, Released);
        if (previous == Released)
        {
            throw new InvalidOperationException($"driver {Manifest.Name} is already unloaded.");
        }

        Status status = Status.Success;
        Exception? fault = null;
        if (previous == Started)
        {
            try
            {
                _entry!.Unload();
            }
#pragma warning disable CA1031 // Contained for the same reason as in Start.
            catch (Exception e)
#pragma warning restore CA1031
            {
                fault = e;
                status = Status.CallbackFaulted;
            }
        }

        removeRegistrations();
        return new DriverUnloadResult(status, fault, Release());
    }

    // Every strong reference this object holds into the driver's code is dropped, so that a kernel that keeps the
    // LoadedPackage (say, in a list of unloaded drivers) does not keep the driver's code alive.
    private WeakReference Release()
    {
        DriverLoadContext context = _loadContext!;
        _entry = null;
        _mainAssembly = null;
        _assemblies = [];
        _loadContext = null;
        context.Unload();
        return new WeakReference(context);
    }

    private ObjectDisposedException Unloaded() => new(Manifest.Name, $"driver {Manifest.Name} is unloaded.");
}
