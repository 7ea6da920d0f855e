using Palisade.Api;

namespace Palisade.Kernel.Io;

/// <summary>
/// One minifilter's file-verdict cache (<see cref="IFilterManager.SetFileVerdict"/>): verdicts bound to a file's identity
/// and change stamp, found only while the file keeps that stamp. Bounded: <see cref="Slots"/> slots of <see cref="Ways"/>
/// entries each (the registration's capacity), chosen by the identity's hash; a store into a full slot evicts the entry
/// least recently stored or found there. The table is allocated at the first store; storing and finding allocate
/// nothing after that.
/// </summary>
internal sealed class VerdictCache
{
    public const int Ways = 4;

    private readonly Lock _gate = new();
    private readonly int _slots;
    private Entry[]? _entries;
    private long _clock;

    /// <summary>A cache of <paramref name="capacity"/> verdicts, rounded up to whole slots.</summary>
    public VerdictCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, Ways);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, FilterRegistration.MaxVerdictCacheCapacity);
        _slots = (capacity + Ways - 1) / Ways;
    }

    /// <summary>The number of slots.</summary>
    public int Slots => _slots;

    /// <summary>The most verdicts held at once.</summary>
    public int Capacity => _slots * Ways;

    /// <summary>True for a registration's capacity: 0 (the default) or 4 to the maximum.</summary>
    public static bool IsValidCapacity(int capacity) =>
        capacity == 0 || (capacity >= Ways && capacity <= FilterRegistration.MaxVerdictCacheCapacity);

    private struct Entry
    {
        public FileIdentity File;
        public FileChangeStamp Stamp;
        public object? Verdict;
        public long LastUse;
    }

    /// <summary>The number of verdicts held (for tests and diagnostics).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                int n = 0;
                foreach (Entry e in _entries ?? [])
                {
                    n += e.Verdict is null ? 0 : 1;
                }

                return n;
            }
        }
    }

    /// <summary>Stores <paramref name="verdict"/> for <paramref name="file"/> as it is at <paramref name="stamp"/>.</summary>
    public void Set(FileIdentity file, FileChangeStamp stamp, object verdict)
    {
        lock (_gate)
        {
            Entry[] entries = _entries ??= new Entry[Capacity];
            int first = SlotOf(file, _slots) * Ways;
            int victim = first;
            for (int i = first; i < first + Ways; i++)
            {
                ref Entry e = ref entries[i];
                if (e.Verdict is not null && e.File == file)
                {
                    victim = i;
                    break;
                }

                if (e.Verdict is null)
                {
                    victim = i;
                }
                else if (entries[victim].Verdict is not null && e.LastUse < entries[victim].LastUse)
                {
                    victim = i;
                }
            }

            entries[victim] = new Entry { File = file, Stamp = stamp, Verdict = verdict, LastUse = ++_clock };
        }
    }

    /// <summary>The verdict for <paramref name="file"/> when it was stored at <paramref name="stamp"/>; a verdict stored at
    /// another stamp is stale and dropped.</summary>
    public object? Get(FileIdentity file, FileChangeStamp stamp)
    {
        lock (_gate)
        {
            Entry[]? entries = _entries;
            if (entries is null)
            {
                return null;
            }

            int first = SlotOf(file, _slots) * Ways;
            for (int i = first; i < first + Ways; i++)
            {
                ref Entry e = ref entries[i];
                if (e.Verdict is null || e.File != file)
                {
                    continue;
                }

                if (e.Stamp != stamp)
                {
                    e = default;
                    return null;
                }

                e.LastUse = ++_clock;
                return e.Verdict;
            }

            return null;
        }
    }

    /// <summary>
    /// The slot of <paramref name="file"/>: Fibonacci hashing, the top 32 bits of the product scaled to the slot count (a
    /// remainder of middle bits put 100,000 consecutive inodes into 7,929 of 32,768 slots; the top bits spread them
    /// evenly, and identities without a pattern as a random draw would).
    /// </summary>
    internal static int SlotOf(FileIdentity file, int slots)
    {
        ulong h = (file.Inode * 0x9E3779B97F4A7C15UL) ^ (file.Device * 0xC2B2AE3D27D4EB4FUL);
        return (int)(((h >> 32) * (ulong)(uint)slots) >> 32);
    }
}
