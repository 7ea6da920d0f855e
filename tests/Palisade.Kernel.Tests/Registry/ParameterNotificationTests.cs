// IDriverContext.Parameters follows the registry while the driver runs, and RegisterParametersChanged tells the driver
// of each change: after the registry callbacks allowed it, never before Load returned, one call at a time per driver.
using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Registry;

public sealed class ParameterNotificationTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(1);
    private static readonly string Key = RegistryClient.ParametersKey("watcher");
    private readonly string _home = Directory.CreateTempSubdirectory("palisade-params-").FullName;
    private readonly PalisadeKernel _kernel;
    private readonly RegistryClient _registry;

    public ParameterNotificationTests()
    {
        _kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, _home), RegistryManager.CreateVolatile());
        _registry = new RegistryClient(_kernel, processId: 0);
        Assert.Equal(Status.Success, _registry.CreateKey(Key, out _));
    }

    public void Dispose()
    {
        _kernel.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    private Status Set(string name, string value) =>
        _registry.SetValue(Key, name, RegistryValueType.String, RegistryClient.EncodeString(value));

    private IDriverContext Start(Func<IDriverContext, Status> load, string name = "watcher", Dictionary<string, string>? overrides = null)
    {
        var driver = new LambdaDriver(load);
        Assert.Equal(Status.Success, _kernel.StartDriver(new DriverObject(name, "tests", "1.0", "", ""), driver, overrides ?? []));
        return driver.Context!;
    }

    [Fact]
    public void A_registry_change_replaces_Parameters_and_the_callback_sees_the_old_and_new_values()
    {
        Assert.Equal(Status.Success, Set("mode", "audit"));
        var seen = new BlockingCollection<(ParametersChange Change, bool ContextUpToDate)>();
        IDriverContext? context = null;
        context = Start(c => c.RegisterParametersChanged((in ParametersChange change) =>
        {
            seen.Add((change, ReferenceEquals(context!.Parameters, change.Parameters)));
            return Status.Success;
        }, out _));
        Assert.Equal("audit", context.Parameters["mode"]);

        Assert.Equal(Status.Success, Set("mode", "enforce"));

        Assert.True(seen.TryTake(out var call, Patience), "the driver was not told of the change");
        Assert.Equal(["mode"], call.Change.ChangedNames);
        Assert.Equal("audit", call.Change.Previous["mode"]);
        Assert.Equal("enforce", call.Change.Parameters["mode"]);
        Assert.True(call.ContextUpToDate, "Parameters did not return the new values when the callback ran");
        Assert.Equal("enforce", context.Parameters["mode"]);
    }

    [Fact]
    public void A_change_the_registry_callbacks_block_never_reaches_the_driver()
    {
        Start(c => c.Registry.Register((ref RegistryNotification n) =>
            n.NotifyClass == RegistryNotifyClass.PreSetValue && n.ValueName == "locked" ? Status.AccessDenied : Status.Success, "320000", out _), "guard");
        var seen = new BlockingCollection<ParametersChange>();
        Start(c => c.RegisterParametersChanged((in ParametersChange change) =>
        {
            seen.Add(change);
            return Status.Success;
        }, out _));

        Assert.Equal(Status.AccessDenied, Set("locked", "1"));
        Assert.Equal(Status.Success, Set("free", "1"));

        Assert.True(seen.TryTake(out ParametersChange change, Patience), "the allowed change was not reported");
        Assert.Equal(["free"], change.ChangedNames);
        Assert.False(change.Parameters.ContainsKey("locked"));
    }

    [Fact]
    public void A_change_made_while_Load_runs_is_reported_once_Load_has_returned()
    {
        bool loaded = false;
        var seen = new BlockingCollection<(ParametersChange Change, bool AfterLoad)>();
        Start(c =>
        {
            Status s = c.RegisterParametersChanged((in ParametersChange change) =>
            {
                seen.Add((change, Volatile.Read(ref loaded)));
                return Status.Success;
            }, out _);
            Assert.Equal(Status.Success, Set("late", "yes"));
            Volatile.Write(ref loaded, true);
            return s;
        });

        Assert.True(seen.TryTake(out var call, Patience), "the change made during Load was not reported");
        Assert.True(call.AfterLoad);
        Assert.Equal(["late"], call.Change.ChangedNames);
    }

    [Fact]
    public void An_override_hides_registry_changes_of_its_name()
    {
        var seen = new BlockingCollection<ParametersChange>();
        IDriverContext context = Start(c => c.RegisterParametersChanged((in ParametersChange change) =>
        {
            seen.Add(change);
            return Status.Success;
        }, out _), overrides: new() { ["mode"] = "enforce" });

        Assert.Equal(Status.Success, Set("mode", "audit"));
        Assert.Equal(Status.Success, Set("level", "3"));

        Assert.True(seen.TryTake(out ParametersChange change, Patience));
        Assert.Equal(["level"], change.ChangedNames);
        Assert.Equal("enforce", context.Parameters["mode"]);
    }

    [Fact]
    public void An_unregistered_callback_is_not_called_and_the_others_are_called_in_registration_order()
    {
        var calls = new ConcurrentQueue<string>();
        using var done = new ManualResetEventSlim();
        Start(c =>
        {
            c.RegisterParametersChanged((in ParametersChange _) =>
            {
                calls.Enqueue("first");
                return Status.Success;
            }, out _);
            c.RegisterParametersChanged((in ParametersChange _) =>
            {
                calls.Enqueue("removed");
                return Status.Success;
            }, out CallbackCookie removed);
            c.RegisterParametersChanged((in ParametersChange _) =>
            {
                calls.Enqueue("last");
                done.Set();
                return Status.Success;
            }, out _);
            return c.UnregisterParametersChanged(removed);
        });

        Assert.Equal(Status.Success, Set("x", "1"));

        Assert.True(done.Wait(Patience), "the change was not reported");
        Assert.Equal(["first", "last"], calls);
    }

    [Fact]
    public void A_throwing_callback_is_contained_and_reported_as_a_driver_fault()
    {
        var faults = new BlockingCollection<string>();
        _kernel.Events.DriverFault += (driver, reason) => faults.Add(driver + ": " + reason);
        Start(c => c.RegisterParametersChanged((in ParametersChange _) => throw new InvalidOperationException("cannot apply"), out _));

        Assert.Equal(Status.Success, Set("x", "1"));

        Assert.True(faults.TryTake(out string? fault, Patience), "no fault was reported");
        Assert.Equal("watcher: parameters-changed callback threw InvalidOperationException: cannot apply", fault);
    }

    [Fact]
    public void Callbacks_of_one_driver_never_run_concurrently_and_the_last_change_is_seen()
    {
        const int changes = 200;
        int inside = 0;
        int overlaps = 0;
        using var last = new ManualResetEventSlim();
        Start(c => c.RegisterParametersChanged((in ParametersChange change) =>
        {
            if (Interlocked.Increment(ref inside) > 1)
            {
                Interlocked.Increment(ref overlaps);
            }

            Thread.SpinWait(1000);
            if (change.Parameters["n"] == (changes - 1).ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                last.Set();
            }

            Interlocked.Decrement(ref inside);
            return Status.Success;
        }, out _));

        Parallel.For(0, 4, w =>
        {
            for (int i = w; i < changes - 1; i += 4)
            {
                Assert.Equal(Status.Success, Set("n", i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        });
        Assert.Equal(Status.Success, Set("n", (changes - 1).ToString(System.Globalization.CultureInfo.InvariantCulture)));

        Assert.True(last.Wait(Patience), "the last value was never reported");
        Assert.Equal(0, overlaps);
    }

    [Fact]
    public void Registering_after_unload_is_refused_and_a_null_callback_is_invalid()
    {
        DriverObject record = new("late", "tests", "1.0", "", "");
        var driver = new LambdaDriver(_ => Status.Success);
        Assert.Equal(Status.Success, _kernel.StartDriver(record, driver, new Dictionary<string, string>()));
        IDriverContext context = driver.Context!;

        Assert.Equal(Status.InvalidParameter, context.RegisterParametersChanged(null!, out _));
        _kernel.StopDriver(record);

        Assert.Equal(Status.InvalidDeviceState, context.RegisterParametersChanged((in ParametersChange _) => Status.Success, out CallbackCookie cookie));
        Assert.Equal(Status.InvalidHandle, context.UnregisterParametersChanged(cookie));
    }
}
