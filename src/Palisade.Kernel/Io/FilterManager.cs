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
    private readonly EventStream _events;

    /// <summary>The create whose post callbacks run on this thread, for <see cref="ReadOpened"/>.</summary>
    [ThreadStatic]
    private static IFileSystemPerformer? t_postCreate;

    [ThreadStatic]
    private static FileIdentity t_postCreateFile;

    [ThreadStatic]
    private static Minifilter? t_postFilter;

    public FilterManager(CallbackMonitor monitor, EventStream events)
    {
        _monitor = monitor;
        _events = events;
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
        if (r is null || string.IsNullOrEmpty(r.Name) || r.Name.Length > 64 || r.Operations is null || r.Operations.Count == 0)
        {
            return Status.InvalidParameter;
        }

        Span<bool> seen = stackalloc bool[Minifilter.OperationCount];
        foreach (FileOperationRegistration? op in r.Operations)
        {
            if (op is null || (uint)op.Kind >= (uint)Minifilter.OperationCount || seen[(int)op.Kind]
                || (op.PreOperation is null && op.PostOperation is null))
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

        var filter = new Minifilter(owner, altitude, r);
        Status s = Filters.Add(filter);
        if (s.IsSuccess)
        {
            cookie = filter.Cookie;
        }

        return s;
    }

    /// <summary>Reads the file of the create whose post callback of <paramref name="filter"/> runs on this thread.</summary>
    public static Status ReadOpened(Minifilter filter, FileIdentity file, long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        if (offset < 0)
        {
            return Status.InvalidParameter;
        }

        IFileSystemPerformer? p = t_postCreate;
        if (p is null || !ReferenceEquals(t_postFilter, filter) || t_postCreateFile != file)
        {
            return Status.InvalidDeviceState;
        }

        return p.ReadOpened(offset, buffer, out bytesRead);
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
            IoState.Return(state);
        }
    }

    /// <summary>
    /// The first half of <see cref="Dispatch"/>, for front ends that perform the operation themselves between the
    /// halves: runs the pre callbacks and records in <paramref name="state"/> which filters want a post callback.
    /// Returns true when the operation should be performed; false when a filter completed it (its status is in
    /// <see cref="FileOperation.Status"/>). <see cref="PostOperation"/> must follow, with the same state, on any thread.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining | System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public bool PreOperation(ref FileOperation op, IoState state, decimal below, OperationRecord? record)
    {
        Minifilter[] filters = Filters.Snapshot;
        state.Filters = filters;
        object?[] contexts = state.Contexts;
        bool[] wantsPost = state.WantsPost;
        int kind = (int)op.Kind;
        CallbackMonitor.Slot slot = _monitor.Current;
        int last = -1;
        op.Status = Status.Success;

        for (int i = 0; i < filters.Length; i++)
        {
            Minifilter f = filters[i];
            wantsPost[i] = false;
            contexts[i] = null;
            if (f.Altitude >= below || f.Disabled)
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

            op.CompletionContext = null;
            Status before = op.Status;
            PreOperationStatus verdict;
            slot.Enter(f);
            try
            {
                verdict = pre(ref op);
            }
            catch (Exception ex)
            {
                verdict = PreOperationStatus.SuccessNoCallback;
                op.Status = before;
                _events.WriteDriverFault(f.OwnerName, "pre-" + op.Kind + " callback threw " + ex.GetType().Name + ": " + ex.Message);
            }

            if (!slot.Exit())
            {
                verdict = PreOperationStatus.SuccessNoCallback;
                op.Status = before;
            }

            if (verdict == PreOperationStatus.Complete)
            {
                if (op.Kind == FileOperationKind.Create && op.Status.IsSuccess)
                {
                    _events.WriteDriverFault(f.OwnerName, "pre-create completed with success, which cannot open a file; the open is denied");
                    op.Status = Status.AccessDenied;
                }

                record?.Verdict(f.OwnerName, "complete " + op.Status.Name);
                state.Last = i - 1;
                return false;
            }

            if (verdict is not PreOperationStatus.SuccessWithCallback and not PreOperationStatus.SuccessNoCallback)
            {
                _events.WriteDriverFault(f.OwnerName, "pre-" + op.Kind + " callback returned an undefined status; treated as success without callback");
                verdict = PreOperationStatus.SuccessNoCallback;
            }

            op.Status = before;
            wantsPost[i] = verdict == PreOperationStatus.SuccessWithCallback && post is not null;
            contexts[i] = op.CompletionContext;
            record?.Verdict(f.OwnerName, "continue");
        }

        state.Last = last;
        return true;
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

            op.CompletionContext = contexts[i];
            contexts[i] = null;
            Status before = op.Status;
            bool readable = op.Kind == FileOperationKind.Create && op.Status.IsSuccess;
            IFileSystemPerformer? outerPerformer = t_postCreate;
            FileIdentity outerFile = t_postCreateFile;
            Minifilter? outerFilter = t_postFilter;
            t_postCreate = readable ? performer : null;
            t_postCreateFile = op.File;
            t_postFilter = f;
            slot.Enter(f);
            try
            {
                post(ref op);
            }
            catch (Exception ex)
            {
                op.Status = before;
                _events.WriteDriverFault(f.OwnerName, "post-" + op.Kind + " callback threw " + ex.GetType().Name + ": " + ex.Message);
            }

            t_postCreate = outerPerformer;
            t_postCreateFile = outerFile;
            t_postFilter = outerFilter;
            if (!slot.Exit())
            {
                op.Status = before;
            }

            if (op.Kind != FileOperationKind.Create && op.Status != before)
            {
                op.Status = before;
            }
            else if (op.Status != before)
            {
                record?.Verdict(f.OwnerName, "post cancel " + op.Status.Name);
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
