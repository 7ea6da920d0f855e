using Palisade.Kernel;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

// Every guard in this process protects the same kernel code, so an attack on it would trip every guard running at
// the time: guard tests run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Palisade.Guard.Tests;

/// <summary>A bug check sink that records the report and signals, instead of ending the test host.</summary>
internal sealed class RecordingSink : IBugCheckSink
{
    private readonly ManualResetEventSlim _received = new(false);
    private int _count;

    internal BugCheckReport? Report { get; private set; }

    internal int Count => Volatile.Read(ref _count);

    public void Stop(BugCheckReport report)
    {
        Report = report;
        Interlocked.Increment(ref _count);
        _received.Set();
    }

    /// <summary>Waits for the bug check; the timeout only keeps a broken build from hanging the run.</summary>
    internal BugCheckReport Wait()
    {
        Assert.True(_received.Wait(TimeSpan.FromMinutes(1)), "no bug check was raised");
        return Report!;
    }
}

/// <summary>
/// A protected kernel's guard with a fast schedule, a recording sink, a private dump directory and a captured stop
/// screen. Disposal shuts the guard down with its authority (or waits for it after a bug check) and removes the
/// dumps, so no thread or file outlives a test.
/// </summary>
internal sealed class TestGuard : IDisposable
{
    internal static readonly GuardOptions FastSchedule = new()
    {
        ContextCount = 3,
        MinInterval = TimeSpan.FromMilliseconds(5),
        MaxInterval = TimeSpan.FromMilliseconds(20),
    };

    private readonly GuardAuthority _authority;

    internal TestGuard(Func<IReadOnlyList<DumpDriverEntry>>? drivers = null, GuardOptions? options = null)
    {
        DumpDirectory = Path.Combine(Path.GetTempPath(), "palisade-guard-tests-" + Guid.NewGuid().ToString("N"));
        BugCheck = new KernelBugCheck(new BugCheckOptions
        {
            DumpDirectory = DumpDirectory,
            KernelVersion = "test",
            Flavor = KernelFlavor.Protected,
            Drivers = drivers,
            Sink = Sink,
            StopScreen = StopScreen,
        });
        Guard = KernelGuard.Start(options ?? FastSchedule, BugCheck, out _authority);
    }

    internal RecordingSink Sink { get; } = new();

    internal StringWriter StopScreen { get; } = new();

    internal string DumpDirectory { get; }

    internal KernelBugCheck BugCheck { get; }

    internal KernelGuard Guard { get; }

    internal GuardAuthority Authority => _authority;

    /// <summary>Sweeps begun by each checking context, to bound detection: the first sweep begun after a change must catch it.</summary>
    internal Dictionary<string, long> SweepsNow()
    {
        var sweeps = new Dictionary<string, long>();
        foreach (GuardContext context in Guard.Contexts)
        {
            sweeps[context.Name] = context.Sweeps;
        }

        return sweeps;
    }

    /// <summary>Waits until every context has completed <paramref name="rounds"/> more rounds.</summary>
    internal void WaitRounds(int rounds)
    {
        long[] start = Array.ConvertAll(Guard.Contexts, c => c.Heartbeat);
        for (int i = 0; i < start.Length; i++)
        {
            GuardContext context = Guard.Contexts[i];
            long target = start[i] + rounds;
            Assert.True(
                SpinWait.SpinUntil(() => context.Heartbeat >= target || BugCheck.HasStopped, TimeSpan.FromMinutes(1)),
                $"{context.Name} did not complete {rounds} rounds");
        }
    }

    internal static void AssertDetectedWithinBound(Dictionary<string, long> sweepsAtChange, BugCheckReport report)
    {
        long atChange = sweepsAtChange[report.Dump.DetectedBy];
        Assert.True(
            report.Dump.DetectorSweep <= atChange + 1,
            $"{report.Dump.DetectedBy} detected at sweep {report.Dump.DetectorSweep}, later than the first sweep begun after the change ({atChange + 1})");
    }

    public void Dispose()
    {
        if (BugCheck.HasStopped)
        {
            Guard.WaitForThreads();
        }
        else
        {
            Guard.Shutdown(_authority);
        }

        if (Directory.Exists(DumpDirectory))
        {
            Directory.Delete(DumpDirectory, recursive: true);
        }
    }
}
