namespace Palisade.EndToEnd.Tests;

/// <summary>
/// The user/kernel boundary (docs/security.md): every door into the kernel, tried by a real guest program (the
/// attacker, <see cref="KernelDoorProbe"/>) under <c>palisade run</c> with the antivirus loaded, once as root and once
/// as a guest that dropped to uid 65534. The kernel is the guest's parent, the supervisor process.
/// </summary>
public sealed class KernelBoundaryTests : IDisposable
{
    public const string Root = "root";
    public const string Nobody = "nobody";

    private readonly PalisadeRun _p = new();
    private readonly string _scratch;

    public KernelBoundaryTests()
    {
        // A folder every guest may write in, whatever its uid (the attacker's links live there).
        _scratch = Directory.CreateTempSubdirectory("palisade-e2e-scratch-").FullName;
        File.SetUnixFileMode(_scratch, (UnixFileMode)0x1FF | UnixFileMode.StickyBit);
    }

    public void Dispose()
    {
        _p.Dispose();
        Directory.Delete(_scratch, recursive: true);
    }

    // ---- procfs: the kernel's /proc entries, however they are named ---------------------------------------------

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_open_the_kernels_memory(string user) => Assert.Equal("mem EACCES", Door(user, "mem"));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_open_the_memory_of_a_kernel_thread_by_its_tid(string user) => Assert.Equal("thread-mem EACCES", Door(user, "thread-mem"));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_open_a_kernel_thread_under_the_kernels_task_folder(string user) => Assert.Equal("task-mem EACCES", Door(user, "task-mem"));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_read_the_kernels_environment(string user) => Assert.Equal("environ EACCES", Door(user, "environ"));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_read_the_kernels_memory_map(string user) => Assert.Equal("maps EACCES", Door(user, "maps"));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_reach_the_kernels_memory_with_dot_dot_from_its_own_proc_entry(string user) => Assert.Equal("dotdot EACCES", Door(user, "dotdot"));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_reopen_any_descriptor_of_the_kernel(string user) => Assert.Equal("fds EACCES", Door(user, "fds"));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_reach_the_kernels_proc_entry_through_a_symlink(string user) =>
        Assert.Equal("symlink EACCES", Door(user, "symlink", Path.Combine(_scratch, "kernel")));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_whose_working_directory_is_the_kernels_proc_entry_cannot_open_in_it(string user) =>
        Assert.Equal("cwd EACCES", Door(user, "cwd"));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_reopen_an_O_PATH_descriptor_of_the_kernels_memory(string user) =>
        Assert.Equal("opath-reopen EACCES", Door(user, "opath-reopen", Path.Combine(_scratch, "kernel")));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root, "ELOOP")]
    [InlineData(Nobody, "EACCES")]
    public void A_guest_cannot_follow_a_descriptor_of_the_kernels_fd_link_into_the_kernel(string user, string refusal) =>
        Assert.Equal("fd-chain " + refusal, Door(user, "fd-chain", Path.Combine(_scratch, "kernel")));

    [RootGuestTheory("gcc", "setpriv", "mount", "umount")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_reach_the_kernels_memory_through_another_mount_of_procfs(string user)
    {
        string proc = Path.Combine(_scratch, "proc2");
        Directory.CreateDirectory(proc);
        Assert.Equal(0, ProcessRunner.Run("mount", ["-t", "proc", "proc", proc]).ExitCode);
        try
        {
            Assert.Equal("mount EACCES", Door(user, "mount", proc));
        }
        finally
        {
            Assert.Equal(0, ProcessRunner.Run("umount", [proc]).ExitCode);
        }
    }

    [RootGuestFact("gcc")]
    public void With_no_driver_loaded_a_guest_still_cannot_open_the_kernels_memory()
    {
        ProcessResult r = _p.Run([], KernelDoorProbe.Path, "mem");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("mem EACCES", r.Stdout.Trim());
    }

    [RootGuestFact("gcc")]
    public void A_guest_still_opens_its_own_proc_entries()
    {
        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("antivirus")], "sh", "-c", "head -1 /proc/self/status; head -1 /proc/$$/status");
        Assert.Equal("Name:\thead\nName:\tsh\n", r.Stdout);
    }

    // ---- the kernel's process: trace, memory, descriptors, signals, scheduling -------------------------------------

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root, "ptrace")]
    [InlineData(Nobody, "ptrace")]
    [InlineData(Root, "ptrace-thread")]
    [InlineData(Nobody, "ptrace-thread")]
    public void A_guest_cannot_trace_the_kernel_or_its_threads(string user, string door) => Assert.Equal(door + " EPERM", Door(user, door));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root, "vm-read")]
    [InlineData(Nobody, "vm-read")]
    [InlineData(Root, "vm-write")]
    [InlineData(Nobody, "vm-write")]
    public void A_guest_cannot_read_or_write_the_kernels_memory_across_processes(string user, string door) => Assert.Equal(door + " EPERM", Door(user, door));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root, "pidfd")]
    [InlineData(Nobody, "pidfd")]
    [InlineData(Root, "pidfd-thread")]
    [InlineData(Nobody, "pidfd-thread")]
    public void A_guest_cannot_get_a_pidfd_of_the_kernel(string user, string door) => Assert.Equal(door + " EPERM", Door(user, door));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root, "kill")]
    [InlineData(Nobody, "kill")]
    [InlineData(Root, "tkill")]
    [InlineData(Nobody, "tkill")]
    [InlineData(Root, "tgkill")]
    [InlineData(Nobody, "tgkill")]
    [InlineData(Root, "sigqueue")]
    [InlineData(Nobody, "sigqueue")]
    [InlineData(Root, "kill-group")]
    [InlineData(Nobody, "kill-group")]
    public void A_guest_cannot_signal_the_kernel_its_threads_or_its_process_group(string user, string door) =>
        Assert.Equal(door + " EPERM", Door(user, door));

    [RootGuestFact("setpriv")]
    public void Kill_of_every_process_by_a_guest_of_the_kernels_own_user_leaves_the_kernel_running()
    {
        // palisade itself runs as an unprivileged user here, and so does its guest: natively, kill(-1, SIGKILL) would kill
        // every process of that user, the kernel included (only processes of this test's own user are at stake).
        const int User = 23456;
        string home = Directory.CreateTempSubdirectory("palisade-e2e-user-").FullName;
        try
        {
            Assert.Equal(0, ProcessRunner.Run("chown", [$"{User}:{User}", home]).ExitCode);
            ProcessResult r = ProcessRunner.Run("setpriv", [$"--reuid={User}", $"--regid={User}", "--clear-groups", ProcessRunner.DotnetHost,
                Path.Combine(AppContext.BaseDirectory, "palisade.dll"), "run", "--", "sh", "-c", "kill -9 -1; echo survived"],
                home, new Dictionary<string, string?> { ["PALISADE_HOME"] = home, ["HOME"] = home, ["DOTNET_CLI_HOME"] = home });
            Assert.True(r.ExitCode == 0, $"status {r.ExitCode}: {r.Stdout}\n{r.Stderr}");
            Assert.Equal("survived\n", r.Stdout);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void Guests_run_in_a_process_group_of_their_own(string user) => Assert.Equal("own-group separate", Door(user, "own-group"));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_join_the_kernels_process_group(string user) => Assert.Equal("setpgid EPERM", Door(user, "setpgid"));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root, "setown")]
    [InlineData(Nobody, "setown")]
    [InlineData(Root, "setown-ex")]
    [InlineData(Nobody, "setown-ex")]
    [InlineData(Root, "setown-group")]
    [InlineData(Nobody, "setown-group")]
    [InlineData(Root, "fiosetown")]
    [InlineData(Nobody, "fiosetown")]
    public void A_guest_cannot_direct_a_descriptors_signal_at_the_kernel(string user, string door) => Assert.Equal(door + " EPERM", Door(user, door));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root, "perf")]
    [InlineData(Nobody, "perf")]
    [InlineData(Root, "perf-cpu")]
    [InlineData(Nobody, "perf-cpu")]
    public void A_guest_cannot_watch_the_kernel_with_perf_events(string user, string door) => Assert.Equal(door + " EACCES", Door(user, door));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root, "prlimit")]
    [InlineData(Nobody, "prlimit")]
    [InlineData(Root, "setpriority")]
    [InlineData(Nobody, "setpriority")]
    [InlineData(Root, "affinity")]
    [InlineData(Nobody, "affinity")]
    [InlineData(Root, "kcmp")]
    [InlineData(Nobody, "kcmp")]
    public void A_guest_cannot_change_or_compare_the_kernels_limits_priority_or_objects(string user, string door) =>
        Assert.Equal(door + " EPERM", Door(user, door));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_make_a_userfaultfd_that_stalls_the_kernels_reads(string user) => Assert.Equal("userfaultfd EPERM", Door(user, "userfaultfd"));

    [RootGuestFact("gcc")]
    public void A_user_mode_userfaultfd_is_still_allowed() => Assert.Equal("userfaultfd-user reached", Door(Root, "userfaultfd-user"));

    // ---- the kernel's sockets -----------------------------------------------------------------------------------

    [RootGuestTheory("gcc", "setpriv", "python3")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_connect_to_a_socket_in_the_kernels_home(string user)
    {
        string run = Path.Combine(_p.Home, "run");
        Directory.CreateDirectory(run);
        string socket = Path.Combine(run, "control.sock");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
        listener.Listen(1);
        File.SetUnixFileMode(socket, (UnixFileMode)0x1FF);
        File.SetUnixFileMode(run, (UnixFileMode)0x1FF);
        File.SetUnixFileMode(_p.Home, (UnixFileMode)0x1FF);

        Assert.Equal("connect EACCES", Door(user, "connect", socket));
    }

    [RootGuestFact("gcc")]
    public void A_guest_still_connects_to_a_socket_outside_the_kernels_state()
    {
        string socket = Path.Combine(_scratch, "peer.sock");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
        listener.Listen(1);

        Assert.Equal("connect reached", Door(Root, "connect", socket));
    }

    // ---- the kernel's own files -----------------------------------------------------------------------------------

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_add_a_key_to_the_trust_store(string user)
    {
        string key = Path.Combine(_p.Home, "trust", "attacker.pub");
        Assert.Equal("write EPERM", Door(user, "write", key));
        Assert.False(File.Exists(key), "the guest's key is in the trust store");
    }

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_write_the_registry_hive(string user)
    {
        string hive = Path.Combine(_p.Home, "registry.hive");
        Assert.Equal(0, _p.Run([], "true").ExitCode); // The first kernel creates the hive.

        byte[] before = File.ReadAllBytes(hive);
        Assert.Equal("append EPERM", Door(user, "append", hive));
        Assert.Equal(before, File.ReadAllBytes(hive));
    }

    [RootGuestFact("python3")]
    public void A_root_guest_cannot_change_a_kernel_file_through_a_read_only_descriptor_or_create_names_in_its_folders()
    {
        // The calls the supervisor performs since it acts as the guest (fchmod, fsetxattr, ftruncate on a descriptor,
        // mkdir, symlink, mknod, link): a root guest may do each natively, none reaches the kernel's state.
        string key = Assert.Single(Directory.GetFiles(Path.Combine(_p.Home, "trust")));
        string trust = Path.GetDirectoryName(key)!;
        UnixFileMode mode = File.GetUnixFileMode(key);
        const string Script = """
            import errno, os, sys
            key, trust = sys.argv[1], sys.argv[2]
            def attempt(name, call):
                try:
                    call()
                    print(name, "reached")
                except OSError as e:
                    print(name, errno.errorcode[e.errno])
            fd = os.open(key, os.O_RDONLY)
            attempt("fchmod", lambda: os.fchmod(fd, 0o666))
            attempt("fsetxattr", lambda: os.setxattr(fd, "user.attacker", b"1"))
            attempt("mkdir", lambda: os.mkdir(os.path.join(trust, "attacker")))
            attempt("symlink", lambda: os.symlink("/tmp/attacker.pub", os.path.join(trust, "attacker.pub")))
            attempt("mknod", lambda: os.mknod(os.path.join(trust, "fifo"), 0o600 | 0o010000))
            attempt("link", lambda: os.link(key, os.path.join(trust, "copy.pub")))
            """;

        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("antivirus")], "python3", "-c", Script, key, trust);

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}: {r.Stdout}\n{r.Stderr}");
        Assert.Equal("fchmod EPERM\nfsetxattr EPERM\nmkdir EPERM\nsymlink EPERM\nmknod EPERM\nlink EPERM", r.Stdout.Trim());
        Assert.Equal(mode, File.GetUnixFileMode(key));
        Assert.Equal([key], Directory.GetFileSystemEntries(trust));
    }

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root, "truncate")]
    [InlineData(Nobody, "truncate")]
    [InlineData(Root, "unlink")]
    [InlineData(Nobody, "unlink")]
    [InlineData(Root, "chmod")]
    [InlineData(Nobody, "chmod")]
    public void A_guest_cannot_truncate_remove_or_change_the_mode_of_the_kernels_files(string user, string door)
    {
        string key = Assert.Single(Directory.GetFiles(Path.Combine(_p.Home, "trust")));
        byte[] before = File.ReadAllBytes(key);
        UnixFileMode mode = File.GetUnixFileMode(key);
        Assert.Equal(door + " EPERM", Door(user, door, key));
        Assert.Equal(before, File.ReadAllBytes(key));
        Assert.Equal(mode, File.GetUnixFileMode(key));
    }

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_move_the_trust_store_away(string user)
    {
        string trust = Path.Combine(_p.Home, "trust");
        Assert.Equal("rename EPERM", Door(user, "rename", trust, Path.Combine(_scratch, "stolen")));
        Assert.True(Directory.Exists(trust));
    }

    [RootGuestFact("gcc")]
    public void A_guest_cannot_move_the_kernels_home_away() =>
        Assert.Equal("rename EPERM", Door(Root, "rename", _p.Home, Path.Combine(_scratch, "home")));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_write_a_kernel_file_through_a_symlink(string user)
    {
        string link = Path.Combine(_scratch, "innocent");
        File.CreateSymbolicLink(link, Path.Combine(_p.Home, "trust", "attacker.pub"));
        Assert.Equal("write EPERM", Door(user, "write", link));
        Assert.False(File.Exists(Path.Combine(_p.Home, "trust", "attacker.pub")));
    }

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_cannot_change_a_loaded_driver_package(string user)
    {
        string manifest = Path.Combine(PalisadeRun.Driver("antivirus"), "manifest.json");
        byte[] before = File.ReadAllBytes(manifest);
        Assert.Equal("append EPERM", Door(user, "append", manifest));
        Assert.Equal(before, File.ReadAllBytes(manifest));
    }

    [RootGuestFact("gcc")]
    public void A_guest_cannot_write_the_kernels_event_log()
    {
        string events = Path.Combine(_scratch, "events.jsonl");
        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("antivirus"), "--events", events], KernelDoorProbe.Path, "append", events);
        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}: {r.Stdout}\n{r.Stderr}");
        Assert.Equal("append EPERM", r.Stdout.Trim());
        Assert.DoesNotContain("attacker", File.ReadAllText(events), StringComparison.Ordinal);
    }

    // ---- the terminal ------------------------------------------------------------------------------------------------

    [RootGuestFact("script", "timeout")]
    public void A_guest_in_its_own_process_group_reads_the_terminal_as_the_foreground_job()
    {
        // script gives palisade a terminal of its own; a guest outside the terminal's foreground group would be stopped
        // by SIGTTIN on its read (and the run would hang until the timeout).
        string palisade = $"{ProcessRunner.DotnetHost} {Path.Combine(AppContext.BaseDirectory, "palisade.dll")} run -- sh -c 'read x; echo got:$x'";
        ProcessResult r = _p.Exec("timeout", ["60", "script", "-qec", palisade, "/dev/null"], _p.Work, stdin: "hello\n");
        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}: {r.Stdout}\n{r.Stderr}");
        Assert.Contains("got:hello", r.Stdout, StringComparison.Ordinal);
    }

    // ---- the runtime's side doors, descriptors --------------------------------------------------------------------

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void The_kernel_has_no_diagnostics_socket_or_debugger_pipe(string user) =>
        Assert.Equal("diagnostics none", Door(user, "diagnostics", Path.GetTempPath()));

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData(Root)]
    [InlineData(Nobody)]
    public void A_guest_holds_no_descriptor_the_kernel_opened(string user)
    {
        // The guest holds what it would hold without palisade (what the test runner gave it), and nothing of the kernel's.
        string[] probe = [KernelDoorProbe.Path, "descriptors"];
        ProcessResult native = _p.Direct(user == Root ? probe : ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", .. probe]);
        Assert.Equal(native.Stdout.Trim(), Door(user, "descriptors"));
    }

    [RootGuestFact]
    public void A_run_leaves_nothing_in_the_temporary_folder()
    {
        string temporary = Directory.CreateTempSubdirectory("palisade-e2e-tmp-").FullName;
        try
        {
            ProcessResult r = _p.Exec("dotnet", [Path.Combine(AppContext.BaseDirectory, "palisade.dll"), "run", "--driver", PalisadeRun.Driver("antivirus"), "--", "true"],
                _p.Work, environment: new Dictionary<string, string?> { ["TMPDIR"] = temporary });
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Empty(Directory.EnumerateFileSystemEntries(temporary));
        }
        finally
        {
            Directory.Delete(temporary, recursive: true);
        }
    }

    [RootGuestFact]
    public void The_callers_runtime_diagnostics_setting_reaches_the_guest_while_the_kernel_runs_without_diagnostics()
    {
        ProcessResult r = _p.Exec("dotnet", [Path.Combine(AppContext.BaseDirectory, "palisade.dll"), "run", "--", "sh", "-c",
            "echo \"$DOTNET_EnableDiagnostics\"; ls \"${TMPDIR:-/tmp}\" | grep -c -- \"-$PPID-\""],
            _p.Work, environment: new Dictionary<string, string?> { ["DOTNET_EnableDiagnostics"] = "1" });
        Assert.Equal("1\n0\n", r.Stdout);
    }

    // ---- helpers ----------------------------------------------------------------------------------------------------

    /// <summary>Runs the door probe as <paramref name="user"/> under palisade run with the antivirus; returns its line.</summary>
    private string Door(string user, string door, params string[] arguments)
    {
        string[] probe = [KernelDoorProbe.Path, door, .. arguments];
        string[] program = user == Root ? probe : ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", .. probe];
        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("antivirus")], program);
        Assert.True(r.ExitCode == 0, $"the probe failed with {r.ExitCode}: {r.Stdout}\n{r.Stderr}");
        return r.Stdout.Trim();
    }
}
