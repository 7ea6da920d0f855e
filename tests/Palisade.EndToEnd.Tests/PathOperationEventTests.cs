using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// A path operation's event line is written after the supervisor performed it, once the post callbacks ran, with the
/// operation's own result (self-protection decides rename and delete in pre callbacks and allows what it does not
/// protect).
/// </summary>
public sealed class PathOperationEventTests : IDisposable
{
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    [Fact]
    public void Path_operations_are_reported_after_they_ran_with_their_result()
    {
        string events = Path.Combine(_p.Work, "events.json");
        File.WriteAllText(Path.Combine(_p.Work, "before.txt"), "x");

        ProcessResult r = _p.Run(
            ["--driver", PalisadeRun.Driver("selfprotect"), "--param", "selfprotect.processes=/nonexistent/product/",
             "--param", "selfprotect.files=/nonexistent/product", "--events", events],
            "/bin/sh", "-c", "mv before.txt after.txt && rm -f missing.txt && rm after.txt");

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        List<(string Operation, string Path, string Result)> ops = [.. PalisadeRun.Events(events)
            .Where(e => e.GetProperty("type").GetString() == "operation" && e.GetProperty("operation").GetString() is "rename" or "delete")
            .Select(e => (e.GetProperty("operation").GetString()!, e.GetProperty("arguments").GetProperty("path").GetString()!, e.GetProperty("result").GetString()!))];
        Assert.Equal(
            [
                ("rename", Path.Combine(_p.Work, "before.txt"), "Success"),
                ("delete", Path.Combine(_p.Work, "missing.txt"), "ObjectNameNotFound"),
                ("delete", Path.Combine(_p.Work, "after.txt"), "Success"),
            ],
            ops);
    }
}
