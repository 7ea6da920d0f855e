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
/// pidfd_getfd: the same open socket, so the guest's socket is the one connected), and accept and sends
/// with an explicit destination (decided, then continued: see docs/security.md). A blocking connect waits for its peer
/// on the thread that serves it, as the guest would; if it takes long, <see cref="ReceiverWatch"/> hands receiving to
/// another thread meanwhile.
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
                        int refusal = ResolveSocketFile(guest, tid, address, s, out socketFile);
                        if (refusal != 0)
                        {
                            Reply(n.Id, refusal);
                            return;
                        }

                        address = SocketFileAddress(socketFile, s.LocalAddress);
                    }

                    // A blocking connect that waits for its peer is handed over with its thread (ReceiverWatch).
                    Reply(n.Id, AfterWait(socketFile >= 0
                        ? SocketAddressCall(guest, Sys.Connect, socket, domain, address, -1, inGuestRoot: false)
                        : UnixAware(guest, Sys.Connect, tid, socket, domain, address, s)));
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
