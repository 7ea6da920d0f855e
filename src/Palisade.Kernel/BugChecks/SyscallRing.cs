using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// The recent system calls, kept for crash dumps: a fixed ring the supervisor threads write on every call without
/// allocating or locking. Each slot carries a sequence number written last, so a reader (the bug check, on another
/// thread) can tell a complete entry from one being overwritten.
/// </summary>
internal sealed class SyscallRing
{
    /// <summary>Default number of entries kept.</summary>
    internal const int DefaultCapacity = 256;

    private readonly Entry[] _entries;
    private readonly int _mask;
    private long _next;

    internal SyscallRing(int capacity = DefaultCapacity)
    {
        if (capacity < 2 || (capacity & (capacity - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "The capacity must be a power of two, at least 2.");
        }

        _entries = new Entry[capacity];
        _mask = capacity - 1;
    }

    internal int Capacity => _entries.Length;

    /// <summary>How many calls were ever recorded.</summary>
    internal long Count => Volatile.Read(ref _next);

    /// <summary>
    /// Records one system call. A protected kernel function (the guard hashes its code): a rootkit that detours it
    /// hides its own calls from every later crash dump.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal void Record(int pid, int tid, int number, long arg0, long arg1, long arg2, long result)
    {
        long sequence = Interlocked.Increment(ref _next);
        ref Entry entry = ref _entries[(int)(sequence & _mask)];
        Volatile.Write(ref entry.Sequence, 0);
        entry.Timestamp = Stopwatch.GetTimestamp();
        entry.Pid = pid;
        entry.Tid = tid;
        entry.Number = number;
        entry.Arg0 = arg0;
        entry.Arg1 = arg1;
        entry.Arg2 = arg2;
        entry.Result = result;
        Volatile.Write(ref entry.Sequence, sequence);
    }

    /// <summary>Copies the complete entries, oldest first. Allocates; used by bug checks and tests.</summary>
    internal IReadOnlyList<SyscallRecord> Snapshot()
    {
        long last = Volatile.Read(ref _next);
        long first = Math.Max(1, last - _entries.Length + 1);
        long nowTicks = Stopwatch.GetTimestamp();
        DateTimeOffset now = DateTimeOffset.UtcNow;
        var records = new List<SyscallRecord>((int)(last - first + 1));
        for (long sequence = first; sequence <= last; sequence++)
        {
            ref Entry entry = ref _entries[(int)(sequence & _mask)];
            if (Volatile.Read(ref entry.Sequence) != sequence)
            {
                continue;
            }

            var record = new SyscallRecord(
                sequence,
                now - Stopwatch.GetElapsedTime(entry.Timestamp, nowTicks),
                entry.Pid,
                entry.Tid,
                entry.Number,
                entry.Arg0,
                entry.Arg1,
                entry.Arg2,
                entry.Result);
            if (Volatile.Read(ref entry.Sequence) == sequence)
            {
                records.Add(record);
            }
        }

        return records;
    }

    private struct Entry
    {
        public long Sequence;
        public long Timestamp;
        public int Pid;
        public int Tid;
        public int Number;
        public long Arg0;
        public long Arg1;
        public long Arg2;
        public long Result;
    }
}

/// <summary>One recorded system call as it appears in a crash dump.</summary>
internal sealed record SyscallRecord(
    long Sequence,
    DateTimeOffset Time,
    int Pid,
    int Tid,
    int Number,
    long Arg0,
    long Arg1,
    long Arg2,
    long Result);
