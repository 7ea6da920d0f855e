// Held operations of a driver in its host (a file pre callback's, a process create's, a classification's, an object
// pre callback's, and their completions): the hold lives in the kernel (IsolatedDriver.Holds.cs); the driver's handle is
// a RemotePendedOperation under the hold's id, whose state the host keeps: completed by the driver, withdrawn by its own
// callback, or ended by the kernel (told by HoldEnded).
using System.Collections.Concurrent;
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

/// <summary>The driver's holds, in its host.</summary>
internal sealed class RemoteHolds(RemoteDriverContext context)
{
    /// <summary>The innermost deciding callback this thread runs: only inside one may the driver pend, its own kind.</summary>
    [ThreadStatic]
    private static Scope? t_scope;

    private readonly ConcurrentDictionary<long, RemotePendedOperation> _held = new();

    /// <summary>Starts a deciding callback of <paramref name="kind"/> on this thread; pair with <see cref="Exit"/>.</summary>
    public Scope Enter(PendedOperationKind kind)
    {
        var scope = new Scope(kind, t_scope);
        t_scope = scope;
        return scope;
    }

    /// <summary>Ends a deciding callback: a hold it made and did not return pending for is withdrawn (the kernel does the same).</summary>
    public void Exit(Scope scope, bool returnedPending)
    {
        t_scope = scope.Outer;
        if (scope.Pended is { } pended && !returnedPending)
        {
            End(pended, PendedOperationState.Withdrawn);
        }
    }

    /// <summary>
    /// Holds the operation of the innermost deciding callback of this thread, of <paramref name="kind"/>: the kernel pends it
    /// on the thread that waits for this callback. For a file pre callback, the held file's identity and stamp come back.
    /// </summary>
    public Status Pend(PendedOperationKind kind, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended,
        out FileIdentity file, out FileChangeStamp stamp)
    {
        pended = null;
        file = default;
        stamp = default;
        if (t_scope is not { } scope || scope.Kind != kind || scope.Pended is not null)
        {
            // Outside a callback of that kind of this driver, or a second time in one call: as the kernel answers.
            return Status.InvalidDeviceState;
        }

        Conversation c = context.Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(kind switch
            {
                PendedOperationKind.FilePreOperation => IsolationOp.PendPreOperation,
                PendedOperationKind.ProcessCreate => IsolationOp.PendCreate,
                PendedOperationKind.NetworkClassify => IsolationOp.PendClassify,
                _ => IsolationOp.PendObjectOperation,
            });
            if (!c.Call(ref w, out RecordReader r))
            {
                return Status.InvalidDeviceState;
            }

            Status s = r.Status();
            if (s.IsError)
            {
                return context.End(ref r, s);
            }

            long id = r.I64();
            var heldKind = r.Enum<PendedOperationKind>();
            long deadline = r.I64();
            int processId = r.I32();
            int threadId = r.I32();
            var registration = new CallbackCookie(r.I64());
            if (kind == PendedOperationKind.FilePreOperation)
            {
                file = r.Identity();
                stamp = r.Stamp();
            }

            s = context.End(ref r, s);
            if (s.IsError)
            {
                return s;
            }

            var held = new RemotePendedOperation(this, id, heldKind, deadline, processId, threadId, registration, cancelCallback);
            _held[id] = held;
            scope.Pended = held;
            pended = held;
            return Status.Success;
        }
        finally
        {
            context.Channel.Leave(c);
        }
    }

    /// <summary>Completes a held process create, classification or object operation with <paramref name="value"/>.</summary>
    public Status Complete(IPendedOperation? operation, PendedOperationKind kind, long value)
    {
        Status s = Mine(operation, kind, out RemotePendedOperation? held);
        if (s.IsError)
        {
            return s;
        }

        return Complete(held!, c =>
        {
            RecordWriter w = c.BeginCall(IsolationOp.CompletePended);
            w.I64(held!.Id);
            w.I64(value);
            return context.Request(c, ref w);
        });
    }

    /// <summary>Sends a completion of a hold still held here and takes its answer: the handle ends completed when it was taken.</summary>
    public Status Complete(RemotePendedOperation held, Func<Conversation, Status> send)
    {
        Status s = held.EndedStatus();
        if (s.IsError)
        {
            return s;
        }

        Conversation c = context.Channel.Enter();
        try
        {
            s = send(c);
        }
        finally
        {
            context.Channel.Leave(c);
        }

        if (s == Status.NotFound)
        {
            // The kernel ended the hold and told this host meanwhile: its state says how.
            s = held.EndedStatus();
            s = s.IsError ? s : Status.InvalidHandle;
        }

        if (s.IsSuccess)
        {
            End(held, PendedOperationState.Completed);
        }

        return s;
    }

    /// <summary>The kernel ended a hold of this driver's: its handle takes the state, and the driver's cancel callback runs.</summary>
    public void HoldEnded(Conversation c, long id, PendedOperationState state)
    {
        RecordWriter w;
        try
        {
            if (state is not (PendedOperationState.TimedOut or PendedOperationState.Cancelled))
            {
                throw new InvalidOperationException("the kernel ended hold " + id + " as " + state);
            }

            if (_held.TryGetValue(id, out RemotePendedOperation? held))
            {
                End(held, state);
                held.CancelCallback?.Invoke(held);
            }

            w = c.BeginReply(Status.Success);
            w.U8((byte)CallbackOutcome.Returned);
        }
#pragma warning disable CA1031 // The driver's exception goes to the kernel, which contains it as it does an in-kernel one.
        catch (Exception e)
#pragma warning restore CA1031
        {
            w = c.BeginReply(Status.Success);
            IsolationCodec.WriteThrew(ref w, e);
        }

        c.Reply(ref w);
    }

    /// <summary>The handle, when it is one of this driver's of <paramref name="kind"/>; the status the kernel would give otherwise.</summary>
    public Status Mine(IPendedOperation? operation, PendedOperationKind kind, out RemotePendedOperation? held)
    {
        held = operation as RemotePendedOperation;
        if (operation is null)
        {
            return Status.InvalidParameter;
        }

        if (held is null || !ReferenceEquals(held.Holds, this))
        {
            return Status.InvalidHandle;
        }

        return held.Kind == kind ? Status.Success : Status.InvalidParameter;
    }

    private void End(RemotePendedOperation held, PendedOperationState state)
    {
        held.End(state);
        _ = _held.TryRemove(held.Id, out _);
    }

    /// <summary>A deciding callback running on a thread, and the hold it made.</summary>
    internal sealed class Scope(PendedOperationKind kind, Scope? outer)
    {
        public PendedOperationKind Kind { get; } = kind;

        public Scope? Outer { get; } = outer;

        public RemotePendedOperation? Pended { get; set; }
    }
}

internal sealed partial class RemoteFiles
{
    /// <summary>Runs a pre callback: a hold it made and did not return pending for is withdrawn (the kernel does the same).</summary>
    private PreOperationStatus RunPre(FilePreCallback pre, ref FileOperation operation)
    {
        RemoteHolds.Scope scope = Context.Holds.Enter(PendedOperationKind.FilePreOperation);
        PreOperationStatus verdict = PreOperationStatus.SuccessNoCallback;
        try
        {
            verdict = pre(ref operation);
            return verdict;
        }
        finally
        {
            Context.Holds.Exit(scope, verdict == PreOperationStatus.Pending);
        }
    }

    /// <summary>Keeps a completion context under a new number for the post callback; 0 for none.</summary>
    private long KeepContext(object? context)
    {
        if (context is null)
        {
            return 0;
        }

        long number = Interlocked.Increment(ref _nextNumber);
        _completionContexts[number] = context;
        return number;
    }

    public Status PendPreOperation(ref FileOperation operation, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended)
    {
        Status s = Context.Holds.Pend(PendedOperationKind.FilePreOperation, cancelCallback, out pended, out FileIdentity file, out FileChangeStamp stamp);
        if (s.IsSuccess)
        {
            operation.File = file;
            operation.ChangeStamp = stamp;
        }

        return s;
    }

    public Status CompletePendedPreOperation(IPendedOperation operation, PreOperationStatus verdict, Status status, object? completionContext)
    {
        Status s = Context.Holds.Mine(operation, PendedOperationKind.FilePreOperation, out RemotePendedOperation? held);
        if (s.IsError)
        {
            return s;
        }

        long number = verdict == PreOperationStatus.SuccessWithCallback ? KeepContext(completionContext) : 0;
        s = Context.Holds.Complete(held!, c =>
        {
            RecordWriter w = c.BeginCall(IsolationOp.CompletePendedPreOperation);
            w.I64(held!.Id);
            w.I32((int)verdict);
            w.Status(status);
            w.I64(number);
            return Context.Request(c, ref w);
        });
        if (s.IsError && number != 0)
        {
            _ = _completionContexts.TryRemove(number, out _);
        }

        return s;
    }

    public Status ReadFile(IPendedOperation operation, long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        Status s = Context.Holds.Mine(operation, PendedOperationKind.FilePreOperation, out RemotePendedOperation? held);
        if (s.IsError)
        {
            return s;
        }

        s = Read(IsolationOp.ReadPendedFile, held!.Id, default, offset, buffer, out bytesRead);
        return s == Status.NotFound ? Status.InvalidDeviceState : s;
    }
}

/// <summary>A driver's handle to a hold the kernel keeps for it (<see cref="IPendedOperation"/> in a driver host).</summary>
internal sealed class RemotePendedOperation(RemoteHolds holds, long id, PendedOperationKind kind, long deadline, int processId, int threadId,
    CallbackCookie registration, PendedOperationCancelCallback? cancelCallback) : IPendedOperation
{
    private int _state = (int)PendedOperationState.Held;

    internal RemoteHolds Holds { get; } = holds;

    internal PendedOperationCancelCallback? CancelCallback { get; } = cancelCallback;

    public long Id { get; } = id;

    public PendedOperationKind Kind { get; } = kind;

    /// <summary>On the clock of <see cref="Environment.TickCount64"/>, which is the same in the host as in the kernel (CLOCK_MONOTONIC).</summary>
    public long Deadline { get; } = deadline;

    public TimeSpan Remaining => TimeSpan.FromMilliseconds(Math.Max(0, Deadline - Environment.TickCount64));

    public int RequesterProcessId { get; } = processId;

    public int RequesterThreadId { get; } = threadId;

    public CallbackCookie Registration { get; } = registration;

    public PendedOperationState State => (PendedOperationState)Volatile.Read(ref _state);

    /// <summary>Changes the state once, from held.</summary>
    internal void End(PendedOperationState state) =>
        _ = Interlocked.CompareExchange(ref _state, (int)state, (int)PendedOperationState.Held);

    /// <summary>What a completion of a hold that already ended returns (as the kernel's); success while it is held.</summary>
    internal Status EndedStatus() => State switch
    {
        PendedOperationState.Held => Status.Success,
        PendedOperationState.Completed => Status.AlreadyCompleted,
        PendedOperationState.TimedOut => Status.IoTimeout,
        PendedOperationState.Cancelled => Status.Cancelled,
        _ => Status.InvalidDeviceState,
    };
}
