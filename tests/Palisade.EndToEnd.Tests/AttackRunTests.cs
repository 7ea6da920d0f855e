namespace Palisade.EndToEnd.Tests;

/// <summary>
/// An attack driver under the real <c>palisade run</c>: in the protected flavor the guard stops the system with bug
/// check 0x109, every guest dies, the run exits 109 with a stop screen and a dump, and <c>palisade analyze</c> names
/// the driver; in the compat flavor (no guard) the same driver really blinds the antivirus.
/// </summary>
public sealed class AttackRunTests : IDisposable
{
    private const string Eicar = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    private static string Attack(string name)
    {
        string dir = Path.Combine(PalisadeRun.Repo, "attacks", "out", name);
        Assert.True(Directory.Exists(dir), $"{dir} is missing: run attacks/build.sh (./test.sh does) before the end-to-end tests");
        return dir;
    }

    [Fact]
    public void Callback_removal_under_run_stops_every_guest_with_status_109_and_analyze_names_the_driver()
    {
        File.WriteAllText(Path.Combine(_p.Work, "eicar.com"), Eicar);

        ProcessResult run = _p.Run(
            ["--driver", PalisadeRun.Driver("antivirus"), "--driver", Attack("callback-remove"), "--param", "callback-remove.victim=antivirus"],
            "sh", "-c", "echo started; sleep 30; cat eicar.com; echo survived");

        Assert.True(run.ExitCode == 109 && !run.Stdout.Contains("survived", StringComparison.Ordinal), $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        Assert.Contains("started", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("*** STOP: 0x00000109", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("Every guest has been stopped.", run.Stderr, StringComparison.Ordinal);
        string dump = Assert.Single(Directory.GetFiles(Path.Combine(_p.Home, "crash"), "bugcheck-0x109-*.json"));

        ProcessResult analysis = _p.Palisade("analyze", dump);
        Assert.Equal(0, analysis.ExitCode);
        Assert.Contains("region type: NotificationCallout", analysis.Stdout, StringComparison.Ordinal);
        Assert.Contains("removed: registered by antivirus", analysis.Stdout, StringComparison.Ordinal);
        Assert.Contains("(driver \"callback-remove\")", analysis.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_driver_hiding_from_the_driver_list_under_run_is_caught_and_the_dump_lists_the_guests_recent_opens()
    {
        ProcessResult run = _p.Run(
            ["--driver", PalisadeRun.Driver("antivirus"), "--driver", Attack("driver-hide")],
            "sh", "-c", "cat " + Path.Combine(PalisadeRun.Repo, "samples", "hello.txt") + "; sleep 30; echo survived");

        Assert.True(run.ExitCode == 109 && !run.Stdout.Contains("survived", StringComparison.Ordinal), $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        string dump = Assert.Single(Directory.GetFiles(Path.Combine(_p.Home, "crash"), "bugcheck-0x109-*.json"));

        ProcessResult analysis = _p.Palisade("analyze", dump);
        Assert.Contains("region type: LoadedModuleList", analysis.Stdout, StringComparison.Ordinal);
        Assert.Contains("(driver \"driver-hide\")", analysis.Stdout, StringComparison.Ordinal);
        Assert.Contains("CreateFile (open flags", analysis.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_callback_removal_in_the_compat_flavor_lets_the_test_virus_through()
    {
        File.WriteAllText(Path.Combine(_p.Work, "eicar.com"), Eicar);
        ProcessResult guarded = _p.Run(["--flavor", "compat", "--driver", PalisadeRun.Driver("antivirus")], "cat", "eicar.com");
        Assert.Equal(1, guarded.ExitCode);

        ProcessResult blinded = _p.Run(
            ["--flavor", "compat", "--driver", PalisadeRun.Driver("antivirus"), "--driver", Attack("callback-remove"), "--param", "callback-remove.victim=antivirus"],
            "cat", "eicar.com");

        Assert.Equal(0, blinded.ExitCode);
        Assert.Equal(Eicar, blinded.Stdout.TrimEnd('\n'));
        Assert.Contains("COMPAT FLAVOR", blinded.Stderr, StringComparison.Ordinal);
    }
}
