using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// No silent disabling, with real programs under <c>palisade run</c>: a signed, verified driver whose minifilter faults
/// on purpose (tests/Palisade.TestDrivers/Faulting) gets its own timeout verdict, a driver-fault event naming the
/// driver, the registration and the operation, a notification, and is disabled only as its policy says.
/// </summary>
public sealed class FaultRunTests : IDisposable
{
    private readonly PalisadeRun _p = new();
    private readonly string _events;
    private readonly string _package;

    public FaultRunTests()
    {
        _events = Path.Combine(_p.Work, "events.jsonl");
        File.WriteAllText(Path.Combine(_p.Work, "fault-me.txt"), "ok\n");
        File.WriteAllText(Path.Combine(_p.Work, "enable-me"), "");
        _package = Package();
    }

    public void Dispose() => _p.Dispose();

    /// <summary>The faulting fixture as a package signed with the development key (which the run's home trusts).</summary>
    private string Package()
    {
        const string project = "Palisade.TestDrivers.Faulting";
        string built = Path.Combine(AppContext.BaseDirectory, "TestDrivers", project);
        string package = Path.Combine(_p.Work, "faulting");
        Directory.CreateDirectory(package);
        File.Copy(Path.Combine(built, project + ".dll"), Path.Combine(package, project + ".dll"));
        File.WriteAllText(Path.Combine(package, "manifest.json"), $$"""
            {
              "name": "faulting",
              "vendor": "Palisade tests",
              "version": "1.0.0",
              "assembly": "{{project}}.dll",
              "entryType": "Palisade.TestDrivers.Faulting.FaultingDriver",
              "minimumApiVersion": "1.0",
              "altitudes": [ { "kind": "files", "altitude": "320100" }, { "kind": "files", "altitude": "320200" } ]
            }
            """);
        ProcessResult signed = _p.Palisade("driver", "sign", package, "--key", Path.Combine(PalisadeRun.Repo, "drivers", "dev-signing-key.pem"));
        Assert.True(signed.ExitCode == 0, "signing the faulting driver failed (the verifier refuses it?): " + signed.Stderr);
        return package;
    }

    private ProcessResult Run(string script, params string[] parameters) =>
        _p.Run(["--driver", _package, .. parameters.SelectMany(p => new[] { "--param", "faulting." + p }), "--events", _events], "/bin/sh", "-c", script);

    private List<JsonElement> Lines(string type) => [.. PalisadeRun.Events(_events).Where(e => e.GetProperty("type").GetString() == type)];

    private List<JsonElement> Faults() => Lines("driver-fault");

    private List<string> Told() => [.. Lines("driver").Where(e => e.GetProperty("kind").GetString() == "told").Select(e => e.GetProperty("message").GetString()!)];

    [GuestFact("/bin/sh", "/bin/cat")]
    public void A_filter_that_throws_gets_its_deny_verdict_a_fault_event_naming_driver_registration_and_operation_and_its_driver_is_told()
    {
        ProcessResult r = Run("cat fault-me.txt", "mode=throw", "onTimeout=deny");

        Assert.Equal(1, r.ExitCode);
        Assert.Contains("fault-me.txt: Permission denied", r.Stderr, StringComparison.Ordinal);
        JsonElement fault = Assert.Single(Faults());
        Assert.Equal("faulting", fault.GetProperty("driver").GetString());
        Assert.Equal("minifilter faulting at 320100", fault.GetProperty("registration").GetString());
        Assert.Matches("^pre-create " + Path.Combine(_p.Work, "fault-me.txt").Replace(".", "\\.", StringComparison.Ordinal) + " by process [0-9]+$", fault.GetProperty("operation").GetString());
        Assert.Equal(("threw", "deny"), (fault.GetProperty("fault").GetString(), fault.GetProperty("verdict").GetString()));
        Assert.Contains("fault on purpose", fault.GetProperty("reason").GetString(), StringComparison.Ordinal);
        string told = Assert.Single(Told());
        Assert.StartsWith("Threw minifilter faulting at 320100 | pre-create " + Path.Combine(_p.Work, "fault-me.txt"), told, StringComparison.Ordinal);
        Assert.EndsWith("consecutive=1 disabled=False verdict=Deny", told, StringComparison.Ordinal);
    }

    [GuestFact("/bin/sh", "/bin/cat")]
    public void After_the_faults_in_a_row_its_policy_allows_a_filter_is_disabled_until_its_driver_enables_it()
    {
        // The shell's own redirections: nothing else reaches the filter between two faults, so they are in a row.
        const string once = "{ read l < fault-me.txt && echo $l; } || echo denied; ";
        ProcessResult r = Run(once + once + once + ": < enable-me; " + once, "mode=throw", "onTimeout=deny", "disableAfter=2");

        Assert.Equal("denied\ndenied\nok\ndenied\n", r.Stdout);
        Assert.Equal([false, true, false], Faults().Select(f => f.GetProperty("disabled").GetBoolean()));
        Assert.Equal([1, 2, 1], Faults().Select(f => f.GetProperty("consecutiveFaults").GetInt32()));
    }

    [GuestFact("/bin/sh", "/bin/cat")]
    public void A_filter_that_returns_Pending_without_holding_anything_faults_with_an_invalid_verdict()
    {
        ProcessResult r = Run("cat fault-me.txt", "mode=lie", "onTimeout=deny");

        Assert.Equal(1, r.ExitCode);
        JsonElement fault = Assert.Single(Faults());
        Assert.Equal("invalid-verdict", fault.GetProperty("fault").GetString());
        Assert.Contains("Pending without a pend", fault.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [GuestTheory("/bin/sh", "/bin/cat")]
    [InlineData(false)]
    [InlineData(true)]
    public void An_overrunning_filter_is_the_one_blamed_and_its_late_deny_gives_way_to_its_allow_verdict(bool isolated)
    {
        // The antivirus is loaded beside it and scans the same open: only the slow filter may be blamed. Isolated, the
        // overrun is blamed as in the kernel and the host is kept: only a host silent past the hang limit is ended.
        ProcessResult r = _p.Run([.. PalisadeRun.Mode(isolated), "--driver", PalisadeRun.Driver("antivirus"), "--driver", _package, "--param", "faulting.mode=overrun", "--events", _events],
            "/bin/sh", "-c", "cat fault-me.txt");

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}: {r.Stderr}");
        Assert.Equal("ok\n", r.Stdout);
        JsonElement fault = Assert.Single(Faults());
        Assert.Equal(("faulting", "minifilter faulting at 320100", "overran", "allow"),
            (fault.GetProperty("driver").GetString(), fault.GetProperty("registration").GetString(), fault.GetProperty("fault").GetString(), fault.GetProperty("verdict").GetString()));
        Assert.StartsWith("Overran minifilter faulting at 320100", Assert.Single(Told()), StringComparison.Ordinal);
    }
}
