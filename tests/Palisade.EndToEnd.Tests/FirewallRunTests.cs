using System.Security.Cryptography;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// The sample firewall with real sockets on loopback under <c>palisade run</c> (issue 14, network): a decision per
/// accepted peer, the connection log of flows established and closed, and application conditions by folder and by the
/// image's SHA-256.
/// </summary>
public sealed class FirewallRunTests : IDisposable
{
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    private string Rules(string text)
    {
        string rules = Path.Combine(_p.Work, "fw.rules");
        File.WriteAllText(rules, text);
        return rules;
    }

    private string Python() => _p.Direct("python3", "-c", "import os; print(os.readlink('/proc/self/exe'))").Stdout.Trim();

    [Fact]
    public void A_blocked_peer_is_reset_and_the_programs_accept_goes_on_to_the_allowed_one()
    {
        string rules = Rules("block in tcp 127.0.0.2/32\nallow in any\nallow out any\n");
        const string Script = """
import socket, errno
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(8)
port = srv.getsockname()[1]
blocked = socket.socket(); blocked.bind(("127.0.0.2", 0)); blocked.connect(("127.0.0.1", port))
allowed = socket.socket(); allowed.bind(("127.0.0.3", 0)); allowed.connect(("127.0.0.1", port))
conn, peer = srv.accept()
print("accepted", peer[0])
blocked.settimeout(5)
try:
    print("blocked peer got", blocked.recv(1))
except OSError as e:
    print("blocked peer", errno.errorcode.get(e.errno))
srv.setblocking(False)
try:
    srv.accept(); print("accepted again")
except OSError as e:
    print("then", errno.errorcode.get(e.errno))
""";

        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + rules], "python3", "-c", Script);

        Assert.Equal("accepted 127.0.0.3\nblocked peer ECONNRESET\nthen EAGAIN\n", r.Stdout);
    }

    [Fact]
    public void The_connection_log_reports_each_flow_established_and_closed_with_the_ports_it_had()
    {
        string rules = Rules("allow out any\nallow in any\n");
        string events = Path.Combine(_p.Work, "events.jsonl");
        const string Script = """
import socket
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(8)
c = socket.socket(); c.connect(srv.getsockname())
conn, peer = srv.accept()
print(c.getsockname()[1], srv.getsockname()[1])
c.close(); conn.close()
""";

        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + rules, "--param", "firewall.flowLog=on", "--events", events],
            "python3", "-c", Script);

        string[] ports = r.Stdout.Trim().Split(' ');
        string client = ports[0], server = ports[1];
        string[] log = [.. PalisadeRun.Events(events)
            .Where(e => e.GetProperty("type").GetString() == "driver" && e.GetProperty("kind").GetString()!.StartsWith("flow-", StringComparison.Ordinal))
            .Select(e => e.GetProperty("kind").GetString() + " " + e.GetProperty("message").GetString())];
        string outbound = $"tcp out 127.0.0.1:{client} -> 127.0.0.1:{server} app {Python()} by line 1 allow ConnectV4";
        string inbound = $"tcp in 127.0.0.1:{server} <- 127.0.0.1:{client} app {Python()} by line 2 allow AcceptV4";
        Assert.Equal(
            [$"flow-established flow 1 {outbound}", $"flow-established flow 2 {inbound}", $"flow-closed flow 1 {outbound}", $"flow-closed flow 2 {inbound}"],
            log);
    }

    [Fact]
    public void A_rule_for_a_folder_blocks_the_programs_in_it()
    {
        string rules = Rules("block out app " + Path.GetDirectoryName(Python()) + "/\nallow out any\nallow in any\n");

        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + rules], "python3", "-c", ConnectScript);

        Assert.Equal("refused EACCES\n", r.Stdout);
    }

    [Fact]
    public void A_rule_by_sha256_blocks_that_program_and_a_rule_for_another_digest_does_not()
    {
        string digest = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Python())));
        string other = Convert.ToHexStringLower(SHA256.HashData("another program"u8));

        ProcessResult blocked = _p.Run(["--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + Rules("block out sha256 " + digest + "\nallow out any\nallow in any\n")],
            "python3", "-c", ConnectScript);
        ProcessResult allowed = _p.Run(["--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + Rules("block out sha256 " + other + "\nallow out any\nallow in any\n")],
            "python3", "-c", ConnectScript);

        Assert.Equal("refused EACCES\n", blocked.Stdout);
        Assert.Equal("connected\n", allowed.Stdout);
    }

    private const string ConnectScript = """
import socket, errno
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
try:
    socket.create_connection(srv.getsockname(), timeout=5)
    print("connected")
except OSError as e:
    print("refused", errno.errorcode.get(e.errno))
""";
}
