namespace Palisade.EndToEnd.Tests;

/// <summary>
/// The launcher starts before the kernel boots and loads its drivers (docs/benchmarks.md, "Start-up"). Attacked as a way
/// around the drivers: a run whose driver is refused must not run its program at all, unmediated or otherwise, and must
/// leave no launcher behind that could run it later.
/// </summary>
public sealed class EarlyLauncherRunTests : IDisposable
{
    private readonly PalisadeRun _p = new();

    [Fact]
    public void A_run_whose_driver_is_refused_never_runs_its_program_and_leaves_no_launcher()
    {
        string mark = Path.Combine(_p.Work, $"ran-{Guid.NewGuid():N}");
        string refused = Path.Combine(_p.Work, "not-a-package");
        Directory.CreateDirectory(refused);

        ProcessResult run = _p.Run(["--driver", refused], "sh", "-c", $"touch '{mark}'");

        Assert.True(run.ExitCode == 125, $"status {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        Assert.Contains("refused", run.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(mark), "the program ran although its run was refused");

        // The launcher was reaped by the run before it exited: no process still carries the program's arguments.
        string[] left = Directory.EnumerateDirectories("/proc")
            .Where(d => int.TryParse(Path.GetFileName(d), out _))
            .Where(d => ReadCommandLine(d).Contains(mark, StringComparison.Ordinal))
            .ToArray();
        Assert.Empty(left);
    }

    private static string ReadCommandLine(string processDirectory)
    {
        try
        {
            return File.ReadAllText(Path.Combine(processDirectory, "cmdline"));
        }
        catch (IOException)
        {
            return string.Empty;
        }
        catch (UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }

    public void Dispose() => _p.Dispose();
}
