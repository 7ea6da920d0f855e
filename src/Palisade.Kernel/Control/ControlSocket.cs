// The kernel's control channel: the Unix socket $PALISADE_HOME/run/control.sock that the kernel holding the registry
// hive listens on. `palisade reg` sends registry operations here while a kernel runs (each is performed as a registry
// system service of the administrator, so the registry callbacks decide it), other kernels on the same home
// subscribe here to follow the hive, and `palisade bugcheck` asks the kernel to stop with bug check 0xE2. Only the
// kernel's own user (or root) may connect (SO_PEERCRED); guests run as that user too, so the host must refuse their
// connect to it (KernelSockets, docs/security.md).
using System.Net.Sockets;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Control;

internal sealed class ControlSocket : IDisposable
{
    public const string FileName = "control.sock";

    private readonly Socket _listener;
    private readonly string _path;
    private readonly IControlTarget _target;
    private readonly SharedRegistry _registry;
    private readonly KernelSockets _owned;
    private readonly Lock _lock = new();
    private readonly List<Socket> _connections = [];
    private readonly Thread _accept;
    private readonly FileIdentity _identity;
    private volatile bool _disposed;

    private ControlSocket(Socket listener, string path, FileIdentity identity, IControlTarget target, SharedRegistry registry, KernelSockets owned)
    {
        _listener = listener;
        _path = path;
        _identity = identity;
        _target = target;
        _registry = registry;
        _owned = owned;
        _accept = new Thread(Accept) { IsBackground = true, Name = "palisade-control" };
    }

    /// <summary>The path of the control socket of the kernels of <paramref name="home"/>.</summary>
    public static string PathOf(string home) => System.IO.Path.Combine(RunDirectory.PathOf(home), FileName);

    /// <summary>
    /// Listens on the control socket of <paramref name="home"/>. The caller holds the hive's lock, so it is the only
    /// rightful listener: a socket file left by a kernel that died is replaced.
    /// </summary>
    /// <param name="home">The kernel's home.</param>
    /// <param name="target">The kernel: performs registry operations as system services of the administrator, and
    /// stops the system on request.</param>
    /// <param name="registry">The hive the kernel holds, for subscriptions.</param>
    /// <param name="owned">Where the socket is recorded for the host.</param>
    /// <param name="socket">The listening channel, or null.</param>
    /// <returns>Null on success; otherwise why the kernel does not listen.</returns>
    public static string? Start(string home, IControlTarget target, SharedRegistry registry, KernelSockets owned, out ControlSocket? socket)
    {
        socket = null;
        string? unfit = RunDirectory.Prepare(home);
        if (unfit is not null || !OperatingSystem.IsLinux())
        {
            return unfit ?? "the kernel's sockets need Linux";
        }

        string path = PathOf(home);
        Socket listener;
        try
        {
            File.Delete(path);
            listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return "cannot bind " + path + ": " + e.Message;
        }

        FileIdentity identity;
        try
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            if (!owned.Add(path, out identity))
            {
                throw new IOException("its socket file cannot be examined");
            }

            listener.Listen(16);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            listener.Dispose();
            owned.Remove(path);
            return "cannot listen on " + path + ": " + e.Message;
        }

        socket = new ControlSocket(listener, path, identity, target, registry, owned);
        socket._accept.Start();
        return null;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _owned.Remove(_path);
        SocketFile.RemoveIfSame(_path, _identity);

        _listener.Dispose();
        lock (_lock)
        {
            foreach (Socket c in _connections)
            {
                c.Dispose();
            }
        }

        _accept.Join();
    }

    private void Accept()
    {
        uint self = Libc.GetEUid();
        while (!_disposed)
        {
            Socket connection;
            try
            {
                connection = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            if (!PeerAllowed(connection, self, out ControlPeer peer))
            {
                connection.Dispose();
                continue;
            }

            lock (_lock)
            {
                if (_disposed)
                {
                    connection.Dispose();
                    return;
                }

                _connections.Add(connection);
            }

            new Thread(() => Serve(connection, peer)) { IsBackground = true, Name = "palisade-control-connection" }.Start();
        }
    }

    /// <summary>Only the kernel's own user, or root, may use the channel.</summary>
    private static bool PeerAllowed(Socket connection, uint self, out ControlPeer peer) =>
        ControlPeer.TryRead(connection, out peer) && (peer.UserId == self || peer.UserId == 0);

    private void Serve(Socket connection, ControlPeer peer)
    {
        try
        {
            using var stream = new NetworkStream(connection, ownsSocket: true);
            while (!_disposed && ControlProtocol.TryReadFrame(stream, out byte[] payload))
            {
                var reader = new ControlReader(payload);
                if (!reader.TryReadByte(out byte kind))
                {
                    return;
                }

                if (kind == (byte)ControlMessage.RegistryRequest)
                {
                    if (!ControlProtocol.TryReadRequest(ref reader, out RegistryRequest? request) || !reader.AtEnd)
                    {
                        return;
                    }

                    SharedRegistry.ResetLastChange();
                    Status status = _target.PerformRegistry(request!);
                    ControlProtocol.WriteFrame(stream, ControlProtocol.Response(request!, status, SharedRegistry.LastChange));
                }
                else if (kind == (byte)ControlMessage.BugCheck)
                {
                    if (!reader.TryReadString(out string? reason) || !reader.AtEnd)
                    {
                        return;
                    }

                    // The client learns that the system stops before it does: then the connection ends with the process.
                    Status status = _target.PrepareBugCheck(peer, reason!, out Action? raise);
                    ControlProtocol.WriteFrame(stream, ControlProtocol.BugCheckResponse(status));
                    raise?.Invoke();
                }
                else if (kind == (byte)ControlMessage.Subscribe && reader.AtEnd)
                {
                    _registry.Feed(stream);
                    return;
                }
                else
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The client went away, or the kernel is shutting down.
        }
        finally
        {
            lock (_lock)
            {
                _connections.Remove(connection);
            }
        }
    }
}
