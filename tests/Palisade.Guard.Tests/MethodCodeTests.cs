using System.Reflection;
using System.Runtime.CompilerServices;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.Tests;

/// <summary>Where a protected method's code lives, and why the guard insists on NoInlining | AggressiveOptimization.</summary>
public sealed class MethodCodeTests
{
    private static readonly MethodInfo Record = typeof(SyscallRing).GetMethod(nameof(SyscallRing.Record), BindingFlags.Instance | BindingFlags.NonPublic)!;

    [Fact]
    public void The_whole_body_of_a_method_is_located_from_the_runtimes_code_header_funclets_included()
    {
        MethodInfo withHandler = typeof(MethodCodeTests).GetMethod(nameof(HandlerProbe), BindingFlags.Static | BindingFlags.NonPublic)!;
        MethodInfo postOperation = typeof(Palisade.Kernel.Io.FilterManager).GetMethod(nameof(Palisade.Kernel.Io.FilterManager.PostOperation))!;

        MethodCodeLocation handler = NativeCode.Locate(withHandler);
        MethodCodeLocation post = NativeCode.Locate(postOperation);

        // A body with a catch and a finally has funclets after its main body; the extent covers them.
        Assert.InRange(handler.BodyLength, NativeCode.BodyPrefixLength + 1, NativeCode.MaxBodyLength);
        Assert.True(post.BodyLength > 0x24A + 5, $"PostOperation's body is {post.BodyLength} bytes");
    }

    [Fact]
    public void A_change_of_the_last_byte_of_a_body_changes_its_digest()
    {
        MethodInfo probe = typeof(MethodCodeTests).GetMethod(nameof(HandlerProbe), BindingFlags.Static | BindingFlags.NonPublic)!;
        var region = new MethodCodeRegion(probe);
        GuardKey key = GuardKey.CreateRandom();
        ulong before = region.ComputeDigest(key);
        nint last = region.Location.Body + region.Location.BodyLength - 1;
        byte original = NativeCode.View(last, 1)[0];

        CodeWriter.Write(last, [(byte)(original ^ 0xFF)]);
        ulong changed = region.ComputeDigest(key);
        CodeWriter.Write(last, [original]);

        Assert.NotEqual(before, changed);
        Assert.Equal(before, region.ComputeDigest(key));
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static int HandlerProbe(int x)
    {
        try
        {
            return 100 / x;
        }
        catch (DivideByZeroException)
        {
            return -1;
        }
        finally
        {
            GC.KeepAlive(x);
        }
    }

    [Fact]
    public void Aggressively_optimized_method_keeps_one_body_while_a_tiered_method_is_rejitted()
    {
        MethodInfo stable = typeof(MethodCodeTests).GetMethod(nameof(StableProbe), BindingFlags.Static | BindingFlags.NonPublic)!;
        MethodInfo tiered = typeof(MethodCodeTests).GetMethod(nameof(TieredProbe), BindingFlags.Static | BindingFlags.NonPublic)!;
        MethodCodeLocation stableBefore = NativeCode.Locate(stable);
        TieredProbe(1);
        nint tieredStub = tiered.MethodHandle.GetFunctionPointer();
        nint tieredFirst = NativeCode.FollowStub(tieredStub, out _);

        // Tiering replaces the plain method's code (call counting, then tier 1) while it is called; wait for that.
        int sink = 0;
        bool rejitted = SpinWait.SpinUntil(
            () =>
            {
                for (int i = 0; i < 1000; i++)
                {
                    sink += TieredProbe(i) + StableProbe(i);
                }

                return NativeCode.FollowStub(tieredStub, out _) != tieredFirst;
            },
            TimeSpan.FromMinutes(1));

        Assert.True(rejitted, $"the tiered probe was never re-jitted (sink {sink}); is tiered compilation off?");
        Assert.Equal(stableBefore, NativeCode.Locate(stable));
    }

    [Fact]
    public void Method_region_follows_the_stub_through_its_cell_to_the_body()
    {
        var region = new MethodCodeRegion(Record);

        Assert.Equal(0xFF, NativeCode.View(region.Location.Stub, 2)[0]);
        Assert.Equal(0x25, NativeCode.View(region.Location.Stub, 2)[1]);
        Assert.Equal(region.Location.Body, NativeCode.ReadPointer(region.Location.Cell));
        Assert.NotEqual(region.Location.Stub, region.Location.Body);
    }

    [Fact]
    public void Method_without_NoInlining_and_AggressiveOptimization_is_refused()
    {
        MethodInfo tiered = typeof(MethodCodeTests).GetMethod(nameof(TieredProbe), BindingFlags.Static | BindingFlags.NonPublic)!;

        ArgumentException refused = Assert.Throws<ArgumentException>(() => new MethodCodeRegion(tiered));

        Assert.Contains("AggressiveOptimization", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Each_guard_context_runs_its_own_copy_of_the_sweep()
    {
        nint body0 = NativeCode.Locate(KernelGuard.SweepCopyOf(0)).Body;
        nint body1 = NativeCode.Locate(KernelGuard.SweepCopyOf(1)).Body;
        nint body2 = NativeCode.Locate(KernelGuard.SweepCopyOf(2)).Body;

        Assert.Equal(3, new HashSet<nint> { body0, body1, body2 }.Count);
    }

    [Fact]
    public void Jit_entry_slot_points_into_libclrjit()
    {
        var region = new JitEntryRegion();

        ulong compileMethod = region.CaptureEvidence().Single(e => e.Key == "compileMethod slot").PointerValue;

        Assert.EndsWith("libclrjit.so", ProcessMaps.Find(compileMethod)!.Value.Path, StringComparison.Ordinal);
    }

    [Fact]
    public void Digest_of_unchanged_code_is_the_same_on_every_read()
    {
        var region = new MethodCodeRegion(Record);
        GuardKey key = GuardKey.CreateRandom();

        Assert.Equal(region.ComputeDigest(key), region.ComputeDigest(key));
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static int StableProbe(int x) => (x * 7) ^ (x >> 3);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int TieredProbe(int x) => (x * 5) ^ (x >> 2);
}
