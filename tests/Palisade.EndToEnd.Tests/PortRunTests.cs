using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Communication ports under <c>palisade run</c>, with real programs: a signed driver (tests/Palisade.TestDrivers/Ports)
/// creates a port, and a Python 3 client written from docs/ports.md alone with the standard library's socket and struct
/// (Probes/port_client.py) connects as a guest, is asked about opens and decides them.
/// </summary>
public sealed class PortRunTests : IDisposable
{
    private readonly PalisadeRun _p = new();
    private readonly string _events;
    private readonly string _package;
    private readonly string _client;

    public PortRunTests()
    {
        _events = Path.Combine(_p.Work, "events.jsonl");
        _client = Path.Combine(_p.Work, "port_client.py");
        File.Copy(Path.Combine(PalisadeRun.Repo, "tests", "Palisade.EndToEnd.Tests", "Probes", "port_client.py"), _client);
        foreach (string name in new[] { "allow.ask", "deny-me.ask", "client.seen", "shell.seen" })
        {
            File.WriteAllText(Path.Combine(_p.Work, name), "content of " + name + "\n");
        }

        _package = Package();
    }

    public void Dispose() => _p.Dispose();

    private string Socket => Path.Combine(_p.Home, "ports", "e2e");

    /// <summary>The ports fixture as a package signed with the development key (which the run's home trusts).</summary>
    private string Package()
    {
        const string project = "Palisade.TestDrivers.Ports";
        string built = Path.Combine(AppContext.BaseDirectory, "TestDrivers", project);
        string package = Path.Combine(_p.Work, "ports"); // --param NAME.KEY takes NAME from the package's folder.
        Directory.CreateDirectory(package);
        File.Copy(Path.Combine(built, project + ".dll"), Path.Combine(package, project + ".dll"));
        File.WriteAllText(Path.Combine(package, "manifest.json"), $$"""
            {
              "name": "ports",
              "vendor": "Palisade tests",
              "version": "1.0.0",
              "assembly": "{{project}}.dll",
              "entryType": "Palisade.TestDrivers.Ports.PortsDriver",
              "minimumApiVersion": "1.0",
              "altitudes": [ { "kind": "files", "altitude": "320300" } ]
            }
            """);
        ProcessResult signed = _p.Palisade("driver", "sign", package, "--key", Path.Combine(PalisadeRun.Repo, "drivers", "dev-signing-key.pem"));
        Assert.True(signed.ExitCode == 0, "signing the ports driver failed (the verifier refuses it?): " + signed.Stderr);
        return package;
    }

    private ProcessResult Run(string script, params string[] parameters) =>
        _p.Run(["--driver", _package, .. parameters.SelectMany(p => new[] { "--param", "ports." + p }), "--events", _events], "/bin/sh", "-c", script);

    private List<string> Reported(string kind) =>
        [.. PalisadeRun.Events(_events).Where(e => e.GetProperty("type").GetString() == "driver" && e.GetProperty("kind").GetString() == kind)
            .Select(e => e.GetProperty("message").GetString()!)];

    [GuestFact("/bin/sh", "/bin/cat", "python3", "mkfifo")]
    public void A_python_client_written_from_the_documented_format_is_asked_about_opens_and_its_replies_decide_them()
    {
        ProcessResult r = Run($"mkfifo ready; python3 {_client} {Socket} answer 2 ready & read x < ready; cat allow.ask; cat deny-me.ask; echo cat=$?; wait $!; echo client=$?");

        Assert.Contains("driver replied pong:hello status 0x00000000", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("content of allow.ask", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("asked " + Path.Combine(_p.Work, "allow.ask") + " -> allow", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("asked " + Path.Combine(_p.Work, "deny-me.ask") + " -> deny", r.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("content of deny-me.ask", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("deny-me.ask: Permission denied", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("cat=1", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("client=0", r.Stdout, StringComparison.Ordinal);
        string connected = Assert.Single(Reported("connected"));
        Assert.Matches("^pid=[1-9][0-9]* uid=0 gid=0 context=python$", connected);
        Assert.Single(Reported("disconnected"));
    }

    [RootGuestFact("/bin/sh", "python3", "/usr/bin/python3", "setpriv")]
    public void A_client_whose_user_the_port_does_not_admit_is_refused_with_AccessDenied_while_root_connects()
    {
        // Search permission on the way to the socket, so that what refuses user 65534 is the port's policy, not Linux;
        // and /usr/bin/python3, since the python3 on PATH may be a shim under /root.
        File.SetUnixFileMode(_p.Home, (UnixFileMode)0x1C9); // 0711
        File.SetUnixFileMode(_p.Work, (UnixFileMode)0x1ED); // 0755

        ProcessResult r = Run($"python3 {_client} {Socket} connect; setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 {_client} {Socket} connect; echo exit=$?", "allowUid=0");

        Assert.Matches("connected [1-9][0-9]*", r.Stdout);
        Assert.Contains("refused 0xC0000022", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("exit=3", r.Stdout, StringComparison.Ordinal);
        Assert.Single(Reported("connected"));
        JsonElement refused = Assert.Single(PalisadeRun.Events(_events), e => e.GetProperty("type").GetString() == "kernel" && e.GetProperty("kind").GetString() == "port-refused");
        Assert.Contains("(uid 65534, gid 65534): AccessDenied", refused.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [GuestFact("/bin/sh", "/bin/rm", "/bin/mv", "/bin/chmod", "/bin/ln", "python3")]
    public void A_guest_can_neither_remove_rename_nor_chmod_a_port_socket_nor_add_to_its_folder()
    {
        string folder = Path.GetDirectoryName(Socket)!;
        ProcessResult r = Run($"rm -f {Socket}; mv {Socket} {Socket}.moved; chmod 600 {Socket}; ln -s /tmp {folder}/e2e-link; mv {_p.Work}/client.seen {folder}/e2e; python3 {_client} {Socket} connect");

        Assert.Contains($"cannot remove '{Socket}': Operation not permitted", r.Stderr, StringComparison.Ordinal);
        Assert.Matches("cannot move .*: Operation not permitted", r.Stderr);
        Assert.Contains($"changing permissions of '{Socket}': Operation not permitted", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("e2e-link", r.Stderr, StringComparison.Ordinal);
        Assert.Matches("connected [1-9][0-9]*", r.Stdout);
        Assert.False(File.Exists(Path.Combine(folder, "e2e-link")));
        Assert.True(File.Exists(Path.Combine(_p.Work, "client.seen")));
    }

    [GuestFact("/bin/sh", "/bin/cat", "python3", "mkfifo")]
    public void With_exclusion_on_the_clients_own_reads_do_not_reach_the_drivers_file_callbacks()
    {
        ProcessResult r = ReadByClientThenShell("exclude=true");

        Assert.Equal(0, r.ExitCode);
        List<string> saw = Reported("saw");
        Assert.Contains(Path.Combine(_p.Work, "shell.seen"), saw);
        Assert.DoesNotContain(Path.Combine(_p.Work, "client.seen"), saw);
    }

    [GuestFact("/bin/sh", "/bin/cat", "python3", "mkfifo")]
    public void Without_exclusion_the_clients_own_reads_reach_the_drivers_file_callbacks()
    {
        ProcessResult r = ReadByClientThenShell("exclude=false");

        Assert.Equal(0, r.ExitCode);
        List<string> saw = Reported("saw");
        Assert.Contains(Path.Combine(_p.Work, "shell.seen"), saw);
        Assert.Contains(Path.Combine(_p.Work, "client.seen"), saw);
    }

    private ProcessResult ReadByClientThenShell(string exclude) =>
        Run($"mkfifo ready; python3 {_client} {Socket} read client.seen ready & read x < ready; cat shell.seen > /dev/null; wait $!", exclude);
}
