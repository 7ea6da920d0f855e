// Held file operations of an isolated driver (IFilterManager.PendPreOperation and its completion), and the fault
// notifications of its registrations (IDriverContext.RegisterFaultCallback), which drivers that hold use to learn of
// holds they lost. The driver pends
// inside its pre callback, in its host: the call crosses on the pre callback's own conversation, so the kernel serves
// it on the very thread whose callback frame is pending, and pends there with a copy of the operation the proxy sent
// (the kernel recognizes an operation by its source and path references, which the copy shares). The hold then lives
// in the kernel as any in-kernel driver's; the host keeps a handle under the hold's id, and the kernel tells it when it
// ends a hold itself (timeout, cancel), so that the handle's state is the kernel's.
using System.Collections.Concurrent;
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal sealed partial class IsolatedDriver
{
    /// <summary>The driver's holds the host has a handle to, by id, until the host has learned how each ended.</summary>
    private readonly ConcurrentDictionary<long, IPendedOperation> _held = new();

    private PendedOperationCancelCallback? _onHoldEnded;

    /// <summary>How many holds the host still has a handle to (for tests).</summary>
    internal int HeldCount => _held.Count;

    /// <summary>
    /// The operations of the proxy's pre callbacks this thread is in, innermost last, with the conversation each waits on:
    /// a pend the host asks for on that conversation pends the innermost one.
    /// </summary>
    private sealed class PreFrames
    {
        [ThreadStatic]
        private static PreFrames? t_current;

        private FileOperation[] _operations = new FileOperation[4];
        private Conversation?[] _conversations = new Conversation?[4];
        private long[] _pended = new long[4];
        private int _depth;

        public static PreFrames Current => t_current ??= new PreFrames();

        public int Push(Conversation c, in FileOperation op)
        {
            if (_depth == _operations.Length)
            {
                Array.Resize(ref _operations, _depth * 2);
                Array.Resize(ref _conversations, _depth * 2);
                Array.Resize(ref _pended, _depth * 2);
            }

            _operations[_depth] = op;
            _conversations[_depth] = c;
            _pended[_depth] = 0;
            return _depth++;
        }

        public void Pop(int frame)
        {
            // Nothing of a finished operation stays reachable from the thread.
            _operations[frame] = default;
            _conversations[frame] = null;
            _depth = frame;
        }

        /// <summary>The innermost frame, when it waits on <paramref name="c"/>; -1 otherwise.</summary>
        public int Innermost(Conversation c) => _depth > 0 && ReferenceEquals(_conversations[_depth - 1], c) ? _depth - 1 : -1;

        public ref FileOperation Operation(int frame) => ref _operations[frame];

        public ref long Pended(int frame) => ref _pended[frame];
    }

    /// <summary>
    /// After the host's pre callback returned: a pend it made gave the operation the held file; a verdict other than
    /// pending withdrew it (the kernel applies the verdict), so the host's handle is done with.
    /// </summary>
    private void AfterPre(PreFrames frames, int frame, ref FileOperation op, PreOperationStatus verdict)
    {
        long id = frames.Pended(frame);
        if (id == 0)
        {
            return;
        }

        ref FileOperation pended = ref frames.Operation(frame);
        op.File = pended.File;
        op.ChangeStamp = pended.ChangeStamp;
        if (verdict != PreOperationStatus.Pending)
        {
            _ = _held.TryRemove(id, out _);
        }
    }

    private void ServeHold(Conversation c, IsolationOp op, ref RecordReader a, IFilterManager files)
    {
        switch (op)
        {
            case IsolationOp.PendPreOperation:
                if (a.Finish().IsSuccess)
                {
                    Pend(c, files);
                }

                return;

            case IsolationOp.CompletePendedPreOperation:
            {
                long id = a.I64();
                PreOperationStatus verdict = a.Enum<PreOperationStatus>();
                Status status = a.Status();
                long context = a.I64();
                if (a.Finish().IsError)
                {
                    return;
                }

                if (!_held.TryGetValue(id, out IPendedOperation? held))
                {
                    c.Reply(Status.NotFound);
                    return;
                }

                Status s = files.CompletePendedPreOperation(held, verdict, status, context == 0 ? null : new ContextToken(context));
                if (s.IsSuccess || held.State != PendedOperationState.Held)
                {
                    _ = _held.TryRemove(id, out _);
                }

                c.Reply(s);
                return;
            }

            case IsolationOp.ReadPendedFile:
            {
                long id = a.I64();
                long offset = a.I64();
                int length = a.I32();
                if (a.Finish().IsError)
                {
                    return;
                }

                if (!_held.TryGetValue(id, out IPendedOperation? held))
                {
                    c.Reply(Status.NotFound);
                    return;
                }

                Span<byte> data = BeginRead(c, length, out RecordWriter w);
                EndRead(c, ref w, files.ReadFile(held, offset, data, out int read), data.Length, read);
                return;
            }
        }
    }

    private void Pend(Conversation c, IFilterManager files)
    {
        PreFrames frames = PreFrames.Current;
        int frame = frames.Innermost(c);
        if (frame < 0)
        {
            // Not inside a pre callback the kernel waits for on this conversation (a work item, a post callback).
            c.Reply(Status.InvalidDeviceState);
            return;
        }

        // The host is told of every hold the kernel ends, so that its handle says how; whether the driver's own cancel
        // callback runs is the host's to decide.
        _onHoldEnded ??= OnHoldEnded;
        Status s = files.PendPreOperation(ref frames.Operation(frame), _onHoldEnded, out IPendedOperation? held);
        if (s.IsError)
        {
            c.Reply(s);
            return;
        }

        frames.Pended(frame) = held!.Id;
        _held[held.Id] = held;
        ref FileOperation op = ref frames.Operation(frame);
        RecordWriter w = c.BeginReply(Status.Success);
        w.I64(held.Id);
        w.I32((int)held.Kind);
        w.I64(held.Deadline);
        w.I32(held.RequesterProcessId);
        w.I32(held.RequesterThreadId);
        w.I64(held.Registration.Value);
        w.Identity(op.File);
        w.Stamp(op.ChangeStamp);
        c.Reply(ref w);
    }

    /// <summary>The kernel ended a hold (timeout, the guest gone, the filter removed): the host learns its final state.</summary>
    private void OnHoldEnded(IPendedOperation held)
    {
        IsolationChannel? channel = _channel;
        if (channel is null || channel.Failure is not null)
        {
            _ = _held.TryRemove(held.Id, out _);
            return;
        }

        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.HoldEnded);
            w.I64(held.Id);
            w.I32((int)held.State);
            if (!c.Call(ref w, out RecordReader r))
            {
                throw HostFailed();
            }

            // The driver's cancel callback ran in the host: what it threw is contained as an in-kernel one's.
            ReadOutcome(ref r);
            EndReply(ref r);
        }
        finally
        {
            _ = _held.TryRemove(held.Id, out _);
            channel.Leave(c);
        }
    }

    /// <summary>Tells the host of a fault of one of the driver's registrations (on one of the driver's kernel worker threads).</summary>
    private void Fault(int registration, in RegistrationFaultInfo fault)
    {
        IsolationChannel? channel = _channel;
        if (channel is null || channel.Failure is not null)
        {
            // The host is gone: the faults its end causes are reported as driver-fault lines, not to the driver.
            return;
        }

        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.RegistrationFault);
            w.I32(registration);
            IsolationCodec.Write(ref w, in fault);
            _ = CallForStatus(c, ref w);
        }
        finally
        {
            channel.Leave(c);
        }
    }

    /// <summary>The kernel's fault callback for one fault subscription of the host's.</summary>
    private sealed class FaultProxy(IsolatedDriver driver, int registration)
    {
        public void Fault(in RegistrationFaultInfo fault) => driver.Fault(registration, in fault);
    }

    /// <summary>Starts a read's reply: the span to read at most <paramref name="length"/> bytes into, straight in the record.</summary>
    private static Span<byte> BeginRead(Conversation c, int length, out RecordWriter w)
    {
        w = c.BeginReply(Status.Success);
        return w.Data(Math.Clamp(length, 0, IsolationRecord.MaximumData));
    }

    /// <summary>Ends a read's reply: the bytes read, or the status alone when the read failed.</summary>
    private static void EndRead(Conversation c, ref RecordWriter w, Status s, int room, int read)
    {
        if (s.IsError)
        {
            c.Reply(s);
            return;
        }

        w.TrimData(room, read);
        c.Reply(ref w);
    }
}
