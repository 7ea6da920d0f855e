using System.Globalization;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Processes;

namespace Palisade.Kernel.Io;

/// <summary>
/// <see cref="IFilterManager.QueryFileState"/>: the state of a file reached through one of the kernel's descriptors of it
/// (statx), whether anyone holds it open for writing (<see cref="LeaseProbe"/>), and how many write descriptions of it
/// the guests hold (<see cref="GuestWriters"/>). Made only when a filter asks; it allocates (the walk of /proc).
/// </summary>
internal static class FileStateQuery
{
    /// <summary>The state of the file behind <paramref name="fd"/>; <see cref="Status.AccessDenied"/> without a descriptor,
    /// <see cref="Status.Unsuccessful"/> when Linux cannot state it.</summary>
    public static Status Of(int fd, ProcessTable guests, out FileState state)
    {
        state = default;
        if (fd < 0)
        {
            return Status.AccessDenied;
        }

        if (FileFacts.StatxOf(fd, FileFacts.STATX_BASIC_STATS | ChangeStamps.Mask, out StatxBuffer st) != 0)
        {
            return Status.Unsuccessful;
        }

        // The stamp before the check and the count: a change made meanwhile leaves the stamp behind.
        FileChangeStamp stamp = ChangeStamps.From(in st, fd);
        var file = new FileIdentity(st.Device, st.Ino);
        FileObjectType type = Libc.TypeOf(st.Mode);
        state = new FileState
        {
            File = file,
            Type = type,
            Size = (long)st.Size,
            ModificationTime = Nanoseconds(st.ModifySeconds, st.ModifyNanoseconds),
            ChangeTime = Nanoseconds(st.ChangeSeconds, st.ChangeNanoseconds),
            BirthTime = (st.Mask & 0x800) != 0 ? Nanoseconds(st.BirthSeconds, st.BirthNanoseconds) : 0,
            ChangeStamp = stamp,
            Writers = type == FileObjectType.Regular ? LeaseProbe.Check(fd) : WriterCheck.NotRegularFile,
            GuestWriteDescriptions = type == FileObjectType.Regular ? GuestWriters.Count(file, guests) : 0,
        };
        return Status.Success;
    }

    /// <summary>As <see cref="Of(int, ProcessTable, out FileState)"/>, for a handle (a filter's own open).</summary>
    public static Status Of(System.Runtime.InteropServices.SafeHandle? handle, ProcessTable guests, out FileState state)
    {
        state = default;
        if (handle is null || handle.IsInvalid || handle.IsClosed)
        {
            return Status.AccessDenied;
        }

        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return Of((int)handle.DangerousGetHandle(), guests, out state);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private static long Nanoseconds(long seconds, uint nanoseconds) => (seconds * 1_000_000_000) + nanoseconds;
}

/// <summary>
/// Whether any open file description on the system holds a regular file open for writing: Linux grants a read lease
/// (fcntl F_SETLEASE F_RDLCK) only on a file no description holds open for writing (its i_writecount is 0), and refuses it
/// with EAGAIN otherwise. The kernel asks for one on a read-only description of its own and releases it at once.
/// </summary>
/// <remarks>
/// <para>The lease-break signal. Linux makes the process that takes a lease the owner of its description (lease_setup in
/// fs/locks.c sets it, F_SETOWN or not) and signals it when another process opens the file for writing, or truncates it,
/// while the lease is held: SIGIO by default, whose default action ends the process. So the description's signal is
/// first set to SIGURG (F_SETSIG), whose default action is to ignore it: a writer arriving during the two calls makes
/// Linux send SIGURG, which nothing receives, and waits in its open until the release.</para>
/// </remarks>
internal static class LeaseProbe
{
    private const int F_SETSIG = 10;
    private const int F_SETLEASE = 1024;
    private const int F_RDLCK = 0;
    private const int F_UNLCK = 2;
    private const int SIGURG = 23;
    private const string LeasesEnable = "/proc/sys/fs/leases-enable";

    /// <summary>Checks the regular file behind <paramref name="fd"/> (any descriptor of it, O_PATH included).</summary>
    public static WriterCheck Check(int fd) => Check(fd, whileHeld: null);

    /// <summary>
    /// As <see cref="Check(int)"/>; <paramref name="whileHeld"/> runs while the lease is held (a test makes a writer arrive
    /// then).
    /// </summary>
    public static WriterCheck Check(int fd, Action<int>? whileHeld)
    {
        int probe = InvisibleRead.OpenThrough(fd);
        if (probe < 0)
        {
            return WriterCheck.NotPermitted;
        }

        try
        {
            if (Libc.Fcntl(probe, F_SETSIG, SIGURG) < 0)
            {
                return WriterCheck.NotPermitted;
            }

            if (Libc.Fcntl(probe, F_SETLEASE, F_RDLCK) < 0)
            {
                return Libc.LastError switch
                {
                    Errno.EAGAIN => WriterCheck.Writer,
                    Errno.EINVAL => AreLeasesEnabled() ? WriterCheck.LeasesNotSupported : WriterCheck.LeasesDisabled,
                    _ => WriterCheck.NotPermitted,
                };
            }

            whileHeld?.Invoke(probe);
            _ = Libc.Fcntl(probe, F_SETLEASE, F_UNLCK);
            return WriterCheck.NoWriter;
        }
        finally
        {
            Libc.CloseOwned(probe);
        }
    }

    /// <summary>The lease type Linux reports on <paramref name="probe"/> (F_GETLEASE): F_UNLCK once a writer broke it.</summary>
    public static int LeaseOf(int probe) => Libc.Fcntl(probe, F_SETLEASE + 1, 0);

    /// <summary>True unless /proc/sys/fs/leases-enable says 0 (read only when Linux refused a lease with EINVAL).</summary>
    private static bool AreLeasesEnabled()
    {
        try
        {
            return File.ReadAllText(LeasesEnable).Trim() != "0";
        }
        catch (IOException)
        {
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
    }
}

/// <summary>
/// The open file descriptions open for writing on a file that the guest processes the kernel knows hold now: each
/// guest's descriptors (/proc/PID/fd) that name the file and were opened for writing (/proc/PID/fdinfo), each description
/// counted once however many descriptors share it (kcmp KCMP_FILE tells two descriptors of one description).
/// </summary>
internal static class GuestWriters
{
    private const int KCMP_FILE = 0;

    /// <summary>The count, or -1 when Linux would not compare two descriptors (kcmp refused).</summary>
    public static int Count(FileIdentity file, ProcessTable guests)
    {
        var found = new List<(int Pid, int Fd)>();
        foreach (GuestProcess p in guests.Snapshot())
        {
            if (!p.Attached && !p.Exited)
            {
                AddWriters(p.ProcessId, file, found);
            }
        }

        int distinct = 0;
        for (int i = 0; i < found.Count; i++)
        {
            bool seen = false;
            for (int j = 0; j < i && !seen; j++)
            {
                long same = Libc.Syscall(Sys.Kcmp, found[i].Pid, found[j].Pid, KCMP_FILE, found[i].Fd, found[j].Fd, 0);
                if (same < 0 && Libc.LastError is Errno.EPERM or Errno.ENOSYS)
                {
                    return -1;
                }

                seen = same == 0;
            }

            distinct += seen ? 0 : 1;
        }

        return distinct;
    }

    /// <summary>Adds the descriptors of <paramref name="pid"/> that name <paramref name="file"/> and are open for writing.</summary>
    private static unsafe void AddWriters(int pid, FileIdentity file, List<(int Pid, int Fd)> found)
    {
        string folder = "/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/fd";
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateFileSystemEntries(folder).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return; // gone, or not ours to read
        }

        foreach (string entry in entries)
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int fd)
                || !Names(entry, file) || !OpenForWriting(pid, fd))
            {
                continue;
            }

            found.Add((pid, fd));
        }
    }

    /// <summary>True when the descriptor link <paramref name="link"/> leads to <paramref name="file"/>.</summary>
    private static unsafe bool Names(string link, FileIdentity file)
    {
        byte[] path = System.Text.Encoding.ASCII.GetBytes(link + "\0");
        fixed (byte* p = path)
        {
            return FileFacts.Statx(Libc.AT_FDCWD, p, 0, FileFacts.STATX_INO, out StatxBuffer st) == 0
                && st.Device == file.Device && st.Ino == file.Inode;
        }
    }

    /// <summary>True when /proc/PID/fdinfo/FD gives write access in its flags.</summary>
    private static bool OpenForWriting(int pid, int fd)
    {
        string info;
        try
        {
            info = File.ReadAllText("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/fdinfo/" + fd.ToString(CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // closed meanwhile
        }

        foreach (string line in info.Split('\n'))
        {
            if (line.StartsWith("flags:", StringComparison.Ordinal))
            {
                int flags = Convert.ToInt32(line[6..].Trim(), 8);
                return (flags & Libc.O_PATH) == 0 && (flags & Libc.O_ACCMODE) != Libc.O_RDONLY;
            }
        }

        return false;
    }
}
