using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Every guest process that ends reaches the kernel's process exit service once, with how it ended: an exit code, or
/// the signal that killed it (which no system call of the guest announces). The event stream shows one "exit"
/// operation per process; self-protection registers a process-exit callback, so the host mediates process lifetime.
/// </summary>
public sealed class ProcessExitTests : IDisposable
{
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    [Fact]
    public void Exits_by_exit_code_and_by_signal_each_reach_the_exit_service_once_with_their_status()
    {
        string events = Path.Combine(_p.Work, "events.json");
        string script = "sleep 60 & echo killed=$!; kill -9 $!; wait $!; "
            + "sh -c 'echo terminated=$$; kill -TERM $$'; "
            + "sh -c 'echo exited=$$; exit 4'; "
            + "echo self=$$; exit 3";

        ProcessResult r = _p.Run(
            ["--driver", PalisadeRun.Driver("selfprotect"), "--param", "selfprotect.processes=/nonexistent/product/",
             "--param", "selfprotect.files=/nonexistent/product", "--events", events],
            "/bin/sh", "-c", script);

        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        Dictionary<string, int> pids = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('='))
            .ToDictionary(kv => kv[0], kv => int.Parse(kv[1], System.Globalization.CultureInfo.InvariantCulture));
        List<JsonElement> exits = [.. PalisadeRun.Events(events).Where(e =>
            e.GetProperty("type").GetString() == "operation" && e.GetProperty("operation").GetString() == "exit")];

        Assert.Equal(("137", "9"), ExitOf(exits, pids["killed"]));
        Assert.Equal(("143", "15"), ExitOf(exits, pids["terminated"]));
        Assert.Equal(("4", "0"), ExitOf(exits, pids["exited"]));
        Assert.Equal(("3", "0"), ExitOf(exits, pids["self"]));
        Assert.All(exits.GroupBy(e => e.GetProperty("pid").GetInt32()), g => Assert.Single(g));
    }

    private static (string Code, string Signal) ExitOf(List<JsonElement> exits, int pid)
    {
        JsonElement e = Assert.Single(exits, x => x.GetProperty("pid").GetInt32() == pid);
        JsonElement a = e.GetProperty("arguments");
        return (a.GetProperty("code").GetString()!, a.GetProperty("signal").GetString()!);
    }
}
