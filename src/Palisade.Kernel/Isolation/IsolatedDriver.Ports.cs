// Communication ports of an isolated driver. The port is the kernel's (its socket, admission, reader threads, sends and
// their timeouts), made through the driver's context as for any driver; its callbacks are proxies that cross to the
// host on the connection's reader thread, so their order and one-at-a-time rule are the kernel's. The host keeps a
// connection object per connection under its id: the kernel tells it of every connect and disconnect (whether or not
// the driver gave those callbacks), so a driver's IPort.Connections is answered in its host without a round trip.
using System.Collections.Concurrent;
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal sealed partial class IsolatedDriver
{
    private readonly ConcurrentDictionary<long, IPort> _ports = new();
    private readonly ConcurrentDictionary<long, IPortConnection> _connections = new();
    private long _nextPort;

    private void ServePorts(Conversation c, IsolationOp op, ref RecordReader a, IPortManager ports)
    {
        switch (op)
        {
            case IsolationOp.CreatePort:
                CreatePort(c, ref a, ports);
                return;
            case IsolationOp.ClosePort:
            {
                long handle = a.I64();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(_ports.TryGetValue(handle, out IPort? port) ? port.Close() : Status.InvalidHandle);
                }

                return;
            }

            case IsolationOp.PortSend:
            case IsolationOp.PortSendForReply:
            {
                long id = a.I64();
                var timeout = TimeSpan.FromTicks(a.I64());
                int room = op == IsolationOp.PortSendForReply ? a.I32() : 0;
                ReadOnlySpan<byte> message = a.Data();
                if (a.Finish().IsError)
                {
                    return;
                }

                if (!_connections.TryGetValue(id, out IPortConnection? connection))
                {
                    c.Reply(Status.InvalidDeviceState);
                    return;
                }

                if (op == IsolationOp.PortSend)
                {
                    c.Reply(connection.Send(message, timeout));
                    return;
                }

                // The client's reply is received straight into its place in the reply record (after the status and the
                // length, written once they are known).
                RecordWriter w = c.BeginReply(Status.Success);
                w.I32(0);
                Span<byte> reply = w.Data(Math.Clamp(room, 0, PortOptions.MaximumMessageSize));
                Status s = connection.Send(message, reply, out int length, timeout);
                w = c.BeginReply(s);
                w.I32(length);
                _ = w.Data(Math.Clamp(length, 0, reply.Length));
                c.Reply(ref w);
                return;
            }

            case IsolationOp.CloseConnection:
            {
                long id = a.I64();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(_connections.TryGetValue(id, out IPortConnection? connection) ? connection.Close() : Status.InvalidDeviceState);
                }

                return;
            }

            case IsolationOp.ExcludeProcess:
            case IsolationOp.IncludeProcess:
            {
                int pid = a.I32();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(op == IsolationOp.ExcludeProcess ? ports.ExcludeProcess(pid) : ports.IncludeProcess(pid));
                }

                return;
            }
        }
    }

    private void CreatePort(Conversation c, ref RecordReader a, IPortManager ports)
    {
        string name = a.Text();
        int maximumConnections = a.I32();
        uint[] users = a.UInt32s();
        uint[] groups = a.UInt32s();
        byte[]? key = a.Bool() ? a.Data().ToArray() : null;
        bool exclude = a.Bool();
        int registration = a.I32();
        bool hasMessage = a.Bool();
        if (a.Finish().IsError)
        {
            return;
        }

        long handle = Interlocked.Increment(ref _nextPort);
        var proxy = new PortProxy(this, registration, handle);
        var options = new PortOptions
        {
            MaximumConnections = maximumConnections,
            AllowedUserIds = users,
            AllowedGroupIds = groups,
            ClientKey = key,
            ExcludeClientsFromFileCallbacks = exclude,
        };
        var callbacks = new PortCallbacks { Connect = proxy.Connect, Disconnect = proxy.Disconnect, Message = hasMessage ? proxy.Message : null };
        Status s = ports.CreatePort(name, options, callbacks, out IPort? port);
        if (port is not null)
        {
            _ports[handle] = port;
        }

        RecordWriter w = c.BeginReply(s);
        w.I64(port is null ? 0 : handle);
        w.String(port?.Path);
        c.Reply(ref w);
    }

    private Status PortConnect(int registration, long port, IPortConnection connection, ReadOnlySpan<byte> context)
    {
        _connections[connection.Id] = connection;
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.PortConnect);
            w.I32(registration);
            w.I64(port);
            w.I64(connection.Id);
            w.I32(connection.ProcessId);
            w.U32(connection.UserId);
            w.U32(connection.GroupId);
            context.CopyTo(w.Data(context.Length));
            Status s = CallForStatus(c, ref w);
            if (s.IsError)
            {
                _ = _connections.TryRemove(connection.Id, out _);
            }

            return s;
        }
        catch
        {
            _ = _connections.TryRemove(connection.Id, out _);
            throw;
        }
        finally
        {
            channel.Leave(c);
        }
    }

    private void PortDisconnect(int registration, IPortConnection connection)
    {
        _ = _connections.TryRemove(connection.Id, out _);
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.PortDisconnect);
            w.I32(registration);
            w.I64(connection.Id);
            _ = CallForStatus(c, ref w);
        }
        finally
        {
            channel.Leave(c);
        }
    }

    private Status PortMessage(int registration, IPortConnection connection, ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.PortMessage);
            w.I32(registration);
            w.I64(connection.Id);
            w.I32(reply.Length);
            message.CopyTo(w.Data(message.Length));
            if (!c.Call(ref w, out RecordReader r))
            {
                throw HostFailed();
            }

            ReadOutcome(ref r);
            Status status = r.Status();
            int length = r.I32();
            ReadOnlySpan<byte> bytes = r.Data();
            EndReply(ref r);
            if (bytes.Length > reply.Length || (bytes.Length != length && length >= 0 && length <= reply.Length))
            {
                // The host claims bytes it did not send, or more than there is room for.
                channel.Fail("a port message reply that does not match its length");
                throw HostFailed();
            }

            bytes.CopyTo(reply);
            replyLength = length;
            return status;
        }
        finally
        {
            channel.Leave(c);
        }
    }

    /// <summary>The kernel's callbacks of one port of the host's.</summary>
    private sealed class PortProxy(IsolatedDriver driver, int registration, long port)
    {
        public Status Connect(IPortConnection connection, ReadOnlySpan<byte> context) => driver.PortConnect(registration, port, connection, context);

        public void Disconnect(IPortConnection connection) => driver.PortDisconnect(registration, connection);

        public Status Message(IPortConnection connection, ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength) =>
            driver.PortMessage(registration, connection, message, reply, out replyLength);
    }
}
