using System.Buffers.Binary;
using Palisade.Interop;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Syscalls;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// connect, bind, listen (performed by the supervisor on its own copy of the guest's socket, taken with
/// pidfd_getfd: the same open socket, so the guest's socket is the one connected), and accept and sends
/// with an explicit destination (decided, then continued: see docs/security.md). A blocking connect waits for its peer
/// on the thread that serves it, as the guest would; if it takes long, <see cref="ReceiverWatch"/> hands receiving to
/// another thread meanwhile.
/// </summary>
internal sealed unsafe partial class Supervisor
{

    private void HandleNetwork(in SeccompNotif n, Requester requester, Scratch s)
    {
        int tid = (int)n.Pid;
        int nr = n.Data.Nr;
        ulong a0 = n.Data.Args[0], a1 = n.Data.Args[1], a2 = n.Data.Args[2], a4 = n.Data.Args[4], a5 = n.Data.Args[5];

        int remoteLength = 0;
        switch (nr)
        {
            case Sys.Connect:
            case Sys.Bind:
                remoteLength = ReadSockaddr(tid, a1, a2, s.Address);
                break;
            case Sys.Sendto:
                remoteLength = ReadSockaddr(tid, a4, a5, s.Address);
                break;
            case Sys.Sendmsg:
                remoteLength = ReadMessageAddress(tid, a1, s.Address, s);
                break;
            case Sys.Sendmmsg:
                HandleSendmmsg(in n, requester, s);
                return;
            default:
                break;
        }

        if (remoteLength < 0)
        {
            Reply(n.Id, -remoteLength);
            return;
        }

        if (nr == Sys.Sendmsg && remoteLength == 0)
        {
            Continue(n.Id);
            return;
        }

        if (!StillWaiting(n.Id))
        {
            return;
        }

        int socket = TakeGuestFd(requester.ProcessId, (int)a0);
        if (socket < 0)
        {
            Reply(n.Id, -socket);
            return;
        }

        int socketFile = -1;
        try
        {
            int domain = SocketOption(socket, Libc.SO_DOMAIN), type = SocketOption(socket, Libc.SO_TYPE), protocol = SocketOption(socket, Libc.SO_PROTOCOL);
            if (domain < 0)
            {
                Reply(n.Id, -domain);
                return;
            }

            ReadOnlySpan<byte> address = s.Address.AsSpan(0, remoteLength);
            int localLength = nr == Sys.Bind ? 0 : LocalAddress(socket, s.LocalAddress);
            var local = nr == Sys.Bind ? address : s.LocalAddress.AsSpan(0, Math.Max(localLength, 0));
            var remote = nr == Sys.Bind ? default : address;
            var request = new NetworkCall
            {
                Operation = nr switch
                {
                    Sys.Connect => NetworkOperation.Connect,
                    Sys.Bind => NetworkOperation.Bind,
                    Sys.Listen => NetworkOperation.Listen,
                    Sys.Accept or Sys.Accept4 => NetworkOperation.Accept,
                    _ => NetworkOperation.Send,
                },
                Family = domain,
                SocketType = type & 0xf,
                Protocol = protocol,
                LocalAddress = local,
                RemoteAddress = remote,
                LocalPort = Port(local),
                RemotePort = Port(remote),
            };
            int decision = (_families & SyscallFamilies.Network) != 0 ? _mediator.Network(requester, request) : 0;
            if (decision != 0)
            {
                Reply(n.Id, decision);
                return;
            }

            switch (nr)
            {
                case Sys.Connect:
                    // The kernel boundary: a Unix socket file is resolved once and checked by identity; the connect then
                    // goes to exactly that socket (through its descriptor's /proc/self/fd link).
                    if (_boundary is not null && domain == Libc.AF_UNIX && address.Length > 2 && address[2] != 0)
                    {
                        int refusal = ResolveSocketFile(tid, address, s, out socketFile);
                        if (refusal != 0)
                        {
                            Reply(n.Id, refusal);
                            return;
                        }

                        address = SocketFileAddress(socketFile, s.LocalAddress);
                    }

                    // A blocking connect that waits for its peer is handed over with its thread (ReceiverWatch).
                    Reply(n.Id, AfterWait(UnixAware(Sys.Connect, tid, socket, domain, address, s, umask: null)));
                    return;
                case Sys.Bind:
                    uint? umask = domain == Libc.AF_UNIX ? GuestUmask(tid, s) : null;
                    Reply(n.Id, UnixAware(Sys.Bind, tid, socket, domain, address, s, umask));
                    return;
                case Sys.Listen:
                    Reply(n.Id, Libc.Listen(socket, (int)a1) < 0 ? Libc.LastError : 0);
                    return;
                default:
                    Continue(n.Id);
                    return;
            }
        }
        finally
        {
            Libc.CloseOwned(socket);
            Libc.CloseOwned(socketFile);
        }
    }

    /// <summary>
    /// For a connect to a Unix socket path: opens the socket file (O_PATH, following links as connect does, no magic links,
    /// relative paths from the guest's cwd) and asks the kernel boundary about it. 0 with the descriptor, or the errno.
    /// </summary>
    private int ResolveSocketFile(int tid, ReadOnlySpan<byte> address, Scratch s, out int socketFile)
    {
        socketFile = -1;
        ReadOnlySpan<byte> name = address[2..];
        int nul = name.IndexOf((byte)0);
        name = nul < 0 ? name : name[..nul];
        int baseFd = name[0] == (byte)'/' ? Libc.AT_FDCWD : ProcFs.OpenGuestDirectory(tid, Libc.AT_FDCWD, s.Proc);
        if (baseFd < 0 && baseFd != Libc.AT_FDCWD)
        {
            return -baseFd;
        }

        try
        {
            name.CopyTo(s.Path2);
            s.Path2[name.Length] = 0;
            var how = new OpenHow { Flags = (ulong)(Libc.O_PATH | Libc.O_CLOEXEC), Resolve = Libc.RESOLVE_NO_MAGICLINKS };
            int fd = Openat2(baseFd, s.Path2.AsSpan(0, name.Length + 1), ref how);
            if (fd < 0)
            {
                return -fd;
            }

            int parent = Boundary.KernelBoundary.Parent(name, s.Path);
            s.Path[parent] = 0;
            int refusal = _boundary!.RefusesSocket(fd, s.Path.AsSpan(0, parent + 1), baseFd);
            if (refusal != 0)
            {
                Libc.CloseOwned(fd);
                return refusal;
            }

            socketFile = fd;
            return 0;
        }
        finally
        {
            PathResolution.CloseBase(baseFd);
        }
    }

    /// <summary>A sockaddr_un naming the socket behind descriptor <paramref name="socketFile"/>: "/proc/self/fd/N".</summary>
    private static ReadOnlySpan<byte> SocketFileAddress(int socketFile, Span<byte> into)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(into, Libc.AF_UNIX);
        int length = new Utf8Builder(into[2..]).Append("/proc/self/fd/"u8).Append(socketFile).Append("\0"u8).Length;
        return into[..(2 + length)];
    }

    private void HandleSendmmsg(in SeccompNotif n, Requester requester, Scratch s)
    {
        int tid = (int)n.Pid;
        ulong vector = n.Data.Args[1];
        int count = (int)Math.Min(n.Data.Args[2], Libc.UIO_MAXIOV);
        int socket = -1;
        try
        {
            for (int i = 0; i < count; i++)
            {
                int length = ReadMessageAddress(tid, vector + (ulong)(i * Libc.MMSGHDR_SIZE), s.Address, s);
                if (length < 0)
                {
                    // Linux sends the messages before a bad one and reports how many; let it do exactly that.
                    break;
                }

                if (length == 0)
                {
                    continue;
                }

                if (socket < 0)
                {
                    socket = TakeGuestFd(requester.ProcessId, (int)n.Data.Args[0]);
                    if (socket < 0)
                    {
                        Reply(n.Id, -socket);
                        return;
                    }
                }

                var address = s.Address.AsSpan(0, length);
                var request = new NetworkCall
                {
                    Operation = NetworkOperation.Send,
                    Family = SocketOption(socket, Libc.SO_DOMAIN),
                    SocketType = SocketOption(socket, Libc.SO_TYPE) & Libc.SOCK_TYPE_MASK,
                    Protocol = SocketOption(socket, Libc.SO_PROTOCOL),
                    RemoteAddress = address,
                    RemotePort = Port(address),
                };
                int decision = _mediator.Network(requester, request);
                if (decision != 0)
                {
                    Reply(n.Id, decision);
                    return;
                }
            }

            Continue(n.Id);
        }
        finally
        {
            Libc.CloseOwned(socket);
        }
    }

    /// <summary>Connect or bind on our copy; a relative AF_UNIX path is resolved in the guest's cwd via fchdir on a thread whose cwd is private.</summary>
    private int UnixAware(int call, int tid, int socket, int domain, ReadOnlySpan<byte> address, Scratch s, uint? umask)
    {
        bool relativeUnixPath = domain == Libc.AF_UNIX && address.Length > 2 && address[2] != 0 && address[2] != (byte)'/';
        if (!relativeUnixPath)
        {
            return SocketAddressCall(call, socket, address, -1, umask);
        }

        if (!hasPrivateFs)
        {
            return Errno.EPERM;
        }

        int cwd = ProcFs.OpenGuestDirectory(tid, Libc.AT_FDCWD, s.Proc);
        if (cwd < 0)
        {
            return -cwd;
        }

        try
        {
            return SocketAddressCall(call, socket, address, cwd, umask);
        }
        finally
        {
            Libc.CloseOwned(cwd);
        }
    }

    private static int SocketAddressCall(int call, int socket, ReadOnlySpan<byte> address, int cwd, uint? umask)
    {
        if (cwd >= 0 && (!hasPrivateFs || Libc.Fchdir(cwd) < 0))
        {
            return hasPrivateFs ? Libc.LastError : Errno.EPERM;
        }

        if (umask is uint mask && hasPrivateFs)
        {
            _ = Libc.Umask(mask);
        }

        try
        {
            fixed (byte* a = address)
            {
                int result = call == Sys.Connect ? Libc.Connect(socket, a, (uint)address.Length) : Libc.Bind(socket, a, (uint)address.Length);
                return result < 0 ? Libc.LastError : 0;
            }
        }
        finally
        {
            if (umask is not null && hasPrivateFs)
            {
                _ = Libc.Umask(0);
            }
        }
    }

    /// <summary>Reads a sockaddr of <paramref name="length"/> bytes; its length, or -EINVAL/-EFAULT as Linux would.</summary>
    private static int ReadSockaddr(int tid, ulong address, ulong length, Span<byte> destination)
    {
        if (length > Libc.SOCKADDR_STORAGE_SIZE)
        {
            return -Errno.EINVAL;
        }

        if (length == 0)
        {
            return 0;
        }

        int got = GuestMemory.Read(tid, address, destination, (int)length);
        return got < 0 || got < (int)length ? -Errno.EFAULT : got;
    }

    /// <summary>The destination of a struct msghdr at <paramref name="message"/>: its length, 0 when none, or -errno.</summary>
    private static int ReadMessageAddress(int tid, ulong message, Span<byte> destination, Scratch s)
    {
        int got = GuestMemory.Read(tid, message, s.Small, Libc.MSGHDR_SIZE);
        if (got < Libc.MSGHDR_SIZE)
        {
            return -Errno.EFAULT;
        }

        ulong name = BinaryPrimitives.ReadUInt64LittleEndian(s.Small);
        uint nameLength = BinaryPrimitives.ReadUInt32LittleEndian(s.Small.AsSpan(8));
        return name == 0 ? 0 : ReadSockaddr(tid, name, nameLength, destination);
    }

    /// <summary>Our own copy of the guest's descriptor (pidfd_getfd), or -errno (EBADF when it has none).</summary>
    private static int TakeGuestFd(int process, int fd)
    {
        long pidfd = Libc.Syscall(Sys.PidfdOpen, process, 0, 0, 0, 0, 0);
        if (pidfd < 0)
        {
            return -Libc.LastError;
        }

        long copy = Libc.Syscall(Sys.PidfdGetfd, pidfd, fd, 0, 0, 0, 0);
        int error = Libc.LastError;
        Libc.CloseOwned((int)pidfd);
        return copy < 0 ? -error : (int)copy;
    }

    private static int SocketOption(int socket, int option)
    {
        int value;
        uint length = sizeof(int);
        return Libc.GetSockOpt(socket, Libc.SOL_SOCKET, option, &value, &length) < 0 ? -Libc.LastError : value;
    }

    private static int LocalAddress(int socket, Span<byte> destination)
    {
        uint length = (uint)destination.Length;
        fixed (byte* d = destination)
        {
            return Libc.GetSockName(socket, d, &length) < 0 ? -Libc.LastError : (int)Math.Min(length, (uint)destination.Length);
        }
    }

    private static int Port(ReadOnlySpan<byte> address)
    {
        if (address.Length < 4)
        {
            return 0;
        }

        int family = BinaryPrimitives.ReadUInt16LittleEndian(address);
        return family is Libc.AF_INET or Libc.AF_INET6 ? BinaryPrimitives.ReadUInt16BigEndian(address[2..]) : 0;
    }
}
