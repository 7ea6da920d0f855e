using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Palisade.Interop;

/// <summary>
/// seccomp(2) and the user-notification ioctls of seccomp_unotify(2): layouts, constants and checked
/// wrappers. Each wrapper returns 0 or a positive result, or a negated errno, so that callers on the
/// notification path never allocate or throw.
/// </summary>
internal static unsafe class Seccomp
{
    public const uint SECCOMP_SET_MODE_FILTER = 1;
    public const uint SECCOMP_GET_NOTIF_SIZES = 3;
    public const uint SECCOMP_FILTER_FLAG_NEW_LISTENER = 1u << 3;
    public const uint SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1u << 5;

    public const uint SECCOMP_RET_KILL_PROCESS = 0x80000000;
    public const uint SECCOMP_RET_ERRNO = 0x00050000;
    public const uint SECCOMP_RET_USER_NOTIF = 0x7fc00000;
    public const uint SECCOMP_RET_ALLOW = 0x7fff0000;

    public const uint SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1;
    public const uint SECCOMP_ADDFD_FLAG_SEND = 2;
    public const ulong SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP = 1;

    /// <summary>Offsets in struct seccomp_data: nr, arch, then the six 64-bit arguments from byte 16.</summary>
    public const uint DATA_OFFSET_NR = 0;
    public const uint DATA_OFFSET_ARCH = 4;
    public const uint DATA_OFFSET_ARGS = 16;

    public const uint AUDIT_ARCH_X86_64 = 0xc000003e;
    public const uint AUDIT_ARCH_I386 = 0x40000003;
    public const uint X32_SYSCALL_BIT = 0x40000000;

    private const ulong NOTIF_RECV = 0xc0502100;
    private const ulong NOTIF_SEND = 0xc0182101;
    private const ulong NOTIF_ID_VALID = 0x40082102;
    private const ulong NOTIF_ADDFD = 0x40182103;
    private const ulong NOTIF_SET_FLAGS = 0x40082104;

    private const long SYS_seccomp = 317;
    private const long RtSigprocmask = 14;
    private const long SIG_SETMASK = 2;
    private const long SigsetBytes = 8;

    /// <summary>Installs <paramref name="filter"/> on the calling thread and returns the listener fd, or -errno.</summary>
    /// <remarks>
    /// With WAIT_KILLABLE_RECV (Linux 5.19), once the supervisor has received a notification only a fatal signal
    /// interrupts the guest's wait: a handled signal (a shell's SIGCHLD) would otherwise fail the call with EINTR,
    /// even a fork, which Linux always restarts, or an operation the supervisor has already performed. Older kernels
    /// get the filter without it.
    /// </remarks>
    public static int InstallWithListener(ReadOnlySpan<SockFilter> filter)
    {
        fixed (SockFilter* instructions = filter)
        {
            var program = new SockFprog { Length = (ushort)filter.Length, Filter = instructions };
            long fd = Libc.Syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, (long)&program, 0, 0, 0);
            if (fd < 0 && Libc.LastError == Errno.EINVAL)
            {
                fd = Libc.Syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, (long)&program, 0, 0, 0);
            }

            return fd < 0 ? -Libc.LastError : (int)fd;
        }
    }

    /// <summary>Blocks until a notification arrives; 0, or -errno (ENOENT once no guest uses the filter).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Receive(int listener, SeccompNotif* notification)
    {
        *notification = default;
        return Libc.Ioctl(listener, NOTIF_RECV, notification) < 0 ? -Libc.LastError : 0;
    }

    /// <summary>Answers a notification; 0, or -errno (ENOENT when the guest was interrupted or died).</summary>
    /// <remarks>Retried when a signal interrupts it: a supervisor thread may be interrupted on purpose (a wait it
    /// gave up), and an answer must not be lost to that.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Send(int listener, SeccompNotifResp* response)
    {
        while (Libc.Ioctl(listener, NOTIF_SEND, response) < 0)
        {
            int error = Libc.LastError;
            if (error != Errno.EINTR)
            {
                return -error;
            }
        }

        return 0;
    }

    /// <summary>True while the notification <paramref name="id"/> is still pending (its guest is alive and waiting).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool IsValid(int listener, ulong id) => Libc.Ioctl(listener, NOTIF_ID_VALID, &id) == 0;

    /// <summary>Installs <paramref name="fd"/> in the guest and answers the notification with its number; or -errno.</summary>
    /// <remarks>
    /// <para>The calling thread takes no signal during the ioctl. With SECCOMP_ADDFD_FLAG_SEND, Linux marks the
    /// notification answered (with 0) as soon as it queues the descriptor, then waits, interruptibly, for the guest's
    /// thread to install it. A signal that cuts that wait short withdraws the queued descriptor but leaves the answer: the
    /// guest's call returns 0 with no descriptor installed (its open "succeeds" with descriptor 0, whatever that is, a
    /// shell's /dev/null for a background job), and a repeated ioctl fails (EINPROGRESS, ENOENT). The supervisor
    /// interrupts its own threads on purpose (<see cref="InterruptSignal"/>: the receiver watch cuts the wait of a thread
    /// whose notification no longer looks pending, which is how an answered one looks), and a process-directed signal may
    /// land on this thread too, so every signal stays pending until the ioctl has returned (one rt_sigprocmask before and
    /// one after). A signal that arrived meanwhile is delivered when they are unblocked: its handler runs then, with no
    /// system call to cut short.</para>
    /// <para>The wait cannot last: the guest's thread installs the descriptor as soon as it runs, and if it dies or a
    /// signal interrupts its call first Linux completes the request with ESRCH. Only SIGKILL and SIGSTOP cannot be held
    /// back (and a cgroup freezer's wake-up): SIGKILL ends the supervisor; a stop of the supervisor in that instant is
    /// the one case left.</para>
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int AddFdAndSend(int listener, ulong id, int fd, bool closeOnExec)
    {
        var request = new SeccompNotifAddFd
        {
            Id = id,
            Flags = SECCOMP_ADDFD_FLAG_SEND,
            SrcFd = (uint)fd,
            NewFdFlags = closeOnExec ? (uint)Libc.O_CLOEXEC : 0,
        };
        ulong every = ulong.MaxValue, before = 0;
        if (Libc.Syscall(RtSigprocmask, SIG_SETMASK, (long)&every, (long)&before, SigsetBytes, 0, 0) < 0)
        {
            return -Libc.LastError;
        }

        try
        {
            while (true)
            {
                // EINTR now comes from the ioctl's lock, before anything is queued (a stop aside, see above): ask again.
                int result = Libc.Ioctl(listener, NOTIF_ADDFD, &request);
                if (result >= 0 || Libc.LastError != Errno.EINTR)
                {
                    return result < 0 ? -Libc.LastError : result;
                }
            }
        }
        finally
        {
            _ = Libc.Syscall(RtSigprocmask, SIG_SETMASK, (long)&before, 0, SigsetBytes, 0, 0);
        }
    }

    /// <summary>
    /// Installs <paramref name="fd"/> in the guest without answering the notification (the guest stays in its call until
    /// the answer, so it cannot close the descriptor before the caller closed its own); the guest's descriptor number or
    /// -errno.
    /// </summary>
    public static int AddFd(int listener, ulong id, int fd, bool closeOnExec)
    {
        var request = new SeccompNotifAddFd
        {
            Id = id,
            SrcFd = (uint)fd,
            NewFdFlags = closeOnExec ? (uint)Libc.O_CLOEXEC : 0,
        };
        while (true)
        {
            int result = Libc.Ioctl(listener, NOTIF_ADDFD, &request);
            if (result >= 0 || Libc.LastError != Errno.EINTR)
            {
                return result < 0 ? -Libc.LastError : result;
            }
        }
    }

    /// <summary>Asks the kernel to wake the supervisor on the guest's CPU (Linux 6.6+); -errno when unsupported.</summary>
    /// <remarks>Unlike the other ioctls, this one takes the flags by value, not through a pointer.</remarks>
    public static int SetSyncWakeUp(int listener) =>
        Libc.Ioctl(listener, NOTIF_SET_FLAGS, (void*)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0 ? -Libc.LastError : 0;
}

/// <summary>struct sock_filter: one classic BPF instruction.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SockFilter
{
    public ushort Code;
    public byte JumpTrue;
    public byte JumpFalse;
    public uint K;
}

/// <summary>struct sock_fprog.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SockFprog
{
    public ushort Length;
    public SockFilter* Filter;
}

/// <summary>struct seccomp_data: the system call as the filter and the supervisor see it.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SeccompData
{
    public int Nr;
    public uint Arch;
    public ulong InstructionPointer;
    public fixed ulong Args[6];
}

/// <summary>struct seccomp_notif (80 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SeccompNotif
{
    public ulong Id;
    public uint Pid;
    public uint Flags;
    public SeccompData Data;
}

/// <summary>struct seccomp_notif_resp (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SeccompNotifResp
{
    public ulong Id;
    public long Val;
    public int Error;
    public uint Flags;
}

/// <summary>struct seccomp_notif_addfd (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SeccompNotifAddFd
{
    public ulong Id;
    public uint Flags;
    public uint SrcFd;
    public uint NewFd;
    public uint NewFdFlags;
}
