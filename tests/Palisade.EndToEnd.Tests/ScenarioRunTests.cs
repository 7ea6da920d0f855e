namespace Palisade.EndToEnd.Tests;

/// <summary>The vendors' scenarios with real programs under <c>palisade run</c>: what the program sees, and what the event stream records.</summary>
public sealed class ScenarioRunTests : IDisposable
{
    private const string Eicar = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    [Fact]
    public void Cat_of_an_EICAR_file_fails_with_EACCES_and_the_detection_is_in_the_event_stream()
    {
        string eicar = Path.Combine(_p.Work, "eicar.com");
        File.WriteAllText(eicar, Eicar);
        string events = Path.Combine(_p.Work, "events.jsonl");
        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("antivirus"), "--events", events], "cat", eicar);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("Permission denied", r.Stderr, StringComparison.Ordinal);
        var all = PalisadeRun.Events(events);
        Assert.Contains(all, e => e.GetProperty("type").GetString() == "driver" && e.GetProperty("kind").GetString() == "detection"
            && e.GetProperty("path").GetString() == eicar);
        Assert.Contains(all, e => e.GetProperty("type").GetString() == "operation" && e.GetProperty("operation").GetString() == "open"
            && e.GetProperty("arguments").GetProperty("path").GetString() == eicar && e.GetProperty("result").GetString() == "AccessDenied");
    }

    [Fact]
    public void A_script_matching_a_byte_pattern_signature_cannot_be_executed_and_the_shell_sees_EACCES()
    {
        string signatures = Path.Combine(_p.Work, "signatures.txt");
        const string Marker = "palisade-test-malware-marker";
        File.WriteAllText(signatures, "hex " + Convert.ToHexString(System.Text.Encoding.ASCII.GetBytes(Marker)) + " Test.Script.Marker\n");
        string script = Path.Combine(_p.Work, "infected.sh");
        File.WriteAllText(script, "#!/bin/sh\n# " + Marker + "\necho ran\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string events = Path.Combine(_p.Work, "events.jsonl");
        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("antivirus"), "--param", "antivirus.signatures=" + signatures, "--events", events],
            "/bin/sh", "-c", script + "; echo \"status $?\"");
        Assert.DoesNotContain("ran\n", r.Stdout.Replace("status", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("status 126", r.Stdout, StringComparison.Ordinal);
        Assert.Contains(PalisadeRun.Events(events), e => e.GetProperty("type").GetString() == "driver"
            && e.GetProperty("kind").GetString() == "detection" && e.GetProperty("path").GetString() == script);
    }

    [Fact]
    public void A_firewall_block_makes_a_python_connect_to_a_loopback_listener_fail_with_EACCES()
    {
        string rules = Path.Combine(_p.Work, "fw.rules");
        File.WriteAllText(rules, "block out tcp 127.0.0.1 port 1-65535 app " + ResolvePython() + "\nallow out any\nallow in any\n");
        const string script = """
import socket, errno
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
try:
    socket.create_connection(("127.0.0.1", srv.getsockname()[1]), timeout=5)
    print("connected")
except OSError as e:
    print("refused", errno.errorcode.get(e.errno))
""";
        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + rules], "python3", "-c", script);
        Assert.Equal("refused EACCES\n", r.Stdout);
    }

    [Fact]
    public void A_tampered_driver_package_is_refused_before_the_program_runs()
    {
        string copy = Path.Combine(_p.Work, "antivirus");
        Directory.CreateDirectory(copy);
        foreach (string f in Directory.GetFiles(PalisadeRun.Driver("antivirus")))
        {
            File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        }

        string dll = Directory.GetFiles(copy, "*.dll").Single();
        byte[] bytes = File.ReadAllBytes(dll);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(dll, bytes);
        ProcessResult r = _p.Run(["--driver", copy], "/bin/echo", "should not run");
        Assert.Equal(125, r.ExitCode);
        Assert.DoesNotContain("should not run", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("refused", r.Stderr, StringComparison.Ordinal);
    }

    /// <summary>The python3 binary itself (what /proc/PID/exe shows), not a launcher script in front of it.</summary>
    private string ResolvePython() =>
        _p.Direct("python3", "-c", "import os; print(os.readlink('/proc/self/exe'))").Stdout.Trim();
}
