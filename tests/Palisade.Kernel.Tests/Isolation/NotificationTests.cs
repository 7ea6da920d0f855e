using System.Net.Sockets;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Isolation;

namespace Palisade.Kernel.Tests.Isolation;

/// <summary>
/// One-way records (RecordKind.Notify): the process notifications cross by value, the sender never waits, the host serves
/// them in order on a thread of its own with a bounded queue, and a malformed one fails the channel.
/// </summary>
public sealed class NotificationTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(1);
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (IDisposable d in _owned)
        {
            d.Dispose();
        }
    }

    /// <summary>A connected SOCK_SEQPACKET pair, both ends owned by the test.</summary>
    private unsafe (Socket Channel, Socket Raw) Pair()
    {
        int* fds = stackalloc int[2];
        Assert.Equal(0, Libc.SocketPair(Libc.AF_UNIX, 5 /* SOCK_SEQPACKET */ | Libc.SOCK_CLOEXEC, 0, fds));
        var channel = new Socket(new SafeSocketHandle(fds[0], ownsHandle: true));
        var raw = new Socket(new SafeSocketHandle(fds[1], ownsHandle: true)) { ReceiveTimeout = (int)Bound.TotalMilliseconds };
        _owned.Add(channel);
        _owned.Add(raw);
        return (channel, raw);
    }

    /// <summary>Serves notifications by recording them; the first waits for <see cref="Gate"/> when one is given.</summary>
    private sealed class Recorder : IIsolationHandler, INotificationHandler
    {
        private readonly Lock _sync = new();
        private readonly List<ProcessExitInfo> _exits = [];

        public ManualResetEventSlim? Gate { get; init; }

        public int Count
        {
            get
            {
                lock (_sync)
                {
                    return _exits.Count;
                }
            }
        }

        public List<ProcessExitInfo> Exits
        {
            get
            {
                lock (_sync)
                {
                    return [.. _exits];
                }
            }
        }

        public void Serve(Conversation conversation, IsolationOp op, ref RecordReader arguments) => conversation.Reply(Status.Success);

        public bool Notify(IsolationOp op, ref RecordReader arguments)
        {
            _ = arguments.I32();
            ProcessExitInfo info = ProcessNotificationCodec.ReadProcessExit(ref arguments);
            if (op != IsolationOp.ProcessExit || arguments.Finish().IsError)
            {
                return false;
            }

            if (Gate is not null && !Gate.Wait(Bound))
            {
                return false; // The test never opened the gate: the channel fails and the test sees it.
            }

            lock (_sync)
            {
                _exits.Add(info);
            }

            return true;
        }
    }

    /// <summary>A host-side channel with its notification thread, and the raw kernel end; <paramref name="failed"/> is set when it fails.</summary>
    private (IsolationChannel Host, Socket Kernel) Host(Recorder recorder, int limit, ManualResetEventSlim failed)
    {
        (Socket hostEnd, Socket raw) = Pair();
        var host = new IsolationChannel(hostEnd, kernelSide: false, recorder, Timeout.InfiniteTimeSpan);
        _owned.Add(host);
        host.ServeNotificationsInOrder(limit);
        host.Start(_ => failed.Set());
        return (host, raw);
    }

    private static byte[] Exit(int pid, uint conversation = 1, bool truncate = false)
    {
        byte[] buffer = new byte[IsolationRecord.MaximumSize];
        var w = new RecordWriter(buffer, conversation, RecordKind.Notify, IsolationOp.ProcessExit);
        w.I32(7);
        ProcessNotificationCodec.Write(ref w, new ProcessExitInfo { ProcessId = pid, ProcessStartKey = pid * 10L, ExitCode = 3, Signal = 0 });
        return buffer[..(w.Length - (truncate ? 2 : 0))];
    }

    [Fact]
    public void Every_notification_crosses_by_value()
    {
        byte[] buffer = new byte[IsolationRecord.MaximumSize];
        var exit = new ProcessExitInfo { ProcessId = 5, ProcessStartKey = 55, ExitCode = 2, Signal = 9 };
        var thread = new ThreadInfo { ProcessId = 5, ProcessStartKey = 55, ThreadId = 6, CreatorThreadId = 5 };
        var fork = new ProcessForkInfo { ProcessId = 8, ProcessStartKey = 88, ParentProcessId = 5, ParentProcessStartKey = 55, ImagePath = "/bin/ü sh", File = new FileIdentity(1, 2) };
        var exec = new ExecResultInfo { ProcessId = 8, ProcessStartKey = 88, ThreadId = 8, ImagePath = "/bin/true", File = new FileIdentity(3, 4), Succeeded = false, Errno = 13 };
        var w = new RecordWriter(buffer, 1, RecordKind.Notify, IsolationOp.ProcessExit);
        ProcessNotificationCodec.Write(ref w, in exit);
        ProcessNotificationCodec.Write(ref w, in thread);
        ProcessNotificationCodec.Write(ref w, in fork);
        ProcessNotificationCodec.Write(ref w, in exec);

        var r = new RecordReader(w.Written[IsolationRecord.HeaderSize..]);
        (ProcessExitInfo, ThreadInfo, ProcessForkInfo, ExecResultInfo) back =
            (ProcessNotificationCodec.ReadProcessExit(ref r), ProcessNotificationCodec.ReadThread(ref r), ProcessNotificationCodec.ReadProcessFork(ref r), ProcessNotificationCodec.ReadExecResult(ref r));

        Assert.Equal(Status.Success, r.Finish());
        Assert.Equal((exit, thread, fork, exec), back);
    }

    [Fact]
    public void A_notification_header_is_read_back_as_a_notification()
    {
        Assert.Equal(Status.Success, IsolationRecord.TryParseHeader(Exit(1), out uint id, out RecordKind kind, out IsolationOp op));
        Assert.Equal((1u, RecordKind.Notify, IsolationOp.ProcessExit), (id, kind, op));
    }

    [Fact]
    public void Notifications_are_served_in_the_order_they_were_sent_on_the_hosts_notification_thread()
    {
        using var failed = new ManualResetEventSlim();
        var recorder = new Recorder();
        (IsolationChannel host, Socket kernel) = Host(recorder, limit: 1024, failed);

        for (int pid = 1; pid <= 500; pid++)
        {
            kernel.Send(Exit(pid));
        }

        Assert.True(SpinWait.SpinUntil(() => recorder.Count == 500 || failed.IsSet, Bound), "500 notifications were not served: " + recorder.Count);
        Assert.Null(host.Failure);
        Assert.Equal(Enumerable.Range(1, 500), recorder.Exits.Select(e => e.ProcessId));
        Assert.True(host.WaitForNotifications((int)Bound.TotalMilliseconds));
    }

    [Fact]
    public void A_truncated_notification_fails_the_hosts_channel()
    {
        using var failed = new ManualResetEventSlim();
        (IsolationChannel host, Socket kernel) = Host(new Recorder(), limit: 16, failed);

        kernel.Send(Exit(1, truncate: true));

        Assert.True(failed.Wait(Bound), "the channel did not fail");
        Assert.Equal("a malformed ProcessExit notification", host.Failure);
    }

    [Fact]
    public void A_notification_marked_as_the_hosts_own_fails_the_hosts_channel()
    {
        using var failed = new ManualResetEventSlim();
        (IsolationChannel host, Socket kernel) = Host(new Recorder(), limit: 16, failed);

        kernel.Send(Exit(1, conversation: 2));

        Assert.True(failed.Wait(Bound), "the channel did not fail");
        Assert.StartsWith("a malformed notification", host.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_notification_the_kernel_never_sends_fails_the_hosts_channel()
    {
        using var failed = new ManualResetEventSlim();
        (IsolationChannel host, Socket kernel) = Host(new Recorder(), limit: 16, failed);
        byte[] record = new byte[IsolationRecord.HeaderSize + 4];
        var w = new RecordWriter(record, 1, RecordKind.Notify, IsolationOp.NotificationsDropped);
        w.U32(1);

        kernel.Send(record);

        Assert.True(failed.Wait(Bound), "the channel did not fail");
        Assert.StartsWith("a malformed notification (NotificationsDropped", host.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_host_whose_queue_is_full_drops_and_tells_the_kernel_how_many()
    {
        using var failed = new ManualResetEventSlim();
        using var gate = new ManualResetEventSlim();
        var recorder = new Recorder { Gate = gate };
        (IsolationChannel host, Socket kernel) = Host(recorder, limit: 4, failed);

        // The first is served and waits at the gate; three more wait in the queue; five find it full.
        for (int pid = 1; pid <= 9; pid++)
        {
            kernel.Send(Exit(pid));
        }

        Assert.True(SpinWait.SpinUntil(() => host.NotificationsDropped == 5 || failed.IsSet, Bound), "dropped: " + host.NotificationsDropped);
        gate.Set();
        byte[] got = new byte[IsolationRecord.MaximumSize];
        int n = kernel.Receive(got);

        Assert.Equal(Status.Success, IsolationRecord.TryParseHeader(got.AsSpan(0, n), out uint id, out RecordKind kind, out IsolationOp op));
        Assert.Equal((2u, RecordKind.Notify, IsolationOp.NotificationsDropped), (id, kind, op));
        var r = new RecordReader(got.AsSpan(IsolationRecord.HeaderSize, n - IsolationRecord.HeaderSize));
        Assert.Equal(5u, r.U32());
        Assert.Equal(Status.Success, r.Finish());
        Assert.True(SpinWait.SpinUntil(() => recorder.Count == 4, Bound), "served: " + recorder.Count);
        Assert.Equal([1, 2, 3, 4], recorder.Exits.Select(e => e.ProcessId));
    }

    [Fact]
    public async Task The_kernel_never_waits_for_a_host_that_does_not_read_it_drops_and_says_so()
    {
        (Socket kernelEnd, Socket _) = Pair();
        var kernel = new IsolationChannel(kernelEnd, kernelSide: true, new Recorder(), Bound);
        _owned.Add(kernel);
        kernel.Start(null);

        // Nobody reads the other end: the socket fills, and from then on every notification is dropped at once.
        Task<(int Sent, NotifyResult Last)> sending = Task.Run(() =>
        {
            byte[] buffer = new byte[IsolationRecord.MaximumSize];
            int sent = 0;
            NotifyResult result;
            do
            {
                RecordWriter w = kernel.BeginNotify(buffer, IsolationOp.ProcessExit);
                w.I32(1);
                ProcessNotificationCodec.Write(ref w, new ProcessExitInfo { ProcessId = sent + 1 });
                result = kernel.Notify(ref w);
                sent += result == NotifyResult.Sent ? 1 : 0;
            }
            while (result == NotifyResult.Sent && sent < 10_000_000);

            return (sent, result);
        });

        (int sent, NotifyResult last) = await sending.WaitAsync(Bound);
        Assert.Equal(NotifyResult.Dropped, last);
        Assert.True(sent > 0, "not one notification was sent before the socket was full");
        Assert.Null(kernel.Failure);
    }

    [Fact]
    public async Task A_call_the_host_starts_itself_is_numbered_as_a_valid_conversation()
    {
        // A notification's callback (or a work item) calls the kernel on a conversation of the host's own: never number 0.
        using var failed = new ManualResetEventSlim();
        (IsolationChannel host, Socket kernel) = Host(new Recorder(), limit: 16, failed);
        Task<bool> call = Task.Run(() =>
        {
            Conversation c = host.Enter();
            try
            {
                RecordWriter w = c.BeginCall(IsolationOp.ReportEvent);
                return c.Call(ref w, out _);
            }
            finally
            {
                host.Leave(c);
            }
        });

        byte[] got = new byte[IsolationRecord.MaximumSize];
        int n = kernel.Receive(got);

        Assert.Equal(Status.Success, IsolationRecord.TryParseHeader(got.AsSpan(0, n), out uint id, out RecordKind kind, out _));
        Assert.Equal((0u, RecordKind.Call), (id & 1, kind));
        host.Dispose();
        Assert.False(await call.WaitAsync(Bound)); // No reply: it ends when the channel closes.
    }
}
