using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

namespace Palisade.Benchmarks;

/// <summary>
/// What one full guard sweep costs: every region the guard protects itself (its code copies, digest and bug check
/// code, the JIT entry, its state) plus <see cref="KernelTables"/> system-service-table-sized native tables
/// (256 pointers each) standing in for the kernel's. Must allocate nothing.
/// CPU share at a schedule = sweep time × checking contexts / mean interval (see docs/bugchecks.md).
/// </summary>
[MemoryDiagnoser]
public unsafe class GuardBenchmarks
{
    private const int TableSlots = 256;

    private readonly List<nint> _tables = [];
    private KernelGuard? _guard;
    private GuardAuthority? _authority;
    private GuardContext? _context;

    [Params(0, 8, 64)]
    public int KernelTables { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var bugCheck = new KernelBugCheck(new BugCheckOptions
        {
            DumpDirectory = Path.Combine(Path.GetTempPath(), "palisade-bench-crash"),
            Sink = new ThrowingSink(),
        });
        _guard = KernelGuard.Start(GuardOptions.Default, bugCheck, out GuardAuthority authority);
        _authority = authority;
        for (int i = 0; i < KernelTables; i++)
        {
            nint table = (nint)NativeMemory.AllocZeroed(TableSlots * 8);
            _tables.Add(table);
            _guard.Protect(new NativeMemoryRegion($"table {i}", GuardRegionType.SystemServiceTable, table, TableSlots * 8, holdsPointers: true));
        }

        _context = _guard.Contexts[0];
    }

    [Benchmark]
    public bool FullSweep() => GuardContext.Sweep<GuardTag0>(_context!);

    [GlobalCleanup]
    public void Cleanup()
    {
        _guard!.Shutdown(_authority!);
        foreach (nint table in _tables)
        {
            NativeMemory.Free((void*)table);
        }
    }

    // A bug check during a benchmark means the measurement is wrong: fail loudly instead of exiting quietly.
    private sealed class ThrowingSink : IBugCheckSink
    {
        public void Stop(BugCheckReport report) =>
            throw new InvalidOperationException($"bug check 0x{report.Code:X} during the benchmark: {report.Dump.Region?.Name ?? report.Dump.DetectedBy}");
    }
}
