// The kernel's side of an isolated driver's network filter engine and registry callbacks. A callout's classify function
// and a registry callback decide, so each is a round trip on the conversation of the operation. A flow callback decides
// nothing: the kernel's proxy only queues the flow, and a thread of this driver's sends the queue to the host in batches,
// so a guest's connect or accept never waits for the host (docs/security.md, "The isolated mode").
using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Isolation;

internal sealed partial class IsolatedDriver
{
    private readonly Lock _flowStart = new();
    private FlowNotifier? _flows;

    /// <summary>Serves the host's calls of the network filter engine and registry callbacks (operations 84-93).</summary>
    private void ServeNetworkOrRegistry(Conversation c, IsolationOp op, ref RecordReader a, DriverContext context)
    {
        INetworkFilterEngine network = context.Network;
        switch (op)
        {
            case IsolationOp.AddSublayer:
            {
                string? name = a.String();
                int weight = a.I32();
                if (weight is < 0 or > ushort.MaxValue)
                {
                    a.Fail();
                }

                if (a.Finish().IsSuccess)
                {
                    ReplyCookie(c, network.AddSublayer(name!, (ushort)weight, out CallbackCookie cookie), cookie);
                }

                return;
            }

            case IsolationOp.DeleteSublayer:
                ServeCookie(c, ref a, network.DeleteSublayer);
                return;
            case IsolationOp.RegisterCallout:
            {
                string? name = a.String();
                int registration = a.I32();
                if (a.Finish().IsSuccess)
                {
                    var proxy = new NetworkProxy(this, registration);
                    ReplyCookie(c, network.RegisterCallout(name!, proxy.Classify, out CallbackCookie cookie), cookie);
                }

                return;
            }

            case IsolationOp.UnregisterCallout:
                ServeCookie(c, ref a, network.UnregisterCallout);
                return;
            case IsolationOp.AddFilter:
            {
                NetworkFilter? filter = NetworkCodec.ReadFilter(ref a);
                if (a.Finish().IsSuccess)
                {
                    ReplyCookie(c, network.AddFilter(filter!, out CallbackCookie cookie), cookie);
                }

                return;
            }

            case IsolationOp.DeleteFilter:
                ServeCookie(c, ref a, network.DeleteFilter);
                return;
            case IsolationOp.RegisterFlowCallback:
            {
                int registration = a.I32();
                if (a.Finish().IsSuccess)
                {
                    var proxy = new NetworkProxy(this, registration);
                    Status s = network.RegisterFlowCallback(proxy.Flow, out CallbackCookie cookie);
                    proxy.Cookie = cookie;
                    ReplyCookie(c, s, cookie);
                }

                return;
            }

            case IsolationOp.UnregisterFlowCallback:
                ServeCookie(c, ref a, network.UnregisterFlowCallback);
                return;
            case IsolationOp.RegisterRegistryCallback:
            {
                int registration = a.I32();
                string? altitude = a.String();
                if (a.Finish().IsSuccess)
                {
                    var proxy = new NetworkProxy(this, registration);
                    ReplyCookie(c, context.Registry.Register(proxy.Notify, altitude!, out CallbackCookie cookie), cookie);
                }

                return;
            }

            case IsolationOp.UnregisterRegistryCallback:
                ServeCookie(c, ref a, context.Registry.Unregister);
                return;
            default:
                // A callback sent to the kernel: the host broke the protocol (no reply: the channel fails).
                return;
        }
    }

    internal ClassifyResult Classify(int registration, in NetworkClassifyContext context)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        HoldFrames frames = HoldFrames.Current;
        Frame frame = frames.Push(c, PendedOperationKind.NetworkClassify);
        frame.Classify = context;
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.Classify);
            w.I32(registration);
            NetworkCodec.Write(ref w, in context);
            if (w.Overflowed)
            {
                throw new IsolatedCallbackException("the classification does not fit in a record for the driver host");
            }

            if (!c.Call(ref w, out RecordReader r))
            {
                throw HostFailed();
            }

            ReadOutcome(ref r);
            int result = r.I32();
            EndReply(ref r);
            AfterDecision(frame, (ClassifyResult)result == ClassifyResult.Pending);
            return (ClassifyResult)result;
        }
        finally
        {
            frames.Pop(frame);
            channel.Leave(c);
        }
    }

    internal Status OnRegistry(int registration, ref RegistryNotification n)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.RegistryCallback);
            w.I32(registration);
            NetworkCodec.Write(ref w, in n);
            if (w.Overflowed)
            {
                throw new IsolatedCallbackException("the notification (" + n.Data.Length + " bytes of data) does not fit in a record for the driver host");
            }

            if (!c.Call(ref w, out RecordReader r))
            {
                throw HostFailed();
            }

            ReadOutcome(ref r);
            Status s = r.Status();
            if (s != Status.CallbackBypass)
            {
                EndReply(ref r);
                return s;
            }

            var type = (RegistryValueType)r.I32();
            byte[] data = r.Data().ToArray();
            string[]? names = r.Bool() ? r.Strings() : null;
            EndReply(ref r);
            n.BypassType = type;
            n.BypassData = data;
            n.BypassNames = names;
            return s;
        }
        finally
        {
            channel.Leave(c);
        }
    }

    /// <summary>The proxy of a flow callback: queues the flow for the host and returns at once.</summary>
    private void QueueFlow(NetworkProxy proxy, in NetworkFlowInfo flow)
    {
        FlowNotifier? flows = Volatile.Read(ref _flows);
        if (flows is null)
        {
            lock (_flowStart)
            {
                flows = _flows ??= new FlowNotifier(this);
            }
        }

        flows.Add(proxy, in flow);
    }

    /// <summary>At unload: sends what is queued (the flows closed at the end of the run), then ends the sending thread.</summary>
    private void StopFlowNotifications()
    {
        FlowNotifier? flows;
        lock (_flowStart)
        {
            flows = _flows;
        }

        flows?.Stop(TimeSpan.FromMilliseconds(_kernel.Options.CallbackDeadline.TotalMilliseconds * 2) + TimeSpan.FromSeconds(1));
    }

    /// <summary>The kernel's callbacks of one network or registry registration of the host's.</summary>
    private sealed class NetworkProxy(IsolatedDriver driver, int registration)
    {
        public int Registration { get; } = registration;

        /// <summary>For a flow callback: the kernel's cookie of it, to find it when its host reports a fault.</summary>
        public CallbackCookie Cookie { get; set; }

        public ClassifyResult Classify(in NetworkClassifyContext context) => driver.Classify(Registration, in context);

        public void Flow(in NetworkFlowInfo flow) => driver.QueueFlow(this, in flow);

        public Status Notify(ref RegistryNotification notification) => driver.OnRegistry(Registration, ref notification);
    }

    /// <summary>
    /// The flow notifications of one isolated driver: a queue the kernel's proxies add to (on the guest's thread or the
    /// flow sweep), and one thread that sends it to the host in order, in batches of at most <see cref="Batch"/> flows. A
    /// notification the host's callback threw on is a fault of that registration, reported as an in-kernel one's.
    /// </summary>
    private sealed class FlowNotifier
    {
        /// <summary>The most flows one record carries (the reply holds an outcome, and maybe an exception, for each).</summary>
        public const int Batch = NetworkCodec.FlowBatch;

        /// <summary>The most flows waiting for the host; beyond, flows are dropped and a driver-fault line says so.</summary>
        public const int QueueLimit = 4096;

        private readonly IsolatedDriver _driver;
        private readonly ConcurrentQueue<(NetworkProxy Proxy, NetworkFlowInfo Flow)> _queue = new();
        private readonly SemaphoreSlim _signal = new(0, 1);
        private readonly Thread _thread;
        private readonly byte[] _scratch = new byte[IsolationRecord.MaximumSize];
        private readonly byte[] _batch = new byte[IsolationRecord.MaximumSize];
        private readonly (int Start, int Length)[] _items = new (int, int)[Batch];
        private readonly (NetworkProxy Proxy, NetworkFlowInfo Flow)[] _sent = new (NetworkProxy, NetworkFlowInfo)[Batch];
        private int _count;
        private int _signalled;
        private int _dropping;
        private volatile bool _stopping;

        public FlowNotifier(IsolatedDriver driver)
        {
            _driver = driver;
            _thread = new Thread(Run) { IsBackground = true, Name = "palisade-isolation-flows" };
            _thread.Start();
        }

        public void Add(NetworkProxy proxy, in NetworkFlowInfo flow)
        {
            if (_stopping)
            {
                return;
            }

            if (Interlocked.Increment(ref _count) > QueueLimit)
            {
                Interlocked.Decrement(ref _count);
                if (Interlocked.Exchange(ref _dropping, 1) == 0)
                {
                    _driver._kernel.Events.WriteDriverFault(_driver._context?.DriverName ?? "?", FormattableString.Invariant(
                        $"its driver host is {QueueLimit} flow notifications behind; further flows are not told to it until it catches up"));
                }

                return;
            }

            _queue.Enqueue((proxy, flow));
            if (Interlocked.Exchange(ref _signalled, 1) == 0)
            {
                _signal.Release();
            }
        }

        public void Stop(TimeSpan wait)
        {
            _stopping = true;
            if (Interlocked.Exchange(ref _signalled, 1) == 0)
            {
                _signal.Release();
            }

            _ = _thread.Join(wait);
        }

        private void Run()
        {
            while (true)
            {
                _signal.Wait();
                Volatile.Write(ref _signalled, 0);
                while (!_queue.IsEmpty)
                {
                    SendBatch();
                }

                if (_stopping)
                {
                    return;
                }
            }
        }

        /// <summary>Sends the flows at the head of the queue that fit in one record, and reads their outcomes.</summary>
        private void SendBatch()
        {
            int count = 0, used = 0;
            while (count < Batch && _queue.TryPeek(out (NetworkProxy Proxy, NetworkFlowInfo Flow) item))
            {
                var one = new RecordWriter(_scratch, 1, RecordKind.Call, IsolationOp.FlowNotifications);
                one.I32(item.Proxy.Registration);
                NetworkCodec.Write(ref one, in item.Flow);
                int length = one.Length - IsolationRecord.HeaderSize;
                if (count > 0 && !one.Overflowed && used + length + 8 > IsolationRecord.MaximumData)
                {
                    break; // The next record takes it.
                }

                _ = _queue.TryDequeue(out _);
                Interlocked.Decrement(ref _count);
                if (one.Overflowed || length + 8 > IsolationRecord.MaximumData)
                {
                    Fault(item, "the flow does not fit in a record for the driver host");
                    continue;
                }

                _scratch.AsSpan(IsolationRecord.HeaderSize, length).CopyTo(_batch.AsSpan(used));
                _items[count] = (used, length);
                _sent[count++] = item;
                used += length;
            }

            if (_queue.IsEmpty)
            {
                Volatile.Write(ref _dropping, 0);
            }

            if (count > 0)
            {
                Send(count);
                Array.Clear(_sent, 0, count);
            }
        }

        private void Send(int count)
        {
            IsolationChannel channel = _driver._channel!;
            Conversation c = channel.Enter();
            try
            {
                RecordWriter w = c.BeginCall(IsolationOp.FlowNotifications);
                w.U32((uint)count);
                for (int i = 0; i < count; i++)
                {
                    _batch.AsSpan(_items[i].Start, _items[i].Length).CopyTo(w.Data(_items[i].Length));
                }

                if (!c.Call(ref w, out RecordReader r))
                {
                    for (int i = 0; i < count; i++)
                    {
                        Fault(_sent[i], "the driver host failed: " + (channel.Failure ?? "unknown"));
                    }

                    return;
                }

                // The outcomes, read whole before any fault is reported (a fault callback may call into the kernel).
                Status s = r.Status();
                var threw = new List<(int Index, string What)>();
                for (int i = 0; i < count && !r.Malformed; i++)
                {
                    if ((CallbackOutcome)r.U8() == CallbackOutcome.Threw)
                    {
                        string type = r.Text();
                        string message = r.Text();
                        threw.Add((i, type + " in the driver host: " + message));
                    }
                }

                if (r.Finish().IsError || s.IsError)
                {
                    channel.Fail("a malformed reply to " + IsolationOp.FlowNotifications);
                    return;
                }

                foreach ((int index, string what) in threw)
                {
                    Fault(_sent[index], what);
                }
            }
            finally
            {
                channel.Leave(c);
            }
        }

        /// <summary>A flow the host's callback threw on, or could not be told: a fault of its registration.</summary>
        private void Fault((NetworkProxy Proxy, NetworkFlowInfo Flow) item, string why)
        {
            DriverContext? context = _driver._context;
            Registration? registration = context is null ? null : _driver._kernel.Network.FlowCallbacks.Find(item.Proxy.Cookie, context.Driver);
            if (registration is null)
            {
                return; // Unregistered since: its notifications are not its faults.
            }

            NetworkClassifyContext flow = item.Flow.Classify;
            var tag = new OperationTag(item.Flow.Event == NetworkFlowEvent.Established ? "flow-established" : "flow-closed", flow.ProcessId, flow.RemoteAddress, flow.RemotePort);
            _driver._kernel.Faults.Threw(registration, in tag, new IsolatedCallbackException(why));
        }
    }
}
