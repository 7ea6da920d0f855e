using Palisade.Api;
using Palisade.Kernel.Dispatch;

namespace Palisade.Kernel.Tests;

public sealed class ProcessCallbackTests : IDisposable
{
    private readonly TestKernel _k = new();

    public void Dispose() => _k.Dispose();

    private Status Exec(int pid, string image)
    {
        var f = new ServiceFrame
        {
            ProcessId = pid,
            Create = new ProcessCreateInfo { ProcessId = pid, ParentProcessId = 1, CreatorProcessId = pid, ImagePath = image, CommandLine = image },
        };
        return _k.Kernel.SystemCall(SystemService.CreateProcess, ref f);
    }

    [Fact]
    public void Deny_from_a_process_create_callback_fails_the_creation_with_its_status()
    {
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo i) => i.ImagePath == "/bin/evil" ? Status.AccessDenied : Status.Success, out _));
        Assert.Equal(Status.AccessDenied, Exec(10, "/bin/evil"));
        Assert.Equal(Status.Success, Exec(11, "/bin/good"));
        Assert.Null(_k.Kernel.ProcessTable.Find(10));
        Assert.NotNull(_k.Kernel.ProcessTable.Find(11));
    }

    [Fact]
    public void The_first_error_wins_and_later_callbacks_see_it_in_CreationStatus()
    {
        Status seenByLater = Status.Success;
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo _) => Status.AccessDenied, out _));
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo _) => Status.NotSupported, out _));
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo i) => { seenByLater = i.CreationStatus; return Status.Success; }, out _));
        Assert.Equal(Status.AccessDenied, Exec(10, "/bin/x"));
        Assert.Equal(Status.AccessDenied, seenByLater);
    }

    [Fact]
    public void Image_load_follows_an_allowed_creation()
    {
        string? loaded = null;
        ImageLoadKind kind = ImageLoadKind.Mapping;
        _k.Start(c => c.Processes.RegisterImageLoad((in ImageLoadInfo i) => { loaded = i.ImagePath; kind = i.Kind; return Status.Success; }, out _));
        Exec(12, "/usr/bin/true");
        Assert.Equal("/usr/bin/true", loaded);
        Assert.Equal(ImageLoadKind.Executable, kind);
    }

    [Fact]
    public void An_image_load_denial_of_an_exec_interpreter_fails_the_creation_and_the_process_keeps_no_image()
    {
        var seen = new List<ImageLoadKind>();
        _k.Start(c => c.Processes.RegisterImageLoad((in ImageLoadInfo i) =>
        {
            seen.Add(i.Kind);
            return i.ImagePath == "/evil/interpreter" ? Status.AccessDenied : Status.Success;
        }, out _));
        var f = new ServiceFrame
        {
            ProcessId = 13,
            Create = new ProcessCreateInfo { ProcessId = 13, ParentProcessId = 1, CreatorProcessId = 13, ImagePath = "/w/script", CommandLine = "/w/script" },
            Images =
            [
                new ImageLoadInfo { ProcessId = 13, ImagePath = "/w/script", Kind = ImageLoadKind.Script },
                new ImageLoadInfo { ProcessId = 13, ImagePath = "/evil/interpreter", Kind = ImageLoadKind.ScriptInterpreter },
                new ImageLoadInfo { ProcessId = 13, ImagePath = "/lib/ld.so", Kind = ImageLoadKind.ElfInterpreter },
            ],
        };

        Assert.Equal(Status.AccessDenied, _k.Kernel.SystemCall(SystemService.CreateProcess, ref f));
        Assert.Equal([ImageLoadKind.Script, ImageLoadKind.ScriptInterpreter], seen);
        Assert.Null(_k.Kernel.ProcessTable.Find(13));
    }

    [Fact]
    public void A_mapping_denied_by_an_image_load_callback_gets_its_status_and_later_callbacks_still_run()
    {
        int later = 0;
        _k.Start(c => c.Processes.RegisterImageLoad((in ImageLoadInfo i) => i.Kind == ImageLoadKind.Mapping ? Status.AccessDenied : Status.Success, out _));
        _k.Start(c => c.Processes.RegisterImageLoad((in ImageLoadInfo _) => { later++; return Status.Success; }, out _));
        var f = new ServiceFrame
        {
            ProcessId = 14,
            Image = new ImageLoadInfo { ProcessId = 14, ImagePath = "/w/libx.so", Kind = ImageLoadKind.Mapping, FileType = FileObjectType.Regular },
        };

        Assert.Equal(Status.AccessDenied, _k.Kernel.SystemCall(SystemService.LoadImage, ref f));
        Assert.Equal(1, later);
    }

    [Fact]
    public void An_image_load_callback_that_throws_takes_its_timeout_verdict()
    {
        _k.Start(c =>
        {
            Status s = c.Processes.RegisterImageLoad((in ImageLoadInfo _) => throw new InvalidOperationException("driver bug"), out CallbackCookie cookie);
            return s.IsError ? s : c.SetCallbackOptions(cookie, new CallbackOptions { TimeoutVerdict = TimeoutVerdict.Deny });
        });
        var f = new ServiceFrame { ProcessId = 15, Image = new ImageLoadInfo { ProcessId = 15, ImagePath = "/w/liby.so", Kind = ImageLoadKind.Mapping } };

        Assert.Equal(Status.AccessDenied, _k.Kernel.SystemCall(SystemService.LoadImage, ref f));
    }

    [Fact]
    public void Exit_and_thread_callbacks_see_the_process_and_its_threads()
    {
        var seen = new List<string>();
        _k.Start(c =>
        {
            c.Processes.RegisterProcessExit((in ProcessExitInfo i) => seen.Add("exit " + i.ProcessId + " " + i.ExitCode), out _);
            c.Processes.RegisterThreadCreate((in ThreadInfo i) => seen.Add("thread+ " + i.ThreadId), out _);
            return c.Processes.RegisterThreadExit((in ThreadInfo i) => seen.Add("thread- " + i.ThreadId), out _);
        });
        Exec(20, "/bin/sh");
        var f = new ServiceFrame { ProcessId = 20, TargetProcessId = 20, TargetThreadId = 21 };
        _k.Kernel.SystemCall(SystemService.CreateThread, ref f);
        _k.Kernel.SystemCall(SystemService.ExitThread, ref f);
        f.ExitCode = 3;
        _k.Kernel.SystemCall(SystemService.ExitProcess, ref f);
        Assert.Equal(["thread+ 21", "thread- 21", "thread- 20", "exit 20 3"], seen);
        Assert.Equal(Status.InvalidHandle, _k.Kernel.SystemCall(SystemService.ExitProcess, ref f));
    }

    [Fact]
    public void The_sixty_fifth_process_create_callback_gets_TooManyRegistrations()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        for (int i = 0; i < 64; i++)
        {
            Assert.Equal(Status.Success, c.Processes.RegisterProcessCreate((in ProcessCreateInfo _) => Status.Success, out _));
        }

        Assert.Equal(Status.TooManyRegistrations, c.Processes.RegisterProcessCreate((in ProcessCreateInfo _) => Status.Success, out CallbackCookie cookie));
        Assert.Equal(default, cookie);
    }

    [Fact]
    public void A_null_callback_returns_InvalidParameter()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        Assert.Equal(Status.InvalidParameter, c.Processes.RegisterProcessCreate(null!, out _));
        Assert.Equal(Status.InvalidParameter, c.Processes.RegisterImageLoad(null!, out _));
    }

    [Fact]
    public void Unregister_stops_the_callback_and_a_second_unregister_is_InvalidHandle()
    {
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo _) => Status.AccessDenied, out cookie));
        Assert.Equal(Status.AccessDenied, Exec(30, "/bin/a"));
        Assert.Equal(Status.Success, c.Processes.Unregister(cookie));
        Assert.Equal(Status.Success, Exec(31, "/bin/a"));
        Assert.Equal(Status.InvalidHandle, c.Processes.Unregister(cookie));
    }

    [Fact]
    public void A_driver_cannot_unregister_another_drivers_callback()
    {
        CallbackCookie cookie = default;
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo _) => Status.Success, out cookie));
        IDriverContext other = _k.Start(_ => Status.Success);
        Assert.Equal(Status.InvalidHandle, other.Processes.Unregister(cookie));
    }

    [Fact]
    public void A_throwing_process_create_callback_is_contained_and_allows()
    {
        string? faulted = null;
        _k.Kernel.Events.DriverFault += (d, _) => faulted = d;
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo _) => throw new InvalidOperationException("x"), out _), name: "thrower");
        Assert.Equal(Status.Success, Exec(40, "/bin/a"));
        Assert.Equal("thrower", faulted);
    }

    [Fact]
    public void A_driver_whose_Load_fails_is_unloaded_with_everything_it_registered()
    {
        var driver = new LambdaDriver(c =>
        {
            c.Processes.RegisterProcessCreate((in ProcessCreateInfo _) => Status.AccessDenied, out _);
            return Status.InsufficientResources;
        });
        var record = new Palisade.Kernel.Drivers.DriverObject("failing", "tests", "1.0", "", "");
        Assert.Equal(Status.InsufficientResources, _k.Kernel.StartDriver(record, driver, new Dictionary<string, string>()));
        Assert.Equal(0, _k.Kernel.Processes.Create.Count);
        Assert.Null(_k.Kernel.Drivers.Find("failing"));
    }

    [Fact]
    public void A_driver_whose_Load_throws_is_contained()
    {
        var record = new Palisade.Kernel.Drivers.DriverObject("throwing", "tests", "1.0", "", "");
        Assert.Equal(Status.CallbackFaulted, _k.Kernel.StartDriver(record, new LambdaDriver(_ => throw new InvalidOperationException("load bug")), new Dictionary<string, string>()));
        Assert.Null(_k.Kernel.Drivers.Find("throwing"));
    }

    /// <summary>Registers callbacks that record every start key they are told, as "kind pid key".</summary>
    private List<string> RecordStartKeys()
    {
        var seen = new List<string>();
        _k.Start(c =>
        {
            c.Processes.RegisterProcessCreate((in ProcessCreateInfo i) =>
            {
                seen.Add("create " + i.ProcessId + " " + i.ProcessStartKey);
                return Status.Success;
            }, out _);
            c.Processes.RegisterThreadCreate((in ThreadInfo i) => seen.Add("thread+ " + i.ThreadId + " " + i.ProcessStartKey), out _);
            c.Processes.RegisterThreadExit((in ThreadInfo i) => seen.Add("thread- " + i.ThreadId + " " + i.ProcessStartKey), out _);
            return c.Processes.RegisterProcessExit((in ProcessExitInfo i) => seen.Add("exit " + i.ProcessId + " " + i.ProcessStartKey), out _);
        });
        return seen;
    }

    private void Exit(int pid)
    {
        var f = new ServiceFrame { ProcessId = pid, TargetProcessId = pid };
        Assert.Equal(Status.Success, _k.Kernel.SystemCall(SystemService.ExitProcess, ref f));
    }

    private static long KeyOf(string line) => long.Parse(line.Split(' ')[2], System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Every_notification_of_a_process_carries_the_same_start_key_through_exec()
    {
        List<string> seen = RecordStartKeys();
        Exec(10, "/bin/sh");
        Exec(10, "/bin/true");
        var f = new ServiceFrame { ProcessId = 10, TargetProcessId = 10, TargetThreadId = 11 };
        _k.Kernel.SystemCall(SystemService.CreateThread, ref f);
        _k.Kernel.SystemCall(SystemService.ExitThread, ref f);
        Exit(10);

        long key = KeyOf(seen[0]);
        Assert.NotEqual(0, key);
        Assert.Equal([$"create 10 {key}", $"create 10 {key}", $"thread+ 11 {key}", $"thread- 11 {key}", $"thread- 10 {key}", $"exit 10 {key}"], seen);
    }

    [Fact]
    public void A_pid_reused_after_an_exit_names_a_process_with_a_new_start_key()
    {
        List<string> seen = RecordStartKeys();
        Exec(10, "/bin/sh");
        Exit(10);
        Exec(10, "/bin/sh");

        Assert.Equal(4, seen.Count);
        Assert.NotEqual(KeyOf(seen[0]), KeyOf(seen[3]));
    }

    [Fact]
    public void A_forked_process_gets_a_start_key_of_its_own()
    {
        List<string> seen = RecordStartKeys();
        Exec(10, "/bin/sh");
        var f = new ServiceFrame { ProcessId = 10, ThreadId = 10, TargetProcessId = 12 };
        Assert.Equal(Status.Success, _k.Kernel.SystemCall(SystemService.ForkProcess, ref f));

        Assert.Equal(2, seen.Count);
        Assert.StartsWith("thread+ 12 ", seen[1], StringComparison.Ordinal);
        Assert.NotEqual(KeyOf(seen[0]), KeyOf(seen[1]));
        Assert.NotEqual(0, KeyOf(seen[1]));
    }

    [Fact]
    public void Process_control_refuses_a_process_that_is_not_a_guest()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        var f = new ServiceFrame { TargetProcessId = 1, ImagePath = "/sbin/init" };
        Assert.Equal(Status.Success, _k.Kernel.SystemCall(SystemService.AttachProcess, ref f));

        Assert.Equal(Status.AccessDenied, c.Processes.TerminateProcess(_k.Kernel.ProcessTable.StartKeyOf(1)));
    }

    [Fact]
    public void Process_control_without_a_host_that_holds_the_process_is_not_supported()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        Exec(10, "/bin/sh");

        Assert.Equal(Status.NotSupported, c.Processes.SuspendProcess(_k.Kernel.ProcessTable.StartKeyOf(10)));
    }

    [Fact]
    public void Process_control_of_a_key_no_live_process_has_is_NotFound()
    {
        IDriverContext c = _k.Start(_ => Status.Success);

        Assert.Equal(Status.NotFound, c.Processes.ResumeProcess(12345));
        Assert.Equal(Status.InvalidParameter, c.Processes.ResumeProcess(-1));
    }
}
