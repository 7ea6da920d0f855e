using System.Buffers.Binary;

namespace Palisade.Interop;

/// <summary>
/// Which internet sockets of the host are still open, from sock_diag (NETLINK_SOCK_DIAG, inet_diag dumps): the flow
/// sweep uses it to find flows whose socket lost its last descriptor. A socket is open while some descriptor names it;
/// once the last one is closed Linux orphans it (its inode reads 0 while TCP finishes its close) and then frees it, so
/// "open" here is "listed with a non-zero inode". Sockets are named by their cookie (SO_COOKIE), which Linux never gives
/// to another socket during a boot, unlike inode numbers.
/// </summary>
internal static unsafe class SockDiag
{
    private const ushort SOCK_DIAG_BY_FAMILY = 20;
    private const ushort NLM_F_REQUEST = 1, NLM_F_DUMP = 0x300;
    private const ushort NLMSG_ERROR = 2, NLMSG_DONE = 3;
    private const int HeaderSize = 16, RequestSize = 56;

    /// <summary>Offsets in struct inet_diag_msg: the cookie in its socket id, and the inode.</summary>
    private const int CookieOffset = 4 + 40, InodeOffset = 4 + 48 + 16;

    /// <summary>The cookie of socket <paramref name="fd"/> (SO_COOKIE), or 0 when Linux gives none.</summary>
    public static ulong CookieOf(int fd)
    {
        ulong cookie = 0;
        uint length = sizeof(ulong);
        return Libc.GetSockOpt(fd, Libc.SOL_SOCKET, Libc.SO_COOKIE, &cookie, &length) < 0 ? 0 : cookie;
    }

    /// <summary>
    /// Adds to <paramref name="open"/> the cookie of every socket of <paramref name="family"/> (AF_INET, AF_INET6) and
    /// <paramref name="protocol"/> (IPPROTO_TCP, IPPROTO_UDP) that a descriptor still names. 0, or the errno when Linux
    /// cannot list them (no sock_diag for that protocol): the caller then knows nothing about those sockets.
    /// </summary>
    public static int AddOpenSockets(int family, int protocol, HashSet<ulong> open)
    {
        ArgumentNullException.ThrowIfNull(open);
        int fd = Libc.Socket(Libc.AF_NETLINK, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC, Libc.NETLINK_SOCK_DIAG);
        if (fd < 0)
        {
            return Libc.LastError;
        }

        try
        {
            byte* request = stackalloc byte[HeaderSize + RequestSize];
            var r = new Span<byte>(request, HeaderSize + RequestSize);
            r.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(r, HeaderSize + RequestSize);
            BinaryPrimitives.WriteUInt16LittleEndian(r[4..], SOCK_DIAG_BY_FAMILY);
            BinaryPrimitives.WriteUInt16LittleEndian(r[6..], NLM_F_REQUEST | NLM_F_DUMP);
            r[HeaderSize] = (byte)family;
            r[HeaderSize + 1] = (byte)protocol;
            BinaryPrimitives.WriteUInt32LittleEndian(r[(HeaderSize + 4)..], uint.MaxValue); // every state
            if (Libc.Send(fd, request, (nuint)r.Length, 0) < 0)
            {
                return Libc.LastError;
            }

            byte[] buffer = new byte[32 * 1024];
            fixed (byte* b = buffer)
            {
                while (true)
                {
                    nint got = Libc.Recv(fd, b, (nuint)buffer.Length, 0);
                    if (got < 0)
                    {
                        int error = Libc.LastError;
                        if (error == Errno.EINTR)
                        {
                            continue;
                        }

                        return error;
                    }

                    int at = 0;
                    while (at + HeaderSize <= got)
                    {
                        var message = buffer.AsSpan(at, (int)got - at);
                        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(message);
                        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]);
                        if (type == NLMSG_DONE)
                        {
                            return 0;
                        }

                        if (type == NLMSG_ERROR)
                        {
                            int error = message.Length >= HeaderSize + 4 ? -BinaryPrimitives.ReadInt32LittleEndian(message[HeaderSize..]) : Errno.EIO;
                            return error == 0 ? 0 : error;
                        }

                        if (length < HeaderSize || length > message.Length)
                        {
                            return Errno.EIO;
                        }

                        if (type == SOCK_DIAG_BY_FAMILY && length >= HeaderSize + InodeOffset + 4)
                        {
                            var diag = message[HeaderSize..];
                            uint inode = BinaryPrimitives.ReadUInt32LittleEndian(diag[InodeOffset..]);
                            if (inode != 0)
                            {
                                // idiag_cookie is two host-order u32 halves, low half first.
                                ulong cookie = BinaryPrimitives.ReadUInt32LittleEndian(diag[CookieOffset..])
                                    | ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(diag[(CookieOffset + 4)..]) << 32);
                                open.Add(cookie);
                            }
                        }

                        at += (length + 3) & ~3;
                    }
                }
            }
        }
        finally
        {
            Libc.CloseOwned(fd);
        }
    }
}
