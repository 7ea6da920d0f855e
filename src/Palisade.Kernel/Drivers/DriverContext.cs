using Palisade.Api;
using Palisade.Kernel.Callbacks;

namespace Palisade.Kernel.Drivers;

/// <summary>
/// The kernel's implementation of <see cref="IDriverContext"/> for one driver. Every registration made through it is
/// owned by the driver, so that it can be removed when the driver unloads. After unload the context refuses
/// every call with <see cref="Status.InvalidDeviceState"/>.
/// </summary>
internal sealed class DriverContext : IDriverContext
{
    /// <summary>Fault subscriptions a driver may hold.</summary>
    public const int FaultCallbackLimit = 8;

    private readonly PalisadeKernel _kernel;
    private readonly Events.EventChannel? _events;
    private readonly DriverWorkQueue _work;
    private readonly Lock _faultLock = new();
    private FaultSubscription[] _faultCallbacks = [];
    private volatile bool _valid = true;
    private volatile bool _unloading;
    private volatile bool _started;
    private volatile IReadOnlyDictionary<string, string> _parameters;
    private int _checkRequested;
    private int _checkRunning;
    private int _changedBeforeStart;

    /// <summary>Makes the context of a driver.</summary>
    /// <param name="kernel">The kernel.</param>
    /// <param name="driver">The driver.</param>
    /// <param name="parameters">Its effective parameters at load (the registry's, with the overrides over them).</param>
    /// <param name="overrides">The <c>--param</c> overrides, which keep winning over the registry; null when
    /// <paramref name="parameters"/> are all overrides.</param>
    public DriverContext(PalisadeKernel kernel, DriverObject driver, IReadOnlyDictionary<string, string> parameters, IReadOnlyDictionary<string, string>? overrides = null)
    {
        _kernel = kernel;
        _work = new DriverWorkQueue(driver.Name, kernel.Events);
        Driver = driver;
        _parameters = parameters;
        Overrides = overrides ?? parameters;
        _events = kernel.Events.OpenChannel(driver.Name);
        Processes = new ProcessFacade(this);
        Objects = new ObjectFacade(this);
        Registry = new RegistryFacade(this);
        Files = new FilesFacade(this);
        Network = new NetworkFacade(this);
        SecurityCenter = new SecurityCenterFacade(this);
        Ports = new Ports.PortFacade(this);
    }

    public DriverObject Driver { get; }

    public string DriverName => Driver.Name;

    public Version ApiVersion => PalisadeKernel.ApiVersion;

    public IReadOnlyDictionary<string, string> Parameters => _parameters;

    /// <summary>The <c>--param</c> overrides the driver was loaded with.</summary>
    public IReadOnlyDictionary<string, string> Overrides { get; }

    public IProcessCallbacks Processes { get; }

    public IObjectCallbacks Objects { get; }

    public IRegistryCallbacks Registry { get; }

    public IFilterManager Files { get; }

    public INetworkFilterEngine Network { get; }

    public ISecurityCenter SecurityCenter { get; }

    public IPortManager Ports { get; }

    internal PalisadeKernel Kernel => _kernel;

    internal bool Valid => _valid;

    internal void Invalidate()
    {
        _valid = false;
        _unloading = true;
        _work.Stop();
    }

    /// <summary>The driver is about to unload: from now on the kernel tells it of nothing (holds cancelled, faults).</summary>
    internal void BeginUnload() => _unloading = true;

    /// <summary>The driver's worker threads (for tests).</summary>
    internal DriverWorkQueue WorkQueue => _work;

    public Status SetCallbackOptions(CallbackCookie registration, CallbackOptions options)
    {
        if (!_valid)
        {
            return Status.InvalidDeviceState;
        }

        Registration? r = _kernel.FindCallbackRegistration(registration, Driver);
        if (r is null)
        {
            return Status.InvalidHandle;
        }

        Status s = RegistrationPolicy.Validate(options, r.CanPend);
        if (s.IsSuccess)
        {
            r.SetPolicy(new RegistrationPolicy(options));
        }

        return s;
    }

    public Status EnableRegistration(CallbackCookie registration) => SetEnabled(registration, enabled: true);

    public Status DisableRegistration(CallbackCookie registration) => SetEnabled(registration, enabled: false);

    private Status SetEnabled(CallbackCookie registration, bool enabled)
    {
        if (!_valid)
        {
            return Status.InvalidDeviceState;
        }

        Registration? r = _kernel.FindCallbackRegistration(registration, Driver);
        if (r is null)
        {
            return Status.InvalidHandle;
        }

        if (enabled)
        {
            r.Enable();
        }
        else
        {
            r.Disable();
        }

        return Status.Success;
    }

    public Status RegisterFaultCallback(RegistrationFaultCallback callback, out CallbackCookie cookie)
    {
        cookie = default;
        if (!_valid)
        {
            return Status.InvalidDeviceState;
        }

        if (callback is null)
        {
            return Status.InvalidParameter;
        }

        lock (_faultLock)
        {
            if (_faultCallbacks.Length >= FaultCallbackLimit)
            {
                return Status.TooManyRegistrations;
            }

            var subscription = new FaultSubscription(Driver, callback);
            _faultCallbacks = [.. _faultCallbacks, subscription];
            cookie = subscription.Cookie;
            return Status.Success;
        }
    }

    public Status UnregisterFaultCallback(CallbackCookie cookie)
    {
        FaultSubscription removed;
        lock (_faultLock)
        {
            FaultSubscription[] all = _faultCallbacks;
            int at = Array.FindIndex(all, f => f.Cookie == cookie);
            if (at < 0)
            {
                return Status.InvalidHandle;
            }

            removed = all[at];
            _faultCallbacks = [.. all[..at], .. all[(at + 1)..]];
        }

        // A delivery already queued does not call it any more; one in progress is waited for, unless it is the caller.
        removed.WaitForRundown(ReferenceEquals(t_delivering, removed) ? 1 : 0);
        return Status.Success;
    }

    /// <summary>The live fault subscription named by <paramref name="cookie"/>, or null (diagnostics and tests).</summary>
    internal Registration? FindFaultSubscription(CallbackCookie cookie) =>
        Array.Find(Volatile.Read(ref _faultCallbacks), f => f.Cookie == cookie);

    /// <summary>The fault subscription whose callback the calling worker thread is running, if any.</summary>
    [ThreadStatic]
    private static FaultSubscription? t_delivering;

    public Status QueueWorkItem(WorkItemCallback callback, object? state)
    {
        if (!_valid)
        {
            return Status.InvalidDeviceState;
        }

        return callback is null ? Status.InvalidParameter : _work.Queue(callback, state);
    }

    /// <summary>Tells the driver's fault callbacks of <paramref name="fault"/>, each on one of its worker threads.</summary>
    internal void NotifyFault(in RegistrationFaultInfo fault)
    {
        if (_unloading)
        {
            return;
        }

        foreach (FaultSubscription f in Volatile.Read(ref _faultCallbacks))
        {
            _work.Queue(static state => ((FaultNotification)state!).Deliver(), new FaultNotification(f, fault));
        }
    }

    /// <summary>Tells the driver, on one of its worker threads, that the kernel ended its hold <paramref name="held"/>.</summary>
    internal void NotifyCancelled(PendedOperationCancelCallback callback, HeldOperation held)
    {
        if (_unloading)
        {
            return;
        }

        _work.Queue(static state => ((CancelNotification)state!).Deliver(), new CancelNotification(callback, held));
    }

    private sealed class FaultSubscription(DriverObject owner, RegistrationFaultCallback callback) : Registration(owner, 0, null)
    {
        public RegistrationFaultCallback Callback { get; } = callback;

        public override Delegate? PrimaryCallback => Callback;

        public override bool HasCallbacks => false;

        public override string Describe() => "fault callback";
    }

    private sealed class FaultNotification(FaultSubscription subscription, RegistrationFaultInfo fault)
    {
        /// <summary>Calls the subscription's callback unless it was unregistered since the fault was queued.</summary>
        public void Deliver()
        {
            if (!subscription.TryAcquireRundown())
            {
                return;
            }

            FaultSubscription? outer = t_delivering;
            t_delivering = subscription;
            try
            {
                subscription.Callback(in fault);
            }
            finally
            {
                t_delivering = outer;
                subscription.ReleaseRundown();
            }
        }
    }

    private sealed class CancelNotification(PendedOperationCancelCallback callback, HeldOperation held)
    {
        public void Deliver() => callback(held);
    }

    /// <summary>True from the moment the driver's Load returned success until its Unload begins: parameter
    /// notifications may start only then.</summary>
    internal bool Started => _started;

    internal void MarkStarted() => _started = true;

    internal void MarkStopping() => _started = false;

    /// <summary>Records that the registry changed under the driver's key before it was started (during its Load).</summary>
    internal void NoteChangeBeforeStart() => Volatile.Write(ref _changedBeforeStart, 1);

    /// <summary>True once after <see cref="NoteChangeBeforeStart"/>: the parameters must be checked now.</summary>
    internal bool TakeChangeBeforeStart() => Interlocked.Exchange(ref _changedBeforeStart, 0) == 1;

    /// <summary>Publishes new effective parameters (before the driver's callbacks are told).</summary>
    internal void ReplaceParameters(IReadOnlyDictionary<string, string> parameters) => _parameters = parameters;

    /// <summary>Asks for a parameter check; true when the caller must schedule one (none is running).</summary>
    internal bool RequestParameterCheck()
    {
        Volatile.Write(ref _checkRequested, 1);
        return Interlocked.CompareExchange(ref _checkRunning, 1, 0) == 0;
    }

    /// <summary>The running check takes the request it serves.</summary>
    internal void TakeParameterRequest() => Interlocked.Exchange(ref _checkRequested, 0);

    /// <summary>The running check ends; true when a request came meanwhile and the same check must run again.</summary>
    internal bool ParameterCheckDone()
    {
        Interlocked.Exchange(ref _checkRunning, 0);
        return Volatile.Read(ref _checkRequested) == 1 && Interlocked.CompareExchange(ref _checkRunning, 1, 0) == 0;
    }

    public Status RegisterParametersChanged(ParametersChangedCallback callback, out CallbackCookie cookie)
    {
        cookie = default;
        return _valid ? _kernel.ParameterCallbacks.Register(Driver, callback, out cookie) : Status.InvalidDeviceState;
    }

    public Status UnregisterParametersChanged(CallbackCookie cookie) => _kernel.ParameterCallbacks.Callbacks.Remove(cookie, Driver);

    public Status ReportEvent(string kind, string message, int processId, string? path)
    {
        if (!_valid)
        {
            return Status.InvalidDeviceState;
        }

        if (string.IsNullOrEmpty(kind) || kind.Length > 64 || message is null || message.Length > 4096 || processId < 0)
        {
            return Status.InvalidParameter;
        }

        return _kernel.Events.WriteDriverEvent(_events, Driver.Name, kind, message, processId, path) ? Status.Success : Status.InsufficientResources;
    }

    /// <summary>
    /// The kernel's record of a handle this driver passed back: <see cref="Status.InvalidParameter"/> for null or a handle of
    /// another kind, <see cref="Status.InvalidHandle"/> for one that is not this driver's (or not the kernel's at all).
    /// </summary>
    private Status Held(IPendedOperation? operation, PendedOperationKind kind, out HeldOperation? held)
    {
        held = operation as HeldOperation;
        if (operation is null)
        {
            return Status.InvalidParameter;
        }

        if (held is null || !ReferenceEquals(held.Owner.Owner, Driver))
        {
            held = null;
            return Status.InvalidHandle;
        }

        return held.Kind == kind ? Status.Success : Status.InvalidParameter;
    }

    private static Status Add<TDelegate>(DriverContext c, CallbackTable<CallbackRegistration<TDelegate>> table, TDelegate? callback, out CallbackCookie cookie)
        where TDelegate : Delegate
    {
        cookie = default;
        if (!c._valid)
        {
            return Status.InvalidDeviceState;
        }

        if (callback is null)
        {
            return Status.InvalidParameter;
        }

        var r = new CallbackRegistration<TDelegate>(c.Driver, callback);
        Status s = table.Add(r);
        if (s.IsSuccess)
        {
            cookie = r.Cookie;
        }

        return s;
    }

    private sealed class ProcessFacade(DriverContext c) : IProcessCallbacks
    {
        public Status RegisterProcessCreate(ProcessCreateCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.Create, callback, out cookie);

        public Status RegisterProcessExit(ProcessExitCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.Exit, callback, out cookie);

        public Status RegisterThreadCreate(ThreadCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.ThreadCreate, callback, out cookie);

        public Status RegisterThreadExit(ThreadCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.ThreadExit, callback, out cookie);

        public Status RegisterImageLoad(ImageLoadCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.ImageLoad, callback, out cookie);

        public Status RegisterProcessFork(ProcessForkCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.Fork, callback, out cookie);

        public Status RegisterExecResult(ExecResultCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.ExecResult, callback, out cookie);

        public Status PendCreate(in ProcessCreateInfo info, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended)
        {
            pended = null;
            if (!c._valid)
            {
                return Status.InvalidDeviceState;
            }

            Status s = c._kernel.Holds.Pend(c._kernel.Monitor.Current.Top, c.Driver, PendedOperationKind.ProcessCreate, info.ImagePath,
                cancelCallback, out HeldOperation? held);
            pended = held;
            return s;
        }

        public Status CompletePendedCreate(IPendedOperation operation, Status verdict)
        {
            Status s = c.Held(operation, PendedOperationKind.ProcessCreate, out HeldOperation? held);
            if (s.IsError)
            {
                return s;
            }

            return verdict == Status.Pending ? Status.InvalidParameter : held!.CompleteCreate(c.Driver, verdict);
        }

        public Status TerminateProcess(long processStartKey) => Signal(processStartKey, 9);

        public Status SuspendProcess(long processStartKey) => Signal(processStartKey, 19);

        public Status ResumeProcess(long processStartKey) => Signal(processStartKey, 18);

        private Status Signal(long processStartKey, int signal) =>
            c._valid ? c._kernel.Host.SignalProcess(processStartKey, signal) : Status.InvalidDeviceState;

        public Status Unregister(CallbackCookie cookie)
        {
            var p = c._kernel.Processes;
            DriverObject d = c.Driver;
            Status s = p.Create.Remove(cookie, d);
            if (s.IsSuccess)
            {
                return s;
            }

            s = p.Exit.Remove(cookie, d);
            if (s.IsSuccess)
            {
                return s;
            }

            s = p.ThreadCreate.Remove(cookie, d);
            if (s.IsSuccess)
            {
                return s;
            }

            s = p.ThreadExit.Remove(cookie, d);
            if (s.IsSuccess)
            {
                return s;
            }

            s = p.ImageLoad.Remove(cookie, d);
            if (s.IsSuccess)
            {
                return s;
            }

            s = p.Fork.Remove(cookie, d);
            return s.IsSuccess ? s : p.ExecResult.Remove(cookie, d);
        }
    }

    private sealed class ObjectFacade(DriverContext c) : IObjectCallbacks
    {
        public Status Register(ObjectCallbackRegistration registration, out CallbackCookie cookie)
        {
            cookie = default;
            if (!c._valid)
            {
                return Status.InvalidDeviceState;
            }

            if (registration is null || (registration.PreOperation is null && registration.PostOperation is null)
                || (registration.ObjectTypes & (ObjectTypes.Process | ObjectTypes.Thread)) == 0
                || (registration.ObjectTypes & ~(ObjectTypes.Process | ObjectTypes.Thread)) != 0
                || (registration.Operations & (HandleOperations.Create | HandleOperations.Duplicate)) == 0
                || (registration.Operations & ~(HandleOperations.Create | HandleOperations.Duplicate)) != 0)
            {
                return Status.InvalidParameter;
            }

            if (!Altitude.TryParse(registration.Altitude, out decimal altitude))
            {
                return Status.InvalidAltitude;
            }

            var entry = new Objects.ObjectCallbackEntry(c.Driver, altitude, registration);
            Status s = c._kernel.Objects.Callbacks.Add(entry);
            if (s.IsSuccess)
            {
                cookie = entry.Cookie;
            }

            return s;
        }

        public Status Unregister(CallbackCookie cookie) => c._kernel.Objects.Callbacks.Remove(cookie, c.Driver);

        public Status PendOperation(ref ObjectPreOperationInfo info, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended)
        {
            pended = null;
            if (!c._valid)
            {
                return Status.InvalidDeviceState;
            }

            Status s = c._kernel.Holds.Pend(c._kernel.Monitor.Current.Top, c.Driver, PendedOperationKind.ObjectPreOperation, null,
                cancelCallback, out HeldOperation? held);
            pended = held;
            return s;
        }

        public Status CompletePendedOperation(IPendedOperation operation, ProcessAccessRights desiredAccess)
        {
            Status s = c.Held(operation, PendedOperationKind.ObjectPreOperation, out HeldOperation? held);
            return s.IsError ? s : held!.CompleteAccess(c.Driver, desiredAccess);
        }
    }

    private sealed class RegistryFacade(DriverContext c) : IRegistryCallbacks
    {
        public Status Register(RegistryCallback callback, string altitude, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.RegistryCallbacks.Register(c.Driver, callback, altitude, out cookie) : Status.InvalidDeviceState;
        }

        public Status Unregister(CallbackCookie cookie) => c._kernel.RegistryCallbacks.Callbacks.Remove(cookie, c.Driver);
    }

    private sealed class FilesFacade(DriverContext c) : IFilterManager
    {
        public Status RegisterFilter(FilterRegistration registration, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.Files.Register(c.Driver, registration, out cookie) : Status.InvalidDeviceState;
        }

        public Status UnregisterFilter(CallbackCookie cookie) => c._kernel.Files.Filters.Remove(cookie, c.Driver);

        public Status SetFileContext(CallbackCookie cookie, FileIdentity file, object context)
        {
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            if (file.IsNone || context is null)
            {
                return Status.InvalidParameter;
            }

            f.Contexts[file] = context;
            return Status.Success;
        }

        public Status GetFileContext(CallbackCookie cookie, FileIdentity file, out object? context)
        {
            context = null;
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            return f.Contexts.TryGetValue(file, out context) ? Status.Success : Status.NotFound;
        }

        public Status DeleteFileContext(CallbackCookie cookie, FileIdentity file)
        {
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            return f.Contexts.TryRemove(file, out _) ? Status.Success : Status.NotFound;
        }

        public Status SetFileVerdict(CallbackCookie cookie, FileIdentity file, FileChangeStamp stamp, object verdict) =>
            SetFileVerdict(cookie, file, stamp, verdict, FileVerdictFlags.None);

        public Status SetFileVerdict(CallbackCookie cookie, FileIdentity file, FileChangeStamp stamp, object verdict, FileVerdictFlags flags)
        {
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            if (file.IsNone || stamp.IsNone || verdict is null || (flags & ~FileVerdictFlags.SkipPostCreate) != 0)
            {
                return Status.InvalidParameter;
            }

            f.Verdicts.Set(file, stamp, verdict, flags);
            return Status.Success;
        }

        public Status ClearFileVerdicts(CallbackCookie cookie)
        {
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            f.Verdicts.Clear();
            return Status.Success;
        }

        public Status GetFileVerdict(CallbackCookie cookie, FileIdentity file, FileChangeStamp stamp, out object? verdict)
        {
            verdict = null;
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            if (file.IsNone)
            {
                return Status.InvalidParameter;
            }

            verdict = stamp.IsNone ? null : f.Verdicts.Get(file, stamp);
            return verdict is null ? Status.NotFound : Status.Success;
        }

        public Status ReadFile(CallbackCookie cookie, FileIdentity file, long offset, Span<byte> buffer, out int bytesRead)
        {
            bytesRead = 0;
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            return f is null ? Status.InvalidHandle : Io.FilterManager.ReadOpened(f, file, offset, buffer, out bytesRead);
        }

        public Status QueryFileState(CallbackCookie cookie, FileIdentity file, out FileState state)
        {
            state = default;
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            return f is null ? Status.InvalidHandle : Io.FilterManager.QueryOpened(f, file, c._kernel.ProcessTable, out state);
        }

        public Status ReadFile(IPendedOperation operation, long offset, Span<byte> buffer, out int bytesRead)
        {
            bytesRead = 0;
            Status s = c.Held(operation, PendedOperationKind.FilePreOperation, out HeldOperation? held);
            return s.IsError ? s : held!.Read(c.Driver, offset, buffer, out bytesRead);
        }

        public Status PendPreOperation(ref FileOperation operation, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended)
        {
            pended = null;
            if (!c._valid)
            {
                return Status.InvalidDeviceState;
            }

            Status s = c._kernel.Holds.Pend(c._kernel.Monitor.Current.Top, c.Driver, PendedOperationKind.FilePreOperation, Io.FilterManager.PendToken(in operation),
                cancelCallback, out HeldOperation? held);
            if (s.IsError)
            {
                return s;
            }

            if (held!.Create is { } create)
            {
                // On the guest's thread, before the callback returns: the file the guest will receive, opened to be read.
                create.OpenHeld();
                operation.File = create.Operation.File;
                operation.ChangeStamp = create.Operation.ChangeStamp;
            }

            pended = held;
            return Status.Success;
        }

        public Status CompletePendedPreOperation(IPendedOperation operation, PreOperationStatus verdict, Status status, object? completionContext)
        {
            Status s = c.Held(operation, PendedOperationKind.FilePreOperation, out HeldOperation? held);
            if (s.IsError)
            {
                return s;
            }

            if (verdict is not (PreOperationStatus.SuccessWithCallback or PreOperationStatus.SuccessNoCallback or PreOperationStatus.Complete)
                || (verdict == PreOperationStatus.Complete && status.IsSuccess && held!.Create is not null))
            {
                return Status.InvalidParameter;
            }

            return held!.CompleteFile(c.Driver, verdict, status, completionContext);
        }

        public Status OpenFile(CallbackCookie cookie, string path, FileAccess access, out Stream? stream) =>
            OpenFile(cookie, path, access, out stream, out _);

        public Status OpenFile(CallbackCookie cookie, string path, FileAccess access, out Stream? stream, out FileIdentity file)
        {
            stream = null;
            file = default;
            Status s = Below(cookie, out decimal below);
            if (s.IsError)
            {
                return s;
            }

            if (!IsAbsolute(path) || (access & FileAccess.ReadWrite) == 0 || (access & ~FileAccess.ReadWrite) != 0)
            {
                return Status.InvalidParameter;
            }

            var fs = new Io.KernelFileSystem { Access = access };
            var op = new FileOperation
            {
                Kind = FileOperationKind.Create,
                Path = path,
                Access = ((access & FileAccess.Read) != 0 ? FileAccessRights.Read : 0) | ((access & FileAccess.Write) != 0 ? FileAccessRights.Write : 0),
                Disposition = CreateDisposition.Open,
            };
            s = c._kernel.Files.Dispatch(ref op, fs, below, record: null);
            if (s.IsError || fs.Opened is null)
            {
                fs.Opened?.Dispose();
                return s.IsError ? s : Status.Unsuccessful;
            }

            stream = new FileStream(fs.Opened, access, bufferSize: 0);
            file = op.File;
            return Status.Success;
        }

        public Status RenameFile(CallbackCookie cookie, string path, string newPath)
        {
            if (!IsAbsolute(path) || !IsAbsolute(newPath))
            {
                return Below(cookie, out _) is { IsError: true } refused ? refused : Status.InvalidParameter;
            }

            return Perform(cookie, new FileOperation { Kind = FileOperationKind.Rename, Path = path, NewPath = newPath });
        }

        public Status DeleteFile(CallbackCookie cookie, string path)
        {
            if (!IsAbsolute(path))
            {
                return Below(cookie, out _) is { IsError: true } refused ? refused : Status.InvalidParameter;
            }

            return Perform(cookie, new FileOperation { Kind = FileOperationKind.Delete, Path = path });
        }

        public Status RenameFile(CallbackCookie cookie, string path, string newPath, FileIdentity expected)
        {
            if (!IsAbsolute(path) || !IsAbsolute(newPath) || expected.IsNone)
            {
                return Below(cookie, out _) is { IsError: true } refused ? refused : Status.InvalidParameter;
            }

            var op = new FileOperation { Kind = FileOperationKind.Rename, Path = path, NewPath = newPath };
            op.File = expected;
            return Perform(cookie, op, expected);
        }

        public Status DeleteFile(CallbackCookie cookie, string path, FileIdentity expected)
        {
            if (!IsAbsolute(path) || expected.IsNone)
            {
                return Below(cookie, out _) is { IsError: true } refused ? refused : Status.InvalidParameter;
            }

            var op = new FileOperation { Kind = FileOperationKind.Delete, Path = path };
            op.File = expected;
            return Perform(cookie, op, expected);
        }

        public Status SetFileInformation(CallbackCookie cookie, string path, FileInformationClass informationClass, long value)
        {
            bool valid = IsAbsolute(path) && informationClass switch
            {
                FileInformationClass.Size => value >= 0,
                FileInformationClass.Mode => value is >= 0 and <= 0xFFF,
                FileInformationClass.Owner => true,
                _ => false,
            };
            if (!valid)
            {
                return Below(cookie, out _) is { IsError: true } refused ? refused : Status.InvalidParameter;
            }

            return Perform(cookie, new FileOperation
            {
                Kind = FileOperationKind.SetInformation,
                Path = path,
                InformationClass = informationClass,
                InformationValue = value,
            });
        }

        // The filters an own I/O goes to: below the calling filter, or, for I/O on no filter's behalf, all of them.
        private Status Below(CallbackCookie cookie, out decimal below)
        {
            below = decimal.MaxValue;
            if (!c._valid)
            {
                return Status.InvalidDeviceState;
            }

            if (cookie == default)
            {
                return Status.Success;
            }

            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            below = f.Altitude;
            return Status.Success;
        }

        private Status Perform(CallbackCookie cookie, FileOperation op, FileIdentity expected = default)
        {
            Status s = Below(cookie, out decimal below);
            return s.IsError ? s : c._kernel.Files.Dispatch(ref op, new Io.KernelFileSystem { Expected = expected }, below, record: null);
        }

        private static bool IsAbsolute(string? path) => !string.IsNullOrEmpty(path) && path[0] == '/';
    }

    private sealed class NetworkFacade(DriverContext c) : INetworkFilterEngine
    {
        public Status AddSublayer(string name, ushort weight, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.Network.AddSublayer(c.Driver, name, weight, out cookie) : Status.InvalidDeviceState;
        }

        public Status DeleteSublayer(CallbackCookie cookie) => c._kernel.Network.DeleteSublayer(c.Driver, cookie);

        public Status RegisterCallout(string name, CalloutClassifyCallback classify, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.Network.RegisterCallout(c.Driver, name, classify, out cookie) : Status.InvalidDeviceState;
        }

        public Status UnregisterCallout(CallbackCookie cookie) => c._kernel.Network.UnregisterCallout(c.Driver, cookie);

        public Status AddFilter(NetworkFilter filter, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.Network.AddFilter(c.Driver, filter, out cookie) : Status.InvalidDeviceState;
        }

        public Status DeleteFilter(CallbackCookie cookie) => c._kernel.Network.DeleteFilter(c.Driver, cookie);

        public Status RegisterFlowCallback(NetworkFlowCallback callback, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.Network.RegisterFlowCallback(c.Driver, callback, out cookie) : Status.InvalidDeviceState;
        }

        public Status UnregisterFlowCallback(CallbackCookie cookie) => c._kernel.Network.FlowCallbacks.Remove(cookie, c.Driver);

        public Status PendClassify(in NetworkClassifyContext context, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended)
        {
            pended = null;
            if (!c._valid)
            {
                return Status.InvalidDeviceState;
            }

            Status s = c._kernel.Holds.Pend(c._kernel.Monitor.Current.Top, c.Driver, PendedOperationKind.NetworkClassify, context.ApplicationPath,
                cancelCallback, out HeldOperation? held);
            pended = held;
            return s;
        }

        public Status CompletePendedClassify(IPendedOperation operation, ClassifyResult result)
        {
            Status s = c.Held(operation, PendedOperationKind.NetworkClassify, out HeldOperation? held);
            if (s.IsError)
            {
                return s;
            }

            return result is ClassifyResult.Permit or ClassifyResult.Block or ClassifyResult.Continue
                ? held!.CompleteClassify(c.Driver, result)
                : Status.InvalidParameter;
        }
    }

    private sealed class SecurityCenterFacade(DriverContext c) : ISecurityCenter
    {
        public Status RegisterProduct(SecurityProductKind kind, string displayName, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.SecurityCenter.Register(c.Driver, kind, displayName, out cookie) : Status.InvalidDeviceState;
        }

        public Status ReportState(CallbackCookie cookie, ProductState state) => c._kernel.SecurityCenter.ReportState(c.Driver, cookie, state);

        public Status UnregisterProduct(CallbackCookie cookie) => c._kernel.SecurityCenter.Unregister(c.Driver, cookie);

        public Status ListProducts(out IReadOnlyList<SecurityProduct> products)
        {
            products = c._kernel.SecurityCenter.List();
            return Status.Success;
        }
    }
}
