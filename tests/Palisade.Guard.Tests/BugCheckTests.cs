using System.Runtime.InteropServices;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.Tests;

/// <summary>What a bug check does: stop guests, write the dump, print the stop screen, hand over to the sink; and how a dump is analysed.</summary>
public sealed unsafe class BugCheckTests
{
    private static readonly DumpDriverEntry AntivirusDriver = new("Contoso Antivirus", "1.2.0", "Contoso.Antivirus", "/opt/drivers/Contoso.Antivirus.dll", new string('a', 64));

    [Fact]
    public void Bug_check_stops_every_guest_before_the_sink_runs()
    {
        using var tampered = new TamperedTable();
        using var kernel = new TestGuard();
        var stoppedGuests = new List<string>();
        kernel.BugCheck.AddStopAction(() => stoppedGuests.Add("guest 1"));
        kernel.BugCheck.AddStopAction(() => throw new InvalidOperationException("guest 2 already gone"));
        kernel.BugCheck.AddStopAction(() => stoppedGuests.Add("guest 3"));

        tampered.ProtectAndTamper(kernel);

        kernel.Sink.Wait();
        Assert.Equal(["guest 1", "guest 3"], stoppedGuests);
    }

    [Fact]
    public void Dump_is_written_to_the_dump_directory_in_the_documented_format()
    {
        using var tampered = new TamperedTable();
        using var kernel = new TestGuard(drivers: () => [AntivirusDriver]);
        kernel.BugCheck.Syscalls.Record(4242, 4243, 257, 1, 2, 3, 5);

        tampered.ProtectAndTamper(kernel);

        BugCheckReport report = kernel.Sink.Wait();
        Assert.StartsWith(kernel.DumpDirectory, report.DumpPath, StringComparison.Ordinal);
        CrashDump dump = CrashDump.FromJson(File.ReadAllText(report.DumpPath!));
        Assert.Equal("0x109", dump.BugCheck.Code);
        Assert.Equal(["0x" + ((ulong)tampered.Address).ToString("X"), CodeDecoder.Hex(report.Parameter2), CodeDecoder.Hex(report.Parameter3), "0xA"], dump.BugCheck.Parameters);
        Assert.Equal("system service table", dump.Region!.Name);
        Assert.Equal(AntivirusDriver, Assert.Single(dump.Drivers));
        Assert.Contains(dump.RecentSystemCalls, c => c.Pid == 4242 && c.Number == 257 && c.Result == 5);
        Assert.Equal("protected", dump.Kernel.Flavor);
    }

    [Fact]
    public void Stop_screen_shows_the_code_parameters_region_and_dump()
    {
        using var tampered = new TamperedTable();
        using var kernel = new TestGuard();

        tampered.ProtectAndTamper(kernel);

        BugCheckReport report = kernel.Sink.Wait();
        string screen = kernel.StopScreen.ToString();
        Assert.Contains("*** STOP: 0x00000109 (", screen, StringComparison.Ordinal);
        Assert.Contains("CRITICAL_STRUCTURE_CORRUPTION", screen, StringComparison.Ordinal);
        Assert.Contains("Region: system service table (type 0xA SystemServiceTable)", screen, StringComparison.Ordinal);
        Assert.Contains("Crash dump: " + report.DumpPath, screen, StringComparison.Ordinal);
    }

    [Fact]
    public void Only_the_first_bug_check_stops_the_system()
    {
        var sink = new RecordingSink();
        var bugCheck = new KernelBugCheck(new BugCheckOptions { DumpDirectory = Path.Combine(Path.GetTempPath(), "palisade-once-" + Guid.NewGuid().ToString("N")), Sink = sink, StopScreen = TextWriter.Null });
        var request = new BugCheckRequest(0x109, 1, 2, 3, 0xA, "table", "SystemServiceTable", "test", 0, [], []);

        bugCheck.Raise(request);
        bugCheck.Raise(request with { Parameter1 = 9 });

        Assert.Equal(1, sink.Count);
        Assert.Equal(1UL, sink.Report!.Parameter1);
        Directory.Delete(Path.GetDirectoryName(sink.Report.DumpPath!)!, recursive: true);
    }

    [Fact]
    public void Analyze_explains_a_dump_and_names_the_culprit_driver()
    {
        using var tampered = new TamperedTable();
        using var kernel = new TestGuard(drivers: () => [AntivirusDriver with { AssemblyName = typeof(BugCheckTests).Assembly.GetName().Name! }]);
        tampered.ProtectAndTamper(kernel);
        BugCheckReport report = kernel.Sink.Wait();

        (int status, string output, _) = ProcessRunner.Palisade("analyze", report.DumpPath!);

        Assert.Equal(0, status);
        Assert.Contains("Probable culprit: Palisade.Guard.Tests (driver \"Contoso Antivirus\")", output, StringComparison.Ordinal);
        Assert.Contains("modification of the system service table", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Analyze_refuses_a_file_that_is_not_a_dump()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "{\"hello\": 1}");
            (int status, _, string error) = ProcessRunner.Palisade("analyze", path);

            Assert.Equal(2, status);
            Assert.Contains("Not a Palisade crash dump", error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Decoder_follows_each_detour_form_to_its_target()
    {
        Assert.Equal(0x1000UL + 5 + 0x10, CodeDecoder.Decode([0xE9, 0x10, 0, 0, 0], 0x1000).Target);
        Assert.Equal(0x1122334455667788UL, CodeDecoder.Decode([0xFF, 0x25, 0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], 0x1000).Target);
        Assert.Equal(0x1122334455667788UL, CodeDecoder.Decode([0x48, 0xB8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xFF, 0xE0], 0x1000).Target);
        Assert.Equal(0x12345678UL, CodeDecoder.Decode([0x68, 0x78, 0x56, 0x34, 0x12, 0xC3], 0x1000).Target);
    }

    /// <summary>A protected system-service-table stand-in whose slot 2 the test rewrites outside the API.</summary>
    private sealed class TamperedTable : IDisposable
    {
        private readonly nint* _table = (nint*)NativeMemory.AllocZeroed(8 * 8);

        internal nint Address => (nint)_table;

        internal void ProtectAndTamper(TestGuard kernel)
        {
            kernel.Guard.Protect(new NativeMemoryRegion("system service table", GuardRegionType.SystemServiceTable, (nint)_table, 8 * 8, holdsPointers: true));
            _table[2] = typeof(BugCheckTests).GetMethod(nameof(Decoder_follows_each_detour_form_to_its_target))!.MethodHandle.GetFunctionPointer();
        }

        public void Dispose() => NativeMemory.Free(_table);
    }
}
