using System.Net.Sockets;
using Palisade.Api;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Control;

/// <summary>
/// One connection to the control socket of the kernel that holds a home's registry hive: registry operations
/// (<c>palisade reg</c>, or a following kernel's own writes), or a subscription to the hive's changes.
/// </summary>
internal sealed class ControlClient : IDisposable
{
    private readonly NetworkStream _stream;

    private ControlClient(NetworkStream stream) => _stream = stream;

    /// <summary>Connects to the control socket at <paramref name="path"/>.</summary>
    /// <returns>False when no kernel listens there (no socket file, or one a dead kernel left).</returns>
    public static bool TryConnect(string path, out ControlClient? client)
    {
        client = null;
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (Exception e) when (e is SocketException or IOException or ArgumentException)
        {
            socket.Dispose();
            return false;
        }

        client = new ControlClient(new NetworkStream(socket, ownsSocket: true));
        return true;
    }

    /// <summary>
    /// Performs a registry operation in the kernel; the results (created, the value read, the names) are written to
    /// <paramref name="request"/>.
    /// </summary>
    /// <param name="request">The operation.</param>
    /// <param name="change">The number of the change it made in the hive's order, or 0 when it changed nothing.</param>
    /// <returns>The operation's status; <see cref="Status.ConnectionRefused"/> when the kernel went away or answered
    /// with something that is not a response.</returns>
    public Status Perform(RegistryRequest request, out ulong change)
    {
        change = 0;
        var w = new ControlWriter(64 + (request.KeyPath.Length * 2) + request.Data.Length);
        w.WriteByte((byte)ControlMessage.RegistryRequest);
        ControlProtocol.WriteRequest(ref w, request);
        try
        {
            ControlProtocol.WriteFrame(_stream, w.ToArray());
            return ControlProtocol.TryReadFrame(_stream, out byte[] payload)
                && ControlProtocol.TryReadResponse(payload, request, out Status status, out change)
                ? status
                : Status.ConnectionRefused;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            return Status.ConnectionRefused;
        }
    }

    /// <summary>The connection, to read a subscription's frames from.</summary>
    public Stream Stream => _stream;

    /// <summary>Asks for the hive's copy and changes; the caller then reads frames from <see cref="Stream"/>.</summary>
    /// <exception cref="IOException">The kernel went away.</exception>
    public void Subscribe() => ControlProtocol.WriteFrame(_stream, [(byte)ControlMessage.Subscribe]);

    public void Dispose() => _stream.Dispose();
}
