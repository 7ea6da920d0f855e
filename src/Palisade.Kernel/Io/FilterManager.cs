using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Events;

namespace Palisade.Kernel.Io;

/// <summary>
/// The filter manager: the frames of minifilters ordered by altitude, and the path of one file operation through
/// them — pre callbacks from the highest altitude down, the file system, post callbacks back up.
/// </summary>
internal sealed class FilterManager
{
    public const int Limit = 64;
    private readonly CallbackMonitor _monitor;
    private readonly FaultPolicy _faults;
    private readonly HoldTable _holds;
    private readonly Lock _registering = new();

    /// <summary>The names faults give each operation's callbacks, by <see cref="FileOperationKind"/>.</summary>
    private static readonly string[] s_preNames = ["pre-create", "pre-cleanup", "pre-rename", "pre-delete", "pre-set-information", "pre-read", "pre-write"];
    private static readonly string[] s_postNames = ["post-create", "post-cleanup", "post-rename", "post-delete", "post-set-information", "post-read", "post-write"];

    /// <summary>This thread's description of a file operation that can be held (reused).</summary>
    [ThreadStatic]
    private static PendContext? t_pend;

    /// <summary>The create whose post callbacks run on this thread, for <see cref="ReadOpened"/>.</summary>
    [ThreadStatic]
    private static IFileSystemPerformer? t_postCreate;

    [ThreadStatic]
    private static FileIdentity t_postCreateFile;

    [ThreadStatic]
    private static Minifilter? t_postFilter;

    /// <summary>The cleanup whose callbacks run on this thread, for <see cref="ReadOpened"/>, and its file.</summary>
    [ThreadStatic]
    private static IFileSystemPerformer? t_cleanup;

    [ThreadStatic]
    private static FileIdentity t_cleanupFile;

    public FilterManager(CallbackMonitor monitor, FaultPolicy faults, HoldTable holds)
    {
        _monitor = monitor;
        _faults = faults;
        _holds = holds;
    }

    /// <summary>The frame: minifilters, highest altitude first.</summary>
    public CallbackTable<Minifilter> Filters { get; } = new("minifilters", Limit, byAltitude: true);

    /// <summary>True when any live minifilter registered for the operation (the host mediates only those).</summary>
    public bool IsSubscribed(FileOperationKind kind)
    {
        foreach (Minifilter f in Filters.Snapshot)
        {
            if (f.Handles(kind))
            {
                return true;
            }
        }

        return false;
    }

    public Status Register(DriverObject? owner, FilterRegistration? r, out CallbackCookie cookie)
    {
        cookie = default;
        if (r is null || string.IsNullOrEmpty(r.Name) || r.Name.Length > 64 || r.Operations is null || r.Operations.Count == 0
            || !VerdictCache.IsValidCapacity(r.VerdictCacheCapacity))
        {
            return Status.InvalidParameter;
        }

        Span<bool> seen = stackalloc bool[Minifilter.OperationCount];
        foreach (FileOperationRegistration? op in r.Operations)
        {
            if (op is null || (uint)op.Kind >= (uint)Minifilter.OperationCount || seen[(int)op.Kind]
                || (op.PreOperation is null && op.PostOperation is null)
                || (op.Flags & ~FileOperationFlags.DriverIoOnly) != 0)
            {
                return Status.InvalidParameter;
            }

            seen[(int)op.Kind] = true;
        }

        if (!Altitude.TryParse(r.Altitude, out decimal altitude))
        {
            return Status.InvalidAltitude;
        }

        foreach (Minifilter f in Filters.Snapshot)
        {
            if (string.Equals(f.Name, r.Name, StringComparison.Ordinal))
            {
                return f.Altitude == altitude ? Status.AltitudeCollision : Status.ObjectNameCollision;
            }
        }

        lock (_registering)
        {
            // The verdict caches of all filters together stay within the kernel's budget: no driver can make the kernel
            // reserve memory without bound by registering large caches.
            long verdicts = r.VerdictCacheCapacity == 0 ? FilterRegistration.DefaultVerdictCacheCapacity : r.VerdictCacheCapacity;
            foreach (Minifilter f in Filters.Snapshot)
            {
                verdicts += f.Verdicts.Capacity;
            }

            if (verdicts > FilterRegistration.MaxVerdictCacheCapacity)
            {
                return Status.InsufficientResources;
            }

            var filter = new Minifilter(owner, altitude, r);
            Status s = Filters.Add(filter);
            if (s.IsSuccess)
            {
                cookie = filter.Cookie;
            }

            return s;
        }
    }

    /// <summary>Reads the file of the create whose post callback of <paramref name="filter"/> runs on this thread.</summary>
    public static Status ReadOpened(Minifilter filter, FileIdentity file, long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        if (offset < 0)
        {
            return Status.InvalidParameter;
        }

        IFileSystemPerformer? p = OpenedFor(filter, file);
        return p is null ? Status.InvalidDeviceState : p.ReadOpened(offset, buffer, out bytesRead);
    }

    /// <summary>The state of the file <see cref="ReadOpened"/> would read (see <see cref="FileStateQuery"/>).</summary>
    public static Status QueryOpened(Minifilter filter, FileIdentity file, Processes.ProcessTable guests, out FileState state)
    {
        state = default;
        IFileSystemPerformer? p = OpenedFor(filter, file);
        return p is null ? Status.InvalidDeviceState : p.QueryOpened(guests, out state);
    }

    /// <summary>
    /// The performer whose file <paramref name="filter"/> may read on this thread: the create whose post callback of that
    /// filter runs, or the cleanup whose callbacks run (for a filter registered for cleanup); null otherwise.
    /// </summary>
    private static IFileSystemPerformer? OpenedFor(Minifilter filter, FileIdentity file)
    {
        IFileSystemPerformer? p = t_postCreate;
        if (p is not null && ReferenceEquals(t_postFilter, filter) && t_postCreateFile == file)
        {
            return p;
        }

        // Inside a cleanup's callbacks: a filter registered for cleanup reads the file whose description was released.
        return t_cleanup is { } cleanup && t_cleanupFile == file && filter.Handles(FileOperationKind.Cleanup) ? cleanup : null;
    }

    /// <summary>
    /// Sends one operation through the filters whose altitude is below <paramref name="below"/> (all of them for a
    /// guest operation), performs it with <paramref name="performer"/> unless a filter completed it, and runs the
    /// post callbacks. Returns the final status, which is also left in <see cref="FileOperation.Status"/>.
    /// </summary>
    public Status Dispatch(ref FileOperation op, IFileSystemPerformer performer, decimal below, OperationRecord? record)
    {
        // A filter may issue its own I/O from inside a callback (OpenFile), which dispatches again on this thread:
        // each level gets its own state.
        IoState state = IoState.Rent();
        IFileSystemPerformer? outerCleanup = t_cleanup;
        FileIdentity outerCleanupFile = t_cleanupFile;
        t_cleanup = op.Kind == FileOperationKind.Cleanup ? performer : null;
        t_cleanupFile = op.File;
        try
        {
            if (PreOperation(ref op, state, below, record))
            {
                op.Status = performer.Perform(ref op);
            }

            return PostOperation(ref op, state, performer, record);
        }
        finally
        {
            (t_cleanup, t_cleanupFile) = (outerCleanup, outerCleanupFile);
            IoState.Return(state);
        }
    }

    /// <summary>
    /// The first half of <see cref="Dispatch"/>, for front ends that perform the operation themselves between the
    /// halves: runs the pre callbacks and records in <paramref name="state"/> which filters want a post callback.
    /// Returns true when the operation should be performed; false when a filter completed it (its status is in
    /// <see cref="FileOperation.Status"/>). <see cref="PostOperation"/> must follow, with the same state, on any thread.
    /// </summary>
    /// <param name="guest">The host's request when the operation is a guest's own (then a filter may hold it); null for
    /// the kernel's own I/O.</param>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining | System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public bool PreOperation(ref FileOperation op, IoState state, decimal below, OperationRecord? record, Hosting.FileRequest? guest = null)
    {
        Minifilter[] filters = Filters.Snapshot;
        state.Filters = filters;
        object?[] contexts = state.Contexts;
        bool[] wantsPost = state.WantsPost;
        int kind = (int)op.Kind;
        CallbackMonitor.Slot slot = _monitor.Current;
        int last = -1;
        op.Status = Status.Success;

        // A guest's own create, rename, delete or set-information, not issued from inside another callback, can be held.
        PendContext? pend = guest is not null && op.Kind is FileOperationKind.Create or FileOperationKind.Rename
            or FileOperationKind.Delete or FileOperationKind.SetInformation && slot.Depth == 0 ? Pendable(ref op, guest) : null;
        long holdBase = pend is null ? 0 : Environment.TickCount64;

        // A guest's operation is dispatched to every filter; a driver's own I/O only below the issuing filter.
        int guestSkips = below == decimal.MaxValue ? 1 << kind : 0;

        for (int i = 0; i < filters.Length; i++)
        {
            Minifilter f = filters[i];
            wantsPost[i] = false;
            contexts[i] = null;

            // A process the filter's driver excluded (a client of its port, say) passes its filters as if unregistered.
            if (f.Altitude >= below || f.Disabled || (f.DriverIoOnly & guestSkips) != 0 || (f.Owner is { } owner && owner.Exclusions.Excludes(op.RequesterProcessId)))
            {
                continue;
            }

            last = i;
            FilePreCallback? pre = f.Pre[kind];
            FilePostCallback? post = f.Post[kind];
            if (pre is null)
            {
                wantsPost[i] = post is not null;
                continue;
            }

            Status before = op.Status;
            long hold = pend is null ? 0 : f.Policy.HoldMilliseconds;
            op.HoldDeadline = hold == 0 ? 0 : holdBase + hold;
            if (hold != 0)
            {
                pend!.Deadline = op.HoldDeadline;
            }

            // The filter decides on its own copy of the operation: only its verdict (Status, CompletionContext) is read
            // back, so a filter cannot make the filters below it, or the file system, see another operation than the
            // one performed. (The file a pend opens is set on the operation itself, by the kernel.)
            FileOperation view = op;
            view.CompletionContext = null;
            PreOperationStatus verdict;
            Exception? thrown = null;
            if (slot.TryEnter(f, new OperationTag(s_preNames[kind], op.RequesterProcessId, TagTarget(in op)), hold == 0 ? null : pend) is not { } frame)
            {
                continue; // Being unregistered: as if it were not registered (no post callback either).
            }

            try
            {
                verdict = pre(ref view);
            }
            catch (Exception ex)
            {
                verdict = PreOperationStatus.SuccessNoCallback;
                thrown = ex;
            }

            op.Status = view.Status;
            op.CompletionContext = view.CompletionContext;
            bool inTime = slot.Exit(frame);
            if (thrown is not null || !inTime || frame.Held is not null || (uint)verdict > (uint)PreOperationStatus.Complete)
            {
                // Held, faulted or unusable: the rare paths, out of line.
                verdict = Resolve(f, ref op, before, verdict, thrown, inTime, frame, record);
            }
            else
            {
                f.RecordSuccess();
            }

            if (verdict == PreOperationStatus.Complete)
            {
                if (op.Kind == FileOperationKind.Create && op.Status.IsSuccess)
                {
                    _faults.InvalidVerdict(f, new OperationTag(s_preNames[kind], op.RequesterProcessId, TagTarget(in op)),
                        "completed a create with success, which cannot open a file; the open is denied");
                    op.Status = Status.AccessDenied;
                }

                record?.Verdict(f.OwnerName, "complete " + op.Status.Name);
                state.Last = i - 1;
                op.HoldDeadline = 0;
                return false;
            }

            op.Status = before;
            wantsPost[i] = verdict == PreOperationStatus.SuccessWithCallback && post is not null;
            contexts[i] = op.CompletionContext;
            record?.Verdict(f.OwnerName, "continue");
        }

        op.HoldDeadline = 0;
        state.Last = last;
        return true;
    }

    /// <summary>
    /// What a fault report names of <paramref name="op"/>: the path as the guest spelled it when there is one, so that
    /// entering a callback never resolves the object (a filter that reads <see cref="FileOperation.Path"/> pays for it,
    /// one that does not costs the open nothing); the resolved path only for a call on a descriptor.
    /// </summary>
    private static string TagTarget(in FileOperation op) => op.RequestedPath ?? op.Path;

    /// <summary>
    /// What identifies <paramref name="op"/> to <see cref="IFilterManager.PendPreOperation"/>: the guest request it
    /// describes (a filter's copy of the operation carries the same one), or for the kernel's own I/O its path.
    /// </summary>
    internal static object PendToken(in FileOperation op) => (object?)op.Source ?? op.Path;

    /// <summary>This thread's pend context, describing <paramref name="op"/> of <paramref name="guest"/>.</summary>
    private static PendContext Pendable(ref FileOperation op, Hosting.FileRequest guest)
    {
        PendContext p = t_pend ??= new PendContext { Kind = PendedOperationKind.FilePreOperation };
        p.ProcessId = op.RequesterProcessId;
        p.ThreadId = op.RequesterThreadId;
        p.Token = PendToken(in op);
        p.Create = op.Kind == FileOperationKind.Create ? guest : null;
        p.Deadline = 0;
        return p;
    }

    /// <summary>
    /// The verdict of a pre callback that did not simply return a usable one: it held the operation (wait for the end of
    /// the hold), threw, overran its deadline, or returned an undefined status (the filter's timeout verdict, after the
    /// fault is reported).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private PreOperationStatus Resolve(Minifilter f, ref FileOperation op, Status before, PreOperationStatus verdict, Exception? thrown,
        bool inTime, CallbackMonitor.Frame frame, OperationRecord? record)
    {
        var tag = new OperationTag(s_preNames[(int)op.Kind], op.RequesterProcessId, TagTarget(in op));
        HeldOperation? held = frame.Held;
        frame.Held = null;
        if (thrown is not null || !inTime)
        {
            // An overrun was reported by the monitor when it happened; a throw is reported here. A hold made before either is void.
            if (held is not null)
            {
                _holds.Withdraw(held);
            }

            if (thrown is not null)
            {
                _faults.Threw(f, in tag, thrown);
            }

            return TimeoutVerdict(f, ref op, before, record, thrown is not null ? "fault" : "overrun");
        }

        if (verdict == PreOperationStatus.Pending && held is not null)
        {
            record?.Verdict(f.OwnerName, "pending " + held.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            switch (_holds.Wait(held))
            {
                case PendedOperationState.Completed:
                    f.RecordSuccess();
                    op.Status = held.FileVerdict == PreOperationStatus.Complete ? held.VerdictStatus : before;
                    op.CompletionContext = held.CompletionContext;
                    return held.FileVerdict;
                case PendedOperationState.Cancelled when !held.RegistrationRemoved:
                    // Nobody waits for this operation any more: stop it here.
                    record?.Verdict(f.OwnerName, "cancelled");
                    op.Status = Status.Cancelled;
                    return PreOperationStatus.Complete;
                default:
                    return TimeoutVerdict(f, ref op, before, record, "timeout");
            }
        }

        if (held is not null)
        {
            // Pended, then returned a verdict of its own: that verdict applies.
            _holds.Withdraw(held);
        }

        if ((uint)verdict > (uint)PreOperationStatus.Complete)
        {
            _faults.InvalidVerdict(f, in tag, verdict == PreOperationStatus.Pending ? "returned Pending without a pend" : "returned an undefined status " + (int)verdict);
            return TimeoutVerdict(f, ref op, before, record, "fault");
        }

        f.RecordSuccess();
        return verdict;
    }

    /// <summary>The filter's timeout verdict for a pre callback: continue without a post callback, or deny.</summary>
    private static PreOperationStatus TimeoutVerdict(Minifilter f, ref FileOperation op, Status before, OperationRecord? record, string why)
    {
        op.CompletionContext = null;
        if (f.Policy.DenyOnTimeout)
        {
            record?.Verdict(f.OwnerName, why + ": deny");
            op.Status = Status.AccessDenied;
            return PreOperationStatus.Complete;
        }

        record?.Verdict(f.OwnerName, why + ": allow");
        op.Status = before;
        return PreOperationStatus.SuccessNoCallback;
    }

    /// <summary>
    /// The second half of <see cref="Dispatch"/>: with the outcome of the operation in
    /// <see cref="FileOperation.Status"/> (and, for a create, the opened file's identity in
    /// <see cref="FileOperation.File"/>), runs the post callbacks from the lowest altitude up. A create a post
    /// callback cancels is undone through <paramref name="performer"/>. Returns the final status.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining | System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public Status PostOperation(ref FileOperation op, IoState state, IFileSystemPerformer performer, OperationRecord? record)
    {
        Minifilter[] filters = state.Filters;
        object?[] contexts = state.Contexts;
        bool[] wantsPost = state.WantsPost;
        int kind = (int)op.Kind;
        CallbackMonitor.Slot slot = _monitor.Current;
        Status performed = op.Status;
        for (int i = state.Last; i >= 0; i--)
        {
            if (!wantsPost[i])
            {
                continue;
            }

            wantsPost[i] = false;
            Minifilter f = filters[i];
            FilePostCallback? post = f.Post[kind];
            if (post is null || f.Disabled)
            {
                continue;
            }

            // A cached verdict of the filter's own may answer for it (FileVerdictFlags.SkipPostCreate). A filter that holds
            // no such verdict pays one volatile read, and its opens no statx.
            if (kind == (int)FileOperationKind.Create && contexts[i] is null && f.Verdicts.HasSkips && SkipsPostCreate(f, in op))
            {
                record?.Verdict(f.OwnerName, "cached");
                continue;
            }

            // As in the pre callbacks, the filter gets its own copy; only its status is read back, under the rules below.
            FileOperation view = op;
            view.CompletionContext = contexts[i];
            contexts[i] = null;
            Status before = op.Status;
            bool readable = op.Kind == FileOperationKind.Create && op.Status.IsSuccess;
            if (slot.TryEnter(f, new OperationTag(s_postNames[kind], op.RequesterProcessId, TagTarget(in op))) is not { } frame)
            {
                continue; // Unregistered since its pre callback: no new call starts.
            }

            IFileSystemPerformer? outerPerformer = t_postCreate;
            FileIdentity outerFile = t_postCreateFile;
            Minifilter? outerFilter = t_postFilter;
            t_postCreate = readable ? performer : null;
            t_postCreateFile = op.File;
            t_postFilter = f;
            Exception? thrown = null;
            try
            {
                post(ref view);
            }
            catch (Exception ex)
            {
                thrown = ex;
            }

            t_postCreate = outerPerformer;
            t_postCreateFile = outerFile;
            t_postFilter = outerFilter;
            if (!slot.Exit(frame) || thrown is not null)
            {
                // The filter's timeout verdict: a create stands or is cancelled; other outcomes cannot change.
                if (thrown is not null)
                {
                    _faults.Threw(f, new OperationTag(s_postNames[kind], op.RequesterProcessId, TagTarget(in op)), thrown);
                }

                op.Status = op.Kind == FileOperationKind.Create && before.IsSuccess && f.Policy.DenyOnTimeout ? Status.AccessDenied : before;
            }
            else if (view.Status == before)
            {
                f.RecordSuccess();
            }
            else
            {
                op.Status = PostVerdict(f, in op, before, view.Status, record);
            }
        }

        if (op.Kind == FileOperationKind.Create && performed.IsSuccess && op.Status.IsError)
        {
            performer.CancelCreate(ref op);
        }

        state.Filters = [];
        op.CompletionContext = null;
        return op.Status;
    }

    /// <summary>
    /// True when <paramref name="f"/> cached a verdict with <see cref="FileVerdictFlags.SkipPostCreate"/> on the file
    /// <paramref name="op"/> opened, under the stamp the file has now, and the open succeeded so far and asks for no write
    /// access: then the kernel does not call the filter's post-create (IFilterManager.SetFileVerdict with flags).
    /// </summary>
    private static bool SkipsPostCreate(Minifilter f, in FileOperation op) =>
        op.Status.IsSuccess
        && (op.Access & (FileAccessRights.Write | FileAccessRights.Append)) == 0
        && op.Disposition is not (CreateDisposition.Overwrite or CreateDisposition.OverwriteIf)
        && f.Verdicts.Skips(op.File, op.ChangeStamp);

    /// <summary>
    /// The status after a post callback changed it from <paramref name="before"/> to <paramref name="set"/>. Only a
    /// cancel counts: a create that has succeeded so far may be failed (FltCancelFileOpen). An error, whether the file
    /// system's or a lower filter's cancel, is never turned into anything else: a filter cannot undo another's verdict,
    /// and trying is a fault. Any other change (the outcome of a non-create) has no effect.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private Status PostVerdict(Minifilter f, in FileOperation op, Status before, Status set, OperationRecord? record)
    {
        if (before.IsError)
        {
            _faults.InvalidVerdict(f, new OperationTag(s_postNames[(int)op.Kind], op.RequesterProcessId, TagTarget(in op)),
                "set " + set.Name + " over " + before.Name + ", which the file system or a filter below decided; a filter cannot undo another's verdict, the status stays");
            return before;
        }

        f.RecordSuccess();
        if (op.Kind != FileOperationKind.Create || set.IsSuccess)
        {
            return before;
        }

        record?.Verdict(f.OwnerName, "post cancel " + set.Name);
        return set;
    }
}

/// <summary>
/// What the filter manager remembers of one operation between its pre and post callbacks: which filters asked for
/// a post callback and the completion context each handed over. Reused; one per kernel thread for
/// <see cref="FilterManager.Dispatch"/>, or kept by a front end that performs operations itself.
/// </summary>
internal sealed class IoState
{
    [ThreadStatic]
    private static Stack<IoState>? t_free;

    /// <summary>Takes a state for one dispatch on this thread (reused; nested dispatches get distinct ones).</summary>
    public static IoState Rent()
    {
        Stack<IoState> free = t_free ??= new Stack<IoState>();
        return free.Count > 0 ? free.Pop() : new IoState();
    }

    public static void Return(IoState state)
    {
        state.Filters = [];
        (t_free ??= new Stack<IoState>()).Push(state);
    }

    public Minifilter[] Filters = [];
    public readonly object?[] Contexts = new object?[FilterManager.Limit];
    public readonly bool[] WantsPost = new bool[FilterManager.Limit];
    public int Last = -1;
}
