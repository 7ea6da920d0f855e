using Palisade.Api;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Hosting;

namespace Palisade.Kernel.Tests;

/// <summary>The hosting surface: every request enters through the service table, and the guard protects what the table points to.</summary>
public sealed class HostingTests : IDisposable
{
    private readonly TestKernel _k = new();
    private readonly Requester _requester = new(4242, 4243) { UserId = 1000 };

    public void Dispose() => _k.Dispose();

    private static FilterRegistration CreateFilter(FilePreCallback pre, FilePostCallback? post = null) =>
        new() { Name = "f", Altitude = "320000", Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = pre, PostOperation = post }] };

    [Fact]
    public void Every_service_the_table_points_to_is_protected_code()
    {
        var protectedEntries = SystemServices.ProtectedMethods().Select(m => m.MethodHandle.GetFunctionPointer()).ToHashSet();

        Assert.All(Enum.GetValues<SystemService>(), s => Assert.Contains(_k.Kernel.ServiceTable.EntryOf(s), protectedEntries));
    }

    [Fact]
    public void An_open_is_decided_by_the_pre_callback_and_completed_by_the_post_callback_with_the_opened_file()
    {
        var seen = new List<string>();
        _k.Start(c => c.Files.RegisterFilter(CreateFilter(
            (ref FileOperation op) => { seen.Add("pre " + op.Path + " uid " + op.UserId); return PreOperationStatus.SuccessWithCallback; },
            (ref FileOperation op) => seen.Add("post " + op.File)), out _));

        Status begun = _k.Host.BeginOpen(_requester, new OpenRequest { RequestedPath = "/etc/hostname", Access = FileAccessRights.Read }, out bool completionNeeded);
        Status completed = _k.Host.CompleteOpen(_requester, new OpenCompletion { File = new FileIdentity(8, 9), Descriptor = -1 });

        Assert.Equal((Status.Success, true, Status.Success), (begun, completionNeeded, completed));
        Assert.Equal(["pre /etc/hostname uid 1000", "post " + new FileIdentity(8, 9)], seen);
    }

    [Fact]
    public void The_two_halves_of_an_open_are_one_CreateFile_call_in_the_crash_dumps_ring()
    {
        // The compat flavor records calls for dumps like the protected one, without a guard thread in this test host.
        string home = Directory.CreateTempSubdirectory("palisade-hosting-").FullName;
        using var kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Compat, home));
        using KernelProtection protection = KernelProtection.Start(kernel, stopGuests: null, sink: new NoStop());
        var driver = new LambdaDriver(c => c.Files.RegisterFilter(CreateFilter((ref FileOperation _) => PreOperationStatus.SuccessWithCallback, (ref FileOperation _) => { }), out _));
        Assert.Equal(Status.Success, kernel.StartDriver(new Palisade.Kernel.Drivers.DriverObject("ring", "tests", "1.0", "", ""), driver, new Dictionary<string, string>()));

        kernel.Host.BeginOpen(_requester, new OpenRequest { RequestedPath = "/etc/hostname", OpenFlags = 0x80000 }, out _);
        kernel.Host.CompleteOpen(_requester, new OpenCompletion { File = new FileIdentity(8, 9), Descriptor = -1 });

        var calls = protection.BugCheck.Syscalls.Snapshot().Where(c => c.Pid == _requester.ProcessId).Select(c => (c.Number, c.Arg1));
        Assert.Equal([((int)SystemService.CreateFile, 0x80000L)], calls);
        Directory.Delete(home, recursive: true);
    }

    /// <summary>A bug check sink for a test that raises none.</summary>
    private sealed class NoStop : BugChecks.IBugCheckSink
    {
        public void Stop(BugChecks.BugCheckReport report) => Assert.Fail("unexpected bug check " + report);
    }

    [Fact]
    public void A_completion_without_a_begun_open_changes_nothing()
    {
        Assert.Equal(Status.Success, _k.Host.CompleteOpen(_requester, new OpenCompletion { File = new FileIdentity(1, 2), Descriptor = -1 }));
    }

    [Fact]
    public void A_path_operation_completion_without_its_beginning_is_InvalidDeviceState()
    {
        Assert.Equal(Status.InvalidDeviceState, _k.Host.CompletePathOperation(_requester, Status.Success));
    }

    [Fact]
    public void Attaching_a_process_the_kernel_knows_is_ObjectNameCollision()
    {
        Assert.Equal(Status.Success, _k.Host.AttachProcess(77, 1, 0, "/usr/bin/sleep"));

        Assert.Equal(Status.ObjectNameCollision, _k.Host.AttachProcess(77, 1, 0, "/usr/bin/sleep"));
    }

    [Fact]
    public void A_process_end_reported_after_the_kernel_shut_down_is_InvalidDeviceState_not_a_crash()
    {
        Assert.Equal(Status.Success, _k.Host.AttachProcess(78, 1, 0, "/usr/bin/sleep"));
        _k.Kernel.Dispose();

        Assert.Equal(Status.InvalidDeviceState, _k.Host.ProcessExited(78, 0, 9));
    }
}
