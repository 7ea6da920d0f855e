using System.Diagnostics;
using System.Reflection;
using Palisade.Kernel.BugChecks;

namespace Palisade.Kernel.Guard;

/// <summary>
/// Kernel patch protection. Holds the protected regions, starts the guard contexts and the watchdog, raises bug
/// check 0x109 through <see cref="KernelBugCheck"/> on any unsanctioned change, and lets the kernel make sanctioned
/// changes through <see cref="BeginChange"/> with the <see cref="GuardAuthority"/> it was issued at start.
///
/// There is no way to turn it off short of shutting the kernel down with that authority. It protects itself: its
/// own sweep code (one copy per context), its digest code, its bug check path, the JIT's compile entry, and its
/// state (contexts, schedules, region table, sink) as region 0.
/// </summary>
internal sealed partial class KernelGuard
{
    /// <summary>Most regions one guard protects.</summary>
    internal const int MaxRegions = 1024;

    // A sanctioned change that stays open longer than this is treated as tampering with the version.
    private static readonly TimeSpan ChangeTimeout = TimeSpan.FromSeconds(2);

    private readonly GuardedRegion?[] _regions = new GuardedRegion?[MaxRegions];
    private readonly long[] _versions = new long[MaxRegions];
    private readonly long[] _changeStarted = new long[MaxRegions];
    private readonly IReadOnlyList<RegionEvidence>[] _evidence = new IReadOnlyList<RegionEvidence>[MaxRegions];
    private readonly Lock _mutation = new();
    // No spinning: contexts wait on it for their whole interval and almost always time out, so a spin is pure cost.
    private readonly ManualResetEventSlim _halt = new(false, spinCount: 0);
    private readonly ManualResetEventSlim _allStarted = new(false);
    private readonly KernelBugCheck _bugCheck;
    private readonly GuardContext[] _contexts;
    private readonly GuardKey _key;
    private readonly long _heartbeatBoundTicks;
    private readonly long _minIntervalTicks;
    private readonly long _maxIntervalTicks;
    private readonly int _lateSweeps;
    private readonly GuardAuthority _authority;
    private int _authorityIssued;
    private int _count;
    private bool _shutdownRequested;

    private KernelGuard(GuardOptions options, KernelBugCheck bugCheck)
    {
        _bugCheck = bugCheck;
        _key = GuardKey.CreateRandom();
        _heartbeatBoundTicks = options.HeartbeatBound.Ticks;
        _minIntervalTicks = options.MinInterval.Ticks;
        _maxIntervalTicks = options.MaxInterval.Ticks;
        _lateSweeps = options.LateSweeps;
        _authority = GuardAuthority.IssueOnce(ref _authorityIssued);
        int total = options.ContextCount + 1;
        _contexts = new GuardContext[total];
        for (int i = 0; i < total; i++)
        {
            bool watchdog = i == options.ContextCount;
            _contexts[i] = new GuardContext(this, i, watchdog, new GuardSchedule(options.MinInterval, options.MaxInterval), MaxRegions, total);
        }
    }

    /// <summary>
    /// Starts the guard of a protected kernel and returns it; <paramref name="authority"/> is the only capability
    /// that can re-baseline a region or shut the guard down. Its own code, state, the bug check path, the system
    /// call ring's recorder and the JIT entry are protected before the first context starts.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An option lies outside its documented bounds.</exception>
    internal static KernelGuard Start(GuardOptions options, KernelBugCheck bugCheck, out GuardAuthority authority)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(bugCheck);
        options.Validate();
        var guard = new KernelGuard(options, bugCheck);
        guard.ProtectOwnCode();
        foreach (GuardContext context in guard._contexts)
        {
            context.Start();
        }

        guard._allStarted.Set();
        authority = guard._authority;
        return guard;
    }

    /// <summary>
    /// Boots the guard for <paramref name="flavor"/>: the protected flavor gets a running guard, the compat flavor
    /// gets none at all (null) and no authority.
    /// </summary>
    internal static KernelGuard? StartForFlavor(KernelFlavor flavor, GuardOptions options, KernelBugCheck bugCheck, out GuardAuthority? authority)
    {
        if (flavor == KernelFlavor.Compat)
        {
            authority = null;
            return null;
        }

        KernelGuard guard = Start(options, bugCheck, out GuardAuthority issued);
        authority = issued;
        return guard;
    }

    internal KernelBugCheck BugCheck => _bugCheck;

    internal GuardKey Key => _key;

    internal GuardedRegion?[] Regions => _regions;

    internal int RegionCount => Volatile.Read(ref _count);

    internal GuardContext[] Contexts => _contexts;

    internal int LateSweeps => _lateSweeps;

    internal TimeSpan HeartbeatBound => TimeSpan.FromTicks(_heartbeatBoundTicks);

    internal bool HaltRequested => Volatile.Read(ref _shutdownRequested) || _bugCheck.HasStopped;

    internal bool HasStopped => _bugCheck.HasStopped;

    /// <summary>Adds a region; its current contents become the baseline. Returns its index (for <see cref="BeginChange"/>).</summary>
    /// <exception cref="InvalidOperationException">The guard already protects <see cref="MaxRegions"/> regions.</exception>
    internal int Protect(GuardedRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        lock (_mutation)
        {
            int index = _count;
            if (index >= MaxRegions)
            {
                throw new InvalidOperationException($"The guard protects at most {MaxRegions} regions.");
            }

            bool ownState = index == 0;
            if (!ownState)
            {
                OpenChange(0);
            }

            _regions[index] = region;
            Baseline(index);
            Volatile.Write(ref _count, index + 1);
            if (!ownState)
            {
                Baseline(0);
                CloseChange(0);
            }

            return index;
        }
    }

    /// <summary>Protects a kernel structure (callback table, list, driver object).</summary>
    internal int Protect(IGuardedStructure structure)
    {
        ArgumentNullException.ThrowIfNull(structure);
        return Protect(new GuardedStructureRegion(structure, (ulong)RegionCount));
    }

    /// <summary>Protects the native code of a kernel method (must be NoInlining | AggressiveOptimization).</summary>
    internal int Protect(MethodBase method) => Protect(new MethodCodeRegion(method));

    /// <summary>
    /// Opens a sanctioned change of a region: the guard skips it until the change is disposed, then takes its new
    /// contents as the baseline. Only the holder of the guard's authority can open one; a change left open longer
    /// than two seconds is treated as tampering.
    /// </summary>
    /// <exception cref="UnauthorizedAccessException"><paramref name="authority"/> is not this guard's.</exception>
    internal GuardChange BeginChange(GuardAuthority authority, int region)
    {
        Demand(authority);
        lock (_mutation)
        {
            if ((uint)region >= (uint)_count || region == 0)
            {
                throw new ArgumentOutOfRangeException(nameof(region), region, "Not a region the kernel registered.");
            }

            if ((_versions[region] & 1) != 0)
            {
                throw new InvalidOperationException($"A change of {_regions[region]!.Name} is already open.");
            }

            OpenChange(region);
        }

        return new GuardChange(this, region);
    }

    internal void EndChange(int region)
    {
        lock (_mutation)
        {
            Baseline(region);
            CloseChange(region);
        }
    }

    /// <summary>
    /// Shuts the guard down with the kernel and waits for its threads. Requires the guard's authority.
    /// </summary>
    /// <exception cref="UnauthorizedAccessException"><paramref name="authority"/> is not this guard's.</exception>
    internal void Shutdown(GuardAuthority authority)
    {
        Demand(authority);
        lock (_mutation)
        {
            OpenChange(0);
            Volatile.Write(ref _shutdownRequested, true);
            Baseline(0);
            CloseChange(0);
        }

        _halt.Set();
        foreach (GuardContext context in _contexts)
        {
            context.Thread.Join();
        }
    }

    /// <summary>Waits for the guard's threads to end after a bug check (tests use it to leave nothing running).</summary>
    internal void WaitForThreads()
    {
        foreach (GuardContext context in _contexts)
        {
            context.Thread.Join();
        }
    }

    /// <summary>
    /// Clamps a context's next wait to the guard's own bounds and, whatever those say, to
    /// <see cref="GuardOptions.LongestInterval"/> (a static readonly field reflection cannot rewrite): a schedule
    /// swapped for a slower one cannot put a context to sleep past the bound, and the swap itself is caught by the
    /// state region on the next sweep.
    /// </summary>
    internal TimeSpan Bounded(TimeSpan wait)
    {
        long ticks = Math.Clamp(wait.Ticks, _minIntervalTicks, Math.Max(_minIntervalTicks, _maxIntervalTicks));
        return TimeSpan.FromTicks(Math.Min(ticks, GuardOptions.LongestInterval.Ticks));
    }

    internal long VersionOf(int region) => Volatile.Read(ref _versions[region]);

    internal bool ChangeOverdue(int region) =>
        Stopwatch.GetElapsedTime(Volatile.Read(ref _changeStarted[region])) > ChangeTimeout;

    internal void WaitUntilAllStarted() => _allStarted.Wait();

    internal bool WaitForHalt(TimeSpan timeout) => _halt.Wait(timeout);

    /// <summary>
    /// A context's masked and unmasked baseline of a region, read under the mutation lock so a re-key on the
    /// context's thread cannot tear the pair (diagnostics and tests; contexts read their own without the lock).
    /// </summary>
    internal (ulong Masked, ulong Baseline) BaselineSnapshot(GuardContext context, int region)
    {
        lock (_mutation)
        {
            return (context.MaskedBaselines[region], context.Baseline(region));
        }
    }

    internal void Rekey(GuardContext context, ulong fresh)
    {
        lock (_mutation)
        {
            context.ApplyMask(fresh, _count);
        }
    }

    /// <summary>
    /// A context woke to the halt signal. It is honoured only after a bug check, or after a shutdown whose state the
    /// guard itself re-baselined: a halt signalled or a shutdown flag set by anyone else is tampering.
    /// </summary>
    internal void OnHaltSignal(GuardContext context)
    {
        if (_bugCheck.HasStopped)
        {
            return;
        }

        GuardedRegion state = _regions[0]!;
        ulong found = state.ComputeDigest(_key);
        ulong expected = context.Baseline(0);
        if (!Volatile.Read(ref _shutdownRequested) || found != expected)
        {
            ReportCorruption(context, 0, expected, found);
        }
    }

    internal void ReportCorruption(GuardContext context, int index, ulong expected, ulong found)
    {
        GuardedRegion region = _regions[index]!;
        IReadOnlyList<RegionEvidence> now;
        try
        {
            now = region.CaptureEvidence();
        }
#pragma warning disable CA1031 // The region may be corrupted past reading; the bug check goes ahead without evidence.
        catch (Exception)
#pragma warning restore CA1031
        {
            now = [];
        }

        Raise(context, region.Address, expected, found, region.Type, region.Name, _evidence[index] ?? [], now);
    }

    internal void ReportStuckChange(GuardContext context, int index)
    {
        GuardedRegion? region = _regions[index];
        Raise(context, (ulong)index, (ulong)(index == 0 ? 0 : VersionOf(index) - 1), (ulong)VersionOf(index), GuardRegionType.GuardState,
            region is null ? $"region table slot {index} (emptied)" : $"change of {region.Name} left open", [], []);
    }

    internal void ReportPeerFailure(GuardContext observer, GuardContext peer, long expectedBeat, long foundBeat, bool stopped)
    {
        string what = stopped ? "stopped" : "late past its bound";
        Raise(observer, (ulong)peer.Index, (ulong)expectedBeat, (ulong)foundBeat, GuardRegionType.GuardHeartbeat, $"{peer.Name} heartbeat ({what})", [], []);
    }

    internal void ReportFault(GuardContext context, Exception fault)
    {
        if (_bugCheck.HasStopped)
        {
            return;
        }

        Raise(context, (ulong)context.Index, 0, unchecked((ulong)fault.HResult), GuardRegionType.GuardState,
            $"{context.Name} failed: {fault.GetType().Name}: {fault.Message}", [], []);
    }

    private void Raise(
        GuardContext detector,
        ulong p1,
        ulong expected,
        ulong found,
        GuardRegionType type,
        string name,
        IReadOnlyList<RegionEvidence> before,
        IReadOnlyList<RegionEvidence> now)
    {
        try
        {
            _bugCheck.Raise(new BugCheckRequest(
                BugCheckCodes.CriticalStructureCorruption,
                p1,
                expected,
                found,
                (ulong)type,
                name,
                type.ToString(),
                detector.Name,
                detector.Sweeps,
                before,
                now));
        }
        finally
        {
            // The system is down: every context leaves at its next wake-up.
            _halt.Set();
        }
    }

    private void Demand(GuardAuthority authority)
    {
        if (!ReferenceEquals(authority, _authority))
        {
            throw new UnauthorizedAccessException("Only the kernel that started the guard may change what it protects.");
        }
    }

    private void OpenChange(int region)
    {
        Volatile.Write(ref _changeStarted[region], Stopwatch.GetTimestamp());
        Interlocked.Increment(ref _versions[region]);
    }

    private void CloseChange(int region) => Interlocked.Increment(ref _versions[region]);

    private void Baseline(int index)
    {
        GuardedRegion region = _regions[index]!;
        _evidence[index] = region.CaptureEvidence();
        ulong digest = region.HasBaseline ? region.ComputeDigest(_key) : 0;
        foreach (GuardContext context in _contexts)
        {
            context.SetBaseline(index, digest);
        }
    }

    private void ProtectOwnCode()
    {
        Protect(new GuardedStructureRegion(new StateStructure(this), 0));
        foreach (GuardContext context in _contexts)
        {
            if (!context.IsWatchdog)
            {
                Protect(new MethodCodeRegion(SweepCopyOf(context.Index)));
            }
        }

        const BindingFlags any = BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        Protect(typeof(GuardContext).GetMethod(nameof(GuardContext.WatchPeers), any)!);
        Protect(typeof(GuardHasher).GetMethod(nameof(GuardHasher.Add), any, [typeof(ReadOnlySpan<byte>)])!);
        Protect(typeof(GuardHasher).GetMethod(nameof(GuardHasher.Add), any, [typeof(ulong)])!);
        Protect(typeof(GuardHasher).GetMethod(nameof(GuardHasher.Finish), any)!);
        Protect(typeof(MethodCodeRegion).GetMethod(nameof(MethodCodeRegion.AppendDigest), any)!);
        Protect(typeof(NativeMemoryRegion).GetMethod(nameof(NativeMemoryRegion.AppendDigest), any)!);
        Protect(typeof(JitEntryRegion).GetMethod(nameof(JitEntryRegion.AppendDigest), any)!);
        Protect(typeof(GuardedStructureRegion).GetMethod(nameof(GuardedStructureRegion.AppendDigest), any)!);
        Protect(typeof(CrossViewRegion).GetMethod(nameof(CrossViewRegion.SelfConsistent), any)!);
        Protect(typeof(StateStructure).GetMethod(nameof(StateStructure.AppendDigest), any)!);
        Protect(typeof(KernelBugCheck).GetMethod(nameof(KernelBugCheck.Raise), any)!);
        Protect(typeof(SyscallRing).GetMethod(nameof(SyscallRing.Record), any)!);
        Protect(new JitEntryRegion());
    }

    internal static MethodInfo SweepCopyOf(int contextIndex)
    {
        Type tag = contextIndex switch
        {
            0 => typeof(GuardTag0),
            1 => typeof(GuardTag1),
            2 => typeof(GuardTag2),
            _ => typeof(GuardTag3),
        };
        return typeof(GuardContext).GetMethod(nameof(GuardContext.Sweep), BindingFlags.Static | BindingFlags.NonPublic)!.MakeGenericMethod(tag);
    }
}

/// <summary>An open sanctioned change; disposing it re-baselines the region and lets the guard check it again.</summary>
internal readonly struct GuardChange : IDisposable
{
    private readonly KernelGuard? _guard;
    private readonly int _region;

    internal GuardChange(KernelGuard guard, int region)
    {
        _guard = guard;
        _region = region;
    }

    public void Dispose() => _guard?.EndChange(_region);
}
