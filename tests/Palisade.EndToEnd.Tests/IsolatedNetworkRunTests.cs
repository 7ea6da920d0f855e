using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// The network filter engine and registry callbacks of a driver under <c>palisade run --isolated</c> (docs/security.md,
/// "The isolated mode"), with real sockets on loopback and the real <c>palisade reg</c>: the sample firewall blocks and
/// allows as it does in the kernel, its connection log reports every flow, a callout in its host decides on the context it
/// was sent, a flow callback that throws in its host is contained, and a registry callback in its host denies and bypasses.
/// Fixed ports (62417, 62418) lie above the ephemeral range and are used by no other test; nothing listens on them: a
/// connect the filters let through would fail with ECONNREFUSED, not hang.
/// </summary>
public sealed class IsolatedNetworkRunTests : IDisposable
{
    private const int FirewallBlockedPort = 62417;
    private const int CalloutBlockedPort = 62418;
    private const string Key = @"\Registry\Machine\Software\IsolatedRegistryTest";
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    private string EventsFile => Path.Combine(_p.Work, "events.jsonl");

    private IEnumerable<JsonElement> EventsOf(string type) =>
        PalisadeRun.Events(EventsFile).Where(e => e.GetProperty("type").GetString() == type);

    private IEnumerable<JsonElement> DriverEvents(string kind) =>
        EventsOf("driver").Where(e => e.GetProperty("kind").GetString() == kind);

    private string Rules(string text)
    {
        string rules = Path.Combine(_p.Work, "fw.rules");
        File.WriteAllText(rules, text);
        return rules;
    }

    private string Python() => _p.Direct("python3", "-c", "import os; print(os.readlink('/proc/self/exe'))").Stdout.Trim();

    /// <summary>The test driver (tests/Palisade.TestDrivers/NetworkRegistry) as a package signed with the development key.</summary>
    private string NetworkRegistryDriver()
    {
        const string project = "Palisade.TestDrivers.NetworkRegistry";
        string built = Path.Combine(AppContext.BaseDirectory, "TestDrivers", project);
        string package = Path.Combine(_p.Work, "netreg");
        Directory.CreateDirectory(package);
        File.Copy(Path.Combine(built, project + ".dll"), Path.Combine(package, project + ".dll"));
        File.WriteAllText(Path.Combine(package, "manifest.json"), $$"""
            {
              "name": "netreg",
              "vendor": "Palisade tests",
              "version": "1.0.0",
              "assembly": "{{project}}.dll",
              "entryType": "Palisade.TestDrivers.NetworkRegistry.NetworkRegistryDriver",
              "minimumApiVersion": "1.0"
            }
            """);
        ProcessResult signed = _p.Palisade("driver", "sign", package, "--key", Path.Combine(PalisadeRun.Repo, "drivers", "dev-signing-key.pem"));
        Assert.True(signed.ExitCode == 0, "signing the network-registry driver failed (the verifier refuses it?): " + signed.Stderr);
        return package;
    }

    /// <summary>Connects (blocking) to a listening socket of its own, then to <c>BLOCKED</c>; prints each outcome.</summary>
    private static string ConnectScript(int blocked) => """
import socket, errno
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
for name, address in (("allowed", srv.getsockname()), ("blocked", ("127.0.0.1", BLOCKED))):
    s = socket.socket()
    try:
        s.connect(address); print(name, "connected")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno))
    s.close()
""".Replace("BLOCKED", blocked.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    private void AssertRanIsolated(string driver)
    {
        string host = Assert.Single(EventsOf("kernel"), e => e.GetProperty("kind").GetString() == "driver-host").GetProperty("message").GetString()!;
        Assert.StartsWith(driver + " runs isolated in driver host ", host, StringComparison.Ordinal);
    }

    [GuestTheory("python3")]
    [InlineData(false)]
    [InlineData(true)]
    public void The_firewall_refuses_a_blocked_connect_with_EACCES_and_lets_an_allowed_one_through_in_the_kernel_and_isolated(bool isolated)
    {
        string rules = Rules($"block out tcp 127.0.0.1/32 port {FirewallBlockedPort}\nallow out any\nallow in any\n");
        string[] mode = PalisadeRun.Mode(isolated);

        ProcessResult r = _p.Run([.. mode, "--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + rules, "--events", EventsFile],
            "python3", "-c", ConnectScript(FirewallBlockedPort));

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        Assert.Equal("allowed connected\nblocked EACCES\n", r.Stdout);
        Assert.Equal(isolated, EventsOf("kernel").Any(e => e.GetProperty("kind").GetString() == "driver-host"));
        Assert.Empty(EventsOf("driver-fault"));
    }

    [GuestFact("python3")]
    public void The_isolated_firewalls_connection_log_reports_each_flow_established_and_closed_in_order()
    {
        // The same expectation as FirewallRunTests' in the kernel: the flows cross to the host off the guest's path, in
        // the order the kernel told them, and those still queued at the end of the run are told before the unload.
        string rules = Rules("allow out any\nallow in any\n");
        const string Script = """
import socket
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(8)
c = socket.socket(); c.connect(srv.getsockname())
conn, peer = srv.accept()
print(c.getsockname()[1], srv.getsockname()[1])
c.close(); conn.close()
""";

        ProcessResult r = _p.Run(["--isolated", "--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + rules, "--param", "firewall.flowLog=on", "--events", EventsFile],
            "python3", "-c", Script);

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        AssertRanIsolated("firewall");
        string[] ports = r.Stdout.Trim().Split(' ');
        string client = ports[0], server = ports[1];
        string[] log = [.. EventsOf("driver").Where(e => e.GetProperty("kind").GetString()!.StartsWith("flow-", StringComparison.Ordinal))
            .Select(e => e.GetProperty("kind").GetString() + " " + e.GetProperty("message").GetString())];
        string outbound = $"tcp out 127.0.0.1:{client} -> 127.0.0.1:{server} app {Python()} by line 1 allow ConnectV4";
        string inbound = $"tcp in 127.0.0.1:{server} <- 127.0.0.1:{client} app {Python()} by line 2 allow AcceptV4";
        Assert.Equal(
            [$"flow-established flow 1 {outbound}", $"flow-established flow 2 {inbound}", $"flow-closed flow 1 {outbound}", $"flow-closed flow 2 {inbound}"],
            log);
        Assert.Empty(EventsOf("driver-fault"));
    }

    [GuestFact("python3")]
    public void An_isolated_callout_decides_on_the_context_it_was_sent_and_its_block_fails_the_connect_with_EACCES()
    {
        ProcessResult r = _p.Run(["--isolated", "--driver", NetworkRegistryDriver(), "--param", "netreg.port=" + CalloutBlockedPort, "--events", EventsFile],
            "python3", "-c", ConnectScript(CalloutBlockedPort));

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        Assert.Equal("allowed connected\nblocked EACCES\n", r.Stdout);
        AssertRanIsolated("netreg");
        string decided = Assert.Single(DriverEvents("classify")).GetProperty("message").GetString()!;
        Assert.Equal($"blocked ConnectV4 127.0.0.1:{CalloutBlockedPort} app {Python()}", decided);
        Assert.Empty(EventsOf("driver-fault"));
    }

    [GuestFact("python3")]
    public void An_isolated_flow_callback_that_throws_is_a_contained_fault_and_the_guests_connection_works()
    {
        const string Script = """
import socket
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(8)
c = socket.socket(); c.connect(srv.getsockname())
conn, peer = srv.accept()
c.sendall(b"ping"); print(conn.recv(4).decode())
c.close(); conn.close()
""";

        ProcessResult r = _p.Run(["--isolated", "--driver", NetworkRegistryDriver(), "--param", "netreg.flowThrows=on", "--events", EventsFile],
            "python3", "-c", Script);

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        Assert.Equal("ping\n", r.Stdout);
        AssertRanIsolated("netreg");

        // Each of the four notifications (two flows, established and closed) is a fault of the flow callback, reported as
        // an in-kernel callback's that threw; the host lives on (no failure of its channel).
        JsonElement[] faults = [.. EventsOf("driver-fault")];
        Assert.Equal(4, faults.Length);
        Assert.All(faults, f =>
        {
            Assert.Equal("netreg", f.GetProperty("driver").GetString());
            Assert.Contains("InvalidOperationException in the driver host: the test's flow callback refuses flow ", f.GetProperty("reason").GetString()!, StringComparison.Ordinal);
        });
        Assert.Equal(2, faults.Count(f => f.GetProperty("operation").GetString()!.StartsWith("flow-established", StringComparison.Ordinal)));
        Assert.Equal(2, faults.Count(f => f.GetProperty("operation").GetString()!.StartsWith("flow-closed", StringComparison.Ordinal)));
    }

    [GuestFact("/bin/sh", "mkfifo")]
    public void A_registry_operation_an_isolated_registry_callback_denies_fails_and_its_bypass_answers_a_query()
    {
        string gate = Path.Combine(_p.Work, "gate");
        Assert.Equal(0, _p.Exec("mkfifo", [gate], _p.Work).ExitCode);
        using BackgroundRun run = _p.Start(["--isolated", "--driver", NetworkRegistryDriver(), "--param", "netreg.key=" + Key, "--events", EventsFile],
            "/bin/sh", "-c", "echo started; read line < " + gate);
        Assert.Equal("started", run.NextLine());

        ProcessResult set = _p.Palisade("reg", "set", Key, "-v", "Setting", "-d", "tampered");
        ProcessResult query = _p.Palisade("reg", "query", Key, "-v", "virtual");
        File.WriteAllText(gate, "go\n");
        ProcessResult end = run.Wait();

        Assert.True(end.ExitCode == 0, $"status {end.ExitCode}\n{end.Stderr}");
        Assert.Equal(1, set.ExitCode);
        Assert.Contains("(AccessDenied)", set.Stderr, StringComparison.Ordinal);
        Assert.True(query.ExitCode == 0, "the bypassed query failed: " + query.Stderr);
        Assert.Equal("virtual  DWord  4242", query.Stdout.Trim());
        AssertRanIsolated("netreg");
        Assert.Equal($"blocked PreCreateKey of {Key}", Assert.Single(DriverEvents("registry")).GetProperty("message").GetString());
        Assert.Empty(EventsOf("driver-fault"));
    }
}
