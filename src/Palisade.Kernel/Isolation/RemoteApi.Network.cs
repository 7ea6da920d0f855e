// The network filter engine of a driver in its host: sublayers, filters, callouts and flow callbacks are requests to the
// kernel; a callout's classify function runs here when the kernel sends a classification, a flow callback when the kernel
// sends a batch of flows. Held classifications (PendClassify) are not proxied yet.
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

/// <summary>INetworkFilterEngine in a driver host.</summary>
internal sealed class RemoteNetwork(RemoteDriverContext context) : INetworkFilterEngine
{
    /// <summary>Held while a flow callback runs: an unregistration waits for it (run-down), unless it is that callback's.</summary>
    private readonly Lock _flowRun = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, NetworkFlowCallback> _flows = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, int> _flowNumbers = new();

    private IsolationChannel Channel => context.Channel;

    public Status AddSublayer(string name, ushort weight, out CallbackCookie cookie)
    {
        cookie = default;
        if (name is null)
        {
            return Status.InvalidParameter;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.AddSublayer);
            w.String(name);
            w.I32(weight);
            return context.ReadCookie(c, ref w, out cookie);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status DeleteSublayer(CallbackCookie cookie) => context.Cookie(IsolationOp.DeleteSublayer, cookie);

    public Status RegisterCallout(string name, CalloutClassifyCallback classify, out CallbackCookie cookie)
    {
        cookie = default;
        if (name is null || classify is null)
        {
            return Status.InvalidParameter;
        }

        int id = context.Keep(classify);
        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.RegisterCallout);
            w.String(name);
            w.I32(id);
            return context.ReadCookie(c, ref w, out cookie);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status UnregisterCallout(CallbackCookie cookie) => context.Cookie(IsolationOp.UnregisterCallout, cookie);

    public Status AddFilter(NetworkFilter filter, out CallbackCookie cookie)
    {
        cookie = default;
        if (filter?.Name is null || filter.Conditions is null || filter.Conditions.Count > NetworkCodec.MaximumConditions)
        {
            return Status.InvalidParameter;
        }

        foreach (NetworkCondition? condition in filter.Conditions)
        {
            if (condition is null)
            {
                return Status.InvalidParameter;
            }
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.AddFilter);
            NetworkCodec.Write(ref w, filter);
            return context.ReadCookie(c, ref w, out cookie);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status DeleteFilter(CallbackCookie cookie) => context.Cookie(IsolationOp.DeleteFilter, cookie);

    private RemoteHolds Holds => context.Holds;

    /// <summary>Holds the classification of the classify function this thread runs (the kernel pends it on its thread).</summary>
    public Status PendClassify(in NetworkClassifyContext context, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended) =>
        Holds.Pend(PendedOperationKind.NetworkClassify, cancelCallback, out pended, out _, out _);

    public Status CompletePendedClassify(IPendedOperation operation, ClassifyResult result) =>
        context.Holds.Complete(operation, PendedOperationKind.NetworkClassify, (long)result);

    public Status RegisterFlowCallback(NetworkFlowCallback callback, out CallbackCookie cookie)
    {
        cookie = default;
        if (callback is null)
        {
            return Status.InvalidParameter;
        }

        int id = context.Keep(callback);
        _flows[id] = callback;
        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.RegisterFlowCallback);
            w.I32(id);
            Status s = context.ReadCookie(c, ref w, out cookie);
            if (s.IsSuccess)
            {
                _flowNumbers[cookie.Value] = id;
            }
            else
            {
                _flows.TryRemove(id, out _);
            }

            return s;
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    /// <summary>
    /// The kernel stops queueing flows for it; flows it had queued already are skipped here, and a flow callback running
    /// on another thread is waited for (the API's run-down; from inside the callback itself it is not).
    /// </summary>
    public Status UnregisterFlowCallback(CallbackCookie cookie)
    {
        Status s = context.Cookie(IsolationOp.UnregisterFlowCallback, cookie);
        if (s.IsSuccess && _flowNumbers.TryRemove(cookie.Value, out int id))
        {
            _flows.TryRemove(id, out _);
            lock (_flowRun)
            {
                // Only waits: the callback that was running (on another thread) has returned.
            }
        }

        return s;
    }

    /// <summary>Runs a classify function the kernel sent and replies with its result.</summary>
    internal void Classify(Conversation c, int registration, in NetworkClassifyContext classify)
    {
        RecordWriter w;
        try
        {
            var callout = context.Find(registration) as CalloutClassifyCallback
                ?? throw new InvalidOperationException("no callout " + registration + " in this host");
            RemoteHolds.Scope scope = context.Holds.Enter(PendedOperationKind.NetworkClassify);
            ClassifyResult result = ClassifyResult.Continue;
            try
            {
                result = callout(in classify);
            }
            finally
            {
                context.Holds.Exit(scope, result == ClassifyResult.Pending);
            }

            w = c.BeginReply(Status.Success);
            w.U8((byte)CallbackOutcome.Returned);
            w.I32((int)result);
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

    /// <summary>
    /// Runs the flow callbacks of a batch the kernel sent, in order, and replies with the outcome of each (a flow of a
    /// callback unregistered meanwhile is skipped: it returned).
    /// </summary>
    internal void Flows(Conversation c, (int Registration, NetworkFlowInfo Flow)[] batch)
    {
        var threw = new Exception?[batch.Length];
        for (int i = 0; i < batch.Length; i++)
        {
            lock (_flowRun)
            {
                if (!_flows.TryGetValue(batch[i].Registration, out NetworkFlowCallback? callback))
                {
                    continue;
                }

                try
                {
                    callback(in batch[i].Flow);
                }
#pragma warning disable CA1031 // The driver's exception goes to the kernel, which contains it as it does an in-kernel one.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    threw[i] = e;
                }
            }
        }

        RecordWriter w = c.BeginReply(Status.Success);
        foreach (Exception? e in threw)
        {
            if (e is null)
            {
                w.U8((byte)CallbackOutcome.Returned);
                continue;
            }

            // Short messages: the reply holds an outcome for each flow of the batch.
            w.U8((byte)CallbackOutcome.Threw);
            w.String(e.GetType().Name);
            w.String(e.Message.Length > 256 ? e.Message[..256] : e.Message);
        }

        c.Reply(ref w);
    }
}

/// <summary>The host's side of the network and registry callbacks the kernel sends (operations 80-82).</summary>
internal static class RemoteNetworkCallbacks
{
    /// <summary>Reads a callback's record whole (nested calls reuse the buffer), then runs it and replies.</summary>
    public static void Serve(RemoteDriverContext context, Conversation c, IsolationOp op, ref RecordReader a)
    {
        switch (op)
        {
            case IsolationOp.Classify:
            {
                int registration = a.I32();
                NetworkClassifyContext classify = NetworkCodec.ReadClassifyContext(ref a);
                if (a.Finish().IsSuccess)
                {
                    ((RemoteNetwork)context.Network).Classify(c, registration, in classify);
                }

                return;
            }

            case IsolationOp.FlowNotifications:
            {
                uint count = a.U32();
                if (count is 0 or > NetworkCodec.FlowBatch)
                {
                    return;
                }

                var batch = new (int, NetworkFlowInfo)[count];
                for (int i = 0; i < batch.Length && !a.Malformed; i++)
                {
                    var one = new RecordReader(a.Data());
                    int registration = one.I32();
                    NetworkFlowInfo flow = NetworkCodec.ReadFlow(ref one);
                    if (one.Finish().IsError)
                    {
                        a.Fail();
                    }

                    batch[i] = (registration, flow);
                }

                if (a.Finish().IsSuccess)
                {
                    ((RemoteNetwork)context.Network).Flows(c, batch);
                }

                return;
            }

            case IsolationOp.RegistryCallback:
            {
                int registration = a.I32();
                RegistryNotification notification = NetworkCodec.ReadRegistryNotification(ref a);
                if (a.Finish().IsSuccess)
                {
                    ((RemoteRegistry)context.Registry).Run(c, registration, ref notification);
                }

                return;
            }

            default:
                return;
        }
    }
}
