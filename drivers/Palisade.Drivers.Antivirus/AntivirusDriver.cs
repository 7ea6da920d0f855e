// The sample antivirus: on-access scanning as a minifilter, plus a check of every program image before it runs.
//
// Two minifilters, both at antivirus altitudes:
//   "antivirus"    (325000) create: scans in the post-create callback, through IFilterManager.ReadFile, the very
//                  file the guest is about to receive; an infected file's open is cancelled (EACCES). A clean
//                  verdict is cached as a file context on the file's identity, and dropped when the file is opened
//                  for writing.
//   "antivirus-io" (325001) cleanup: after a guest wrote a file, drops the cached verdict and scans the new
//                  content. It also issues the driver's own I/O for the process-create check: its OpenFile goes to
//                  filters below it only, so it reaches "antivirus", whose post-create scans the opened file and
//                  records its identity; the process-create callback then checks that identity against the image
//                  that will really run.
using Microsoft.Win32.SafeHandles;
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

    /// <summary>The file context that marks a file scanned clean; one shared instance, so caching allocates nothing.</summary>
    private static readonly object s_clean = new();

    // The process-create check in progress on this thread (set only around the driver's own OpenFile).
    [ThreadStatic]
    private static AntivirusDriver? t_probeOwner;

    [ThreadStatic]
    private static int t_probeProcessId;

    [ThreadStatic]
    private static FileIdentity t_probeFile;

    [ThreadStatic]
    private static string? t_probeDetection;

    private IDriverContext? _context;
    private AntivirusOptions? _options;
    private Scanner? _scanner;
    private CallbackCookie _scanFilter;
    private CallbackCookie _ioFilter;
    private CallbackCookie _processCreate;
    private CallbackCookie _product;
    private long _scans;

    /// <summary>How many scans ran (cached verdicts are not scans): lets tests prove the cache works.</summary>
    internal long ScanCount => Interlocked.Read(ref _scans);

    /// <inheritdoc />
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        if (!AntivirusOptions.TryParse(context.Parameters, out AntivirusOptions? options, out string? error))
        {
            context.ReportEvent("config-error", error, 0, null);
            return Status.InvalidParameter;
        }

        _options = options;
        _scanner = new Scanner(options.Signatures);

        Status s = context.Files.RegisterFilter(new FilterRegistration
        {
            Name = ScanFilterName,
            Altitude = ScanAltitude,
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = PreCreate, PostOperation = PostCreate }],
        }, out _scanFilter);
        if (s.IsError)
        {
            return s;
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

        s = context.SecurityCenter.RegisterProduct(SecurityProductKind.Antivirus, ProductName, out _product);
        if (s.IsError)
        {
            return s;
        }

        context.ReportEvent("started", FormattableString.Invariant(
            $"{options.Signatures.DigestCount} sha256 and {options.Signatures.Patterns.Length} pattern signatures plus EICAR; scanOnRead={options.ScanOnRead}; maxScanSize={options.MaxScanSize}; quarantine={options.Quarantine ?? "off"}"), 0, null);
        return Status.Success;
    }

    /// <inheritdoc />
    public void Unload()
    {
        if (_context is null)
        {
            return;
        }

        _context.SecurityCenter.UnregisterProduct(_product);
        _context.Processes.Unregister(_processCreate);
        _context.Files.UnregisterFilter(_ioFilter);
        _context.Files.UnregisterFilter(_scanFilter);
    }

    private static bool OpensForWrite(in FileOperation op) =>
        (op.Access & (FileAccessRights.Write | FileAccessRights.Append)) != 0
        || op.Disposition is CreateDisposition.Overwrite or CreateDisposition.OverwriteIf;

    private PreOperationStatus PreCreate(ref FileOperation op)
    {
        // Nothing here reads the object's path or type: an open that will not be scanned costs no resolution.
        bool writes = OpensForWrite(in op);
        if (writes && !op.File.IsNone)
        {
            // The content is about to change: the cached verdict no longer says anything about it.
            _context!.Files.DeleteFileContext(_scanFilter, op.File);
        }

        // A create of a file not yet known by identity that opens it for writing also needs the post callback, to
        // drop the verdict of whatever file the create turns out to open.
        return WantsScan(in op) || (writes && op.File.IsNone) ? PreOperationStatus.SuccessWithCallback : PreOperationStatus.SuccessNoCallback;
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
        || (_options!.ScanOnRead && (op.Access & FileAccessRights.Read) != 0);

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

        bool probe = ReferenceEquals(t_probeOwner, this);
        if (probe)
        {
            t_probeFile = op.File;
        }

        IFilterManager files = _context!.Files;
        bool writes = OpensForWrite(in op);
        if (writes)
        {
            files.DeleteFileContext(_scanFilter, op.File);
        }

        if (!WantsScan(in op))
        {
            return;
        }

        if (!writes && files.GetFileContext(_scanFilter, op.File, out object? verdict) == Status.Success && ReferenceEquals(verdict, s_clean))
        {
            return;
        }

        var source = new OpenedFileSource(files, _scanFilter, op.File);
        Status s = _scanner!.Scan(ref source, _options!.MaxScanSize, out string? detection);
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
                files.SetFileContext(_scanFilter, op.File, s_clean);
            }

            return;
        }

        op.Status = Status.AccessDenied;
        int pid = probe ? t_probeProcessId : op.RequesterProcessId;
        if (probe)
        {
            t_probeDetection = detection;
        }

        Detected(detection, op.Path, pid, "open denied");
    }

    private PreOperationStatus PreCleanup(ref FileOperation op)
    {
        if (!op.File.IsNone)
        {
            _context!.Files.DeleteFileContext(_scanFilter, op.File);
        }

        if (op.Offset == 0 || HoldsNothingToScan(in op))
        {
            return PreOperationStatus.SuccessNoCallback;
        }

        // Scan what was just written. A cleanup cannot be refused (the descriptor is already closed), so this scan
        // reports and quarantines; the next open still scans the exact file, since the verdict was dropped above.
        // The read uses System.IO rather than OpenFile so that no file operation is issued from inside a file
        // callback (see docs/scenarios.md).
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(op.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return PreOperationStatus.SuccessNoCallback;
        }

        string? detection;
        using (handle)
        {
            var source = new HandleSource(handle);
            Status s = _scanner!.Scan(ref source, _options!.MaxScanSize, out detection);
            Interlocked.Increment(ref _scans);
            if (s.IsError)
            {
                return PreOperationStatus.SuccessNoCallback;
            }
        }

        if (detection is not null)
        {
            Detected(detection, op.Path, op.RequesterProcessId, "found after a write");
        }

        return PreOperationStatus.SuccessNoCallback;
    }

    private Status OnProcessCreate(in ProcessCreateInfo info)
    {
        IFilterManager files = _context!.Files;
        if (!info.File.IsNone && files.GetFileContext(_scanFilter, info.File, out object? verdict) == Status.Success && ReferenceEquals(verdict, s_clean))
        {
            return Status.Success;
        }

        t_probeOwner = this;
        t_probeProcessId = info.ProcessId;
        t_probeFile = default;
        t_probeDetection = null;
        try
        {
            Status s = files.OpenFile(_ioFilter, info.ImagePath, FileAccess.Read, out Stream? stream);
            stream?.Dispose();
            if (t_probeDetection is not null)
            {
                return Status.AccessDenied;
            }

            if (s.IsError)
            {
                // The image cannot be opened for reading (gone, or another filter refused): the exec itself will
                // meet the same refusal, and the post-create scan of its own open still applies.
                return Status.Success;
            }

            if (!info.File.IsNone && t_probeFile != info.File)
            {
                _context.ReportEvent("image-mismatch", "the file at " + info.ImagePath + " (" + t_probeFile.ToString()
                    + ") is not the image about to run (" + info.File.ToString() + "); it could not be scanned, exec denied", info.ProcessId, info.ImagePath);
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

    private void Detected(string detection, string path, int processId, string action)
    {
        string message = detection + " in " + path + ": " + action;
        string? folder = _options!.Quarantine;
        if (folder is not null)
        {
            Status moved = Quarantine.Move(folder, path, out string? destination);
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
}
