using Palisade.Attacks.GuardCodePatch;
using Palisade.Attacks.GuardTamper;
using Palisade.Attacks.InlineDetour;
using Palisade.Attacks.JitHook;
using Palisade.Attacks.StubCellSwap;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.Tests;

/// <summary>
/// Each attack in attacks/ against a protected kernel: the bug check comes by the first sweep begun after the attack,
/// with the right region type, and the analysis names the attacking assembly. Until the signed driver loader lands,
/// each attack is loaded in-process through its type rather than as a driver package.
/// </summary>
public sealed class AttackTests
{
    [Fact]
    public void Inline_E9_detour_of_a_kernel_function_is_caught_and_blamed_on_its_assembly()
    {
        using var kernel = new TestKernel();
        using var attack = new E9DetourAttack();

        attack.Install();
        Dictionary<string, long> sweeps = kernel.SweepsNow();

        BugCheckReport report = kernel.Sink.Wait();
        AssertKernelFunction(report, "SyscallRing.Record");
        TestKernel.AssertDetectedWithinBound(sweeps, report);
        Assert.Equal("Palisade.Attacks.InlineDetour", report.Dump.Culprit?.Assembly);
        ChangeSection body = Assert.Single(report.Dump.Changes, c => c.Key == "body");
        Assert.StartsWith("jmp", body.Instruction, StringComparison.Ordinal);
    }

    [Fact]
    public void Inline_FF25_absolute_detour_of_a_kernel_function_is_caught_and_blamed_on_its_assembly()
    {
        using var kernel = new TestKernel();
        using var attack = new AbsoluteJumpDetourAttack();

        attack.Install();
        Dictionary<string, long> sweeps = kernel.SweepsNow();

        BugCheckReport report = kernel.Sink.Wait();
        AssertKernelFunction(report, "SyscallRing.Record");
        TestKernel.AssertDetectedWithinBound(sweeps, report);
        Assert.Equal("Palisade.Attacks.InlineDetour", report.Dump.Culprit?.Assembly);
        ChangeSection body = Assert.Single(report.Dump.Changes, c => c.Key == "body");
        Assert.StartsWith("jmp qword ptr", body.Instruction, StringComparison.Ordinal);
    }

    [Fact]
    public void Swapped_stub_cell_is_caught_and_blamed_on_its_assembly()
    {
        using var kernel = new TestKernel();
        using var attack = new StubCellSwapAttack();

        attack.Install();
        Dictionary<string, long> sweeps = kernel.SweepsNow();

        BugCheckReport report = kernel.Sink.Wait();
        AssertKernelFunction(report, "SyscallRing.Record");
        TestKernel.AssertDetectedWithinBound(sweeps, report);
        Assert.Contains(report.Dump.Changes, c => c.Key == "cell");
        Assert.Equal("Palisade.Attacks.StubCellSwap", report.Dump.Culprit?.Assembly);
    }

    [Fact]
    public void Hooked_jit_compile_entry_is_caught_and_blamed_on_its_assembly()
    {
        using var kernel = new TestKernel();
        using var attack = new JitHookAttack();

        attack.Install();
        Dictionary<string, long> sweeps = kernel.SweepsNow();

        BugCheckReport report = kernel.Sink.Wait();
        Assert.Equal((ulong)GuardRegionType.JitCompileEntry, report.Parameter4);
        TestKernel.AssertDetectedWithinBound(sweeps, report);
        Assert.Contains(report.Dump.Changes, c => c.Key == "compileMethod slot");
        Assert.Equal("Palisade.Attacks.JitHook", report.Dump.Culprit?.Assembly);
    }

    [Fact]
    public void Patched_guard_sweep_is_caught_by_the_other_contexts_and_blamed_on_its_assembly()
    {
        using var kernel = new TestKernel();
        using var attack = new GuardCodePatchAttack();

        attack.Install();
        Dictionary<string, long> sweeps = kernel.SweepsNow();

        BugCheckReport report = kernel.Sink.Wait();
        AssertKernelFunction(report, "GuardContext.Sweep<GuardTag0>");
        Assert.NotEqual("guard context 0", report.Dump.DetectedBy);
        TestKernel.AssertDetectedWithinBound(sweeps, report);
        Assert.Equal("Palisade.Attacks.GuardCodePatch", report.Dump.Culprit?.Assembly);
    }

    [Fact]
    public void Forged_guard_shutdown_by_reflection_is_caught_as_guard_state_tampering()
    {
        using var kernel = new TestKernel();
        var attack = new GuardStopAttack(kernel);

        attack.Install();

        BugCheckReport report = kernel.Sink.Wait();
        Assert.Equal((ulong)GuardRegionType.GuardState, report.Parameter4);
        Assert.Equal("Palisade.Attacks.GuardTamper", report.Dump.Culprit?.Assembly);
    }

    [Fact]
    public void Guard_starved_by_a_replaced_schedule_is_caught_as_guard_state_tampering()
    {
        using var kernel = new TestKernel();
        using var attack = new GuardStarveAttack(kernel);

        attack.Install();
        Dictionary<string, long> sweeps = kernel.SweepsNow();

        BugCheckReport report = kernel.Sink.Wait();
        Assert.Equal((ulong)GuardRegionType.GuardState, report.Parameter4);
        TestKernel.AssertDetectedWithinBound(sweeps, report);
        Assert.Equal("Palisade.Attacks.GuardTamper", report.Dump.Culprit?.Assembly);
    }

    private static void AssertKernelFunction(BugCheckReport report, string method)
    {
        Assert.Equal(0x109UL, report.Code);
        Assert.Equal((ulong)GuardRegionType.KernelFunction, report.Parameter4);
        Assert.Contains(method, report.Dump.Region.Name, StringComparison.Ordinal);
    }
}
