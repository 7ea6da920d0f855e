using System.Text;
using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// The sample antivirus's file scenarios of the vendor review (issue 14) with real programs under <c>palisade run</c>: a
/// cleanup at the release of the description a file was written through (once, with the content written, at a close or
/// at an exit), and the image an exec runs scanned as it is, a memfd included.
/// </summary>
public sealed class FileScenarioRunTests : IDisposable
{
    private const string Marker = "palisade-test-written-marker";
    private readonly PalisadeRun _p = new();
    private readonly string _events;
    private readonly string _signatures;

    public FileScenarioRunTests()
    {
        _events = Path.Combine(_p.Work, "events.jsonl");
        _signatures = Path.Combine(_p.Work, "signatures.txt");
        File.WriteAllText(_signatures, "hex " + Convert.ToHexString(Encoding.ASCII.GetBytes(Marker)) + " Test.Written.Marker\n");
    }

    public void Dispose() => _p.Dispose();

    private ProcessResult RunAntivirus(params string[] program) =>
        _p.Run(["--driver", PalisadeRun.Driver("antivirus"), "--param", "antivirus.signatures=" + _signatures, "--events", _events], program);

    private List<JsonElement> Cleanups(string path) => [.. PalisadeRun.Events(_events).Where(e => e.GetProperty("type").GetString() == "operation"
        && e.GetProperty("operation").GetString() == "cleanup" && e.GetProperty("arguments").GetProperty("path").GetString() == path)];

    private List<JsonElement> Detections(string path) => [.. PalisadeRun.Events(_events).Where(e => e.GetProperty("type").GetString() == "driver"
        && e.GetProperty("kind").GetString() == "detection" && e.GetProperty("path").GetString() == path)];

    [LastCloseFact("/bin/sh")]
    public void Echo_into_a_file_is_cleaned_up_once_and_the_antivirus_scans_what_was_written()
    {
        string file = Path.Combine(_p.Work, "f");

        ProcessResult r = RunAntivirus("/bin/sh", "-c", "echo " + Marker + " > " + file);

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        Assert.Single(Cleanups(file));
        Assert.Contains("found after a write", Assert.Single(Detections(file)).GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [LastCloseFact("/bin/sh")]
    public void A_file_written_by_a_child_killed_before_it_closed_it_is_scanned_at_its_exit()
    {
        string file = Path.Combine(_p.Work, "left");

        ProcessResult r = RunAntivirus("/bin/sh", "-c", "sh -c 'exec 3> " + file + "; echo " + Marker + " >&3; kill -9 $$'; test -s " + file);

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        Assert.Single(Cleanups(file));
        Assert.Single(Detections(file));
    }

    [GuestFact("python3")]
    public void A_memfd_run_by_fexecve_is_scanned_as_the_image_it_is_and_refused()
    {
        const string script = """
            import os, sys
            fd = os.memfd_create("dropped")
            os.write(fd, b"#!/bin/sh\necho ran # MARKER\n")
            try:
                os.execve(fd, ["dropped"], {})
            except PermissionError:
                print("refused")
            """;

        ProcessResult r = RunAntivirus("python3", "-c", script.Replace("MARKER", Marker, StringComparison.Ordinal));

        Assert.Equal("refused\n", r.Stdout);
        JsonElement detection = Assert.Single(PalisadeRun.Events(_events), e => e.GetProperty("type").GetString() == "driver"
            && e.GetProperty("kind").GetString() == "detection" && e.GetProperty("path").GetString()!.StartsWith("/memfd:dropped", StringComparison.Ordinal));
        Assert.Contains("Test.Written.Marker", detection.GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}
