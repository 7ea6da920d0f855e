// A driver's communication port: the listening SOCK_SEQPACKET socket at $PALISADE_HOME/ports/NAME, the lock that
// proves this kernel owns the name, the thread that accepts clients, and the policy that admits them. Each accepted
// socket gets a PortConnection and a reader thread of its own, so that one client (or one slow callback for it) never
// delays another.
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Control;

namespace Palisade.Kernel.Ports;

internal sealed class CommunicationPort : IPort
{
    /// <summary>The most clients of one port that may be in their handshake at once; more are closed at once.</summary>
    public const int HandshakeLimit = 16;

    private readonly PortManager _manager;
    private readonly DriverContext _owner;
    private readonly PortOptions _options;
    private readonly PortCallbacks _callbacks;
    private readonly Socket _listener;
    private readonly SafeFileHandle _lock;
    private readonly Lock _sync = new();
    private readonly HashSet<uint> _users;
    private readonly HashSet<uint> _groups;
    private readonly Thread _accept;
    private PortConnection[] _open = [];
    private int _admitted;
    private int _handshakes;
    private volatile bool _closed;

    public CommunicationPort(PortManager manager, DriverContext owner, string name, string path, PortOptions options, PortCallbacks callbacks,
        ECDsa? clientKey, Socket listener, SafeFileHandle nameLock, FileIdentity identity)
    {
        _manager = manager;
        _owner = owner;
        Name = name;
        Path = path;
        _options = options;
        _callbacks = callbacks;
        ClientKey = clientKey;
        _listener = listener;
        _lock = nameLock;
        Identity = identity;
        _users = [.. options.AllowedUserIds ?? []];
        _groups = [.. options.AllowedGroupIds ?? []];
        if (_users.Count == 0 && _groups.Count == 0)
        {
            _users.Add(0);
            _users.Add(Libc.GetEUid());
        }

        _accept = new Thread(Accept) { IsBackground = true, Name = "palisade-port-" + name };
    }

    public string Name { get; }

    public string Path { get; }

    /// <summary>The identity of the socket file (the host lets guests connect to it, and change nothing of it).</summary>
    public FileIdentity Identity { get; }

    /// <summary>The key a client must sign with, or null.</summary>
    public ECDsa? ClientKey { get; }

    public DriverObject Owner => _owner.Driver;

    public IReadOnlyList<IPortConnection> Connections => Volatile.Read(ref _open);

    public void Start() => _accept.Start();

    public Status Close()
    {
        lock (_sync)
        {
            if (_closed)
            {
                return Status.InvalidDeviceState;
            }

            _closed = true;
        }

        _manager.Removed(this);
        SocketFile.RemoveIfSame(Path, Identity);

        _listener.Dispose();
        _lock.Dispose();
        if (Thread.CurrentThread != _accept)
        {
            _accept.Join();
        }

        // The client key is not disposed: a handshake accepted before the close may still be verifying with it.
        return Status.Success;
    }

    /// <summary>Closes the port and ends its connections without telling the driver (it is unloading).</summary>
    public void CloseForUnload()
    {
        Close();
        foreach (PortConnection c in Volatile.Read(ref _open))
        {
            c.Abort();
        }
    }

    private void Accept()
    {
        while (!_closed)
        {
            Socket client;
            try
            {
                client = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            if (Interlocked.Increment(ref _handshakes) > HandshakeLimit)
            {
                Interlocked.Decrement(ref _handshakes);
                client.Dispose();
                continue;
            }

            var connection = new PortConnection(this, client);
            new Thread(connection.Run) { IsBackground = true, Name = "palisade-port-connection" }.Start();
        }
    }

    /// <summary>
    /// The verdict on a client's connect: the policy (user and group, signature), the connection limit, then the driver's
    /// connect callback. On success the client holds one of the port's connection slots.
    /// </summary>
    public Status Decide(PortConnection c, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> context, ReadOnlySpan<byte> signature)
    {
        Status s = Admits(c, challenge, signature);
        if (s.IsError)
        {
            _manager.Events.WriteKernel("port-refused", Name + " refused process " + c.ProcessId + " (uid " + c.UserId + ", gid " + c.GroupId + "): " + s.Name);
            return s;
        }

        if (_callbacks.Connect is { } connect)
        {
            try
            {
                s = connect(c, context);
            }
            catch (Exception e)
            {
                _manager.Events.WriteDriverFault(Owner.Name, "port " + Name + " connect callback threw " + e.GetType().Name + ": " + e.Message);
                s = Status.CallbackFaulted;
            }
        }

        if (s.IsError)
        {
            Release();
        }

        return s;
    }

    /// <summary>A client's handshake is over, whatever its outcome: it no longer counts against <see cref="HandshakeLimit"/>.</summary>
    public void HandshakeOver() => Interlocked.Decrement(ref _handshakes);

    private Status Admits(PortConnection c, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> signature)
    {
        if (_closed)
        {
            return Status.InvalidDeviceState;
        }

        if (c.ProcessId <= 0 || (!_users.Contains(c.UserId) && !_groups.Contains(c.GroupId)))
        {
            return Status.AccessDenied;
        }

        if (ClientKey is not null && !PortProtocol.Verifies(ClientKey, Name, challenge, signature))
        {
            return Status.AccessDenied;
        }

        lock (_sync)
        {
            if (_admitted >= _options.MaximumConnections)
            {
                return Status.InsufficientResources;
            }

            _admitted++;
        }

        return Status.Success;
    }

    private void Release()
    {
        lock (_sync)
        {
            _admitted--;
        }
    }

    /// <summary>The connection told its client it is connected.</summary>
    public void Opened(PortConnection c)
    {
        lock (_sync)
        {
            Volatile.Write(ref _open, [.. _open, c]);
        }

        if (_options.ExcludeClientsFromFileCallbacks && c.ProcessId > 0)
        {
            _ = Owner.Exclusions.Add(c.ProcessId, c);
        }
    }

    /// <summary>A connection ended: its slot is freed, its exclusion ends, and (when it was open) the driver is told.</summary>
    public void Ended(PortConnection c, bool wasOpen, bool tell)
    {
        if (!wasOpen)
        {
            return;
        }

        lock (_sync)
        {
            Volatile.Write(ref _open, Array.FindAll(_open, o => o != c));
        }

        Owner.Exclusions.RemoveAll(c);
        Release();
        if (tell && _callbacks.Disconnect is { } disconnect)
        {
            try
            {
                disconnect(c);
            }
            catch (Exception e)
            {
                _manager.Events.WriteDriverFault(Owner.Name, "port " + Name + " disconnect callback threw " + e.GetType().Name + ": " + e.Message);
            }
        }
    }

    /// <summary>A client's message for the driver; the status and length of the reply.</summary>
    public Status Deliver(PortConnection c, ReadOnlySpan<byte> message, Span<byte> reply, out int length)
    {
        length = 0;
        if (_callbacks.Message is not { } callback)
        {
            return Status.NotSupported;
        }

        Status s;
        try
        {
            s = callback(c, message, reply, out length);
        }
        catch (Exception e)
        {
            _manager.Events.WriteDriverFault(Owner.Name, "port " + Name + " message callback threw " + e.GetType().Name + ": " + e.Message);
            length = 0;
            return Status.CallbackFaulted;
        }

        if ((uint)length > (uint)reply.Length)
        {
            length = 0;
            return Status.BufferTooSmall;
        }

        return s;
    }
}
