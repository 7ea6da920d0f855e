using System.Reflection;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.Tests;

/// <summary>How the guard keeps its own baselines and state from being quietly rewritten.</summary>
public sealed class SelfProtectionTests
{
    [Fact]
    public void Each_context_masks_the_same_baseline_with_its_own_key()
    {
        using var kernel = new TestGuard();

        var snapshots = Array.ConvertAll(kernel.Guard.Contexts, c => kernel.Guard.BaselineSnapshot(c, 1));
        ulong[] masked = Array.ConvertAll(snapshots, s => s.Masked);
        ulong[] unmasked = Array.ConvertAll(snapshots, s => s.Baseline);

        Assert.Equal(masked.Length, masked.Distinct().Count());
        Assert.Single(unmasked.Distinct());
        Assert.DoesNotContain(unmasked[0], masked);
    }

    [Fact]
    public void Masked_baselines_are_rekeyed_while_the_baseline_stays()
    {
        using var kernel = new TestGuard();
        GuardContext context = kernel.Guard.Contexts[0];
        (ulong masked, ulong baseline) = kernel.Guard.BaselineSnapshot(context, 1);

        // A context re-keys every 8 to 31 rounds.
        kernel.WaitRounds(32);

        (ulong maskedLater, ulong baselineLater) = kernel.Guard.BaselineSnapshot(context, 1);
        Assert.NotEqual(masked, maskedLater);
        Assert.Equal(baseline, baselineLater);
    }

    [Fact]
    public void Private_bound_rewritten_by_reflection_is_caught_as_guard_state_tampering()
    {
        using var kernel = new TestGuard();
        FieldInfo bound = typeof(KernelGuard).GetField("_maxIntervalTicks", BindingFlags.Instance | BindingFlags.NonPublic)!;

        bound.SetValue(kernel.Guard, TimeSpan.FromHours(1).Ticks);

        BugCheckReport report = kernel.Sink.Wait();
        Assert.Equal((ulong)GuardRegionType.GuardState, report.Parameter4);
    }

    [Fact]
    public void Region_object_swapped_in_the_table_is_caught_as_guard_state_tampering()
    {
        using var kernel = new TestGuard();
        GuardedRegion?[] regions = kernel.Guard.Regions;
        int record = Array.FindIndex(regions, r => r?.Name.EndsWith("SyscallRing.Record", StringComparison.Ordinal) == true);

        regions[record] = new CrossViewRegion("decoy", GuardRegionType.GenericData, 0, new ListView("a", []), new ListView("b", []));

        BugCheckReport report = kernel.Sink.Wait();
        Assert.Equal((ulong)GuardRegionType.GuardState, report.Parameter4);
    }
}
