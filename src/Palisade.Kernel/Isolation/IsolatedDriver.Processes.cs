// The kernel's side of an isolated driver's process notifications and process control. Process exit, thread create and
// exit, fork and exec-result callbacks return no verdict: their proxies send a one-way record (RecordKind.Notify) and
// return at once, so the guest's system call never waits for the host. A record the host's socket has no room for is
// dropped and counted, as are those the host's queue had no room for (NotificationsDropped): the first drop of a driver
// writes a driver-fault line, its unload the total.
using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Isolation;

internal sealed partial class IsolatedDriver : INotificationHandler
{
    private long _notificationsDropped;

    /// <summary>Notifications of this driver dropped so far, by the kernel (the host's socket was full) or by the host (its queue was).</summary>
    public long NotificationsDropped => Interlocked.Read(ref _notificationsDropped);

    /// <summary>The host's notifications: how many it dropped.</summary>
    public bool Notify(IsolationOp op, ref RecordReader arguments)
    {
        uint count = arguments.U32();
        if (op != IsolationOp.NotificationsDropped || arguments.Finish().IsError || count == 0)
        {
            return false;
        }

        Dropped(count, "its driver host's queue was full");
        return true;
    }

    private void Dropped(long count, string why)
    {
        if (Interlocked.Add(ref _notificationsDropped, count) == count)
        {
            _kernel.Events.WriteDriverFault(_context?.DriverName ?? "?", FormattableString.Invariant(
                $"{count} notification(s) dropped: {why} (notifications are not waited for; the total is reported at unload)"));
        }
    }

    private void ReportDroppedNotifications()
    {
        long total = NotificationsDropped;
        if (total > 0)
        {
            _kernel.Events.WriteDriverFault(_context?.DriverName ?? "?", FormattableString.Invariant(
                $"{total} notification(s) dropped in all while it ran: its driver host did not keep up"));
        }
    }

    /// <summary>Sends what a notification proxy wrote; the host failed: thrown, contained as an in-kernel callback that threw.</summary>
    private void Send(IsolationChannel channel, ref RecordWriter w)
    {
        switch (channel.Notify(ref w))
        {
            case NotifyResult.Sent:
                return;
            case NotifyResult.Dropped:
                Dropped(1, "its driver host's socket was full");
                return;
            default:
                throw w.Overflowed ? new IsolatedCallbackException("a notification did not fit in a record") : HostFailed();
        }
    }

    internal void NotifyExit(int registration, in ProcessExitInfo info)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = channel.BeginNotify(c.Sending, IsolationOp.ProcessExit);
            w.I32(registration);
            ProcessNotificationCodec.Write(ref w, in info);
            Send(channel, ref w);
        }
        finally
        {
            channel.Leave(c);
        }
    }

    internal void NotifyThread(IsolationOp op, int registration, in ThreadInfo info)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = channel.BeginNotify(c.Sending, op);
            w.I32(registration);
            ProcessNotificationCodec.Write(ref w, in info);
            Send(channel, ref w);
        }
        finally
        {
            channel.Leave(c);
        }
    }

    internal void NotifyFork(int registration, in ProcessForkInfo info)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = channel.BeginNotify(c.Sending, IsolationOp.ProcessFork);
            w.I32(registration);
            ProcessNotificationCodec.Write(ref w, in info);
            Send(channel, ref w);
        }
        finally
        {
            channel.Leave(c);
        }
    }

    internal void NotifyExecResult(int registration, in ExecResultInfo info)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = channel.BeginNotify(c.Sending, IsolationOp.ExecResult);
            w.I32(registration);
            ProcessNotificationCodec.Write(ref w, in info);
            Send(channel, ref w);
        }
        finally
        {
            channel.Leave(c);
        }
    }

    /// <summary>The host's process registrations and process control, against the driver's own context.</summary>
    private void ServeProcesses(Conversation c, IsolationOp op, ref RecordReader a, DriverContext context)
    {
        IProcessCallbacks processes = context.Processes;
        switch (op)
        {
            case IsolationOp.RegisterProcessExit:
            case IsolationOp.RegisterThreadCreate:
            case IsolationOp.RegisterThreadExit:
            case IsolationOp.RegisterProcessFork:
            case IsolationOp.RegisterExecResult:
            {
                int registration = a.I32();
                if (a.Finish().IsError)
                {
                    return;
                }

                var proxy = new NotificationProxy(this, registration);
                CallbackCookie cookie;
                Status s = op switch
                {
                    IsolationOp.RegisterProcessExit => processes.RegisterProcessExit(proxy.Exit, out cookie),
                    IsolationOp.RegisterThreadCreate => processes.RegisterThreadCreate(proxy.ThreadCreate, out cookie),
                    IsolationOp.RegisterThreadExit => processes.RegisterThreadExit(proxy.ThreadExit, out cookie),
                    IsolationOp.RegisterProcessFork => processes.RegisterProcessFork(proxy.Fork, out cookie),
                    _ => processes.RegisterExecResult(proxy.ExecResult, out cookie),
                };
                ReplyCookie(c, s, cookie);
                return;
            }

            case IsolationOp.TerminateProcess:
            case IsolationOp.SuspendProcess:
            case IsolationOp.ResumeProcess:
            {
                long key = a.I64();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(op switch
                    {
                        IsolationOp.TerminateProcess => processes.TerminateProcess(key),
                        IsolationOp.SuspendProcess => processes.SuspendProcess(key),
                        _ => processes.ResumeProcess(key),
                    });
                }

                return;
            }

            case IsolationOp.ListProducts:
            {
                if (a.Finish().IsError)
                {
                    return;
                }

                Status s = context.SecurityCenter.ListProducts(out IReadOnlyList<SecurityProduct> products);
                RecordWriter w = c.BeginReply(s);
                w.U32((uint)products.Count);
                foreach (SecurityProduct p in products)
                {
                    w.I32((int)p.Kind);
                    w.String(p.DisplayName);
                    w.String(p.DriverName);
                    w.I32((int)p.State);
                }

                if (w.Overflowed)
                {
                    // More products than a record holds: the list does not cross cut short.
                    c.Reply(Status.BufferTooSmall);
                    return;
                }

                c.Reply(ref w);
                return;
            }

            default:
                // A notification sent as a call, or a number of this range not defined: the host broke the protocol.
                return;
        }
    }

    /// <summary>The kernel's callbacks of one notification registration of the host's: each sends and returns.</summary>
    private sealed class NotificationProxy(IsolatedDriver driver, int registration)
    {
        public void Exit(in ProcessExitInfo info) => driver.NotifyExit(registration, in info);

        public void ThreadCreate(in ThreadInfo info) => driver.NotifyThread(IsolationOp.ThreadCreate, registration, in info);

        public void ThreadExit(in ThreadInfo info) => driver.NotifyThread(IsolationOp.ThreadExit, registration, in info);

        public void Fork(in ProcessForkInfo info) => driver.NotifyFork(registration, in info);

        public void ExecResult(in ExecResultInfo info) => driver.NotifyExecResult(registration, in info);
    }
}
