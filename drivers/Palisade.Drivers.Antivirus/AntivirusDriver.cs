// The sample antivirus: on-access scanning as a minifilter, plus a check of every program image before it runs.
//
// Two minifilters, both at antivirus altitudes:
//   "antivirus"    (325000) create: scans in the post-create callback, through IFilterManager.ReadFile, the very
//                  file the guest is about to receive; an infected file's open is cancelled (EACCES). A clean
//                  verdict goes to the kernel's verdict cache (IFilterManager.SetFileVerdict), bound to the file's
//                  identity and the change stamp the kernel took before the scan read it: any change to the file —
//                  through a descriptor left open, O_APPEND, truncate, another process, or from outside Palisade —
//                  moves the stamp, and the next open or exec scans again. The driver keeps no cache of its own. The
//                  verdict is cached with FileVerdictFlags.SkipPostCreate: while the file is unchanged the kernel answers
//                  an open that asks for no write without calling the post-create at all (isolated, without crossing to
//                  the driver host). The pre-create is registered only when the driver holds opens (below): without
//                  holds it would only ask for the post-create, which decides the same by itself, so an open of a file
//                  cached clean costs no callback of the driver.
//   "antivirus-io" (325001) cleanup: when the description a guest wrote a file through is released (its last close,
//                  or the exit of its last holder), scans the content through IFilterManager.ReadFile on that very file
//                  (to report it; the cleanup cannot be refused). It also issues the driver's own I/O for the process-create and image-load checks: its
//                  OpenFile goes to filters below it only, so it reaches "antivirus", whose post-create scans the opened
//                  file and records its identity; the callback then checks that identity against the image that will
//                  really run. The image-load callback scans every image an exec or a mapping loads besides the file the
//                  exec names (#! interpreters, the ELF interpreter, shared libraries, dlopen, executable mappings).
//
// Scanning elsewhere (scanService, asyncScan): the pre-create holds the open (IFilterManager.PendPreOperation) instead of
// scanning on the guest's thread. With scanService, the scan request goes to a user-mode scanning service through the
// driver's communication port (Shared/ServicePort.cs) and the service's answer message completes the open; with asyncScan, one of the driver's
// work items reads the held file (IFilterManager.ReadFile on the held create) and completes it. Either way only the
// guest that opened the file waits; an open of a file already known clean, or one that cannot be held, is decided at once
// as before.
//
// Its parameters can change while it runs (palisade reg set ...\Services\antivirus\Parameters): the driver parses
// the new set and, when it is valid, swaps in a new configuration at once (options, scanner, and a new clean-verdict
// marker, which retires every verdict cached under the old signatures, and IFilterManager.ClearFileVerdicts, so that the
// kernel no longer answers for them either); a bad set is reported and the old one kept.
// How it holds opens (scanService, asyncScan, holdTime, onTimeout) is fixed at load: a change to those is reported
// and takes effect at the next load.
using Palisade.Api;

namespace Palisade.Drivers.Antivirus;

/// <summary>The antivirus driver's entry point (manifest entry type).</summary>
public sealed class AntivirusDriver : IDriver
{
    internal const string ScanFilterName = "antivirus";
    internal const string ScanAltitude = "325000";
    internal const string IoFilterName = "antivirus-io";
    internal const string IoAltitude = "325001";
    internal const string ProductName = "Palisade Sample Antivirus";

    // The process-create check in progress on this thread (set only around the driver's own OpenFile).
    [ThreadStatic]
    private static AntivirusDriver? t_probeOwner;

    [ThreadStatic]
    private static int t_probeProcessId;

    [ThreadStatic]
    private static string? t_probeDetection;

    private IDriverContext? _context;
    private volatile Configuration? _config;
    private AntivirusOptions? _loaded;
    private ServicePort? _service;
    private PendedOperationCancelCallback? _onHoldEnded;
    private WorkItemCallback? _scanHeld;
    private CallbackCookie _scanFilter;
    private CallbackCookie _ioFilter;
    private CallbackCookie _processCreate;
    private CallbackCookie _imageLoad;
    private CallbackCookie _product;
    private CallbackCookie _parametersChanged;
    private long _scans;

    /// <summary>How many scans ran (cached verdicts are not scans): lets tests prove the cache works.</summary>
    internal long ScanCount => Interlocked.Read(ref _scans);

    /// <inheritdoc />
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        if (!AntivirusOptions.TryParse(context.Parameters, context.Files, out AntivirusOptions? options, out string? error))
        {
            context.ReportEvent("config-error", error, 0, null);
            return Status.InvalidParameter;
        }

        _config = new Configuration(options);
        _loaded = options;

        // Holding is fixed at load: without it the pre-create would only ask for the post-create, which checks the same.
        Status s = context.Files.RegisterFilter(new FilterRegistration
        {
            Name = ScanFilterName,
            Altitude = ScanAltitude,
            VerdictCacheCapacity = options.VerdictCache,
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = options.Holds ? PreCreate : null, PostOperation = PostCreate }],
        }, out _scanFilter);
        if (s.IsError)
        {
            return s;
        }

        if (options.Holds)
        {
            s = StartHolding(context, options);
            if (s.IsError)
            {
                return s;
            }
        }

        s = context.Files.RegisterFilter(new FilterRegistration
        {
            Name = IoFilterName,
            Altitude = IoAltitude,
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Cleanup, PreOperation = PreCleanup }],
        }, out _ioFilter);
        if (s.IsError)
        {
            return s;
        }

        s = context.Processes.RegisterProcessCreate(OnProcessCreate, out _processCreate);
        if (s.IsError)
        {
            return s;
        }

        s = context.Processes.RegisterImageLoad(OnImageLoad, out _imageLoad);
        if (s.IsError)
        {
            return s;
        }

        s = context.SecurityCenter.RegisterProduct(SecurityProductKind.Antivirus, ProductName, out _product);
        if (s.IsError)
        {
            return s;
        }

        s = context.RegisterParametersChanged(OnParametersChanged, out _parametersChanged);
        if (s.IsError)
        {
            return s;
        }

        context.ReportEvent("started", Describe(options), 0, null);
        return Status.Success;
    }

    private static string Describe(AntivirusOptions options) => FormattableString.Invariant(
        $"{options.Signatures.DigestCount} sha256 and {options.Signatures.Patterns.Length} pattern signatures plus EICAR; scanOnRead={options.ScanOnRead}; maxScanSize={options.MaxScanSize}; quarantine={options.Quarantine ?? "off"}; scanService={options.ScanService ?? "off"}; asyncScan={options.AsyncScan}");

    /// <summary>The parameters changed while the driver runs: the new set takes effect for the next open, or is
    /// refused as a whole (the running configuration stays). How opens are held stays as loaded.</summary>
    private Status OnParametersChanged(in ParametersChange change)
    {
        if (!AntivirusOptions.TryParse(change.Parameters, _context!.Files, out AntivirusOptions? options, out string? error))
        {
            _context!.ReportEvent("config-error", error + "; the running configuration is kept", 0, null);
            return Status.InvalidParameter;
        }

        AntivirusOptions loaded = _loaded!;
        string note = options.ScanService != loaded.ScanService || options.AsyncScan != loaded.AsyncScan
            || options.HoldTime != loaded.HoldTime || options.OnTimeout != loaded.OnTimeout
            ? "; scanService, asyncScan, holdTime and onTimeout stay as loaded until the next load"
            : "";
        // The new configuration first, then the clear: a scan made under the old one that caches after the clear sees
        // the change and takes its verdict back (CacheClean).
        _config = new Configuration(options);
        _context!.Files.ClearFileVerdicts(_scanFilter);
        _context!.ReportEvent("reconfigured", Describe(options) + " (changed: " + string.Join(", ", change.ChangedNames) + ")" + note, 0, null);
        return Status.Success;
    }

    /// <summary>Lets the scan filter hold opens for their scan, opens the service channel, and reports its own faults as events.</summary>
    private Status StartHolding(IDriverContext context, AntivirusOptions options)
    {
        Status s = context.SetCallbackOptions(_scanFilter, new CallbackOptions { MaximumHoldTime = options.HoldTime, TimeoutVerdict = options.OnTimeout });
        if (s.IsError)
        {
            return s;
        }

        if (options.ScanService is { } port)
        {
            _service = new ServicePort((state, word) => Answered((HeldScan)state, word));
            s = _service.Open(context.Ports, port);
            if (s.IsError)
            {
                return s;
            }
        }

        _onHoldEnded = OnHoldEnded;
        _scanHeld = static state => ((HeldScan)state!).Driver.ScanHeld((HeldScan)state!);
        return context.RegisterFaultCallback(
            (in RegistrationFaultInfo f) => context.ReportEvent("fault", f.RegistrationName + ": " + f.Reason + "; the " + f.Operation + " was " + (f.AppliedVerdict == TimeoutVerdict.Deny ? "denied" : "allowed"), 0, null),
            out _);
    }

    /// <inheritdoc />
    public void Unload()
    {
        if (_context is null)
        {
            return;
        }

        _context.UnregisterParametersChanged(_parametersChanged);
        _context.SecurityCenter.UnregisterProduct(_product);
        _context.Processes.Unregister(_imageLoad);
        _context.Processes.Unregister(_processCreate);
        _context.Files.UnregisterFilter(_ioFilter);
        _context.Files.UnregisterFilter(_scanFilter);
        _service?.Close();
    }

    /// <summary>The file's size under its change stamp, or -1 when the stamp is none (the scan then reads until a read returns nothing).</summary>
    private static long LengthOf(FileChangeStamp stamp) => stamp.IsNone ? -1 : stamp.Size;

    private static bool OpensForWrite(in FileOperation op) =>
        (op.Access & (FileAccessRights.Write | FileAccessRights.Append)) != 0
        || op.Disposition is CreateDisposition.Overwrite or CreateDisposition.OverwriteIf;

    /// <summary>
    /// Caches a clean verdict made under <paramref name="config"/>, on which the kernel answers later opens of the
    /// unchanged file that ask for no write without calling <see cref="PostCreate"/> (which would only find the verdict and
    /// return). A stamp that is none (the file changed moments ago) caches nothing: the next open scans again. Should the
    /// configuration have changed during the scan, the verdict is taken back (replaced by one that skips nothing and that
    /// no configuration takes for clean), since the clear that came with the change may have run before this store.
    /// </summary>
    private void CacheClean(Configuration config, FileIdentity file, FileChangeStamp stamp)
    {
        IFilterManager files = _context!.Files;
        files.SetFileVerdict(_scanFilter, file, stamp, config.Clean, FileVerdictFlags.SkipPostCreate);
        if (!ReferenceEquals(_config, config))
        {
            files.SetFileVerdict(_scanFilter, file, stamp, Configuration.Retired);
        }
    }

    /// <summary>Registered only when the driver holds opens (<see cref="AntivirusOptions.Holds"/>).</summary>
    private PreOperationStatus PreCreate(ref FileOperation op)
    {
        // Nothing else here reads the object's path or type: an open that will not be scanned costs no resolution. A
        // write needs no care here: whatever it changes moves the file's change stamp, which retires the cached verdict.
        if (!OpensForWrite(in op) && WantsScan(in op) && !ReferenceEquals(t_probeOwner, this) && !HoldsNothingToScan(in op) && TryHold(ref op) is { } held)
        {
            return held;
        }

        return WantsScan(in op) ? PreOperationStatus.SuccessWithCallback : PreOperationStatus.SuccessNoCallback;
    }

    /// <summary>A held open waiting for its scan: what the completion needs to know.</summary>
    private sealed class HeldScan(AntivirusDriver driver, Configuration config, IPendedOperation operation, FileIdentity file, FileChangeStamp stamp, string path, int processId)
    {
        public AntivirusDriver Driver { get; } = driver;

        /// <summary>The configuration the open was held under: its verdict is cached under that configuration's marker.</summary>
        public Configuration Config { get; } = config;

        public IPendedOperation Operation { get; } = operation;

        public FileIdentity File { get; } = file;

        /// <summary>The file's change stamp, taken by the kernel when it opened the held file, before the scan reads it.</summary>
        public FileChangeStamp Stamp { get; } = stamp;

        public string Path { get; } = path;

        public int ProcessId { get; } = processId;
    }

    /// <summary>
    /// Holds an open for a scan elsewhere; returns the pre-create's verdict, or null to scan here as usual (the open cannot
    /// be held). The kernel opens the file when it is held, so its identity is known: a file cached clean is let through
    /// at once, and returning a verdict other than Pending withdraws the hold.
    /// </summary>
    private PreOperationStatus? TryHold(ref FileOperation op)
    {
        IFilterManager files = _context!.Files;
        if (files.PendPreOperation(ref op, _onHoldEnded, out IPendedOperation? held).IsError)
        {
            return null;
        }

        if (op.File.IsNone)
        {
            // No regular file behind the path yet: the post-create sees what the open makes.
            return PreOperationStatus.SuccessWithCallback;
        }

        Configuration config = _config!;
        FileChangeStamp stamp = op.ChangeStamp;
        if (files.GetFileVerdict(_scanFilter, op.File, stamp, out object? verdict) == Status.Success && ReferenceEquals(verdict, config.Clean))
        {
            return PreOperationStatus.SuccessNoCallback;
        }

        var scan = new HeldScan(this, config, held!, op.File, stamp, op.Path, op.RequesterProcessId);
        Status asked = _service is not null ? _service.Ask(held!, scan, op.Path) : _context.QueueWorkItem(_scanHeld!, scan);

        // No service listening, or no room for the work item: scan here, in the post-create.
        return asked.IsSuccess ? PreOperationStatus.Pending : PreOperationStatus.SuccessWithCallback;
    }

    /// <summary>The scanning service's answer about a held open.</summary>
    private void Answered(HeldScan scan, string word)
    {
        if (word == "clean")
        {
            Finish(scan, null);
        }
        else if (word.StartsWith("infected", StringComparison.Ordinal))
        {
            // "infected" or "infected:NAME".
            Finish(scan, word.Length > 9 && word[8] == ':' ? word[9..] : "Service.Detection");
        }
        else
        {
            _context!.ReportEvent("service-error", "the scanning service answered \"" + word + "\" for " + scan.Path + "; the open takes the timeout verdict", scan.ProcessId, scan.Path);
        }
    }

    /// <summary>A work item: scans the held file and completes its open.</summary>
    private void ScanHeld(HeldScan scan)
    {
        var source = new HeldFileSource(_context!.Files, scan.Operation);
        Status s = scan.Config.Scanner.Scan(ref source, scan.Config.Options.MaxScanSize, LengthOf(scan.Stamp), out string? detection);
        Interlocked.Increment(ref _scans);
        if (s.IsError)
        {
            // Nothing known (as for a synchronous scan that cannot read): the open proceeds and nothing is cached.
            _context.Files.CompletePendedPreOperation(scan.Operation, PreOperationStatus.SuccessNoCallback, Status.Success, null);
            return;
        }

        Finish(scan, detection);
    }

    /// <summary>Completes a held open with its scan's verdict: clean (cached) or infected (denied and reported).</summary>
    private void Finish(HeldScan scan, string? detection)
    {
        IFilterManager files = _context!.Files;
        if (detection is null)
        {
            CacheClean(scan.Config, scan.File, scan.Stamp);
            files.CompletePendedPreOperation(scan.Operation, PreOperationStatus.SuccessNoCallback, Status.Success, null);
            return;
        }

        Detected(scan.Config, detection, scan.Path, scan.File, scan.ProcessId, "open denied");
        files.CompletePendedPreOperation(scan.Operation, PreOperationStatus.Complete, Status.AccessDenied, null);
    }

    /// <summary>The kernel ended a hold without a verdict: the guest went away, or the scan took too long.</summary>
    private void OnHoldEnded(IPendedOperation held)
    {
        string path = (_service?.Forget(held) as HeldScan)?.Path ?? "";
        _context!.ReportEvent("hold-ended", FormattableString.Invariant(
            $"open {held.Id} of {path} by process {held.RequesterProcessId}: {(held.State == PendedOperationState.TimedOut ? "timed out" : "cancelled")}"),
            held.RequesterProcessId, path.Length == 0 ? null : path);
    }

    /// <summary>
    /// True for an object that holds no program or document to scan, decided on what it is, never on its path: a
    /// directory, a device (some read forever, such as /dev/zero), a FIFO or a socket, or a file of a kernel file system
    /// (proc, sysfs, debugfs and the like, whose "files" are views of the kernel). A regular file anywhere else — /tmp,
    /// /dev/shm, a file reached through /dev/../ or /proc/self/fd/N — is scanned.
    /// </summary>
    private static bool HoldsNothingToScan(in FileOperation op) =>
        op.FileType is not (FileObjectType.Regular or FileObjectType.Unknown) || IsKernelFileSystem(op.FileSystemType);

    private static bool IsKernelFileSystem(long type) => type is
        0x9fa0 /* proc */ or 0x62656572 /* sysfs */ or 0x1cd1 /* devpts */ or 0x64626720 /* debugfs */
        or 0x74726163 /* tracefs */ or 0x73636673 /* securityfs */ or 0x27e0eb /* cgroup */ or 0x63677270 /* cgroup2 */
        or unchecked((long)0xcafe4a11) /* bpf */ or 0x6165676C /* pstore */ or unchecked((long)0xde5e81e4) /* efivarfs */
        or 0x62656570 /* configfs */ or 0x65735543 /* fusectl */ or 0x19800202 /* mqueue */ or 0x6e736673 /* nsfs */;

    private bool WantsScan(in FileOperation op) =>
        ReferenceEquals(t_probeOwner, this)
        || (op.Access & FileAccessRights.Execute) != 0
        || (_config!.Options.ScanOnRead && (op.Access & FileAccessRights.Read) != 0);

    private void PostCreate(ref FileOperation op)
    {
        if (op.Status.IsError || op.File.IsNone)
        {
            return;
        }

        if (HoldsNothingToScan(in op))
        {
            return;
        }

        if (!WantsScan(in op))
        {
            return;
        }

        // The stamp is read before the scan reads the file (the kernel takes it at the latest then): a change during the
        // scan leaves the cached stamp behind, and the next open scans again.
        IFilterManager files = _context!.Files;
        bool writes = OpensForWrite(in op);
        FileChangeStamp stamp = op.ChangeStamp;
        Configuration config = _config!;
        if (!writes && files.GetFileVerdict(_scanFilter, op.File, stamp, out object? verdict) == Status.Success && ReferenceEquals(verdict, config.Clean))
        {
            return;
        }

        var source = new OpenedFileSource(files, _scanFilter, op.File);
        Status s = config.Scanner.Scan(ref source, config.Options.MaxScanSize, LengthOf(stamp), out string? detection);
        Interlocked.Increment(ref _scans);
        if (s.IsError)
        {
            // The file could not be read (for example a write-only open): nothing is known, so nothing is cached
            // and the open proceeds; the next open for reading or execution scans it.
            return;
        }

        if (detection is null)
        {
            if (!writes)
            {
                CacheClean(config, op.File, stamp);
            }

            return;
        }

        op.Status = Status.AccessDenied;
        bool probe = ReferenceEquals(t_probeOwner, this);
        int pid = probe ? t_probeProcessId : op.RequesterProcessId;
        if (probe)
        {
            t_probeDetection = detection;
        }

        Detected(config, detection, op.Path, op.File, pid, "open denied");
    }

    private PreOperationStatus PreCleanup(ref FileOperation op)
    {
        if (HoldsNothingToScan(in op))
        {
            return PreOperationStatus.SuccessNoCallback;
        }

        // Scan what was written, at the release of the description it was written through (its last close, or its last
        // holder's exit), through the kernel's own read of that very file (ReadFile on the cleanup's file, not a path
        // that may name another file by now). A cleanup cannot be refused (the description is already released), so this
        // scan reports and quarantines; the next open still scans the exact file, since the write moved its change stamp.
        IFilterManager files = _context!.Files;
        Configuration config = _config!;

        // The file's state before the scan reads it: when no description anywhere is left open for writing (no writer
        // and no writable shared mapping, which holds one), the content scanned can change only through a new change
        // that moves this stamp, so a clean verdict is cached under it and the next open of the unchanged file is not
        // scanned again. A file still open for writing is scanned, but its verdict is left to the next open.
        FileChangeStamp settled = files.QueryFileState(_ioFilter, op.File, out FileState state).IsSuccess && state.Writers == WriterCheck.NoWriter
            ? state.ChangeStamp
            : default;
        var source = new OpenedFileSource(files, _ioFilter, op.File);
        Status s = config.Scanner.Scan(ref source, config.Options.MaxScanSize, LengthOf(settled), out string? detection);
        Interlocked.Increment(ref _scans);
        if (s.IsSuccess && detection is not null)
        {
            Detected(config, detection, op.Path, op.File, op.RequesterProcessId, "found after a write");
        }
        else if (s.IsSuccess && !settled.IsNone)
        {
            CacheClean(config, op.File, settled);
        }

        return PreOperationStatus.SuccessNoCallback;
    }

    private Status OnProcessCreate(in ProcessCreateInfo info) =>
        // The image cannot be opened for reading (gone, or another filter refused): the exec itself will meet the same
        // refusal, and the post-create scan of its own open still applies.
        ScanImage(info.ProcessId, info.ImagePath, info.File, "exec", unreadable: Status.Success);

    /// <summary>
    /// Every image other than the file an exec names (which <see cref="OnProcessCreate"/> scanned): a script's interpreter,
    /// the ELF interpreter, a shared library, a dlopen, any file mapped executable. Such an image the driver cannot read
    /// by its path (a memfd, a deleted file) is refused: it would run unscanned.
    /// </summary>
    private Status OnImageLoad(in ImageLoadInfo info)
    {
        if (info.Kind is ImageLoadKind.Executable or ImageLoadKind.Script || info.FileType != FileObjectType.Regular)
        {
            return Status.Success;
        }

        return ScanImage(info.ProcessId, info.ImagePath, info.File, info.Kind == ImageLoadKind.Mapping ? "mapping" : "exec", unreadable: Status.AccessDenied);
    }

    /// <summary>
    /// Scans an image through the probe: its open gives the kernel a descriptor of the image to take the change stamp from,
    /// and the kernel answers on the cached verdict (the post-create is not called) when the image did not change since it
    /// was scanned. The file opened, as OpenFile reports it, must be <paramref name="file"/>, the image about to run.
    /// </summary>
    private Status ScanImage(int processId, string path, FileIdentity file, string what, Status unreadable)
    {
        IFilterManager files = _context!.Files;
        t_probeOwner = this;
        t_probeProcessId = processId;
        t_probeDetection = null;
        try
        {
            Status s = files.OpenFile(_ioFilter, path, FileAccess.Read, out Stream? stream, out FileIdentity opened);
            stream?.Dispose();
            if (t_probeDetection is not null)
            {
                return Status.AccessDenied;
            }

            if (s.IsError)
            {
                if (unreadable.IsError)
                {
                    _context.ReportEvent("image-unreadable", "the image " + path + " (" + file.ToString() + ") cannot be read to be scanned ("
                        + s.Name + "); " + what + " denied", processId, path);
                }

                return unreadable;
            }

            if (!file.IsNone && opened != file)
            {
                _context.ReportEvent("image-mismatch", "the file at " + path + " (" + opened.ToString()
                    + ") is not the image about to run (" + file.ToString() + "); it could not be scanned, " + what + " denied", processId, path);
                return Status.AccessDenied;
            }

            return Status.Success;
        }
        finally
        {
            t_probeOwner = null;
            t_probeDetection = null;
        }
    }

    private void Detected(Configuration config, string detection, string path, FileIdentity file, int processId, string action)
    {
        string message = detection + " in " + path + ": " + action;
        string? folder = config.Options.Quarantine;
        if (folder is not null)
        {
            Status moved = Quarantine.Move(_context!.Files, _scanFilter, folder, path, file, out string? destination);
            message += moved.IsSuccess
                ? "; quarantined as " + destination
                : "; quarantine failed: " + moved.Name;
        }

        if (message.Length > 4096)
        {
            message = message[..4096];
        }

        _context!.ReportEvent("detection", message, processId, path);
    }

    /// <summary>
    /// What the driver runs with, replaced as a whole when its parameters change. <see cref="Clean"/> is the file
    /// verdict that marks a file scanned clean under these signatures: one shared instance, so caching allocates
    /// nothing, and a new one per configuration, so that verdicts cached under older signatures no longer count.
    /// </summary>
    private sealed class Configuration(AntivirusOptions options)
    {
        public AntivirusOptions Options { get; } = options;

        public Scanner Scanner { get; } = new(options.Signatures);

        public object Clean { get; } = new();

        /// <summary>The verdict that takes back a clean verdict cached under a configuration already replaced: no
        /// configuration's <see cref="Clean"/>, and cached without flags.</summary>
        public static object Retired { get; } = new();
    }
}
