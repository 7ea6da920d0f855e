// The sample self-protection (anti-tampering) driver: keeps a security product's own processes, files and
// registry keys out of reach of every other process, the way products protect their services on Windows.
//
//   processes  an object pre callback strips Terminate, VmWrite, VmOperation and SuspendResume from handles that
//              other processes ask for to a protected process (kill, ptrace, process_vm_writev then fail with
//              EPERM). Which pids are protected is learnt from image-load notifications (the image that actually
//              started), fork notifications (a child of a protected process is protected) and exits.
//   files      a minifilter denies opening for write, creating (open O_CREAT, mkdir, mknod, symlink), truncating,
//              deleting, renaming (either end, RENAME_EXCHANGE included) and changing the information (size,
//              allocation, mode, owner, times, extended attributes, hard links) of protected paths, and renaming or
//              deleting folders that contain them (EACCES). Paths are the ones Linux resolved, so "..", "//", "/./"
//              and symbolic links lead to the protected file they name.
//   registry   a registry pre callback blocks creating keys, setting and deleting values, deleting and renaming
//              keys at or below protected keys, and renaming or deleting their ancestors (EACCES).
// The protected processes themselves are exempt everywhere, so the product can still update itself.
using System.Collections.Concurrent;
using Palisade.Api;

namespace Palisade.Drivers.SelfProtection;

/// <summary>The self-protection driver's entry point (manifest entry type).</summary>
public sealed class SelfProtectionDriver : IDriver
{
    internal const string ObjectAltitude = "400000";
    internal const string FilterName = "selfprotect";
    internal const string FilterAltitude = "405000";
    internal const string RegistryAltitude = "405000";
    internal const string ProductName = "Palisade Sample Self-Protection";

    /// <summary>The rights that would let another process end, stop, debug or patch a protected process.</summary>
    internal const ProcessAccessRights StrippedRights =
        ProcessAccessRights.Terminate | ProcessAccessRights.VmWrite | ProcessAccessRights.VmOperation | ProcessAccessRights.SuspendResume;

    private readonly ConcurrentDictionary<int, byte> _pids = new();
    private readonly List<CallbackCookie> _process = [];
    private IDriverContext? _context;
    private ProtectedSet? _set;
    private CallbackCookie _objects;
    private CallbackCookie _filter;
    private CallbackCookie _registry;
    private CallbackCookie _product;

    /// <summary>True when the process is currently one of the product's.</summary>
    internal bool IsProtectedProcess(int pid) => _pids.ContainsKey(pid);

    /// <inheritdoc />
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        if (!ProtectedSet.TryParse(context.Parameters, out _set, out string? error))
        {
            context.ReportEvent("config-error", error, 0, null);
            return Status.InvalidParameter;
        }

        Status s = RegisterProcessTracking(context.Processes);
        if (s.IsError)
        {
            return s;
        }

        s = context.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = ObjectAltitude,
            ObjectTypes = ObjectTypes.Process | ObjectTypes.Thread,
            Operations = HandleOperations.Create | HandleOperations.Duplicate,
            PreOperation = PreHandle,
        }, out _objects);
        if (s.IsError)
        {
            return s;
        }

        if (_set.FileCount > 0)
        {
            s = context.Files.RegisterFilter(new FilterRegistration
            {
                Name = FilterName,
                Altitude = FilterAltitude,
                Operations =
                [
                    new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = PreCreate },
                    new FileOperationRegistration { Kind = FileOperationKind.Delete, PreOperation = PreDelete },
                    new FileOperationRegistration { Kind = FileOperationKind.Rename, PreOperation = PreRename },
                    new FileOperationRegistration { Kind = FileOperationKind.SetInformation, PreOperation = PreSetInformation },
                ],
            }, out _filter);
            if (s.IsError)
            {
                return s;
            }
        }

        if (_set.KeyCount > 0)
        {
            s = context.Registry.Register(OnRegistry, RegistryAltitude, out _registry);
            if (s.IsError)
            {
                return s;
            }
        }

        s = context.SecurityCenter.RegisterProduct(SecurityProductKind.SelfProtection, ProductName, out _product);
        if (s.IsError)
        {
            return s;
        }

        context.ReportEvent("started", FormattableString.Invariant(
            $"{_set.ImageCount} images, {_set.FileCount} file prefixes and {_set.KeyCount} key prefixes protected"), 0, null);
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
        _context.Registry.Unregister(_registry);
        _context.Files.UnregisterFilter(_filter);
        _context.Objects.Unregister(_objects);
        foreach (CallbackCookie c in _process)
        {
            _context.Processes.Unregister(c);
        }

        _process.Clear();
    }

    private Status RegisterProcessTracking(IProcessCallbacks processes)
    {
        Status s = processes.RegisterImageLoad(OnImageLoad, out CallbackCookie c);
        if (s.IsError)
        {
            return s;
        }

        _process.Add(c);
        s = processes.RegisterProcessFork(OnFork, out c);
        if (s.IsError)
        {
            return s;
        }

        _process.Add(c);
        s = processes.RegisterProcessExit(OnProcessExit, out c);
        if (s.IsError)
        {
            return s;
        }

        _process.Add(c);
        return Status.Success;
    }

    // The image load of the file an exec names follows a process creation every callback allowed: that image now runs in
    // the process. The other loads (interpreters, libraries) change nothing about which program the process is.
    private Status OnImageLoad(in ImageLoadInfo info)
    {
        if (info.Kind is not (ImageLoadKind.Executable or ImageLoadKind.Script))
        {
            return Status.Success;
        }

        if (_set!.IsProtectedImage(info.ImagePath))
        {
            _pids[info.ProcessId] = 0;
        }
        else
        {
            Forget(info.ProcessId);
        }

        return Status.Success;
    }

    // A fork of a protected process is the product too, until it execs another program (its image load says so).
    private void OnFork(in ProcessForkInfo info)
    {
        if (_pids.ContainsKey(info.ParentProcessId))
        {
            _pids[info.ProcessId] = 0;
        }
    }

    private void OnProcessExit(in ProcessExitInfo info) => Forget(info.ProcessId);

    private void Forget(int pid) => _pids.TryRemove(pid, out _);

    private bool IsExempt(int requester) => _pids.ContainsKey(requester);

    private void PreHandle(ref ObjectPreOperationInfo info)
    {
        if (info.KernelHandle || !_pids.ContainsKey(info.TargetProcessId)
            || info.RequesterProcessId == info.TargetProcessId || IsExempt(info.RequesterProcessId))
        {
            return;
        }

        ProcessAccessRights removed = info.DesiredAccess & StrippedRights;
        if (removed == ProcessAccessRights.None)
        {
            return;
        }

        info.DesiredAccess &= ~StrippedRights;
        Report(info.RequesterProcessId, null, FormattableString.Invariant($"removed {removed} from a handle to protected process {info.TargetProcessId}"));
    }

    private PreOperationStatus PreCreate(ref FileOperation op)
    {
        bool modifies = (op.Access & (FileAccessRights.Write | FileAccessRights.Append)) != 0
            || op.Disposition is CreateDisposition.Create or CreateDisposition.Overwrite or CreateDisposition.OverwriteIf
            || (op.Disposition == CreateDisposition.OpenIf && op.File.IsNone);
        return modifies && _set!.IsProtectedFile(op.Path) ? Deny(ref op, "open for modification") : PreOperationStatus.SuccessNoCallback;
    }

    private PreOperationStatus PreDelete(ref FileOperation op) =>
        _set!.AffectsProtectedFile(op.Path) ? Deny(ref op, "delete") : PreOperationStatus.SuccessNoCallback;

    // Both ends: a rename onto a protected name replaces it, and RENAME_EXCHANGE moves the destination away too.
    private PreOperationStatus PreRename(ref FileOperation op) =>
        _set!.AffectsProtectedFile(op.Path) || _set.AffectsProtectedFile(op.NewPath) ? Deny(ref op, "rename") : PreOperationStatus.SuccessNoCallback;

    // Every change of a file other than its data: size, allocation (punched holes), mode, owner, times, extended
    // attributes; and a hard link to it (a second name that writes would reach it through) or into a protected folder.
    private PreOperationStatus PreSetInformation(ref FileOperation op) =>
        _set!.IsProtectedFile(op.Path) || (op.InformationClass == FileInformationClass.Link && _set.IsProtectedFile(op.NewPath))
            ? Deny(ref op, "change of " + op.InformationClass)
            : PreOperationStatus.SuccessNoCallback;

    private PreOperationStatus Deny(ref FileOperation op, string what)
    {
        if (IsExempt(op.RequesterProcessId))
        {
            return PreOperationStatus.SuccessNoCallback;
        }

        op.Status = Status.AccessDenied;
        Report(op.RequesterProcessId, op.Path, "denied " + what + " of a protected file");
        return PreOperationStatus.Complete;
    }

    private Status OnRegistry(ref RegistryNotification n)
    {
        bool blocked = n.NotifyClass switch
        {
            RegistryNotifyClass.PreCreateKey or RegistryNotifyClass.PreSetValue or RegistryNotifyClass.PreDeleteValue => _set!.IsProtectedKey(n.KeyPath),
            RegistryNotifyClass.PreDeleteKey or RegistryNotifyClass.PreRenameKey => _set!.AffectsProtectedKey(n.KeyPath),
            _ => false,
        };
        if (!blocked || IsExempt(n.ProcessId))
        {
            return Status.Success;
        }

        Report(n.ProcessId, null, "blocked " + n.NotifyClass + " of " + n.KeyPath + (n.ValueName is null ? "" : " value \"" + n.ValueName + "\""));
        return Status.AccessDenied;
    }

    private void Report(int pid, string? path, string message) =>
        _context!.ReportEvent("tamper-attempt", message.Length > 4096 ? message[..4096] : message, pid, path);
}
