// One end of the socket between the kernel and a driver host, the same code on both sides. Receiving threads take every
// record and hand it to the conversation it belongs to: a thread of this side waiting in a call on it; a call that starts
// a conversation of the other side is served by the thread that received it, which leaves receiving to the others
// meanwhile (starting one when none is left). A thread that calls
// while it serves a call of the other side calls on that same conversation, so the other side's answer reaches the
// thread that waits for it and its nested calls are served on the thread that made the outer one.
//
// The rule for handlers: read every argument before making a call (the receive buffer is reused by nested records) and
// write the reply after it (so is the send buffer).
using System.Collections.Concurrent;
using System.Net.Sockets;
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

/// <summary>Serves the calls of the other side.</summary>
internal interface IIsolationHandler
{
    /// <summary>
    /// Runs <paramref name="op"/> with its arguments and replies through <see cref="Conversation.Reply"/>. A handler that
    /// returns without replying makes the channel reply <see cref="Status.InvalidParameter"/> (malformed arguments).
    /// </summary>
    void Serve(Conversation conversation, IsolationOp op, ref RecordReader arguments);
}

/// <summary>One chain of calls across the boundary (see the protocol's header comment).</summary>
internal sealed class Conversation
{
    private readonly SemaphoreSlim _arrived = new(0, 1);

    public Conversation(IsolationChannel channel, uint id, bool remote)
    {
        Channel = channel;
        Id = id;
        IsRemote = remote;
    }

    public IsolationChannel Channel { get; }

    /// <summary>Its number on the wire (a conversation of the other side's is reused under the next number it starts).</summary>
    public uint Id { get; internal set; }

    /// <summary>True for a conversation the other side started.</summary>
    public bool IsRemote { get; }

    /// <summary>How many calls of the other side this thread is serving on it, nested.</summary>
    internal int ServeLevel;

    /// <summary>The record received for this conversation (one at a time: the sides alternate).</summary>
    internal byte[] Received { get; } = new byte[IsolationRecord.MaximumSize];

    internal int ReceivedLength;

    /// <summary>The record being sent.</summary>
    internal byte[] Sending { get; } = new byte[IsolationRecord.MaximumSize];

    /// <summary>The conversation this thread was in before this one (a thread's conversations nest).</summary>
    internal Conversation? Outer;

    /// <summary>Nested entries of the same thread into this conversation.</summary>
    internal int Depth;

    internal bool Replied;

    /// <summary>The operation of the call being served, echoed by its reply.</summary>
    internal IsolationOp Serving;

    internal void Deliver(ReadOnlySpan<byte> record)
    {
        record.CopyTo(Received);
        ReceivedLength = record.Length;
        _arrived.Release();
    }

    internal void Wake()
    {
        try
        {
            _arrived.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled: the waiter sees the failure when it wakes.
        }
    }

    internal bool WaitForRecord(int milliseconds) => _arrived.Wait(milliseconds);

    /// <summary>Starts a call of <paramref name="op"/> on this conversation.</summary>
    public RecordWriter BeginCall(IsolationOp op) => new(Sending, Id, RecordKind.Call, op);

    /// <summary>Starts the reply to the call being served, with its status.</summary>
    public RecordWriter BeginReply(Status status)
    {
        var w = new RecordWriter(Sending, Id, RecordKind.Reply, Serving);
        w.Status(status);
        return w;
    }

    /// <summary>Sends a reply started with <see cref="BeginReply"/>.</summary>
    public void Reply(ref RecordWriter reply)
    {
        Replied = true;
        if (reply.Overflowed)
        {
            Channel.Fail("a reply of " + Serving + " did not fit in a record");
            return;
        }

        if (IsRemote && ServeLevel == 1)
        {
            // The reply ends the other side's conversation: it may start its next one under this number at once.
            Channel.Forget(this);
        }

        _ = Channel.Send(reply.Written);
    }

    /// <summary>Replies with a status alone.</summary>
    public void Reply(Status status)
    {
        RecordWriter w = BeginReply(status);
        Reply(ref w);
    }

    /// <summary>
    /// Sends a call started with <see cref="BeginCall"/> and waits for its reply, serving the other side's nested calls
    /// meanwhile. True with <paramref name="reply"/> reading the reply's arguments (its status first); false when the
    /// channel failed (the other side is gone, did not answer in time, or sent a malformed record).
    /// </summary>
    /// <param name="call">The call.</param>
    /// <param name="reply">The reply's arguments.</param>
    /// <param name="wait">How long to wait for each record, when not the channel's own time.</param>
    public bool Call(ref RecordWriter call, out RecordReader reply, TimeSpan? wait = null) =>
        Channel.Call(this, ref call, out reply, wait is { } w ? (int)Math.Clamp(w.TotalMilliseconds, 1, int.MaxValue) : 0);
}

/// <summary>The kernel's or the host's end of the socket.</summary>
internal sealed class IsolationChannel : IDisposable
{
    [ThreadStatic]
    private static Conversation? t_innermost;

    private readonly Socket _socket;
    private readonly IIsolationHandler _handler;
    private readonly uint _parity;
    private readonly int _waitMilliseconds;
    private readonly Thread _reader;
    private readonly object _sync = new();
    private readonly Stack<Conversation> _free = new();
    private readonly Stack<Conversation> _freeRemote = new();
    private readonly ConcurrentDictionary<uint, Conversation> _remote = new();
    private Conversation?[] _local = new Conversation?[16];
    // Conversation 0 is not valid on the wire, and the host's first would be 0 (index 0, even): index 0 is never used.
    private int _localCount = 1;
    private int _receiving;
    private volatile string? _failure;
    private Action<string>? _onFailure;

    /// <param name="socket">The connected SOCK_SEQPACKET socket (owned).</param>
    /// <param name="kernelSide">True for the kernel's end: its conversations are odd, the host's even.</param>
    /// <param name="handler">Serves the other side's calls.</param>
    /// <param name="wait">How long a call waits for each record of the other side before the channel fails
    /// (<see cref="Timeout.InfiniteTimeSpan"/> on the host, which never judges the kernel).</param>
    public IsolationChannel(Socket socket, bool kernelSide, IIsolationHandler handler, TimeSpan wait)
    {
        _socket = socket;
        _handler = handler;
        _parity = kernelSide ? 1u : 0u;
        _waitMilliseconds = wait == Timeout.InfiniteTimeSpan ? Timeout.Infinite : (int)Math.Clamp(wait.TotalMilliseconds, 1, int.MaxValue);
        _reader = new Thread(Read) { IsBackground = true, Name = kernelSide ? "palisade-isolation" : "driverhost-reader" };
    }

    /// <summary>Why the channel failed, or null while it works.</summary>
    public string? Failure => _failure;

    /// <summary>Starts receiving; <paramref name="onFailure"/> is told once, on the thread that noticed, why the channel failed.</summary>
    public void Start(Action<string>? onFailure)
    {
        _onFailure = onFailure;
        _receiving = 1;
        _reader.Start();
    }

    /// <summary>
    /// The conversation this thread calls on: the one it is in with this channel (serving a call of the other side, or
    /// waiting in a call of its own), or a new one of this side. Pair with <see cref="Leave"/>.
    /// </summary>
    public Conversation Enter()
    {
        for (Conversation? c = t_innermost; c is not null; c = c.Outer)
        {
            if (ReferenceEquals(c.Channel, this))
            {
                c.Depth++;
                return c;
            }
        }

        Conversation own;
        lock (_sync)
        {
            if (!_free.TryPop(out own!))
            {
                if (_localCount == _local.Length)
                {
                    Array.Resize(ref _local, _local.Length * 2);
                }

                own = new Conversation(this, ((uint)_localCount << 1) | _parity, remote: false);
                _local[_localCount++] = own;
            }
        }

        own.Depth = 1;
        own.Outer = t_innermost;
        t_innermost = own;
        return own;
    }

    /// <summary>Ends what <see cref="Enter"/> began.</summary>
    public void Leave(Conversation c)
    {
        if (--c.Depth > 0)
        {
            return;
        }

        t_innermost = c.Outer;
        c.Outer = null;
        lock (_sync)
        {
            _free.Push(c);
        }
    }

    internal bool Call(Conversation c, ref RecordWriter call, out RecordReader reply, int waitMilliseconds)
    {
        int wait = waitMilliseconds > 0 ? waitMilliseconds : _waitMilliseconds;
        reply = default;
        if (call.Overflowed)
        {
            return false;
        }

        if (_failure is not null || !Send(call.Written))
        {
            return false;
        }

        while (true)
        {
            if (!c.WaitForRecord(wait))
            {
                Fail("no answer within " + wait + " ms");
                return false;
            }

            if (_failure is not null)
            {
                return false;
            }

            ReadOnlySpan<byte> record = c.Received.AsSpan(0, c.ReceivedLength);
            _ = IsolationRecord.TryParseHeader(record, out _, out RecordKind kind, out IsolationOp op);
            if (kind == RecordKind.Reply)
            {
                reply = new RecordReader(record[IsolationRecord.HeaderSize..]);
                return true;
            }

            Serve(c, op, record);
        }
    }

    private void Serve(Conversation c, IsolationOp op, ReadOnlySpan<byte> record)
    {
        IsolationOp outer = c.Serving;
        bool replied = c.Replied;
        c.Serving = op;
        c.Replied = false;
        c.ServeLevel++;
        var arguments = new RecordReader(record[IsolationRecord.HeaderSize..]);
        try
        {
            _handler.Serve(c, op, ref arguments);
        }
        finally
        {
            if (!c.Replied)
            {
                // A handler that could not read its arguments: the caller broke the protocol.
                Fail("a malformed " + op + " record");
                c.Reply(Status.InvalidParameter);
            }

            c.ServeLevel--;
        }

        c.Serving = outer;
        c.Replied = replied;
    }

    /// <summary>Stops routing records to a conversation of the other side's that is ending.</summary>
    internal void Forget(Conversation c) => _remote.TryRemove(c.Id, out _);

    internal bool Send(ReadOnlySpan<byte> record)
    {
        try
        {
            if (_socket.Send(record, SocketFlags.None) == record.Length)
            {
                return true;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Fail("the socket failed: " + e.Message);
            return false;
        }

        Fail("a record was sent short");
        return false;
    }

    private void Read()
    {
        byte[] buffer = new byte[IsolationRecord.MaximumSize + 1];
        while (_failure is null)
        {
            int n;
            try
            {
                n = _socket.Receive(buffer, SocketFlags.None);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                Fail("the socket failed: " + e.Message);
                return;
            }

            if (n == 0)
            {
                Fail("the other side closed the connection");
                return;
            }

            ReadOnlySpan<byte> record = buffer.AsSpan(0, n);
            if (IsolationRecord.TryParseHeader(record, out uint id, out RecordKind kind, out IsolationOp op).IsError)
            {
                Fail(n < IsolationRecord.HeaderSize
                    ? "a malformed record (" + n + " bytes)"
                    : "a malformed record (" + n + " bytes: conversation " + id + ", kind " + (byte)kind + ", operation " + (ushort)op + ")");
                return;
            }

            if ((id & 1) == _parity)
            {
                // A conversation of this side: a thread of it is waiting.
                uint index = id >> 1;
                Conversation? c = index < (uint)_localCount ? Volatile.Read(ref _local)[index] : null;
                if (c is null || c.Depth == 0)
                {
                    Fail("a record for conversation " + id + ", which is not open");
                    return;
                }

                c.Deliver(record);
            }
            else if (_remote.TryGetValue(id, out Conversation? waiting))
            {
                waiting.Deliver(record);
            }
            else if (kind == RecordKind.Call)
            {
                Conversation fresh;
                lock (_sync)
                {
                    fresh = _freeRemote.TryPop(out Conversation? reused) ? reused : new Conversation(this, id, remote: true);
                }

                fresh.Id = id;
                _remote[id] = fresh;
                fresh.Deliver(record);
                Serve(fresh);
            }
            else
            {
                Fail("a reply (" + op + ") on conversation " + id + ", which is not open");
                return;
            }
        }
    }

    /// <summary>
    /// Serves a conversation the other side started on this receiving thread, which leaves receiving to the others (a new
    /// one when no other receives), and receives again once it is done: a callback costs no hand-over between threads.
    /// </summary>
    private void Serve(Conversation c)
    {
        if (Interlocked.Decrement(ref _receiving) == 0)
        {
            Interlocked.Increment(ref _receiving);
            new Thread(Read) { IsBackground = true, Name = _reader.Name }.Start();
        }

        _ = c.WaitForRecord(0);
        c.Depth = 1;
        c.Outer = t_innermost;
        t_innermost = c;
        ReadOnlySpan<byte> record = c.Received.AsSpan(0, c.ReceivedLength);
        _ = IsolationRecord.TryParseHeader(record, out _, out _, out IsolationOp op);
        Serve(c, op, record);
        t_innermost = c.Outer;
        c.Outer = null;
        c.Depth = 0;
        lock (_sync)
        {
            _freeRemote.Push(c);
        }

        Interlocked.Increment(ref _receiving);
    }

    /// <summary>Marks the channel failed (once), closes the socket and wakes every waiting thread.</summary>
    public void Fail(string why)
    {
        Action<string>? tell;
        lock (_sync)
        {
            if (_failure is not null)
            {
                return;
            }

            _failure = why;
            tell = _onFailure;
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }

        Conversation?[] local = Volatile.Read(ref _local);
        for (int i = 0; i < local.Length; i++)
        {
            local[i]?.Wake();
        }

        foreach (Conversation c in _remote.Values)
        {
            c.Wake();
        }

        tell?.Invoke(why);
    }

    public void Dispose()
    {
        Fail("closed");
        _socket.Dispose();
    }
}
