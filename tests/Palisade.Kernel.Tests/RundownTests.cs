using System.Collections.Concurrent;
using System.Net;
using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests;

/// <summary>
/// Run-down protection: every Unregister* of the API returns only after the calls of the registration that had started
/// have returned (ExWaitForRundownProtectionRelease); no call starts once the removal began; a callback that removes
/// its own registration does not deadlock, and still waits for its calls on other threads.
/// </summary>
public sealed class RundownTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    // No deadline fault while a test holds a callback on purpose.
    private readonly TestKernel _k = new(deadline: TimeSpan.FromMinutes(5));
    private readonly ManualResetEventSlim _entered = new(false);
    private readonly ManualResetEventSlim _release = new(false);
    private readonly ConcurrentQueue<string> _order = new();

    public RundownTests()
    {
        foreach (int pid in new[] { 100, 200 })
        {
            var f = new ServiceFrame { Create = new ProcessCreateInfo { ProcessId = pid, ImagePath = "/bin/p" + pid, CommandLine = "" } };
            _k.Kernel.SystemCall(SystemService.CreateProcess, ref f);
        }
    }

    public void Dispose()
    {
        _release.Set();
        _k.Dispose();
        _entered.Dispose();
        _release.Dispose();
    }

    /// <summary>What a blocking callback does: says it entered, waits for the test, records that it returns.</summary>
    private void Block()
    {
        _entered.Set();
        Assert.True(_release.Wait(Patience), "the test never released the callback");
        _order.Enqueue("callback returns");
    }

    /// <summary>
    /// Runs <paramref name="trigger"/> on a thread of its own until the callback blocks in it, then unregisters on
    /// another thread and releases the callback once the removal is waiting: the removal must return after the callback.
    /// </summary>
    private void AssertUnregisterWaitsForTheCallback(Registration registration, Func<Status> trigger, Func<Status> unregister)
    {
        using var operation = new BackgroundCall<Status>(trigger);
        Assert.True(_entered.Wait(Patience), "the callback was not called");

        using var removal = new BackgroundCall<Status>(() =>
        {
            Status s = unregister();
            _order.Enqueue("unregister returns");
            return s;
        });
        Assert.True(SpinWait.SpinUntil(() => registration.IsRunningDown || removal.IsCompleted, Patience), "the removal did not begin");
        Assert.Equal(1, registration.CallsInFlight);

        _release.Set();
        Assert.True(removal.Wait(Patience), "the removal did not return after the callback did");
        Assert.True(operation.Wait(Patience), "the operation did not end");
        Assert.Equal(Status.Success, removal.Result);
        Assert.Equal(["callback returns", "unregister returns"], _order);
        Assert.Equal(0, registration.CallsInFlight);
    }

    private Status Exec(int pid)
    {
        var f = new ServiceFrame { ProcessId = pid, Create = new ProcessCreateInfo { ProcessId = pid, ParentProcessId = 1, ImagePath = "/bin/x", CommandLine = "x" } };
        return _k.Kernel.SystemCall(SystemService.CreateProcess, ref f);
    }

    private Status ExitProcess(int pid)
    {
        var f = new ServiceFrame { ProcessId = pid, TargetProcessId = pid };
        return _k.Kernel.SystemCall(SystemService.ExitProcess, ref f);
    }

    private Status OpenProcess(int requester, int target)
    {
        var f = new ServiceFrame { ProcessId = requester, TargetProcessId = target, DesiredAccess = ProcessAccessRights.Terminate };
        return _k.Kernel.SystemCall(SystemService.OpenProcess, ref f);
    }

    private Status Connect()
    {
        var f = new ServiceFrame
        {
            Network = new NetworkClassifyContext
            {
                Layer = NetworkLayer.ConnectV4,
                Protocol = NetworkProtocol.Tcp,
                RemoteAddress = IPAddress.Parse("192.0.2.1"),
                RemotePort = 80,
                ApplicationPath = "/usr/bin/curl",
                ProcessId = 100,
            },
        };
        return _k.Kernel.SystemCall(SystemService.NetworkClassify, ref f);
    }

    [Fact]
    public void Unregistering_a_process_create_callback_waits_for_the_call_that_is_running()
    {
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo _) =>
        {
            Block();
            return Status.Success;
        }, out cookie), out var driver);
        Registration r = _k.Kernel.Processes.Create.Find(cookie, driver)!;

        AssertUnregisterWaitsForTheCallback(r, () => Exec(300), () => c.Processes.Unregister(cookie));
    }

    [Fact]
    public void Unregistering_a_minifilter_waits_for_its_pre_callback_that_is_running()
    {
        string file = Path.Combine(_k.Home, "f.txt");
        File.WriteAllText(file, "x");
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "slow",
            Altitude = "320000",
            Operations = [new FileOperationRegistration
            {
                Kind = FileOperationKind.Create,
                PreOperation = (ref FileOperation _) =>
                {
                    Block();
                    return PreOperationStatus.SuccessNoCallback;
                },
            }],
        }, out cookie), out var driver);
        Registration r = _k.Kernel.Files.Filters.Find(cookie, driver)!;

        AssertUnregisterWaitsForTheCallback(r, () => _k.Open(file), () => c.Files.UnregisterFilter(cookie));
    }

    [Fact]
    public void Unregistering_an_object_callback_waits_for_its_pre_callback_that_is_running()
    {
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = "321000",
            PreOperation = (ref ObjectPreOperationInfo _) => Block(),
        }, out cookie), out var driver);
        Registration r = _k.Kernel.Objects.Callbacks.Find(cookie, driver)!;

        AssertUnregisterWaitsForTheCallback(r, () => OpenProcess(100, 200), () => c.Objects.Unregister(cookie));
    }

    [Fact]
    public void Unregistering_a_registry_callback_waits_for_the_call_that_is_running()
    {
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.Registry.Register((ref RegistryNotification _) =>
        {
            Block();
            return Status.Success;
        }, "320000", out cookie), out var driver);
        Registration r = _k.Kernel.RegistryCallbacks.Callbacks.Find(cookie, driver)!;
        var request = new RegistryRequest { Operation = RegistryOperation.QueryValue, KeyPath = @"\Registry\Machine\Software", ValueName = "v" };

        AssertUnregisterWaitsForTheCallback(r, () => _k.Kernel.RegistryCallbacks.Dispatch(100, request, _ => Status.Success, null),
            () => c.Registry.Unregister(cookie));
    }

    [Fact]
    public void Unregistering_a_callout_waits_for_its_classify_call_that_is_running()
    {
        CallbackCookie callout = default;
        CallbackCookie filter = default;
        IDriverContext c = _k.Start(c =>
        {
            c.Network.AddSublayer("s", 1, out CallbackCookie sub);
            c.Network.RegisterCallout("slow", (in NetworkClassifyContext _) =>
            {
                Block();
                return ClassifyResult.Continue;
            }, out callout);
            return c.Network.AddFilter(new NetworkFilter { Name = "inspect", Layer = NetworkLayer.ConnectV4, Sublayer = sub, Action = NetworkAction.Callout, Callout = callout }, out filter);
        }, out var driver);
        Registration r = _k.Kernel.Network.Callouts.Find(callout, driver)!;

        // The filter goes first (a callout in use cannot be unregistered); the classify in flight still runs the callout.
        AssertUnregisterWaitsForTheCallback(r, Connect, () =>
        {
            Assert.Equal(Status.Success, c.Network.DeleteFilter(filter));
            return c.Network.UnregisterCallout(callout);
        });
    }

    [Fact]
    public void Unloading_a_driver_waits_for_its_callback_that_is_running()
    {
        CallbackCookie cookie = default;
        _k.Start(c => c.Processes.RegisterProcessExit((in ProcessExitInfo _) => Block(), out cookie), out var driver);
        Registration r = _k.Kernel.Processes.Exit.Find(cookie, driver)!;

        AssertUnregisterWaitsForTheCallback(r, () => ExitProcess(100), () => _k.Kernel.StopDriver(driver));
    }

    [Fact]
    public void No_call_starts_once_the_removal_began()
    {
        CallbackCookie cookie = default;
        int calls = 0;
        IDriverContext c = _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo i) =>
        {
            Interlocked.Increment(ref calls);
            if (i.ProcessId == 300)
            {
                Block();
            }

            return Status.Success;
        }, out cookie), out var driver);
        Registration r = _k.Kernel.Processes.Create.Find(cookie, driver)!;
        using var first = new BackgroundCall<Status>(() => Exec(300));
        Assert.True(_entered.Wait(Patience), "the callback was not called");
        using var removal = new BackgroundCall<Status>(() => c.Processes.Unregister(cookie));
        Assert.True(SpinWait.SpinUntil(() => r.IsRunningDown, Patience), "the removal did not begin");

        // The table no longer lists it, and a dispatcher that read the table before the removal skips it too.
        Assert.Equal(Status.Success, Exec(301));
        Assert.False(r.TryAcquireRundown());
        Assert.Equal(1, Volatile.Read(ref calls));

        _release.Set();
        Assert.True(removal.Wait(Patience), "the removal did not return");
        Assert.True(first.Wait(Patience), "the first creation did not end");
    }

    [Fact]
    public void A_callback_that_unregisters_itself_does_not_deadlock_and_is_not_called_again()
    {
        CallbackCookie cookie = default;
        IDriverContext? context = null;
        var statuses = new List<Status>();
        context = _k.Start(c => c.Processes.RegisterProcessExit((in ProcessExitInfo _) =>
        {
            statuses.Add(context!.Processes.Unregister(cookie));
            _order.Enqueue("unregister returns");
        }, out cookie));

        using var exit = new BackgroundCall<Status>(() => ExitProcess(100));
        Assert.True(exit.Wait(Patience), "the callback that unregistered itself deadlocked");
        Assert.Equal(Status.Success, ExitProcess(200));

        Assert.Equal([Status.Success], statuses);
        Assert.Equal(Status.InvalidHandle, context.Processes.Unregister(cookie));
    }

    [Fact]
    public void A_callback_that_unregisters_itself_waits_for_its_calls_on_other_threads()
    {
        CallbackCookie cookie = default;
        IDriverContext? context = null;
        context = _k.Start(c => c.Processes.RegisterProcessExit((in ProcessExitInfo i) =>
        {
            if (i.ProcessId == 100)
            {
                Block();
                return;
            }

            Status s = context!.Processes.Unregister(cookie);
            _order.Enqueue("unregister returns " + s.Name);
        }, out cookie), out var driver);
        Registration r = _k.Kernel.Processes.Exit.Find(cookie, driver)!;
        using var other = new BackgroundCall<Status>(() => ExitProcess(100));
        Assert.True(_entered.Wait(Patience), "the callback was not called");

        using var self = new BackgroundCall<Status>(() => ExitProcess(200));
        Assert.True(SpinWait.SpinUntil(() => r.IsRunningDown || self.IsCompleted, Patience), "the removal did not begin");
        _release.Set();

        Assert.True(self.Wait(Patience), "the callback that unregistered itself did not return");
        Assert.True(other.Wait(Patience), "the other call did not return");
        Assert.Equal(["callback returns", "unregister returns Success"], _order);
    }

    [Fact]
    public void Unregistering_a_fault_callback_waits_for_its_delivery_that_is_running()
    {
        CallbackCookie faults = default;
        IDriverContext c = _k.Start(c =>
        {
            c.RegisterFaultCallback((in RegistrationFaultInfo _) => Block(), out faults);
            return c.Processes.RegisterProcessExit((in ProcessExitInfo _) => throw new InvalidOperationException("bug"), out _);
        });

        Assert.Equal(Status.Success, ExitProcess(100));
        Assert.True(_entered.Wait(Patience), "the fault callback was not called");
        Registration subscription = ((Palisade.Kernel.Drivers.DriverContext)c).FindFaultSubscription(faults)!;
        using var removal = new BackgroundCall<Status>(() =>
        {
            Status s = c.UnregisterFaultCallback(faults);
            _order.Enqueue("unregister returns");
            return s;
        });
        Assert.True(SpinWait.SpinUntil(() => subscription.IsRunningDown || removal.IsCompleted, Patience), "the removal did not begin");
        _release.Set();

        Assert.True(removal.Wait(Patience), "the removal did not return");
        Assert.Equal(Status.Success, removal.Result);
        Assert.Equal(["callback returns", "unregister returns"], _order);
    }
}
