// Runs tests/Palisade.HiveCrashWriter as a real child process and reads its acknowledgements.
using System.Diagnostics;
using System.Globalization;

namespace Palisade.Kernel.Tests.Registry;

internal sealed class CrashWriterProcess : IDisposable
{
    // 128 + SIGKILL: how .NET reports a child that SIGKILL ended.
    public const int KilledBySigkill = 137;

    private static readonly string WriterPath = Path.Combine(AppContext.BaseDirectory, "Palisade.HiveCrashWriter");

    private readonly Process _process;

    /// <summary>Starts the writer on <paramref name="hivePath"/>.</summary>
    /// <param name="hivePath">The hive the child writes.</param>
    /// <param name="powerLoss">Whether the child acknowledges only after fsync.</param>
    /// <param name="environment">Extra environment variables for the child.</param>
    public CrashWriterProcess(string hivePath, bool powerLoss, params (string Name, string Value)[] environment)
    {
        Assert.True(File.Exists(WriterPath), "the crash writer is built beside the tests: " + WriterPath);
        var start = new ProcessStartInfo(WriterPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(hivePath);
        if (powerLoss)
        {
            start.ArgumentList.Add("power-loss");
        }

        foreach ((string name, string value) in environment)
        {
            start.Environment[name] = value;
        }

        _process = Process.Start(start)!;
    }

    /// <summary>Acknowledgements read so far; the child has acknowledged operations 0 to this minus one.</summary>
    public int Acknowledged { get; private set; }

    public int ExitCode => _process.ExitCode;

    /// <summary>Reads acknowledgements until <paramref name="count"/> have been read, failing if the child ends first.</summary>
    public void WaitForAcknowledgements(int count)
    {
        while (Acknowledged < count)
        {
            string? line = _process.StandardOutput.ReadLine();
            if (line is null)
            {
                _process.WaitForExit();
                Assert.Fail($"the writer ended after {Acknowledged} acknowledgements (exit {_process.ExitCode}): {_process.StandardError.ReadToEnd()}");
            }

            Assert.Equal(Acknowledged, int.Parse(line, CultureInfo.InvariantCulture));
            Acknowledged++;
        }
    }

    /// <summary>Sends SIGKILL (what Process.Kill does on Linux: no handler, flush or disposal runs in the child) and
    /// waits for the child to be gone.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        _process.WaitForExit();
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
