using System.Globalization;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Every guest ends with its run: when <c>palisade run</c> ends, or a bug check stops the system, every process the run
/// started is gone, a daemon that double-forked out of the process tree (re-parented to init) included.
/// </summary>
public sealed class RunEndTests : IDisposable
{
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    /// <summary>A shell line that starts a double-forked `sleep 1000` daemon and records its pid and start time in <paramref name="file"/>.</summary>
    private static string Daemon(string file) =>
        $"sh -c 'sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > {file}.pid' && " +
        $"cut -d' ' -f22 /proc/$(cat {file}.pid)/stat > {file}.start && mv {file}.pid {file}";

    [GuestFact]
    public void A_double_forked_daemon_is_gone_when_the_run_ends()
    {
        string file = Path.Combine(_p.Work, "daemon");
        ProcessResult r = _p.Run([], "sh", "-c", Daemon(file) + "; echo started");

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("started\n", r.Stdout);
        AssertGone(file);
    }

    [GuestFact]
    public void A_double_forked_daemon_is_gone_when_a_bug_check_stops_the_system()
    {
        string file = Path.Combine(_p.Work, "daemon");
        using BackgroundRun run = _p.Start([], "sh", "-c", Daemon(file) + "; echo started; sleep 600; echo survived");
        Assert.Equal("started", run.NextLine());

        // The administrator's bug check (0xE2), through the control socket of the run's home.
        ProcessResult bugcheck = _p.Palisade("bugcheck", "--reason", "end-to-end test");
        ProcessResult r = run.Wait();

        Assert.True(bugcheck.ExitCode == 0, $"status {bugcheck.ExitCode}\n{bugcheck.Stdout}\n{bugcheck.Stderr}");
        Assert.True(r.ExitCode == 109, $"status {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        Assert.Contains("*** STOP: 0x000000E2", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("Crash dump: " + Path.Combine(_p.Home, "crash", "bugcheck-0xE2-"), bugcheck.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("survived", r.Stdout, StringComparison.Ordinal);
        AssertGone(file);
    }

    [GuestFact]
    public void The_runs_cgroup_is_removed_when_the_run_ends()
    {
        ProcessResult r = _p.Run([], "sh", "-c", "cat /proc/self/cgroup");
        string? cgroup = r.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..];
        Assert.NotNull(cgroup);
        Assert.Contains("palisade-run-", cgroup, StringComparison.Ordinal);
        string? mount = File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')).FirstOrDefault(f => Array.IndexOf(f, "cgroup2") > 6)?[4];
        Assert.NotNull(mount);
        Assert.False(Directory.Exists(mount + cgroup), $"{mount + cgroup} is left behind");
    }

    [GuestFact("gcc")]
    public void A_guest_cannot_move_itself_out_of_the_runs_cgroup()
    {
        string? mount = File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')).FirstOrDefault(f => Array.IndexOf(f, "cgroup2") > 6)?[4];
        Assert.NotNull(mount);
        ProcessResult r = _p.Run([], KernelDoorProbe.Path, "append", Path.Combine(mount, "cgroup.procs"));
        Assert.Equal("append EPERM", r.Stdout.Trim());
    }

    /// <summary>The daemon recorded in <paramref name="file"/> is no longer running (gone, or a zombie waiting for init, or its pid reused by a later process).</summary>
    private static void AssertGone(string file)
    {
        Assert.True(File.Exists(file), "the daemon did not start");
        int pid = int.Parse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture);
        string start = File.ReadAllText(file + ".start").Trim();
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return; // Gone.
        }

        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        Assert.True(fields[0] == "Z" || fields[19] != start, $"the daemon {pid} still runs: {stat}");
    }
}
