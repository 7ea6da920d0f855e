using System.Diagnostics;
using System.Text;

namespace Palisade.EndToEnd.Tests;

/// <summary>The outcome of a program run: exit status and everything it wrote.</summary>
public sealed record RunResult(int ExitCode, string Stdout, string Stderr);

/// <summary>A <c>palisade run</c> started in the background: its output lines as they come, and its end.</summary>
public sealed class BackgroundRun : IDisposable
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

    /// <summary>Waits for the program's next line on standard output (up to three minutes) and returns it.</summary>
    public string NextLine()
    {
        Assert.True(_lines.TryTake(out string? line, TimeSpan.FromMinutes(3)), "the program wrote no further line; stderr: " + Stderr);
        return line!;
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

    /// <summary>Waits for the run to end (up to three minutes) and returns its outcome.</summary>
    public RunResult Wait()
    {
        if (!_process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            _process.Kill(entireProcessTree: true);
            Assert.Fail("palisade run did not end within 3 minutes; stderr: " + Stderr);
        }

        _process.WaitForExit();
        lock (_stdout)
        {
            return new RunResult(_process.ExitCode, _stdout.ToString(), Stderr);
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

/// <summary>
/// Runs the real <c>palisade</c> command (the CLI built beside these tests) and real programs, with a temporary
/// PALISADE_HOME whose trust store holds the repository's development key, so the sample driver packages that
/// drivers/build.sh signed load in the protected flavor exactly as on a user's machine.
/// </summary>
public sealed class PalisadeRun : IDisposable
{
    public PalisadeRun()
    {
        Home = Directory.CreateTempSubdirectory("palisade-e2e-home-").FullName;
        Work = Directory.CreateTempSubdirectory("palisade-e2e-work-").FullName;
        RunResult trust = Palisade("trust", "add", Path.Combine(Repo, "drivers", "dev-signing-key.pem.pub"), "--name", "palisade-dev-ONLY");
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

    /// <summary>Runs <c>palisade ARGS</c>.</summary>
    public RunResult Palisade(params string[] args) => Exec("dotnet", [Cli, .. args], Work);

    /// <summary>Runs <c>palisade run [options] -- PROGRAM ARGS</c>.</summary>
    public RunResult Run(IEnumerable<string> options, params string[] program) =>
        Palisade(["run", .. options, "--", .. program]);

    /// <summary>Starts <c>palisade run [options] -- PROGRAM ARGS</c> without waiting for it.</summary>
    public BackgroundRun Start(IEnumerable<string> options, params string[] program)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = Work,
            UseShellExecute = false,
        };
        foreach (string a in (string[])[Cli, "run", .. options, "--", .. program])
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["PALISADE_HOME"] = Home;
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["HOME"] = Work;
        return new BackgroundRun(Process.Start(psi)!);
    }

    /// <summary>Runs a program directly, for comparison.</summary>
    public RunResult Direct(params string[] program) => Exec(program[0], program[1..], Work);

    public RunResult Exec(string file, IEnumerable<string> args, string cwd, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = cwd,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["PALISADE_HOME"] = Home;
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["HOME"] = Work;
        psi.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.Append(e.Data).Append('\n'); } } };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.Append(e.Data).Append('\n'); } } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
        }

        p.StandardInput.Close();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            // What every process and thread of the tree is blocked in, before it is killed: a hang is rare, and this
            // is the evidence needed to find it.
            string state = TreeState(p.Id);
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)} did not finish within 3 minutes; stdout so far: {stdout}\nstderr so far: {stderr}\n{state}");
        }

        p.WaitForExit();
        return new RunResult(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Each process below and including <paramref name="root"/>, each of its threads: name, state, wait channel, system call.</summary>
    private static string TreeState(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out int pid) && TryRead(Path.Combine(dir, "stat")) is { } stat)
            {
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        var report = new StringBuilder("process tree at the timeout:\n");
        var queue = new Queue<int>([root]);
        while (queue.Count > 0)
        {
            int pid = queue.Dequeue();
            foreach (string task in TryTasks(pid))
            {
                report.Append(System.Globalization.CultureInfo.InvariantCulture,
                    $"  pid {pid} task {Path.GetFileName(task)} {TryRead(Path.Combine(task, "comm"))?.Trim()} " +
                    $"wchan={TryRead(Path.Combine(task, "wchan"))} syscall={TryRead(Path.Combine(task, "syscall"))?.Trim()}\n");
            }

            foreach ((int child, int parent) in parents)
            {
                if (parent == pid)
                {
                    queue.Enqueue(child);
                }
            }
        }

        return report.ToString();

        static string? TryRead(string path)
        {
            try
            {
                return File.ReadAllText(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }

        static IEnumerable<string> TryTasks(int pid)
        {
            try
            {
                return Directory.GetDirectories($"/proc/{pid}/task");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return [];
            }
        }
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
