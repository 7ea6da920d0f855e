using System.Reflection;
using Palisade.Host.Linux.Mediation;
using Palisade.Host.Linux.Supervision;
using Palisade.Kernel;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;
using Microsoft.Win32.SafeHandles;

namespace Palisade.Guard.Tests;

/// <summary>
/// The host's part under the guard, registered through the kernel's hosting surface: the mediation code every decision
/// passes through, patched as a detour library patches code, and a
/// supervisor's wiring (the listener descriptor it serves), swapped by reflection.
/// </summary>
public sealed class HostProtectionTests
{
    [Fact]
    public void A_detour_of_the_kernel_mediators_post_open_is_bug_check_0x109_naming_it()
    {
        using var bed = new AttackBed(KernelFlavor.Protected);
        _ = new KernelMediator(bed.Kernel.Host);
        MethodInfo postOpen = typeof(KernelMediator).GetMethod(nameof(KernelMediator.PostOpen))!;
        nint body = NativeCode.Locate(postOpen).Body;

        byte[] original = CodeWriter.Write(body, [0xEB, 0xFE]);

        BugCheckReport report = bed.Sink.Wait();
        CodeWriter.Write(body, original);
        Assert.Equal(0x109UL, report.Code);
        Assert.Equal((ulong)GuardRegionType.KernelFunction, report.Parameter4);
        Assert.Contains("KernelMediator.PostOpen", report.Dump.Region!.Name, StringComparison.Ordinal);
    }

    [Fact]
    public void A_supervisors_listener_swapped_by_reflection_is_bug_check_0x109_host_mediation()
    {
        using var bed = new AttackBed(KernelFlavor.Protected);
        using SafeFileHandle listener = File.OpenHandle("/dev/null");
        using SafeFileHandle other = File.OpenHandle("/dev/zero");
        var supervisor = new Supervisor((int)listener.DangerousGetHandle(), new KernelMediator(bed.Kernel.Host), null);

        typeof(Supervisor).GetField("_listener", BindingFlags.Instance | BindingFlags.NonPublic)!.SetValue(supervisor, (int)other.DangerousGetHandle());

        BugCheckReport report = bed.Sink.Wait();
        Assert.Equal((ulong)GuardRegionType.HostMediation, report.Parameter4);
        Assert.StartsWith("host wiring: supervisor listener", report.Dump.Region!.Name, StringComparison.Ordinal);
    }

    [Fact]
    public void Registering_the_mediation_code_again_adds_nothing_and_changes_nothing()
    {
        using var bed = new AttackBed(KernelFlavor.Protected);
        _ = new KernelMediator(bed.Kernel.Host);
        int regions = bed.Protection.Guard!.RegionCount;

        _ = new KernelMediator(bed.Kernel.Host);

        Assert.Equal(regions, bed.Protection.Guard.RegionCount);
        Assert.Contains(bed.Protection.Guard.Regions, r => r?.Name == "Palisade.Host.Linux.Mediation.KernelMediator.PostOpen");
        long before = bed.Protection.Guard.Contexts.Sum(c => c.Sweeps);
        Assert.True(SpinWait.SpinUntil(() => bed.Protection.Guard.Contexts.Sum(c => c.Sweeps) > before + 10, TimeSpan.FromSeconds(30)), "the guard did not sweep");
        Assert.Equal(0, bed.Sink.Count);
    }
}
