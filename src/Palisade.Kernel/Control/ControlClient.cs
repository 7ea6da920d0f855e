using System.Net.Sockets;
using Palisade.Api;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Control;

/// <summary>
/// One connection to the control socket of the kernel that holds a home's registry hive: registry operations
/// (<c>palisade reg</c>, or a following kernel's own writes), a subscription to the hive's changes, or a request to
/// stop the system (<c>palisade bugcheck</c>).
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

    /// <summary>
    /// Asks the kernel to stop the system with bug check 0xE2 MANUALLY_INITIATED_CRASH. On success the kernel stops
    /// right after answering; <see cref="WaitForEnd"/> waits for its process to end.
    /// </summary>
    /// <param name="reason">Why ("" for no reason); see <see cref="ControlProtocol.IsValidReason"/>.</param>
    /// <returns>The kernel's answer (<see cref="IControlTarget.PrepareBugCheck"/>); <see cref="Status.ConnectionRefused"/>
    /// when the kernel closed the connection without answering (it refused the peer) or answered with something that
    /// is not an answer to the request.</returns>
    public Status RequestBugCheck(string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        try
        {
            ControlProtocol.WriteFrame(_stream, ControlProtocol.BugCheck(reason));
            return ControlProtocol.TryReadFrame(_stream, out byte[] payload) && ControlProtocol.TryReadBugCheckResponse(payload, out Status status)
                ? status
                : Status.ConnectionRefused;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            return Status.ConnectionRefused;
        }
    }

    /// <summary>The process serving the socket, as the connection's <c>SO_PEERCRED</c> names it; null when it cannot say.</summary>
    public ControlPeer? Kernel => ControlPeer.TryRead(_stream.Socket, out ControlPeer peer) ? peer : null;

    /// <summary>Waits until the kernel closes the connection (its process ended) or <paramref name="timeout"/> passes.</summary>
    /// <returns>True when the connection ended; false when it was still open at the timeout.</returns>
    public bool WaitForEnd(TimeSpan timeout)
    {
        byte[] discard = new byte[256];
        try
        {
            _stream.ReadTimeout = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
            while (_stream.Read(discard) > 0)
            {
            }

            return true;
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock })
        {
            return false;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // Reset rather than closed: it ended all the same.
            return true;
        }
    }

    /// <summary>The connection, to read a subscription's frames from.</summary>
    public Stream Stream => _stream;

    /// <summary>Asks for the hive's copy and changes; the caller then reads frames from <see cref="Stream"/>.</summary>
    /// <exception cref="IOException">The kernel went away.</exception>
    public void Subscribe() => ControlProtocol.WriteFrame(_stream, [(byte)ControlMessage.Subscribe]);

    public void Dispose() => _stream.Dispose();
}
