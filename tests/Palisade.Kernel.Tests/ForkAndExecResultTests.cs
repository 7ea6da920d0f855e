using Palisade.Api;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Hosting;

namespace Palisade.Kernel.Tests;

/// <summary>
/// The process notifications of issue 14: a fork notification with the real parent, argv, environment and working
/// directory at process-create, the exec-result notification, and the start key on image loads.
/// </summary>
public sealed class ForkAndExecResultTests : IDisposable
{
    private readonly TestKernel _k = new();

    public void Dispose() => _k.Dispose();

    private Status Exec(int pid, string image, int parent = 1)
    {
        var f = new ServiceFrame
        {
            ProcessId = pid,
            Create = new ProcessCreateInfo { ProcessId = pid, ParentProcessId = parent, CreatorProcessId = pid, ImagePath = image, CommandLine = image },
        };
        return _k.Kernel.SystemCall(SystemService.CreateProcess, ref f);
    }

    private Status Fork(int parent, int child)
    {
        var f = new ServiceFrame { ProcessId = parent, TargetProcessId = child };
        return _k.Kernel.SystemCall(SystemService.ForkProcess, ref f);
    }

    private long KeyOf(int pid) => _k.Kernel.ProcessTable.StartKeyOf(pid);

    [Fact]
    public void A_fork_is_reported_with_its_parent_by_pid_and_start_key_and_a_start_key_of_its_own()
    {
        var seen = new List<ProcessForkInfo>();
        _k.Start(c => c.Processes.RegisterProcessFork((in ProcessForkInfo i) => seen.Add(i), out _));
        Assert.Equal(Status.Success, Exec(10, "/bin/sh"));

        Assert.Equal(Status.Success, Fork(10, 12));

        ProcessForkInfo fork = Assert.Single(seen);
        Assert.Equal((12, 10, KeyOf(10), KeyOf(12), "/bin/sh"), (fork.ProcessId, fork.ParentProcessId, fork.ParentProcessStartKey, fork.ProcessStartKey, fork.ImagePath));
        Assert.NotEqual(0, fork.ProcessStartKey);
        Assert.NotEqual(fork.ParentProcessStartKey, fork.ProcessStartKey);
    }

    [Fact]
    public void A_fork_whose_parent_the_kernel_does_not_know_has_parent_start_key_0()
    {
        var seen = new List<ProcessForkInfo>();
        _k.Start(c => c.Processes.RegisterProcessFork((in ProcessForkInfo i) => seen.Add(i), out _));

        Assert.Equal(Status.Success, Fork(99, 12));

        ProcessForkInfo fork = Assert.Single(seen);
        Assert.Equal((99, 0L), (fork.ParentProcessId, fork.ParentProcessStartKey));
    }

    [Fact]
    public void The_fork_notification_comes_once_and_before_the_new_process_s_thread_create()
    {
        var seen = new List<string>();
        _k.Start(c =>
        {
            c.Processes.RegisterThreadCreate((in ThreadInfo i) => seen.Add("thread+ " + i.ThreadId), out _);
            return c.Processes.RegisterProcessFork((in ProcessForkInfo i) => seen.Add("fork " + i.ProcessId), out _);
        });
        Exec(10, "/bin/sh");

        Fork(10, 12);
        Fork(10, 12);

        Assert.Equal(["fork 12", "thread+ 12"], seen);
    }

    [Fact]
    public void A_forked_process_that_execs_keeps_its_start_key_and_names_its_parent_s()
    {
        var creates = new List<ProcessCreateInfo>();
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo i) => { creates.Add(i); return Status.Success; }, out _));
        Exec(10, "/bin/sh");
        Fork(10, 12);
        long child = KeyOf(12);

        Exec(12, "/bin/true", parent: 10);

        ProcessCreateInfo exec = creates[1];
        Assert.Equal((child, 10, KeyOf(10)), (exec.ProcessStartKey, exec.ParentProcessId, exec.ParentProcessStartKey));
    }

    [Fact]
    public void Process_create_carries_argv_environment_and_working_directory_exactly_and_the_command_line_is_derived()
    {
        ProcessCreateInfo seen = default;
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo i) => { seen = i; return Status.Success; }, out _));
        string[] argv = ["printf", "%s|", "two words", "", "é\tü"];
        string[] envp = ["A=1", "EMPTY=", "SPACED=a b"];

        Status s = _k.Host.CreateProcess(new Requester(30, 30), new ProcessImageRequest
        {
            ImagePath = "/usr/bin/printf", Arguments = argv, EnvironmentVariables = envp, WorkingDirectory = "/tmp/w d",
        });

        Assert.Equal(Status.Success, s);
        Assert.Equal(argv, seen.Arguments);
        Assert.Equal(envp, seen.EnvironmentVariables);
        Assert.Equal("/tmp/w d", seen.WorkingDirectory);
        Assert.Equal("printf %s| two words  é\tü", seen.CommandLine);
    }

    [Fact]
    public void Without_arguments_the_lists_are_empty_never_null_and_the_command_line_is_the_image()
    {
        ProcessCreateInfo seen = default;
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo i) => { seen = i; return Status.Success; }, out _));

        Assert.Equal(Status.Success, Exec(31, "/bin/true"));
        Assert.Equal(Status.Success, _k.Host.CreateProcess(new Requester(32, 32), new ProcessImageRequest { ImagePath = "/bin/false" }));

        Assert.Empty(seen.Arguments);
        Assert.Empty(seen.EnvironmentVariables);
        Assert.Equal("/bin/false", seen.CommandLine);
    }

    [Fact]
    public void Every_image_load_of_an_exec_carries_the_start_key_of_its_process_create()
    {
        long created = 0;
        var keys = new List<long>();
        _k.Start(c =>
        {
            c.Processes.RegisterProcessCreate((in ProcessCreateInfo i) => { created = i.ProcessStartKey; return Status.Success; }, out _);
            return c.Processes.RegisterImageLoad((in ImageLoadInfo i) => { keys.Add(i.ProcessStartKey); return Status.Success; }, out _);
        });
        var f = new ServiceFrame
        {
            ProcessId = 13,
            Create = new ProcessCreateInfo { ProcessId = 13, ImagePath = "/w/script" },
            Images =
            [
                new ImageLoadInfo { ProcessId = 13, ImagePath = "/w/script", Kind = ImageLoadKind.Script },
                new ImageLoadInfo { ProcessId = 13, ImagePath = "/bin/sh", Kind = ImageLoadKind.ScriptInterpreter },
                new ImageLoadInfo { ProcessId = 13, ImagePath = "/lib/ld.so", Kind = ImageLoadKind.ElfInterpreter },
            ],
        };

        Assert.Equal(Status.Success, _k.Kernel.SystemCall(SystemService.CreateProcess, ref f));

        Assert.NotEqual(0, created);
        Assert.Equal([created, created, created], keys);
    }

    [Fact]
    public void A_mapping_image_load_carries_the_start_key_of_its_process()
    {
        var keys = new List<long>();
        _k.Start(c => c.Processes.RegisterImageLoad((in ImageLoadInfo i) => { keys.Add(i.ProcessStartKey); return Status.Success; }, out _));
        Exec(14, "/bin/sh");
        keys.Clear();
        var f = new ServiceFrame { ProcessId = 14, Image = new ImageLoadInfo { ProcessId = 14, ImagePath = "/w/libx.so", Kind = ImageLoadKind.Mapping } };

        Assert.Equal(Status.Success, _k.Kernel.SystemCall(SystemService.LoadImage, ref f));

        Assert.Equal([KeyOf(14)], keys);
    }

    [Fact]
    public void The_exec_result_carries_the_start_key_of_the_process_create_and_the_outcome()
    {
        long created = 0;
        var results = new List<ExecResultInfo>();
        _k.Start(c =>
        {
            c.Processes.RegisterProcessCreate((in ProcessCreateInfo i) => { created = i.ProcessStartKey; return Status.Success; }, out _);
            return c.Processes.RegisterExecResult((in ExecResultInfo i) => results.Add(i), out _);
        });
        Exec(15, "/bin/sh");

        _k.Host.ExecCompleted(new Requester(15, 16), new ExecOutcomeRequest { ImagePath = "/bin/sh", Succeeded = true });
        _k.Host.ExecCompleted(new Requester(15, 15), new ExecOutcomeRequest { ImagePath = "/nonexistent", Errno = 2 });

        Assert.Equal(2, results.Count);
        Assert.Equal((15, 16, created, "/bin/sh", true, 0), (results[0].ProcessId, results[0].ThreadId, results[0].ProcessStartKey, results[0].ImagePath, results[0].Succeeded, results[0].Errno));
        Assert.Equal((created, "/nonexistent", false, 2), (results[1].ProcessStartKey, results[1].ImagePath, results[1].Succeeded, results[1].Errno));
    }

    [Fact]
    public void A_success_never_carries_an_errno()
    {
        var results = new List<ExecResultInfo>();
        _k.Start(c => c.Processes.RegisterExecResult((in ExecResultInfo i) => results.Add(i), out _));

        _k.Host.ExecCompleted(new Requester(17, 17), new ExecOutcomeRequest { ImagePath = "/bin/sh", Succeeded = true, Errno = 13 });

        Assert.Equal(0, Assert.Single(results).Errno);
    }

    [Fact]
    public void Fork_and_exec_result_registrations_are_removed_by_Unregister_and_a_second_is_InvalidHandle()
    {
        int forks = 0, results = 0;
        CallbackCookie fork = default, result = default;
        IDriverContext c = _k.Start(c =>
        {
            c.Processes.RegisterProcessFork((in ProcessForkInfo _) => forks++, out fork);
            return c.Processes.RegisterExecResult((in ExecResultInfo _) => results++, out result);
        });

        Assert.Equal(Status.Success, c.Processes.Unregister(fork));
        Assert.Equal(Status.Success, c.Processes.Unregister(result));
        Fork(10, 12);
        _k.Host.ExecCompleted(new Requester(12, 12), new ExecOutcomeRequest { ImagePath = "/bin/sh", Succeeded = true });

        Assert.Equal((0, 0), (forks, results));
        Assert.Equal(Status.InvalidHandle, c.Processes.Unregister(fork));
    }

    [Fact]
    public void A_fork_or_exec_result_callback_makes_the_host_mediate_process_ends_and_execs()
    {
        Assert.Equal(HostInterests.None, _k.Host.Interests & (HostInterests.ProcessExits | HostInterests.ProcessCreation));
        IDriverContext c = _k.Start(c => c.Processes.RegisterProcessFork((in ProcessForkInfo _) => { }, out _));
        Assert.Equal(HostInterests.ProcessExits, _k.Host.Interests & (HostInterests.ProcessExits | HostInterests.ProcessCreation));

        Assert.Equal(Status.Success, c.Processes.RegisterExecResult((in ExecResultInfo _) => { }, out _));

        Assert.Equal(HostInterests.ProcessExits | HostInterests.ProcessCreation, _k.Host.Interests & (HostInterests.ProcessExits | HostInterests.ProcessCreation));
    }
}
