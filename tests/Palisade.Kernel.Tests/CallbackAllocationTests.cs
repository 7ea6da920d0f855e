using Palisade.Api;

namespace Palisade.Kernel.Tests;

/// <summary>The callback chain allocates nothing per call, run-down protection included (one compare-and-swap in, one add out).</summary>
public sealed class CallbackAllocationTests : IDisposable
{
    private readonly TestKernel _k = new();

    public void Dispose() => _k.Dispose();

    [Fact]
    public void Calling_a_notification_callback_allocates_nothing()
    {
        int calls = 0;
        _k.Start(c => c.Processes.RegisterProcessExit((in ProcessExitInfo _) => calls++, out _));
        var info = new ProcessExitInfo { ProcessId = 42, ProcessStartKey = 7 };
        for (int i = 0; i < 16; i++)
        {
            _k.Kernel.Processes.NotifyExit(in info);
        }

        long allocated = Allocations.SteadyState(() => _k.Kernel.Processes.NotifyExit(in info), iterations: 1000);
        Assert.Equal(0, allocated);
        // Every exit reached the driver's callback, in each round run (16 warming calls, then 1,000 per round).
        Assert.True(calls > 16 && (calls - 16) % 1000 == 0, calls + " calls");
    }
}
