using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>
/// The process family of the kernel mediator, against a real kernel, with real processes as requesters and targets:
/// this test process and init (pid 1), which outlive every test, so that the mediator's exit watcher never reaps a
/// child of the test host.
/// </summary>
public sealed class ProcessMediatorTests : IDisposable
{
    private const int Init = 1;
    private readonly TestKernel _k = new();
    private readonly Requester _self = new(Environment.ProcessId, Environment.ProcessId);

    public void Dispose() => _k.Dispose();

    [Fact]
    public void Exec_denied_by_a_process_create_callback_fails_with_EACCES()
    {
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo info) =>
            info.ImagePath == "/usr/bin/evil" ? Status.AccessDenied : Status.Success, out _));
        int errno = new ProcessMediator(_k.Host).Exec(_self, new ExecCall { Path = "/tmp/evil"u8, ImagePath = "/usr/bin/evil"u8 });

        Assert.Equal(Errno.EACCES, errno);
    }

    [Fact]
    public void Exec_reports_the_command_line_and_the_parent_read_from_proc()
    {
        ProcessCreateInfo seen = default;
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo info) =>
        {
            seen = info;
            return Status.Success;
        }, out _));
        int errno = new ProcessMediator(_k.Host).Exec(_self, new ExecCall { Path = "/bin/sleep"u8, ImagePath = "/usr/bin/sleep"u8, CommandLine = "sleep 60"u8 });

        Assert.Equal((0, "/usr/bin/sleep", "sleep 60", ParentOfSelf()), (errno, seen.ImagePath, seen.CommandLine, seen.ParentProcessId));
    }

    [Fact]
    public void Exec_passes_argv_environment_and_working_directory_to_process_create_and_derives_the_command_line()
    {
        ProcessCreateInfo seen = default;
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo info) =>
        {
            seen = info;
            return Status.Success;
        }, out _));
        string[] argv = ["sleep", "6 0", ""];

        int errno = new ProcessMediator(_k.Host).Exec(_self, new ExecCall
        {
            Path = "/bin/sleep"u8, ImagePath = "/usr/bin/sleep"u8, Arguments = argv, EnvironmentVariables = ["A=b c"], WorkingDirectory = "/w",
        });

        Assert.Equal(0, errno);
        Assert.Equal(argv, seen.Arguments);
        Assert.Equal(["A=b c"], seen.EnvironmentVariables);
        Assert.Equal(("/w", "sleep 6 0 "), (seen.WorkingDirectory, seen.CommandLine));
    }

    [Fact]
    public void An_exec_outcome_reaches_the_exec_result_callbacks_with_the_start_key_of_the_process()
    {
        var results = new List<ExecResultInfo>();
        long created = 0;
        _k.Start(c =>
        {
            c.Processes.RegisterProcessCreate((in ProcessCreateInfo info) => { created = info.ProcessStartKey; return Status.Success; }, out _);
            return c.Processes.RegisterExecResult((in ExecResultInfo info) => results.Add(info), out _);
        });
        var mediator = new ProcessMediator(_k.Host);
        Assert.Equal(0, mediator.Exec(_self, new ExecCall { Path = "/bin/sleep"u8, ImagePath = "/usr/bin/sleep"u8 }));

        mediator.ExecCompleted(_self, new ExecOutcome { ImagePath = "/usr/bin/sleep", Errno = Errno.ENOENT });

        ExecResultInfo result = Assert.Single(results);
        Assert.Equal((false, Errno.ENOENT, created), (result.Succeeded, result.Errno, result.ProcessStartKey));
        Assert.NotEqual(0, result.ProcessStartKey);
    }

    [Fact]
    public void Process_access_an_object_callback_strips_fails_with_EPERM_and_attaches_the_target()
    {
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = "321000",
            PreOperation = (ref ObjectPreOperationInfo i) => i.DesiredAccess &= ~ProcessAccessRights.Terminate,
        }, out _));
        int errno = new ProcessMediator(_k.Host).Access(_self, new ProcessAccessCall(62, Init, 0, 9, ProcessRights.Terminate));

        Assert.Equal((Errno.EPERM, true), (errno, _k.Host.IsKnownProcess(Init)));
    }

    [Theory]
    [InlineData(62, 15, (int)ProcessRights.Terminate, ObjectAccessKind.Signal, 15)]
    [InlineData(62, 0, (int)ProcessRights.Signal, ObjectAccessKind.Signal, 0)]
    [InlineData(200, 10, (int)ProcessRights.Signal, ObjectAccessKind.ThreadSignal, 10)]
    [InlineData(234, 9, (int)ProcessRights.Terminate, ObjectAccessKind.ThreadSignal, 9)]
    [InlineData(424, 2, (int)ProcessRights.Terminate, ObjectAccessKind.PidfdSignal, 2)]
    [InlineData(434, 0, (int)ProcessRights.OpenHandle, ObjectAccessKind.PidfdOpen, 0)]
    [InlineData(438, 0, (int)ProcessRights.DuplicateHandle, ObjectAccessKind.PidfdGetfd, 0)]
    [InlineData(101, 0, (int)ProcessRights.Debug, ObjectAccessKind.Ptrace, 0)]
    [InlineData(310, 0, (int)ProcessRights.ReadMemory, ObjectAccessKind.ProcessVmRead, 0)]
    [InlineData(311, 0, (int)ProcessRights.WriteMemory, ObjectAccessKind.ProcessVmWrite, 0)]
    public void Object_callbacks_are_told_which_call_asks_and_which_signal(int systemCall, int signal, int rights,
        ObjectAccessKind kind, int toldSignal)
    {
        var pre = new List<(ObjectAccessKind, int)>();
        var post = new List<(ObjectAccessKind, int)>();
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = "321000",
            PreOperation = (ref ObjectPreOperationInfo i) => pre.Add((i.AccessKind, i.Signal)),
            PostOperation = (in ObjectPostOperationInfo i) => post.Add((i.AccessKind, i.Signal)),
        }, out _));
        int errno = new ProcessMediator(_k.Host).Access(_self, new ProcessAccessCall(systemCall, Init, 0, signal, (ProcessRights)rights));

        Assert.Equal(0, errno);
        Assert.Equal([(kind, toldSignal)], pre);
        Assert.Equal([(kind, toldSignal)], post);
    }

    [Fact]
    public void The_post_callback_reports_the_EPERM_the_guest_got_when_a_right_was_stripped()
    {
        var results = new List<Status>();
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = "321000",
            PreOperation = (ref ObjectPreOperationInfo i) => i.DesiredAccess &= i.Signal == 9 ? ~ProcessAccessRights.Terminate : ~ProcessAccessRights.None,
            PostOperation = (in ObjectPostOperationInfo i) => results.Add(i.ReturnStatus),
        }, out _));
        var mediator = new ProcessMediator(_k.Host);

        Assert.Equal(Errno.EPERM, mediator.Access(_self, new ProcessAccessCall(62, Init, 0, 9, ProcessRights.Terminate)));
        Assert.Equal(0, mediator.Access(_self, new ProcessAccessCall(62, Init, 0, 15, ProcessRights.Terminate)));
        Assert.Equal([Status.AccessDenied, Status.Success], results);
    }

    /// <summary>Starts <c>sleep</c> under setpriv as uid and gid 65534 with groups 4 and 24 (no capabilities left), and
    /// waits until setpriv has changed its credentials and run sleep.</summary>
    private static System.Diagnostics.Process StartAsNobody()
    {
        var child = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("setpriv",
            ["--reuid=65534", "--regid=65534", "--groups=4,24", "--inh-caps=-all", "sleep", "600"]))!;
        string comm = "/proc/" + child.Id + "/comm";
        Assert.True(SpinWait.SpinUntil(() => File.Exists(comm) && File.ReadAllText(comm).Trim() == "sleep", TimeSpan.FromSeconds(30)),
            "setpriv did not run sleep");
        return child;
    }

    [RootFact("setpriv", "sleep")]
    public void Exec_reports_the_credentials_the_caller_has_after_setuid()
    {
        using System.Diagnostics.Process child = StartAsNobody();
        ProcessCreateInfo seen = default;
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo info) =>
        {
            seen = info;
            return Status.AccessDenied; // Denied, so that the mediator does not watch (and reap) the test's child.
        }, out _));
        try
        {
            // The requester as the supervisor may have cached it before the setuid: uid 0.
            int errno = new ProcessMediator(_k.Host).Exec(new Requester(child.Id, child.Id) { UserId = 0 },
                new ExecCall { Path = "/bin/true"u8, ImagePath = "/usr/bin/true"u8 });

            Assert.Equal(Errno.EACCES, errno);
            ProcessCredentials c = Assert.IsType<ProcessCredentials>(seen.Credentials);
            Assert.Equal((65534, 65534, 65534, 65534), (c.RealUserId, c.EffectiveUserId, c.SavedUserId, c.FileSystemUserId));
            Assert.Equal((65534, 65534, 65534, 65534), (c.RealGroupId, c.EffectiveGroupId, c.SavedGroupId, c.FileSystemGroupId));
            Assert.Equal([4, 24], c.SupplementaryGroups);
            Assert.Equal((0UL, 0UL), (c.EffectiveCapabilities, c.PermittedCapabilities));
            Assert.Equal(65534, seen.UserId);
        }
        finally
        {
            child.Kill();
            child.WaitForExit();
        }
    }

    [Fact]
    public void Exec_reports_the_real_user_of_the_caller_as_its_user_id()
    {
        ProcessCreateInfo seen = default;
        _k.Start(c => c.Processes.RegisterProcessCreate((in ProcessCreateInfo info) =>
        {
            seen = info;
            return Status.AccessDenied;
        }, out _));
        new ProcessMediator(_k.Host).Exec(_self, new ExecCall { Path = "/bin/true"u8, ImagePath = "/usr/bin/true"u8 });

        ProcessCredentials c = Assert.IsType<ProcessCredentials>(seen.Credentials);
        Assert.Equal((int)Libc.GetUid(), c.RealUserId);
        Assert.Equal(c.RealUserId, seen.UserId);
    }

    [Fact]
    public void Process_access_to_oneself_is_not_asked()
    {
        bool asked = false;
        _k.Start(c => c.Objects.Register(new ObjectCallbackRegistration
        {
            Altitude = "321000",
            PreOperation = (ref ObjectPreOperationInfo _) => asked = true,
        }, out _));
        int errno = new ProcessMediator(_k.Host).Access(_self, new ProcessAccessCall(62, _self.ProcessId, 0, 9, ProcessRights.Terminate));

        Assert.Equal((0, false), (errno, asked));
    }

    [Fact]
    public void Exit_group_of_a_started_process_reports_its_exit_code_once()
    {
        var exits = new List<(int Pid, int Code)>();
        _k.Start(c => c.Processes.RegisterProcessExit((in ProcessExitInfo info) => exits.Add((info.ProcessId, info.ExitCode)), out _));
        var mediator = new ProcessMediator(_k.Host);
        var init = new Requester(Init, Init);

        mediator.ProcessStarted(init, 0);
        mediator.Exit(init, wholeProcess: true, status: 0x103);
        mediator.Exit(init, wholeProcess: true, status: 0x103);

        Assert.Equal([(Init, 3)], exits);
    }

    [Fact]
    public void A_started_process_is_known_to_the_kernel_and_its_first_thread_is_reported()
    {
        var threads = new List<(int Pid, int Tid)>();
        _k.Start(c => c.Processes.RegisterThreadCreate((in ThreadInfo info) => threads.Add((info.ProcessId, info.ThreadId)), out _));

        new ProcessMediator(_k.Host).ProcessStarted(new Requester(Init, Init), parentProcessId: 0);

        Assert.True(_k.Host.IsKnownProcess(Init));
        Assert.Equal([(Init, Init)], threads);
    }

    private static int ParentOfSelf()
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("PPid:", StringComparison.Ordinal));
        return int.Parse(line.AsSpan(5).Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
