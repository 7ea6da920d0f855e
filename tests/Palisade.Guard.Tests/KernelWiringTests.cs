using System.Reflection;
using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.Tests;

/// <summary>The guard as <c>palisade run</c> wires it (<see cref="KernelProtection"/>) catches tampering with the kernel's own structures.</summary>
public sealed class KernelWiringTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("palisade-wiring-").FullName;
    private readonly RecordingSink _sink = new();
    private readonly PalisadeKernel _kernel;
    private readonly KernelProtection _protection;

    public KernelWiringTests()
    {
        _kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, _home));
        _protection = KernelProtection.Start(_kernel, stopGuests: null, _sink,
            new GuardOptions { MinInterval = TimeSpan.FromMilliseconds(20), MaxInterval = TimeSpan.FromMilliseconds(80) });
    }

    public void Dispose()
    {
        _protection.Dispose();
        _kernel.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    private sealed class QuietDriver : IDriver
    {
        public Status Load(IDriverContext context) =>
            context.Processes.RegisterProcessCreate(static (in ProcessCreateInfo _) => Status.Success, out _);

        public void Unload()
        {
        }
    }

    [Fact]
    public void A_driver_unlinked_from_the_loaded_driver_list_is_caught_as_a_loaded_module_list_modification()
    {
        var hidden = new DriverObject("hidden", "rootkit", "1.0", "", "");
        Assert.Equal(Status.Success, _kernel.StartDriver(hidden, new QuietDriver(), new Dictionary<string, string>()));
        Assert.Equal(0, _sink.Count);

        // What a rootkit does: take itself out of the linked list, leaving the index (the other view) as it was.
        FieldInfo head = typeof(LoadedDriverList).GetField("Head", BindingFlags.Instance | BindingFlags.NonPublic)!;
        head.SetValue(_kernel.Drivers, hidden.Next);

        Assert.Equal((ulong)GuardRegionType.LoadedModuleList, _sink.Wait().Parameter4);
    }

    [Fact]
    public void A_process_create_callback_inserted_outside_the_api_is_caught_as_a_notification_callout_modification()
    {
        FieldInfo entries = _kernel.Processes.Create.GetType().GetField("_entries", BindingFlags.Instance | BindingFlags.NonPublic)!;
        var rogue = new Palisade.Kernel.Callbacks.CallbackRegistration<ProcessCreateCallback>(null, static (in ProcessCreateInfo _) => Status.AccessDenied);
        entries.SetValue(_kernel.Processes.Create, new[] { rogue });

        Assert.Equal((ulong)GuardRegionType.NotificationCallout, _sink.Wait().Parameter4);
    }

    [Fact]
    public void A_patched_pre_operation_of_the_filter_manager_is_caught_as_a_kernel_function_modification()
    {
        // The host's open path enters the kernel here, not through the service table.
        nint body = Palisade.Attacks.Rootkit.BodyOf(typeof(Palisade.Kernel.Io.FilterManager).GetMethod(nameof(Palisade.Kernel.Io.FilterManager.PreOperation))!);
        byte[] original = Palisade.Attacks.Rootkit.Write(body, [0xE9, 0, 0, 0, 0]);
        try
        {
            Palisade.Kernel.BugChecks.BugCheckReport report = _sink.Wait();
            Assert.Equal((ulong)GuardRegionType.KernelFunction, report.Parameter4);
            Assert.Contains("FilterManager.PreOperation", report.Dump.Region!.Name, StringComparison.Ordinal);
        }
        finally
        {
            Palisade.Attacks.Rootkit.Write(body, original);
        }
    }

    [Fact]
    public void Loading_and_unloading_drivers_through_the_kernel_is_not_a_corruption()
    {
        for (int i = 0; i < 20; i++)
        {
            var d = new DriverObject("legit" + i, "vendor", "1.0", "", "");
            Assert.Equal(Status.Success, _kernel.StartDriver(d, new QuietDriver(), new Dictionary<string, string>()));
            Assert.Equal(Status.Success, _kernel.StopDriver(d));
        }

        long before = _protection.Guard!.Contexts.Sum(c => c.Sweeps);
        Assert.True(SpinWait.SpinUntil(() => _protection.Guard.Contexts.Sum(c => c.Sweeps) > before + 10, TimeSpan.FromSeconds(30)),
            "the guard did not sweep ten times after the driver churn");
        Assert.Equal(0, _sink.Count);
    }
}
