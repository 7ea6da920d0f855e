// One-way records (RecordKind.Notify): callbacks no verdict depends on (process exit, thread create and exit, fork, exec
// result) cross without a reply, so that the guest's system call does not wait for the driver host. The sender never
// blocks: a socket whose other end did not keep up refuses the record (MSG_DONTWAIT) and the sender counts it dropped.
// The host serves them in the order they arrived on a thread of its own, with a bounded queue: a record that finds the
// queue full is dropped and counted too, and the host tells the kernel how many (NotificationsDropped), so that the
// kernel reports every notification its driver missed.
using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Palisade.Api;
using Palisade.Interop;

namespace Palisade.Kernel.Isolation;

/// <summary>Serves the notifications of the other side.</summary>
internal interface INotificationHandler
{
    /// <summary>Runs the notification <paramref name="op"/>; false when its arguments are malformed (the channel then fails).</summary>
    bool Notify(IsolationOp op, ref RecordReader arguments);
}

/// <summary>What became of a notification sent.</summary>
internal enum NotifyResult
{
    /// <summary>It is on its way.</summary>
    Sent,

    /// <summary>The other side did not keep up (its socket is full): dropped.</summary>
    Dropped,

    /// <summary>The channel failed (or the record did not fit): not sent.</summary>
    Failed,
}

/// <summary>Which operations are notifications, and in which direction.</summary>
internal static class IsolationNotifications
{
    /// <summary>True for the notifications the kernel sends to a host.</summary>
    public static bool FromKernel(IsolationOp op) => op is >= IsolationOp.ProcessExit and <= IsolationOp.ExecResult or IsolationOp.ObjectPost;

    /// <summary>True for the notifications a host sends to the kernel.</summary>
    public static bool FromHost(IsolationOp op) => op == IsolationOp.NotificationsDropped;
}

internal sealed partial class IsolationChannel
{
    private const int MsgDontWait = 0x40;
    private const int MsgNoSignal = 0x4000;

    private readonly Lock _notifySync = new();
    private readonly ConcurrentQueue<(IsolationOp Op, byte[] Arguments, int Length)> _notifications = new();
    private readonly SemaphoreSlim _notificationArrived = new(0);
    private readonly ManualResetEventSlim _notificationsIdle = new(initialState: true);
    private int _notificationLimit;
    private int _notificationsQueued;
    private long _notificationsDropped;
    private long _dropsToReport;

    /// <summary>Notifications this side dropped because its queue was full (<see cref="ServeNotificationsInOrder"/>).</summary>
    public long NotificationsDropped => Interlocked.Read(ref _notificationsDropped);

    /// <summary>
    /// Serves the other side's notifications in the order they arrive on a thread of its own, at most
    /// <paramref name="limit"/> waiting (more are dropped, counted and reported to the other side). Without it they are
    /// served on the receiving thread. Call before <see cref="Start"/>.
    /// </summary>
    public void ServeNotificationsInOrder(int limit)
    {
        _notificationLimit = limit;
        new Thread(ServeNotifications) { IsBackground = true, Name = "driverhost-notifications" }.Start();
    }

    /// <summary>Starts a notification in <paramref name="buffer"/> (a conversation's send buffer, or the caller's own).</summary>
    public RecordWriter BeginNotify(Span<byte> buffer, IsolationOp op) => new(buffer, 2 - _parity, RecordKind.Notify, op);

    /// <summary>Sends a notification without waiting for anything: a full socket drops it.</summary>
    public unsafe NotifyResult Notify(ref RecordWriter record)
    {
        if (record.Overflowed || _failure is not null)
        {
            return NotifyResult.Failed;
        }

        ReadOnlySpan<byte> bytes = record.Written;
        nint sent;
        SafeSocketHandle handle = _socket.SafeHandle;
        bool held = false;
        try
        {
            // Held, so that a channel disposed meanwhile cannot close the descriptor (and its number be reused) mid-send.
            handle.DangerousAddRef(ref held);
            int fd = (int)handle.DangerousGetHandle();
            fixed (byte* b = bytes)
            {
                do
                {
                    sent = Libc.Send(fd, b, (nuint)bytes.Length, MsgDontWait | MsgNoSignal);
                }
                while (sent < 0 && Libc.LastError == Errno.EINTR);
            }
        }
        catch (ObjectDisposedException)
        {
            Fail("the socket is closed");
            return NotifyResult.Failed;
        }
        finally
        {
            if (held)
            {
                handle.DangerousRelease();
            }
        }

        if (sent == bytes.Length)
        {
            return NotifyResult.Sent;
        }

        if (sent < 0 && Libc.LastError is Errno.EAGAIN)
        {
            return NotifyResult.Dropped;
        }

        Fail(sent < 0 ? "the socket failed: errno " + Libc.LastError : "a notification was sent short");
        return NotifyResult.Failed;
    }

    /// <summary>
    /// Waits until every notification received so far has been served (the host's Unload runs after the notifications
    /// sent before it). False when <paramref name="milliseconds"/> passed first.
    /// </summary>
    public bool WaitForNotifications(int milliseconds) => _notificationLimit == 0 || _notificationsIdle.Wait(milliseconds);

    /// <summary>A notification arrived (on the receiving thread, in order).</summary>
    private void Notified(uint id, IsolationOp op, ReadOnlySpan<byte> record)
    {
        bool expected = _parity == 1 ? IsolationNotifications.FromHost(op) : IsolationNotifications.FromKernel(op);
        if (id != 1 + _parity || !expected || _handler is not INotificationHandler handler)
        {
            Fail("a malformed notification (" + op + ", conversation " + id + ")");
            return;
        }

        ReadOnlySpan<byte> arguments = record[IsolationRecord.HeaderSize..];
        if (_notificationLimit == 0)
        {
            var r = new RecordReader(arguments);
            if (!handler.Notify(op, ref r))
            {
                Fail("a malformed " + op + " notification");
            }

            return;
        }

        lock (_notifySync)
        {
            if (_notificationsQueued >= _notificationLimit)
            {
                Interlocked.Increment(ref _notificationsDropped);
                Interlocked.Increment(ref _dropsToReport);
                return;
            }

            _notificationsQueued++;
            _notificationsIdle.Reset();
        }

        byte[] copy = ArrayPool<byte>.Shared.Rent(Math.Max(arguments.Length, 1));
        arguments.CopyTo(copy);
        _notifications.Enqueue((op, copy, arguments.Length));
        _notificationArrived.Release();
    }

    /// <summary>The thread that serves notifications in order, until the channel fails.</summary>
    private void ServeNotifications()
    {
        var handler = _handler as INotificationHandler;
        byte[] report = new byte[IsolationRecord.HeaderSize + 4];
        while (true)
        {
            _notificationArrived.Wait();
            if (_failure is not null || handler is null || !_notifications.TryDequeue(out (IsolationOp Op, byte[] Arguments, int Length) n))
            {
                return;
            }

            var r = new RecordReader(n.Arguments.AsSpan(0, n.Length));
            bool wellFormed = handler.Notify(n.Op, ref r);
            ArrayPool<byte>.Shared.Return(n.Arguments);
            if (!wellFormed)
            {
                Fail("a malformed " + n.Op + " notification");
                return;
            }

            lock (_notifySync)
            {
                if (--_notificationsQueued == 0)
                {
                    _notificationsIdle.Set();
                }
            }

            long dropped = Interlocked.Exchange(ref _dropsToReport, 0);
            if (dropped > 0)
            {
                RecordWriter w = BeginNotify(report, IsolationOp.NotificationsDropped);
                w.U32((uint)Math.Min(dropped, uint.MaxValue));
                if (Notify(ref w) == NotifyResult.Dropped)
                {
                    // The kernel's end is full: told with the next one.
                    Interlocked.Add(ref _dropsToReport, dropped);
                }
            }
        }
    }

    /// <summary>Ends the notification thread (the channel failed).</summary>
    private void StopNotifications()
    {
        _notificationArrived.Release();
        _notificationsIdle.Set();
    }
}
