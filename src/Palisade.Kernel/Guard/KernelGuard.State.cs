using System.Runtime.CompilerServices;

namespace Palisade.Kernel.Guard;

/// <summary>The guard's own state as a protected region (region 0, type <see cref="GuardRegionType.GuardState"/>).</summary>
internal sealed partial class KernelGuard
{
    /// <summary>
    /// Digests what a reflective attack on the guard would touch: which objects the guard holds (contexts, their
    /// schedules and baseline arrays, threads, the bug check and its sink, the authority, the halt event, every
    /// region object), the schedule bounds, the region count and the shutdown flag. Object identity is the runtime's
    /// identity hash, which does not move with the GC. Heartbeats, masks and sweep counters change by design and are
    /// watched elsewhere.
    /// </summary>
    private sealed class StateStructure(KernelGuard guard) : IGuardedStructure
    {
        public string Name => "guard state (contexts, schedules, region table, sink)";

        public GuardRegionType RegionType => GuardRegionType.GuardState;

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void AppendDigest(ref GuardHasher hasher)
        {
            hasher.Add(Identity(guard._contexts));
            hasher.Add(Identity(guard._regions));
            hasher.Add(Identity(guard._versions));
            hasher.Add(Identity(guard._bugCheck));
            hasher.Add(Identity(guard._bugCheck.Sink));
            hasher.Add(Identity(guard._authority));
            hasher.Add(Identity(guard._halt));
            hasher.Add((ulong)guard._heartbeatBoundTicks);
            hasher.Add((ulong)guard._minIntervalTicks);
            hasher.Add((ulong)guard._maxIntervalTicks);
            hasher.Add((ulong)guard._lateSweeps);
            hasher.Add(Volatile.Read(ref guard._shutdownRequested) ? 1UL : 0UL);
            int count = Volatile.Read(ref guard._count);
            hasher.Add((ulong)count);
            foreach (GuardContext context in guard._contexts)
            {
                hasher.Add(Identity(context));
                hasher.Add(Identity(context.Schedule));
                hasher.Add((ulong)context.Schedule.MinTicks);
                hasher.Add((ulong)context.Schedule.MaxTicks);
                hasher.Add(Identity(context.MaskedBaselines));
                hasher.Add(Identity(context.Thread));
                hasher.Add(context.IsWatchdog ? 1UL : 0UL);
            }

            for (int i = 0; i < count; i++)
            {
                hasher.Add(Identity(guard._regions[i]));
            }
        }

        public void DescribeEntries(ICollection<GuardedEntry> entries)
        {
            entries.Add(new GuardedEntry("shutdown requested", Volatile.Read(ref guard._shutdownRequested).ToString()));
            entries.Add(new GuardedEntry("sink", guard._bugCheck.Sink.GetType().FullName ?? "?"));
            entries.Add(new GuardedEntry("region count", Volatile.Read(ref guard._count).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            foreach (GuardContext context in guard._contexts)
            {
                entries.Add(new GuardedEntry(
                    context.Name + " schedule",
                    $"{context.Schedule.GetType().FullName} {TimeSpan.FromTicks(context.Schedule.MinTicks)}..{TimeSpan.FromTicks(context.Schedule.MaxTicks)} (object {Identity(context.Schedule):X})"));
                entries.Add(new GuardedEntry(context.Name + " thread", $"{context.Thread.Name} (object {Identity(context.Thread):X})"));
            }
        }

        private static ulong Identity(object? value) => value is null ? 0 : (ulong)(uint)RuntimeHelpers.GetHashCode(value);
    }
}
