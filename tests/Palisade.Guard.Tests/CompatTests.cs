using Palisade.Kernel;
using Palisade.Attacks.InlineDetour;
using Palisade.Attacks.StubCellSwap;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.Tests;

/// <summary>
/// The compat flavor boots with no guard at all, so the same attacks the protected flavor stops really take effect
/// there: proof that the hooks the guard catches are real hooks.
/// </summary>
public sealed class CompatTests
{
    [Fact]
    public void E9_detour_hides_system_calls_from_the_ring_in_the_compat_flavor()
    {
        Assert.Null(BootCompat());
        var ring = new SyscallRing();
        long swallowed = SyscallHiding.Swallowed;

        using (var attack = new E9DetourAttack())
        {
            attack.Install();
            ring.Record(1, 1, 59, 0, 0, 0, 0);
        }

        Assert.Equal(0, ring.Count);
        Assert.Equal(swallowed + 1, SyscallHiding.Swallowed);
    }

    [Fact]
    public void Stub_cell_swap_hides_system_calls_made_through_a_delegate_in_the_compat_flavor()
    {
        Assert.Null(BootCompat());
        var ring = new SyscallRing();
        Action<int, int, int, long, long, long, long> record = ring.Record;
        long swallowed = StubCellSwapAttack.Swallowed;

        using (var attack = new StubCellSwapAttack())
        {
            attack.Install();
            record(1, 1, 59, 0, 0, 0, 0);
        }

        Assert.Equal(0, ring.Count);
        Assert.Equal(swallowed + 1, StubCellSwapAttack.Swallowed);
    }

    private static KernelGuard? BootCompat() =>
        KernelGuard.StartForFlavor(
            KernelFlavor.Compat,
            GuardOptions.Default,
            new KernelBugCheck(new BugCheckOptions { DumpDirectory = Path.GetTempPath(), Flavor = KernelFlavor.Compat, Sink = new RecordingSink() }),
            out _);
}
