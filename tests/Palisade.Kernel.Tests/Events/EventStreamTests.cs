// The event stream with real sinks: a pipe whose reader stalls (nothing reads until the test says so), and memory.
// A stalled reader must never hold a callback; under the drop policy every lost line is accounted for by a gap line,
// under the block policy the operation waits and nothing is lost. No assertion here is about time: a hold is observed
// as the kernel's own count of waiting operations, progress as work that completes while nothing reads.
using System.Text.Json;
using Palisade.Api;
using Palisade.Kernel.Events;

namespace Palisade.Kernel.Tests.Events;

public sealed class EventStreamTests : IDisposable
{
    private const int Opens = 3000;
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    private readonly StalledPipe _pipe = new();
    private TestKernel? _k;

    public void Dispose()
    {
        _k?.Dispose();
        _pipe.Dispose();
    }

    private static FilterRegistration ReportingFilter(Func<IDriverContext> context, Action<Status> reported) => new()
    {
        Name = "sensor",
        Altitude = "320000",
        Operations =
        [
            new FileOperationRegistration
            {
                Kind = FileOperationKind.Create,
                PreOperation = (ref FileOperation op) =>
                {
                    reported(context().ReportEvent("file-open", "opened", op.RequesterProcessId, op.Path));
                    return PreOperationStatus.SuccessNoCallback;
                },
            },
        ],
    };

    /// <summary>A kernel writing to the stalled pipe, with a sensor driver that reports one event per open.</summary>
    private (string File, Func<int> Dropped) BootWithSensor(EventsPolicy policy)
    {
        _k = new TestKernel(events: _pipe.Writer, eventOptions: new EventStreamOptions(policy, kernelChannelBytes: 16 << 10, driverChannelBytes: 16 << 10));
        IDriverContext? sensor = null;
        int dropped = 0;
        sensor = _k.Start(c => c.Files.RegisterFilter(ReportingFilter(() => sensor!, s =>
        {
            if (s == Status.InsufficientResources)
            {
                Interlocked.Increment(ref dropped);
            }
            else
            {
                Assert.Equal(Status.Success, s);
            }
        }), out _), "sensor");
        string file = Path.Combine(_k.Home, "watched.txt");
        File.WriteAllText(file, "x");
        return (file, () => Volatile.Read(ref dropped));
    }

    private static Worker Start(Action work) => new(work);

    /// <summary>A thread whose failure is reported to the test that joins it, not to the test host.</summary>
    private sealed class Worker
    {
        private readonly Thread _thread;
        private Exception? _failure;

        public Worker(Action work)
        {
            _thread = new Thread(() =>
            {
                try
                {
                    work();
                }
                catch (Exception e)
                {
                    _failure = e;
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public bool Join(TimeSpan timeout)
        {
            bool ended = _thread.Join(timeout);
            if (ended && _failure is not null)
            {
                throw new InvalidOperationException("the worker failed", _failure);
            }

            return ended;
        }
    }

    [Fact]
    public void Every_line_is_one_JSON_object_and_sequence_numbers_are_contiguous()
    {
        var sink = new MemoryStream();
        _k = new TestKernel(events: sink);
        IDriverContext d = _k.Start(_ => Status.Success, "reporter");
        Assert.Equal(Status.Success, d.ReportEvent("odd", "quote \" backslash \\ newline \n lone \uD800 pair \U0001F600", 7, "/tmp/a b"));
        Assert.Equal(Status.Success, d.ReportEvent("plain", "no path", 0, null));
        string file = Path.Combine(_k.Home, "f.txt");
        File.WriteAllText(file, "x");
        Assert.Equal(Status.Success, _k.OpenAndRecord(file));
        _k.Kernel.Events.WriteDriverFault("reporter", "a fault with a lone \uDC00 surrogate");

        _k.Dispose();
        IReadOnlyList<JsonElement> lines = StreamLines.Parse(sink.ToArray());

        Assert.Equal(Enumerable.Range(1, lines.Count).Select(i => (long)i), lines.Select(e => e.GetProperty("seq").GetInt64()));
        Assert.Equal("stream-start", lines[0].Type());
        Assert.Equal(EventStream.Schema, lines[0].GetProperty("schema").GetInt32());
        Assert.Equal("stream-end", lines[^1].Type());
        Assert.Equal(lines.Count - 1, lines[^1].GetProperty("lines").GetInt64());
        foreach ((string channel, List<long> seqs) in StreamLines.AccountedPerChannel(lines))
        {
            Assert.True(seqs.SequenceEqual(Enumerable.Range(1, seqs.Count).Select(i => (long)i)), channel + ": " + string.Join(',', seqs));
        }

        JsonElement odd = Assert.Single(lines, e => e.Type() == "driver" && e.GetProperty("kind").GetString() == "odd");
        Assert.Equal("quote \" backslash \\ newline \n lone \uFFFD pair \U0001F600", odd.GetProperty("message").GetString());
        Assert.Equal("reporter", odd.Channel());
        Assert.Equal(JsonValueKind.Null, Assert.Single(lines, e => e.Type() == "driver" && e.GetProperty("kind").GetString() == "plain").GetProperty("path").ValueKind);
        Assert.Equal("a fault with a lone \uFFFD surrogate", Assert.Single(lines, e => e.Type() == "driver-fault").GetProperty("reason").GetString());
        JsonElement open = Assert.Single(lines, e => e.Type() == "operation");
        Assert.Equal(file, open.GetProperty("arguments").GetProperty("path").GetString());
        Assert.Equal("kernel", open.Channel());
    }

    [Fact]
    public void ReportEvent_from_many_threads_keeps_every_line_and_each_threads_order()
    {
        const int threads = 8;
        const int each = 2000;
        var sink = new MemoryStream();
        _k = new TestKernel(events: sink, eventOptions: new EventStreamOptions(EventsPolicy.Drop, driverChannelBytes: 32 << 20));
        IDriverContext d = _k.Start(_ => Status.Success, "busy");
        int failures = 0;
        using var go = new ManualResetEventSlim();
        Worker[] workers = [.. Enumerable.Range(0, threads).Select(t => Start(() =>
        {
            go.Wait();
            for (int i = 0; i < each; i++)
            {
                if (d.ReportEvent("tick", t + " " + i, t, null) != Status.Success)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        }))];

        go.Set();
        foreach (Worker w in workers)
        {
            Assert.True(w.Join(Patience), "a reporting thread did not finish");
        }

        _k.Dispose();
        IReadOnlyList<JsonElement> lines = StreamLines.Parse(sink.ToArray());

        Assert.Equal(0, failures);
        List<JsonElement> ticks = [.. lines.Where(e => e.Type() == "driver")];
        Assert.Equal(threads * each, ticks.Count);
        Assert.Equal(Enumerable.Range(1, ticks.Count).Select(i => (long)i), ticks.Select(e => e.GetProperty("channelSeq").GetInt64()));
        for (int t = 0; t < threads; t++)
        {
            string prefix = t + " ";
            Assert.Equal(
                Enumerable.Range(0, each).Select(i => prefix + i),
                ticks.Select(e => e.GetProperty("message").GetString()!).Where(m => m.StartsWith(prefix, StringComparison.Ordinal)));
        }

        Assert.DoesNotContain(lines, e => e.Type() == "gap");
    }

    [Fact]
    public void A_stalled_consumer_does_not_hold_callbacks_and_the_drop_policy_reports_every_lost_line()
    {
        (string file, Func<int> dropped) = BootWithSensor(EventsPolicy.Drop);

        // Nothing reads the pipe while the guest's opens run: each open's callback reports, each open writes its line.
        Worker guest = Start(() =>
        {
            for (int i = 0; i < Opens; i++)
            {
                Assert.Equal(Status.Success, _k!.OpenAndRecord(file));
            }
        });
        Assert.True(guest.Join(Patience), "the opens did not complete while the consumer was stalled");
        Assert.True(dropped() > 0, "the stall should have filled the sensor's channel");

        _pipe.StartReading();
        long lostBefore = _k!.Kernel.Events.LostLines;
        _k.Dispose();
        IReadOnlyList<JsonElement> lines = _pipe.Lines();

        Assert.Equal(Enumerable.Range(1, lines.Count).Select(i => (long)i), lines.Select(e => e.GetProperty("seq").GetInt64()));
        Dictionary<string, List<long>> accounted = StreamLines.AccountedPerChannel(lines);
        foreach ((string channel, List<long> seqs) in accounted)
        {
            Assert.True(seqs.SequenceEqual(Enumerable.Range(1, seqs.Count).Select(i => (long)i)), channel + " is not accounted for exactly once");
        }

        Assert.Equal(Opens, accounted["sensor"].Count);
        long sensorLost = lines.Where(e => e.Type() == "gap" && e.Channel() == "sensor").Sum(e => e.GetProperty("lost").GetInt64());
        Assert.Equal(dropped(), sensorLost);
        Assert.Equal(Opens - dropped(), lines.Count(e => e.Type() == "driver"));
        long kernelLost = lines.Where(e => e.Type() == "gap" && e.Channel() == "kernel").Sum(e => e.GetProperty("lost").GetInt64());
        // Every operation's line is in the stream or among the kernel channel's lost lines (which may also hold other
        // kernel lines, such as a fault of a callback that overran on a loaded machine).
        int operations = lines.Count(e => e.Type() == "operation");
        Assert.InRange(Opens - operations, 0, kernelLost);
        JsonElement end = lines[^1];
        Assert.Equal(sensorLost, end.GetProperty("lost").GetProperty("sensor").GetInt64());
        Assert.Equal(kernelLost, end.GetProperty("lost").GetProperty("kernel").GetInt64());
        // Every line the stream lost is reported: those lost before the reader started, and any kernel line lost while
        // it caught up (the unload's own lines may still find the channel full).
        Assert.InRange(lostBefore, 0, sensorLost + kernelLost);
        Assert.Equal(_k.Kernel.Events.LostLines, sensorLost + kernelLost);
    }

    [Fact]
    public void A_stalled_consumer_under_the_block_policy_holds_the_operation_and_loses_nothing()
    {
        (string file, Func<int> dropped) = BootWithSensor(EventsPolicy.Block);
        int done = 0;
        Worker guest = Start(() =>
        {
            for (int i = 0; i < Opens; i++)
            {
                Assert.Equal(Status.Success, _k!.OpenAndRecord(file));
                Interlocked.Increment(ref done);
            }
        });

        Assert.True(SpinWait.SpinUntil(() => _k!.Kernel.Events.WaitingOperations == 1, Patience), "no operation waited for the stalled consumer");
        Assert.True(Volatile.Read(ref done) < Opens);

        _pipe.StartReading();
        Assert.True(guest.Join(Patience), "the operations did not resume once the consumer read");
        _k!.Dispose();
        IReadOnlyList<JsonElement> lines = _pipe.Lines();

        Assert.Equal(0, dropped());
        Assert.DoesNotContain(lines, e => e.Type() == "gap");
        Assert.Equal(Enumerable.Range(1, lines.Count).Select(i => (long)i), lines.Select(e => e.GetProperty("seq").GetInt64()));
        Assert.Equal(Opens, lines.Count(e => e.Type() == "operation"));
        Assert.Equal(Opens, lines.Count(e => e.Type() == "driver"));
    }

    [Fact]
    public void Under_the_block_policy_ReportEvent_never_waits_for_a_stalled_consumer()
    {
        _k = new TestKernel(events: _pipe.Writer, eventOptions: new EventStreamOptions(EventsPolicy.Block, driverChannelBytes: 16 << 10));
        IDriverContext d = _k.Start(_ => Status.Success, "chatty");
        int dropped = 0;
        Worker reporter = Start(() =>
        {
            for (int i = 0; i < Opens; i++)
            {
                if (d.ReportEvent("tick", "tick " + i, 0, null) == Status.InsufficientResources)
                {
                    Interlocked.Increment(ref dropped);
                }
            }
        });

        Assert.True(reporter.Join(Patience), "ReportEvent waited for the stalled consumer");
        Assert.True(Volatile.Read(ref dropped) > 0, "the stall should have filled the driver's ring");
        _pipe.StartReading();
        _k.Dispose();
        IReadOnlyList<JsonElement> lines = _pipe.Lines();

        Assert.Equal(Opens - dropped, lines.Count(e => e.Type() == "driver"));
        Assert.Equal(dropped, lines.Where(e => e.Type() == "gap").Sum(e => e.GetProperty("lost").GetInt64()));
    }

    [Fact]
    public void A_consumer_that_goes_away_releases_operations_waiting_for_room()
    {
        (string file, _) = BootWithSensor(EventsPolicy.Block);
        Worker guest = Start(() =>
        {
            for (int i = 0; i < Opens; i++)
            {
                Assert.Equal(Status.Success, _k!.OpenAndRecord(file));
            }
        });
        Assert.True(SpinWait.SpinUntil(() => _k!.Kernel.Events.WaitingOperations == 1, Patience), "no operation waited for the stalled consumer");

        _pipe.CloseReader();

        Assert.True(guest.Join(Patience), "the operations stayed held after the consumer went away");
        Assert.NotNull(_k!.Kernel.Events.SinkError);
        Assert.True(_k.Kernel.Events.DiscardedLines > 0);
    }

    [Fact]
    public void Writing_an_operation_line_or_a_driver_event_allocates_nothing()
    {
        var sink = new MemoryStream();
        _k = new TestKernel(events: sink, eventOptions: new EventStreamOptions(EventsPolicy.Drop, kernelChannelBytes: 64 << 20, driverChannelBytes: 64 << 20));
        IDriverContext d = _k.Start(_ => Status.Success, "quiet");
        OperationRecord record = _k.Kernel.CurrentRecord!;
        record.Begin(42, "open");
        record.Argument("path", "/etc/hostname");
        record.Verdict("quiet", "continue");
        _k.Kernel.Events.WriteOperation(record);
        d.ReportEvent("tick", "warm", 42, "/etc/hostname");

        Assert.Equal(0, Allocations.SteadyState(
            () =>
            {
                _k.Kernel.Events.WriteOperation(record);
                d.ReportEvent("tick", "steady", 42, "/etc/hostname");
            },
            iterations: 100));
    }
}
