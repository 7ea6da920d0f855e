// A driver the loader has verified and instantiated, and the rest of its life: the kernel starts it
// (PalisadeKernel.StartDriver lists it, gives it its context and calls IDriver.Load), stops it (StopDriver calls
// IDriver.Unload and removes whatever it left registered), and only then is the load context released, so that no
// callback can point into code that is being unloaded.
using System.Reflection;
using Palisade.Api;

namespace Palisade.Kernel.Drivers;

/// <summary>The result of stopping a driver.</summary>
/// <param name="Status">What <see cref="PalisadeKernel.StopDriver"/> returned; <see cref="Status.Success"/> also when
/// the driver was never started (nothing to stop).</param>
/// <param name="LoadContext">The driver's load context: it is collected once nothing references the driver's code
/// any more (a thread the driver started keeps it alive), which lets the kernel report an unload still pending.</param>
internal sealed record DriverUnloadResult(Status Status, WeakReference LoadContext);

/// <summary>A loaded driver: its manifest, signature, kernel record, entry object and load context.</summary>
internal sealed class LoadedDriver
{
    private const int Loaded = 0;
    private const int Started = 1;
    private const int Released = 2;

    private DriverLoadContext? loadContext;
    private Assembly? mainAssembly;
    private IDriver? entry;
    private int state;

    internal LoadedDriver(
        DriverManifest manifest,
        string packageDirectory,
        SignatureVerification signature,
        DriverLoadContext loadContext,
        Assembly mainAssembly,
        IReadOnlyList<Assembly> assemblies,
        PackageFile mainFile,
        IDriver entry)
    {
        Manifest = manifest;
        PackageDirectory = packageDirectory;
        Signature = signature;
        this.loadContext = loadContext;
        this.mainAssembly = mainAssembly;
        this.entry = entry;
        Record = new DriverRecord(
            manifest.Name,
            manifest.Vendor,
            manifest.Version.ToString(),
            Path.Combine(packageDirectory, mainFile.Path),
            Convert.ToHexStringLower(mainFile.Sha256))
        {
            Assemblies = assemblies,
        };
    }

    /// <summary>The driver's manifest; <see cref="DriverManifest.Name"/> names the driver.</summary>
    public DriverManifest Manifest { get; }

    /// <summary>The package folder it was loaded from.</summary>
    public string PackageDirectory { get; }

    /// <summary>The signature check. Always valid in the protected flavor; in the compat flavor it records what was found.</summary>
    public SignatureVerification Signature { get; }

    /// <summary>
    /// The kernel's record of the driver (name, vendor, version, main assembly path and SHA-256, and every assembly
    /// of the package, loaded up front so that code can be attributed to the driver). It stays valid after unload,
    /// but no longer refers to the driver's assemblies or entry object.
    /// </summary>
    public DriverRecord Record { get; }

    /// <summary>The driver's main assembly.</summary>
    /// <exception cref="ObjectDisposedException">The driver is unloaded.</exception>
    public Assembly MainAssembly => mainAssembly ?? throw Unloaded();

    /// <summary>The instance of the manifest's entry type.</summary>
    /// <exception cref="ObjectDisposedException">The driver is unloaded.</exception>
    public IDriver Entry => entry ?? throw Unloaded();

    /// <summary>True once the driver's code has been released (after <see cref="Stop"/> or a failed <see cref="Start"/>).</summary>
    public bool IsUnloaded => Volatile.Read(ref state) == Released;

    /// <summary>
    /// Starts the driver in a kernel: <see cref="PalisadeKernel.StartDriver"/> lists it and calls IDriver.Load with a
    /// context of its own. When that fails (an error status, an exception contained as
    /// <see cref="Status.CallbackFaulted"/>, or a name already loaded), the kernel has removed what the driver
    /// registered and this releases the driver's code; IDriver.Unload is not called, as the API documents.
    /// </summary>
    /// <param name="kernel">The kernel to start the driver in.</param>
    /// <param name="parameters">The driver's parameters (registry Parameters key and command-line overrides).</param>
    /// <returns>The status of the start.</returns>
    /// <exception cref="InvalidOperationException">The driver was already started or released (a kernel bug).</exception>
    public Status Start(PalisadeKernel kernel, IReadOnlyDictionary<string, string> parameters)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(parameters);
        if (Interlocked.CompareExchange(ref state, Started, Loaded) != Loaded)
        {
            throw new InvalidOperationException($"driver {Manifest.Name} was already started or unloaded.");
        }

        Status status = kernel.StartDriver(Record, Entry, parameters);
        if (status.IsError)
        {
            Release();
        }

        return status;
    }

    /// <summary>
    /// Stops the driver: <see cref="PalisadeKernel.StopDriver"/> calls IDriver.Unload (contained) and removes every
    /// registration left; then the load context is released. A driver that was loaded but never started is only released.
    /// </summary>
    /// <param name="kernel">The kernel the driver was started in.</param>
    /// <returns>The status and a weak reference to the released load context.</returns>
    /// <exception cref="InvalidOperationException">The driver is already unloaded (a kernel bug).</exception>
    public DriverUnloadResult Stop(PalisadeKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        int previous = Interlocked.Exchange(ref state, Released);
        if (previous == Released)
        {
            throw new InvalidOperationException($"driver {Manifest.Name} is already unloaded.");
        }

        Status status = previous == Started ? kernel.StopDriver(Record) : Status.Success;
        return new DriverUnloadResult(status, Release());
    }

    // Every strong reference this object and its record hold into the driver's code is dropped, so that a kernel
    // that keeps the LoadedDriver or the DriverRecord (say, in a list of unloaded drivers) does not keep the
    // driver's code alive.
    private WeakReference Release()
    {
        DriverLoadContext context = loadContext!;
        Volatile.Write(ref state, Released);
        entry = null;
        mainAssembly = null;
        loadContext = null;
        Record.Entry = null;
        Record.Context = null;
        Record.Assemblies = [];
        context.Unload();
        return new WeakReference(context);
    }

    private ObjectDisposedException Unloaded() => new(Manifest.Name, $"driver {Manifest.Name} is unloaded.");
}
