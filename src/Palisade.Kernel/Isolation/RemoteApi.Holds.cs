// Held file operations of a driver in its host (IFilterManager.PendPreOperation and its completion): the hold lives in
// the kernel (IsolatedDriver.Holds.cs); the driver's handle is a RemotePendedOperation under the hold's id, whose state
// the host keeps: completed by the driver, withdrawn by its own pre callback, or ended by the kernel (told by HoldEnded).
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal sealed partial class RemoteFiles
{
    /// <summary>The pre callbacks this thread runs, nested: only inside one may the driver pend.</summary>
    [ThreadStatic]
    private static int t_preDepth;

    /// <summary>The hold the innermost pre callback of this thread made, if any.</summary>
    [ThreadStatic]
    private static RemotePendedOperation? t_pendedHere;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, RemotePendedOperation> _held = new();

    /// <summary>Runs a pre callback: a hold it made and did not return pending for is withdrawn (the kernel does the same).</summary>
    private PreOperationStatus RunPre(FilePreCallback pre, ref FileOperation operation)
    {
        RemotePendedOperation? outer = t_pendedHere;
        t_pendedHere = null;
        t_preDepth++;
        try
        {
            PreOperationStatus verdict = pre(ref operation);
            if (t_pendedHere is { } pended && verdict != PreOperationStatus.Pending)
            {
                End(pended, PendedOperationState.Withdrawn);
            }

            return verdict;
        }
        finally
        {
            t_preDepth--;
            t_pendedHere = outer;
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
        pended = null;
        if (t_preDepth == 0 || t_pendedHere is not null)
        {
            // Outside a pre callback of this driver, or a second time in one call: as the kernel answers.
            return Status.InvalidDeviceState;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.PendPreOperation);
            if (!c.Call(ref w, out RecordReader r))
            {
                return Status.InvalidDeviceState;
            }

            Status s = r.Status();
            if (s.IsError)
            {
                return Context.End(ref r, s);
            }

            long id = r.I64();
            var kind = r.Enum<PendedOperationKind>();
            long deadline = r.I64();
            int processId = r.I32();
            int threadId = r.I32();
            var registration = new CallbackCookie(r.I64());
            FileIdentity file = r.Identity();
            FileChangeStamp stamp = r.Stamp();
            s = Context.End(ref r, s);
            if (s.IsError)
            {
                return s;
            }

            var held = new RemotePendedOperation(this, id, kind, deadline, processId, threadId, registration, cancelCallback);
            _held[id] = held;
            t_pendedHere = held;
            operation.File = file;
            operation.ChangeStamp = stamp;
            pended = held;
            return Status.Success;
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status CompletePendedPreOperation(IPendedOperation operation, PreOperationStatus verdict, Status status, object? completionContext)
    {
        Status s = Mine(operation, out RemotePendedOperation? held);
        if (s.IsError)
        {
            return s;
        }

        s = held!.EndedStatus();
        if (s.IsError)
        {
            return s;
        }

        long number = verdict == PreOperationStatus.SuccessWithCallback ? KeepContext(completionContext) : 0;
        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.CompletePendedPreOperation);
            w.I64(held.Id);
            w.I32((int)verdict);
            w.Status(status);
            w.I64(number);
            s = Context.Request(c, ref w);
        }
        finally
        {
            Channel.Leave(c);
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
        else if (number != 0)
        {
            _ = _completionContexts.TryRemove(number, out _);
        }

        return s;
    }

    public Status ReadFile(IPendedOperation operation, long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        Status s = Mine(operation, out RemotePendedOperation? held);
        if (s.IsError)
        {
            return s;
        }

        s = Read(IsolationOp.ReadPendedFile, held!.Id, default, offset, buffer, out bytesRead);
        return s == Status.NotFound ? Status.InvalidDeviceState : s;
    }

    /// <summary>The kernel ended a hold of this driver's: its handle takes the state, and the driver's cancel callback runs.</summary>
    internal void HoldEnded(Conversation c, long id, PendedOperationState state)
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

    private Status Mine(IPendedOperation? operation, out RemotePendedOperation? held)
    {
        held = operation as RemotePendedOperation;
        if (operation is null)
        {
            return Status.InvalidParameter;
        }

        if (held is null || !ReferenceEquals(held.Files, this))
        {
            return Status.InvalidHandle;
        }

        return held.Kind == PendedOperationKind.FilePreOperation ? Status.Success : Status.InvalidParameter;
    }

    private void End(RemotePendedOperation held, PendedOperationState state)
    {
        held.End(state);
        _ = _held.TryRemove(held.Id, out _);
    }
}

/// <summary>A driver's handle to a hold the kernel keeps for it (<see cref="IPendedOperation"/> in a driver host).</summary>
internal sealed class RemotePendedOperation(RemoteFiles files, long id, PendedOperationKind kind, long deadline, int processId, int threadId,
    CallbackCookie registration, PendedOperationCancelCallback? cancelCallback) : IPendedOperation
{
    private int _state = (int)PendedOperationState.Held;

    internal RemoteFiles Files { get; } = files;

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
