// Held operations of an isolated driver (a file pre callback's, a process create's, a classification's, an object pre
// callback's, and their completions), and the fault notifications of its registrations
// (IDriverContext.RegisterFaultCallback), which drivers that hold use to learn of holds they lost. The driver pends
// inside its callback, in its host: the call crosses on the callback's own conversation, so the kernel serves it on the
// very thread whose callback frame is pending, and pends there with its own API and a copy of the operation the proxy
// sent (the kernel recognizes an operation by its references, which the copy shares). The hold then lives in the
// kernel as any in-kernel driver's; the host keeps a handle under the hold's id, and the kernel tells it when it ends a
// hold itself (timeout, cancel), so that the handle's state is the kernel's.
using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Isolation;

internal sealed partial class IsolatedDriver
{
    /// <summary>The driver's holds the host has a handle to, by id, until the host has learned how each ended.</summary>
    private readonly ConcurrentDictionary<long, IPendedOperation> _held = new();

    private PendedOperationCancelCallback? _onHoldEnded;

    /// <summary>How many holds the host still has a handle to (for tests).</summary>
    internal int HeldCount => _held.Count;

    /// <summary>
    /// The operations of the proxy's deciding callbacks this thread is in (file pre callbacks, process creates,
    /// classifications, object pre callbacks), innermost last, each with the conversation it waits on: a pend the host
    /// asks for on that conversation pends the innermost one, with the kernel's own API and a copy of the operation.
    /// </summary>
    private sealed class HoldFrames
    {
        [ThreadStatic]
        private static HoldFrames? t_current;

        private Frame[] _frames = [new(), new(), new(), new()];
        private int _depth;

        public static HoldFrames Current => t_current ??= new HoldFrames();

        public Frame Push(Conversation c, PendedOperationKind kind)
        {
            if (_depth == _frames.Length)
            {
                Array.Resize(ref _frames, _depth * 2);
                for (int i = _depth; i < _frames.Length; i++)
                {
                    _frames[i] = new Frame();
                }
            }

            Frame f = _frames[_depth];
            f.Depth = _depth++;
            f.Conversation = c;
            f.Kind = kind;
            f.Pended = 0;
            return f;
        }

        public void Pop(Frame f)
        {
            // Nothing of a finished operation stays reachable from the thread.
            f.File = default;
            f.Create = default;
            f.Classify = default;
            f.Object = default;
            f.Conversation = null;
            _depth = f.Depth;
        }

        /// <summary>The innermost frame, when it is of <paramref name="kind"/> and waits on <paramref name="c"/>; null otherwise.</summary>
        public Frame? Innermost(Conversation c, PendedOperationKind kind) =>
            _depth > 0 && _frames[_depth - 1] is { } f && ReferenceEquals(f.Conversation, c) && f.Kind == kind ? f : null;
    }

    /// <summary>One deciding callback of the proxy on this thread: the copy of its operation (of its kind) and its hold.</summary>
    private sealed class Frame
    {
        public int Depth;
        public Conversation? Conversation;
        public PendedOperationKind Kind;
        public FileOperation File;
        public ProcessCreateInfo Create;
        public NetworkClassifyContext Classify;
        public ObjectPreOperationInfo Object;

        /// <summary>The id of the hold made in this callback, or 0.</summary>
        public long Pended;
    }

    /// <summary>
    /// After the host's pre callback returned: a pend it made gave the operation the held file; a verdict other than
    /// pending withdrew it (the kernel applies the verdict), so the host's handle is done with.
    /// </summary>
    private void AfterPre(Frame frame, ref FileOperation op, PreOperationStatus verdict)
    {
        if (frame.Pended == 0)
        {
            return;
        }

        op.File = frame.File.File;
        op.ChangeStamp = frame.File.ChangeStamp;
        AfterDecision(frame, verdict == PreOperationStatus.Pending);
    }

    /// <summary>After a deciding callback returned: a hold it made and did not return pending for is withdrawn.</summary>
    private void AfterDecision(Frame frame, bool returnedPending)
    {
        if (frame.Pended != 0 && !returnedPending)
        {
            _ = _held.TryRemove(frame.Pended, out _);
        }
    }

    private void ServeHold(Conversation c, IsolationOp op, ref RecordReader a, IFilterManager files)
    {
        switch (op)
        {
            case IsolationOp.PendPreOperation:
                if (a.Finish().IsSuccess)
                {
                    Pend(c, PendedOperationKind.FilePreOperation);
                }

                return;
            case IsolationOp.PendCreate:
            case IsolationOp.PendClassify:
            case IsolationOp.PendObjectOperation:
                if (a.Finish().IsSuccess)
                {
                    Pend(c, op switch
                    {
                        IsolationOp.PendCreate => PendedOperationKind.ProcessCreate,
                        IsolationOp.PendClassify => PendedOperationKind.NetworkClassify,
                        _ => PendedOperationKind.ObjectPreOperation,
                    });
                }

                return;
            case IsolationOp.CompletePended:
            {
                long id = a.I64();
                long value = a.I64();
                if (a.Finish().IsError)
                {
                    return;
                }

                if (!_held.TryGetValue(id, out IPendedOperation? held))
                {
                    c.Reply(Status.NotFound);
                    return;
                }

                DriverContext context = _context!;
                Status s = held.Kind switch
                {
                    PendedOperationKind.ProcessCreate => context.Processes.CompletePendedCreate(held, new Status((uint)value)),
                    PendedOperationKind.NetworkClassify => context.Network.CompletePendedClassify(held, (ClassifyResult)value),
                    PendedOperationKind.ObjectPreOperation => context.Objects.CompletePendedOperation(held, (ProcessAccessRights)value),
                    _ => Status.InvalidParameter,
                };
                if (s.IsSuccess || held.State != PendedOperationState.Held)
                {
                    _ = _held.TryRemove(id, out _);
                }

                c.Reply(s);
                return;
            }

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

    private void Pend(Conversation c, PendedOperationKind kind)
    {
        Frame? frame = HoldFrames.Current.Innermost(c, kind);
        if (frame is null)
        {
            // Not inside a deciding callback of that kind the kernel waits for on this conversation (a work item, a
            // post callback, another kind of callback).
            c.Reply(Status.InvalidDeviceState);
            return;
        }

        // The host is told of every hold the kernel ends, so that its handle says how; whether the driver's own cancel
        // callback runs is the host's to decide.
        _onHoldEnded ??= OnHoldEnded;
        DriverContext context = _context!;
        IPendedOperation? held;
        Status s = kind switch
        {
            PendedOperationKind.FilePreOperation => context.Files.PendPreOperation(ref frame.File, _onHoldEnded, out held),
            PendedOperationKind.ProcessCreate => context.Processes.PendCreate(in frame.Create, _onHoldEnded, out held),
            PendedOperationKind.NetworkClassify => context.Network.PendClassify(in frame.Classify, _onHoldEnded, out held),
            _ => context.Objects.PendOperation(ref frame.Object, _onHoldEnded, out held),
        };
        if (s.IsError)
        {
            c.Reply(s);
            return;
        }

        frame.Pended = held!.Id;
        _held[held.Id] = held;
        RecordWriter w = c.BeginReply(Status.Success);
        w.I64(held.Id);
        w.I32((int)held.Kind);
        w.I64(held.Deadline);
        w.I32(held.RequesterProcessId);
        w.I32(held.RequesterThreadId);
        w.I64(held.Registration.Value);
        if (kind == PendedOperationKind.FilePreOperation)
        {
            w.Identity(frame.File.File);
            w.Stamp(frame.File.ChangeStamp);
        }

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
