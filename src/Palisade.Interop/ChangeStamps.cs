using Palisade.Api;

namespace Palisade.Interop;

/// <summary>
/// Takes a file's change stamp (<see cref="FileChangeStamp"/>) from an open descriptor with statx(2): size, modification,
/// change and birth times in nanoseconds. A stamp is refused (none) when the file changed so recently that a further change
/// could land in the same tick of the file system's coarse clock and leave every time as it was (the "racy" case git's
/// index knows): such a file is simply not cached. Linux 6.13 and later close that case themselves on the file systems
/// with multigrain timestamps (ext4, xfs, btrfs, tmpfs): once statx has read a file's change time, its next change gets a
/// fine-grained time that differs, so a recent change there does not refuse the stamp.
/// </summary>
internal static class ChangeStamps
{
    /// <summary>How close to now a change time makes a stamp untrustworthy: two ticks at HZ=100, the coarsest Linux clock.</summary>
    public const long RacyNanoseconds = 20_000_000;

    /// <summary>What a stamp is made of (size, modification, change and birth times).</summary>
    public const uint Mask = STATX_SIZE | STATX_MTIME | STATX_CTIME | STATX_BTIME;

    private const uint STATX_SIZE = 0x200;
    private const uint STATX_MTIME = 0x40;
    private const uint STATX_CTIME = 0x80;
    private const uint STATX_BTIME = 0x800;

    /// <summary>The stamp of the open file <paramref name="fd"/> (any descriptor, O_PATH included), or none. Allocates nothing.</summary>
    public static FileChangeStamp Of(int fd) =>
        fd >= 0 && FileFacts.StatxOf(fd, Mask, out StatxBuffer st) == 0 ? From(in st, fd) : default;

    /// <summary>
    /// The stamp in <paramref name="st"/>, a statx of <paramref name="fd"/> made with at least <see cref="Mask"/> (so that a
    /// caller that needs the file's identity too makes one system call for both), or none.
    /// </summary>
    public static FileChangeStamp From(in StatxBuffer st, int fd)
    {
        if ((st.Mask & (STATX_SIZE | STATX_MTIME | STATX_CTIME)) != (STATX_SIZE | STATX_MTIME | STATX_CTIME))
        {
            return default;
        }

        long ctime = Nanoseconds(st.ChangeSeconds, st.ChangeNanoseconds);
        long now = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        if (ctime <= 0 || (now - ctime < RacyNanoseconds && !HasMultigrainTimes(fd)))
        {
            return default;
        }

        long btime = (st.Mask & STATX_BTIME) != 0 ? Nanoseconds(st.BirthSeconds, st.BirthNanoseconds) : 0;
        return new FileChangeStamp((long)st.Size, Nanoseconds(st.ModifySeconds, st.ModifyNanoseconds), ctime, btime);
    }

    /// <summary>True when this Linux gives the file system of <paramref name="fd"/> multigrain timestamps (6.13 and later:
    /// ext4, xfs, btrfs, tmpfs).</summary>
    private static bool HasMultigrainTimes(int fd) =>
        s_multigrainKernel && FileFacts.FileSystemOf(fd, out StatfsBuffer fs) == 0
        && fs.Type is 0xef53 /* ext2/3/4 */ or 0x58465342 /* xfs */ or 0x9123683e /* btrfs */ or 0x01021994 /* tmpfs */;

    private static readonly bool s_multigrainKernel = Environment.OSVersion.Version >= new Version(6, 13);

    private static long Nanoseconds(long seconds, uint nanoseconds) => (seconds * 1_000_000_000) + nanoseconds;
}
