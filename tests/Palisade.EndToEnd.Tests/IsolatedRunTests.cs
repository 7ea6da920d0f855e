namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Drivers under <c>palisade run --isolated</c>: each runs in a driver host process of its own (docs/security.md, "The
/// isolated mode"), started by the kernel, confined before any of the driver's code loads, and reaching the kernel only
/// through its socket. The sample antivirus decides as it does in the kernel; a host that crashes is contained; a driver's
/// own code in its host cannot reach the kernel's memory, threads or files.
/// </summary>
public sealed class IsolatedRunTests : IDisposable
{
    private const string Eicar = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    private static string Attack(string name) => PalisadeRun.Attack(name);

    private string EventsFile => Path.Combine(_p.Work, "events.jsonl");

    private IEnumerable<System.Text.Json.JsonElement> EventsOf(string type) =>
        PalisadeRun.Events(EventsFile).Where(e => e.GetProperty("type").GetString() == type);

    [Fact]
    public void The_isolated_antivirus_lets_a_clean_file_through_and_denies_the_test_virus_with_EACCES()
    {
        File.WriteAllText(Path.Combine(_p.Work, "hello.txt"), "hello\n");
        File.WriteAllText(Path.Combine(_p.Work, "eicar.com"), Eicar);

        ProcessResult run = _p.Run(
            ["--isolated", "--driver", PalisadeRun.Driver("antivirus"), "--events", EventsFile],
            "sh", "-c", "cat hello.txt; cat eicar.com; echo \"status $?\"");

        Assert.True(run.ExitCode == 0, $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        Assert.Equal("hello\nstatus 1\n", run.Stdout);
        Assert.Contains("eicar.com: Permission denied", run.Stderr, StringComparison.Ordinal);

        // The driver ran in a host process of its own, and its detection came from there.
        string host = Assert.Single(EventsOf("kernel"), e => e.GetProperty("kind").GetString() == "driver-host").GetProperty("message").GetString()!;
        Assert.StartsWith("antivirus runs isolated in driver host ", host, StringComparison.Ordinal);
        Assert.Contains(EventsOf("driver"), e => e.GetProperty("kind").GetString() == "detection"
            && e.GetProperty("message").GetString()!.StartsWith("EICAR-Test-File in ", StringComparison.Ordinal));
        Assert.Empty(EventsOf("driver-fault"));
    }

    [LastCloseFact("/bin/sh")]
    public void The_isolated_antivirus_scans_at_cleanup_what_a_write_left_reading_it_and_its_state_through_the_kernel()
    {
        // At a cleanup the antivirus reads the file (ReadFile) and, for a clean one, asks its state (QueryFileState):
        // both cross from the host to the kernel on the conversation of the cleanup callback.
        ProcessResult run = _p.Run(
            ["--isolated", "--driver", PalisadeRun.Driver("antivirus"), "--events", EventsFile],
            "sh", "-c", "printf '%s' '" + Eicar + "' > written.com; echo hi > clean.txt; cat clean.txt");

        Assert.True(run.ExitCode == 0, $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        Assert.Equal("hi\n", run.Stdout);
        Assert.Contains(EventsOf("driver"), e => e.GetProperty("kind").GetString() == "detection"
            && e.GetProperty("message").GetString()!.Contains("written.com", StringComparison.Ordinal)
            && e.GetProperty("message").GetString()!.Contains("found after a write", StringComparison.Ordinal));
        Assert.Empty(EventsOf("driver-fault"));
    }

    [Fact]
    public void A_guest_cannot_kill_the_driver_host_to_blind_the_isolated_antivirus()
    {
        // The attack: a root guest ends the antivirus' host so that its registrations fault, then reads the test virus.
        // The host is part of the kernel for the boundary: the kill is refused and the antivirus still decides. (The guest
        // cannot find the host itself: its /proc entries are the kernel's; the test hands it the pid.)
        File.WriteAllText(Path.Combine(_p.Work, "eicar.com"), Eicar);
        using BackgroundRun run = _p.Start(
            ["--isolated", "--driver", PalisadeRun.Driver("antivirus"), "--events", EventsFile],
            "sh", "-c", "echo ready; while [ ! -s hostpid ]; do sleep 0.05; done; kill -9 \"$(cat hostpid)\"; echo \"kill $?\"; cat eicar.com; echo \"cat $?\"");
        Assert.Equal("ready", run.NextLine());
        int host = Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out int pid) ? pid : 0)
            .Single(pid => pid > 0 && ParentOf(pid) == run.ProcessId && CommandLineOf(pid).Contains("__driverhost", StringComparison.Ordinal));
        File.WriteAllText(Path.Combine(_p.Work, "hostpid.new"), host.ToString(System.Globalization.CultureInfo.InvariantCulture));
        File.Move(Path.Combine(_p.Work, "hostpid.new"), Path.Combine(_p.Work, "hostpid"));

        ProcessResult result = run.Wait();

        Assert.True(result.ExitCode == 0, $"status {result.ExitCode}\n{result.Stdout}\n{result.Stderr}");
        Assert.Equal("ready\nkill 1\ncat 1\n", result.Stdout);
        Assert.Contains("eicar.com: Permission denied", result.Stderr, StringComparison.Ordinal);
        Assert.Empty(EventsOf("driver-fault"));
    }

    private static int ParentOf(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static string CommandLineOf(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline");
        }
        catch (IOException)
        {
            return "";
        }
    }

    [Fact]
    public void A_driver_host_that_crashes_in_a_callback_leaves_the_kernel_running_and_the_guest_gets_the_drivers_fault_verdict()
    {
        // host-crash chose Deny for its faults and ends its host (FailFast) in the pre-create of "crash-me".
        File.WriteAllText(Path.Combine(_p.Work, "crash-me"), "x");

        ProcessResult run = _p.Run(
            ["--flavor", "compat", "--isolated", "--driver", Attack("host-crash"), "--events", EventsFile],
            "sh", "-c", "cat crash-me; echo \"first $?\"; cat crash-me; echo \"second $?\"");

        // The kernel ran the guest to its end: the shell printed both lines and its status is the run's.
        Assert.True(run.ExitCode == 0, $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        Assert.StartsWith("first 1\nsecond ", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("second 0", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("crash-me: Permission denied", run.Stderr, StringComparison.Ordinal);
        Assert.Contains(EventsOf("driver-fault"), e => e.GetProperty("driver").GetString() == "host-crash"
            && e.GetProperty("reason").GetString()!.Contains("failed (the other side closed the connection)", StringComparison.Ordinal));
        Assert.Contains(EventsOf("driver-fault"), e => e.TryGetProperty("operation", out System.Text.Json.JsonElement op)
            && op.GetString()!.Contains("/crash-me by process ", StringComparison.Ordinal) && e.GetProperty("verdict").GetString() == "deny");
    }

    [RootFact]
    public void A_driver_in_its_host_cannot_read_trace_signal_or_open_the_kernel_nor_read_its_files()
    {
        // host-escape runs its own code in its host (compat flavor: nothing refuses its P/Invoke) and reports each attempt.
        string secret = Path.Combine(_p.Work, "kernel-only");
        File.WriteAllText(secret, "the kernel's");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        ProcessResult run = _p.Run(
            ["--flavor", "compat", "--isolated", "--driver", Attack("host-escape"), "--param", "host-escape.secret=" + secret, "--events", EventsFile],
            "true");

        Assert.True(run.ExitCode == 0, $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        string probe = Assert.Single(EventsOf("driver"), e => e.GetProperty("kind").GetString() == "probe").GetProperty("message").GetString()!;
        Dictionary<string, string> got = probe.Split(' ').Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1]);
        Assert.NotEqual("0", got["uid"]);
        Assert.Equal("denied", got["mem"]);
        Assert.Equal("denied", got["environ"]);
        Assert.Equal("denied", got["fd"]);
        Assert.Equal("EPERM", got["ptrace"]);
        Assert.Equal("EPERM", got["kill"]);
        Assert.Equal("EPERM", got["pidfd"]);
        Assert.Equal("denied", got["secret"]);
    }

    [Fact]
    public void Isolated_is_the_default_the_antivirus_runs_in_a_driver_host_without_a_switch()
    {
        File.WriteAllText(Path.Combine(_p.Work, "eicar.com"), Eicar);

        // Straight to palisade, not through Run: what is tested is the run without a placement, whatever the suite forces.
        ProcessResult run = _p.Palisade("run", "--driver", PalisadeRun.Driver("antivirus"), "--events", EventsFile, "--", "cat", "eicar.com");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Permission denied", run.Stderr, StringComparison.Ordinal);
        Assert.Contains(EventsOf("kernel"), e => e.GetProperty("kind").GetString() == "driver-host");
        Assert.Contains(EventsOf("kernel"), e => e.GetProperty("kind").GetString() == "driver-loaded" && e.GetProperty("message").GetString() == "antivirus 1.0.0 isolated");
    }

    [Fact]
    public void In_kernel_places_the_antivirus_in_the_kernel_process_and_it_still_denies()
    {
        File.WriteAllText(Path.Combine(_p.Work, "eicar.com"), Eicar);

        ProcessResult run = _p.Run(["--in-kernel", "--driver", PalisadeRun.Driver("antivirus"), "--events", EventsFile], "cat", "eicar.com");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Permission denied", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(EventsOf("kernel"), e => e.GetProperty("kind").GetString() == "driver-host");
        Assert.Contains(EventsOf("kernel"), e => e.GetProperty("kind").GetString() == "driver-loaded" && e.GetProperty("message").GetString() == "antivirus 1.0.0 in-kernel");
    }

    [Fact]
    public void Isolated_and_in_kernel_together_are_refused_before_anything_runs()
    {
        string marker = Path.Combine(_p.Work, "ran");

        ProcessResult run = _p.Run(["--isolated", "--in-kernel", "--driver", PalisadeRun.Driver("antivirus")], "touch", marker);

        Assert.Equal(125, run.ExitCode);
        Assert.Contains("--isolated and --in-kernel contradict each other", run.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(marker));
    }
}
