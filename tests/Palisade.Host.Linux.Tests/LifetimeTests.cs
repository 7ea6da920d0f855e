namespace Palisade.Host.Linux.Tests;

public sealed class LifetimeTests : IDisposable
{
    private readonly Guest _guest = new();

    [Fact]
    public void Without_a_cgroup_the_supervisor_is_the_subreaper_and_a_double_forked_daemon_ends_with_the_run()
    {
        string pidFile = _guest.PathOf("daemon.pid");
        using (var guest = Launch.SupervisedGuest.Start(Guest.Launcher, Guest.DenyMarker(), "/bin/sh",
            ["-c", $"sh -c 'sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > {pidFile}.new'; mv {pidFile}.new {pidFile}"],
            onFault: null, Launch.SupervisedGuest.Containment.Subreaper))
        {
            Assert.Null(guest.Cgroup);
            Assert.Equal(0, guest.WaitForExit());
            int daemon = int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);

            // Re-parented to the supervisor (its subreaper), not to init: still in its tree, so the run's end finds it.
            Assert.Contains(daemon, Launch.GuestTree.Descendants(Environment.ProcessId));
        }

        int pid = int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal),
            $"the daemon {pid} still runs after the run ended");
    }

    [Fact]
    public void A_launcher_spawned_ahead_outlives_the_end_of_another_run_under_the_subreaper()
    {
        // The end of a run under the subreaper kills the process's descendants outside its other live runs; a launcher
        // spawned ahead and not yet handed over is one of those runs (once it was killed: "the launcher exited before
        // handing over its seccomp listener", seen in CI when another test's run ended meanwhile).
        using Launch.LauncherProcess waiting = Launch.LauncherProcess.Spawn(Guest.Launcher, "/bin/sh", ["-c", "exit 5"]);
        using (var other = Launch.SupervisedGuest.Start(Guest.Launcher, Guest.DenyMarker(), "/bin/true", [],
            onFault: null, Launch.SupervisedGuest.Containment.Subreaper))
        {
            Assert.Equal(0, other.WaitForExit());
        }

        Assert.True(Directory.Exists($"/proc/{waiting.Pid}"), "the waiting launcher was killed by the other run's end");
        using var guest = Launch.SupervisedGuest.Start(waiting, Guest.DenyMarker());
        Assert.Equal(5, guest.WaitForExit());
    }

    [Fact]
    public void Exit_status_passes_through()
    {
        Assert.Equal(42, _guest.Shell(Guest.DenyMarker(), "exit 42"));
    }

    [Fact]
    public void Death_by_signal_is_reported_as_128_plus_the_signal()
    {
        Assert.Equal(128 + 9, _guest.Shell(Guest.DenyMarker(), "kill -9 $$"));
    }

    [Fact]
    public void Denied_exec_fails_with_permission_denied()
    {
        File.Copy("/bin/true", _guest.PathOf("SECRET-tool"));
        File.SetUnixFileMode(_guest.PathOf("SECRET-tool"), (UnixFileMode)0x1ed);

        int status = _guest.Shell(Guest.DenyMarker(), "./SECRET-tool 2> err.txt");

        Assert.Equal(126, status);
    }

    [Fact]
    public void Allowed_exec_of_a_child_program_runs_it()
    {
        int status = _guest.Shell(Guest.DenyMarker(), "/bin/echo child > out.txt");

        Assert.Equal(0, status);
        Assert.Equal("child\n", File.ReadAllText(_guest.PathOf("out.txt")));
    }

    [Fact]
    public void Denied_unlink_leaves_the_file()
    {
        File.WriteAllText(_guest.PathOf("SECRET.txt"), "keep\n");

        int status = _guest.Shell(Guest.DenyMarker(), "rm -f SECRET.txt");

        Assert.NotEqual(0, status);
        Assert.True(File.Exists(_guest.PathOf("SECRET.txt")));
    }

    [Fact]
    public void Allowed_rename_is_performed()
    {
        File.WriteAllText(_guest.PathOf("a.txt"), "moved\n");

        int status = _guest.Shell(Guest.DenyMarker(), "mv a.txt b.txt");

        Assert.Equal(0, status);
        Assert.Equal("moved\n", File.ReadAllText(_guest.PathOf("b.txt")));
    }

    public void Dispose() => _guest.Dispose();
}
