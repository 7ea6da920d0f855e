using System.Globalization;
using System.Text;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// The process notifications of issue 14 under <c>palisade run</c>, with real programs: a signed driver
/// (tests/Palisade.TestDrivers/ProcessWatch) reports every fork, process creation and exec result it is told as an event,
/// and each test compares them with what the shell says of its own processes.
/// </summary>
public sealed class ProcessNotificationRunTests : IDisposable
{
    private readonly PalisadeRun _p = new();
    private readonly string _events;
    private readonly string _package;

    public ProcessNotificationRunTests()
    {
        _events = Path.Combine(_p.Work, "events.jsonl");
        _package = Package(_p);
    }

    public void Dispose() => _p.Dispose();

    /// <summary>The fixture as a package signed with the development key (which the run's home trusts).</summary>
    internal static string Package(PalisadeRun run)
    {
        const string project = "Palisade.TestDrivers.ProcessWatch";
        string built = Path.Combine(AppContext.BaseDirectory, "TestDrivers", project);
        string package = Path.Combine(run.Work, "processwatch");
        Directory.CreateDirectory(package);
        File.Copy(Path.Combine(built, project + ".dll"), Path.Combine(package, project + ".dll"));
        File.WriteAllText(Path.Combine(package, "manifest.json"), $$"""
            {
              "name": "processwatch",
              "vendor": "Palisade tests",
              "version": "1.0.0",
              "assembly": "{{project}}.dll",
              "entryType": "Palisade.TestDrivers.ProcessWatch.ProcessWatchDriver",
              "minimumApiVersion": "1.0"
            }
            """);
        ProcessResult signed = run.Palisade("driver", "sign", package, "--key", Path.Combine(PalisadeRun.Repo, "drivers", "dev-signing-key.pem"));
        Assert.True(signed.ExitCode == 0, "signing the process-watch driver failed (the verifier refuses it?): " + signed.Stderr);
        return package;
    }

    private ProcessResult Run(string script) => _p.Run(["--driver", _package, "--events", _events], "/bin/sh", "-c", script);

    /// <summary>The driver's events of <paramref name="kind"/>, each as its fields (NAME=VALUE separated by spaces).</summary>
    private List<Dictionary<string, string>> Reported(string kind) =>
        [.. PalisadeRun.Events(_events)
            .Where(e => e.GetProperty("type").GetString() == "driver" && e.GetProperty("kind").GetString() == kind)
            .Select(e => e.GetProperty("message").GetString()!.Split(' ').Select(f => f.Split('=', 2)).ToDictionary(f => f[0], f => f[1]))];

    /// <summary>The numbers the shell printed as NAME=NUMBER lines.</summary>
    private static Dictionary<string, int> Printed(ProcessResult r) =>
        r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains('=', StringComparison.Ordinal))
            .Select(l => l.Split('=', 2)).Where(kv => int.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out _))
            .ToDictionary(kv => kv[0], kv => int.Parse(kv[1], CultureInfo.InvariantCulture));

    private static string Text(string hex) => Encoding.UTF8.GetString(Convert.FromHexString(hex));

    private static List<string> Strings(string list)
    {
        int colon = list.IndexOf(':', StringComparison.Ordinal);
        int count = int.Parse(list[..colon], CultureInfo.InvariantCulture);
        return count == 0 ? [] : [.. list[(colon + 1)..].Split(',').Select(Text)];
    }

    private static Dictionary<string, string> Of(List<Dictionary<string, string>> events, int pid) =>
        Assert.Single(events, e => e["pid"] == pid.ToString(CultureInfo.InvariantCulture));

    [GuestFact("/bin/sh")]
    public void A_fork_that_never_execs_is_reported_with_its_real_parent_and_a_start_key_of_its_own()
    {
        ProcessResult r = Run("( exit 5 ) & echo child=$!; wait $!; echo status=$?; echo parent=$$");

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        Dictionary<string, int> printed = Printed(r);
        Assert.Equal(5, printed["status"]);
        Dictionary<string, string> shell = Of(Reported("create"), printed["parent"]);
        Dictionary<string, string> fork = Of(Reported("fork"), printed["child"]);
        Assert.Equal(printed["parent"].ToString(CultureInfo.InvariantCulture), fork["parent"]);
        Assert.Equal(shell["key"], fork["pkey"]);
        Assert.NotEqual("0", fork["key"]);
        Assert.NotEqual(shell["key"], fork["key"]);
        Assert.Equal(Text(shell["image"]), Text(fork["image"]));
        Assert.DoesNotContain(Reported("create"), e => e["pid"] == fork["pid"]);
    }

    [GuestFact("/bin/sh")]
    public void An_exec_of_a_path_that_names_nothing_is_reported_failed_with_ENOENT_and_the_start_key_of_its_process()
    {
        ProcessResult r = Run("echo shell=$$; exec /nonexistent/program");

        Assert.NotEqual(0, r.ExitCode);
        int shell = Printed(r)["shell"];
        Dictionary<string, string> created = Of(Reported("create"), shell);
        Dictionary<string, string> result = Assert.Single(Reported("exec-result"), e => e["pid"] == created["pid"] && e["ok"] == "false");
        Assert.Equal(("2", created["key"], "/nonexistent/program"), (result["errno"], result["key"], Text(result["image"])));
    }

    [GuestFact("/bin/sh", "/bin/true")]
    public void An_exec_Linux_performs_is_reported_succeeded_with_the_key_its_process_create_carried()
    {
        ProcessResult r = Run("echo shell=$$; exec /bin/true");

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        int shell = Printed(r)["shell"];
        List<Dictionary<string, string>> creates = [.. Reported("create").Where(e => e["pid"] == shell.ToString(CultureInfo.InvariantCulture))];
        Assert.Equal(2, creates.Count);
        List<Dictionary<string, string>> results = [.. Reported("exec-result").Where(e => e["pid"] == shell.ToString(CultureInfo.InvariantCulture))];
        Assert.Equal(["true", "true"], results.Select(e => e["ok"]));
        Assert.All(results, e => Assert.Equal(creates[0]["key"], e["key"]));
        Assert.Equal(Text(creates[1]["image"]), Text(results[1]["image"]));
    }

    [GuestFact("/bin/sh")]
    public void An_exec_Linux_fails_after_the_callbacks_allowed_it_is_reported_failed_and_the_shell_s_fallback_exec_succeeded()
    {
        // No #! and no ELF header: Linux fails the exec with ENOEXEC, and sh then runs the file as a script through /bin/sh.
        string script = Path.Combine(_p.Work, "plain-script");
        File.WriteAllText(script, "echo ran-as-script\n");
        File.SetUnixFileMode(script, (UnixFileMode)0x1ED); // 0755

        ProcessResult r = Run($"echo shell=$$; exec {script}");

        Assert.Contains("ran-as-script", r.Stdout, StringComparison.Ordinal);
        string shell = Printed(r)["shell"].ToString(CultureInfo.InvariantCulture);
        List<Dictionary<string, string>> results = [.. Reported("exec-result").Where(e => e["pid"] == shell)];
        Dictionary<string, string> failed = Assert.Single(results, e => Text(e["image"]) == script);
        Assert.Equal(("false", "0"), (failed["ok"], failed["errno"]));
        Assert.True(results.IndexOf(failed) < results.Count - 1, "the fallback exec comes after the failed one");
        Assert.Equal("true", results[^1]["ok"]);
    }

    [GuestFact("/bin/sh", "/usr/bin/env", "/usr/bin/printf")]
    public void Process_create_reports_argv_with_spaces_and_empty_strings_the_environment_and_the_working_directory()
    {
        string folder = Path.Combine(_p.Work, "a folder é");
        Directory.CreateDirectory(folder);

        ProcessResult r = Run($"cd '{folder}' && PW_OUTER=x exec /usr/bin/env -i PW_A=1 'PW_B=two words' PW_EMPTY= /usr/bin/printf '%s|' 'a b' '' c");

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        Assert.Equal("a b||c|", r.Stdout);
        Dictionary<string, string> printf = Assert.Single(Reported("create"), e => Text(e["image"]) == "/usr/bin/printf");
        Assert.Equal(["/usr/bin/printf", "%s|", "a b", "", "c"], Strings(printf["argv"]));
        Assert.Equal(["PW_A=1", "PW_B=two words", "PW_EMPTY="], Strings(printf["env"]));
        Assert.Equal("3", printf["envc"]);
        Assert.Equal(folder, Text(printf["cwd"]));
        Dictionary<string, string> env = Assert.Single(Reported("create"), e => Text(e["image"]) == "/usr/bin/env");
        Assert.Equal(["/usr/bin/env", "-i", "PW_A=1", "PW_B=two words", "PW_EMPTY=", "/usr/bin/printf", "%s|", "a b", "", "c"], Strings(env["argv"]));
        Assert.Equal(["PW_OUTER=x"], Strings(env["env"]));
        Assert.Equal(folder, Text(env["cwd"]));
    }
}
