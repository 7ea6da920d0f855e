using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Palisade.Ports.Client;

/// <summary>
/// A connection to a driver's communication port (the user-mode side of <c>FilterConnectCommunicationPort</c>,
/// <c>FilterGetMessage</c>, <c>FilterReplyMessage</c> and <c>FilterSendMessage</c>), speaking the wire format of
/// docs/ports.md over the port's SOCK_SEQPACKET socket. Thread-safe: one thread may <see cref="Receive"/> while others
/// <see cref="Send(ReadOnlySpan{byte}, TimeSpan)"/>.
/// </summary>
public sealed class PortClient : IDisposable
{
    /// <summary>The longest message, reply or context, in bytes.</summary>
    public const int MaximumMessageSize = 65536;

    private const int HeaderSize = 16;
    private const int MaximumRecord = HeaderSize + MaximumMessageSize + 8;
    private const byte Hello = 1, ConnectType = 2, Connected = 3, MessageType = 4, ReplyType = 5;
    private const byte ReplyWanted = 1;
    private const ushort SignatureRequired = 1;
    private const string SignedPrefix = "palisade-port-connect-v1\0";

    private readonly Socket _socket;
    private readonly Thread _reader;
    private readonly BlockingCollection<PortMessage> _inbox = new(boundedCapacity: 1024);
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<PortReply>> _waiting = new();
    private long _nextId;
    private volatile bool _ended;
    private int _disposed;

    private PortClient(Socket socket, long connectionId)
    {
        _socket = socket;
        ConnectionId = connectionId;
        _reader = new Thread(Read) { IsBackground = true, Name = "palisade-port-client" };
    }

    /// <summary>The connection's id, as the driver sees it (<c>IPortConnection.Id</c>).</summary>
    public long ConnectionId { get; }

    /// <summary>True until the connection ends (either side closed it).</summary>
    public bool IsConnected => !_ended;

    /// <summary>Connects to the port whose socket is at <paramref name="path"/> (<c>$PALISADE_HOME/ports/NAME</c>).</summary>
    /// <param name="path">The port's socket.</param>
    /// <param name="context">Bytes the driver's connect callback receives; at most <see cref="MaximumMessageSize"/>.</param>
    /// <param name="signingKey">The private key of the port's <c>ClientKey</c> (ECDSA P-256) when the port asks for a
    /// signature; null otherwise.</param>
    /// <param name="timeout">The longest wait for the kernel's answers during the handshake.</param>
    /// <returns>The connection.</returns>
    /// <exception cref="PortException">The port refused the client (its <see cref="PortException.Status"/> says why:
    /// access denied, connection limit, the driver's own status), asked for a signature and no key was given, or broke
    /// the protocol.</exception>
    /// <exception cref="SocketException">No port listens at <paramref name="path"/>, or Linux refused the connect.</exception>
    public static PortClient Connect(string path, ReadOnlySpan<byte> context = default, ECDsa? signingKey = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(context.Length, MaximumMessageSize);
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            socket.ReceiveTimeout = (int)(timeout ?? TimeSpan.FromSeconds(10)).TotalMilliseconds;
            socket.Connect(new UnixDomainSocketEndPoint(path));
            byte[] record = new byte[MaximumRecord + 1];
            int n = socket.Receive(record);
            if (n != HeaderSize + 8 + 32 || record[0] != Hello || BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(HeaderSize)) != 1)
            {
                throw new PortException("the port did not greet with a version 1 hello");
            }

            bool mustSign = (BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(HeaderSize + 2)) & SignatureRequired) != 0;
            byte[] signature = [];
            if (mustSign)
            {
                if (signingKey is null)
                {
                    throw new PortException("the port admits only a signed client, and no signing key was given");
                }

                byte[] signed = [.. Encoding.ASCII.GetBytes(SignedPrefix), .. Encoding.UTF8.GetBytes(Path.GetFileName(path)), 0, .. record.AsSpan(HeaderSize + 8, 32)];
                signature = signingKey.SignData(signed, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
            }

            byte[] connect = new byte[HeaderSize + 4 + context.Length + 4 + signature.Length];
            WriteHeader(connect, ConnectType, 0, 0, 0);
            BinaryPrimitives.WriteUInt32LittleEndian(connect.AsSpan(HeaderSize), (uint)context.Length);
            context.CopyTo(connect.AsSpan(HeaderSize + 4));
            BinaryPrimitives.WriteUInt32LittleEndian(connect.AsSpan(HeaderSize + 4 + context.Length), (uint)signature.Length);
            signature.CopyTo(connect.AsSpan(HeaderSize + 8 + context.Length));
            socket.Send(connect);
            n = socket.Receive(record);
            if (n != HeaderSize || record[0] != Connected)
            {
                throw new PortException("the port did not answer the connect");
            }

            uint status = BinaryPrimitives.ReadUInt32LittleEndian(record.AsSpan(4));
            if (status >> 30 is 2 or 3)
            {
                throw new PortException("the port refused the connection: status 0x" + status.ToString("X8", System.Globalization.CultureInfo.InvariantCulture), status);
            }

            socket.ReceiveTimeout = 0;
            var client = new PortClient(socket, (long)BinaryPrimitives.ReadUInt64LittleEndian(record.AsSpan(8)));
            client._reader.Start();
            return client;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Waits for the driver's next message (<c>FilterGetMessage</c>).</summary>
    /// <param name="cancellation">Ends the wait.</param>
    /// <returns>The message, or null when the connection has ended.</returns>
    public PortMessage? Receive(CancellationToken cancellation = default)
    {
        try
        {
            return _inbox.Take(cancellation);
        }
        catch (InvalidOperationException)
        {
            return null; // Completed: the connection ended and every message was taken.
        }
    }

    /// <summary>Answers a message that wants a reply (<c>FilterReplyMessage</c>).</summary>
    /// <param name="messageId">The message's <see cref="PortMessage.Id"/>.</param>
    /// <param name="reply">The reply's bytes; at most <see cref="MaximumMessageSize"/>.</param>
    /// <param name="status">A status for the driver: 0 (success), or an error code its send returns.</param>
    public void Reply(ulong messageId, ReadOnlySpan<byte> reply, uint status = 0) => Transmit(ReplyType, 0, status, messageId, reply);

    /// <summary>Sends a message that wants no reply.</summary>
    /// <param name="message">The message; at most <see cref="MaximumMessageSize"/>.</param>
    public void Post(ReadOnlySpan<byte> message) => Transmit(MessageType, 0, 0, (ulong)Interlocked.Increment(ref _nextId), message);

    /// <summary>Sends a message to the driver and waits for its reply (<c>FilterSendMessage</c>).</summary>
    /// <param name="message">The message; at most <see cref="MaximumMessageSize"/>.</param>
    /// <param name="timeout">The longest wait for the reply.</param>
    /// <returns>The driver's reply and status.</returns>
    /// <exception cref="TimeoutException">No reply in time.</exception>
    /// <exception cref="PortException">The connection ended first.</exception>
    public PortReply Send(ReadOnlySpan<byte> message, TimeSpan timeout)
    {
        ulong id = (ulong)Interlocked.Increment(ref _nextId);
        var waiter = new TaskCompletionSource<PortReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[id] = waiter;
        try
        {
            Transmit(MessageType, ReplyWanted, 0, id, message);
            if (!waiter.Task.Wait(timeout))
            {
                throw new TimeoutException("the driver did not reply within " + timeout);
            }

            return waiter.Task.Result;
        }
        catch (AggregateException e) when (e.InnerException is PortException p)
        {
            throw p;
        }
        finally
        {
            _waiting.TryRemove(id, out _);
        }
    }

    /// <summary>Ends the connection; the driver's disconnect callback is called. Calling it again does nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Already ended.
        }

        if (Thread.CurrentThread != _reader && _reader.IsAlive)
        {
            _reader.Join();
        }

        _socket.Dispose();
        _inbox.Dispose();
    }

    private void Transmit(byte type, byte flags, uint status, ulong id, ReadOnlySpan<byte> body)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(body.Length, MaximumMessageSize);
        byte[] record = new byte[HeaderSize + body.Length];
        WriteHeader(record, type, flags, status, id);
        body.CopyTo(record.AsSpan(HeaderSize));
        try
        {
            _socket.Send(record);
        }
        catch (SocketException e)
        {
            throw new PortException("the connection has ended", e);
        }
    }

    private static void WriteHeader(Span<byte> into, byte type, byte flags, uint status, ulong id)
    {
        into[0] = type;
        into[1] = flags;
        BinaryPrimitives.WriteUInt16LittleEndian(into[2..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(into[4..], status);
        BinaryPrimitives.WriteUInt64LittleEndian(into[8..], id);
    }

    private void Read()
    {
        byte[] record = new byte[MaximumRecord + 1];
        try
        {
            while (true)
            {
                int n = _socket.Receive(record);
                if (n < HeaderSize || n > MaximumRecord)
                {
                    return;
                }

                ulong id = BinaryPrimitives.ReadUInt64LittleEndian(record.AsSpan(8));
                byte[] body = record.AsSpan(HeaderSize, n - HeaderSize).ToArray();
                if (record[0] == MessageType)
                {
                    _inbox.Add(new PortMessage(id, (record[1] & ReplyWanted) != 0, body));
                }
                else if (record[0] == ReplyType && _waiting.TryRemove(id, out TaskCompletionSource<PortReply>? waiter))
                {
                    waiter.TrySetResult(new PortReply(BinaryPrimitives.ReadUInt32LittleEndian(record.AsSpan(4)), body));
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The connection ended under the reader.
        }
        finally
        {
            _ended = true;
            _inbox.CompleteAdding();
            foreach (TaskCompletionSource<PortReply> w in _waiting.Values)
            {
                w.TrySetException(new PortException("the connection ended before the reply came"));
            }
        }
    }
}
