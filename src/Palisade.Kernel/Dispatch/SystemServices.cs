using System.Runtime.CompilerServices;
using Palisade.Api;
using Palisade.Kernel.Objects;
using Palisade.Kernel.Processes;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Dispatch;

/// <summary>
/// The system services themselves: one static method each, reached only through the system service table. They are
/// compiled once, fully optimized and never inlined, so that their native code is stable for the guard.
/// </summary>
internal static unsafe class SystemServices
{
    public static nint Address(SystemService s) => s switch
    {
        SystemService.CreateFile or SystemService.CleanupFile or SystemService.RenameFile or SystemService.DeleteFile
            or SystemService.SetInformationFile or SystemService.ReadFile or SystemService.WriteFile
            => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&FileService,
        SystemService.CreateProcess => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&CreateProcess,
        SystemService.ForkProcess => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&ForkProcess,
        SystemService.ExitProcess => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&ExitProcess,
        SystemService.CreateThread => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&CreateThread,
        SystemService.ExitThread => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&ExitThread,
        SystemService.OpenProcess => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&OpenProcess,
        SystemService.OpenThread => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&OpenThread,
        SystemService.DuplicateHandle => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&DuplicateHandle,
        SystemService.NetworkClassify => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&NetworkClassify,
        SystemService.BeginFileOperation => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&BeginFileOperation,
        SystemService.CompleteFileOperation => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&CompleteFileOperation,
        SystemService.AttachProcess => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&AttachProcess,
        SystemService.LoadImage => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&LoadImage,
        SystemService.ExecResult => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&ExecResult,
        _ => (nint)(delegate*<PalisadeKernel, ref ServiceFrame, Status>)&RegistryService,
    };

    /// <summary>
    /// The code whose native form the guard protects on the system service path: every service the table points to,
    /// the table's own entry (<see cref="SystemServiceTable.Call"/>), and the filter manager's two halves, which every
    /// file service runs through. Derived from the services, not from any caller: whatever enters the kernel enters
    /// through the table.
    /// </summary>
    public static IReadOnlyList<System.Reflection.MethodInfo> ProtectedMethods()
    {
        const System.Reflection.BindingFlags Static = System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static;
        var methods = new List<System.Reflection.MethodInfo>();
        foreach (string name in ServiceMethods)
        {
            methods.Add(typeof(SystemServices).GetMethod(name, Static)!);
        }

        methods.Add(typeof(SystemServiceTable).GetMethod(nameof(SystemServiceTable.Call))!);
        methods.Add(typeof(Io.FilterManager).GetMethod(nameof(Io.FilterManager.PreOperation))!);
        methods.Add(typeof(Io.FilterManager).GetMethod(nameof(Io.FilterManager.PostOperation))!);
        return methods;
    }

    /// <summary>The methods the table's slots point to (several services may share one).</summary>
    internal static readonly string[] ServiceMethods =
    [
        nameof(FileService), nameof(BeginFileOperation), nameof(CompleteFileOperation), nameof(CreateProcess),
        nameof(ForkProcess), nameof(AttachProcess), nameof(ExitProcess), nameof(CreateThread), nameof(ExitThread),
        nameof(OpenProcess), nameof(OpenThread), nameof(DuplicateHandle), nameof(NetworkClassify), nameof(RegistryService),
        nameof(LoadImage), nameof(ExecResult),
    ];

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status FileService(PalisadeKernel k, ref ServiceFrame f)
    {
        if (f.FilePerformer is null || string.IsNullOrEmpty(f.File.Path))
        {
            return Status.InvalidParameter;
        }

        return k.Files.Dispatch(ref f.File, f.FilePerformer, decimal.MaxValue, k.CurrentRecord);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status BeginFileOperation(PalisadeKernel k, ref ServiceFrame f)
    {
        Hosting.FileRequest? r = f.FileRequest;
        if (r is null || (r.Operation.Source is null && string.IsNullOrEmpty(r.Operation.Path)))
        {
            return Status.InvalidParameter;
        }

        // The host's request is a guest's own operation: a filter may hold it.
        if (k.Files.PreOperation(ref r.Operation, r.State, decimal.MaxValue, r.Record, r.Operation.RequesterThreadId != 0 ? r : null))
        {
            r.NeedsCompletion = true;
            return Status.Success;
        }

        // Completed by a filter: the filters above it that asked for a post callback get it with that status.
        Status s = r.Operation.Status;
        k.Files.PostOperation(ref r.Operation, r.State, r, r.Record);
        r.NeedsCompletion = false;
        return s;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status CompleteFileOperation(PalisadeKernel k, ref ServiceFrame f)
    {
        Hosting.FileRequest? r = f.FileRequest;
        if (r is null || !r.NeedsCompletion)
        {
            return Status.InvalidDeviceState;
        }

        r.NeedsCompletion = false;
        return k.Files.PostOperation(ref r.Operation, r.State, r, r.Record);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status AttachProcess(PalisadeKernel k, ref ServiceFrame f)
    {
        if (f.TargetProcessId <= 0)
        {
            return Status.InvalidParameter;
        }

        GuestProcess p = k.ProcessTable.Add(f.TargetProcessId, f.ParentProcessId, f.UserId, out bool created);
        if (!created)
        {
            return Status.ObjectNameCollision;
        }

        p.ImagePath = f.ImagePath ?? "";
        p.Attached = true;
        return Status.Success;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status CreateProcess(PalisadeKernel k, ref ServiceFrame f)
    {
        if (string.IsNullOrEmpty(f.Create.ImagePath))
        {
            return Status.InvalidParameter;
        }

        // An exec keeps the process's start key; a process the kernel did not know gets a new one.
        long startKey = k.ProcessTable.StartKeyOf(f.Create.ProcessId);
        f.Create = f.Create with
        {
            ProcessStartKey = startKey != 0 ? startKey : k.ProcessTable.ReserveStartKey(),
            ParentProcessStartKey = k.ProcessTable.StartKeyOf(f.Create.ParentProcessId),
            Arguments = f.Create.Arguments ?? [],
            EnvironmentVariables = f.Create.EnvironmentVariables ?? [],
        };
        Status verdict = k.Processes.NotifyCreate(in f.Create, k.CurrentRecord, f.ThreadId);
        if (verdict.IsError)
        {
            return verdict;
        }

        // Every image the exec loads, before it runs (the file named alone, as an executable, when the host gave no list):
        // the first denial fails the exec, and the process keeps its old image.
        var named = new ImageLoadInfo
        {
            ProcessId = f.Create.ProcessId, ImagePath = f.Create.ImagePath, File = f.Create.File,
            Kind = ImageLoadKind.Executable, FileType = FileObjectType.Regular,
        };
        ReadOnlySpan<ImageLoadInfo> images = f.Images ?? new ReadOnlySpan<ImageLoadInfo>(in named);
        foreach (ref readonly ImageLoadInfo listed in images)
        {
            ImageLoadInfo image = listed with { ProcessStartKey = f.Create.ProcessStartKey };
            verdict = k.Processes.NotifyImageLoad(in image, k.CurrentRecord);
            if (verdict.IsError)
            {
                return verdict;
            }
        }

        GuestProcess p = k.ProcessTable.Add(f.Create.ProcessId, f.Create.ParentProcessId, f.Create.UserId, out _, f.Create.ProcessStartKey);
        p.Attached = false; // It runs a program under this kernel: a guest, whatever entered it first.
        p.ImagePath = f.Create.ImagePath;
        p.CommandLine = f.Create.CommandLine;
        p.Image = f.Create.File;
        return Status.Success;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status LoadImage(PalisadeKernel k, ref ServiceFrame f)
    {
        if (string.IsNullOrEmpty(f.Image.ImagePath) || f.Image.ProcessId <= 0)
        {
            return Status.InvalidParameter;
        }

        f.Image = f.Image with { ProcessStartKey = k.ProcessTable.StartKeyOf(f.Image.ProcessId) };
        return k.Processes.NotifyImageLoad(in f.Image, k.CurrentRecord);
    }

    /// <summary>An exec ended (service ExecResult): exec-result callbacks are told, keyed by the process's start key.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status ExecResult(PalisadeKernel k, ref ServiceFrame f)
    {
        if (f.ExecResult.ProcessId <= 0)
        {
            return Status.InvalidParameter;
        }

        f.ExecResult = f.ExecResult with
        {
            ProcessStartKey = k.ProcessTable.StartKeyOf(f.ExecResult.ProcessId),
            ImagePath = f.ExecResult.ImagePath ?? "",
        };
        k.Processes.NotifyExecResult(in f.ExecResult);
        return Status.Success;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status ForkProcess(PalisadeKernel k, ref ServiceFrame f)
    {
        GuestProcess? parent = k.ProcessTable.Find(f.ProcessId);
        GuestProcess child = k.ProcessTable.Add(f.TargetProcessId, f.ProcessId, f.UserId, out bool created);
        child.Attached = false; // Its own first call reached the kernel: a guest.
        if (created && parent is not null)
        {
            child.ImagePath = parent.ImagePath;
            child.CommandLine = parent.CommandLine;
            child.Image = parent.Image;
        }

        if (child.ImagePath.Length == 0 && f.ImagePath is not null)
        {
            child.ImagePath = f.ImagePath;
        }

        if (created)
        {
            var fork = new ProcessForkInfo
            {
                ProcessId = f.TargetProcessId, ProcessStartKey = child.StartKey, ParentProcessId = f.ProcessId,
                ParentProcessStartKey = parent?.StartKey ?? 0, ImagePath = child.ImagePath, File = child.Image,
            };
            k.Processes.NotifyFork(in fork);
            var t = new ThreadInfo { ProcessId = f.TargetProcessId, ProcessStartKey = child.StartKey, ThreadId = f.TargetProcessId, CreatorThreadId = f.ThreadId };
            k.Processes.NotifyThread(create: true, in t);
        }

        return Status.Success;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status ExitProcess(PalisadeKernel k, ref ServiceFrame f)
    {
        GuestProcess? p = k.ProcessTable.Remove(f.TargetProcessId);
        if (p is null)
        {
            return Status.InvalidHandle;
        }

        var t = new ThreadInfo { ProcessId = f.TargetProcessId, ProcessStartKey = p.StartKey, ThreadId = f.TargetProcessId };
        k.Processes.NotifyThread(create: false, in t);
        var info = new ProcessExitInfo { ProcessId = f.TargetProcessId, ProcessStartKey = p.StartKey, ExitCode = f.ExitCode, Signal = f.Signal };
        k.Processes.NotifyExit(in info);
        return Status.Success;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status CreateThread(PalisadeKernel k, ref ServiceFrame f)
    {
        k.ProcessTable.AddThread(f.TargetProcessId, f.TargetThreadId, out bool created);
        if (created)
        {
            var t = new ThreadInfo
            {
                ProcessId = f.TargetProcessId,
                ProcessStartKey = k.ProcessTable.StartKeyOf(f.TargetProcessId),
                ThreadId = f.TargetThreadId,
                CreatorThreadId = f.ThreadId,
            };
            k.Processes.NotifyThread(create: true, in t);
        }

        return Status.Success;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status ExitThread(PalisadeKernel k, ref ServiceFrame f)
    {
        if (!k.ProcessTable.RemoveThread(f.TargetThreadId))
        {
            return Status.InvalidHandle;
        }

        var t = new ThreadInfo { ProcessId = f.TargetProcessId, ProcessStartKey = k.ProcessTable.StartKeyOf(f.TargetProcessId), ThreadId = f.TargetThreadId };
        k.Processes.NotifyThread(create: false, in t);
        return Status.Success;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status OpenProcess(PalisadeKernel k, ref ServiceFrame f)
    {
        GuestProcess? target = k.ProcessTable.Find(f.TargetProcessId);
        if (target is null)
        {
            return Status.InvalidParameter;
        }

        return OpenObject(k, ref f, target, HandleOperations.Create);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status OpenThread(PalisadeKernel k, ref ServiceFrame f)
    {
        GuestThread? target = k.ProcessTable.FindThread(f.TargetThreadId);
        if (target is null)
        {
            return Status.InvalidParameter;
        }

        return OpenObject(k, ref f, target, HandleOperations.Create);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status DuplicateHandle(PalisadeKernel k, ref ServiceFrame f)
    {
        GuestProcess? target = k.ProcessTable.Find(f.TargetProcessId);
        if (target is null)
        {
            return Status.InvalidParameter;
        }

        return OpenObject(k, ref f, target, HandleOperations.Duplicate);
    }

    private static Status OpenObject(PalisadeKernel k, ref ServiceFrame f, KernelObject target, HandleOperations op)
    {
        GuestProcess? requester = f.KeepHandle ? k.ProcessTable.Find(f.ProcessId) : null;
        var access = new ObjectAccess(op, f.DesiredAccess, f.AccessKind, f.Signal, kernelHandle: f.ProcessId == 0);
        return k.Objects.OpenHandle(requester, f.ProcessId, target, in access, k.CurrentRecord, out f.Handle, out f.GrantedAccess, f.ThreadId);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status NetworkClassify(PalisadeKernel k, ref ServiceFrame f)
    {
        Network.Classification c = k.Network.Classify(in f.Network, k.CurrentRecord, f.ThreadId);
        f.DecidingFilter = c.DecidingFilter;
        f.DecidingDriver = c.DecidingDriver;
        return c.Permitted ? Status.Success : Status.NetworkAccessDenied;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Status RegistryService(PalisadeKernel k, ref ServiceFrame f)
    {
        RegistryRequest? r = f.Registry;
        if (r is null || string.IsNullOrEmpty(r.KeyPath))
        {
            return Status.InvalidParameter;
        }

        return k.RegistryCallbacks.Dispatch(f.ProcessId, r, k.PerformRegistry, k.CurrentRecord);
    }
}
