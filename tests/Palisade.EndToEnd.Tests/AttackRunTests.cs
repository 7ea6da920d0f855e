namespace Palisade.EndToEnd.Tests;

/// <summary>
/// An attack driver under the real <c>palisade run</c>: in the protected flavor the driver verifier refuses it at
/// load, before any of its code or any guest runs, and the run exits 125 naming the rule; in the compat flavor (no
/// verifier, no guard) the same driver really blinds the antivirus. That the guard catches such code when it is
/// inside the kernel anyway is proved in-process by the guard tests (AttackTests).
/// </summary>
public sealed class AttackRunTests : IDisposable
{
    private const string Eicar = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    private static string Attack(string name) => PalisadeRun.Attack(name);

    [RootFact("unshare", "mount")]
    public void The_test_virus_on_a_mount_the_kernel_has_never_seen_is_scanned_the_first_time()
    {
        // The antivirus skips files on kernel file systems, and the kernel learns a mount's file system once per mount
        // (by its unique id). A guest makes a mount of its own in a private mount namespace, a tmpfs and then a second
        // one over it, and reads the test virus from each at its first sight: each is a new mount, and each read is scanned.
        Directory.CreateDirectory(Path.Combine(_p.Work, "mnt"));

        // Written without reading it (a write-only open is not scanned), then read: the read is what must be refused.
        string write = "printf '%s' '" + Eicar + "' > mnt/e && test -s mnt/e";
        ProcessResult run = _p.Run(
            ["--driver", PalisadeRun.Driver("antivirus")],
            "unshare", "-m", "sh", "-c",
            $"mount -t tmpfs none mnt && {write} && echo made; cat mnt/e; echo \"first $?\"; " +
            $"mount -t tmpfs none mnt && {write} && echo made; cat mnt/e; echo \"second $?\"");

        Assert.True(run.ExitCode == 0, $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        Assert.DoesNotContain("EICAR", run.Stdout, StringComparison.Ordinal);
        Assert.Equal("made\nfirst 1\nmade\nsecond 1\n", run.Stdout);
        Assert.Equal(2, run.Stderr.Split("Permission denied").Length - 1);
    }

    [Fact]
    public void Callback_removal_under_run_is_refused_at_load_with_status_125_naming_the_rule()
    {
        File.WriteAllText(Path.Combine(_p.Work, "eicar.com"), Eicar);

        ProcessResult run = _p.Run(
            ["--driver", PalisadeRun.Driver("antivirus"), "--driver", Attack("callback-remove"), "--param", "callback-remove.victim=antivirus"],
            "sh", "-c", "echo started; cat eicar.com");

        Assert.True(run.ExitCode == 125, $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        Assert.DoesNotContain("started", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("refused: the driver verifier refused callback-remove: Palisade.Attacks.StructureTamper.dll: refused: ", run.Stderr, StringComparison.Ordinal);
        Assert.Matches(@"\(rule PV0\d\d [^)]+\)", run.Stderr);
        Assert.False(Directory.Exists(Path.Combine(_p.Home, "crash")) && Directory.EnumerateFiles(Path.Combine(_p.Home, "crash")).Any());
    }

    /// <summary>
    /// A driver host loads only the bytes the kernel verified and does not run the verifier itself, so the kernel's
    /// verification is the one wall before a host: a rootkit placed in a host (by the run, or asking for one in its
    /// manifest) must meet it there too, before any host starts.
    /// </summary>
    [Theory]
    [InlineData("--isolated")]
    [InlineData("--in-kernel")]
    public void A_rootkit_is_refused_by_the_verifier_wherever_it_is_placed_and_no_driver_host_starts(string placement)
    {
        string events = Path.Combine(_p.Work, "events.jsonl");

        ProcessResult run = _p.Run(
            [placement, "--driver", PalisadeRun.Driver("antivirus"), "--driver", Attack("callback-remove"), "--events", events],
            "sh", "-c", "echo started");

        Assert.True(run.ExitCode == 125, $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        Assert.DoesNotContain("started", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("refused: the driver verifier refused callback-remove", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("\"kind\":\"driver-host\"", File.ReadAllText(events), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("protected")]
    [InlineData("compat")]
    public void A_filter_above_the_antivirus_cannot_undo_its_verdict_through_the_api_under_run(string flavor)
    {
        File.WriteAllText(Path.Combine(_p.Work, "eicar.com"), Eicar);
        File.WriteAllText(Path.Combine(_p.Work, "clean.txt"), "clean");

        ProcessResult run = _p.Run(
            ["--flavor", flavor, "--driver", PalisadeRun.Driver("antivirus"), "--driver", Attack("api-undo")],
            "sh", "-c", "cat clean.txt; cat eicar.com; echo \"status $?\"");

        Assert.True(run.ExitCode == 0, $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        Assert.Contains("clean", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("EICAR", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("status 1", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("Permission denied", run.Stderr, StringComparison.Ordinal);
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
