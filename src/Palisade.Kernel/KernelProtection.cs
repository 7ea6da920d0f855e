using System.Reflection;
using System.Runtime.CompilerServices;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Guard;
using Palisade.Kernel.Objects;

namespace Palisade.Kernel;

/// <summary>
/// Puts a booted kernel under the guard: the system service table and its slot map, the system services' native
/// code and the system call entry, the object types' procedures, every callback table of the driver API, and the
/// loaded driver list and the active process list (each one's links cross-checked against its index). Each
/// table opens the guard's sanctioned-change window when the kernel itself changes it (a driver registering through
/// the API), so only changes made some other way are corruption. In the compat flavor there is no guard at all.
/// </summary>
internal sealed class KernelProtection : IDisposable
{
    private readonly KernelGuard? _guard;
    private readonly GuardAuthority? _authority;
    private readonly List<Action> _release = [];

    private KernelProtection(KernelBugCheck bugCheck, KernelGuard? guard, GuardAuthority? authority)
    {
        BugCheck = bugCheck;
        _guard = guard;
        _authority = authority;
    }

    public KernelBugCheck BugCheck { get; }

    public KernelGuard? Guard => _guard;

    /// <summary>Starts the guard for the kernel's flavor; <paramref name="stopGuests"/> runs on a bug check.</summary>
    public static KernelProtection Start(PalisadeKernel kernel, Action? stopGuests, IBugCheckSink? sink = null, GuardOptions? options = null)
    {
        var bugCheck = new KernelBugCheck(new BugCheckOptions
        {
            Flavor = kernel.Flavor,
            KernelVersion = PalisadeKernel.Version,
            DumpDirectory = Path.Combine(kernel.Options.Home, "crash"),
            Drivers = () => [.. kernel.Drivers.Snapshot().Select(d => new DumpDriverEntry(
                d.Name, d.Version, d.Assemblies.Count > 0 ? d.Assemblies[0].GetName().Name ?? "" : "", d.AssemblyPath, d.AssemblySha256))],
            Sink = sink,
        });
        if (stopGuests is not null)
        {
            bugCheck.AddStopAction(stopGuests);
        }

        KernelGuard? guard = KernelGuard.StartForFlavor(kernel.Flavor, options ?? GuardOptions.Default, bugCheck, out GuardAuthority? authority);
        var protection = new KernelProtection(bugCheck, guard, authority);
        kernel.AttachProtection(protection);
        if (guard is not null && authority is not null)
        {
            protection.ProtectKernel(kernel, guard, authority);
        }

        return protection;
    }

    private void ProtectKernel(PalisadeKernel k, KernelGuard guard, GuardAuthority authority)
    {
        SystemServiceTable table = k.ServiceTable;
        guard.Protect(new NativeMemoryRegion("system service table", GuardRegionType.SystemServiceTable, table.TableAddress, table.TableLength, holdsPointers: true));
        guard.Protect(new NativeMemoryRegion("system service slot map", GuardRegionType.SystemServiceTable, table.SlotMapAddress, table.SlotMapLength, holdsPointers: false));
        foreach (ObjectType t in k.Objects.Types)
        {
            guard.Protect(new NativeMemoryRegion("object type " + t.Name + " procedures", GuardRegionType.ObjectType, t.ProceduresAddress, t.ProceduresLength, holdsPointers: true));
        }

        foreach (MethodInfo m in SystemServices.ProtectedMethods())
        {
            guard.Protect(m);
        }

        Guarded(k.Processes.Create, GuardRegionType.NotificationCallout);
        Guarded(k.Processes.Exit, GuardRegionType.NotificationCallout);
        Guarded(k.Processes.ThreadCreate, GuardRegionType.NotificationCallout);
        Guarded(k.Processes.ThreadExit, GuardRegionType.NotificationCallout);
        Guarded(k.Processes.ImageLoad, GuardRegionType.NotificationCallout);
        Guarded(k.Processes.Fork, GuardRegionType.NotificationCallout);
        Guarded(k.Processes.ExecResult, GuardRegionType.NotificationCallout);
        Guarded(k.Objects.Callbacks, GuardRegionType.NotificationCallout);
        Guarded(k.RegistryCallbacks.Callbacks, GuardRegionType.NotificationCallout);
        Guarded(k.ParameterCallbacks.Callbacks, GuardRegionType.NotificationCallout);
        // The filter manager's frame and the network filter engine's tables: executive callback objects.
        Guarded(k.Files.Filters, GuardRegionType.CallbackObject);
        Guarded(k.Network.Sublayers, GuardRegionType.CallbackObject);
        Guarded(k.Network.Filters, GuardRegionType.CallbackObject);
        Guarded(k.Network.Callouts, GuardRegionType.CallbackObject);
        Guarded(k.Network.FlowCallbacks, GuardRegionType.NotificationCallout);

        // The kernel's own wiring (which filter manager, engine, table... it dispatches to) and the host's watches.
        guard.Protect(new KernelWiring(k));
        k.Host.Watches.Attach(guard, authority);

        int drivers = guard.Protect(new CrossViewRegion("loaded driver list", GuardRegionType.LoadedModuleList, 1, k.Drivers.LinkedView, k.Drivers.IndexView));
        k.Drivers.ChangeGate = new GuardGate(guard, authority, drivers);
        _release.Add(() => k.Drivers.ChangeGate = null);

        int processes = guard.Protect(new CrossViewRegion("active process list", GuardRegionType.ProcessList, 2, k.ProcessTable.LinkedView, k.ProcessTable.IndexView));
        k.ProcessTable.ChangeGate = new GuardGate(guard, authority, processes);
        _release.Add(() => k.ProcessTable.ChangeGate = null);

        void Guarded<T>(CallbackTable<T> t, GuardRegionType type) where T : Registration
        {
            int id = guard.Protect(new CallbackTableStructure<T>(t, type));
            t.ChangeGate = new GuardGate(guard, authority, id);
            _release.Add(() => t.ChangeGate = null);
        }
    }

    public void Dispose()
    {
        if (_guard is not null && _authority is not null)
        {
            _guard.Shutdown(_authority);
        }

        foreach (Action release in _release)
        {
            release();
        }
    }

    /// <summary>
    /// The kernel's wiring: which object each of its components is. A component swapped by reflection (an empty filter
    /// manager in place of the real one) would blind every driver of that area without touching a table.
    /// </summary>
    private sealed class KernelWiring(PalisadeKernel k) : IGuardedStructure
    {
        public string Name => "kernel wiring (components the kernel dispatches to)";

        public GuardRegionType RegionType => GuardRegionType.GenericData;

        public void AppendDigest(ref GuardHasher hasher)
        {
            hasher.Add(Id(k.Events));
            hasher.Add(Id(k.Monitor));
            hasher.Add(Id(k.Faults));
            hasher.Add(Id(k.Holds));
            hasher.Add(Id(k.Objects));
            hasher.Add(Id(k.ProcessTable));
            hasher.Add(Id(k.Processes));
            hasher.Add(Id(k.Files));
            hasher.Add(Id(k.Network));
            hasher.Add(Id(k.RegistryCallbacks));
            hasher.Add(Id(k.ParameterCallbacks));
            hasher.Add(Id(k.SecurityCenter));
            hasher.Add(Id(k.ServiceTable));
            hasher.Add(Id(k.Host));
            hasher.Add(Id(k.Protection));
            hasher.Add(Id(k.Drivers));
            hasher.Add(k.PerformRegistry);
            hasher.Add(Id(k.Files.Filters));
            hasher.Add(Id(k.RegistryCallbacks.Callbacks));
            hasher.Add(Id(k.Objects.Callbacks));
        }

        public void DescribeEntries(ICollection<GuardedEntry> entries)
        {
            entries.Add(new GuardedEntry("filter manager", $"{k.Files.GetType().FullName} (object {Id(k.Files):X})"));
            entries.Add(new GuardedEntry("filter engine", $"{k.Network.GetType().FullName} (object {Id(k.Network):X})"));
            entries.Add(new GuardedEntry("process notifications", $"{k.Processes.GetType().FullName} (object {Id(k.Processes):X})"));
            entries.Add(new GuardedEntry("object manager", $"{k.Objects.GetType().FullName} (object {Id(k.Objects):X})"));
            entries.Add(new GuardedEntry("registry callbacks", $"{k.RegistryCallbacks.GetType().FullName} (object {Id(k.RegistryCallbacks):X})"));
            entries.Add(new GuardedEntry("callback monitor", $"{k.Monitor.GetType().FullName} (object {Id(k.Monitor):X})"));
            entries.Add(new GuardedEntry("service table", $"{k.ServiceTable.GetType().FullName} (object {Id(k.ServiceTable):X})"));
        }

        private static ulong Id(object? o) => o is null ? 0 : (ulong)(uint)RuntimeHelpers.GetHashCode(o);
    }

    /// <summary>A callback table as the guard sees it: each entry's cookie and the identity of its delegate.</summary>
    private sealed class CallbackTableStructure<T>(CallbackTable<T> table, GuardRegionType type) : IGuardedStructure where T : Registration
    {
        public string Name => table.Name;

        public GuardRegionType RegionType => type;

        public void AppendDigest(ref GuardHasher hasher)
        {
            T[] entries = table.Snapshot;
            hasher.Add((long)entries.Length);
            foreach (T e in entries)
            {
                hasher.Add(e.Cookie.Value);
                hasher.Add((long)RuntimeHelpers.GetHashCode(e));
                e.AppendState(ref hasher);
            }
        }

        public void DescribeEntries(ICollection<GuardedEntry> entries)
        {
            foreach (T e in table.Snapshot)
            {
                Delegate? callback = e.PrimaryCallback;
                string code = callback is null ? "" : $", code 0x{DelegateFields.MethodPtr(callback):X}/0x{DelegateFields.MethodPtrAux(callback):X}";
                entries.Add(new GuardedEntry(
                    table.Name + " #" + e.Cookie.Value,
                    "registered by " + e.OwnerName + (e.AltitudeText is null ? "" : " at altitude " + e.AltitudeText)
                        + (e.Disabled ? " (disabled" : " (enabled") + ", timeout verdict " + e.Policy.TimeoutVerdict + code + ")",
                    callback));
            }
        }
    }
}
