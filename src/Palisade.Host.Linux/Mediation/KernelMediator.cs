using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using Palisade.Api;
using Palisade.Host.Linux.Interop;
using Palisade.Host.Linux.Seccomp;
using Palisade.Kernel;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Io;
using ApiFileIdentity = Palisade.Api.FileIdentity;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// The mediator <c>palisade run</c> uses: it turns each decision point of the supervisor into a system service of
/// the kernel, so that the loaded drivers' callbacks decide, and maps the kernel's status back to the errno Linux
/// would give. The system call families it subscribes to follow from what the drivers registered, so a system call
/// no driver cares about never leaves the Linux kernel.
/// </summary>
internal sealed unsafe class KernelMediator : ISyscallMediator
{
    private readonly PalisadeKernel _kernel;
    private readonly int _userId = (int)GetUid();
    private readonly ConcurrentDictionary<int, PendingOpen> _pending = new();

    private const int LastOpenPathLimit = 512;

    [ThreadStatic]
    private static ServiceFrame t_frame;

    [ThreadStatic]
    private static byte[]? t_lastOpenBytes;

    /// <summary>The path operation between its decision and its completion on this thread (the supervisor performs it in between).</summary>
    [ThreadStatic]
    private static PendingPath? t_path;

    [ThreadStatic]
    private static string? t_lastOpenPath;

    /// <summary>
    /// This thread's spare open record. An open without post decision takes and returns it within one call; one with a
    /// post decision returns it on the thread that finished it. A per-thread slot costs a few nanoseconds where a shared
    /// pool cost about 200 per open on the supervisor's hot path.
    /// </summary>
    [ThreadStatic]
    private static PendingOpen? t_spareOpen;

    private readonly ProcessExitWatcher _exits;

    // Ends the watcher saw (no exit call reached the supervisor), for the supervisor to forget.
    private readonly System.Collections.Concurrent.ConcurrentQueue<int> _ended = new();

    public KernelMediator(PalisadeKernel kernel)
    {
        _kernel = kernel;
        Subscriptions = SubscriptionsOf(kernel);
        _exits = new ProcessExitWatcher((pid, code, signal) =>
        {
            ReportExit(pid, code, signal);
            _ended.Enqueue(pid);
        });
    }

    public SyscallFamilies Subscriptions { get; }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getuid")]
    private static extern uint GetUid();

    /// <summary>The families the kernel's current registrations need.</summary>
    public static SyscallFamilies SubscriptionsOf(PalisadeKernel k)
    {
        SyscallFamilies f = SyscallFamilies.None;
        if (k.Files.IsSubscribed(FileOperationKind.Create) || k.Files.IsSubscribed(FileOperationKind.Read) || k.Files.IsSubscribed(FileOperationKind.Write))
        {
            f |= SyscallFamilies.FileOpen | SyscallFamilies.FileOpenPost;
        }

        if (k.Files.IsSubscribed(FileOperationKind.Rename) || k.Files.IsSubscribed(FileOperationKind.Delete) || k.Files.IsSubscribed(FileOperationKind.SetInformation))
        {
            f |= SyscallFamilies.PathOperations;
        }

        if (k.Files.IsSubscribed(FileOperationKind.Cleanup))
        {
            f |= SyscallFamilies.FileClose;
        }

        if (k.Processes.Create.Count > 0 || k.Processes.ImageLoad.Count > 0)
        {
            f |= SyscallFamilies.Exec;
        }

        if (k.Network.AnyFilters)
        {
            f |= SyscallFamilies.Network;
        }

        if (k.Objects.Callbacks.Count > 0)
        {
            f |= SyscallFamilies.ProcessAccess | SyscallFamilies.Exec;
        }

        if (k.Processes.Exit.Count > 0 || k.Processes.ThreadCreate.Count > 0 || k.Processes.ThreadExit.Count > 0)
        {
            // Exits only: the kernel decides nothing at fork or clone (a process is decided at exec), so those run
            // natively, and the exit watcher reports the ends no system call announces.
            f |= SyscallFamilies.ProcessExits;
        }

        return f;
    }

    /// <summary>Maps a kernel status to the errno a guest sees; 0 for success.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int ErrnoOf(Status s)
    {
        if (s.IsSuccess)
        {
            return 0;
        }

        if (s == Status.AccessDenied || s == Status.Cancelled || s == Status.NetworkAccessDenied)
        {
            return Errno.EACCES;
        }

        if (s == Status.ObjectNameNotFound || s == Status.ObjectPathNotFound || s == Status.NotFound)
        {
            return Errno.ENOENT;
        }

        if (s == Status.InvalidParameter || s == Status.ObjectNameInvalid || s == Status.InvalidDeviceState)
        {
            return Errno.EINVAL;
        }

        if (s == Status.ObjectNameCollision)
        {
            return 17; // EEXIST
        }

        if (s == Status.InsufficientResources)
        {
            return Errno.ENOMEM;
        }

        if (s == Status.ConnectionRefused)
        {
            return 111; // ECONNREFUSED
        }

        if (s == Status.Timeout)
        {
            return 110; // ETIMEDOUT
        }

        if (s == Status.KeyHasChildren)
        {
            return 39; // ENOTEMPTY
        }

        if (s == Status.InvalidHandle)
        {
            return Errno.EBADF;
        }

        return s == Status.NotSupported ? 95 : Errno.EPERM; // EOPNOTSUPP : EPERM
    }

    private static string Utf8(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);

    /// <summary>
    /// The path of an open as a string. Programs open the same paths again and again, so the last one decoded on this
    /// thread is kept with its bytes and reused when the bytes match: a repeated open decodes and allocates nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static string OpenPath(ReadOnlySpan<byte> bytes)
    {
        byte[]? last = t_lastOpenBytes;
        if (last is not null && bytes.SequenceEqual(last) && t_lastOpenPath is { } cached)
        {
            return cached;
        }

        string path = Utf8(bytes);
        if (bytes.Length <= LastOpenPathLimit)
        {
            t_lastOpenBytes = bytes.ToArray();
            t_lastOpenPath = path;
        }

        return path;
    }

    private static FileAccessRights AccessOf(int flags)
    {
        if ((flags & 0x200000) != 0) // O_PATH
        {
            return FileAccessRights.None;
        }

        FileAccessRights a = (flags & 3) switch
        {
            0 => FileAccessRights.Read,
            1 => FileAccessRights.Write,
            _ => FileAccessRights.Read | FileAccessRights.Write,
        };
        return (flags & 0x400) != 0 ? a | FileAccessRights.Append : a; // O_APPEND
    }

    private static CreateDisposition DispositionOf(int flags)
    {
        bool create = (flags & 0x40) != 0, exclusive = (flags & 0x80) != 0, truncate = (flags & 0x200) != 0;
        return (create, exclusive, truncate) switch
        {
            (true, true, _) => CreateDisposition.Create,
            (true, false, true) => CreateDisposition.OverwriteIf,
            (true, false, false) => CreateDisposition.OpenIf,
            (false, _, true) => CreateDisposition.Overwrite,
            _ => CreateDisposition.Open,
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int PreOpen(in Requester requester, in OpenRequest request)
    {
        PendingOpen p = t_spareOpen ?? new PendingOpen();
        t_spareOpen = null;
        p.Operation = new FileOperation
        {
            Kind = FileOperationKind.Create,
            RequesterProcessId = requester.ProcessId,
            RequesterThreadId = requester.ThreadId,
            UserId = _userId,
            Path = OpenPath(request.Path),
            Access = AccessOf(request.Flags),
            Disposition = DispositionOf(request.Flags),
            OpenFlags = request.Flags,
        };
        Kernel.Events.OperationRecord? record = Begin(requester.ProcessId, "open", p.Operation.Path);
        if (!_kernel.Files.PreOperation(ref p.Operation, p.State, decimal.MaxValue, record))
        {
            Status s = p.Operation.Status;
            _kernel.Files.PostOperation(ref p.Operation, p.State, p, record);
            End(record, s);
            _kernel.RecordCall(SystemService.CreateFile, requester.ProcessId, requester.ThreadId, 0, request.Flags, (long)FileOperationKind.Create, s);
            Return(p);
            return ErrnoOf(s);
        }

        _kernel.RecordCall(SystemService.CreateFile, requester.ProcessId, requester.ThreadId, 0, request.Flags, (long)FileOperationKind.Create, Status.Success);

        if (record is null && !WantsPost(p.State))
        {
            // No filter asked to see the opened file and no event line waits for the outcome: finish the operation
            // here, and the supervisor skips the post decision and what only it needs (the file's identity).
            _kernel.Files.PostOperation(ref p.Operation, p.State, p, record);
            Return(p);
            return ISyscallMediator.AllowWithoutPost;
        }

        p.Record = record;
        if (_pending.TryRemove(requester.ThreadId, out PendingOpen? stale))
        {
            Return(stale);
        }

        _pending[requester.ThreadId] = p;
        return 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int PostOpen(in Requester requester, in OpenRequest request, in OpenedFile file)
    {
        if (!_pending.TryRemove(requester.ThreadId, out PendingOpen? p))
        {
            return 0;
        }

        p.Operation = p.Operation with { IsDirectory = (file.Identity.Mode & 0xF000) == 0x4000 };
        p.Operation.File = new ApiFileIdentity(file.Identity.Device, file.Identity.Inode);
        p.Operation.Status = Status.Success;
        p.Descriptor = file.Descriptor;
        Status s = _kernel.Files.PostOperation(ref p.Operation, p.State, p, p.Record);
        End(p.Record, s);
        Return(p);
        return ErrnoOf(s);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool WantsPost(IoState state)
    {
        bool[] wantsPost = state.WantsPost;
        for (int i = state.Last; i >= 0; i--)
        {
            if (wantsPost[i])
            {
                return true;
            }
        }

        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Return(PendingOpen p)
    {
        p.Descriptor = -1;
        p.Record = null;
        p.Operation = default;
        t_spareOpen = p;
    }

    public int PathOperation(in Requester requester, in PathOperationRequest request)
    {
        FileOperationKind kind = request.Kind switch
        {
            PathOperationKind.Rename => FileOperationKind.Rename,
            PathOperationKind.Unlink or PathOperationKind.RemoveDirectory => FileOperationKind.Delete,
            _ => FileOperationKind.SetInformation,
        };
        PendingPath p = t_path ??= new PendingPath();
        p.Active = false;
        p.Operation = new FileOperation
        {
            Kind = kind,
            RequesterProcessId = requester.ProcessId,
            RequesterThreadId = requester.ThreadId,
            UserId = _userId,
            Path = Utf8(request.Path),
            NewPath = request.Kind == PathOperationKind.Rename ? Utf8(request.NewPath) : null,
            IsDirectory = request.Kind == PathOperationKind.RemoveDirectory,
            InformationClass = request.Kind switch
            {
                PathOperationKind.Truncate => FileInformationClass.Size,
                PathOperationKind.ChangeMode => FileInformationClass.Mode,
                PathOperationKind.ChangeOwner => FileInformationClass.Owner,
                _ => FileInformationClass.None,
            },
            InformationValue = request.Kind switch
            {
                PathOperationKind.Truncate => request.Length,
                PathOperationKind.ChangeMode => request.Mode,
                PathOperationKind.ChangeOwner => (long)((ulong)request.Group << 32 | request.Owner),
                _ => 0,
            },
        };
        Kernel.Events.OperationRecord? record = Begin(requester.ProcessId, kind.ToString().ToLowerInvariant(), p.Operation.Path);
        if (!_kernel.Files.PreOperation(ref p.Operation, p.State, decimal.MaxValue, record))
        {
            // Completed by a filter: the filters above it that asked for a post callback get it with that status.
            Status s = p.Operation.Status;
            _kernel.Files.PostOperation(ref p.Operation, p.State, NoPerform.Instance, record);
            End(record, s);
            _kernel.RecordCall(ServiceOf(kind), requester.ProcessId, requester.ThreadId, 0, 0, (long)kind, s);
            p.Operation = default;
            return ErrnoOf(s);
        }

        // The supervisor performs the operation now and reports its result to PathOperationCompleted.
        p.Record = record;
        p.Active = true;
        return 0;
    }

    public void PathOperationCompleted(in Requester requester, in PathOperationRequest request, int error)
    {
        PendingPath? p = t_path;
        if (p is null || !p.Active)
        {
            return;
        }

        p.Active = false;
        p.Operation.Status = error == 0 ? Status.Success : StatusOf(error);
        Status s = _kernel.Files.PostOperation(ref p.Operation, p.State, NoPerform.Instance, p.Record);
        End(p.Record, s);
        _kernel.RecordCall(ServiceOf(p.Operation.Kind), requester.ProcessId, requester.ThreadId, 0, 0, (long)p.Operation.Kind, s);
        p.Record = null;
        p.Operation = default;
    }

    /// <summary>The status a post callback sees for a path operation Linux failed with <paramref name="errno"/>.</summary>
    private static Status StatusOf(int errno) => errno switch
    {
        2 => Status.ObjectNameNotFound, // ENOENT
        20 => Status.ObjectPathNotFound, // ENOTDIR
        1 or 13 => Status.AccessDenied, // EPERM, EACCES
        17 => Status.ObjectNameCollision, // EEXIST
        39 => Status.KeyHasChildren, // ENOTEMPTY
        16 => Status.SharingViolation, // EBUSY
        22 => Status.InvalidParameter, // EINVAL
        12 => Status.InsufficientResources, // ENOMEM
        9 => Status.InvalidHandle, // EBADF
        95 => Status.NotSupported, // EOPNOTSUPP
        _ => Status.Unsuccessful,
    };

    public void Close(in Requester requester, int fd)
    {
        // Most descriptors closed were opened for reading: one fdinfo read settles those before any path work.
        if (!WasOpenForWriting(requester.ProcessId, fd))
        {
            return;
        }

        string procPath = "/proc/" + requester.ProcessId + "/fd/" + fd;
        string? target;
        try
        {
            var info = new FileInfo(procPath);
            target = info.LinkTarget;
        }
        catch (IOException)
        {
            return;
        }
        catch (UnauthorizedAccessException)
        {
            return;
        }

        if (target is null || target.Length == 0 || target[0] != '/')
        {
            return;
        }

        if (Palisade.Kernel.Interop.Libc.FileIdentityOf(procPath, out ApiFileIdentity id, out bool dir) != 0 || dir)
        {
            return;
        }

        var op = new FileOperation
        {
            Kind = FileOperationKind.Cleanup,
            RequesterProcessId = requester.ProcessId,
            RequesterThreadId = requester.ThreadId,
            UserId = _userId,
            Path = target,
            File = id,
            Offset = -1,
        };
        Kernel.Events.OperationRecord? record = Begin(requester.ProcessId, "cleanup", target);
        Status s = _kernel.Files.Dispatch(ref op, NoPerform.Instance, decimal.MaxValue, record);
        End(record, s);
        _kernel.RecordCall(SystemService.CleanupFile, requester.ProcessId, requester.ThreadId, fd, 0, (long)FileOperationKind.Cleanup, s);
    }

    private static SystemService ServiceOf(FileOperationKind kind) => kind switch
    {
        FileOperationKind.Rename => SystemService.RenameFile,
        FileOperationKind.Delete => SystemService.DeleteFile,
        _ => SystemService.SetInformationFile,
    };

    private static bool WasOpenForWriting(int pid, int fd)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/" + pid + "/fdinfo/" + fd))
            {
                if (line.StartsWith("flags:", StringComparison.Ordinal))
                {
                    int flags = Convert.ToInt32(line[6..].Trim(), 8);
                    return (flags & 3) != 0;
                }
            }
        }
        catch (IOException)
        {
        }

        return false;
    }

    public int Exec(in Requester requester, in ExecRequest request)
    {
        string image = request.ImagePath.IsEmpty ? Utf8(request.Path) : Utf8(request.ImagePath);
        int parent = ParentOf(requester.ProcessId);
        ref ServiceFrame f = ref t_frame;
        f = default;
        f.ProcessId = requester.ProcessId;
        f.ThreadId = requester.ThreadId;
        f.UserId = _userId;
        f.Create = new ProcessCreateInfo
        {
            ProcessId = requester.ProcessId,
            ParentProcessId = parent,
            CreatorProcessId = requester.ProcessId,
            CreatorThreadId = requester.ThreadId,
            ImagePath = image,
            CommandLine = request.CommandLine.IsEmpty ? image : Utf8(request.CommandLine),
            UserId = _userId,
            File = new ApiFileIdentity(request.Image.Device, request.Image.Inode),
        };
        Kernel.Events.OperationRecord? record = Begin(requester.ProcessId, "exec", image);
        Status s = _kernel.SystemCall(SystemService.CreateProcess, ref f);
        End(record, s);
        if (s.IsSuccess)
        {
            _exits.Watch(requester.ProcessId);
        }

        return ErrnoOf(s);
    }

    private static int ParentOf(int pid) => StatusField(pid, "PPid:");

    /// <summary>A numeric field of /proc/PID/status (PPid:, Tgid:), or 0 when the process is gone.</summary>
    private static int StatusField(int pid, string field)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/" + pid + "/status"))
            {
                if (line.StartsWith(field, StringComparison.Ordinal))
                {
                    return int.Parse(line.AsSpan(field.Length).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    private static string ImageOf(int pid)
    {
        try
        {
            return new FileInfo("/proc/" + pid + "/exe").LinkTarget ?? "";
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static (IPAddress? Address, bool V6) AddressOf(ReadOnlySpan<byte> sockaddr)
    {
        if (sockaddr.Length >= 8 && sockaddr[0] == 2 && sockaddr[1] == 0)
        {
            return (new IPAddress(sockaddr.Slice(4, 4)), false);
        }

        if (sockaddr.Length >= 24 && sockaddr[0] == 10 && sockaddr[1] == 0)
        {
            return (new IPAddress(sockaddr.Slice(8, 16)), true);
        }

        return (null, false);
    }

    public int Network(in Requester requester, in NetworkRequest request)
    {
        if (request.Family is not (2 or 10))
        {
            return 0; // Only IPv4 and IPv6 are filtered; local sockets are not network traffic.
        }

        bool v6 = request.Family == 10;
        NetworkLayer layer = (request.Operation, v6) switch
        {
            (NetworkOperation.Connect or NetworkOperation.Send, false) => NetworkLayer.ConnectV4,
            (NetworkOperation.Connect or NetworkOperation.Send, true) => NetworkLayer.ConnectV6,
            (NetworkOperation.Bind, false) => NetworkLayer.BindV4,
            (NetworkOperation.Bind, true) => NetworkLayer.BindV6,
            (NetworkOperation.Listen, false) => NetworkLayer.ListenV4,
            (NetworkOperation.Listen, true) => NetworkLayer.ListenV6,
            (_, false) => NetworkLayer.AcceptV4,
            _ => NetworkLayer.AcceptV6,
        };
        if (!_kernel.Network.IsSubscribed(layer))
        {
            return 0;
        }

        NetworkProtocol protocol = request.Protocol switch
        {
            6 => NetworkProtocol.Tcp,
            17 => NetworkProtocol.Udp,
            0 when (request.SocketType & 0xF) == 1 => NetworkProtocol.Tcp,
            0 when (request.SocketType & 0xF) == 2 => NetworkProtocol.Udp,
            _ => NetworkProtocol.Other,
        };
        ref ServiceFrame f = ref t_frame;
        f = default;
        f.ProcessId = requester.ProcessId;
        f.ThreadId = requester.ThreadId;
        f.Network = new NetworkClassifyContext
        {
            Layer = layer,
            Protocol = protocol,
            LocalAddress = AddressOf(request.LocalAddress).Address,
            LocalPort = request.LocalPort,
            RemoteAddress = AddressOf(request.RemoteAddress).Address,
            RemotePort = request.RemotePort,
            ProcessId = requester.ProcessId,
            ApplicationPath = ImageOf(requester.ProcessId),
            UserId = _userId,
        };
        Kernel.Events.OperationRecord? record = Begin(requester.ProcessId, request.Operation.ToString().ToLowerInvariant(),
            f.Network.RemoteAddress is { } r ? r + ":" + f.Network.RemotePort : f.Network.LocalAddress + ":" + f.Network.LocalPort);
        Status s = _kernel.SystemCall(SystemService.NetworkClassify, ref f);
        End(record, s);
        if (s.IsSuccess)
        {
            return 0;
        }

        return request.Operation == NetworkOperation.Accept ? 103 : Errno.EACCES; // ECONNABORTED : EACCES
    }

    public int ProcessAccess(in Requester requester, in ProcessAccessRequest request)
    {
        int target = request.TargetProcessId;
        if (target <= 0 && request.TargetThreadId > 0)
        {
            target = StatusField(request.TargetThreadId, "Tgid:");
        }

        if (target <= 0 || target == requester.ProcessId)
        {
            return 0; // Process groups and oneself: see docs/security.md.
        }

        ProcessAccessRights rights = ProcessAccessRights.None;
        ProcessRights r = request.Rights;
        if ((r & (ProcessRights.Signal | ProcessRights.Terminate)) != 0)
        {
            rights |= ProcessAccessRights.Terminate;
        }

        if ((r & ProcessRights.ReadMemory) != 0)
        {
            rights |= ProcessAccessRights.VmRead;
        }

        if ((r & ProcessRights.WriteMemory) != 0)
        {
            rights |= ProcessAccessRights.VmWrite;
        }

        if ((r & ProcessRights.Debug) != 0)
        {
            rights |= ProcessAccessRights.VmRead | ProcessAccessRights.VmWrite | ProcessAccessRights.SuspendResume;
        }

        if ((r & ProcessRights.OpenHandle) != 0)
        {
            rights |= ProcessAccessRights.Synchronize;
        }

        if ((r & ProcessRights.DuplicateHandle) != 0)
        {
            rights |= ProcessAccessRights.DuplicateHandle;
        }

        if (_kernel.ProcessTable.Find(target) is null)
        {
            Kernel.Processes.GuestProcess p = _kernel.ProcessTable.Add(target, ParentOf(target), _userId, out bool created);
            if (created)
            {
                p.ImagePath = ImageOf(target);
                _exits.Watch(target);
            }
        }

        ref ServiceFrame f = ref t_frame;
        f = default;
        f.ProcessId = requester.ProcessId;
        f.ThreadId = requester.ThreadId;
        f.TargetProcessId = target;
        f.DesiredAccess = rights;
        Kernel.Events.OperationRecord? record = Begin(requester.ProcessId, "process-access", target + " " + rights);
        Status s = _kernel.SystemCall(SystemService.OpenProcess, ref f);
        End(record, s);
        return s.IsSuccess ? 0 : s == Status.AccessDenied ? Errno.EPERM : ErrnoOf(s);
    }

    public int ProcessCreate(in Requester requester, in ProcessCreateRequest request) => 0;

    public void ProcessStarted(in Requester requester, int parentProcessId)
    {
        ref ServiceFrame f = ref t_frame;
        f = default;
        f.ProcessId = parentProcessId;
        f.UserId = _userId;
        f.TargetProcessId = requester.ProcessId;
        _kernel.SystemCall(SystemService.ForkProcess, ref f);
        _exits.Watch(requester.ProcessId);
        Kernel.Processes.GuestProcess? p = _kernel.ProcessTable.Find(requester.ProcessId);
        if (p is not null && p.ImagePath.Length == 0)
        {
            p.ImagePath = ImageOf(requester.ProcessId);
        }

        if (requester.ThreadId != requester.ProcessId)
        {
            f = default;
            f.ProcessId = requester.ProcessId;
            f.TargetProcessId = requester.ProcessId;
            f.TargetThreadId = requester.ThreadId;
            _kernel.SystemCall(SystemService.CreateThread, ref f);
        }
    }

    public bool TryTakeEndedProcess(out int processId) => _ended.TryDequeue(out processId);

    public void ThreadStarted(in Requester requester)
    {
        ref ServiceFrame f = ref t_frame;
        f = default;
        f.ProcessId = requester.ProcessId;
        f.TargetProcessId = requester.ProcessId;
        f.TargetThreadId = requester.ThreadId;
        _kernel.SystemCall(SystemService.CreateThread, ref f);
    }

    public void ProcessExit(in Requester requester, bool wholeProcess, int status)
    {
        if (wholeProcess)
        {
            // exit_group: the end is reported now, while the process still exists; the watcher learns it was.
            if (_exits.Claim(requester.ProcessId))
            {
                ReportExit(requester.ProcessId, status & 0xFF, 0);
            }

            return;
        }

        ref ServiceFrame f = ref t_frame;
        f = default;
        f.ProcessId = requester.ProcessId;
        f.TargetProcessId = requester.ProcessId;
        f.TargetThreadId = requester.ThreadId;
        f.ExitCode = status & 0xFF;
        _kernel.SystemCall(SystemService.ExitThread, ref f);
    }

    /// <summary>
    /// Reports the end of every process known to have ended and not reported yet; the launched program has been
    /// waited for, so its own end (and that of any process it reaped) is among them.
    /// </summary>
    public void Drain() => _exits.Drain();

    /// <summary>The end of process <paramref name="pid"/>, however it ended, to the kernel's process exit service (once per process).</summary>
    private void ReportExit(int pid, int exitCode, int signal)
    {
        ref ServiceFrame f = ref t_frame;
        f = default;
        f.ProcessId = pid;
        f.TargetProcessId = pid;
        f.TargetThreadId = pid;
        f.ExitCode = exitCode;
        f.Signal = signal;
        Status s = _kernel.SystemCall(SystemService.ExitProcess, ref f);
        Kernel.Events.OperationRecord? record = s.IsSuccess ? _kernel.CurrentRecord : null;
        if (record is not null)
        {
            // The exit service has no callbacks that decide, so the line is written after it, for processes it knew.
            record.Begin(pid, "exit");
            record.Argument("code", exitCode.ToString(System.Globalization.CultureInfo.InvariantCulture));
            record.Argument("signal", signal.ToString(System.Globalization.CultureInfo.InvariantCulture));
            End(record, s);
        }
    }

    private Kernel.Events.OperationRecord? Begin(int pid, string operation, string? argument)
    {
        Kernel.Events.OperationRecord? record = _kernel.CurrentRecord;
        if (record is not null)
        {
            record.Begin(pid, operation);
            record.Argument("path", argument);
        }

        return record;
    }

    private void End(Kernel.Events.OperationRecord? record, Status result)
    {
        if (record is not null)
        {
            record.Result = result;
            _kernel.Events.WriteOperation(record);
        }
    }

    /// <summary>The state of one open between its pre and post decisions, and the performer a post scan reads through.</summary>
    private sealed class PendingOpen : IFileSystemPerformer
    {
        public FileOperation Operation;
        public readonly IoState State = new();
        public Kernel.Events.OperationRecord? Record;
        public int Descriptor = -1;

        public Status Perform(ref FileOperation operation) => Status.NotSupported;

        public void CancelCreate(ref FileOperation operation)
        {
            // The supervisor closes the descriptor when the post decision denies.
        }

        public Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead)
        {
            bytesRead = 0;
            if (Descriptor < 0)
            {
                return Status.InvalidDeviceState;
            }

            fixed (byte* b = buffer)
            {
                nint n = Libc.PRead(Descriptor, b, (nuint)buffer.Length, offset);
                if (n < 0)
                {
                    return Libc.LastError == 9 ? Status.AccessDenied : Status.Unsuccessful;
                }

                bytesRead = (int)n;
                return Status.Success;
            }
        }
    }

    /// <summary>A path operation between its pre callbacks and its post callbacks.</summary>
    private sealed class PendingPath
    {
        public FileOperation Operation;
        public readonly IoState State = new();
        public Kernel.Events.OperationRecord? Record;
        public bool Active;
    }

    /// <summary>For notifications only (cleanup): the guest performs the close itself.</summary>
    private sealed class NoPerform : IFileSystemPerformer
    {
        public static readonly NoPerform Instance = new();

        public Status Perform(ref FileOperation operation) => Status.Success;

        public void CancelCreate(ref FileOperation operation)
        {
        }

        public Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead)
        {
            bytesRead = 0;
            return Status.InvalidDeviceState;
        }
    }
}
