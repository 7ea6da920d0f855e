using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
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

    /// <summary>
    /// Stops checking a region whose object is gone (a host's listener closed): its slot keeps a region that never
    /// changes. Only the kernel's own code may retire a region, and never code or the guard's own.
    /// </summary>
    /// <exception cref="UnauthorizedAccessException">As for <see cref="BeginChange"/>.</exception>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal void Retire(GuardAuthority authority, int region)
    {
        Demand(authority);
        DemandKernelCaller();
        lock (_mutation)
        {
            if ((uint)region >= (uint)_count || region == 0 || !_regions[region]!.Mutable)
            {
                throw new UnauthorizedAccessException("Only a structure the kernel registered can be retired.");
            }

            if (Volatile.Read(ref _shutdownRequested))
            {
                // The guard no longer checks anything: nothing to retire (a supervisor may end after the kernel).
                return;
            }

            OpenChange(region);
            OpenChange(0);
            _regions[region] = new GuardedStructureRegion(new RetiredStructure(_regions[region]!.Name), (ulong)region);
            Baseline(region);
            Baseline(0);
            CloseChange(0);
            CloseChange(region);
        }
    }

    /// <summary>A retired region: nothing left to watch.</summary>
    private sealed class RetiredStructure(string name) : IGuardedStructure
    {
        public string Name { get; } = "retired: " + name;

        public GuardRegionType RegionType => GuardRegionType.GenericData;

        public void AppendDigest(ref GuardHasher hasher) => hasher.Add(0UL);

        public void DescribeEntries(ICollection<GuardedEntry> entries)
        {
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
    /// contents as the baseline. The authority alone is not enough: the change must be asked for by the kernel's own
    /// code (the first caller outside the guard and the base library must be in the kernel's assembly, so a driver that
    /// stole the authority, or a gate, cannot open a window around code of its own); only a structure can change (code,
    /// the service table, the JIT entry and the guard's own state never do); the window belongs to the thread that
    /// opened it; and a change left open longer than two seconds is treated as tampering.
    /// </summary>
    /// <exception cref="UnauthorizedAccessException"><paramref name="authority"/> is not this guard's, the caller is not
    /// the kernel's code, or the region is one that never changes.</exception>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal GuardChange BeginChange(GuardAuthority authority, int region)
    {
        Demand(authority);
        if ((uint)region >= (uint)RegionCount || region == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(region), region, "Not a region the kernel registered.");
        }

        if (!_regions[region]!.Mutable)
        {
            throw new UnauthorizedAccessException($"{_regions[region]!.Name} is code or a fixed table: no change of it is ever sanctioned.");
        }

        DemandKernelCaller();
        lock (_mutation)
        {
            if ((_versions[region] & 1) != 0)
            {
                throw new InvalidOperationException($"A change of {_regions[region]!.Name} is already open.");
            }

            OpenChange(region);
        }

        return new GuardChange(this, region, Environment.CurrentManagedThreadId);
    }

    internal void EndChange(int region, int thread)
    {
        if (thread != Environment.CurrentManagedThreadId)
        {
            // A window closed by another thread than the one that opened it was taken out of the kernel's hands.
            Raise(_contexts[0], (ulong)region, (ulong)thread, (ulong)Environment.CurrentManagedThreadId, GuardRegionType.GuardState,
                $"change of {_regions[region]!.Name} closed by another thread", [], []);
            return;
        }

        lock (_mutation)
        {
            Baseline(region);
            CloseChange(region);
        }
    }

    /// <summary>
    /// Refuses a change not asked for by the kernel: walking up from the guard, past its gates and the base library's
    /// frames (reflection, delegates), the first method must belong to the kernel's assembly. Rare path (a registration,
    /// a process created or gone); it may allocate.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DemandKernelCaller()
    {
        var trace = new StackTrace(1, false);
        Assembly kernel = typeof(KernelGuard).Assembly;
        Assembly baseLibrary = typeof(object).Assembly;
        for (int i = 0; i < trace.FrameCount; i++)
        {
            Type? type = trace.GetFrame(i)?.GetMethod()?.DeclaringType;
            if (type is null || type.Assembly == baseLibrary || type == typeof(KernelGuard) || type == typeof(GuardGate))
            {
                continue;
            }

            if (type.Assembly == kernel)
            {
                return;
            }

            throw new UnauthorizedAccessException(
                $"A change of what the guard protects was asked for by {type.Assembly.GetName().Name} ({type.FullName}); only the kernel's own code may ask.");
        }

        throw new UnauthorizedAccessException("A change of what the guard protects was asked for by no kernel code.");
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
        if (StopHonoured(context))
        {
            return;
        }

        // Under the mutation lock: a sanctioned change of the region table (a host wiring retired as its supervisor ends)
        // may re-baseline the guard's state at this very moment, and the digest and its baseline must be one pair.
        ulong found;
        ulong expected;
        lock (_mutation)
        {
            found = _regions[0]!.ComputeDigest(_key);
            expected = context.Baseline(0);
        }

        if (!Volatile.Read(ref _shutdownRequested) || found != expected)
        {
            ReportCorruption(context, 0, expected, found);
        }
    }

    /// <summary>
    /// True when the system has stopped and <paramref name="context"/> may leave. A bug check latch set without a bug
    /// check (written from outside, so that every context would leave quietly) is itself corruption of the guard's state:
    /// it is raised over the forged latch, and then the context leaves.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal bool StopHonoured(GuardContext context)
    {
        if (!_bugCheck.HasStopped)
        {
            return false;
        }

        if (_bugCheck.LatchForged)
        {
            Raise(context, 0, 0, 1, GuardRegionType.GuardState, "bug check latch (set without a bug check)", [], [], overForgedLatch: true);
        }

        return true;
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
        IReadOnlyList<RegionEvidence> now,
        bool overForgedLatch = false)
    {
        try
        {
            var request = new BugCheckRequest(
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
                now);
            if (overForgedLatch)
            {
                _bugCheck.RaiseOverForgedLatch(request);
            }
            else
            {
                _bugCheck.Raise(request);
            }
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
        Protect(typeof(KernelBugCheck).GetMethod(nameof(KernelBugCheck.RaiseOverForgedLatch), any)!);
        Protect(typeof(KernelBugCheck).GetMethod("Stop", any)!);
        Protect(typeof(KernelGuard).GetMethod(nameof(StopHonoured), any)!);
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

/// <summary>
/// An open sanctioned change; disposing it, on the thread that opened it, re-baselines the region and lets the guard
/// check it again. The default value is no change (an unguarded structure).
/// </summary>
internal readonly struct GuardChange : IDisposable
{
    private readonly KernelGuard? _guard;
    private readonly int _region;
    private readonly int _thread;

    internal GuardChange(KernelGuard guard, int region, int thread)
    {
        _guard = guard;
        _region = region;
        _thread = thread;
    }

    public void Dispose() => _guard?.EndChange(_region, _thread);
}

/// <summary>
/// What a guarded kernel structure holds to change itself: the way to open the guard's window on its own region. It
/// hands out no window to anyone but the kernel's code (see <see cref="KernelGuard.BeginChange"/>), so a driver that
/// reaches the gate gains nothing the kernel's own methods would not do.
/// </summary>
internal sealed class GuardGate
{
    private readonly KernelGuard _guard;
    private readonly GuardAuthority _authority;
    private readonly int _region;

    internal GuardGate(KernelGuard guard, GuardAuthority authority, int region)
    {
        _guard = guard;
        _authority = authority;
        _region = region;
    }

    /// <summary>Opens a change of the gate's region for the calling kernel method; dispose it on the same thread.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal GuardChange Open() => _guard.BeginChange(_authority, _region);
}
