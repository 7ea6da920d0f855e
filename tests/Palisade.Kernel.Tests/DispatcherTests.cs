using Palisade.Api;
using Palisade.Kernel.Dispatch;

namespace Palisade.Kernel.Tests;

public sealed class DispatcherTests
{
    [Fact]
    public void Service_slots_are_drawn_anew_at_every_boot()
    {
        var layouts = new HashSet<string>();
        for (int i = 0; i < 3; i++)
        {
            using var k = new TestKernel();
            layouts.Add(string.Join(',', Enum.GetValues<SystemService>().Select(s => k.Kernel.ServiceTable.SlotOf(s))));
        }

        Assert.True(layouts.Count > 1, "three boots with 25 services should not all draw the same layout");
    }

    [Fact]
    public void Every_service_slot_holds_its_services_entry()
    {
        using var k = new TestKernel();
        foreach (SystemService s in Enum.GetValues<SystemService>())
        {
            Assert.Equal(SystemServices.Address(s), k.Kernel.ServiceTable.EntryOf(s));
        }
    }

    [Fact]
    public void An_unknown_service_number_returns_InvalidParameter()
    {
        using var k = new TestKernel();
        var f = new ServiceFrame();
        Assert.Equal(Status.InvalidParameter, k.Kernel.SystemCall((SystemService)999, ref f));
    }

    [Fact]
    public void A_file_service_without_a_path_returns_InvalidParameter()
    {
        using var k = new TestKernel();
        var f = new ServiceFrame { FilePerformer = new Io.KernelFileSystem() };
        Assert.Equal(Status.InvalidParameter, k.Kernel.SystemCall(SystemService.CreateFile, ref f));
    }
}
