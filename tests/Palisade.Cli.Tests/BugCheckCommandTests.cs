using System.Net.Sockets;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Control;

namespace Palisade.Cli.Tests;

/// <summary><c>palisade bugcheck</c> where no kernel can be asked, and <c>palisade analyze</c> of the dump a manual bug check writes.</summary>
public sealed class BugCheckCommandTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("palisade-bugcheck-cli-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public void Bugcheck_with_no_kernel_on_the_home_says_so_and_fails()
    {
        ProcessResult r = ProcessRunner.Palisade("bugcheck", "--home", _home, "--reason", "nothing runs");

        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"no kernel runs on {_home}", r.Stderr, StringComparison.Ordinal);
        Assert.Empty(r.Stdout);
        Assert.False(Directory.Exists(Path.Combine(_home, "crash")));
    }

    [Fact]
    public void Bugcheck_where_a_stopped_kernel_left_its_socket_file_says_no_kernel_runs()
    {
        // What a kernel stopped by a bug check leaves: the socket file, with nobody listening on it (bound, never
        // listening: a connect is refused as on a dead kernel's file; kept open, as .NET removes the file on dispose).
        string path = ControlSocket.PathOf(_home);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));

        ProcessResult r = ProcessRunner.Palisade("bugcheck", "--home", _home);

        Assert.True(File.Exists(path));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"no kernel runs on {_home}", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Bugcheck_refuses_a_reason_with_control_characters_before_asking_anyone()
    {
        ProcessResult r = ProcessRunner.Palisade("bugcheck", "--home", _home, "--reason", "two\nlines");

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("without control characters", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Analyze_explains_a_manually_initiated_crash_and_blames_no_driver()
    {
        var sink = new LastReport();
        var bugCheck = new KernelBugCheck(new BugCheckOptions
        {
            DumpDirectory = Path.Combine(_home, "crash"),
            KernelVersion = "test",
            Drivers = () => [new DumpDriverEntry("antivirus", "1.0.0", "Palisade.Drivers.Antivirus", "/opt/antivirus.dll", new string('b', 64))],
            Sink = sink,
            StopScreen = TextWriter.Null,
        });
        bugCheck.Syscalls.Record(4242, 4243, (int)Palisade.Kernel.Dispatch.SystemService.CreateFile, 0, 0, 0, 0);
        bugCheck.Raise(BugCheckRequest.ManuallyInitiated(31337, 0, "the database hangs"));

        ProcessResult r = ProcessRunner.Palisade("analyze", sink.Report!.DumpPath!);

        Assert.Equal(0, r.ExitCode);
        Assert.Contains("Bug check 0xE2 MANUALLY_INITIATED_CRASH", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("parameter 1 0x7A69  process id of the requester", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("Requested by palisade bugcheck (process 31337, user 0)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("Reason: the database hangs", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("Probable culprit: none (the crash was initiated manually).", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("antivirus 1.0.0  Palisade.Drivers.Antivirus", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("pid 4242 tid 4243 CreateFile", r.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("Region", r.Stdout, StringComparison.Ordinal);
    }

    /// <summary>Keeps the bug check's report instead of ending the test host (the bug check calls it synchronously).</summary>
    private sealed class LastReport : IBugCheckSink
    {
        public BugCheckReport? Report { get; private set; }

        public void Stop(BugCheckReport report) => Report = report;
    }
}
