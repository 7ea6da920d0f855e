using System.Text;
using Palisade.Api;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Mediation;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>The kernel mediator as a whole: what it subscribes to, and where its faults go.</summary>
public sealed class KernelMediatorTests : IDisposable
{
    private readonly MemoryStream _events = new();
    private readonly TestKernel _k;

    public KernelMediatorTests() => _k = new TestKernel(events: _events);

    public void Dispose() => _k.Dispose();

    [Fact]
    public void With_no_registration_only_the_kernel_boundary_is_mediated()
    {
        Assert.Equal(SyscallFamilies.KernelBoundary, new KernelMediator(_k.Host).Subscriptions);
    }

    [LastCloseFact]
    public void A_cleanup_minifilter_subscribes_opens_whose_descriptions_the_supervisor_watches_not_closes()
    {
        _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "cleanup",
            Altitude = "320000",
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Cleanup, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback }],
        }, out _));

        var mediator = new KernelMediator(_k.Host);
        Assert.Equal((SyscallFamilies.FileOpen | SyscallFamilies.KernelBoundary, true), (mediator.Subscriptions, mediator.LastCloses is not null));
    }

    [Fact]
    public void A_fault_of_a_decision_is_written_to_the_kernels_event_stream()
    {
        new KernelMediator(_k.Host).ReportFault(new InvalidOperationException("decoder broke"));
        _k.Dispose(); // the event stream's writer thread writes every line before the kernel ends

        string events = Encoding.UTF8.GetString(_events.ToArray());
        Assert.Contains("\"kind\":\"host-fault\"", events, StringComparison.Ordinal);
        Assert.Contains("InvalidOperationException: decoder broke", events, StringComparison.Ordinal);
    }
}
