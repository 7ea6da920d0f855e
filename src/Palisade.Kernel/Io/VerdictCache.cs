using Palisade.Api;

namespace Palisade.Kernel.Io;

/// <summary>
/// One minifilter's file-verdict cache (<see cref="IFilterManager.SetFileVerdict(CallbackCookie, FileIdentity, FileChangeStamp, object)"/>): verdicts bound to a file's identity
/// and change stamp, found only while the file keeps that stamp. Bounded: <see cref="Slots"/> slots of <see cref="Ways"/>
/// entries each (the registration's capacity), chosen by the identity's hash; a store into a full slot evicts the entry
/// least recently stored or found there. The table is allocated at the first store; storing and finding allocate
/// nothing after that. Each verdict keeps its <see cref="FileVerdictFlags"/>; the cache counts those that let the kernel
/// skip the filter's post-create, so that the filter manager asks the cache only while there are some.
/// </summary>
internal sealed class VerdictCache
{
    public const int Ways = 4;

    private readonly Lock _gate = new();
    private readonly int _slots;
    private Entry[]? _entries;
    private long _clock;
    private int _skipping;

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
        public FileVerdictFlags Flags;

        public readonly bool Skips => Verdict is not null && (Flags & FileVerdictFlags.SkipPostCreate) != 0;
    }

    /// <summary>True while some verdict held carries <see cref="FileVerdictFlags.SkipPostCreate"/> (read without the lock:
    /// a verdict stored on another thread a moment ago may not be seen yet, which only costs that open a callback).</summary>
    public bool HasSkips => Volatile.Read(ref _skipping) != 0;

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
    public void Set(FileIdentity file, FileChangeStamp stamp, object verdict, FileVerdictFlags flags = FileVerdictFlags.None)
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

            Drop(ref entries[victim]);
            entries[victim] = new Entry { File = file, Stamp = stamp, Verdict = verdict, LastUse = ++_clock, Flags = flags };
            _skipping += entries[victim].Skips ? 1 : 0;
        }
    }

    /// <summary>Drops every verdict (IFilterManager.ClearFileVerdicts). The table stays allocated.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            if (_entries is { } entries)
            {
                Array.Clear(entries);
            }

            _skipping = 0;
        }
    }

    /// <summary>
    /// True when <paramref name="file"/> holds a verdict with <see cref="FileVerdictFlags.SkipPostCreate"/> stored at
    /// <paramref name="stamp"/>; a verdict stored at another stamp is stale and dropped, as <see cref="Get"/> drops it. A
    /// stamp that is none finds nothing and drops nothing. Allocates nothing.
    /// </summary>
    public bool Skips(FileIdentity file, FileChangeStamp stamp)
    {
        if (stamp.IsNone)
        {
            return false;
        }

        lock (_gate)
        {
            int i = Find(file, stamp);
            return i >= 0 && _entries![i].Skips;
        }
    }

    /// <summary>The verdict for <paramref name="file"/> when it was stored at <paramref name="stamp"/>; a verdict stored at
    /// another stamp is stale and dropped.</summary>
    public object? Get(FileIdentity file, FileChangeStamp stamp)
    {
        lock (_gate)
        {
            int i = Find(file, stamp);
            return i >= 0 ? _entries![i].Verdict : null;
        }
    }

    /// <summary>The index of the entry of <paramref name="file"/> stored at <paramref name="stamp"/>, marked as just used;
    /// -1 when there is none. An entry of the file stored at another stamp is dropped. Called under the lock.</summary>
    private int Find(FileIdentity file, FileChangeStamp stamp)
    {
        Entry[]? entries = _entries;
        if (entries is null)
        {
            return -1;
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
                Drop(ref e);
                break;
            }

            e.LastUse = ++_clock;
            return i;
        }

        return -1;
    }

    /// <summary>Empties <paramref name="e"/>, keeping the count of skipping verdicts. Called under the lock.</summary>
    private void Drop(ref Entry e)
    {
        _skipping -= e.Skips ? 1 : 0;
        e = default;
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
