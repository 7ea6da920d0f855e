using System.Diagnostics;
using System.Text;

namespace Palisade.Testing;

/// <summary>The outcome of a program run: exit status and everything it wrote.</summary>
internal sealed record ProcessResult(int ExitCode, string Stdout, string Stderr);

/// <summary>
/// Runs real programs as child processes for the tests — the real <c>palisade</c> command built beside them, a crash
/// host, a guest program — so that a test sees exactly what a user sees: standard output, standard error and the exit
/// status. A run that does not finish within its time limit fails the test with what every process and thread of its
/// tree was blocked in, then is killed.
/// </summary>
internal static class ProcessRunner
{
    /// <summary>How long a run may take before it fails the test.</summary>
    public static readonly TimeSpan DefaultLimit = TimeSpan.FromMinutes(3);

    /// <summary>The <c>palisade</c> command built beside the tests (the test project references Palisade.Cli).</summary>
    public static string PalisadeDll => Path.Combine(AppContext.BaseDirectory, "palisade.dll");

    /// <summary>The dotnet host running the tests, to run framework-dependent assemblies with.</summary>
    public static string DotnetHost => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path ? path : "dotnet";

    /// <summary>
    /// Runs <c>palisade ARGS</c>. <paramref name="environment"/> adds or, with a null value, removes variables; the
    /// caller's PALISADE_HOME is never inherited (a test names its own home or none).
    /// </summary>
    public static ProcessResult Palisade(IReadOnlyDictionary<string, string?>? environment, params string[] arguments)
    {
        var env = new Dictionary<string, string?>(StringComparer.Ordinal) { ["PALISADE_HOME"] = null };
        foreach ((string name, string? value) in environment ?? new Dictionary<string, string?>())
        {
            env[name] = value;
        }

        return Run(DotnetHost, [PalisadeDll, .. arguments], environment: env);
    }

    /// <summary>Runs <c>palisade ARGS</c> with the caller's environment less PALISADE_HOME.</summary>
    public static ProcessResult Palisade(params string[] arguments) => Palisade(null, arguments);

    /// <summary>Runs <paramref name="file"/> with <paramref name="arguments"/> and waits for it.</summary>
    /// <param name="file">The program.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <param name="workingDirectory">Its working directory (the test's by default).</param>
    /// <param name="environment">Variables to set, or with a null value to remove.</param>
    /// <param name="stdin">What to write to its standard input (which is closed after it, or at once).</param>
    /// <param name="limit">How long it may take (<see cref="DefaultLimit"/> by default).</param>
    public static ProcessResult Run(string file, IEnumerable<string> arguments, string? workingDirectory = null,
        IReadOnlyDictionary<string, string?>? environment = null, string? stdin = null, TimeSpan? limit = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (workingDirectory is not null)
        {
            psi.WorkingDirectory = workingDirectory;
        }

        foreach (string a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        foreach ((string name, string? value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                psi.Environment.Remove(name);
            }
            else
            {
                psi.Environment[name] = value;
            }
        }

        using var p = Process.Start(psi)!;
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        Task readingOut = Collect(p.StandardOutput, stdout);
        Task readingErr = Collect(p.StandardError, stderr);
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
        }

        p.StandardInput.Close();
        TimeSpan within = limit ?? DefaultLimit;
        if (!p.WaitForExit(within))
        {
            // What every process and thread of the tree is blocked in, before it is killed: a hang is rare, and this
            // is the evidence needed to find it.
            string state = TreeState(p.Id);
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', psi.ArgumentList)} did not finish within {within}; stdout so far: {Snapshot(stdout)}\nstderr so far: {Snapshot(stderr)}\n{state}");
        }

        p.WaitForExit();
        Task.WaitAll(readingOut, readingErr);
        return new ProcessResult(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Copies everything <paramref name="reader"/> yields, exactly as written, into <paramref name="into"/>.</summary>
    private static Task Collect(StreamReader reader, StringBuilder into) => Task.Run(async () =>
    {
        char[] buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            lock (into)
            {
                into.Append(buffer, 0, n);
            }
        }
    });

    private static string Snapshot(StringBuilder text)
    {
        lock (text)
        {
            return text.ToString();
        }
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
}
