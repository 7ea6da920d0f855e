namespace Palisade.Interop;

/// <summary>
/// The file system type (statfs f_type) of a file, from the mount that holds it: a mount's file system never changes
/// and Linux never reuses a unique mount id (statx STATX_MNT_ID_UNIQUE, Linux 6.8 and later) while it runs, so the type
/// is learned once per mount with fstatfs and then read from a small table. Without unique mount ids every question
/// costs an fstatfs.
/// </summary>
/// <remarks>
/// The table is 256 slots indexed by the id; a slot holds an immutable entry replaced whole, so a reader sees an old or a
/// new entry, never a torn one. Only a miss allocates. Safe for any number of threads.
/// </remarks>
internal static class MountFileSystems
{
    private const int Slots = 256;

    private static readonly Entry?[] s_table = new Entry?[Slots];

    /// <summary>
    /// The file system type of open file <paramref name="fd"/>, whose statx <paramref name="st"/> was made with
    /// <see cref="FileFacts.STATX_MNT_ID_UNIQUE"/> in its mask; 0 when fstatfs fails.
    /// </summary>
    public static long TypeOf(int fd, in StatxBuffer st)
    {
        if ((st.Mask & FileFacts.STATX_MNT_ID_UNIQUE) == 0)
        {
            return Query(fd);
        }

        ref Entry? slot = ref s_table[(int)(st.MountId % Slots)];
        Entry? known = Volatile.Read(ref slot);
        if (known is not null && known.MountId == st.MountId)
        {
            return known.Type;
        }

        long type = Query(fd);
        if (type != 0)
        {
            Volatile.Write(ref slot, new Entry(st.MountId, type));
        }

        return type;
    }

    private static long Query(int fd) => FileFacts.FileSystemOf(fd, out StatfsBuffer fs) == 0 ? fs.Type : 0;

    private sealed class Entry(ulong mountId, long type)
    {
        public ulong MountId { get; } = mountId;

        public long Type { get; } = type;
    }
}
