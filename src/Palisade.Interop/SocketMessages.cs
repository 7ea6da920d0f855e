// The few socket calls the kernel's communication ports need that System.Net.Sockets does not offer: receiving a
// message with the sender's SCM_CREDENTIALS, and sending without ever blocking (MSG_DONTWAIT) so that a send waits
// only as long as its caller allows (poll for POLLOUT with the caller's timeout).
using System.Runtime.InteropServices;

namespace Palisade.Interop;

internal static unsafe partial class SocketMessages
{
    private const int SolSocket = 1;
    private const int SoPassCred = 16;
    private const int ScmCredentials = 2;
    private const int MsgDontWait = 0x40;
    private const int MsgNoSignal = 0x4000;
    private const short PollOut = 4;
    private const short PollIn = 1;
    private const int EIntr = 4;
    private const int EAgain = 11;

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CmsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    private static partial nint RecvMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static partial nint SendRaw(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    /// <summary>Asks for the sender's credentials with every message received on <paramref name="fd"/> (SO_PASSCRED):
    /// Linux then attaches the sending process's own pid, uid and gid to each message it sends afterwards.</summary>
    /// <returns>0 or an errno.</returns>
    public static int PassCredentials(int fd)
    {
        int on = 1;
        return SetSockOpt(fd, SolSocket, SoPassCred, &on, sizeof(int)) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>Receives one message and the sender's credentials (SCM_CREDENTIALS).</summary>
    /// <param name="fd">A connected socket with <see cref="PassCredentials"/> set.</param>
    /// <param name="buffer">Receives the message (a longer message is cut; compare the count with the length).</param>
    /// <param name="pid">The sender's pid, or 0 when the message carried no credentials.</param>
    /// <param name="uid">The sender's uid.</param>
    /// <param name="gid">The sender's gid.</param>
    /// <returns>The message's length, or -errno.</returns>
    public static int ReceiveWithCredentials(int fd, Span<byte> buffer, out int pid, out uint uid, out uint gid)
    {
        pid = 0;
        uid = gid = uint.MaxValue;
        const int space = 32; // CMSG_SPACE(sizeof(struct ucred)): a 16-byte header and 12 bytes padded to 16.
        byte* control = stackalloc byte[space];
        new Span<byte>(control, space).Clear();
        fixed (byte* b = buffer)
        {
            var iov = new IoVec { Base = b, Length = (nuint)buffer.Length };
            var header = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = space };
            nint n;
            do
            {
                n = RecvMsg(fd, &header, 0);
            }
            while (n < 0 && Marshal.GetLastPInvokeError() == EIntr);

            if (n < 0)
            {
                return -Marshal.GetLastPInvokeError();
            }

            var c = (CmsgHdr*)control;
            if (header.ControlLength >= (nuint)sizeof(CmsgHdr) + 12 && c->Level == SolSocket && c->Type == ScmCredentials)
            {
                int* ucred = (int*)(control + sizeof(CmsgHdr));
                pid = ucred[0];
                uid = (uint)ucred[1];
                gid = (uint)ucred[2];
            }

            return (int)n;
        }
    }

    /// <summary>Sends one message, waiting at most <paramref name="timeoutMilliseconds"/> for room in the peer's socket.</summary>
    /// <returns>The count sent; -EAGAIN when there was no room in time; another -errno (EPIPE: the peer is gone).</returns>
    public static int Send(int fd, ReadOnlySpan<byte> message, int timeoutMilliseconds)
    {
        long deadline = Environment.TickCount64 + timeoutMilliseconds;
        fixed (byte* b = message)
        {
            while (true)
            {
                nint n = SendRaw(fd, b, (nuint)message.Length, MsgDontWait | MsgNoSignal);
                if (n >= 0)
                {
                    return (int)n;
                }

                int error = Marshal.GetLastPInvokeError();
                if (error == EIntr)
                {
                    continue;
                }

                if (error != EAgain)
                {
                    return -error;
                }

                int left = (int)Math.Max(0, deadline - Environment.TickCount64);
                if (left == 0 || Wait(fd, PollOut, left) <= 0)
                {
                    return -EAgain;
                }
            }
        }
    }

    /// <summary>Waits until <paramref name="fd"/> has a message to read (or has ended).</summary>
    /// <returns>1 when readable, 0 on timeout, -errno.</returns>
    public static int WaitReadable(int fd, int timeoutMilliseconds) => Wait(fd, PollIn, timeoutMilliseconds);

    private static int Wait(int fd, short events, int timeoutMilliseconds)
    {
        var p = new PollFd { Fd = fd, Events = events };
        int r;
        do
        {
            r = Libc.Poll(&p, 1, timeoutMilliseconds);
        }
        while (r < 0 && Marshal.GetLastPInvokeError() == EIntr);

        return r < 0 ? -Marshal.GetLastPInvokeError() : r;
    }

    /// <summary>True when the process of <paramref name="pidfd"/> has ended (its pidfd is readable).</summary>
    public static bool HasEnded(int pidfd) => Wait(pidfd, PollIn, 0) != 0;
}
