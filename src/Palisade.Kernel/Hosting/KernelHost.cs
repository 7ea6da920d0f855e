using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using Palisade.Api;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Events;

namespace Palisade.Kernel.Hosting;

/// <summary>
/// The one surface through which a host (the program that runs guests and decodes what they ask for, such as the
/// Linux host) reaches the kernel. Every request enters the kernel through its system service table, so that the
/// loaded drivers' callbacks decide and the guard watches the path; the kernel writes the event line of each request
/// and records it for crash dumps.
/// </summary>
/// <remarks>
/// <para>
/// This is not the driver API (that is <c>Palisade.Api</c>), and it is not versioned for third parties: it is the
/// contract between the kernel and the hosts that ship with it.
/// </para>
/// <para>
/// Threading: every member may be called from any thread, concurrently. A request and its completion
/// (<see cref="BeginOpen"/> and <see cref="CompleteOpen"/>, <see cref="BeginPathOperation"/> and
/// <see cref="CompletePathOperation"/>) are paired by the requester's thread id; a path operation's completion must
/// come on the thread that began it. Callbacks of drivers run on the calling thread, under their deadline.
/// </para>
/// <para>
/// Holds: a request of a guest (every request here names one) may be held by a driver's callback until the driver
/// completes it, its hold times out or the kernel cancels it (see <c>IPendedOperation</c>). The calling thread then waits
/// inside the request, up to the registration's maximum hold time (at most 10 minutes): a host must serve other guests
/// on other threads meanwhile, and tell the kernel when a guest thread no longer waits (<see cref="CancelWaiting"/>).
/// </para>
/// <para>
/// Results are <see cref="Status"/> codes; a host maps a failure to its own error (the Linux host to the errno each
/// code documents). Members do not throw for any argument a guest can cause.
/// </para>
/// </remarks>
public sealed class KernelHost
{
    private readonly PalisadeKernel _kernel;

    // Opens between their two halves, by requester thread: the completion may run on another host thread.
    private readonly ConcurrentDictionary<int, FileRequest> _opens = new();

    [ThreadStatic]
    private static ServiceFrame t_frame;

    /// <summary>
    /// This thread's spare open. An open without completion takes and returns it within one call; one with a
    /// completion returns it on the thread that completes it. A per-thread slot costs a few nanoseconds where a shared
    /// pool cost about 200 per open.
    /// </summary>
    [ThreadStatic]
    private static FileRequest? t_spareOpen;

    /// <summary>The path operation between its two halves on this thread (the host performs it in between).</summary>
    [ThreadStatic]
    private static FileRequest? t_path;

    /// <summary>The file of the last held create this thread began, until the host takes it (<see cref="TakeHeldFile"/>).</summary>
    [ThreadStatic]
    private static int t_heldFile;

    internal KernelHost(PalisadeKernel kernel) => _kernel = kernel;

    /// <summary>What the host asked the guard to watch (applied when the guard starts, at once after).</summary>
    internal HostWatchList Watches { get; } = new();

    /// <summary>
    /// Puts a method of the host's mediation code under the guard, as the kernel's own protected methods are: its stub,
    /// its data cell and its entire native body, checked on every sweep from then on (a detour anywhere in it is bug check
    /// 0x109, type 0x1). Registering the same method again does nothing. Call it at start-up, before guests run; in the
    /// compat flavor, which has no guard, nothing is watched.
    /// </summary>
    /// <param name="method">A method marked <c>[MethodImpl(NoInlining | AggressiveOptimization)]</c> (the only methods
    /// whose native code is compiled once and never copied into callers).</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a null method, a generic method
    /// definition, or one without both flags.</returns>
    public Status WatchCode(MethodInfo method)
    {
        const MethodImplAttributes Required = MethodImplAttributes.NoInlining | MethodImplAttributes.AggressiveOptimization;
        if (method is null || method.ContainsGenericParameters || (method.MethodImplementationFlags & Required) != Required)
        {
            return Status.InvalidParameter;
        }

        return Watches.AddCode(method);
    }

    /// <summary>
    /// Puts a piece of the host's wiring under the guard until the returned watch is disposed: from now on, any change of
    /// the values <paramref name="wiring"/> reports (a listener descriptor swapped, a mediator replaced) is bug check
    /// 0x109, type 0x203. Register after the guard started (<c>KernelProtection.Start</c>); a wiring registered before,
    /// or in the compat flavor, is not watched (the watch does nothing).
    /// </summary>
    /// <param name="wiring">The wiring; it must stay as it is now until the watch is disposed.</param>
    /// <param name="watch">On success, the watch to dispose before the wiring is torn down.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a null wiring.</returns>
    public Status WatchWiring(IHostWiring wiring, out HostWatch? watch)
    {
        watch = null;
        if (wiring is null)
        {
            return Status.InvalidParameter;
        }

        watch = Watches.AddWiring(wiring);
        return Status.Success;
    }

    /// <summary>
    /// The host's part in holding creates: set once by a host that can open, for a create a filter holds, the file the
    /// create names (see <see cref="IHeldFileAccess"/>). Without it a held create has no file to read
    /// (<c>ReadFile</c> on it returns <c>ObjectNameNotFound</c>) and the host opens the guest's file by its path.
    /// </summary>
    public IHeldFileAccess? HeldFiles { get; set; }

    /// <summary>
    /// After a successful <see cref="BeginOpen"/> on this thread: the descriptor that names the file a filter held the
    /// create for, which the host must open the guest's file through (so that the guest receives the file decided on), or
    /// -1 when the create was not held on a file. The caller owns the descriptor; a second call returns -1.
    /// </summary>
    /// <returns>A descriptor (the host closes it), or -1.</returns>
    public int TakeHeldFile()
    {
        int fd = t_heldFile - 1;
        t_heldFile = 0;
        return fd;
    }

    /// <summary>
    /// The host's word that a guest thread no longer waits for its request (it was killed, its process ended): if a
    /// driver holds that thread's request, the hold is cancelled, the driver is told, and the request returns
    /// <see cref="Status.Cancelled"/> to the host thread that waits in it.
    /// </summary>
    /// <param name="requester">The guest thread, and the call it no longer waits for (<see cref="Requester.CallId"/>; 0 for any).</param>
    /// <returns>True when a held request of that thread was cancelled.</returns>
    public bool CancelWaiting(in Requester requester) => _kernel.Holds.CancelThread(requester.ThreadId, requester.CallId);

    /// <summary>
    /// What the host must mediate for the registrations held now. Reading it walks the callback tables; a host reads
    /// it when it starts a guest tree.
    /// </summary>
    public HostInterests Interests
    {
        get
        {
            PalisadeKernel k = _kernel;
            HostInterests i = HostInterests.None;
            if (k.Files.IsSubscribed(FileOperationKind.Create) || k.Files.IsSubscribed(FileOperationKind.Read) || k.Files.IsSubscribed(FileOperationKind.Write))
            {
                i |= HostInterests.FileOpen | HostInterests.FileOpenCompletion;
            }

            if (k.Files.IsSubscribed(FileOperationKind.Rename) || k.Files.IsSubscribed(FileOperationKind.Delete) || k.Files.IsSubscribed(FileOperationKind.SetInformation))
            {
                i |= HostInterests.PathOperations;
            }

            if (k.Files.IsSubscribed(FileOperationKind.Cleanup))
            {
                i |= HostInterests.FileCleanup;
            }

            if (k.Processes.Create.Count > 0 || k.Processes.ImageLoad.Count > 0)
            {
                i |= HostInterests.ProcessCreation;
            }

            if (k.Processes.ExecResult.Count > 0)
            {
                // The execs, and every process's exit, at which an exec's outcome is known at the latest.
                i |= HostInterests.ProcessCreation | HostInterests.ProcessExits;
            }

            if (k.Processes.ImageLoad.Count > 0)
            {
                i |= HostInterests.ImageMappings;
            }

            if (k.Network.AnyFilters || k.Network.HasFlowCallbacks)
            {
                i |= HostInterests.Network;
            }

            if (k.Objects.Callbacks.Count > 0)
            {
                i |= HostInterests.ProcessAccess | HostInterests.ProcessCreation;
            }

            if (k.Processes.Exit.Count > 0 || k.Processes.ThreadCreate.Count > 0 || k.Processes.ThreadExit.Count > 0
                || k.Processes.Fork.Count > 0)
            {
                i |= HostInterests.ProcessExits;
            }

            return i;
        }
    }

    /// <summary>
    /// What a file-system object is to the kernel: one of its own (its home, the folders on the way to it, a loaded
    /// driver package, its event log), which the host refuses to let a guest change, or nothing of the kernel's.
    /// </summary>
    /// <param name="identity">The object's device and inode.</param>
    /// <returns>Its kind; <see cref="KernelFileKind.None"/> for anything not the kernel's. Allocates nothing.</returns>
    public KernelFileKind KernelFileKindOf(FileIdentity identity)
    {
        KernelFileKind kind = _kernel.KernelFiles.KindOf(identity);

        // A socket the kernel listens on (its control socket) is its state wherever it was bound; a driver's
        // communication port is one guests may connect to.
        return kind != KernelFileKind.None ? kind
            : _kernel.OwnedSockets.Contains(identity) ? KernelFileKind.File
            : _kernel.Ports.Contains(identity) ? KernelFileKind.ClientPort
            : kind;
    }

    /// <summary>True when some network filter is registered at the layer of an operation (others need no request).</summary>
    /// <param name="operation">The operation the host is about to decide.</param>
    /// <param name="ipv6">True for IPv6, false for IPv4.</param>
    /// <returns>True when <see cref="ClassifyNetwork"/> has something to decide about it.</returns>
    public bool IsWatched(NetworkOperation operation, bool ipv6) => _kernel.Network.IsSubscribed(LayerOf(operation, ipv6));

    /// <summary>True when some filter at the layer of an operation tests the image's SHA-256: the host then puts the
    /// digest in <see cref="NetworkRequest.ApplicationHash"/>.</summary>
    /// <param name="operation">The operation the host is about to decide.</param>
    /// <param name="ipv6">True for IPv6, false for IPv4.</param>
    /// <returns>True when the digest is needed.</returns>
    public bool TestsApplicationHash(NetworkOperation operation, bool ipv6) => _kernel.Network.TestsApplicationHash(LayerOf(operation, ipv6));

    /// <summary>True when some driver registered a flow callback: the host then reports flows
    /// (<see cref="FlowEstablished"/>, <see cref="FlowClosed"/>), and performs accepts itself so that it knows them.</summary>
    public bool HasFlowCallbacks => _kernel.Network.HasFlowCallbacks;

    /// <summary>The filter engine's layer of an operation: a send with a destination is classified as a connect.</summary>
    internal static NetworkLayer LayerOf(NetworkOperation operation, bool ipv6) => (operation, ipv6) switch
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

    /// <summary>
    /// The first half of an open (service BeginFileOperation): the minifilters' pre-create callbacks decide before
    /// the host opens anything.
    /// </summary>
    /// <param name="requester">The guest thread that opens.</param>
    /// <param name="request">The open as the guest asked for it.</param>
    /// <param name="completionNeeded">
    /// On success: true when the host must call <see cref="CompleteOpen"/> once the file is open (a filter wants to see
    /// the opened file, or an event line waits for the outcome); false when the open is settled here.
    /// </param>
    /// <returns><see cref="Status.Success"/> to let the open go on; otherwise the verdict that denies it.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public Status BeginOpen(in Requester requester, in OpenRequest request, out bool completionNeeded)
    {
        FileRequest r = t_spareOpen ?? new FileRequest();
        t_spareOpen = null;
        r.Operation = OperationOf(in requester, FileOperationKind.Create, request.RequestedPath) with
        {
            Access = request.Access,
            Disposition = request.Disposition,
            OpenFlags = request.OpenFlags,
        };
        r.HeldFiles = HeldFiles;
        r.UseFacts(request.Facts);
        r.Record = Begin(requester.ProcessId, "open", request.RequestedPath);
        Status s = FileCall(SystemService.BeginFileOperation, in requester, r);
        if (r.HeldPath >= 0 || t_heldFile != 0)
        {
            KeepHeldFile(r, s);
        }

        if (s.IsError)
        {
            End(r.Record, s);
            ReturnSpare(r);
            completionNeeded = false;
            return s;
        }

        if (r.Record is null && !r.WantsPost())
        {
            // No filter asked to see the opened file and no event line waits for the outcome: finish the operation
            // here, and the host skips the completion and what only it needs (the file's identity).
            FileCall(SystemService.CompleteFileOperation, in requester, r);
            ReturnSpare(r);
            completionNeeded = false;
            return Status.Success;
        }

        if (_opens.TryRemove(requester.ThreadId, out FileRequest? stale))
        {
            ReturnSpare(stale);
        }

        _opens[requester.ThreadId] = r;
        completionNeeded = true;
        return Status.Success;
    }

    /// <summary>
    /// The second half of an open (service CompleteFileOperation): the host has opened the file, and the minifilters'
    /// post-create callbacks see what was opened. May be called on another thread than <see cref="BeginOpen"/>.
    /// </summary>
    /// <param name="requester">The guest thread that opens (the same as for <see cref="BeginOpen"/>).</param>
    /// <param name="file">What the host opened; its descriptor stays open until this returns.</param>
    /// <returns>
    /// <see cref="Status.Success"/> to give the guest the file; otherwise the verdict that cancels the open (the host
    /// closes the file). <see cref="Status.Success"/> as well when no open of that thread is pending.
    /// </returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public Status CompleteOpen(in Requester requester, in OpenCompletion file)
    {
        if (!_opens.TryRemove(requester.ThreadId, out FileRequest? r))
        {
            return Status.Success;
        }

        r.Operation = r.Operation with { IsDirectory = file.IsDirectory, FileType = file.Type, CreateResult = file.Result };
        r.Operation.File = file.File;
        r.UseFacts(file.Facts);
        r.Operation.Status = Status.Success;
        r.Descriptor = file.Descriptor;
        r.UseStamp(file.ChangeStamp);
        Status s = FileCall(SystemService.CompleteFileOperation, in requester, r);
        End(r.Record, s);
        ReturnSpare(r);
        return s;
    }

    /// <summary>
    /// The first half of a path operation (service BeginFileOperation): the minifilters' pre callbacks decide before
    /// the host performs it.
    /// </summary>
    /// <param name="requester">The guest thread.</param>
    /// <param name="request">The operation.</param>
    /// <returns>
    /// <see cref="Status.Success"/>: the host performs the operation and then calls <see cref="CompletePathOperation"/>
    /// on this thread. Otherwise the verdict that fails it (nothing to complete).
    /// </returns>
    public Status BeginPathOperation(in Requester requester, in PathOperationRequest request)
    {
        FileRequest r = t_path ??= new FileRequest();
        r.Reset();
        r.Operation = OperationOf(in requester, request.Kind, request.RequestedPath) with
        {
            RequestedNewPath = request.RequestedNewPath,
            IsDirectory = request.IsDirectory,
            Flags = request.Flags,
            InformationClass = request.InformationClass,
            InformationValue = request.InformationValue,
            AttributeName = request.AttributeName,
            Offset = request.Offset,
            Length = request.Length,
            Disposition = request.Kind == FileOperationKind.Create ? CreateDisposition.Create : CreateDisposition.Open,
        };
        r.UseFacts(request.Facts);
        r.Record = Begin(requester.ProcessId, OperationName(in request), request.RequestedPath ?? (request.Facts is not null && _kernel.CurrentRecord is not null ? r.Operation.Path : null));
        Status s = FileCall(SystemService.BeginFileOperation, in requester, r);
        if (s.IsError)
        {
            End(r.Record, s);
            r.Reset();
        }
        else if (r.Facts is not null && r.WantsPost())
        {
            // A post callback sees the object the operation acted on: resolve it now, while the name still names it (after a
            // rename or a delete it names nothing, or something else).
            _ = r.Facts.Identity();
        }

        return s;
    }

    /// <summary>
    /// The second half of a path operation (service CompleteFileOperation): the minifilters' post callbacks see its
    /// outcome. Must be called on the thread that began it, right after the host performed it.
    /// </summary>
    /// <param name="requester">The guest thread (the same as for <see cref="BeginPathOperation"/>).</param>
    /// <param name="result">The outcome of the operation as the host performed it.</param>
    /// <returns>The final status (post callbacks cannot change the outcome of a path operation);
    /// <see cref="Status.InvalidDeviceState"/> when no path operation is pending on this thread.</returns>
    public Status CompletePathOperation(in Requester requester, Status result)
    {
        FileRequest? r = t_path;
        if (r is null || !r.NeedsCompletion)
        {
            return Status.InvalidDeviceState;
        }

        r.Operation.Status = result;
        if (r.Operation.Kind == FileOperationKind.Create && result.IsSuccess)
        {
            // mkdir, mknod, symlink: a name is made or the call fails.
            r.Operation = r.Operation with { CreateResult = CreateResult.Created };
        }

        Status s = FileCall(SystemService.CompleteFileOperation, in requester, r);
        End(r.Record, s);
        r.Reset();
        return s;
    }

    /// <summary>
    /// An exec is about to run a file (services BeginFileOperation and CompleteFileOperation): minifilters see it as a
    /// create with <see cref="FileAccessRights.Execute"/> of the resolved image, before any process-create callback (as
    /// Windows opens an image with FILE_EXECUTE before it creates the process). A pre callback may deny it or hold it; a
    /// post callback may read the image (<c>ReadFile</c>) and cancel it. Call it on the thread that serves the guest.
    /// </summary>
    /// <param name="requester">The guest thread that executes.</param>
    /// <param name="request">The image.</param>
    /// <returns><see cref="Status.Success"/> to let the exec go on; otherwise the verdict that denies it.</returns>
    public Status ExecuteFile(in Requester requester, in ExecuteRequest request)
    {
        FileRequest r = t_spareOpen ?? new FileRequest();
        t_spareOpen = null;
        r.Operation = OperationOf(in requester, FileOperationKind.Create, request.RequestedPath) with
        {
            Path = request.Path,
            File = request.File,
            FileType = request.Type,
            FileSystemType = request.FileSystemType,
            IsDirectory = request.Type == FileObjectType.Directory,
            Access = FileAccessRights.Execute,
            Disposition = CreateDisposition.Open,
        };

        // A held execute is held on the image resolved: the filter reads that file through the handle of the hold.
        r.HeldFiles = new ImageHeldFile(request.Descriptor, request.File);
        r.UseFacts(null);
        r.Record = Begin(requester.ProcessId, "execute", request.Path);
        try
        {
            Status s = FileCall(SystemService.BeginFileOperation, in requester, r);
            if (s.IsSuccess && r.NeedsCompletion)
            {
                r.Operation = r.Operation with { CreateResult = CreateResult.Opened };
                r.Operation.Status = Status.Success;
                r.Descriptor = request.Descriptor;
                s = FileCall(SystemService.CompleteFileOperation, in requester, r);
            }

            End(r.Record, s);
            return s;
        }
        finally
        {
            ReturnSpare(r);
        }
    }

    /// <summary>
    /// The host's part in holding an execute: the image it resolved, named by a duplicate of its descriptor and read
    /// through a description of the kernel's own opened from it.
    /// </summary>
    private sealed class ImageHeldFile(int descriptor, FileIdentity file) : IHeldFileAccess
    {
        public int OpenHeldCreate(out int reader, out FileIdentity identity)
        {
            identity = file;
            int named = Palisade.Interop.Libc.Fcntl(descriptor, Palisade.Interop.Libc.F_DUPFD_CLOEXEC, 0);
            if (named < 0)
            {
                reader = -1;
                return -Palisade.Interop.Libc.LastError;
            }

            reader = Io.InvisibleRead.OpenThrough(descriptor);
            return named;
        }
    }

    /// <summary>
    /// The last close of an open file description that was written through (service CleanupFile): minifilters are
    /// notified, and may read the file through <see cref="CleanupRequest.Reader"/>. May be called from any thread.
    /// </summary>
    /// <param name="requester">The process that released the description (thread id 0 when the host does not know the thread).</param>
    /// <param name="request">The file.</param>
    /// <returns>The status of the notification; the close itself is the guest's and happened, or happens, anyway.</returns>
    public Status CleanupFile(in Requester requester, in CleanupRequest request)
    {
        CleanupReader reader = t_cleanupReader ??= new CleanupReader();
        reader.Descriptor = request.Reader;
        try
        {
            ref ServiceFrame f = ref Frame(in requester);
            f.Descriptor = request.Descriptor;
            f.File = OperationOf(in requester, FileOperationKind.Cleanup, request.Path) with
            {
                Path = request.Path,
                File = request.File,
                ChangeStamp = Palisade.Interop.ChangeStamps.Of(request.Reader),
                FileType = request.Type,
                FileSystemType = request.FileSystemType,
            };
            f.FilePerformer = reader;
            OperationRecord? record = Begin(requester.ProcessId, "cleanup", request.Path);
            Status s = _kernel.SystemCall(SystemService.CleanupFile, ref f);
            End(record, s);
            return s;
        }
        finally
        {
            reader.Descriptor = -1;
        }
    }

    /// <summary>This thread's performer of cleanups (a notification whose file a callback may read).</summary>
    [ThreadStatic]
    private static CleanupReader? t_cleanupReader;

    /// <summary>
    /// An image is about to run in the requester's process (service CreateProcess): process-create callbacks may deny
    /// it; then image-load callbacks are notified and the kernel's process takes the image.
    /// </summary>
    /// <param name="requester">The guest thread that executes the image.</param>
    /// <param name="request">The image.</param>
    /// <returns><see cref="Status.Success"/> to let it run; otherwise the verdict that denies it.</returns>
    public Status CreateProcess(in Requester requester, in ProcessImageRequest request)
    {
        ref ServiceFrame f = ref Frame(in requester);
        f.Create = new ProcessCreateInfo
        {
            ProcessId = requester.ProcessId,
            ParentProcessId = request.ParentProcessId,
            CreatorProcessId = requester.ProcessId,
            CreatorThreadId = requester.ThreadId,
            ImagePath = request.ImagePath,
            CommandLine = request.CommandLine ?? CommandLineOf(request.Arguments, request.ImagePath),
            Arguments = request.Arguments ?? [],
            EnvironmentVariables = request.EnvironmentVariables ?? [],
            WorkingDirectory = request.WorkingDirectory,
            UserId = request.Credentials?.RealUserId ?? requester.UserId,
            Credentials = request.Credentials,
            File = request.Image,
        };
        f.Images = request.Images;
        OperationRecord? record = Begin(requester.ProcessId, "exec", request.ImagePath);
        Status s = _kernel.SystemCall(SystemService.CreateProcess, ref f);
        End(record, s);
        return s;
    }

    /// <summary>The command line a process-create notification shows: the arguments joined with single spaces, or the
    /// image path when there are none.</summary>
    public static string CommandLineOf(IReadOnlyList<string>? arguments, string imagePath) =>
        arguments is null || arguments.Count == 0 ? imagePath : string.Join(' ', arguments);

    /// <summary>
    /// An exec of the requester's process ended (service ExecResult): exec-result callbacks are told, keyed by the
    /// process's start key. Report each exec once: when the kernel or a callback failed it, or when Linux was seen to
    /// perform or fail it.
    /// </summary>
    /// <param name="requester">The thread that called exec.</param>
    /// <param name="outcome">How it ended.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a requester without a process.</returns>
    public Status ExecCompleted(in Requester requester, in ExecOutcomeRequest outcome)
    {
        ref ServiceFrame f = ref Frame(in requester);
        f.ExecResult = new ExecResultInfo
        {
            ProcessId = requester.ProcessId,
            ThreadId = requester.ThreadId,
            ImagePath = outcome.ImagePath,
            File = outcome.Image,
            Succeeded = outcome.Succeeded,
            Errno = outcome.Succeeded ? 0 : outcome.Errno,
        };
        return _kernel.SystemCall(SystemService.ExecResult, ref f);
    }

    /// <summary>
    /// A process is about to map a file executable (service LoadImage): image-load callbacks decide, with
    /// <see cref="ImageLoadKind.Mapping"/>.
    /// </summary>
    /// <param name="requester">The guest thread that maps it.</param>
    /// <param name="request">The file.</param>
    /// <returns><see cref="Status.Success"/> to let the mapping be made; otherwise the verdict that denies it.</returns>
    public Status LoadImage(in Requester requester, in ImageMappingRequest request)
    {
        ref ServiceFrame f = ref Frame(in requester);
        f.Image = new ImageLoadInfo
        {
            ProcessId = requester.ProcessId,
            ImagePath = request.ImagePath,
            File = request.Image,
            Kind = ImageLoadKind.Mapping,
            FileType = request.FileType,
        };
        OperationRecord? record = Begin(requester.ProcessId, "image-load", request.ImagePath);
        Status s = _kernel.SystemCall(SystemService.LoadImage, ref f);
        End(record, s);
        return s;
    }

    private IProcessControl[] _controls = [];
    private readonly Lock _controlsLock = new();

    /// <summary>
    /// Adds a host's process control: the drivers' <see cref="IProcessCallbacks.TerminateProcess"/>,
    /// <see cref="IProcessCallbacks.SuspendProcess"/> and <see cref="IProcessCallbacks.ResumeProcess"/> act through it on
    /// the processes it holds. It stays for the kernel's life; one that no longer holds a process answers ENOENT for it.
    /// </summary>
    /// <param name="control">The host's control. Must not be null.</param>
    public void AddProcessControl(IProcessControl control)
    {
        ArgumentNullException.ThrowIfNull(control);
        lock (_controlsLock)
        {
            _controls = [.. _controls, control];
        }
    }

    /// <summary>
    /// Sends <paramref name="signal"/> to the guest process whose start key is <paramref name="startKey"/>, through the
    /// host that holds its process object. The statuses of <see cref="IProcessCallbacks.TerminateProcess"/>.
    /// </summary>
    internal Status SignalProcess(long startKey, int signal)
    {
        if (startKey <= 0)
        {
            return Status.InvalidParameter;
        }

        Processes.GuestProcess? p = _kernel.ProcessTable.FindByStartKey(startKey);
        if (p is null)
        {
            return Status.NotFound;
        }

        if (p.Attached)
        {
            // Not a guest: a process the kernel entered only to decide another's access to it.
            return Status.AccessDenied;
        }

        foreach (IProcessControl control in Volatile.Read(ref _controls))
        {
            int error = control.SendSignal(p.ProcessId, signal);
            if (error != Palisade.Interop.Errno.ENOENT)
            {
                return error switch
                {
                    0 => Status.Success,
                    Palisade.Interop.Errno.ESRCH => Status.NotFound,
                    Palisade.Interop.Errno.EPERM => Status.AccessDenied,
                    _ => StatusErrno.StatusOf(error),
                };
            }
        }

        return Status.NotSupported;
    }

    /// <summary>True when the kernel's process table holds <paramref name="processId"/>.</summary>
    /// <param name="processId">A guest process id.</param>
    /// <returns>True for a process the kernel knows and has not seen end.</returns>
    public bool IsKnownProcess(int processId) => _kernel.ProcessTable.Find(processId) is not null;

    /// <summary>
    /// Enters a process the kernel did not see start (service AttachProcess), such as the target of a process access
    /// that started before the guest tree, so that object callbacks can decide about it. No callback is notified.
    /// </summary>
    /// <param name="processId">The process.</param>
    /// <param name="parentProcessId">Its parent, 0 when unknown.</param>
    /// <param name="userId">The user it runs as.</param>
    /// <param name="imagePath">The canonical path of its image, empty when unknown.</param>
    /// <returns><see cref="Status.Success"/> when it was entered; <see cref="Status.ObjectNameCollision"/> when the kernel already knew it.</returns>
    public Status AttachProcess(int processId, int parentProcessId, int userId, string imagePath)
    {
        var requester = new Requester(0, 0) { UserId = userId };
        ref ServiceFrame f = ref Frame(in requester);
        f.TargetProcessId = processId;
        f.ParentProcessId = parentProcessId;
        f.ImagePath = imagePath;
        return _kernel.SystemCall(SystemService.AttachProcess, ref f);
    }

    /// <summary>
    /// A guest process asks for access to another process (service OpenProcess): object callbacks may strip rights.
    /// </summary>
    /// <param name="requester">The guest thread that asks.</param>
    /// <param name="targetProcessId">The process it aims at (the kernel must know it: see <see cref="AttachProcess"/>).</param>
    /// <param name="access">The rights the operation needs.</param>
    /// <param name="kind">The guest system call that asks (object callbacks are told).</param>
    /// <param name="signal">For a signal, its number; otherwise 0.</param>
    /// <returns><see cref="Status.Success"/> when every right was granted; <see cref="Status.AccessDenied"/> when a callback
    /// stripped one; <see cref="Status.InvalidParameter"/> for a process the kernel does not know.</returns>
    public Status OpenProcess(in Requester requester, int targetProcessId, ProcessAccessRights access,
        ObjectAccessKind kind = ObjectAccessKind.Unspecified, int signal = 0)
    {
        ref ServiceFrame f = ref Frame(in requester);
        f.UserId = 0;
        f.TargetProcessId = targetProcessId;
        f.DesiredAccess = access;
        f.AccessKind = kind;
        f.Signal = signal;
        OperationRecord? record = Begin(requester.ProcessId, "process-access",
            _kernel.Events.Enabled ? targetProcessId.ToString(CultureInfo.InvariantCulture) + " " + access : null);
        Status s = _kernel.SystemCall(SystemService.OpenProcess, ref f);
        End(record, s);
        return s;
    }

    /// <summary>
    /// A process the host has not reported yet makes its first request (service ForkProcess, then CreateThread when the
    /// requester is not the process's first thread): thread-create callbacks are notified.
    /// </summary>
    /// <param name="requester">The new process's thread.</param>
    /// <param name="parentProcessId">Its parent.</param>
    /// <param name="imagePath">Its image when the kernel cannot take it from a parent it knows, else null.</param>
    /// <returns>The status of the fork service.</returns>
    public Status ProcessStarted(in Requester requester, int parentProcessId, string? imagePath)
    {
        ref ServiceFrame f = ref Frame(in requester);
        f.ProcessId = parentProcessId;
        f.ThreadId = 0;
        f.TargetProcessId = requester.ProcessId;
        f.ImagePath = imagePath;
        Status s = _kernel.SystemCall(SystemService.ForkProcess, ref f);
        if (requester.ThreadId != requester.ProcessId)
        {
            ThreadStarted(in requester);
        }

        return s;
    }

    /// <summary>A new thread of a known process makes its first request (service CreateThread).</summary>
    /// <param name="requester">The new thread.</param>
    /// <returns>The status of the service.</returns>
    public Status ThreadStarted(in Requester requester)
    {
        ref ServiceFrame f = ref Frame(in requester);
        f.UserId = 0;
        f.ThreadId = 0;
        f.TargetProcessId = requester.ProcessId;
        f.TargetThreadId = requester.ThreadId;
        return _kernel.SystemCall(SystemService.CreateThread, ref f);
    }

    /// <summary>A thread ends while its process goes on (service ExitThread): thread-exit callbacks are notified.</summary>
    /// <param name="requester">The thread that ends.</param>
    /// <param name="exitCode">Its exit code.</param>
    /// <returns><see cref="Status.InvalidHandle"/> for a thread the kernel did not know.</returns>
    public Status ThreadExited(in Requester requester, int exitCode)
    {
        ref ServiceFrame f = ref Frame(in requester);
        f.UserId = 0;
        f.ThreadId = 0;
        f.TargetProcessId = requester.ProcessId;
        f.TargetThreadId = requester.ThreadId;
        f.ExitCode = exitCode;
        return _kernel.SystemCall(SystemService.ExitThread, ref f);
    }

    /// <summary>
    /// A process ended, however it ended (service ExitProcess): it leaves the process table, and thread-exit and
    /// process-exit callbacks are notified. Report each end once.
    /// </summary>
    /// <param name="processId">The process.</param>
    /// <param name="exitCode">Its exit code (0 when a signal ended it).</param>
    /// <param name="signal">The signal that ended it, or 0.</param>
    /// <returns><see cref="Status.InvalidHandle"/> for a process the kernel did not know.</returns>
    public Status ProcessExited(int processId, int exitCode, int signal)
    {
        var requester = new Requester(processId, 0);
        ref ServiceFrame f = ref Frame(in requester);
        f.TargetProcessId = processId;
        f.TargetThreadId = processId;
        f.ExitCode = exitCode;
        f.Signal = signal;
        Status s = _kernel.SystemCall(SystemService.ExitProcess, ref f);
        OperationRecord? record = s.IsSuccess ? _kernel.CurrentRecord : null;
        if (record is not null)
        {
            // The exit service has no callbacks that decide, so the line is written after it, for processes it knew.
            record.Begin(processId, "exit");
            record.Argument("code", exitCode.ToString(CultureInfo.InvariantCulture));
            record.Argument("signal", signal.ToString(CultureInfo.InvariantCulture));
            End(record, s);
        }

        return s;
    }

    /// <summary>A network operation (service NetworkClassify): the network filter engine classifies it.</summary>
    /// <param name="requester">The guest thread.</param>
    /// <param name="request">The operation.</param>
    /// <returns><see cref="Status.Success"/> to permit it; <see cref="Status.NetworkAccessDenied"/> when a filter blocks it.</returns>
    public Status ClassifyNetwork(in Requester requester, in NetworkRequest request) =>
        ClassifyNetwork(in requester, in request, out _, out _);

    /// <summary>A network operation, as <see cref="ClassifyNetwork(in Requester, in NetworkRequest)"/>, telling which
    /// filter decided (for the flow the operation may establish).</summary>
    /// <param name="requester">The guest thread.</param>
    /// <param name="request">The operation.</param>
    /// <param name="decidingFilter">The name of the filter that decided, or null when none did.</param>
    /// <param name="decidingDriver">Its driver, or null.</param>
    /// <returns><see cref="Status.Success"/> to permit it; <see cref="Status.NetworkAccessDenied"/> when a filter blocks it.</returns>
    public Status ClassifyNetwork(in Requester requester, in NetworkRequest request, out string? decidingFilter, out string? decidingDriver)
    {
        ref ServiceFrame f = ref Frame(in requester);
        f.UserId = 0;
        f.Network = ContextOf(in requester, in request);
        string? target = _kernel.Events.Enabled
            ? request.RemoteAddress is { } remote ? remote + ":" + request.RemotePort : request.LocalAddress + ":" + request.LocalPort
            : null;
        OperationRecord? record = Begin(requester.ProcessId, OperationName(request.Operation), target);
        Status s = _kernel.SystemCall(SystemService.NetworkClassify, ref f);
        decidingFilter = f.DecidingFilter;
        decidingDriver = f.DecidingDriver;
        End(record, s);
        return s;
    }

    /// <summary>
    /// A flow the guest established (a connect that succeeded, an accept the filters permitted): gives it an id and tells
    /// the flow callbacks. <paramref name="request"/> holds the connected socket's addresses.
    /// </summary>
    /// <param name="requester">The guest thread.</param>
    /// <param name="request">The connect or accept, with the socket's local and remote ends.</param>
    /// <param name="decidingFilter">The filter that permitted it (from <see cref="ClassifyNetwork(in Requester, in NetworkRequest, out string?, out string?)"/>), or null.</param>
    /// <param name="decidingDriver">Its driver, or null.</param>
    /// <returns>The notification sent, for <see cref="FlowClosed"/>.</returns>
    public NetworkFlowInfo FlowEstablished(in Requester requester, in NetworkRequest request, string? decidingFilter, string? decidingDriver)
    {
        var flow = new NetworkFlowInfo
        {
            Event = NetworkFlowEvent.Established,
            FlowId = _kernel.Network.NewFlowId(),
            Classify = ContextOf(in requester, in request),
            DecidingFilter = decidingFilter,
            DecidingDriver = decidingDriver,
        };
        _kernel.Network.NotifyFlow(in flow);
        if (_kernel.Events.Enabled)
        {
            _kernel.Events.WriteKernel("flow-established", FlowLine(in flow));
        }

        return flow;
    }

    /// <summary>The end of a flow <see cref="FlowEstablished"/> reported: the flow callbacks are told.</summary>
    /// <param name="established">What <see cref="FlowEstablished"/> returned.</param>
    public void FlowClosed(in NetworkFlowInfo established)
    {
        NetworkFlowInfo closed = established with { Event = NetworkFlowEvent.Closed };
        _kernel.Network.NotifyFlow(in closed);
        if (_kernel.Events.Enabled)
        {
            _kernel.Events.WriteKernel("flow-closed", FlowLine(in closed));
        }
    }

    private static string FlowLine(in NetworkFlowInfo flow) => string.Create(CultureInfo.InvariantCulture,
        $"flow {flow.FlowId} pid {flow.Classify.ProcessId} {flow.Classify.LocalAddress}:{flow.Classify.LocalPort} -> {flow.Classify.RemoteAddress}:{flow.Classify.RemotePort} by {flow.DecidingFilter ?? "no filter"}");

    private NetworkClassifyContext ContextOf(in Requester requester, in NetworkRequest request) => new()
    {
        Layer = LayerOf(request.Operation, request.IsIPv6),
        Protocol = request.Protocol,
        LocalAddress = request.LocalAddress,
        LocalPort = request.LocalPort,
        RemoteAddress = request.RemoteAddress,
        RemotePort = request.RemotePort,
        ProcessId = requester.ProcessId,
        ProcessStartKey = _kernel.ProcessTable.StartKeyOf(requester.ProcessId),
        ApplicationPath = request.ApplicationPath,
        ApplicationFile = request.ApplicationFile,
        ApplicationHash = request.ApplicationHash,
        Arguments = request.Arguments,
        UserId = requester.UserId,
    };

    /// <summary>
    /// The event sink for the host's own faults (a decision that threw, a request it could not decode): the kernel
    /// writes them to its event stream beside the drivers' faults.
    /// </summary>
    /// <param name="message">What went wrong, in one line.</param>
    public void ReportFault(string message) => _kernel.Events.WriteKernel("host-fault", message ?? "");

    private static string OperationName(NetworkOperation operation) => operation switch
    {
        NetworkOperation.Connect => "connect",
        NetworkOperation.Bind => "bind",
        NetworkOperation.Listen => "listen",
        NetworkOperation.Accept => "accept",
        _ => "send",
    };

    /// <summary>
    /// A file operation of <paramref name="kind"/> on <paramref name="requestedPath"/> (as the guest spelled it), on behalf
    /// of <paramref name="requester"/>. The resolved path comes from the operation's facts.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static FileOperation OperationOf(in Requester requester, FileOperationKind kind, string? requestedPath) => new()
    {
        Kind = kind,
        RequesterProcessId = requester.ProcessId,
        RequesterThreadId = requester.ThreadId,
        UserId = requester.UserId,
        RequestedPath = requestedPath,
    };

    /// <summary>The event name of a path operation: the kind, or for a change of information what it changes.</summary>
    private static string OperationName(in PathOperationRequest request) => request.Kind switch
    {
        FileOperationKind.Rename => "rename",
        FileOperationKind.Delete => "delete",
        FileOperationKind.Create => "create",
        _ => request.InformationClass switch
        {
            FileInformationClass.Link => "link",
            _ => "setinformation",
        },
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Status FileCall(SystemService half, in Requester requester, FileRequest r)
    {
        ref ServiceFrame f = ref t_frame;
        f = default;
        f.ProcessId = requester.ProcessId;
        f.ThreadId = requester.ThreadId;
        f.UserId = requester.UserId;
        f.FileRequest = r;
        Callbacks.HoldTable.EnterCall(requester.CallId);
        Status s = _kernel.SystemCall(half, ref f);
        f.FileRequest = null;
        return s;
    }

    private static ref ServiceFrame Frame(in Requester requester)
    {
        ref ServiceFrame f = ref t_frame;
        f = default;
        f.ProcessId = requester.ProcessId;
        f.ThreadId = requester.ThreadId;
        f.UserId = requester.UserId;
        Callbacks.HoldTable.EnterCall(requester.CallId);
        return ref f;
    }

    /// <summary>
    /// A create was held on a file: when it goes on, the descriptor that names the file passes to the host
    /// (<see cref="TakeHeldFile"/>); one the host did not take from an earlier open is closed.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void KeepHeldFile(FileRequest r, Status s)
    {
        if (t_heldFile != 0)
        {
            Palisade.Interop.Libc.CloseOwned(t_heldFile - 1);
            t_heldFile = 0;
        }

        if (s.IsSuccess && r.HeldPath >= 0)
        {
            t_heldFile = r.HeldPath + 1;
            r.HeldPath = -1;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReturnSpare(FileRequest r)
    {
        r.Reset();
        t_spareOpen = r;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private OperationRecord? Begin(int processId, string operation, string? argument)
    {
        OperationRecord? record = _kernel.CurrentRecord;
        if (record is not null)
        {
            record.Begin(processId, operation);
            record.Argument("path", argument);
        }

        return record;
    }

    private void End(OperationRecord? record, Status result)
    {
        if (record is not null)
        {
            record.Result = result;
            _kernel.Events.WriteOperation(record);
        }
    }

    /// <summary>
    /// For cleanup, a notification (the guest performs the close itself) whose file a callback reads through the host's
    /// read-only descriptor, with pread (no offset of anyone's moves).
    /// </summary>
    private sealed class CleanupReader : Io.IFileSystemPerformer
    {
        public int Descriptor = -1;

        public Status Perform(ref FileOperation operation) => Status.Success;

        public void CancelCreate(ref FileOperation operation)
        {
        }

        public Status QueryOpened(Processes.ProcessTable guests, out FileState state) => Io.FileStateQuery.Of(Descriptor, guests, out state);

        public Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead)
        {
            bytesRead = 0;
            if (Descriptor < 0)
            {
                return Status.AccessDenied;
            }

            int errno = Palisade.Interop.Libc.PRead(Descriptor, buffer, offset, out bytesRead);
            return errno == 0 ? Status.Success : Status.Unsuccessful;
        }
    }
}
