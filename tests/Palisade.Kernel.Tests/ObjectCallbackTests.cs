using Palisade.Api;
using Palisade.Kernel.Dispatch;

namespace Palisade.Kernel.Tests;

public sealed class ObjectCallbackTests : IDisposable
{
    private readonly TestKernel _k = new();

    public ObjectCallbackTests()
    {
        foreach (int pid in new[] { 100, 200 })
        {
            var f = new ServiceFrame { Create = new ProcessCreateInfo { ProcessId = pid, ImagePath = "/bin/p" + pid, CommandLine = "" } };
            _k.Kernel.SystemCall(SystemService.CreateProcess, ref f);
        }
    }

    public void Dispose() => _k.Dispose();

    private Status OpenProcess(int requester, int target, ProcessAccessRights desired, out ServiceFrame f, bool keep = false)
    {
        f = new ServiceFrame { ProcessId = requester, TargetProcessId = target, DesiredAccess = desired, KeepHandle = keep };
        return _k.Kernel.SystemCall(SystemService.OpenProcess, ref f);
    }

    private static ObjectPreCallback StripTerminateFor(int protectedPid) => (ref ObjectPreOperationInfo i) =>
    {
        if (i.TargetProcessId == protectedPid)
        {
            i.DesiredAccess &= ~ProcessAccessRights.Terminate;
        }
    };

    [Fact]
    public void A_pre_callback_that_strips_terminate_makes_the_kill_handle_fail()
    {
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration { Altitude = "321000", PreOperation = StripTerminateFor(200) }, out _));
        Assert.Equal(Status.AccessDenied, OpenProcess(100, 200, ProcessAccessRights.Terminate, out ServiceFrame f));
        Assert.Equal(ProcessAccessRights.None, f.GrantedAccess);
        Assert.Equal(Status.Success, OpenProcess(200, 100, ProcessAccessRights.Terminate, out _));
    }

    [Fact]
    public void Rights_a_callback_adds_are_ignored_and_reported()
    {
        string? fault = null;
        _k.Kernel.Events.DriverFault += (d, r) => fault = r;
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = "1",
            PreOperation = (ref ObjectPreOperationInfo i) => i.DesiredAccess |= ProcessAccessRights.AllAccess,
        }, out _));
        Assert.Equal(Status.Success, OpenProcess(100, 200, ProcessAccessRights.VmRead, out ServiceFrame f));
        Assert.Equal(ProcessAccessRights.VmRead, f.GrantedAccess);
        Assert.Contains("add access rights", fault, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pre_callback_cannot_show_the_callbacks_below_it_another_target()
    {
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration { Altitude = "321000", PreOperation = StripTerminateFor(200) }, out _));
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = "400000",
            PreOperation = (ref ObjectPreOperationInfo i) => i = i with { TargetProcessId = 100 },
        }, out _));

        Assert.Equal(Status.AccessDenied, OpenProcess(100, 200, ProcessAccessRights.Terminate, out _));
    }

    [Fact]
    public void Kernel_handles_are_marked_and_not_stripped()
    {
        bool? marked = null;
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = "1",
            PreOperation = (ref ObjectPreOperationInfo i) =>
            {
                marked = i.KernelHandle;
                i.DesiredAccess = ProcessAccessRights.None;
            },
        }, out _));
        Assert.Equal(Status.Success, OpenProcess(0, 200, ProcessAccessRights.Terminate, out ServiceFrame f));
        Assert.True(marked);
        Assert.Equal(ProcessAccessRights.Terminate, f.GrantedAccess);
    }

    [Fact]
    public void Pre_callbacks_go_down_by_altitude_and_post_callbacks_see_the_granted_access()
    {
        var order = new List<string>();
        ProcessAccessRights postSaw = ProcessAccessRights.None;
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = "100",
            PreOperation = (ref ObjectPreOperationInfo i) => { order.Add("low sees " + i.DesiredAccess); },
            PostOperation = (in ObjectPostOperationInfo i) => { order.Add("low post"); postSaw = i.GrantedAccess; },
        }, out _));
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = "200",
            PreOperation = (ref ObjectPreOperationInfo i) => { order.Add("high"); i.DesiredAccess &= ~ProcessAccessRights.VmWrite; },
            PostOperation = (in ObjectPostOperationInfo _) => order.Add("high post"),
        }, out _));
        OpenProcess(100, 200, ProcessAccessRights.VmRead | ProcessAccessRights.VmWrite, out _);
        Assert.Equal(["high", "low sees VmRead", "low post", "high post"], order);
        Assert.Equal(ProcessAccessRights.VmRead, postSaw);
    }

    [Fact]
    public void A_kept_handle_lands_in_the_requesters_handle_table_with_its_granted_access()
    {
        Assert.Equal(Status.Success, OpenProcess(100, 200, ProcessAccessRights.Synchronize, out ServiceFrame f, keep: true));
        Assert.NotEqual(0, f.Handle);
        Processes.GuestProcess requester = _k.Kernel.ProcessTable.Find(100)!;
        Assert.True(requester.Handles.TryGet(f.Handle, out Objects.HandleEntry e));
        Assert.Equal(ProcessAccessRights.Synchronize, e.GrantedAccess);
        Assert.Equal(Status.Success, _k.Kernel.Objects.CloseHandle(requester, f.Handle));
        Assert.Equal(Status.InvalidHandle, _k.Kernel.Objects.CloseHandle(requester, f.Handle));
    }

    [Fact]
    public void Registration_errors_are_statuses()
    {
        IDriverContext c = _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration { Altitude = "5", PreOperation = StripTerminateFor(1) }, out _));
        Assert.Equal(Status.AltitudeCollision, c.Objects.Register(new ObjectCallbackRegistration { Altitude = "5", PreOperation = StripTerminateFor(1) }, out _));
        Assert.Equal(Status.InvalidParameter, c.Objects.Register(new ObjectCallbackRegistration { Altitude = "6" }, out _));
        Assert.Equal(Status.InvalidParameter, c.Objects.Register(new ObjectCallbackRegistration { Altitude = "6", ObjectTypes = ObjectTypes.None, PreOperation = StripTerminateFor(1) }, out _));
        Assert.Equal(Status.InvalidAltitude, c.Objects.Register(new ObjectCallbackRegistration { Altitude = "x", PreOperation = StripTerminateFor(1) }, out _));
        Assert.Equal(Status.InvalidParameter, c.Objects.Register(null!, out _));
    }

    [Fact]
    public void Opening_an_unknown_process_is_InvalidParameter()
    {
        Assert.Equal(Status.InvalidParameter, OpenProcess(100, 999_999, ProcessAccessRights.Terminate, out _));
    }
}
