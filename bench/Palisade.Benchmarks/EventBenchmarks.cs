using BenchmarkDotNet.Attributes;
using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Events;

namespace Palisade.Benchmarks;

/// <summary>
/// What the event stream costs the thread that makes a line: an operation line (written when a guest's operation
/// ends) and a driver's ReportEvent, with the stream on (the writer thread drains to a sink that discards) and off.
/// The producer formats and copies; the sink's cost is the writer thread's (see events-throughput).
/// </summary>
[MemoryDiagnoser]
public class EventBenchmarks
{
    private PalisadeKernel _on = null!;
    private PalisadeKernel _off = null!;
    private IDriverContext _driver = null!;
    private OperationRecord _record = null!;
    private string _home = null!;

    private sealed class Quiet : IDriver
    {
        public IDriverContext? Context { get; private set; }

        public Status Load(IDriverContext context)
        {
            Context = context;
            return Status.Success;
        }

        public void Unload()
        {
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        _home = Directory.CreateTempSubdirectory("palisade-bench-events-").FullName;
        _on = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, _home, events: Stream.Null,
            eventOptions: new EventStreamOptions(EventsPolicy.Drop, kernelChannelBytes: 64 << 20, driverChannelBytes: 64 << 20)));
        _off = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, _home));
        var quiet = new Quiet();
        _on.StartDriver(new DriverObject("antivirus", "bench", "1.0", "", ""), quiet, new Dictionary<string, string>());
        _driver = quiet.Context!;
        _record = new OperationRecord();
        _record.Begin(4242, "open");
        _record.Argument("path", "/home/user/project/src/file.txt");
        _record.Verdict("antivirus", "continue");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _on.Dispose();
        _off.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    [Benchmark(Description = "operation line, stream on")]
    public void OperationLine() => _on.Events.WriteOperation(_record);

    [Benchmark(Description = "ReportEvent, stream on")]
    public Status ReportEvent() => _driver.ReportEvent("detection", "EICAR-Test-File found", 4242, "/home/user/eicar.com");

    [Benchmark(Description = "operation record, stream off")]
    public bool RecordOff() => _off.CurrentRecord is null;
}
