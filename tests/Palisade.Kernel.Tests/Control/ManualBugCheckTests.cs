// `palisade bugcheck` as the kernel sees it: a bug check request on the control socket of the kernel that holds the
// home's hive stops the system with 0xE2 MANUALLY_INITIATED_CRASH through the bug check facility KernelProtection
// attached. The kernels here boot in the compat flavor (no guard thread in this test host; the facility is the same in
// both flavors) with a recording sink instead of the process exit.
using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Control;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Control;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ManualBugCheckTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("palisade-bugcheck-").FullName;
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        Directory.Delete(_home, recursive: true);
    }

    private PalisadeKernel Boot()
    {
        Assert.Equal(Status.Success, SharedRegistry.Join(_home, SharedRegistry.DefaultPatience, out SharedRegistry? registry));
        var kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Compat, _home), registry);
        _owned.Add(kernel);
        return kernel;
    }

    private (RecordingSink Sink, List<string> StoppedGuests) Protect(PalisadeKernel kernel)
    {
        var sink = new RecordingSink();
        var stopped = new List<string>();
        _owned.Add(KernelProtection.Start(kernel, () => stopped.Add("guests"), sink));
        return (sink, stopped);
    }

    private Status Request(string reason)
    {
        Assert.True(ControlClient.TryConnect(ControlSocket.PathOf(_home), out ControlClient? client), "nobody serves the control socket");
        using (client)
        {
            return client!.RequestBugCheck(reason);
        }
    }

    [Fact]
    public void A_bug_check_request_stops_the_system_with_0xE2_naming_the_requester()
    {
        PalisadeKernel kernel = Boot();
        (RecordingSink sink, List<string> stopped) = Protect(kernel);

        Status answer = Request("the database hangs");

        BugCheckReport report = sink.Wait();
        Assert.Equal(Status.Success, answer);
        Assert.Equal(0xE2UL, report.Code);
        Assert.Equal(((ulong)Environment.ProcessId, (ulong)Libc.GetEUid(), 0UL, 0UL), (report.Parameter1, report.Parameter2, report.Parameter3, report.Parameter4));
        Assert.Equal(["guests"], stopped);
        Assert.Equal(Path.Combine(_home, "crash"), Path.GetDirectoryName(report.DumpPath));
        CrashDump dump = CrashDump.FromJson(File.ReadAllText(report.DumpPath!));
        Assert.Equal(("0xE2", "MANUALLY_INITIATED_CRASH"), (dump.BugCheck.Code, dump.BugCheck.Name));
        Assert.Equal("the database hangs", dump.Reason);
        Assert.Null(dump.Region);
        Assert.Null(dump.Culprit);
        Assert.Empty(dump.Changes);
        Assert.Equal("compat", dump.Kernel.Flavor);
    }

    [Fact]
    public void A_kernel_without_a_bug_check_facility_answers_NotSupported_and_keeps_running()
    {
        PalisadeKernel kernel = Boot();

        Assert.Equal(Status.NotSupported, Request(""));

        Assert.Null(kernel.Protection);
        Assert.True(File.Exists(ControlSocket.PathOf(_home)));
    }

    [Fact]
    public void A_reason_with_control_characters_is_InvalidParameter_and_nothing_stops()
    {
        PalisadeKernel kernel = Boot();
        (RecordingSink sink, List<string> stopped) = Protect(kernel);

        Assert.Equal(Status.InvalidParameter, Request("line one\nline two"));
        Assert.Equal(Status.InvalidParameter, Request(new string('x', ControlProtocol.MaxReason + 1)));

        Assert.False(kernel.Protection!.BugCheck.HasStopped);
        Assert.Equal(0, sink.Count);
        Assert.Empty(stopped);
    }

    [Fact]
    public void A_second_request_once_the_system_stopped_is_InvalidDeviceState()
    {
        PalisadeKernel kernel = Boot();
        (RecordingSink sink, _) = Protect(kernel);
        Assert.Equal(Status.Success, Request("first"));
        sink.Wait();

        Assert.Equal(Status.InvalidDeviceState, Request("second"));

        // The first was taken by Wait: no second one reached the sink.
        Assert.Equal(0, sink.Count);
    }

    [Fact]
    public void With_two_kernels_on_one_home_the_request_stops_the_one_holding_the_hive()
    {
        PalisadeKernel holder = Boot();
        (RecordingSink holderSink, _) = Protect(holder);
        PalisadeKernel follower = Boot();
        (RecordingSink followerSink, _) = Protect(follower);

        Assert.Equal(Status.Success, Request("stop the holder"));

        Assert.Equal(0xE2UL, holderSink.Wait().Code);
        Assert.False(follower.Protection!.BugCheck.HasStopped);
        Assert.Equal(0, followerSink.Count);
    }

    /// <summary>The bug checks that reached the last step, instead of the process exit.</summary>
    private sealed class RecordingSink : IBugCheckSink
    {
        private readonly System.Collections.Concurrent.BlockingCollection<BugCheckReport> _reports = [];

        public int Count => _reports.Count;

        public void Stop(BugCheckReport report) => _reports.Add(report);

        /// <summary>Takes the next bug check; the timeout only keeps a broken build from hanging the run.</summary>
        public BugCheckReport Wait()
        {
            Assert.True(_reports.TryTake(out BugCheckReport? report, TimeSpan.FromMinutes(1)), "no bug check was raised");
            return report!;
        }
    }
}
