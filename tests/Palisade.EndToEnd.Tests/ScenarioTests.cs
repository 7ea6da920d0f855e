// The vendor scenarios with real programs: `palisade run` boots the kernel, loads a signed sample driver package
// (drivers/out, signed with the development key, which each test trusts in a temporary home) and runs an unmodified
// program under it. Each test needs seccomp user notification; without it, the tests are skipped with the reason.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Palisade.EndToEnd.Tests;

/// <summary>Builds the sample packages once if they are missing (drivers/build.sh, as ./palisade and ./test.sh do).</summary>
public sealed class SamplePackages
{
    public SamplePackages()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Palisade.sln")))
            {
                Repository = d.FullName;
                break;
            }
        }

        Assert.NotNull(Repository);
        Cli = Path.Combine(AppContext.BaseDirectory, "palisade.dll");
        string[] names = ["antivirus", "firewall", "appcontrol", "selfprotect"];
        if (Array.TrueForAll(names, n => File.Exists(Path.Combine(Repository, "drivers", "out", n, "signature.json"))))
        {
            return;
        }

        using var build = Process.Start(new ProcessStartInfo(Path.Combine(Repository, "drivers", "build.sh")) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string log = build.StandardOutput.ReadToEnd() + build.StandardError.ReadToEnd();
        build.WaitForExit();
        Assert.True(build.ExitCode == 0, "drivers/build.sh failed:\n" + log);
    }

    public string? Repository { get; }

    public string Cli { get; }

    public string Package(string name) => Path.Combine(Repository!, "drivers", "out", name);

    public string DevelopmentPublicKey => Path.Combine(Repository!, "drivers", "dev-signing-key.pem.pub");
}

public sealed class ScenarioTests : IClassFixture<SamplePackages>, IDisposable
{
    private const string Eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private readonly SamplePackages _packages;
    private readonly string _dir = Directory.CreateTempSubdirectory("palisade-scenario-").FullName;
    private readonly string _home;

    public ScenarioTests(SamplePackages packages)
    {
        _packages = packages;
        _home = Path.Combine(_dir, "home");
        (int exit, _, string error) = Palisade("trust", "add", packages.DevelopmentPublicKey, "--name", "palisade-dev", "--home", _home);
        Assert.True(exit == 0, error);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ProcessResult Palisade(params string[] arguments) => ProcessRunner.Run("dotnet", [_packages.Cli, .. arguments]);

    /// <summary>Runs a sample driver where its manifest places it (isolated: the sample manifests say nothing).</summary>
    private string[] Run(string driver, string[] parameters, params string[] program) => Run(null, driver, parameters, program);

    /// <summary>Runs a sample driver in the kernel (<c>--in-kernel</c>), or in a driver host of its own (<c>--isolated</c>),
    /// or where its manifest places it (null).</summary>
    private string[] Run(bool? isolated, string driver, string[] parameters, params string[] program)
    {
        var args = new List<string> { "run", "--home", _home, "--driver", _packages.Package(driver), "--events", Path.Combine(_dir, "events.json") };
        args.AddRange(isolated is { } placed ? PalisadeRun.Mode(placed) : PalisadeRun.Placed([]));

        foreach (string p in parameters)
        {
            args.Add("--param");
            args.Add(driver + "." + p);
        }

        args.Add("--");
        args.AddRange(program);
        return [.. args];
    }

    private string Events => File.ReadAllText(Path.Combine(_dir, "events.json"));

    [GuestFact("/usr/bin/cat")]
    public void Cat_of_an_EICAR_file_fails_with_permission_denied_while_a_clean_file_is_read()
    {
        string eicar = Path.Combine(_dir, "eicar.com");
        string clean = Path.Combine(_dir, "clean.txt");
        File.WriteAllText(eicar, Eicar);
        File.WriteAllText(clean, "hello from a clean file\n");

        (int exit, string output, string error) = Palisade(Run("antivirus", [], "/usr/bin/cat", clean, eicar));

        Assert.Equal(1, exit);
        Assert.Equal("hello from a clean file\n", output);
        Assert.Contains(eicar + ": Permission denied", error, StringComparison.Ordinal);
        Assert.Contains("\"kind\":\"detection\"", Events, StringComparison.Ordinal);
    }

    [GuestFact("/usr/bin/curl")]
    public void Curl_to_a_loopback_listener_is_refused_by_a_firewall_rule_for_curl()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        string rules = Path.Combine(_dir, "firewall.rules");
        File.WriteAllText(rules, $"block out tcp 127.0.0.1 port {port} app /usr/bin/curl\n");

        (int exit, _, string error) = Palisade(Run("firewall", ["rules=" + rules], "/usr/bin/curl", "-sS", $"http://127.0.0.1:{port}/"));

        Assert.Equal(7, exit); // curl: couldn't connect
        Assert.Contains("Couldn't connect", error, StringComparison.Ordinal);
        Assert.False(listener.Pending(), "no connection reached the listener");
    }

    [GuestFact("/usr/bin/curl")]
    public void Curl_to_a_loopback_listener_succeeds_when_the_rules_block_another_port()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        Task served = Task.Run(async () =>
        {
            using TcpClient client = await listener.AcceptTcpClientAsync();
            NetworkStream stream = client.GetStream();
            byte[] request = new byte[4096];
            _ = await stream.ReadAsync(request);
            await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        });
        string rules = Path.Combine(_dir, "firewall.rules");
        File.WriteAllText(rules, $"block out tcp 127.0.0.1 port {(port == 65535 ? 1 : port + 1)} app /usr/bin/curl\n");

        (int exit, string output, string error) = Palisade(Run("firewall", ["rules=" + rules], "/usr/bin/curl", "-sS", $"http://127.0.0.1:{port}/"));

        Assert.True(exit == 0, error);
        Assert.Equal("ok", output);
        served.Wait();
    }

    [GuestTheory("/bin/sh", "/usr/bin/sleep", "/usr/bin/readlink")]
    [InlineData(false)]
    [InlineData(true)]
    public void Kill_9_of_a_protected_process_fails_with_EPERM_and_the_process_lives_on(bool isolated)
    {
        string agent = Path.Combine(_dir, "product", "bin", "agent");
        Directory.CreateDirectory(Path.GetDirectoryName(agent)!);
        File.Copy("/usr/bin/sleep", agent);
        // The shell waits (on /proc, not on time) until the agent has really started, then tries to kill it; the agent
        // then ends by itself: exit status 0 from wait, not 137 (killed).
        string script = $"{agent} 1 & p=$!; until [ \"$(readlink /proc/$p/exe)\" = {agent} ]; do :; done; kill -9 $p; echo kill=$?; wait $p; echo agent=$?";

        (int exit, string output, string error) = Palisade(Run(isolated, "selfprotect", ["processes=" + Path.GetDirectoryName(agent) + "/"], "/bin/sh", "-c", script));

        Assert.True(exit == 0, error);
        Assert.Equal("kill=1\nagent=0\n", output);
        Assert.Contains("Operation not permitted", error, StringComparison.Ordinal);
        Assert.Contains("\"kind\":\"tamper-attempt\"", Events, StringComparison.Ordinal);
    }

    [GuestFact("/bin/sh", "/usr/bin/mkfifo")]
    public void Kill_9_of_a_fork_of_a_protected_process_that_never_execs_fails_with_EPERM()
    {
        string agent = Path.Combine(_dir, "product", "bin", "agent-sh");
        Directory.CreateDirectory(Path.GetDirectoryName(agent)!);
        File.Copy("/bin/sh", agent);
        string ready = Path.Combine(_dir, "ready"), go = Path.Combine(_dir, "go"), started = Path.Combine(_dir, "started");
        // The agent (a protected shell) forks a subshell that never execs; the subshell's create of "started" is its first
        // mediated call, so its fork is reported before the agent sees the file and hands its pid out through "ready".
        string product = $"( : > {started}; read x < {go}; exit 4 ) & until [ -e {started} ]; do :; done; echo $! > {ready}; wait $!; echo sub=$?";
        string script = $"mkfifo {ready} {go}; {agent} -c '{product}' & read p < {ready}; kill -9 $p; echo kill=$?; echo go > {go}; wait";

        (int exit, string output, string error) = Palisade(Run("selfprotect", ["processes=" + Path.GetDirectoryName(agent) + "/"], "/bin/sh", "-c", script));

        Assert.True(exit == 0, error);
        Assert.Equal("kill=1\nsub=4\n", output);
        Assert.Contains("Operation not permitted", error, StringComparison.Ordinal);
    }

    private ProcessResult RunToolUnderApplicationControl(bool listTheTool)
    {
        string tool = Path.Combine(_dir, "tool");
        File.Copy("/usr/bin/true", tool);
        string list = Path.Combine(_dir, "allow.list");
        string sha256 = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(tool)));
        // The shell and the tool load the C library and the dynamic loader: images the list must name too.
        File.WriteAllText(list, "path /usr/bin/\npath /usr/lib/\n" + (listTheTool ? "sha256 " + sha256 + " the tool\n" : ""));
        return Palisade(Run("appcontrol", ["allowlist=" + list, "mode=enforce"], "/bin/sh", "-c", tool + "; echo tool=$?"));
    }

    [GuestFact("/bin/sh", "/usr/bin/true")]
    public void Enforced_application_control_denies_an_unlisted_program_with_permission_denied()
    {
        (int exit, string output, string error) = RunToolUnderApplicationControl(listTheTool: false);

        Assert.True(exit == 0, error);
        Assert.Equal("tool=126\n", output);
        Assert.Contains("tool: Permission denied", error, StringComparison.Ordinal);
        Assert.Contains("\"kind\":\"blocked\"", Events, StringComparison.Ordinal);
    }

    [GuestFact("/bin/sh", "/usr/bin/true")]
    public void Enforced_application_control_runs_a_program_listed_by_its_sha256()
    {
        (int exit, string output, string error) = RunToolUnderApplicationControl(listTheTool: true);

        Assert.True(exit == 0, error);
        Assert.Equal("tool=0\n", output);
    }
}
