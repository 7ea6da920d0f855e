using System.Buffers.Binary;
using Palisade.Interop;
using Palisade.Host.Linux.Authority;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Syscalls;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// connect, bind, listen (performed by the supervisor as the guest, on its own copy of the guest's socket taken with
/// pidfd_getfd: the same open socket, so the guest's socket is the one connected), and sends with an explicit
/// destination (decided, then continued: see docs/security.md). Accept, when a filter decides each connection or flows
/// are reported, is performed by the supervisor too: it accepts on its copy of the listening socket, classifies the
/// connection with its peer, and either gives it to the guest (SECCOMP_IOCTL_NOTIF_ADDFD, answering with its number) or
/// resets it and accepts the next. A blocking connect or accept waits on the thread that serves it, as the guest would;
/// if it takes long, <see cref="ReceiverWatch"/> hands receiving to another thread meanwhile.
/// </summary>
internal sealed unsafe partial class Supervisor
{

    private void HandleNetwork(in SeccompNotif n, SupervisedThread thread, Scratch s)
    {
        int tid = (int)n.Pid;
        int nr = n.Data.Nr;
        ulong a0 = n.Data.Args[0], a1 = n.Data.Args[1], a2 = n.Data.Args[2], a4 = n.Data.Args[4], a5 = n.Data.Args[5];

        int remoteLength = 0;
        switch (nr)
        {
            case Sys.Connect:
            case Sys.Bind:
                remoteLength = ReadSockaddr(ref thread, n.Id, a1, a2, s.Address, s);
                break;
            case Sys.Sendto:
                remoteLength = ReadSockaddr(ref thread, n.Id, a4, a5, s.Address, s);
                break;
            case Sys.Sendmsg:
                remoteLength = ReadMessageAddress(ref thread, n.Id, a1, s.Address, s);
                break;
            case Sys.Sendmmsg:
                HandleSendmmsg(in n, thread, s);
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

        Requester requester = thread.Requester with { CallId = n.Id };
        GuestAuthority guest = thread.Authority;
        int socket = TakeGuestFd(thread.Process, (int)a0);
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

            if (nr is Sys.Accept or Sys.Accept4)
            {
                if ((_families & SyscallFamilies.Network) != 0 && _mediator.MediatesAccept(domain))
                {
                    HandleAccept(in n, ref thread, requester, socket, domain, type, protocol, s);
                }
                else
                {
                    Continue(n.Id);
                }

                return;
            }

            ReadOnlySpan<byte> address = s.Address.AsSpan(0, remoteLength);
            bool autobound = nr == Sys.Connect && (_families & SyscallFamilies.Network) != 0 && Autobind(guest, socket, domain, type, address);
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
                if (autobound)
                {
                    Unbind(socket, type);
                }

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
                        int refusal = ResolveSocketFile(guest, tid, address, s, out socketFile);
                        if (refusal != 0)
                        {
                            Reply(n.Id, refusal);
                            return;
                        }

                        address = SocketFileAddress(socketFile, s.LocalAddress);
                    }

                    // A blocking connect that waits for its peer is handed over with its thread (ReceiverWatch).
                    int connected = AfterWait(socketFile >= 0
                        ? SocketAddressCall(guest, Sys.Connect, socket, domain, address, -1, inGuestRoot: false)
                        : UnixAware(guest, Sys.Connect, tid, socket, domain, address, s));
                    if (connected == 0 && (_families & SyscallFamilies.Network) != 0)
                    {
                        EstablishFlow(requester, socket, in request, s);
                    }

                    Reply(n.Id, connected);
                    return;
                case Sys.Bind:
                    Reply(n.Id, UnixAware(guest, Sys.Bind, tid, socket, domain, address, s));
                    return;
                case Sys.Listen:
                    var listen = new SyscallAction { Number = Sys.Listen, A1 = socket, A2 = (long)a1 };
                    Reply(n.Id, (int)-Math.Min(GuestAction.Run(guest, ref listen, inGuestRoot: false), 0));
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
    /// Performs an accept for the guest (accept, or accept4 with its flags) on <paramref name="socket"/>, our copy of its
    /// listening socket: each connection is classified with its peer before the guest can use it. A permitted one gets
    /// the peer's address written as accept writes it (move_addr_to_user) and is injected with the descriptor flags
    /// asked for; a blocked one is reset (SO_LINGER 0: its peer sees ECONNRESET) and the next is accepted, so a blocking
    /// accept waits on and a non-blocking one ends with EAGAIN when no other connection is pending.
    /// </summary>
    private void HandleAccept(in SeccompNotif n, ref SupervisedThread thread, Requester requester, int socket, int domain, int type, int protocol, Scratch s)
    {
        ulong peerAt = n.Data.Args[1], lengthAt = n.Data.Args[2];
        int flags = n.Data.Nr == Sys.Accept4 ? (int)n.Data.Args[3] : 0;
        if ((flags & ~(Libc.SOCK_CLOEXEC | Libc.SOCK_NONBLOCK)) != 0)
        {
            Reply(n.Id, Errno.EINVAL);
            return;
        }

        while (true)
        {
            int accepted = AcceptAs(thread.Authority, socket, flags & Libc.SOCK_NONBLOCK, s.Address, out int peerLength);
            if (accepted < 0)
            {
                Reply(n.Id, AfterWait(-accepted));
                return;
            }

            try
            {
                int localLength = LocalAddress(accepted, s.LocalAddress);
                ReadOnlySpan<byte> local = s.LocalAddress.AsSpan(0, Math.Max(localLength, 0)), peer = s.Address.AsSpan(0, peerLength);
                var call = new NetworkCall
                {
                    Operation = NetworkOperation.Accept,
                    Family = domain,
                    SocketType = type & Libc.SOCK_TYPE_MASK,
                    Protocol = protocol,
                    LocalAddress = local,
                    RemoteAddress = peer,
                    LocalPort = Port(local),
                    RemotePort = Port(peer),
                };
                if (_mediator.Network(requester, call) != 0)
                {
                    Reset(accepted);
                    continue;
                }

                if (!StillWaiting(n.Id))
                {
                    return; // The guest no longer waits: closing our descriptor ends the connection, as its exit would.
                }

                int error = peerAt == 0 ? 0 : MoveAddressToGuest(ref thread, n.Id, peerAt, lengthAt, peer, s);
                if (error != 0)
                {
                    Reply(n.Id, error); // As Linux: the connection accepted is dropped when its address cannot be written.
                    return;
                }

                int injected = Seccomp.AddFdAndSend(_listener, n.Id, accepted, (flags & Libc.SOCK_CLOEXEC) != 0);
                if (injected < 0)
                {
                    if (injected != -Errno.ENOENT)
                    {
                        Reply(n.Id, -injected);
                    }

                    return;
                }

                _mediator.FlowEstablished(requester, call, accepted);
                return;
            }
            finally
            {
                Libc.CloseOwned(accepted);
            }
        }
    }

    /// <summary>accept4 on <paramref name="socket"/> as the guest (the new socket is the guest's: its owner, its
    /// security context); the new descriptor, close-on-exec in the supervisor, or -errno.</summary>
    private static int AcceptAs(GuestAuthority guest, int socket, int nonBlocking, byte[] peer, out int peerLength)
    {
        uint length = (uint)peer.Length;
        fixed (byte* p = peer)
        {
            var action = new SyscallAction { Number = Sys.Accept4, A1 = socket, A2 = (long)p, A3 = (long)&length, A4 = Libc.SOCK_CLOEXEC | nonBlocking };
            long fd = GuestAction.Run(guest, ref action, inGuestRoot: false);
            peerLength = (int)Math.Min(length, (uint)peer.Length);
            return (int)fd;
        }
    }

    /// <summary>Closes a connection the filters blocked so that its peer sees a reset, not an orderly end.</summary>
    private static void Reset(int socket)
    {
        var linger = stackalloc int[2] { 1, 0 };
        _ = Libc.SetSockOpt(socket, Libc.SOL_SOCKET, Libc.SO_LINGER, linger, 2 * sizeof(int));
    }

    /// <summary>
    /// Writes an accepted peer's address to the guest as Linux's move_addr_to_user does: the length the guest gave (EFAULT
    /// when unreadable, EINVAL when negative), at most that many bytes of the address, then the address's real length.
    /// 0 or the errno.
    /// </summary>
    private int MoveAddressToGuest(ref SupervisedThread thread, ulong id, ulong peerAt, ulong lengthAt, ReadOnlySpan<byte> peer, Scratch s)
    {
        if (ReadGuest(ref thread, id, lengthAt, s.Small, sizeof(int), s) != sizeof(int))
        {
            return Errno.EFAULT;
        }

        int room = BinaryPrimitives.ReadInt32LittleEndian(s.Small);
        if (room < 0)
        {
            return Errno.EINVAL;
        }

        int pid = thread.Requester.ThreadId;
        int copied = Math.Min(room, peer.Length);
        if (copied > 0 && GuestMemory.Write(pid, peerAt, peer[..copied]) != 0)
        {
            return Errno.EFAULT;
        }

        BinaryPrimitives.WriteInt32LittleEndian(s.Small, peer.Length);
        return GuestMemory.Write(pid, lengthAt, s.Small.AsSpan(0, sizeof(int))) != 0 ? Errno.EFAULT : 0;
    }

    /// <summary>
    /// Binds an unbound TCP or UDP socket about to connect to an ephemeral port of the unspecified address, as Linux would
    /// bind it while connecting, so that the decision sees the local port the connection will have. Not done when the
    /// guest asked Linux to choose the port at connect (IP_BIND_ADDRESS_NO_PORT), when the address does not fit the socket
    /// (the connect then fails as Linux fails it), or when no port is free for a bind (the connect may still share one).
    /// True when it bound the socket (<see cref="Unbind"/> undoes it if the connect is refused).
    /// </summary>
    private static bool Autobind(GuestAuthority guest, int socket, int domain, int type, ReadOnlySpan<byte> address)
    {
        int kind = type & Libc.SOCK_TYPE_MASK;
        if (!RequestDecoder.IsInternet(domain) || kind is not (Libc.SOCK_STREAM or Libc.SOCK_DGRAM) || address.Length < 2
            || BinaryPrimitives.ReadUInt16LittleEndian(address) != domain || address.Length < (domain == Libc.AF_INET ? 16 : 24))
        {
            return false;
        }

        int noPort;
        uint optionLength = sizeof(int);
        if (Libc.GetSockOpt(socket, Libc.IPPROTO_IP, Libc.IP_BIND_ADDRESS_NO_PORT, &noPort, &optionLength) == 0 && noPort != 0)
        {
            return false;
        }

        Span<byte> local = stackalloc byte[Libc.SOCKADDR_STORAGE_SIZE];
        int length = LocalAddress(socket, local);
        if (length < 4 || Port(local[..length]) != 0 || RequestDecoder.AddressOf(local[..length]) is not { } bound
            || !bound.Equals(domain == Libc.AF_INET ? System.Net.IPAddress.Any : System.Net.IPAddress.IPv6Any))
        {
            return false;
        }

        Span<byte> any = stackalloc byte[domain == Libc.AF_INET ? 16 : 28];
        any.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(any, (ushort)domain);
        return SocketAddressCall(guest, Sys.Bind, socket, domain, any, -1) == 0;
    }

    /// <summary>
    /// Undoes <see cref="Autobind"/> after a refused connect, leaving the socket unbound as the guest had it: a connect to
    /// AF_UNSPEC releases a port that was not bound explicitly. UDP's disconnect does it at once; TCP's does only for a
    /// socket that leaves another state for CLOSE, so a TCP socket is first made to listen on the port it was given (it
    /// accepts nothing in that instant: a connection that came would be reset with the listen's end).
    /// </summary>
    private static void Unbind(int socket, int type)
    {
        if ((type & Libc.SOCK_TYPE_MASK) == Libc.SOCK_STREAM)
        {
            _ = Libc.Listen(socket, 0);
        }

        Span<byte> unspecified = stackalloc byte[16];
        unspecified.Clear();
        fixed (byte* u = unspecified)
        {
            _ = Libc.Connect(socket, u, (uint)unspecified.Length);
        }
    }

    /// <summary>A connect succeeded: its flow, with the addresses Linux gave the socket, is reported.</summary>
    private void EstablishFlow(Requester requester, int socket, in NetworkCall connect, Scratch s)
    {
        if (!RequestDecoder.IsInternet(connect.Family))
        {
            return;
        }

        int localLength = LocalAddress(socket, s.LocalAddress);
        ReadOnlySpan<byte> local = s.LocalAddress.AsSpan(0, Math.Max(localLength, 0));
        _mediator.FlowEstablished(requester, connect with { LocalAddress = local, LocalPort = Port(local) }, socket);
    }

    /// <summary>
    /// For a connect to a Unix socket path: opens the socket file as the guest (O_PATH, following links as connect does, no
    /// magic links, relative paths from the guest's cwd) and asks the kernel boundary about it. 0 with the descriptor, or the errno.
    /// </summary>
    private int ResolveSocketFile(GuestAuthority guest, int tid, ReadOnlySpan<byte> address, Scratch s, out int socketFile)
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
            int fd = OpenAs(guest, baseFd, s.Path2.AsSpan(0, name.Length + 1), ref how, creates: false, inGuestRoot: true);
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

    private void HandleSendmmsg(in SeccompNotif n, SupervisedThread thread, Scratch s)
    {
        ulong vector = n.Data.Args[1];
        int count = (int)Math.Min(n.Data.Args[2], Libc.UIO_MAXIOV);
        int socket = -1;
        try
        {
            for (int i = 0; i < count; i++)
            {
                int length = ReadMessageAddress(ref thread, n.Id, vector + (ulong)(i * Libc.MMSGHDR_SIZE), s.Address, s);
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
                    socket = TakeGuestFd(thread.Process, (int)n.Data.Args[0]);
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
                int decision = _mediator.Network(thread.Requester with { CallId = n.Id }, request);
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

    /// <summary>
    /// Connect or bind on our copy, as the guest: its credentials (a low port, a socket file's permissions), its root
    /// (an absolute AF_UNIX path), its cwd (a relative one, through fchdir on a thread whose cwd is its own) and its
    /// umask (the socket file a bind creates).
    /// </summary>
    private int UnixAware(GuestAuthority guest, int call, int tid, int socket, int domain, ReadOnlySpan<byte> address, Scratch s)
    {
        bool relativeUnixPath = domain == Libc.AF_UNIX && address.Length > 2 && address[2] != 0 && address[2] != (byte)'/';
        if (!relativeUnixPath)
        {
            return SocketAddressCall(guest, call, socket, domain, address, -1);
        }

        int cwd = ProcFs.OpenGuestDirectory(tid, Libc.AT_FDCWD, s.Proc);
        if (cwd < 0)
        {
            return -cwd;
        }

        try
        {
            return SocketAddressCall(guest, call, socket, domain, address, cwd);
        }
        finally
        {
            Libc.CloseOwned(cwd);
        }
    }

    /// <param name="inGuestRoot">False for an address through the supervisor's own /proc/self/fd (a socket file already resolved in the guest's root).</param>
    private static int SocketAddressCall(GuestAuthority guest, int call, int socket, int domain, ReadOnlySpan<byte> address, int cwd, bool inGuestRoot = true)
    {
        fixed (byte* a = address)
        {
            var action = new SocketAddressAction { Call = call, Socket = socket, Address = a, Length = (uint)address.Length, Cwd = cwd, Umask = guest.Umask };
            return (int)-Math.Min(GuestAction.Run(guest, ref action, inGuestRoot: inGuestRoot && domain == Libc.AF_UNIX), 0);
        }
    }

    /// <summary>connect or bind as the guest; for a relative AF_UNIX path from the guest's cwd.</summary>
    private struct SocketAddressAction : IGuestAction
    {
        public int Call;
        public int Socket;
        public byte* Address;
        public uint Length;
        public int Cwd;
        public uint Umask;

        public readonly long Run()
        {
            if (Cwd >= 0 && (!ActingThread.HasPrivateFs || Libc.Fchdir(Cwd) < 0))
            {
                return -(ActingThread.HasPrivateFs ? Libc.LastError : Errno.EPERM);
            }

            if (Call == Sys.Bind)
            {
                _ = ActingThread.UseUmask(Umask);
            }

            int result = Call == Sys.Connect ? Libc.Connect(Socket, Address, Length) : Libc.Bind(Socket, Address, Length);
            return result < 0 ? -Libc.LastError : 0;
        }
    }

    /// <summary>Reads a sockaddr of <paramref name="length"/> bytes; its length, or -EINVAL/-EFAULT as Linux would.</summary>
    private int ReadSockaddr(ref SupervisedThread thread, ulong id, ulong address, ulong length, Span<byte> destination, Scratch s)
    {
        if (length > Libc.SOCKADDR_STORAGE_SIZE)
        {
            return -Errno.EINVAL;
        }

        if (length == 0)
        {
            return 0;
        }

        int got = ReadGuest(ref thread, id, address, destination, (int)length, s);
        return got < 0 || got < (int)length ? -Errno.EFAULT : got;
    }

    /// <summary>The destination of a struct msghdr at <paramref name="message"/>: its length, 0 when none, or -errno.</summary>
    private int ReadMessageAddress(ref SupervisedThread thread, ulong id, ulong message, Span<byte> destination, Scratch s)
    {
        int got = ReadGuest(ref thread, id, message, s.Small, Libc.MSGHDR_SIZE, s);
        if (got < Libc.MSGHDR_SIZE)
        {
            return -Errno.EFAULT;
        }

        ulong name = BinaryPrimitives.ReadUInt64LittleEndian(s.Small);
        uint nameLength = BinaryPrimitives.ReadUInt32LittleEndian(s.Small.AsSpan(8));
        return name == 0 ? 0 : ReadSockaddr(ref thread, id, name, nameLength, destination, s);
    }

    /// <summary>
    /// Our own copy of the guest's descriptor (pidfd_getfd on the process's pidfd: the same open file description), or
    /// -errno (EBADF when it has none).
    /// </summary>
    internal static int TakeGuestFd(SupervisedProcess process, int fd)
    {
        bool added = false;
        process.Pidfd.DangerousAddRef(ref added);
        try
        {
            long copy = Libc.Syscall(Sys.PidfdGetfd, (int)process.Pidfd.DangerousGetHandle(), fd, 0, 0, 0, 0);
            return copy < 0 ? -Libc.LastError : (int)copy;
        }
        finally
        {
            if (added)
            {
                process.Pidfd.DangerousRelease();
            }
        }
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
