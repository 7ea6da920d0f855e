// Communication ports of a driver in its host (IPortManager): the port and its connections are the kernel's
// (IsolatedDriver.Ports.cs); the host keeps a port object per port and a connection object per connection, told of each
// connect and disconnect, so that IPort.Connections and IPortConnection.IsConnected are answered here.
using System.Collections.Concurrent;
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

/// <summary>IPortManager in a driver host.</summary>
internal sealed class RemotePorts(RemoteDriverContext context) : IPortManager
{
    private readonly ConcurrentDictionary<long, RemotePort> _ports = new();
    private readonly ConcurrentDictionary<long, RemoteConnection> _connections = new();

    private IsolationChannel Channel => context.Channel;

    public Status CreatePort(string name, PortOptions options, PortCallbacks callbacks, out IPort? port)
    {
        port = null;
        if (name is null || options is null || callbacks is null
            || (options.AllowedUserIds?.Count ?? 0) > PortOptions.AllowedIdsLimit || (options.AllowedGroupIds?.Count ?? 0) > PortOptions.AllowedIdsLimit)
        {
            return Status.InvalidParameter;
        }

        int registration = context.Keep(callbacks);
        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.CreatePort);
            w.String(name);
            w.I32(options.MaximumConnections);
            WriteIds(ref w, options.AllowedUserIds);
            WriteIds(ref w, options.AllowedGroupIds);
            w.Bool(options.ClientKey is not null);
            if (options.ClientKey is { } key)
            {
                key.CopyTo(w.Data(key.Length));
            }

            w.Bool(options.ExcludeClientsFromFileCallbacks);
            w.I32(registration);
            w.Bool(callbacks.Message is not null);
            if (w.Overflowed)
            {
                return Status.InvalidParameter;
            }

            if (!c.Call(ref w, out RecordReader r))
            {
                return Status.InvalidDeviceState;
            }

            Status s = r.Status();
            long handle = r.I64();
            string? path = r.String();
            s = context.End(ref r, s);
            if (s.IsSuccess && handle != 0 && path is not null)
            {
                var p = new RemotePort(this, handle, name, path);
                _ports[handle] = p;
                port = p;
            }

            return s;
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status ExcludeProcess(int processId) => Request(IsolationOp.ExcludeProcess, processId);

    public Status IncludeProcess(int processId) => Request(IsolationOp.IncludeProcess, processId);

    /// <summary>A client connected to a port of this driver: its connection object, then the driver's connect callback.</summary>
    internal void Connected(Conversation c, int registration, long port, long id, int processId, uint userId, uint groupId, ReadOnlySpan<byte> connectContext)
    {
        var callbacks = context.Find(registration) as PortCallbacks;
        RemoteConnection? connection = null;
        if (callbacks is not null && _ports.TryGetValue(port, out RemotePort? p))
        {
            connection = new RemoteConnection(this, p, id, processId, userId, groupId);
            _connections[id] = connection;
        }

        byte[] bytes = connectContext.ToArray();
        context.RunCallback(c, registration, (object callback) =>
        {
            if (connection is null)
            {
                throw new InvalidOperationException("no port " + port + " of registration " + registration + " in this host");
            }

            Status s = ((PortCallbacks)callback).Connect?.Invoke(connection, bytes) ?? Status.Success;
            if (s.IsError)
            {
                connection.Ended();
                _ = _connections.TryRemove(id, out _);
            }

            return s;
        });
    }

    /// <summary>A connection ended: its object says so, then the driver's disconnect callback.</summary>
    internal void Disconnected(Conversation c, int registration, long id)
    {
        _ = _connections.TryRemove(id, out RemoteConnection? connection);
        connection?.Ended();
        context.RunCallback(c, registration, (object callback) =>
        {
            if (connection is not null)
            {
                ((PortCallbacks)callback).Disconnect?.Invoke(connection);
            }

            return Status.Success;
        });
    }

    /// <summary>A client's message: the driver's message callback, whose reply goes back with its status.</summary>
    internal void Message(Conversation c, int registration, long id, int room, ReadOnlySpan<byte> message)
    {
        RecordWriter w;
        try
        {
            PortMessageCallback callback = (context.Find(registration) as PortCallbacks)?.Message
                ?? throw new InvalidOperationException("registration " + registration + " has no message callback");
            RemoteConnection connection = _connections.GetValueOrDefault(id)
                ?? throw new InvalidOperationException("no connection " + id + " in this host");
            byte[] reply = new byte[Math.Clamp(room, 0, PortOptions.MaximumMessageSize)];
            Status s = callback(connection, message, reply, out int length);
            w = c.BeginReply(Status.Success);
            w.U8((byte)CallbackOutcome.Returned);
            w.Status(s);
            w.I32(length);
            reply.AsSpan(0, length >= 0 && length <= reply.Length ? length : 0).CopyTo(w.Data(length >= 0 && length <= reply.Length ? length : 0));
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

    internal IReadOnlyList<IPortConnection> ConnectionsOf(RemotePort port) =>
        [.. _connections.Values.Where(c => ReferenceEquals(c.Port, port) && c.IsConnected).OrderBy(c => c.Id)];

    internal Status Close(RemotePort port)
    {
        Status s = Request(IsolationOp.ClosePort, port.Handle);
        if (s.IsSuccess)
        {
            _ = _ports.TryRemove(port.Handle, out _);
        }

        return s;
    }

    internal Status Send(RemoteConnection connection, ReadOnlySpan<byte> message, TimeSpan timeout)
    {
        if (message.Length > PortOptions.MaximumMessageSize)
        {
            return Status.InvalidParameter;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.PortSend);
            w.I64(connection.Id);
            w.I64(timeout.Ticks);
            message.CopyTo(w.Data(message.Length));
            return context.Request(c, ref w);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    internal Status Send(RemoteConnection connection, ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength, TimeSpan timeout)
    {
        replyLength = 0;
        if (message.Length > PortOptions.MaximumMessageSize)
        {
            return Status.InvalidParameter;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.PortSendForReply);
            w.I64(connection.Id);
            w.I64(timeout.Ticks);
            w.I32(Math.Min(reply.Length, PortOptions.MaximumMessageSize));
            message.CopyTo(w.Data(message.Length));
            if (!c.Call(ref w, out RecordReader r))
            {
                return Status.InvalidDeviceState;
            }

            Status s = r.Status();
            int length = r.I32();
            ReadOnlySpan<byte> bytes = r.Data();
            s = context.End(ref r, s);
            if (bytes.Length > reply.Length)
            {
                Channel.Fail("the kernel sent a longer port reply than asked for");
                return Status.InvalidDeviceState;
            }

            bytes.CopyTo(reply);
            replyLength = length;
            return s;
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    internal Status Close(RemoteConnection connection) => Request(IsolationOp.CloseConnection, connection.Id);

    private Status Request(IsolationOp op, long value)
    {
        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(op);
            if (op is IsolationOp.ExcludeProcess or IsolationOp.IncludeProcess)
            {
                w.I32((int)value);
            }
            else
            {
                w.I64(value);
            }

            return context.Request(c, ref w);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    private static void WriteIds(ref RecordWriter w, IReadOnlyList<uint>? ids)
    {
        w.U32((uint)(ids?.Count ?? 0));
        for (int i = 0; i < (ids?.Count ?? 0); i++)
        {
            w.U32(ids![i]);
        }
    }
}

/// <summary>A port of the driver, in its host.</summary>
internal sealed class RemotePort(RemotePorts ports, long handle, string name, string path) : IPort
{
    internal long Handle { get; } = handle;

    public string Name { get; } = name;

    public string Path { get; } = path;

    public IReadOnlyList<IPortConnection> Connections => ports.ConnectionsOf(this);

    public Status Close() => ports.Close(this);
}

/// <summary>A connection to a port of the driver, in its host: who the client is, as the kernel established it.</summary>
internal sealed class RemoteConnection(RemotePorts ports, RemotePort port, long id, int processId, uint userId, uint groupId) : IPortConnection
{
    private volatile bool _ended;

    public long Id { get; } = id;

    public IPort Port { get; } = port;

    public int ProcessId { get; } = processId;

    public uint UserId { get; } = userId;

    public uint GroupId { get; } = groupId;

    public bool IsConnected => !_ended;

    public Status Send(ReadOnlySpan<byte> message, TimeSpan timeout) => _ended ? Status.InvalidDeviceState : ports.Send(this, message, timeout);

    public Status Send(ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength, TimeSpan timeout)
    {
        replyLength = 0;
        return _ended ? Status.InvalidDeviceState : ports.Send(this, message, reply, out replyLength, timeout);
    }

    public Status Close() => _ended ? Status.InvalidDeviceState : ports.Close(this);

    internal void Ended() => _ended = true;
}
