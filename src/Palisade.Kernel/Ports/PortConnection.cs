// One client's connection to a communication port: the kernel thread that reads it (the handshake, then the client's
// messages and replies), the driver's sends and the replies they wait for. Every wait is bounded: a send waits for room
// in the client's socket and for its reply no longer than its timeout, the handshake no longer than HandshakeTimeout,
// and at most PortOptions.MaximumPendingReplyLimit replies may be owed at once.
using System.Buffers;
using System.Net.Sockets;
using System.Security.Cryptography;
using Palisade.Api;
using Palisade.Interop;

namespace Palisade.Kernel.Ports;

internal sealed class PortConnection : IPortConnection
{
    /// <summary>How long a client has to send its connect message after Hello.</summary>
    public const int HandshakeTimeoutMilliseconds = 10_000;

    /// <summary>How long the kernel waits for room in the client's socket for a reply to the client's message.</summary>
    public const int ReplyTimeoutMilliseconds = 5_000;

    /// <summary>The longest timeout a driver's send accepts.</summary>
    public static readonly TimeSpan MaximumTimeout = TimeSpan.FromMinutes(5);

    private const int Handshake = 0, Open = 1, Ended = 2;
    private const int EAgain = 11;

    private static long s_nextId;

    /// <summary>The connection whose reader runs on this thread (its callbacks must not wait for its replies).</summary>
    [ThreadStatic]
    private static PortConnection? t_reading;

    private readonly CommunicationPort _port;
    private readonly Socket _socket;
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, Waiter> _waiting = [];
    private readonly ManualResetEventSlim _greeted = new();
    private ulong _nextMessageId;
    private int _state = Handshake;
    private volatile bool _silent;

    public PortConnection(CommunicationPort port, Socket socket)
    {
        _port = port;
        _socket = socket;
        Id = Interlocked.Increment(ref s_nextId);
    }

    public long Id { get; }

    public IPort Port => _port;

    public int ProcessId { get; private set; }

    public uint UserId { get; private set; }

    public uint GroupId { get; private set; }

    public bool IsConnected => Volatile.Read(ref _state) == Open;

    /// <summary>The reader: the handshake, then every record the client sends, until the connection ends.</summary>
    public void Run()
    {
        t_reading = this;
        byte[] record = ArrayPool<byte>.Shared.Rent(PortProtocol.MaximumRecord + 1);
        byte[] reply = ArrayPool<byte>.Shared.Rent(PortProtocol.MaximumRecord);
        try
        {
            bool admitted;
            try
            {
                admitted = Admit(record);
            }
            finally
            {
                _port.HandshakeOver();
            }

            if (admitted)
            {
                Read(record, reply);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The client went away, or the connection was closed under the reader.
        }
        finally
        {
            End();
            ArrayPool<byte>.Shared.Return(record);
            ArrayPool<byte>.Shared.Return(reply);
            t_reading = null;
        }
    }

    private bool Admit(byte[] record)
    {
        int fd = (int)_socket.Handle;
        Span<byte> challenge = stackalloc byte[PortProtocol.ChallengeSize];
        RandomNumberGenerator.Fill(challenge);
        if (SocketMessages.PassCredentials(fd) != 0
            || SocketMessages.Send(fd, record.AsSpan(0, PortProtocol.WriteHello(record, _port.ClientKey is not null, challenge)), ReplyTimeoutMilliseconds) < 0
            || SocketMessages.WaitReadable(fd, HandshakeTimeoutMilliseconds) <= 0)
        {
            return false;
        }

        // Who the client is comes with its Connect record (SCM_CREDENTIALS), not from SO_PEERCRED: a guest's connect(2)
        // is made by the kernel's host acting with the guest's file-system credentials only, so the socket's peer
        // credentials are the kernel's; the record is sent by the guest itself.
        int n = SocketMessages.ReceiveWithCredentials(fd, record.AsSpan(0, PortProtocol.MaximumRecord + 1), out int pid, out uint uid, out uint gid);
        if (n <= PortProtocol.MaximumRecord && PortProtocol.TryReadHeader(record.AsSpan(0, Math.Max(n, 0)), out PortHeader h)
            && h.Type == PortMessageType.Connect && PortProtocol.TryReadConnect(record.AsSpan(PortProtocol.HeaderSize, n - PortProtocol.HeaderSize), out ReadOnlySpan<byte> context, out ReadOnlySpan<byte> signature))
        {
            (ProcessId, UserId, GroupId) = (pid, uid, gid);
            Status verdict = _port.Decide(this, challenge, context, signature);
            if (verdict.IsSuccess)
            {
                // Accepted by the policy and the driver: from here on it is listed and connected, and its end is told.
                // The driver's sends wait for the client to have been told (_greeted), so that Connected comes first.
                Volatile.Write(ref _state, Open);
                _port.Opened(this);
            }

            bool told = SocketMessages.Send(fd, record.AsSpan(0, PortProtocol.Write(record, new PortHeader(PortMessageType.Connected, PortFlags.None, verdict.Code, (ulong)Id), default)), ReplyTimeoutMilliseconds) > 0;
            _greeted.Set();
            return verdict.IsSuccess && told;
        }

        return false;
    }

    private void Read(byte[] record, byte[] reply)
    {
        while (IsConnected)
        {
            int n = _socket.Receive(record, 0, PortProtocol.MaximumRecord + 1, SocketFlags.None);
            if (n > PortProtocol.MaximumRecord || !PortProtocol.TryReadHeader(record.AsSpan(0, n), out PortHeader h))
            {
                return; // End of file (0), a record too long or too short: the connection ends.
            }

            ReadOnlySpan<byte> payload = record.AsSpan(PortProtocol.HeaderSize, n - PortProtocol.HeaderSize);
            if (h.Type == PortMessageType.Message && payload.Length <= PortOptions.MaximumMessageSize)
            {
                bool wanted = (h.Flags & PortFlags.ReplyWanted) != 0;
                Span<byte> replyBody = wanted ? reply.AsSpan(PortProtocol.HeaderSize, PortOptions.MaximumMessageSize) : default;
                Status s = _port.Deliver(this, payload, replyBody, out int length);
                if (wanted)
                {
                    PortProtocol.WriteHeader(reply, new PortHeader(PortMessageType.Reply, PortFlags.None, s.Code, h.Id));
                    if (SocketMessages.Send((int)_socket.Handle, reply.AsSpan(0, PortProtocol.HeaderSize + length), ReplyTimeoutMilliseconds) < 0)
                    {
                        return; // A client that does not take its replies is dropped.
                    }
                }
            }
            else if (h.Type == PortMessageType.Reply && payload.Length <= PortOptions.MaximumMessageSize)
            {
                Complete(h.Id, h.Status, payload);
            }
            else
            {
                return; // Any other record breaks the protocol: the connection ends.
            }
        }
    }

    public Status Send(ReadOnlySpan<byte> message, TimeSpan timeout)
    {
        if (message.Length > PortOptions.MaximumMessageSize || timeout < TimeSpan.Zero || timeout > MaximumTimeout)
        {
            return Status.InvalidParameter;
        }

        if (!IsConnected)
        {
            return Status.InvalidDeviceState;
        }

        ulong id;
        lock (_lock)
        {
            id = ++_nextMessageId;
        }

        return Transmit(new PortHeader(PortMessageType.Message, PortFlags.None, 0, id), message, (int)timeout.TotalMilliseconds);
    }

    public Status Send(ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength, TimeSpan timeout)
    {
        replyLength = 0;
        if (message.Length > PortOptions.MaximumMessageSize || timeout <= TimeSpan.Zero || timeout > MaximumTimeout)
        {
            return Status.InvalidParameter;
        }

        if (!IsConnected)
        {
            return Status.InvalidDeviceState;
        }

        if (t_reading == this)
        {
            return Status.NotSupported;
        }

        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        var waiter = new Waiter();
        ulong id;
        lock (_lock)
        {
            if (_waiting.Count >= PortOptions.MaximumPendingReplyLimit)
            {
                return Status.InsufficientResources;
            }

            id = ++_nextMessageId;
            _waiting.Add(id, waiter);
        }

        try
        {
            Status sent = Transmit(new PortHeader(PortMessageType.Message, PortFlags.ReplyWanted, 0, id), message, (int)timeout.TotalMilliseconds);
            if (sent.IsError)
            {
                return sent;
            }

            if (!waiter.Done.Wait((int)Math.Max(0, deadline - Environment.TickCount64)))
            {
                return Status.IoTimeout;
            }

            if (waiter.Cancelled)
            {
                return Status.Cancelled;
            }

            replyLength = waiter.Length;
            waiter.Body.AsSpan(0, Math.Min(waiter.Length, reply.Length)).CopyTo(reply);
            var status = new Status(waiter.Status);
            return status.IsError ? status : waiter.Length > reply.Length ? Status.BufferTooSmall : status;
        }
        finally
        {
            lock (_lock)
            {
                _waiting.Remove(id);
            }

            waiter.Dispose();
        }
    }

    public Status Close()
    {
        if (Volatile.Read(ref _state) == Ended)
        {
            return Status.InvalidDeviceState;
        }

        // The reader sees the end of its socket and ends the connection on its own thread (the disconnect callback runs there).
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return Status.InvalidDeviceState;
        }

        return Status.Success;
    }

    /// <summary>Ends the connection without telling the driver (its driver is unloading).</summary>
    public void Abort()
    {
        _silent = true;
        Close();
    }

    private Status Transmit(PortHeader header, ReadOnlySpan<byte> message, int timeoutMilliseconds)
    {
        if (!_greeted.IsSet && !_greeted.Wait(timeoutMilliseconds))
        {
            return Status.IoTimeout;
        }

        byte[] record = ArrayPool<byte>.Shared.Rent(PortProtocol.HeaderSize + message.Length);
        bool added = false;
        try
        {
            _socket.SafeHandle.DangerousAddRef(ref added);
            int length = PortProtocol.Write(record, in header, message);
            int n = SocketMessages.Send((int)_socket.Handle, record.AsSpan(0, length), timeoutMilliseconds);
            return n >= 0 ? Status.Success : n == -EAgain ? Status.IoTimeout : Status.InvalidDeviceState;
        }
        catch (ObjectDisposedException)
        {
            return Status.InvalidDeviceState;
        }
        finally
        {
            if (added)
            {
                _socket.SafeHandle.DangerousRelease();
            }

            ArrayPool<byte>.Shared.Return(record);
        }
    }

    private void Complete(ulong id, uint status, ReadOnlySpan<byte> body)
    {
        lock (_lock)
        {
            // A reply nobody waits for any more (it timed out) is dropped.
            if (_waiting.Remove(id, out Waiter? w))
            {
                w.Body = body.ToArray();
                w.Length = body.Length;
                w.Status = status;
                w.Done.Set();
            }
        }
    }

    private void End()
    {
        int was = Interlocked.Exchange(ref _state, Ended);
        if (was == Ended)
        {
            return;
        }

        lock (_lock)
        {
            foreach (Waiter w in _waiting.Values)
            {
                w.Cancelled = true;
                w.Done.Set();
            }

            _waiting.Clear();
        }

        _greeted.Set();
        _socket.Dispose();
        _port.Ended(this, wasOpen: was == Open, tell: !_silent);
    }

    private sealed class Waiter : IDisposable
    {
        public ManualResetEventSlim Done { get; } = new();

        public byte[] Body { get; set; } = [];

        public int Length { get; set; }

        public uint Status { get; set; }

        public bool Cancelled { get; set; }

        public void Dispose() => Done.Dispose();
    }
}
