using BenchmarkDotNet.Attributes;
using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

namespace Palisade.Benchmarks;

/// <summary>
/// What one sweep costs on a kernel wired as <c>palisade run</c> wires it (<see cref="KernelProtection"/>): every
/// protected method's entire body, every callback table with each registration's state (enabled, policy, every
/// callback slot and its delegate's code pointers), the kernel's wiring and the guard's own regions, with
/// <see cref="Registrations"/> minifilters and as many process-create callbacks registered. Must allocate nothing.
/// Also the cost of drawing one wait from the operating system's random generator (the schedule keeps no state).
/// </summary>
[MemoryDiagnoser]
public class KernelSweepBenchmarks
{
    private string? _home;
    private PalisadeKernel? _kernel;
    private KernelProtection? _protection;
    private GuardContext? _context;
    private GuardSchedule? _schedule;

    [Params(0, 8, 64)]
    public int Registrations { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _home = Directory.CreateTempSubdirectory("palisade-bench-sweep-").FullName;
        _kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, _home));
        _protection = KernelProtection.Start(_kernel, stopGuests: null, new ThrowingSink());
        for (int i = 0; i < Registrations; i++)
        {
            var filter = new FilterRegistration
            {
                Name = "bench" + i,
                Altitude = (100000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture),
                Operations =
                [
                    new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = static (ref FileOperation _) => PreOperationStatus.SuccessWithCallback, PostOperation = static (ref FileOperation _) => { } },
                    new FileOperationRegistration { Kind = FileOperationKind.Rename, PreOperation = static (ref FileOperation _) => PreOperationStatus.SuccessNoCallback },
                ],
            };
            Check(_kernel.Files.Register(null, filter, out _));
            Check(_kernel.Processes.Create.Add(new Palisade.Kernel.Callbacks.CallbackRegistration<ProcessCreateCallback>(null, static (in ProcessCreateInfo _) => Status.Success)));
        }

        KernelGuard guard = _protection.Guard!;
        _context = guard.Contexts[0];
        _schedule = _context.Schedule;
        long bodyBytes = 0;
        int methods = 0;
        for (int i = 0; i < guard.RegionCount; i++)
        {
            if (guard.Regions[i] is MethodCodeRegion m)
            {
                methods++;
                bodyBytes += m.Location.BodyLength;
            }
        }

        Console.WriteLine($"// {guard.RegionCount} regions, {methods} methods with {bodyBytes} bytes of native code hashed whole");
    }

    [Benchmark]
    public bool KernelSweep() => GuardContext.Sweep<GuardTag0>(_context!);

    [Benchmark]
    public TimeSpan NextWait() => _schedule!.Next();

    [GlobalCleanup]
    public void Cleanup()
    {
        _protection!.Dispose();
        _kernel!.Dispose();
        Directory.Delete(_home!, recursive: true);
    }

    private static void Check(Status s)
    {
        if (s.IsError)
        {
            throw new InvalidOperationException("registration failed: " + s.Name);
        }
    }

    private sealed class ThrowingSink : IBugCheckSink
    {
        public void Stop(BugCheckReport report) =>
            throw new InvalidOperationException($"bug check 0x{report.Code:X} during the benchmark: {report.Dump.Region?.Name}");
    }
}
