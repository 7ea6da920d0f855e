using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Palisade.Kernel.Guard;

/// <summary>
/// One guard thread. A checking context sweeps every region at randomized times against its own copy of the
/// baselines, kept XOR-masked with its own key and re-keyed every few sweeps; the watchdog context sweeps nothing
/// and only watches heartbeats. Every context watches every other's heartbeat, so a stopped, blocked or starved
/// one is noticed by the rest.
///
/// Each checking context runs its own native copy of the sweep: <see cref="Sweep{TTag}"/> is instantiated over a
/// different struct per context, and the JIT compiles a separate body for each value-type instantiation. A patch
/// that blinds one copy is seen by the others, and each copy is a protected region.
/// </summary>
internal sealed class GuardContext
{
    private readonly KernelGuard _guard;
    private readonly ulong[] _masked;
    private readonly long[] _seenBeat;
    private readonly long[] _seenAt;
    private readonly int[] _sweepsSinceBeat;
    private readonly Thread _thread;
    private GuardSchedule _schedule;
    private ulong _mask;
    private long _heartbeat;
    private long _sweeps;
    private int _sweepsUntilRekey;

    internal GuardContext(KernelGuard guard, int index, bool isWatchdog, GuardSchedule schedule, int capacity, int peers)
    {
        _guard = guard;
        Index = index;
        IsWatchdog = isWatchdog;
        _schedule = schedule;
        _masked = new ulong[capacity];
        _seenBeat = new long[peers];
        _seenAt = new long[peers];
        _sweepsSinceBeat = new int[peers];
        _mask = NewMask();
        _sweepsUntilRekey = RekeyPeriod();
        Name = isWatchdog ? "guard watchdog" : $"guard context {index}";
        _thread = new Thread(Run) { IsBackground = true, Name = "Palisade " + Name };
    }

    internal int Index { get; }

    internal bool IsWatchdog { get; }

    internal string Name { get; }

    internal GuardSchedule Schedule => _schedule;

    internal Thread Thread => _thread;

    internal ulong[] MaskedBaselines => _masked;

    /// <summary>Completed rounds (sweep plus peer watch); peers watch it.</summary>
    internal long Heartbeat => Volatile.Read(ref _heartbeat);

    /// <summary>Sweeps begun; a sweep that begins after a change is the one bound to detect it.</summary>
    internal long Sweeps => Volatile.Read(ref _sweeps);

    internal void Start()
    {
        long now = Stopwatch.GetTimestamp();
        Array.Fill(_seenAt, now);
        _thread.Start();
    }

    /// <summary>Stores a region's baseline digest masked with this context's key. Called under the guard's mutation lock.</summary>
    internal void SetBaseline(int region, ulong digest) => _masked[region] = digest ^ Mix(_mask, region);

    internal ulong Baseline(int region) => _masked[region] ^ Mix(_mask, region);

    private void Run()
    {
        try
        {
            // Peers are watched from the first round on, so no round may start before every thread is running.
            _guard.WaitUntilAllStarted();
            while (true)
            {
                if (_guard.WaitForHalt(_guard.Bounded(_schedule.Next())))
                {
                    _guard.OnHaltSignal(this);
                    return;
                }

                if (_guard.StopHonoured(this))
                {
                    return;
                }

                Interlocked.Increment(ref _sweeps);
                if (!IsWatchdog && !SweepOwnCopy())
                {
                    return;
                }

                Volatile.Write(ref _heartbeat, _heartbeat + 1);
                if (!WatchPeers())
                {
                    return;
                }

                if (--_sweepsUntilRekey <= 0)
                {
                    Rekey();
                }
            }
        }
#pragma warning disable CA1031 // A guard thread must never die silently: any failure is itself a bug check.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _guard.ReportFault(this, e);
        }
    }

    private bool SweepOwnCopy() => Index switch
    {
        0 => Sweep<GuardTag0>(this),
        1 => Sweep<GuardTag1>(this),
        2 => Sweep<GuardTag2>(this),
        _ => Sweep<GuardTag3>(this),
    };

    /// <summary>
    /// Checks every region against this context's baselines. Returns false after raising a bug check.
    /// A region in the middle of a sanctioned change (odd version) is skipped this round, unless it has been
    /// changing for longer than the guard allows.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static bool Sweep<TTag>(GuardContext context)
        where TTag : struct
    {
        KernelGuard guard = context._guard;
        GuardedRegion?[] regions = guard.Regions;
        int count = guard.RegionCount;
        for (int i = 0; i < count; i++)
        {
            GuardedRegion? region = regions[i];
            long before = guard.VersionOf(i);
            if (region is null || (before & 1) != 0)
            {
                if (region is null || guard.ChangeOverdue(i))
                {
                    guard.ReportStuckChange(context, i);
                    return false;
                }

                continue;
            }

            ulong expected;
            ulong found;
            bool intact;
            if (region.HasBaseline)
            {
                found = region.ComputeDigest(guard.Key);
                expected = context.Baseline(i);
                intact = found == expected;
            }
            else
            {
                intact = region.SelfConsistent(out expected, out found);
            }

            if (!intact && guard.VersionOf(i) == before)
            {
                guard.ReportCorruption(context, i, expected, found);
                return false;
            }
        }

        return true;
    }

    /// <summary>Checks that every peer is alive and beating. Returns false after raising a bug check.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal bool WatchPeers()
    {
        GuardContext[] contexts = _guard.Contexts;
        long now = Stopwatch.GetTimestamp();
        for (int p = 0; p < contexts.Length; p++)
        {
            GuardContext peer = contexts[p];
            if (ReferenceEquals(peer, this))
            {
                continue;
            }

            long beat = peer.Heartbeat;
            if (!peer._thread.IsAlive && !_guard.HaltRequested)
            {
                _guard.ReportPeerFailure(this, peer, _seenBeat[p], beat, stopped: true);
                return false;
            }

            if (beat != _seenBeat[p])
            {
                _seenBeat[p] = beat;
                _seenAt[p] = now;
                _sweepsSinceBeat[p] = 0;
                continue;
            }

            if (++_sweepsSinceBeat[p] > _guard.LateSweeps
                && Stopwatch.GetElapsedTime(_seenAt[p], now) > _guard.HeartbeatBound
                && !_guard.HaltRequested)
            {
                _guard.ReportPeerFailure(this, peer, beat + 1, beat, stopped: false);
                return false;
            }
        }

        return true;
    }

    private void Rekey()
    {
        ulong fresh = NewMask();
        _guard.Rekey(this, fresh);
        _sweepsUntilRekey = RekeyPeriod();
    }

    /// <summary>Applies a new mask to every baseline. Called by the guard under its mutation lock.</summary>
    internal void ApplyMask(ulong fresh, int count)
    {
        for (int i = 0; i < count; i++)
        {
            _masked[i] ^= Mix(_mask, i) ^ Mix(fresh, i);
        }

        _mask = fresh;
    }

    // Each slot gets its own mask, so equal digests never show as equal masked values.
    private static ulong Mix(ulong mask, int index) =>
        mask ^ unchecked(((ulong)index + 1) * 0x9E3779B97F4A7C15UL);

    private static ulong NewMask()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes);
    }

    private static int RekeyPeriod() => 8 + RandomNumberGenerator.GetInt32(24);
}

// One struct per checking context: each instantiation of GuardContext.Sweep<T> over a value type is its own body.
#pragma warning disable CA1812 // Used only as generic arguments.
internal readonly struct GuardTag0;

internal readonly struct GuardTag1;

internal readonly struct GuardTag2;

internal readonly struct GuardTag3;
#pragma warning restore CA1812
