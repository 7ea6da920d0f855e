using System.Collections.Concurrent;
using System.Text.Json;
using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Hosting;

namespace Palisade.Kernel.Tests;

/// <summary>
/// No silent disabling: a fault (a throw, an overrun, an unusable verdict) takes the registration's timeout verdict, is
/// written as a driver-fault event naming the driver, the registration and the operation, is told to the driver, and
/// disables the registration only as the driver's policy says. And the callback monitor blames the callback that took
/// the time.
/// </summary>
public sealed class FaultPolicyTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly MemoryStream _events = new();
    private readonly TestKernel _k;
    private readonly Requester _guest = new(4242, 4243);
    private readonly string _file;

    public FaultPolicyTests()
    {
        _k = new TestKernel(deadline: TimeSpan.FromMilliseconds(300), events: _events);
        _file = Path.Combine(_k.Home, "f.txt");
        File.WriteAllText(_file, "x");
    }

    public void Dispose()
    {
        _k.Dispose();
        _events.Dispose();
    }

    private static FilterRegistration Create(string name, string altitude, FilePreCallback pre) =>
        new() { Name = name, Altitude = altitude, Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = pre }] };

    private Status Open() => _k.Host.BeginOpen(_guest, new OpenRequest { RequestedPath = _file, Access = FileAccessRights.Read }, out _);

    private List<JsonElement> FaultLines()
    {
        // The stream's writer thread writes the lines: wait until every line offered so far is in the sink.
        _k.Kernel.Events.Flush();
        lock (_events)
        {
            return [.. System.Text.Encoding.UTF8.GetString(_events.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.GetProperty("type").GetString() == "driver-fault")];
        }
    }

    [Fact]
    public void A_throwing_pre_callback_whose_timeout_verdict_is_deny_denies_the_open()
    {
        _k.Start(c =>
        {
            c.Files.RegisterFilter(Create("boom", "320000", (ref FileOperation _) => throw new InvalidOperationException("bug")), out CallbackCookie f);
            return c.SetCallbackOptions(f, new CallbackOptions { TimeoutVerdict = TimeoutVerdict.Deny });
        });

        Assert.Equal(Status.AccessDenied, Open());
    }

    [Fact]
    public void The_fault_event_names_the_driver_the_registration_and_the_operation()
    {
        _k.Start(c => c.Files.RegisterFilter(Create("boom", "320000", (ref FileOperation _) => throw new InvalidOperationException("bug in driver")), out _), "faulty");

        Assert.Equal(Status.Success, Open());

        JsonElement fault = Assert.Single(FaultLines());
        Assert.Equal("faulty", fault.GetProperty("driver").GetString());
        Assert.Equal("minifilter boom at 320000", fault.GetProperty("registration").GetString());
        Assert.Equal("pre-create " + _file + " by process 4242", fault.GetProperty("operation").GetString());
        Assert.Equal("threw", fault.GetProperty("fault").GetString());
        Assert.Contains("bug in driver", fault.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(("allow", 1, false), (fault.GetProperty("verdict").GetString(), fault.GetProperty("consecutiveFaults").GetInt32(), fault.GetProperty("disabled").GetBoolean()));
    }

    [Fact]
    public void The_driver_is_told_of_each_fault_on_a_worker_thread()
    {
        var told = new BlockingCollection<(RegistrationFaultInfo Fault, int Thread)>();
        CallbackCookie filter = default;
        _k.Start(c =>
        {
            c.RegisterFaultCallback((in RegistrationFaultInfo f) => told.Add((f, Environment.CurrentManagedThreadId)), out _);
            return c.Files.RegisterFilter(Create("boom", "320000", (ref FileOperation _) => throw new InvalidOperationException("bug")), out filter);
        });

        Assert.Equal(Status.Success, Open());

        Assert.True(told.TryTake(out var t, Patience), "the fault callback was not called");
        Assert.Equal((filter, RegistrationFaultKind.Threw, TimeoutVerdict.Allow, 1), (t.Fault.Registration, t.Fault.Kind, t.Fault.AppliedVerdict, t.Fault.ConsecutiveFaults));
        Assert.Equal("pre-create " + _file + " by process 4242", t.Fault.Operation);
        Assert.NotEqual(Environment.CurrentManagedThreadId, t.Thread);
    }

    [Fact]
    public void A_registration_is_disabled_after_the_faults_in_a_row_its_policy_allows_and_enabled_again_by_its_driver()
    {
        int calls = 0;
        CallbackCookie filter = default;
        IDriverContext c = _k.Start(d =>
        {
            d.Files.RegisterFilter(Create("boom", "320000", (ref FileOperation _) =>
            {
                Interlocked.Increment(ref calls);
                throw new InvalidOperationException("bug");
            }), out filter);
            return d.SetCallbackOptions(filter, new CallbackOptions { DisableAfterFaults = 3 });
        });

        for (int i = 0; i < 5; i++)
        {
            Open();
        }

        Assert.Equal(3, calls);
        Assert.Equal([false, false, true], FaultLines().Select(f => f.GetProperty("disabled").GetBoolean()));
        Assert.Equal(Status.Success, c.EnableRegistration(filter));
        Open();
        Assert.Equal(4, calls);
    }

    [Fact]
    public void A_call_without_fault_starts_the_count_of_faults_in_a_row_again()
    {
        int calls = 0;
        IDriverContext c = _k.Start(d =>
        {
            d.Files.RegisterFilter(Create("every-other", "320000", (ref FileOperation _) =>
                Interlocked.Increment(ref calls) % 2 == 1 ? throw new InvalidOperationException("odd") : PreOperationStatus.SuccessNoCallback), out CallbackCookie f);
            return d.SetCallbackOptions(f, new CallbackOptions { DisableAfterFaults = 2 });
        });

        for (int i = 0; i < 6; i++)
        {
            Open();
        }

        Assert.Equal(6, calls);
        Assert.All(FaultLines(), f => Assert.Equal(1, f.GetProperty("consecutiveFaults").GetInt32()));
    }

    [Fact]
    public void A_driver_disables_and_enables_its_own_registration()
    {
        int calls = 0;
        CallbackCookie filter = default;
        IDriverContext c = _k.Start(d => d.Files.RegisterFilter(Create("f", "320000", (ref FileOperation _) =>
        {
            Interlocked.Increment(ref calls);
            return PreOperationStatus.SuccessNoCallback;
        }), out filter));

        Assert.Equal(Status.Success, c.DisableRegistration(filter));
        Open();
        Assert.Equal(Status.Success, c.EnableRegistration(filter));
        Open();

        Assert.Equal(1, calls);
        Assert.Equal(Status.InvalidHandle, c.EnableRegistration(new CallbackCookie(12345)));
    }

    [Fact]
    public void Callback_options_outside_the_documented_limits_are_InvalidParameter()
    {
        CallbackCookie filter = default, exit = default, sublayer = default;
        IDriverContext c = _k.Start(d =>
        {
            d.Files.RegisterFilter(Create("f", "320000", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out filter);
            d.Processes.RegisterProcessExit((in ProcessExitInfo _) => { }, out exit);
            return d.Network.AddSublayer("s", 1, out sublayer);
        });

        Assert.Equal(Status.InvalidParameter, c.SetCallbackOptions(filter, null!));
        Assert.Equal(Status.InvalidParameter, c.SetCallbackOptions(filter, new CallbackOptions { MaximumHoldTime = TimeSpan.FromMinutes(11) }));
        Assert.Equal(Status.InvalidParameter, c.SetCallbackOptions(filter, new CallbackOptions { MaximumHoldTime = TimeSpan.FromSeconds(-1) }));
        Assert.Equal(Status.InvalidParameter, c.SetCallbackOptions(filter, new CallbackOptions { DisableAfterFaults = 1001 }));
        Assert.Equal(Status.InvalidParameter, c.SetCallbackOptions(filter, new CallbackOptions { TimeoutVerdict = (TimeoutVerdict)7 }));
        Assert.Equal(Status.InvalidParameter, c.SetCallbackOptions(exit, new CallbackOptions { MaximumHoldTime = TimeSpan.FromSeconds(1) }));
        Assert.Equal(Status.Success, c.SetCallbackOptions(exit, new CallbackOptions { DisableAfterFaults = 1000 }));
        Assert.Equal(Status.Success, c.SetCallbackOptions(filter, new CallbackOptions { MaximumHoldTime = CallbackOptions.MaximumHoldTimeLimit }));
        Assert.Equal(Status.InvalidHandle, c.SetCallbackOptions(sublayer, CallbackOptions.Default));
    }

    [Fact]
    public void An_overrun_is_reported_while_the_callback_still_runs_and_its_late_verdict_gives_way_to_deny()
    {
        using var release = new ManualResetEventSlim(false);
        var told = new BlockingCollection<RegistrationFaultInfo>();
        _k.Start(c =>
        {
            c.RegisterFaultCallback((in RegistrationFaultInfo f) => told.Add(f), out _);
            c.Files.RegisterFilter(Create("slow", "320000", (ref FileOperation _) =>
            {
                release.Wait();
                return PreOperationStatus.SuccessNoCallback;
            }), out CallbackCookie f);
            return c.SetCallbackOptions(f, new CallbackOptions { TimeoutVerdict = TimeoutVerdict.Deny });
        });

        using var open = new BackgroundCall<Status>(Open);
        Assert.True(told.TryTake(out RegistrationFaultInfo fault, Patience), "the overrun was not told while the callback ran");
        Assert.False(open.IsCompleted);
        release.Set();

        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.AccessDenied, open.Result);
        Assert.Equal(RegistrationFaultKind.Overran, fault.Kind);
    }

    [Fact]
    public void A_quick_callback_whose_own_IO_meets_a_slow_filter_is_not_blamed_for_its_time()
    {
        using var release = new ManualResetEventSlim(false);
        IDriverContext slowDriver = _k.Start(c => c.Files.RegisterFilter(Create("slow", "100", (ref FileOperation op) =>
        {
            if (op.Path.EndsWith(".scan", StringComparison.Ordinal))
            {
                release.Wait();
            }

            return PreOperationStatus.SuccessNoCallback;
        }), out _), "slow-driver");
        string scanned = _file + ".scan";
        File.WriteAllText(scanned, "y");
        IDriverContext quick = null!;
        CallbackCookie quickFilter = default;
        quick = _k.Start(c => c.Files.RegisterFilter(Create("quick", "300", (ref FileOperation op) =>
        {
            if (!op.Path.EndsWith(".scan", StringComparison.Ordinal))
            {
                // Its own I/O goes to the filters below it: the slow one.
                quick.Files.OpenFile(quickFilter, scanned, FileAccess.Read, out Stream? s);
                s?.Dispose();
            }

            return PreOperationStatus.SuccessNoCallback;
        }), out quickFilter), "quick-driver");

        using var open = new BackgroundCall<Status>(Open);
        Assert.True(SpinWait.SpinUntil(() => FaultLines().Count > 0, Patience), "the overrun was not reported");
        release.Set();
        Assert.True(open.Wait(Patience));

        JsonElement fault = Assert.Single(FaultLines());
        Assert.Equal(("slow-driver", "minifilter slow at 100"), (fault.GetProperty("driver").GetString(), fault.GetProperty("registration").GetString()));
    }

    [Fact]
    public void An_outer_callback_that_is_slow_after_its_nested_call_returned_is_the_one_blamed()
    {
        using var release = new ManualResetEventSlim(false);
        _k.Start(c => c.Files.RegisterFilter(Create("below", "100", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out _), "below-driver");
        IDriverContext outer = null!;
        CallbackCookie outerFilter = default;
        outer = _k.Start(c => c.Files.RegisterFilter(Create("outer", "300", (ref FileOperation op) =>
        {
            outer.Files.OpenFile(outerFilter, _file, FileAccess.Read, out Stream? s);
            s?.Dispose();
            release.Wait();
            return PreOperationStatus.SuccessNoCallback;
        }), out outerFilter), "outer-driver");

        using var open = new BackgroundCall<Status>(Open);
        Assert.True(SpinWait.SpinUntil(() => FaultLines().Count > 0, Patience), "the overrun was not reported");
        release.Set();
        Assert.True(open.Wait(Patience));

        JsonElement fault = Assert.Single(FaultLines());
        Assert.Equal(("outer-driver", "minifilter outer at 300"), (fault.GetProperty("driver").GetString(), fault.GetProperty("registration").GetString()));
    }

    [Fact]
    public void The_monitor_declares_each_overrun_callback_once()
    {
        var blamed = new ConcurrentQueue<string>();
        using var monitor = new CallbackMonitor(TimeSpan.FromHours(1), (r, op, own) => blamed.Enqueue(r.Describe()));
        var registration = new CallbackRegistration<ProcessExitCallback>(null, (in ProcessExitInfo _) => { });
        CallbackMonitor.Frame frame = monitor.Current.TryEnter(registration, new OperationTag("process-exit", 1))!;

        monitor.Scan(Environment.TickCount64 + (2 * 3_600_000));
        monitor.Scan(Environment.TickCount64 + (3 * 3_600_000));

        Assert.False(monitor.Current.Exit(frame), "the declared overrun wins over the return");
        Assert.Single(blamed);
    }

    [Fact]
    public void A_callback_that_returns_in_time_is_never_declared()
    {
        var blamed = new ConcurrentQueue<string>();
        using var monitor = new CallbackMonitor(TimeSpan.FromHours(1), (r, op, own) => blamed.Enqueue(r.Describe()));
        var registration = new CallbackRegistration<ProcessExitCallback>(null, (in ProcessExitInfo _) => { });
        CallbackMonitor.Frame frame = monitor.Current.TryEnter(registration, new OperationTag("process-exit", 1))!;

        Assert.True(monitor.Current.Exit(frame));
        monitor.Scan(Environment.TickCount64 + (2 * 3_600_000));

        Assert.Empty(blamed);
    }

    [Fact]
    public void Work_items_run_in_the_order_queued_on_the_drivers_worker_threads()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        var ran = new BlockingCollection<int>();

        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(Status.Success, c.QueueWorkItem(state => ran.Add((int)state!), i));
        }

        var order = new List<int>();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(ran.TryTake(out int item, Patience));
            order.Add(item);
        }

        // Up to four run at once, so only the start order is promised; with one item at a time queued it is also the end order.
        Assert.Equal([0, 1, 2], order.Order());
        Assert.Equal(Status.InvalidParameter, c.QueueWorkItem(null!, null));
    }

    [Fact]
    public void A_work_item_that_throws_is_reported_and_the_next_one_runs()
    {
        IDriverContext c = _k.Start(_ => Status.Success, "worker");
        var faults = new ConcurrentQueue<string>();
        _k.Kernel.Events.DriverFault += (d, r) => faults.Enqueue(d + ": " + r);
        using var ran = new ManualResetEventSlim(false);

        c.QueueWorkItem(_ => throw new InvalidOperationException("item bug"), null);
        c.QueueWorkItem(_ => ran.Set(), null);

        Assert.True(ran.Wait(Patience));
        Assert.True(SpinWait.SpinUntil(() => !faults.IsEmpty, Patience));
        Assert.Contains(faults, f => f.StartsWith("worker: work item threw", StringComparison.Ordinal) && f.Contains("item bug", StringComparison.Ordinal));
    }

    [Fact]
    public void After_the_driver_unloaded_work_items_are_refused()
    {
        IDriverContext c = _k.Start(_ => Status.Success, out Palisade.Kernel.Drivers.DriverObject record);
        Assert.Equal(Status.Success, _k.Kernel.StopDriver(record));

        Assert.Equal(Status.InvalidDeviceState, c.QueueWorkItem(_ => { }, null));
        Assert.Equal(Status.InvalidDeviceState, c.RegisterFaultCallback((in RegistrationFaultInfo _) => { }, out _));
    }
}
