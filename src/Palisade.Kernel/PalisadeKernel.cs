using System.Reflection;
using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Events;
using Palisade.Kernel.Hosting;
using Palisade.Kernel.Io;
using Palisade.Kernel.Network;
using Palisade.Kernel.Objects;
using Palisade.Kernel.Processes;
using Palisade.Kernel.Registry;
using Palisade.Kernel.SecurityCenter;

namespace Palisade.Kernel;

/// <summary>
/// The kernel: it owns every manager (objects, processes, I/O and filters, network, registry, security center,
/// drivers), the system service table and the event stream. Front ends — the Linux host, the CLI, the tests —
/// issue every operation through <see cref="SystemCall"/>.
/// </summary>
internal sealed class PalisadeKernel : IDisposable, Control.IControlTarget
{
    /// <summary>The version of the driver API this kernel implements.</summary>
    public static readonly Version ApiVersion = typeof(IDriver).Assembly.GetName().Version ?? new Version(1, 0);

    /// <summary>The kernel's own version.</summary>
    public static readonly string Version = typeof(PalisadeKernel).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    [ThreadStatic]
    private static OperationRecord? t_record;

    private readonly IRegistryStore? _registry;
    private bool _disposed;

    // The bug check's ring of recent system calls, once the kernel runs under protection (the dump lists them).
    private BugChecks.SyscallRing? _recentCalls;

    public PalisadeKernel(KernelOptions options, IRegistryStore? registry = null)
    {
        Options = options;
        Events = new EventStream(options.Events, options.OwnsEvents, options.EventOptions);
        Faults = new FaultPolicy(Events);
        Holds = new HoldTable();
        Monitor = new CallbackMonitor(options.CallbackDeadline, (r, operation, own) => Faults.Report(r, RegistrationFaultKind.Overran, in operation,
            operation.Name + " callback overran its deadline: it has run " + own + " ms of its own, the deadline is " + (long)options.CallbackDeadline.TotalMilliseconds + " ms"));
        Objects = new ObjectManager(Monitor, Faults, Holds);
        ProcessTable = new ProcessTable(Objects.ProcessType, Objects.ThreadType);
        Processes = new ProcessNotifications(Monitor, Faults, Holds);
        Files = new FilterManager(Monitor, Faults, Holds);
        Network = new FilterEngine(Monitor, Faults, Holds);
        RegistryCallbacks = new RegistryNotifications(Monitor, Faults);
        ParameterCallbacks = new ParameterNotifications(this);

        // A registration removed while it holds operations: they end, with its timeout verdict.
        Files.Filters.Changed += Holds.CancelRemoved;
        Processes.Create.Changed += Holds.CancelRemoved;
        Network.Callouts.Changed += Holds.CancelRemoved;
        Objects.Callbacks.Changed += Holds.CancelRemoved;
        SecurityCenter = new SecurityCenterService(Events);
        Ports = new Ports.PortManager(string.IsNullOrEmpty(options.Home) ? null : options.Home, KernelFiles, Events);
        ServiceTable = new SystemServiceTable();
        if (Directory.Exists(options.Home))
        {
            _ = KernelFiles.AddHome(options.Home);
        }

        _registry = registry;
        PerformRegistry = PerformOnStore;
        if (registry is SharedRegistry shared)
        {
            // Changes of other kernels' (and the copy replaced after the hive's holder changed) reach the drivers too.
            shared.Replicated += ParameterCallbacks.RegistryChanged;
            shared.Serve(this, OwnedSockets);
        }
    }

    public KernelOptions Options { get; }

    /// <summary>The kernel's own objects on the host's file system, which no guest may change (the kernel boundary).</summary>
    public Io.KernelFiles KernelFiles { get; } = new();

    public KernelFlavor Flavor => Options.Flavor;

    public EventStream Events { get; }

    public CallbackMonitor Monitor { get; }

    /// <summary>What the kernel does about a registration's fault.</summary>
    public FaultPolicy Faults { get; }

    /// <summary>The operations drivers hold.</summary>
    public HoldTable Holds { get; }

    public ObjectManager Objects { get; }

    public ProcessTable ProcessTable { get; }

    public ProcessNotifications Processes { get; }

    public FilterManager Files { get; }

    public FilterEngine Network { get; }

    public RegistryNotifications RegistryCallbacks { get; }

    /// <summary>Drivers' parameters while they run, and the callbacks told of their changes.</summary>
    public ParameterNotifications ParameterCallbacks { get; }

    /// <summary>The Unix sockets this kernel listens on (its control socket), which guests must never reach.</summary>
    public Control.KernelSockets OwnedSockets { get; } = new();

    public SecurityCenterService SecurityCenter { get; }

    /// <summary>The drivers' communication ports, whose sockets guests may connect to but not change.</summary>
    public Ports.PortManager Ports { get; }

    public SystemServiceTable ServiceTable { get; }

    /// <summary>The one surface a host reaches the kernel through.</summary>
    public Hosting.KernelHost Host => _host ??= new Hosting.KernelHost(this);

    private Hosting.KernelHost? _host;

    /// <summary>The guard and bug check this kernel runs under, once <see cref="KernelProtection.Start"/> has put it there.</summary>
    public KernelProtection? Protection { get; private set; }

    internal void AttachProtection(KernelProtection protection)
    {
        Protection = protection;
        _recentCalls = protection.BugCheck.Syscalls;
    }

    public LoadedDriverList Drivers { get; } = new();

    /// <summary>Performs a registry operation on the hive (cached delegate: no allocation per call).</summary>
    public Func<RegistryRequest, Status> PerformRegistry { get; }

    /// <summary>The calling thread's operation record when the event stream is on, else null.</summary>
    public OperationRecord? CurrentRecord
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        get => Events.Enabled ? t_record ??= new OperationRecord() : null;
    }

    /// <summary>
    /// Issues a system service through the system service table and records it for crash dumps. Every service
    /// enters here: the host's through <see cref="Hosting.KernelHost"/>, the kernel's own and the tests' directly.
    /// </summary>
    public Status SystemCall(SystemService service, ref ServiceFrame frame)
    {
        Status s = ServiceTable.Call(this, service, ref frame);
        if (_recentCalls is not null)
        {
            RecordCall(service, ref frame, s);
        }

        return s;
    }

    /// <summary>
    /// Records a call in the crash dump's ring as the guest's operation: the two halves of a host-performed file
    /// operation are one entry, under the operation's own service (CreateFile for an open, recorded at its first
    /// half; RenameFile, DeleteFile or SetInformationFile for a path operation, recorded when it is decided for good).
    /// Allocation-free.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void RecordCall(SystemService service, ref ServiceFrame f, Status result)
    {
        if (f.FileRequest is { } r)
        {
            FileOperationKind kind = r.Operation.Kind;
            if (kind == FileOperationKind.Create)
            {
                if (service == SystemService.BeginFileOperation)
                {
                    _recentCalls!.Record(f.ProcessId, f.ThreadId, (int)SystemService.CreateFile, 0, r.Operation.OpenFlags, (long)kind, result.Code);
                }

                return;
            }

            if (service == SystemService.CompleteFileOperation || !r.NeedsCompletion)
            {
                SystemService logical = kind switch
                {
                    FileOperationKind.Rename => SystemService.RenameFile,
                    FileOperationKind.Delete => SystemService.DeleteFile,
                    _ => SystemService.SetInformationFile,
                };
                _recentCalls!.Record(f.ProcessId, f.ThreadId, (int)logical, 0, 0, (long)kind, result.Code);
            }

            return;
        }

        long arg0 = service == SystemService.CleanupFile ? f.Descriptor : f.TargetProcessId;
        _recentCalls!.Record(f.ProcessId, f.ThreadId, (int)service, arg0, (long)f.DesiredAccess, (long)f.File.Kind, result.Code);
    }


    private Status PerformOnStore(RegistryRequest request)
    {
        if (_registry is null)
        {
            return Status.NotSupported;
        }

        Status s = _registry.Perform(request);
        if (s.IsSuccess && request.MadeChange)
        {
            ParameterCallbacks.RegistryChanged(request);
        }

        return s;
    }

    /// <summary>A registry operation of the administrator (<c>palisade reg</c> through the control socket): a
    /// registry system service of process 0, which the registry callbacks decide. With the event stream on, it is
    /// an operation line (<c>registry</c>) with the callbacks' verdicts.</summary>
    private Status AdministratorRegistryCall(RegistryRequest request)
    {
        OperationRecord? record = CurrentRecord;
        if (record is not null)
        {
            record.Begin(0, "registry");
            record.Argument("request", request.Operation.ToString());
            record.Argument("key", request.KeyPath);
            record.Argument("value", request.ValueName);
            record.Argument("newName", request.NewName);
        }

        Status s = new RegistryClient(this, processId: 0).Perform(request);
        if (record is not null)
        {
            record.Result = s;
            Events.WriteOperation(record);
        }

        return s;
    }

    Status Control.IControlTarget.PerformRegistry(RegistryRequest request) => AdministratorRegistryCall(request);

    /// <summary>
    /// An administrator's <c>palisade bugcheck</c>: bug check 0xE2 MANUALLY_INITIATED_CRASH through the bug check
    /// facility <see cref="KernelProtection.Start"/> attached (in both flavors: the compat flavor has no guard, but it
    /// stops, kills its guests and writes a dump like the protected one), so the guests are stopped, the dump is
    /// written and the process ends with status 109 as for any bug check.
    /// </summary>
    Status Control.IControlTarget.PrepareBugCheck(Control.ControlPeer requester, string reason, out Action? raise)
    {
        raise = null;
        if (reason is null || !Control.ControlProtocol.IsValidReason(reason))
        {
            return Status.InvalidParameter;
        }

        BugChecks.KernelBugCheck? bugCheck = Protection?.BugCheck;
        if (bugCheck is null)
        {
            return Status.NotSupported;
        }

        if (bugCheck.HasStopped)
        {
            return Status.InvalidDeviceState;
        }

        var request = BugChecks.BugCheckRequest.ManuallyInitiated(requester.ProcessId, requester.UserId, reason);
        raise = () => bugCheck.Raise(request);
        return Status.Success;
    }

    /// <summary>
    /// Makes a loaded driver live: lists it, gives it its context and calls its entry. On failure (an error status or
    /// an exception) everything it registered is removed and it is unlisted.
    /// </summary>
    /// <param name="driver">The driver's record.</param>
    /// <param name="entry">Its entry object.</param>
    /// <param name="overrides">Parameters that win over the registry's for the whole run (<c>--param</c>); the
    /// driver's parameters are the string values of its Parameters key with these put over them.</param>
    public Status StartDriver(DriverObject driver, IDriver entry, IReadOnlyDictionary<string, string> overrides)
    {
        ArgumentNullException.ThrowIfNull(driver);
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(overrides);
        Status s = Drivers.Add(driver);
        if (s.IsError)
        {
            return s;
        }

        driver.Entry = entry;
        // The context is listed before its parameters are read, so that a change committed meanwhile is noted for it.
        driver.Context = new DriverContext(this, driver, overrides, overrides);
        driver.Context.ReplaceParameters(ParameterCallbacks.Read(driver.Name, overrides));
        Status loaded;
        Exception? fault = null;
        if (driver.Package is not null)
        {
            loaded = driver.Package.Start(driver.Context, () => RemoveEverythingOf(driver), out fault);
        }
        else
        {
            try
            {
                loaded = entry.Load(driver.Context);
            }
            catch (Exception ex)
            {
                fault = ex;
                loaded = Status.CallbackFaulted;
            }

            if (loaded.IsError)
            {
                RemoveEverythingOf(driver);
            }
        }

        if (fault is not null)
        {
            Events.WriteDriverFault(driver.Name, "Load threw " + fault.GetType().Name + ": " + fault.Message);
        }

        if (loaded.IsError)
        {
            Drivers.Remove(driver);
            driver.Context.Invalidate();
            return loaded;
        }

        Events.WriteKernel("driver-loaded", driver.Name + " " + driver.Version + (entry is Isolation.IsolatedDriver ? " isolated" : " in-kernel"));
        ParameterCallbacks.Started(driver.Context);
        return Status.Success;
    }

    /// <summary>
    /// Loads a driver package where it is to run (docs/security.md, "Where a driver runs") and starts it. The loader
    /// verifies the package first (signature against the trust store, manifest, and the driver verifier in the protected
    /// flavor) whatever the mode. Then, by <paramref name="mode"/>: <see cref="DriverMode.Default"/> follows the
    /// manifest's <c>hosting</c> (isolated unless it says <c>"in-kernel"</c>; in the compat flavor a manifest that says
    /// nothing means in the kernel, as legacy drivers expect); <see cref="DriverMode.Isolated"/> and
    /// <see cref="DriverMode.InKernel"/> place every driver so, whatever its manifest says. An isolated driver's code
    /// never loads into this process: a driver host process started with <paramref name="host"/> loads and runs it, and
    /// reaches the kernel through one socket; <paramref name="host"/> may be null when no driver is to run isolated (a
    /// driver that would is then refused with <see cref="Status.InvalidParameter"/>). On refusal, <paramref name="message"/>
    /// says why.
    /// </summary>
    public Status LoadDriverPackage(string packageDirectory, IReadOnlyDictionary<string, string> overrides, DriverMode mode, Isolation.DriverHostCommand? host,
        out DriverObject? record, out string message)
    {
        record = null;
        Status s = Prepare(packageDirectory, mode, host, out PreparedDriver? prepared, out message);
        return s.IsError ? s : Start(prepared!, overrides, out record, out message);
    }

    /// <summary>
    /// Loads the drivers of a run, in order, as <see cref="LoadDriverPackage(string, IReadOnlyDictionary{string, string}, DriverMode, Isolation.DriverHostCommand?, out DriverObject?, out string)"/>
    /// loads one; but every package is verified and placed before any driver host starts, and every isolated driver's
    /// host is started before the first driver's Load, so that the hosts' start-ups (a runtime each) overlap. A package
    /// refused, or a host that cannot start, refuses the run before any driver is loaded. A driver whose Load fails
    /// stops the loading there: the drivers loaded before it stay, the hosts started for those after it are ended.
    /// </summary>
    /// <param name="packages">The package folders, with the parameters that win over each driver's registry key.</param>
    /// <param name="mode">Where the drivers run.</param>
    /// <param name="host">How to start a driver host; null when no driver is to run isolated.</param>
    /// <param name="refused">The index in <paramref name="packages"/> of the package refused, or -1.</param>
    /// <param name="message">Why it was refused; empty when none was.</param>
    public Status LoadDriverPackages(IReadOnlyList<(string PackageDirectory, IReadOnlyDictionary<string, string> Overrides)> packages, DriverMode mode,
        Isolation.DriverHostCommand? host, out int refused, out string message)
    {
        ArgumentNullException.ThrowIfNull(packages);
        var prepared = new List<PreparedDriver>(packages.Count);
        Status s = Status.Success;
        message = string.Empty;
        refused = -1;
        for (int i = 0; i < packages.Count && s.IsSuccess; i++)
        {
            s = Prepare(packages[i].PackageDirectory, mode, host, out PreparedDriver? p, out message);
            if (s.IsSuccess)
            {
                prepared.Add(p!);
            }
            else
            {
                refused = i;
            }
        }

        for (int i = 0; i < prepared.Count && s.IsSuccess; i++)
        {
            if (prepared[i].Isolated is { } isolated && (s = StartHost(isolated, prepared[i].Package, out message)).IsError)
            {
                refused = i;
            }
        }

        for (int i = 0; i < prepared.Count; i++)
        {
            if (refused < 0)
            {
                Status started = Start(prepared[i], packages[i].Overrides, out _, out string why);
                if (started.IsError)
                {
                    (s, refused, message) = (started, i, why);
                }
            }
            else if (i != refused)
            {
                prepared[i].Isolated?.Discard();
            }
        }

        return s;
    }

    /// <summary>A verified package, placed; an isolated driver's host is not started yet.</summary>
    private sealed record PreparedDriver(DriverLoader Loader, VerifiedPackage Package, Isolation.IsolatedDriver? Isolated);

    private Status Prepare(string packageDirectory, DriverMode mode, Isolation.DriverHostCommand? host, out PreparedDriver? prepared, out string message)
    {
        if (!Enum.IsDefined(mode))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "not a driver mode");
        }

        prepared = null;
        var loader = new DriverLoader(Flavor, TrustStore.ForHome(Options.Home));
        DriverLoadResult result = loader.Verify(packageDirectory, out VerifiedPackage? verified);
        if (!result.IsLoaded || verified is null)
        {
            message = result.Message;
            return result.Status;
        }

        foreach ((Palisade.Api.FileIdentity identity, bool isFolder) in verified.PackageObjects)
        {
            KernelFiles.Add(identity, isFolder ? KernelFileKind.Folder : KernelFileKind.File);
        }

        message = string.Empty;
        if (!RunsIsolated(verified.Manifest.Hosting, Flavor, mode))
        {
            prepared = new PreparedDriver(loader, verified, null);
            return Status.Success;
        }

        if (host is null)
        {
            message = "the driver runs isolated and no driver host command was given";
            return Status.InvalidParameter;
        }

        prepared = new PreparedDriver(loader, verified, new Isolation.IsolatedDriver(this, verified.Package.Directory, PackageDigest.ContentDigest(verified.Package), host));
        return Status.Success;
    }

    /// <summary>Starts an isolated driver's host; one that cannot start is ended and refuses the driver.</summary>
    private static Status StartHost(Isolation.IsolatedDriver isolated, VerifiedPackage package, out string message)
    {
        Status s = isolated.StartHost(package.Manifest.Name);
        message = s.IsSuccess ? string.Empty : "its driver host could not be started" + (isolated.Failure is { } why ? ": " + why : "");
        if (s.IsError)
        {
            isolated.Discard();
        }

        return s;
    }

    private Status Start(PreparedDriver prepared, IReadOnlyDictionary<string, string> overrides, out DriverObject? record, out string message) =>
        prepared.Isolated is { } isolated
            ? StartIsolated(prepared.Package, isolated, overrides, out record, out message)
            : StartInKernel(prepared.Loader, prepared.Package, overrides, out record, out message);

    /// <summary>
    /// Where a driver runs: <paramref name="mode"/> when the run chose one for every driver, else what the manifest asks,
    /// else isolated in the protected flavor and inside the kernel in the compat flavor (which exists for legacy drivers
    /// that patch the kernel, and so need its process).
    /// </summary>
    internal static bool RunsIsolated(DriverHosting manifest, KernelFlavor flavor, DriverMode mode) => mode switch
    {
        DriverMode.Isolated => true,
        DriverMode.InKernel => false,
        _ => manifest switch
        {
            DriverHosting.Isolated => true,
            DriverHosting.InKernel => false,
            _ => flavor != KernelFlavor.Compat,
        },
    };

    /// <summary>
    /// Loads a driver package inside the kernel process (the loader verifies its signature against the trust store and
    /// runs the driver verifier before any of its code loads, in the protected flavor) and starts it. On refusal,
    /// <paramref name="message"/> says why.
    /// </summary>
    public Status LoadDriverPackage(string packageDirectory, IReadOnlyDictionary<string, string> overrides, out DriverObject? record, out string message) =>
        LoadDriverPackage(packageDirectory, overrides, DriverMode.InKernel, host: null, out record, out message);

    private Status StartInKernel(DriverLoader loader, VerifiedPackage verified, IReadOnlyDictionary<string, string> overrides, out DriverObject? record, out string message)
    {
        record = null;
        DriverLoadResult result = loader.Load(verified, beforeCode: null, out LoadedPackage? loaded);
        if (!result.IsLoaded || loaded is null)
        {
            message = result.Message;
            return result.Status;
        }

        DriverManifest m = loaded.Manifest;
        string assemblyPath = Path.Combine(loaded.PackageDirectory, m.Assembly);
        string sha256 = loaded.MainAssemblySha256;
        record = new DriverObject(m.Name, m.Vendor, m.Version.ToString(), assemblyPath, sha256)
        {
            Package = loaded,
            Assemblies = [.. loaded.Assemblies],
        };
        Status s = StartDriver(record, loaded.Entry, overrides);
        message = s.IsSuccess ? "loaded in the kernel" : "the driver's Load returned " + s;
        if (s.IsError)
        {
            record = null;
        }

        return s;
    }

    private Status StartIsolated(VerifiedPackage verified, Isolation.IsolatedDriver isolated, IReadOnlyDictionary<string, string> overrides, out DriverObject? record, out string message)
    {
        DriverManifest m = verified.Manifest;
        string directory = verified.Package.Directory;
        record = new DriverObject(m.Name, m.Vendor, m.Version.ToString(), Path.Combine(directory, m.Assembly), Convert.ToHexStringLower(verified.MainSha256));
        Status s = StartDriver(record, isolated, overrides);
        message = s.IsSuccess ? "loaded isolated" : "the driver's Load returned " + s + (isolated.Failure is { } why ? " (its driver host: " + why + ")" : "");
        if (s.IsError)
        {
            isolated.Unload();
            record = null;
        }

        return s;
    }

    /// <summary>Calls the driver's Unload (contained), removes whatever it left registered, and unlists it.</summary>
    public Status StopDriver(DriverObject driver)
    {
        ArgumentNullException.ThrowIfNull(driver);
        if (Drivers.Find(driver.Name) != driver)
        {
            return Status.InvalidHandle;
        }

        // No parameter notification starts once Unload begins.
        driver.Context?.MarkStopping();

        int left = 0;

        // From here on the driver is told of nothing (its holds end with their timeout verdicts as its registrations go).
        driver.Context?.BeginUnload();
        if (driver.Package is not null)
        {
            DriverUnloadResult r = driver.Package.Unload(() => left = RemoveEverythingOf(driver));
            if (r.Fault is not null)
            {
                Events.WriteDriverFault(driver.Name, "Unload threw " + r.Fault.GetType().Name + ": " + r.Fault.Message);
            }
        }
        else
        {
            try
            {
                driver.Entry?.Unload();
            }
            catch (Exception ex)
            {
                Events.WriteDriverFault(driver.Name, "Unload threw " + ex.GetType().Name + ": " + ex.Message);
            }

            left = RemoveEverythingOf(driver);
        }

        Drivers.Remove(driver);
        driver.Context?.Invalidate();
        Events.WriteKernel("driver-unloaded", driver.Name + (left > 0 ? " (" + left + " registrations removed by the kernel)" : ""));
        return Status.Success;
    }

    /// <summary>Removes every registration a driver owns, in every area; returns how many.</summary>
    public int RemoveEverythingOf(DriverObject driver)
    {
        int n = Processes.Create.RemoveOwnedBy(driver) + Processes.Exit.RemoveOwnedBy(driver)
            + Processes.ThreadCreate.RemoveOwnedBy(driver) + Processes.ThreadExit.RemoveOwnedBy(driver)
            + Processes.ImageLoad.RemoveOwnedBy(driver) + Processes.Fork.RemoveOwnedBy(driver)
            + Processes.ExecResult.RemoveOwnedBy(driver) + Objects.Callbacks.RemoveOwnedBy(driver)
            + RegistryCallbacks.Callbacks.RemoveOwnedBy(driver) + ParameterCallbacks.Callbacks.RemoveOwnedBy(driver)
            + Files.Filters.RemoveOwnedBy(driver)
            + SecurityCenter.RemoveOwnedBy(driver)
            + Ports.CloseOwnedBy(driver);
        driver.Exclusions.Dispose();
        int net = Network.Filters.Count + Network.Callouts.Count + Network.Sublayers.Count + Network.FlowCallbacks.Count;
        Network.RemoveOwnedBy(driver);
        n += net - (Network.Filters.Count + Network.Callouts.Count + Network.Sublayers.Count + Network.FlowCallbacks.Count);
        return n;
    }

    /// <summary>
    /// The callback registration of <paramref name="owner"/> named by <paramref name="cookie"/>, of any kind; null when it
    /// names none (or a registration without callbacks: a sublayer, a network filter, a product).
    /// </summary>
    public Registration? FindCallbackRegistration(CallbackCookie cookie, DriverObject owner)
    {
        Registration? r = (Registration?)Processes.Create.Find(cookie, owner) ?? Processes.Exit.Find(cookie, owner);
        r ??= (Registration?)Processes.ThreadCreate.Find(cookie, owner) ?? Processes.ThreadExit.Find(cookie, owner);
        r ??= (Registration?)Processes.ImageLoad.Find(cookie, owner) ?? Objects.Callbacks.Find(cookie, owner);
        r ??= (Registration?)Processes.Fork.Find(cookie, owner) ?? Processes.ExecResult.Find(cookie, owner);
        r ??= (Registration?)RegistryCallbacks.Callbacks.Find(cookie, owner) ?? Files.Filters.Find(cookie, owner);
        r ??= (Registration?)Network.Callouts.Find(cookie, owner) ?? Network.FlowCallbacks.Find(cookie, owner);
        return r is { HasCallbacks: true } ? r : null;
    }

    /// <summary>Every registration currently held, of every kind (the guard and the dump list them).</summary>
    public int RegistrationCount =>
        Processes.Create.Count + Processes.Exit.Count + Processes.ThreadCreate.Count + Processes.ThreadExit.Count
        + Processes.ImageLoad.Count + Processes.Fork.Count + Processes.ExecResult.Count
        + Objects.Callbacks.Count + RegistryCallbacks.Callbacks.Count
        + ParameterCallbacks.Callbacks.Count + Files.Filters.Count
        + Network.Filters.Count + Network.Callouts.Count + Network.Sublayers.Count + Network.FlowCallbacks.Count
        + SecurityCenter.Products.Count;

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (DriverObject d in Drivers.Snapshot())
        {
            StopDriver(d);
        }

        Monitor.Dispose();
        _registry?.Dispose();
        Events.Dispose();
        Objects.Dispose();
        ServiceTable.Dispose();
    }
}
