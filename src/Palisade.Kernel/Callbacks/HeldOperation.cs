using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Callbacks;

/// <summary>
/// What a pend inside a callback would hold: filled by the dispatcher for an operation that can be held (a guest's own,
/// not nested in another callback) and handed to the callback's frame. One per thread and kind, reused.
/// </summary>
internal sealed class PendContext
{
    public PendedOperationKind Kind;

    /// <summary>The guest that waits.</summary>
    public int ProcessId;

    public int ThreadId;

    /// <summary>When a hold would time out (<see cref="Environment.TickCount64"/>); 0 when the registration cannot hold.</summary>
    public long Deadline;

    /// <summary>Something of the operation the callback received, to tell it from another one a pend names (its path, image or program).</summary>
    public object? Token;

    /// <summary>For a create the host performs: the request, whose file a pend opens for reading.</summary>
    public Hosting.FileRequest? Create;

    /// <summary>For an object operation: the access the callback saw asked for, the most a completion may grant.</summary>
    public ProcessAccessRights AccessLimit;
}

/// <summary>
/// One held operation: the completion handle a driver keeps (<see cref="IPendedOperation"/>), the verdict its completion
/// gave, and how the hold ended. Its state changes once, under its lock, from <see cref="PendedOperationState.Held"/>; the
/// thread of the operation waits on it (<see cref="HoldTable.Wait"/>).
/// </summary>
internal sealed class HeldOperation : IPendedOperation
{
    private readonly Lock _gate = new();
    private readonly ManualResetEventSlim _ended = new(false);
    private PendedOperationState _state;

    public HeldOperation(long id, PendedOperationKind kind, Registration registration, PendContext context, PendedOperationCancelCallback? cancelCallback)
    {
        Id = id;
        Kind = kind;
        Owner = registration;
        Deadline = context.Deadline;
        RequesterProcessId = context.ProcessId;
        RequesterThreadId = context.ThreadId;
        Create = context.Create;
        AccessLimit = context.AccessLimit;
        CancelCallback = cancelCallback;
    }

    public long Id { get; }

    public PendedOperationKind Kind { get; }

    public long Deadline { get; }

    public TimeSpan Remaining => TimeSpan.FromMilliseconds(Math.Max(0, Deadline - Environment.TickCount64));

    public int RequesterProcessId { get; }

    public int RequesterThreadId { get; }

    public CallbackCookie Registration => Owner.Cookie;

    public PendedOperationState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>The registration whose callback pended it.</summary>
    public Registration Owner { get; }

    /// <summary>The host's name for the guest call held (see <c>Requester.CallId</c>); 0 when the host names none.</summary>
    public ulong CallId { get; init; }

    public PendedOperationCancelCallback? CancelCallback { get; }

    /// <summary>For a held create the host performs: its request, through which <see cref="Read"/> reads the file.</summary>
    public Hosting.FileRequest? Create { get; }

    public ProcessAccessRights AccessLimit { get; }

    /// <summary>True when the hold was cancelled because its registration was removed (the timeout verdict applies).</summary>
    public bool RegistrationRemoved { get; private set; }

    // The completion's verdict, by kind; written under the lock before the state becomes Completed.
    public PreOperationStatus FileVerdict { get; private set; }

    public Status VerdictStatus { get; private set; }

    public object? CompletionContext { get; private set; }

    public ClassifyResult ClassifyVerdict { get; private set; }

    public ProcessAccessRights GrantedAccess { get; private set; }

    /// <summary>Waits up to <paramref name="milliseconds"/> for the hold to end; true when it has.</summary>
    public bool WaitEnded(int milliseconds) => _ended.Wait(milliseconds);

    /// <summary>Ends the hold in <paramref name="state"/> unless it has ended already; true when this call ended it.</summary>
    public bool TryEnd(PendedOperationState state, bool registrationRemoved = false)
    {
        lock (_gate)
        {
            if (_state != PendedOperationState.Held)
            {
                return false;
            }

            _state = state;
            RegistrationRemoved = registrationRemoved;
            _ended.Set();
            return true;
        }
    }

    public Status CompleteFile(DriverObject? caller, PreOperationStatus verdict, Status status, object? completionContext)
    {
        lock (_gate)
        {
            Status s = Check(caller, PendedOperationKind.FilePreOperation);
            if (s.IsError)
            {
                return s;
            }

            FileVerdict = verdict;
            VerdictStatus = status;
            CompletionContext = verdict == PreOperationStatus.SuccessWithCallback ? completionContext : null;
            return Complete();
        }
    }

    public Status CompleteCreate(DriverObject? caller, Status verdict)
    {
        lock (_gate)
        {
            Status s = Check(caller, PendedOperationKind.ProcessCreate);
            if (s.IsError)
            {
                return s;
            }

            VerdictStatus = verdict;
            return Complete();
        }
    }

    public Status CompleteClassify(DriverObject? caller, ClassifyResult result)
    {
        lock (_gate)
        {
            Status s = Check(caller, PendedOperationKind.NetworkClassify);
            if (s.IsError)
            {
                return s;
            }

            ClassifyVerdict = result;
            return Complete();
        }
    }

    public Status CompleteAccess(DriverObject? caller, ProcessAccessRights access)
    {
        lock (_gate)
        {
            Status s = Check(caller, PendedOperationKind.ObjectPreOperation);
            if (s.IsError)
            {
                return s;
            }

            if ((access & ~AccessLimit) != 0)
            {
                return Status.InvalidParameter;
            }

            GrantedAccess = access;
            return Complete();
        }
    }

    /// <summary>
    /// Reads the file of a held create, from any thread, while it is held. The lock keeps the hold from ending (and the
    /// file from being closed) during the read.
    /// </summary>
    public Status Read(DriverObject? caller, long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        lock (_gate)
        {
            if (!ReferenceEquals(Owner.Owner, caller))
            {
                return Status.InvalidHandle;
            }

            if (Create is null || offset < 0)
            {
                return Status.InvalidParameter;
            }

            return _state != PendedOperationState.Held ? Status.InvalidDeviceState : Create.ReadHeld(offset, buffer, out bytesRead);
        }
    }

    /// <summary>Runs <paramref name="action"/> under the hold's lock once it has ended, so that no read is in progress.</summary>
    public void AfterEnd(Action<HeldOperation> action)
    {
        lock (_gate)
        {
            action(this);
        }
    }

    private Status Check(DriverObject? caller, PendedOperationKind kind)
    {
        if (!ReferenceEquals(Owner.Owner, caller))
        {
            return Status.InvalidHandle;
        }

        if (Kind != kind)
        {
            return Status.InvalidParameter;
        }

        return _state switch
        {
            PendedOperationState.Held => Status.Success,
            PendedOperationState.Completed => Status.AlreadyCompleted,
            PendedOperationState.TimedOut => Status.IoTimeout,
            PendedOperationState.Cancelled => Status.Cancelled,
            _ => Status.InvalidDeviceState,
        };
    }

    private Status Complete()
    {
        _state = PendedOperationState.Completed;
        _ended.Set();
        return Status.Success;
    }

    public override string ToString() => "held operation " + Id;
}
