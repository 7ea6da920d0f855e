using System.Text;
using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Process notifications and process control of a driver under <c>palisade run --isolated</c>: the process-watch test
/// driver (tests/Palisade.TestDrivers/ProcessWatch) runs in a driver host, where fork, exit and exec-result callbacks
/// arrive as one-way notifications (the guest's system call does not wait for the host) and its TerminateProcess is a
/// request to the kernel.
/// </summary>
public sealed class IsolatedProcessRunTests : IDisposable
{
    private readonly PalisadeRun _p = new();
    private readonly string _events;
    private readonly string _package;

    public IsolatedProcessRunTests()
    {
        _events = Path.Combine(_p.Work, "events.jsonl");
        _package = ProcessNotificationRunTests.Package(_p);
    }

    public void Dispose() => _p.Dispose();

    private ProcessResult Run(string script) => _p.Run(["--isolated", "--driver", _package, "--events", _events], "/bin/sh", "-c", script);

    private List<JsonElement> EventsOf(string type) =>
        [.. PalisadeRun.Events(_events).Where(e => e.GetProperty("type").GetString() == type)];

    /// <summary>The driver's events in the order written, each as its kind and fields (NAME=VALUE separated by spaces).</summary>
    private List<(string Kind, Dictionary<string, string> Fields)> Reported() =>
        [.. EventsOf("driver").Select(e => (e.GetProperty("kind").GetString()!,
            e.GetProperty("message").GetString()!.Split(' ').Select(f => f.Split('=', 2)).ToDictionary(f => f[0], f => f[1])))];

    private static string Text(string hex) => Encoding.UTF8.GetString(Convert.FromHexString(hex));

    private void AssertIsolated()
    {
        Assert.Contains(EventsOf("kernel"), e => e.GetProperty("kind").GetString() == "driver-host"
            && e.GetProperty("message").GetString()!.StartsWith("processwatch runs isolated in driver host ", StringComparison.Ordinal));
        Assert.Empty(EventsOf("driver-fault"));
    }

    [GuestFact("/bin/sh")]
    public void Fork_exit_and_exec_result_notifications_reach_an_isolated_driver_in_the_order_they_happened()
    {
        ProcessResult r = Run("( exit 7 ) & echo child=$!; wait $!; echo status=$?; /bin/true");

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        string child = r.Stdout.Split('\n').Single(l => l.StartsWith("child=", StringComparison.Ordinal))["child=".Length..];
        Assert.Contains("status=7\n", r.Stdout, StringComparison.Ordinal);
        AssertIsolated();
        List<(string Kind, Dictionary<string, string> Fields)> reported = Reported();
        int fork = reported.FindIndex(e => e.Kind == "fork" && e.Fields["pid"] == child);
        int exit = reported.FindIndex(e => e.Kind == "exit" && e.Fields["pid"] == child);
        Assert.True(fork >= 0, "no fork of " + child + " was reported");
        Assert.True(exit > fork, $"the exit of {child} was not reported after its fork (fork at {fork}, exit at {exit})");
        Assert.Equal(("7", "0", reported[fork].Fields["key"]), (reported[exit].Fields["code"], reported[exit].Fields["signal"], reported[exit].Fields["key"]));
        Assert.Contains(reported, e => e.Kind == "exec-result" && e.Fields["ok"] == "true"
            && Text(e.Fields["image"]).EndsWith("/true", StringComparison.Ordinal));
    }

    [GuestFact("/bin/sh")]
    public void TerminateProcess_from_an_isolated_driver_ends_the_guest_process()
    {
        // The driver ends every process whose image is named terminate-me once it has executed: a copy of sleep that would
        // otherwise sleep for a minute.
        string sleep = File.Exists("/bin/sleep") ? "/bin/sleep" : "/usr/bin/sleep";
        File.Copy(sleep, Path.Combine(_p.Work, "terminate-me"));
        File.SetUnixFileMode(Path.Combine(_p.Work, "terminate-me"), UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);

        ProcessResult r = Run("./terminate-me 60; echo status=$?");

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        Assert.Equal("status=137\n", r.Stdout);
        AssertIsolated();
        List<(string Kind, Dictionary<string, string> Fields)> reported = Reported();
        (string _, Dictionary<string, string> terminate) = Assert.Single(reported, e => e.Kind == "terminate");
        Assert.Equal("Success", terminate["status"]);
        Assert.Contains(reported, e => e.Kind == "exit" && e.Fields["pid"] == terminate["pid"] && e.Fields["signal"] == "9");
    }
}
