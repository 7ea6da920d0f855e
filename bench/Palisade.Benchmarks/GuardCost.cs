using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Palisade.Kernel;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

namespace Palisade.Benchmarks;

/// <summary>
/// The guard's cost and reach at its default schedule, on a kernel wired exactly as <c>palisade run</c> wires it
/// (<see cref="KernelProtection"/>): the CPU its threads use while the system is idle, measured from
/// /proc/self/task/*/stat, and the distribution of detection latency — a system service table entry is overwritten
/// at a random moment and the time until the bug check reaches the sink (detection, analysis and the dump written)
/// is recorded, run after run. Each run's stop screen goes to standard error.
/// usage: dotnet run -c Release --project bench/Palisade.Benchmarks -- guard-cost [RUNS] [IDLE-SECONDS] 2>/dev/null
/// </summary>
internal static unsafe class GuardCost
{
    private const string ThreadPrefix = "Palisade guard";

    internal static int Run(string[] args)
    {
        int runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 40;
        int idleSeconds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 30;
        Console.WriteLine($"guard-cost: default schedule ({GuardOptions.Default.ContextCount} contexts, {GuardOptions.Default.MinInterval.TotalMilliseconds:0}-{GuardOptions.Default.MaxInterval.TotalMilliseconds:0} ms)");
        MeasureCpu(idleSeconds);
        MeasureLatency(runs);
        return 0;
    }

    private static void MeasureCpu(int seconds)
    {
        string home = Directory.CreateTempSubdirectory("palisade-bench-guard-").FullName;
        try
        {
            using var kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, home));
            using KernelProtection protection = KernelProtection.Start(kernel, stopGuests: null, new TimingSink());
            Thread.Sleep(1000);
            long before = GuardThreadTicks(out int threads);
            var wall = Stopwatch.StartNew();
            Thread.Sleep(TimeSpan.FromSeconds(seconds));
            long used = GuardThreadTicks(out _) - before;
            double cpuSeconds = used / (double)ClockTicksPerSecond;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"cpu: {threads} guard threads used {cpuSeconds * 1000:0.0} ms of CPU in {wall.Elapsed.TotalSeconds:0.0} s idle = {100 * cpuSeconds / wall.Elapsed.TotalSeconds:0.000} % of one core (goal <= 0.5 %; /proc ticks are 10 ms, so run long enough)"));
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    private static void MeasureLatency(int runs)
    {
        var latencies = new List<double>(runs);
        for (int run = 0; run < runs; run++)
        {
            string home = Directory.CreateTempSubdirectory("palisade-bench-guard-").FullName;
            var sink = new TimingSink();
            var kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, home));
            KernelProtection protection = KernelProtection.Start(kernel, stopGuests: null, sink);
            try
            {
                // A random phase against the contexts' random schedules.
                Thread.Sleep(Random.Shared.Next(100, 2500));
                // What an SSDT hook writes: the address of code the kernel does not own (here a native block).
                nint* entry = (nint*)kernel.ServiceTable.TableAddress;
                nint original = *entry;
                nint foreign = (nint)NativeMemory.Alloc(64);
                long changed = Stopwatch.GetTimestamp();
                Volatile.Write(ref *entry, foreign);
                if (!sink.Detected.Wait(TimeSpan.FromSeconds(30)))
                {
                    Console.WriteLine($"run {run}: not detected within 30 s");
                    return;
                }

                latencies.Add(Stopwatch.GetElapsedTime(changed, sink.At).TotalMilliseconds);
                Volatile.Write(ref *entry, original);
                NativeMemory.Free((void*)foreign);
                protection.Guard!.WaitForThreads();
            }
            finally
            {
                protection.Dispose();
                kernel.Dispose();
                Directory.Delete(home, recursive: true);
            }
        }

        latencies.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"detection latency over {latencies.Count} runs (ms): min {latencies[0]:0} p50 {Percentile(latencies, 0.5):0} p90 {Percentile(latencies, 0.9):0} p99 {Percentile(latencies, 0.99):0} max {latencies[^1]:0} mean {latencies.Average():0}"));
        Console.WriteLine("histogram (250 ms buckets):");
        for (int bucket = 0; bucket * 250 <= latencies[^1]; bucket++)
        {
            int count = latencies.Count(l => l >= bucket * 250 && l < (bucket + 1) * 250);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {bucket * 250,5}-{(bucket + 1) * 250,5} ms {count,4} {new string('#', count)}"));
        }
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    /// <summary>utime + stime of every guard thread of this process, in clock ticks.</summary>
    private static long GuardThreadTicks(out int threads)
    {
        long ticks = 0;
        threads = 0;
        foreach (string task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                if (!File.ReadAllText(Path.Combine(task, "comm")).StartsWith(ThreadPrefix, StringComparison.Ordinal))
                {
                    continue;
                }

                string stat = File.ReadAllText(Path.Combine(task, "stat"));
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // After "pid (comm) ", field 0 is state; utime and stime are fields 14 and 15 of stat(5), here 11 and 12.
                ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                threads++;
            }
            catch (IOException)
            {
                // The thread ended.
            }
        }

        return ticks;
    }

    private static long ClockTicksPerSecond => Palisade.Interop.Libc.Sysconf(Palisade.Interop.Libc.SC_CLK_TCK);

    private sealed class TimingSink : IBugCheckSink
    {
        internal ManualResetEventSlim Detected { get; } = new(false);

        internal long At { get; private set; }

        public void Stop(BugCheckReport report)
        {
            At = Stopwatch.GetTimestamp();
            Detected.Set();
        }
    }
}
