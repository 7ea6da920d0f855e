using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Held operations with real programs under <c>palisade run</c> and the signed sample drivers: the antivirus holding an
/// open while its scanning service (a program of the same run) or one of its worker threads scans, the firewall holding
/// a connection until its prompt program answers. Only the guest whose operation is held waits; the tests prove it by
/// ordering (the held operation is released only after another guest did its work), not by time.
/// </summary>
public sealed class HeldOperationRunTests : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private const string Eicar = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

    /// <summary>
    /// A scanning service on the antivirus's port (docs/ports.md): each request in a thread of its own; a request for a
    /// path ending in slow.txt first tells the GATE_HELD FIFO that the open is held, then waits for a line on GATE_DONE
    /// before it scans, and a path ending in never.txt is never answered. Once connected it opens the READY FIFO (the shell
    /// waits on it).
    /// </summary>
    private const string ServiceScript = """
import socket, struct, sys, threading
port, gate_held, gate_done = sys.argv[1:4]
H = struct.Struct("<BBHIQ")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
sock.connect(port)
sock.recv(65600)
sock.send(H.pack(2, 0, 0, 0, 0) + struct.pack("<II", 0, 0))
assert H.unpack_from(sock.recv(65600))[3] == 0
# The service's own opens are not scanned once it is connected: only then may it read the test virus.
eicar = open(sys.argv[4], "rb").read()
def handle(rid, path):
    if path.endswith("never.txt"):
        with open(gate_held, "w") as g: g.write("held\n")
        return
    if path.endswith("slow.txt"):
        with open(gate_held, "w") as g: g.write("held\n")
        with open(gate_done) as g: g.read()
    with open(path, "rb") as f:
        verdict = "infected" if eicar in f.read() else "clean"
    sock.send(H.pack(4, 0, 0, 0, 0) + (rid + " " + verdict).encode())
open(sys.argv[5], "w").close()
while True:
    record = sock.recv(65600)
    if len(record) < H.size:
        break
    rid, path = record[H.size:].decode().split(" ", 1)
    threading.Thread(target=handle, args=(rid, path)).start()
""";

    /// <summary>Another guest: waits until the open is held, then opens a file 1,000 times and connects on loopback.</summary>
    private const string OtherGuestScript = """
import os, socket, sys
gate_held, gate_done, clean, log = sys.argv[1:5]
with open(gate_held) as g: g.read()
for _ in range(1000):
    os.close(os.open(clean, os.O_RDONLY))
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
socket.create_connection(("127.0.0.1", server.getsockname()[1]), timeout=10).close()
with open(log, "a") as f: f.write("other guest: 1000 opens and a connect\n")
with open(gate_done, "w") as g: g.write("done\n")
""";

    private readonly PalisadeRun _p = new();
    private readonly string _events;

    public HeldOperationRunTests()
    {
        _events = Path.Combine(_p.Work, "events.jsonl");
        File.WriteAllText(Path.Combine(_p.Work, "service.py"), ServiceScript);
        File.WriteAllText(Path.Combine(_p.Work, "other.py"), OtherGuestScript);
        File.WriteAllText(Path.Combine(_p.Work, "eicar-pattern"), Eicar);
        File.WriteAllText(Path.Combine(_p.Work, "slow.txt"), "scanned while the other guest worked\n");
        File.WriteAllText(Path.Combine(_p.Work, "clean.txt"), "clean\n");
        File.WriteAllText(Path.Combine(_p.Work, "eicar.com"), Eicar);
        foreach (string gate in new[] { "gate-held", "gate-done", "gate-ready" })
        {
            ProcessResult made = _p.Direct("mkfifo", Path.Combine(_p.Work, gate));
            Assert.Equal(0, made.ExitCode);
        }
    }

    public void Dispose() => _p.Dispose();

    private string[] AntivirusWithService(params string[] more) => AntivirusWithService(false, more);

    /// <summary>The antivirus with its scanning service on port av-scan, in the kernel or isolated.</summary>
    private string[] AntivirusWithService(bool isolated, params string[] more) =>
        [.. Mode(isolated), "--driver", PalisadeRun.Driver("antivirus"), "--param", "antivirus.scanService=av-scan", "--events", _events, .. more];

    /// <summary>Starts the service and waits until it is connected to the antivirus's port (the driver then knows it).</summary>
    private string StartService => $"{Python} service.py {Path.Combine(_p.Home, "ports", "av-scan")} gate-held gate-done eicar-pattern gate-ready & service=$!; cat gate-ready; ";

    private List<JsonElement> Events(string type) => [.. PalisadeRun.Events(_events).Where(e => e.GetProperty("type").GetString() == type)];

    private List<JsonElement> Opens(string name) => [.. Events("operation").Where(e => e.GetProperty("operation").GetString() == "open"
        && e.GetProperty("arguments").GetProperty("path").GetString()!.EndsWith("/" + name, StringComparison.Ordinal))];

    private static IEnumerable<string> Verdicts(JsonElement operation) =>
        operation.GetProperty("verdicts").EnumerateArray().Select(v => v.GetProperty("verdict").GetString()!);

    [GuestFact(Python, "/bin/sh", "/bin/cat")]
    public void While_a_scan_holds_one_guests_open_another_guest_completes_1000_opens_and_a_loopback_connect()
    {
        ProcessResult r = _p.Run(
            AntivirusWithService("--driver", PalisadeRun.Driver("firewall")),
            "/bin/sh", "-c",
            StartService
            + "(cat slow.txt > slow.out && echo 'held guest: read slow.txt' >> order.log) & held=$!; "
            + $"{Python} other.py gate-held gate-done clean.txt order.log; wait $held; status=$?; kill $service; exit $status");

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        Assert.Equal(["other guest: 1000 opens and a connect", "held guest: read slow.txt"], File.ReadAllLines(Path.Combine(_p.Work, "order.log")));
        Assert.Equal("scanned while the other guest worked\n", File.ReadAllText(Path.Combine(_p.Work, "slow.out")));
        JsonElement held = Assert.Single(Opens("slow.txt"), e => Verdicts(e).Any(v => v.StartsWith("pending ", StringComparison.Ordinal)));
        Assert.Equal("Success", held.GetProperty("result").GetString());
        Assert.True(Opens("clean.txt").Count(e => e.GetProperty("result").GetString() == "Success") >= 1000);
        Assert.Contains(Events("operation"), e => e.GetProperty("operation").GetString() == "connect" && e.GetProperty("result").GetString() == "Success");
    }

    [GuestTheory(Python, "/bin/sh", "/bin/cat")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_scanning_service_under_the_same_run_reads_the_files_it_scans_and_its_verdict_decides(bool isolated)
    {
        ProcessResult r = _p.Run(AntivirusWithService(isolated), "/bin/sh", "-c",
            StartService + "cat clean.txt; cat eicar.com; status=$?; kill $service; exit $status");

        Assert.Equal(1, r.ExitCode);
        Assert.Equal("clean\n", r.Stdout);
        Assert.Contains("eicar.com: Permission denied", r.Stderr, StringComparison.Ordinal);
        Assert.Contains(Verdicts(Assert.Single(Opens("eicar.com"), e => e.GetProperty("result").GetString() == "AccessDenied")), v => v.StartsWith("pending ", StringComparison.Ordinal));

        // The service opened the file it scanned while the guest's open of it was held; its own open was not held.
        JsonElement serviceOpen = Assert.Single(Opens("eicar.com"), e => e.GetProperty("result").GetString() == "Success");
        Assert.DoesNotContain(Verdicts(serviceOpen), v => v.StartsWith("pending ", StringComparison.Ordinal));
        Assert.Contains(Events("driver"), e => e.GetProperty("kind").GetString() == "detection");
    }

    /// <summary>The driver in the kernel, or in a driver host of its own (<c>--isolated</c>): holds behave the same.</summary>
    private static string[] Mode(bool isolated) => PalisadeRun.Mode(isolated);

    [GuestTheory("/bin/sh", "/bin/cat")]
    [InlineData(false)]
    [InlineData(true)]
    public void An_open_held_for_a_scan_on_a_worker_thread_is_scanned_through_the_file_the_guest_receives(bool isolated)
    {
        ProcessResult r = _p.Run(
            [.. Mode(isolated), "--driver", PalisadeRun.Driver("antivirus"), "--param", "antivirus.asyncScan=true", "--events", _events],
            "/bin/sh", "-c", "cat clean.txt && cat eicar.com");

        Assert.Equal(1, r.ExitCode);
        Assert.Equal("clean\n", r.Stdout);
        Assert.Contains("eicar.com: Permission denied", r.Stderr, StringComparison.Ordinal);
        Assert.Contains(Verdicts(Assert.Single(Opens("clean.txt"))), v => v.StartsWith("pending ", StringComparison.Ordinal));
        Assert.Equal("AccessDenied", Assert.Single(Opens("eicar.com")).GetProperty("result").GetString());
    }

    [GuestTheory(Python, "/bin/sh", "/bin/cat")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_guest_killed_while_its_open_is_held_cancels_the_hold_and_the_driver_is_told_its_id(bool isolated)
    {
        File.WriteAllText(Path.Combine(_p.Work, "never.txt"), "never answered\n");
        ProcessResult r = _p.Run(AntivirusWithService(isolated), "/bin/sh", "-c",
            StartService + "cat never.txt & c=$!; cat gate-held > /dev/null; kill -9 $c; wait $c; echo \"cat: $?\"; "
            + "until grep -q hold-ended events.jsonl; do :; done; kill $service");

        Assert.Equal("cat: 137\n", r.Stdout);
        string pending = Assert.Single(Verdicts(Assert.Single(Opens("never.txt"))), v => v.StartsWith("pending ", StringComparison.Ordinal));
        string id = pending["pending ".Length..];
        JsonElement told = Assert.Single(Events("driver"), e => e.GetProperty("kind").GetString() == "hold-ended");
        Assert.StartsWith("open " + id + " of " + Path.Combine(_p.Work, "never.txt"), told.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.EndsWith(": cancelled", told.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [GuestTheory(Python, "/bin/sh", "/bin/cat")]
    [InlineData(false)]
    [InlineData(true)]
    public void An_open_whose_scan_does_not_answer_in_its_hold_time_gets_the_deny_verdict(bool isolated)
    {
        File.WriteAllText(Path.Combine(_p.Work, "never.txt"), "never answered\n");
        ProcessResult r = _p.Run(AntivirusWithService(isolated, "--param", "antivirus.holdTime=1", "--param", "antivirus.onTimeout=deny"), "/bin/sh", "-c",
            StartService + "(cat gate-held > /dev/null &); cat never.txt; status=$?; kill $service; exit $status");

        Assert.Equal(1, r.ExitCode);
        Assert.Contains("never.txt: Permission denied", r.Stderr, StringComparison.Ordinal);
        JsonElement told = Assert.Single(Events("driver"), e => e.GetProperty("kind").GetString() == "hold-ended");
        Assert.EndsWith(": timed out", told.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [GuestTheory("/bin/sh", "/bin/cat", "/bin/grep")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_hold_its_driver_never_completes_ends_at_its_hold_time_with_the_timeout_verdict_and_the_driver_is_told(bool isolated)
    {
        // hold-forever holds every open of hold-me and never completes it; its hold time is 1 s and its timeout verdict deny.
        File.WriteAllText(Path.Combine(_p.Work, "hold-me"), "held\n");
        ProcessResult r = _p.Run(
            [.. Mode(isolated), "--flavor", "compat", "--driver", PalisadeRun.Attack("hold-forever"), "--events", _events],
            "/bin/sh", "-c", "cat hold-me; echo \"cat $?\"; until grep -q hold-ended events.jsonl; do :; done");

        // The driver is told on one of its worker threads after the guest got its verdict: the guest waits for the line,
        // or the run could end (and unload the driver) first.
        Assert.Equal("cat 1\n", r.Stdout);
        Assert.Contains("hold-me: Permission denied", r.Stderr, StringComparison.Ordinal);
        JsonElement open = Assert.Single(Opens("hold-me"));
        Assert.Equal("AccessDenied", open.GetProperty("result").GetString());
        string id = Assert.Single(Verdicts(open), v => v.StartsWith("pending ", StringComparison.Ordinal))["pending ".Length..];
        Assert.Contains("timeout: deny", Verdicts(open));
        JsonElement told = Assert.Single(Events("driver"), e => e.GetProperty("kind").GetString() == "hold-ended");
        Assert.Equal("hold " + id + ": TimedOut", told.GetProperty("message").GetString());
    }

    [GuestTheory("/bin/sh", "/bin/true", "/bin/grep")]
    [InlineData(false)]
    [InlineData(true)]
    public void An_exec_its_driver_holds_and_never_completes_fails_at_its_hold_time_with_EACCES(bool isolated)
    {
        // hold-forever holds every exec of a program named hold-exec (IProcessCallbacks.PendCreate).
        File.Copy("/bin/true", Path.Combine(_p.Work, "hold-exec"));
        ProcessResult r = _p.Run(
            [.. Mode(isolated), "--flavor", "compat", "--driver", PalisadeRun.Attack("hold-forever"), "--events", _events],
            "/bin/sh", "-c", "./hold-exec; echo \"exec $?\"; until grep -q hold-ended events.jsonl; do :; done");

        Assert.Equal("exec 126\n", r.Stdout);
        Assert.Contains("hold-exec: Permission denied", r.Stderr, StringComparison.Ordinal);
        string id = HeldId();
        JsonElement told = Assert.Single(Events("driver"), e => e.GetProperty("kind").GetString() == "hold-ended");
        Assert.Equal("hold " + id + ": TimedOut", told.GetProperty("message").GetString());
    }

    [GuestTheory("/bin/sh", "/bin/sleep", "/bin/grep")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_signal_its_driver_holds_and_never_completes_fails_at_its_hold_time_with_EPERM(bool isolated)
    {
        // hold-forever holds every signal to a process named hold-kill (IObjectCallbacks.PendOperation); the timeout
        // verdict (deny) removes every right, so the kill fails with EPERM and the process lives on (its /proc entry says so).
        File.Copy("/bin/sleep", Path.Combine(_p.Work, "hold-kill"));
        ProcessResult r = _p.Run(
            [.. Mode(isolated), "--flavor", "compat", "--driver", PalisadeRun.Attack("hold-forever"), "--events", _events],
            "/bin/sh", "-c", "./hold-kill 30 & k=$!; until [ \"$(cat /proc/$k/comm)\" = hold-kill ]; do :; done; kill -TERM $k; echo \"kill $?\"; "
            + "until grep -q hold-ended events.jsonl; do :; done; [ \"$(cat /proc/$k/comm)\" = hold-kill ] && echo alive");

        Assert.Equal("kill 1\nalive\n", r.Stdout);
        Assert.Contains("Operation not permitted", r.Stderr, StringComparison.Ordinal);
        string id = HeldId();
        JsonElement told = Assert.Single(Events("driver"), e => e.GetProperty("kind").GetString() == "hold-ended"
            && e.GetProperty("message").GetString()!.StartsWith("hold " + id + ":", StringComparison.Ordinal));
        Assert.Equal("hold " + id + ": TimedOut", told.GetProperty("message").GetString());
    }

    /// <summary>The id of the first hold hold-forever reported (its "held" event: "hold ID: STATUS, STATE").</summary>
    private string HeldId()
    {
        string held = Events("driver").First(e => e.GetProperty("kind").GetString() == "held").GetProperty("message").GetString()!;
        Assert.Contains(": Success", held, StringComparison.Ordinal);
        return held["hold ".Length..held.IndexOf(':', StringComparison.Ordinal)];
    }

    [GuestTheory("/bin/sh", "/bin/cat", "/bin/grep")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_guest_killed_while_a_driver_holds_its_open_cancels_the_hold_and_the_driver_is_told(bool isolated)
    {
        File.WriteAllText(Path.Combine(_p.Work, "hold-me"), "held\n");
        ProcessResult r = _p.Run(
            [.. Mode(isolated), "--flavor", "compat", "--driver", PalisadeRun.Attack("hold-forever"), "--param", "hold-forever.holdSeconds=60", "--events", _events],
            "/bin/sh", "-c", "cat hold-me & c=$!; until grep -q '\"kind\":\"held\"' events.jsonl; do :; done; kill -9 $c; wait $c; echo \"cat $?\"; "
            + "until grep -q hold-ended events.jsonl; do :; done");

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        Assert.Equal("cat 137\n", r.Stdout);
        string id = Assert.Single(Verdicts(Assert.Single(Opens("hold-me"))), v => v.StartsWith("pending ", StringComparison.Ordinal))["pending ".Length..];
        JsonElement told = Assert.Single(Events("driver"), e => e.GetProperty("kind").GetString() == "hold-ended");
        Assert.Equal("hold " + id + ": Cancelled", told.GetProperty("message").GetString());
    }

    [GuestTheory(Python, "/bin/sh")]
    [InlineData(false)]
    [InlineData(true)]
    public void An_ask_rule_holds_a_connect_until_the_prompt_program_allows_it(bool isolated)
    {
        ProcessResult r = RunPrompt("allow", isolated);

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        Assert.Equal("connected\n", r.Stdout);
        JsonElement connect = Assert.Single(Events("operation"), e => e.GetProperty("operation").GetString() == "connect");
        Assert.Equal(["pending 1", "callout Permit"], Verdicts(connect));
        Assert.Contains(Events("driver"), e => e.GetProperty("kind").GetString() == "prompt-answered" && e.GetProperty("message").GetString() == "connection 1: allow (Success)");
    }

    [GuestTheory(Python, "/bin/sh")]
    [InlineData(false)]
    [InlineData(true)]
    public void An_ask_rule_answered_block_fails_the_connect_with_EACCES(bool isolated)
    {
        ProcessResult r = RunPrompt("block", isolated);

        Assert.Equal("refused EACCES\n", r.Stdout);
        JsonElement connect = Assert.Single(Events("operation"), e => e.GetProperty("operation").GetString() == "connect");
        Assert.Equal("NetworkAccessDenied", connect.GetProperty("result").GetString());
    }

    /// <summary>A loopback connect under "ask out tcp 127.0.0.1", answered by the sample prompt program with <paramref name="answer"/>.</summary>
    private ProcessResult RunPrompt(string answer, bool isolated)
    {
        string rules = Path.Combine(_p.Work, "fw.rules");
        File.WriteAllText(rules, "ask out tcp 127.0.0.1\nallow out any\nallow in any\n");
        const string client = """
import socket, errno
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
try:
    socket.create_connection(("127.0.0.1", server.getsockname()[1]), timeout=30); print("connected")
except OSError as e:
    print("refused", errno.errorcode.get(e.errno))
""";
        File.WriteAllText(Path.Combine(_p.Work, "client.py"), client);
        string prompt = Path.Combine(PalisadeRun.Repo, "samples", "firewall-prompt.py");
        return _p.Run(
            [.. Mode(isolated), "--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + rules, "--param", "firewall.prompt=fw-prompt", "--events", _events],
            "/bin/sh", "-c",
            $"{Python} {prompt} {Path.Combine(_p.Home, "ports", "fw-prompt")} --answer {answer} --ready gate-ready 2>/dev/null & prompt=$!; cat gate-ready; {Python} client.py; kill $prompt");
    }
}
