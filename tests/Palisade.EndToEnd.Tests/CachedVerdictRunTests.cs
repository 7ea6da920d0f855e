using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// The sample antivirus caches its clean verdicts with FileVerdictFlags.SkipPostCreate: the kernel answers a read of a
/// file already scanned clean, and unchanged since, without calling the driver (isolated, without crossing to its driver
/// host), while EICAR is still denied. In both modes: the driver in the kernel, and in a driver host of its own.
/// </summary>
public sealed class CachedVerdictRunTests : IDisposable
{
    private const string Eicar = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private readonly PalisadeRun _p = new();
    private readonly string _events;

    public CachedVerdictRunTests()
    {
        _events = Path.Combine(_p.Work, "events.jsonl");
        File.WriteAllText(Path.Combine(_p.Work, "clean.txt"), "clean\n");
        File.WriteAllText(Path.Combine(_p.Work, "eicar.com"), Eicar);
    }

    public void Dispose() => _p.Dispose();

    private static string[] Mode(bool isolated) => PalisadeRun.Mode(isolated);

    private List<JsonElement> Opens(string name) => [.. PalisadeRun.Events(_events).Where(e => e.GetProperty("type").GetString() == "operation"
        && e.GetProperty("operation").GetString() == "open"
        && e.GetProperty("arguments").GetProperty("path").GetString()!.EndsWith("/" + name, StringComparison.Ordinal))];

    private static IEnumerable<string> AntivirusVerdicts(JsonElement operation) =>
        operation.GetProperty("verdicts").EnumerateArray()
            .Where(v => v.GetProperty("driver").GetString() == "antivirus")
            .Select(v => v.GetProperty("verdict").GetString()!);

    [GuestTheory("/bin/sh", "/bin/cat")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_clean_file_read_again_is_decided_on_its_cached_verdict_and_EICAR_is_still_denied(bool isolated)
    {
        ProcessResult r = _p.Run([.. Mode(isolated), "--driver", PalisadeRun.Driver("antivirus"), "--events", _events],
            "/bin/sh", "-c", $"cd {_p.Work} && cat clean.txt && cat clean.txt && cat eicar.com");

        Assert.Equal(1, r.ExitCode);
        Assert.Equal("clean\nclean\n", r.Stdout);
        Assert.Contains("eicar.com: Permission denied", r.Stderr, StringComparison.Ordinal);
        List<JsonElement> clean = Opens("clean.txt");
        Assert.Equal(2, clean.Count);
        Assert.Empty(AntivirusVerdicts(clean[0]));
        Assert.Equal(["cached"], AntivirusVerdicts(clean[1]));
        Assert.Equal("AccessDenied", Assert.Single(Opens("eicar.com")).GetProperty("result").GetString());
    }

    [GuestTheory("/bin/sh", "/bin/cat", "mkfifo")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_clean_file_made_infected_from_outside_the_run_after_it_was_cached_is_scanned_again_and_denied(bool isolated)
    {
        string fifo = Path.Combine(_p.Work, "go");
        Assert.Equal(0, _p.Direct("mkfifo", fifo).ExitCode);
        using BackgroundRun run = _p.Start([.. Mode(isolated), "--driver", PalisadeRun.Driver("antivirus"), "--events", _events],
            "/bin/sh", "-c", $"cd {_p.Work} && cat clean.txt && cat clean.txt && read line < go && (cat clean.txt || echo denied)");

        Assert.Equal("clean", run.NextLine());
        Assert.Equal("clean", run.NextLine());
        File.WriteAllText(Path.Combine(_p.Work, "clean.txt"), Eicar);
        File.WriteAllText(fifo, "go\n");
        Assert.Equal("denied", run.NextLine());
        Assert.Contains("Permission denied", run.Wait().Stderr, StringComparison.Ordinal);
        List<JsonElement> opens = Opens("clean.txt");
        Assert.Equal(3, opens.Count);
        Assert.Equal(["cached"], AntivirusVerdicts(opens[1]));
        Assert.Equal("AccessDenied", opens[2].GetProperty("result").GetString());
    }

    /// <summary>The filter's verdict cache capacity reaches the kernel in both modes: with room for 4 verdicts (one slot),
    /// a fifth file judged clean evicts the first, whose next read is scanned again instead of answered as cached.</summary>
    [GuestTheory("/bin/sh", "/bin/cat")]
    [InlineData(false)]
    [InlineData(true)]
    public void The_antivirus_verdict_cache_capacity_holds_in_both_modes(bool isolated)
    {
        for (int i = 1; i <= 5; i++)
        {
            File.WriteAllText(Path.Combine(_p.Work, "f" + i), "clean file " + i + "\n");
        }

        ProcessResult r = _p.Run([.. Mode(isolated), "--driver", PalisadeRun.Driver("antivirus"), "--param", "antivirus.verdictCache=4", "--events", _events],
            "/bin/sh", "-c", $"cd {_p.Work} && cat f1 f1 f2 f3 f4 f5 f1 > /dev/null");

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}\n{r.Stderr}");
        List<JsonElement> first = Opens("f1");
        Assert.Equal(3, first.Count);
        Assert.Equal(["cached"], AntivirusVerdicts(first[1]));
        Assert.Empty(AntivirusVerdicts(first[2]));
    }
}
