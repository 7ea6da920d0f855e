using System.Net.Sockets;

namespace Palisade.Kernel.Control;

/// <summary>The process at the other end of a control connection, as the socket's <c>SO_PEERCRED</c> names it.</summary>
/// <param name="ProcessId">Its process id (in the reader's pid namespace).</param>
/// <param name="UserId">Its effective user id.</param>
/// <param name="GroupId">Its effective group id.</param>
internal readonly record struct ControlPeer(int ProcessId, uint UserId, uint GroupId)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    /// <summary>Reads the credentials of the process at the other end of a connected Unix socket (its
    /// <c>struct ucred</c>: pid, uid, gid, as they were when the connection was made).</summary>
    /// <returns>False when the socket cannot say.</returns>
    public static bool TryRead(Socket connection, out ControlPeer peer)
    {
        ArgumentNullException.ThrowIfNull(connection);
        peer = default;
        Span<byte> credentials = stackalloc byte[12];
        try
        {
            if (connection.GetRawSocketOption(SolSocket, SoPeerCred, credentials) != 12)
            {
                return false;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }

        peer = new ControlPeer(BitConverter.ToInt32(credentials), BitConverter.ToUInt32(credentials[4..]), BitConverter.ToUInt32(credentials[8..]));
        return true;
    }
}
