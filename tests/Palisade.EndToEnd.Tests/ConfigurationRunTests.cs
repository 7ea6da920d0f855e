// Configuration while running, with real programs: `palisade reg` reaches the kernel of a running `palisade run`
// (no SharingViolation), the registry callbacks of that kernel decide it, and the drivers of every run on the home
// pick up the change without a restart.
using System.Text;
using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

public sealed class ConfigurationRunTests : IDisposable
{
    private const string AntivirusKey = @"\Registry\Machine\System\CurrentControlSet\Services\antivirus\Parameters";
    private const string Marker = "palisade-e2e-reconfiguration-marker";
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    /// <summary>A FIFO the guest waits on (<c>read line &lt; gate</c>) until the test opens it for writing.</summary>
    private string Gate(string name)
    {
        string gate = Path.Combine(_p.Work, name);
        Assert.Equal(0, _p.Exec("mkfifo", [gate], _p.Work).ExitCode);
        return gate;
    }

    private static void Open(string gate) => File.WriteAllText(gate, "go\n");

    /// <summary>A file with the marker, and a signature file that detects it.</summary>
    private (string Payload, string Signatures) MarkerFiles()
    {
        string payload = Path.Combine(_p.Work, "payload.txt");
        File.WriteAllText(payload, "before " + Marker + " after\n");
        string signatures = Path.Combine(_p.Work, "live.sigs");
        File.WriteAllText(signatures, "hex " + Convert.ToHexString(Encoding.ASCII.GetBytes(Marker)) + " Test.Live.Marker\n");
        return (payload, signatures);
    }

    /// <summary>Waits until the event file holds a line that matches (the writer thread writes lines within
    /// milliseconds); fails after a minute.</summary>
    private static JsonElement WaitForLine(string events, Func<JsonElement, bool> match)
    {
        JsonElement found = default;
        bool seen = SpinWait.SpinUntil(() =>
        {
            if (!File.Exists(events))
            {
                return false;
            }

            string text;
            using (var f = new FileStream(events, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            using (var reader = new StreamReader(f))
            {
                text = reader.ReadToEnd();
            }

            foreach (string line in text.Split('\n')[..^1])
            {
                JsonElement e = JsonDocument.Parse(line).RootElement;
                if (match(e))
                {
                    found = e.Clone();
                    return true;
                }
            }

            return false;
        }, TimeSpan.FromMinutes(1));
        Assert.True(seen, "no matching line in " + events);
        return found;
    }

    private static bool Reconfigured(JsonElement e) =>
        e.GetProperty("type").GetString() == "driver" && e.GetProperty("kind").GetString() == "reconfigured";

    [GuestFact]
    public void A_relative_home_is_the_folder_of_that_name_in_the_working_directory()
    {
        // The dumps go to HOME/crash, which the bug check facility requires to be an absolute path.
        ProcessResult r = _p.Palisade("run", "--home", "relative-home", "--", "true");

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}\n{r.Stderr}");
        Assert.True(File.Exists(Path.Combine(_p.Work, "relative-home", "registry.hive")));
    }

    /// <summary>The file is read twice before the change, so that its clean verdict is cached and the kernel already
    /// answers for the driver (FileVerdictFlags.SkipPostCreate): the change must clear it. In the kernel and isolated.</summary>
    [GuestTheory("/bin/sh", "mkfifo")]
    [InlineData(false)]
    [InlineData(true)]
    public void Palisade_reg_set_during_a_run_reaches_the_antivirus_and_the_next_open_is_denied(bool isolated)
    {
        (string payload, string signatures) = MarkerFiles();
        string gate = Gate("gate");
        string events = Path.Combine(_p.Work, "events.jsonl");
        string[] mode = PalisadeRun.Mode(isolated);
        using BackgroundRun run = _p.Start([.. mode, "--driver", PalisadeRun.Driver("antivirus"), "--events", events],
            "/bin/sh", "-c", "cat " + payload + "; cat " + payload + "; read line < " + gate + "; cat " + payload + "; echo \"status $?\"");
        Assert.Contains(Marker, run.NextLine(), StringComparison.Ordinal);
        Assert.Contains(Marker, run.NextLine(), StringComparison.Ordinal);
        WaitForLine(events, e => e.GetProperty("type").GetString() == "operation" && e.GetProperty("operation").GetString() == "open"
            && e.GetProperty("arguments").GetProperty("path").GetString() == payload
            && e.GetProperty("verdicts").EnumerateArray().Any(v => v.GetProperty("verdict").GetString() == "cached"));

        ProcessResult set = _p.Palisade("reg", "set", AntivirusKey, "-v", "signatures", "-d", signatures);
        Assert.True(set.ExitCode == 0, "palisade reg set failed while the run held the hive: " + set.Stderr);
        WaitForLine(events, Reconfigured);
        Open(gate);
        ProcessResult r = run.Wait();

        Assert.Equal(0, r.ExitCode);
        Assert.Contains("status 1", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("Permission denied", r.Stderr, StringComparison.Ordinal);
        JsonElement change = WaitForLine(events, e => e.GetProperty("type").GetString() == "parameters");
        Assert.Equal("antivirus", change.GetProperty("driver").GetString());
        Assert.Equal(["signatures"], change.GetProperty("changed").EnumerateArray().Select(n => n.GetString()));
        Assert.Equal("Success", change.GetProperty("status").GetString());
        WaitForLine(events, e => e.GetProperty("type").GetString() == "driver" && e.GetProperty("kind").GetString() == "detection"
            && e.GetProperty("message").GetString()!.Contains("Test.Live.Marker", StringComparison.Ordinal));
    }

    [GuestFact("/bin/sh", "mkfifo")]
    public void Palisade_reg_during_a_run_is_decided_by_that_runs_registry_callbacks()
    {
        string gate = Gate("gate");
        string events = Path.Combine(_p.Work, "events.jsonl");
        using BackgroundRun run = _p.Start(
            ["--driver", PalisadeRun.Driver("selfprotect"), "--param", "selfprotect.files=/nonexistent/product",
             "--param", "selfprotect.processes=/nonexistent/product/", "--param", @"selfprotect.keys=\Registry\Machine\Software\Product",
             "--events", events],
            "/bin/sh", "-c", "echo started; read line < " + gate);
        Assert.Equal("started", run.NextLine());

        ProcessResult during = _p.Palisade("reg", "set", @"\Registry\Machine\Software\Product", "-v", "Setting", "-d", "tampered");
        Open(gate);
        Assert.Equal(0, run.Wait().ExitCode);
        ProcessResult after = _p.Palisade("reg", "set", @"\Registry\Machine\Software\Product", "-v", "Setting", "-d", "changed");

        Assert.Equal(1, during.ExitCode);
        Assert.Contains("(AccessDenied)", during.Stderr, StringComparison.Ordinal);
        Assert.True(after.ExitCode == 0, "with no kernel running the hive file is changed directly: " + after.Stderr);
        // `palisade reg set` creates the key first; the driver refuses that already, so it is the one operation sent.
        JsonElement refused = Assert.Single(PalisadeRun.Events(events), e => e.GetProperty("type").GetString() == "operation"
            && e.GetProperty("operation").GetString() == "registry");
        Assert.Equal("CreateKey", refused.GetProperty("arguments").GetProperty("request").GetString());
        Assert.Equal(0, refused.GetProperty("pid").GetInt32());
        Assert.Equal("AccessDenied", refused.GetProperty("result").GetString());
        Assert.Contains(refused.GetProperty("verdicts").EnumerateArray(), v => v.GetProperty("driver").GetString() == "selfprotect"
            && v.GetProperty("verdict").GetString() == "block AccessDenied");
    }

    [GuestFact("/bin/sh", "mkfifo")]
    public void Two_runs_on_one_home_both_pick_up_a_change_and_the_second_needs_no_private_copy()
    {
        (string payload, string signatures) = MarkerFiles();
        string gateA = Gate("gate-a");
        string gateB = Gate("gate-b");
        string eventsA = Path.Combine(_p.Work, "a.jsonl");
        string eventsB = Path.Combine(_p.Work, "b.jsonl");
        string guest(string gate) => "cat " + payload + "; read line < " + gate + "; cat " + payload + "; echo \"status $?\"";
        using BackgroundRun a = _p.Start(["--driver", PalisadeRun.Driver("antivirus"), "--events", eventsA], "/bin/sh", "-c", guest(gateA));
        Assert.Contains(Marker, a.NextLine(), StringComparison.Ordinal);
        using BackgroundRun b = _p.Start(["--driver", PalisadeRun.Driver("antivirus"), "--events", eventsB], "/bin/sh", "-c", guest(gateB));
        Assert.Contains(Marker, b.NextLine(), StringComparison.Ordinal);

        ProcessResult set = _p.Palisade("reg", "set", AntivirusKey, "-v", "signatures", "-d", signatures);
        Assert.True(set.ExitCode == 0, set.Stderr);
        WaitForLine(eventsA, Reconfigured);
        WaitForLine(eventsB, Reconfigured);
        Open(gateA);
        Open(gateB);

        foreach (ProcessResult r in new[] { a.Wait(), b.Wait() })
        {
            Assert.Contains("status 1", r.Stdout, StringComparison.Ordinal);
            Assert.Contains("Permission denied", r.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("private copy", r.Stderr, StringComparison.Ordinal);
        }
    }
}
