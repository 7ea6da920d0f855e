using System.Diagnostics;
using System.Text;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Runs the real <c>palisade</c> command (the CLI built beside these tests) and real programs, with a temporary
/// PALISADE_HOME whose trust store holds the repository's development key, so the sample driver packages that
/// drivers/build.sh signed load in the protected flavor exactly as on a user's machine.
/// </summary>
internal sealed class PalisadeRun : IDisposable
{
    public PalisadeRun()
    {
        Home = Directory.CreateTempSubdirectory("palisade-e2e-home-").FullName;
        Work = Directory.CreateTempSubdirectory("palisade-e2e-work-").FullName;
        ProcessResult trust = Palisade("trust", "add", Path.Combine(Repo, "drivers", "dev-signing-key.pem.pub"), "--name", "palisade-dev-ONLY");
        Assert.True(trust.ExitCode == 0, "trusting the development key failed: " + trust.Stderr);
    }

    /// <summary>The repository root (the folder holding Palisade.sln).</summary>
    public static string Repo { get; } = FindRepo();

    /// <summary>The kernel state folder of this test.</summary>
    public string Home { get; }

    /// <summary>A scratch folder for the test's files.</summary>
    public string Work { get; }

    private static string Cli => Path.Combine(AppContext.BaseDirectory, "palisade.dll");

    private static string FindRepo()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Palisade.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("the tests must run inside the repository");
    }

    /// <summary>The package folder of a sample driver; fails with a clear message when drivers/build.sh has not run.</summary>
    public static string Driver(string name)
    {
        string dir = Path.Combine(Repo, "drivers", "out", name);
        Assert.True(Directory.Exists(dir), $"{dir} is missing: run drivers/build.sh (./test.sh does) before the end-to-end tests");
        return dir;
    }

    /// <summary>The package folder of an attack driver; fails with a clear message when attacks/build.sh has not run.</summary>
    public static string Attack(string name)
    {
        string dir = Path.Combine(Repo, "attacks", "out", name);
        Assert.True(Directory.Exists(dir), $"{dir} is missing: run attacks/build.sh (./test.sh does) before the end-to-end tests");
        return dir;
    }

    /// <summary>
    /// The options that place every driver of a run in a driver host of its own (<c>--isolated</c>) or inside the kernel
    /// (<c>--in-kernel</c>): what the tests that run in both modes pass.
    /// </summary>
    public static string[] Mode(bool isolated) => isolated ? ["--isolated"] : ["--in-kernel"];

    /// <summary>
    /// The options of a run as the test gave them, with <c>--isolated</c> or <c>--in-kernel</c> put first when the
    /// environment variable <c>PALISADE_TEST_DRIVER_MODE</c> says so and the test placed no driver itself: how the whole
    /// suite is run with every driver in the other mode (docs/security.md, "Where a driver runs").
    /// </summary>
    internal static IEnumerable<string> Placed(IEnumerable<string> options)
    {
        string[] given = [.. options];
        string? forced = Environment.GetEnvironmentVariable("PALISADE_TEST_DRIVER_MODE");
        if (forced is not ("isolated" or "in-kernel") || given.Contains("--isolated") || given.Contains("--in-kernel"))
        {
            return given;
        }

        return ["--" + forced, .. given];
    }

    /// <summary>Runs <c>palisade ARGS</c>.</summary>
    public ProcessResult Palisade(params string[] args) => Exec("dotnet", [Cli, .. args], Work);

    /// <summary>Runs <c>palisade run [options] -- PROGRAM ARGS</c>.</summary>
    public ProcessResult Run(IEnumerable<string> options, params string[] program) =>
        Palisade(["run", .. Placed(options), "--", .. program]);

    /// <summary>Starts <c>palisade run [options] -- PROGRAM ARGS</c> without waiting for it.</summary>
    public BackgroundRun Start(IEnumerable<string> options, params string[] program)
    {
        var psi = new ProcessStartInfo(ProcessRunner.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = Work,
            UseShellExecute = false,
        };
        foreach (string a in (string[])[Cli, "run", .. Placed(options), "--", .. program])
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["PALISADE_HOME"] = Home;
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["HOME"] = Work;
        return new BackgroundRun(Process.Start(psi)!);
    }

    /// <summary>Runs a program directly, for comparison.</summary>
    public ProcessResult Direct(params string[] program) => Exec(program[0], program[1..], Work);

    /// <summary>
    /// Runs a program in <paramref name="cwd"/> with this test's home, the C locale and a home folder of its own, plus
    /// <paramref name="environment"/> (a null value removes a variable).
    /// </summary>
    public ProcessResult Exec(string file, IEnumerable<string> args, string cwd, string? stdin = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var variables = new Dictionary<string, string?>
        {
            ["PALISADE_HOME"] = Home,
            ["LC_ALL"] = "C",
            ["HOME"] = Work,
            ["GIT_CONFIG_NOSYSTEM"] = "1",
        };
        foreach ((string name, string? value) in environment ?? new Dictionary<string, string?>())
        {
            variables[name] = value;
        }

        return ProcessRunner.Run(file, args, cwd, variables, stdin);
    }

    /// <summary>Reads a JSON-lines event file written by <c>--events</c>.</summary>
    public static IReadOnlyList<System.Text.Json.JsonElement> Events(string path) =>
        [.. File.ReadAllLines(path).Where(l => l.Length > 0).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)];

    public void Dispose()
    {
        Directory.Delete(Home, recursive: true);
        Directory.Delete(Work, recursive: true);
    }
}

/// <summary>A <c>palisade run</c> started in the background: its output lines as they come, and its end.</summary>
internal sealed class BackgroundRun : IDisposable
{
    private readonly Process _process;
    private readonly System.Collections.Concurrent.BlockingCollection<string> _lines = [];
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    internal BackgroundRun(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stdout)
                {
                    _stdout.Append(e.Data).Append('\n');
                }

                _lines.Add(e.Data);
            }
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.Append(e.Data).Append('\n');
                }
            }
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _process.StandardInput.Close();
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>The pid of the palisade run process (the kernel's).</summary>
    public int ProcessId => _process.Id;

    /// <summary>Waits for the program's next line on standard output (up to three minutes) and returns it.</summary>
    public string NextLine()
    {
        Assert.True(_lines.TryTake(out string? line, ProcessRunner.DefaultLimit), "the program wrote no further line; stderr: " + Stderr);
        return line!;
    }

    /// <summary>Waits for the run to end (up to three minutes) and returns its outcome.</summary>
    public ProcessResult Wait()
    {
        if (!_process.WaitForExit(ProcessRunner.DefaultLimit))
        {
            _process.Kill(entireProcessTree: true);
            Assert.Fail("palisade run did not end within 3 minutes; stderr: " + Stderr);
        }

        _process.WaitForExit();
        lock (_stdout)
        {
            return new ProcessResult(_process.ExitCode, _stdout.ToString(), Stderr);
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
        _lines.Dispose();
    }
}
