using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.Tests;

/// <summary>
/// The attacks of issue 12 that got past the first guard: private state changed by reflection (a registration's
/// enabled flag, a callback slot, a delegate's code pointer, the kernel's own wiring, the bug check latch), code patched
/// deep inside a protected body, a borrowed change window, and a filter that tries to undo another through the API.
/// Each reflective attack is refused at load by the verifier in the protected flavor (AttackRefusalTests); started past
/// it, the guard catches it with the region type that names what changed; the compat flavor loads it and it works.
/// </summary>
public sealed class StateAttackTests
{
    private static string Eicar(AttackBed bed) =>
        bed.WriteFile("eicar.com", File.ReadAllText(Path.Combine(Repository.Root, "samples", "eicar.com")));

    [Theory]
    [InlineData("registration-tamper", "how=disable")]
    [InlineData("registration-tamper", "how=slot")]
    [InlineData("registration-tamper", "how=pointer")]
    [InlineData("registration-tamper", "how=scope")]
    [InlineData("window-borrow", null)]
    public void Tampering_with_the_antivirus_registration_is_caught_as_a_callback_object_change(string package, string? parameter)
    {
        using var bed = new AttackBed(KernelFlavor.Protected);
        bed.Load("drivers/out/antivirus");

        bed.Inject(package, parameter is null ? [] : [parameter]);
        Dictionary<string, long> sweeps = bed.SweepsNow();

        BugCheckReport report = bed.Sink.Wait();
        AttackTests.AssertCaught(bed, report, GuardRegionType.CallbackObject, "minifilters", package);
        TestGuard.AssertDetectedWithinBound(sweeps, report);
    }

    [Theory]
    [InlineData("kernel-wiring", (int)GuardRegionType.GenericData, "kernel wiring")]
    [InlineData("deep-detour", (int)GuardRegionType.KernelFunction, "FilterManager.PostOperation")]
    [InlineData("latch-forge", (int)GuardRegionType.GuardState, "bug check latch")]
    public void Tampering_with_kernel_state_or_deep_code_is_caught_with_its_region_type(string package, int type, string region)
    {
        using var bed = new AttackBed(KernelFlavor.Protected);

        bed.Inject(package);

        BugCheckReport report = bed.Sink.Wait();
        AttackTests.AssertCaught(bed, report, (GuardRegionType)type, region, package);
    }

    [Fact]
    public void A_deep_detour_is_located_where_it_was_written_not_at_the_entry()
    {
        using var bed = new AttackBed(KernelFlavor.Protected);

        bed.Inject("deep-detour", "offset=0x24A");

        BugCheckReport report = bed.Sink.Wait();
        ChangeSection body = Assert.Single(report.Dump.Changes, c => c.Key == "body");
        ulong entry = (ulong)((MethodCodeRegion)bed.Protection.Guard!.Regions.First(r => r?.Name == "Palisade.Kernel.Io.FilterManager.PostOperation")!).Location.Body;
        ulong at = CodeDecoder.ParseHex(body.Address);
        Assert.InRange(at, entry + 0x24A - 15, entry + 0x24A);

        // The dump decodes from the start of the instruction the change falls in; 0x24A need not be an instruction
        // boundary of this JIT's code, so what is decoded there is the mix of old and written bytes, not always the jmp.
        Assert.False(string.IsNullOrEmpty(body.Instruction), "the dump does not decode the changed instruction");
        Assert.NotEqual(body.Expected, body.Found);
    }

    [Theory]
    [InlineData("registration-tamper", "how=disable")]
    [InlineData("registration-tamper", "how=slot")]
    [InlineData("registration-tamper", "how=pointer")]
    [InlineData("registration-tamper", "how=scope")]
    [InlineData("window-borrow", null)]
    [InlineData("kernel-wiring", null)]
    public void The_compat_flavor_loads_the_state_attacks_and_they_let_the_test_virus_through(string package, string? parameter)
    {
        using var bed = new AttackBed(KernelFlavor.Compat);
        bed.Load("drivers/out/antivirus");
        string eicar = Eicar(bed);
        Assert.Equal(Status.AccessDenied, bed.Open(eicar));

        bed.Load(package, parameter is null ? [] : [parameter]);

        Assert.Equal(Status.Success, bed.Open(eicar));
    }

    [Fact]
    public void The_compat_flavor_loads_the_deep_detour()
    {
        using var bed = new AttackBed(KernelFlavor.Compat);

        Assert.Equal(Status.Success, bed.Load("deep-detour", out DriverObject? record));
        Assert.NotNull(record);
    }

    [Fact]
    public void The_latch_forgery_finds_no_guard_in_the_compat_flavor()
    {
        using var bed = new AttackBed(KernelFlavor.Compat);

        Assert.Equal(Status.NotFound, bed.Load("latch-forge", out DriverObject? _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_filter_above_the_antivirus_cannot_undo_its_verdict_through_the_api(bool compat)
    {
        using var bed = new AttackBed(compat ? KernelFlavor.Compat : KernelFlavor.Protected);
        bed.Load("drivers/out/antivirus");
        string eicar = Eicar(bed);
        string clean = bed.WriteFile("hello.txt", "hello");

        bed.Load("api-undo");

        Assert.Equal(Status.AccessDenied, bed.Open(eicar));
        Assert.Equal(Status.Success, bed.Open(clean));
        Assert.Equal(0, bed.Sink.Count);
    }
}
