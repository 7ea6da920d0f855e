using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.Tests;

/// <summary>
/// Every attack in attacks/, started inside a protected kernel under the guard as <c>palisade run</c> wires it. The
/// loader's verifier refuses every one of them (AttackRefusalTests), so each is started through the kernel's
/// internal StartDriver path, as code that escaped the verifier would run: the guard is the second wall, and these
/// tests prove it. The bug check comes by the first sweep any context begins after the attack, with the right region
/// type; every guest is stopped; the dump is written; and its analysis names the attacking driver.
/// </summary>
public sealed class AttackTests
{
    [Theory]
    [InlineData("inline-detour", "form=e9", (int)GuardRegionType.KernelFunction, "SystemServices.FileService")]
    [InlineData("inline-detour", "form=ff25", (int)GuardRegionType.KernelFunction, "SystemServices.FileService")]
    [InlineData("stub-cell-swap", null, (int)GuardRegionType.KernelFunction, "SystemServices.FileService")]
    [InlineData("ssdt-hook", null, (int)GuardRegionType.SystemServiceTable, "system service table")]
    [InlineData("jit-hook", null, (int)GuardRegionType.JitCompileEntry, "compile")]
    [InlineData("callback-insert", null, (int)GuardRegionType.NotificationCallout, "process create")]
    [InlineData("driver-hide", null, (int)GuardRegionType.LoadedModuleList, "loaded driver list")]
    [InlineData("object-type-hook", null, (int)GuardRegionType.ObjectType, "object type Process")]
    [InlineData("guard-code-patch", null, (int)GuardRegionType.KernelFunction, "GuardContext.Sweep<GuardTag0>")]
    [InlineData("guard-starve", null, (int)GuardRegionType.GuardState, "")]
    public void Attack_is_caught_within_the_bound_and_blamed_on_its_driver(string package, string? parameter, int type, string region)
    {
        using var bed = new AttackBed(KernelFlavor.Protected);

        bed.Inject(package, parameter is null ? [] : [parameter]);
        Dictionary<string, long> sweeps = bed.SweepsNow();

        BugCheckReport report = bed.Sink.Wait();
        AssertCaught(bed, report, (GuardRegionType)type, region, package);
        TestGuard.AssertDetectedWithinBound(sweeps, report);
    }

    [Theory]
    [InlineData("antivirus", (int)GuardRegionType.NotificationCallout)]
    [InlineData("firewall", (int)GuardRegionType.CallbackObject)]
    public void Callbacks_removed_from_the_tables_are_caught_and_blamed_on_the_remover(string victim, int type)
    {
        using var bed = new AttackBed(KernelFlavor.Protected);
        bed.Load("drivers/out/" + victim);

        bed.Inject("callback-remove", "victim=" + victim);
        Dictionary<string, long> sweeps = bed.SweepsNow();

        BugCheckReport report = bed.Sink.Wait();
        AssertCaught(bed, report, (GuardRegionType)type, "", "callback-remove");
        TestGuard.AssertDetectedWithinBound(sweeps, report);
        Assert.Contains(report.Dump.Changes, c => c.Description?.StartsWith("removed: registered by " + victim, StringComparison.Ordinal) == true);
    }

    [Fact]
    public void A_process_unlinked_from_the_active_process_list_is_caught_and_blamed_on_the_unlinker()
    {
        using var bed = new AttackBed(KernelFlavor.Protected);
        bed.Kernel.ProcessTable.Add(4242, 1, 1000, out _);
        bed.Kernel.ProcessTable.Add(4243, 1, 1000, out _);

        bed.Inject("process-unlink", "pid=4242");
        Dictionary<string, long> sweeps = bed.SweepsNow();

        BugCheckReport report = bed.Sink.Wait();
        AssertCaught(bed, report, GuardRegionType.ProcessList, "active process list", "process-unlink");
        TestGuard.AssertDetectedWithinBound(sweeps, report);
        Assert.Contains(report.Dump.Changes, c => c.Description?.Contains("hidden from active process links", StringComparison.Ordinal) == true);
    }

    [Fact]
    public void A_driver_hiding_from_the_driver_list_is_caught_and_the_analysis_lists_the_recent_opens()
    {
        using var bed = new AttackBed(KernelFlavor.Protected);
        Assert.Equal(Status.Success, bed.Open(bed.WriteFile("hello.txt", "hello")));

        bed.Inject("driver-hide");

        BugCheckReport report = bed.Sink.Wait();
        AssertCaught(bed, report, GuardRegionType.LoadedModuleList, "loaded driver list", "driver-hide");
        var analysis = new StringWriter();
        DumpExplainer.Explain(CrashDump.FromJson(File.ReadAllText(report.DumpPath!)), analysis);
        Assert.Contains("CreateFile (open flags", analysis.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Forged_guard_shutdown_is_caught_as_guard_state_tampering_and_blamed_on_its_driver()
    {
        using var bed = new AttackBed(KernelFlavor.Protected);

        bed.Inject("guard-stop");

        AssertCaught(bed, bed.Sink.Wait(), GuardRegionType.GuardState, "", "guard-stop");
    }

    [Fact]
    public void Legitimate_process_and_driver_churn_is_not_a_corruption()
    {
        using var bed = new AttackBed(KernelFlavor.Protected);
        for (int i = 0; i < 200; i++)
        {
            bed.Kernel.ProcessTable.Add(5000 + i, 1, 1000, out _);
            if (i % 3 == 0)
            {
                bed.Kernel.ProcessTable.Remove(5000 + i - 3);
            }
        }

        DriverObject antivirus = bed.Load("drivers/out/antivirus");
        Assert.Equal(Status.Success, bed.Kernel.StopDriver(antivirus));

        long before = bed.Protection.Guard!.Contexts.Sum(c => c.Sweeps);
        Assert.True(SpinWait.SpinUntil(() => bed.Protection.Guard.Contexts.Sum(c => c.Sweeps) > before + 30, TimeSpan.FromSeconds(30)));
        Assert.Equal(0, bed.Sink.Count);
    }

    internal static void AssertCaught(AttackBed bed, BugCheckReport report, GuardRegionType type, string region, string package)
    {
        Assert.Equal(0x109UL, report.Code);
        Assert.Equal((ulong)type, report.Parameter4);
        Assert.Contains(region, report.Dump.Region!.Name, StringComparison.Ordinal);
        Assert.True(bed.GuestsStopped, "the bug check did not stop the guests");
        Assert.Equal(package, report.Dump.Culprit?.Driver);

        // The dump on disk says the same, and its analysis (what `palisade analyze` prints) names the driver.
        Assert.NotNull(report.DumpPath);
        CrashDump written = CrashDump.FromJson(File.ReadAllText(report.DumpPath));
        Assert.Equal(package, written.Culprit?.Driver);
        var analysis = new StringWriter();
        DumpExplainer.Explain(written, analysis);
        Assert.Contains($"(driver \"{package}\")", analysis.ToString(), StringComparison.Ordinal);
    }
}
