using System.Globalization;
using Palisade.Interop;

namespace Palisade.Host.Linux.Boundary;

/// <summary>
/// <c>kill(-1, sig)</c> for a guest: Linux would signal every process the caller may signal except init and itself,
/// the kernel's process included. The boundary performs it instead, leaving the kernel out: each other process is
/// signalled (through a pidfd) when the guest's own credentials allow it, by Linux's rule for kill (the guest's real or
/// effective uid is the target's real or saved uid, or the guest holds CAP_KILL in the target's user namespace, or the
/// signal is SIGCONT within the guest's session). The result is Linux's: ESRCH when there was no other process, else
/// the last error other than EPERM (0 when a signal was sent). Rare and off the hot path: it allocates.
/// </summary>
/// <remarks>
/// What differs from Linux: the receivers see the kernel's pid and uid in <c>si_pid</c> and <c>si_uid</c> (Linux does
/// not let a process forge a SI_USER signal for another), and a process whose credentials change while the walk runs
/// is judged by the credentials read.
/// </remarks>
internal static class EveryProcessSignal
{
    private const int CapKill = 5;
    private const int Sigcont = 18;

    /// <summary>Signals every process guest thread <paramref name="thread"/> of process <paramref name="caller"/> may signal, except init, itself and the kernel.</summary>
    public static int Send(int caller, int thread, int signal)
    {
        if (signal is < 0 or > 64)
        {
            return Errno.EINVAL;
        }

        if (Credentials.Read(thread) is not { } guest)
        {
            return Errno.ESRCH;
        }

        int count = 0, result = 0;
        foreach (string entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
                || pid <= 1 || pid == caller || pid == KernelTasks.ProcessId || Credentials.Read(pid) is not { } target)
            {
                continue;
            }

            count++;
            int error = Permitted(guest, target, signal) ? Deliver(pid, signal) : Errno.EPERM;
            if (error != Errno.EPERM)
            {
                result = error;
            }
        }

        return count == 0 ? Errno.ESRCH : result;
    }

    private static bool Permitted(Credentials guest, Credentials target, int signal) =>
        guest.EffectiveUid == target.SavedUid || guest.EffectiveUid == target.RealUid
        || guest.RealUid == target.SavedUid || guest.RealUid == target.RealUid
        || ((guest.Capabilities & (1UL << CapKill)) != 0 && guest.UserNamespace == target.UserNamespace)
        || (signal == Sigcont && guest.Session == target.Session);

    private static int Deliver(int pid, int signal)
    {
        int pidfd = Pidfd.Open(pid);
        if (pidfd < 0)
        {
            return -pidfd;
        }

        try
        {
            // Signal 0 asks only whether the guest may signal: that was decided above.
            return signal == 0 || Libc.Syscall(Sys.PidfdSendSignal, pidfd, signal, 0, 0, 0, 0) == 0 ? 0 : Libc.LastError;
        }
        finally
        {
            Libc.CloseOwned(pidfd);
        }
    }

    /// <summary>What Linux's kill permission looks at, read from /proc.</summary>
    private sealed record Credentials(uint RealUid, uint EffectiveUid, uint SavedUid, ulong Capabilities, int Session, string UserNamespace)
    {
        public static Credentials? Read(int id)
        {
            try
            {
                uint[] uids = [];
                ulong capabilities = 0;
                foreach (string line in File.ReadLines("/proc/" + id + "/status"))
                {
                    if (line.StartsWith("Uid:", StringComparison.Ordinal))
                    {
                        uids = [.. line[4..].Split('\t', StringSplitOptions.RemoveEmptyEntries).Select(u => uint.Parse(u, CultureInfo.InvariantCulture))];
                    }
                    else if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                    {
                        capabilities = ulong.Parse(line[7..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    }
                }

                string stat = File.ReadAllText("/proc/" + id + "/stat");
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                int session = int.Parse(fields[3], CultureInfo.InvariantCulture);
                string userNamespace = new FileInfo("/proc/" + id + "/ns/user").LinkTarget ?? "";
                return uids.Length < 3 ? null : new Credentials(uids[0], uids[1], uids[2], capabilities, session, userNamespace);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or OverflowException)
            {
                return null; // The process ended while the walk ran.
            }
        }
    }
}
