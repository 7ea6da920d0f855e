using System.Runtime.InteropServices;

namespace Palisade.Interop;

/// <summary>
/// pidfds of guest processes and the epoll set that waits on them: a pidfd turns readable when its process has
/// ended (all its threads), and PIDFD_GET_INFO gives the wait status once the process has been reaped (Linux 6.15).
/// </summary>
internal static unsafe partial class Pidfd
{
    private const string Lib = "libc";

    /// <summary>PIDFD_GET_INFO: _IOWR(0xFF, 11, struct pidfd_info) with the 64-byte first version of the struct.</summary>
    private const ulong PIDFD_GET_INFO = 0xC040FF0B;
    private const ulong PIDFD_INFO_EXIT = 1 << 3;

    /// <summary>pidfd_open flag for a pidfd of one thread (Linux 6.9).</summary>
    public const int PIDFD_THREAD = 0x80;

    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const uint EPOLLIN = 1;

    /// <summary>struct epoll_event (packed on x86-64).</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    public struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    /// <summary>struct pidfd_info, first version (PIDFD_INFO_SIZE_VER0 = 64 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct PidfdInfo
    {
        public ulong Mask;
        public ulong CgroupId;
        public uint Pid, Tgid, Ppid, Ruid, Rgid, Euid, Egid, Suid, Sgid, Fsuid, Fsgid;
        public int ExitCode;
    }

    [LibraryImport(Lib, EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate(int flags);

    [LibraryImport(Lib, EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollCtl(int epoll, int operation, int fd, EpollEvent* evt);

    [LibraryImport(Lib, EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epoll, EpollEvent* events, int maxEvents, int timeoutMilliseconds);

    /// <summary>A pidfd (close-on-exec) for process <paramref name="pid"/>, or -errno (ESRCH: it is gone).</summary>
    public static int Open(int pid)
    {
        long fd = Libc.Syscall(Sys.PidfdOpen, pid, 0, 0, 0, 0, 0);
        return fd < 0 ? -Libc.LastError : (int)fd;
    }

    /// <summary>Sends <paramref name="signal"/> to the process of <paramref name="pidfd"/>; 0, or the errno (ESRCH: it has ended).</summary>
    public static int SendSignal(int pidfd, int signal) =>
        Libc.Syscall(Sys.PidfdSendSignal, pidfd, signal, 0, 0, 0, 0) == 0 ? 0 : Libc.LastError;

    /// <summary>
    /// The wait status (as waitpid reports it) of the process of <paramref name="pidfd"/> once it has ended, reaped or
    /// not yet; false while it runs or when the status cannot be read.
    /// </summary>
    public static bool TryGetExitStatus(int pid, int pidfd, out int waitStatus)
    {
        if (TryGetReapedStatus(pidfd, out waitStatus))
        {
            return true;
        }

        var poll = new PollFd { Fd = pidfd, Events = Libc.POLLIN };
        if (Libc.Poll(&poll, 1, 0) <= 0 || (poll.Revents & Libc.POLLIN) == 0)
        {
            return false;
        }

        // Ended but not reaped: the zombie keeps its pid, and /proc/PID/stat has its exit_code. It is ours only if the
        // pidfd still reports no reaping (POLLHUP) after the read; otherwise the kernel now has the status.
        bool read = TryReadZombieStatus(pid, out waitStatus);
        poll.Revents = 0;
        _ = Libc.Poll(&poll, 1, 0);
        if ((poll.Revents & Libc.POLLHUP) != 0)
        {
            return TryGetReapedStatus(pidfd, out waitStatus);
        }

        return read;
    }

    private static bool TryGetReapedStatus(int pidfd, out int waitStatus)
    {
        var info = new PidfdInfo { Mask = PIDFD_INFO_EXIT };
        if (Libc.Ioctl(pidfd, PIDFD_GET_INFO, &info) == 0 && (info.Mask & PIDFD_INFO_EXIT) != 0)
        {
            waitStatus = info.ExitCode;
            return true;
        }

        waitStatus = 0;
        return false;
    }

    private static bool TryReadZombieStatus(int pid, out int waitStatus)
    {
        waitStatus = 0;
        string stat;
        try
        {
            stat = File.ReadAllText("/proc/" + pid.ToString(System.Globalization.CultureInfo.InvariantCulture) + "/stat");
        }
        catch (IOException)
        {
            return false;
        }

        // pid (comm) state ...: comm may hold spaces and parentheses, so fields are counted after its last ')'.
        // state is field 3 and exit_code field 52.
        int close = stat.LastIndexOf(')');
        if (close < 0)
        {
            return false;
        }

        string[] fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        const int State = 0, ExitCode = 52 - 3;
        if (fields.Length <= ExitCode || fields[State] is not ("Z" or "X"))
        {
            return false;
        }

        return int.TryParse(fields[ExitCode], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out waitStatus);
    }
}
