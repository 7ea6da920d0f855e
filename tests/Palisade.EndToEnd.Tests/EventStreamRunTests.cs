// The event stream of a real `palisade run` whose reader stops: a shell creates files under the self-protection
// driver (each create is an operation line) while the reader (bench/run/fifo-reader.py on a FIFO) is stopped with
// SIGSTOP. Under the drop policy the guest finishes while nobody reads and every line is accounted for; under the
// block policy nothing is lost.
using System.Diagnostics;
using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

public sealed class EventStreamRunTests : IDisposable
{
    private readonly PalisadeRun _p = new();
    private Process? _reader;

    public void Dispose()
    {
        if (_reader is { HasExited: false })
        {
            // SIGKILL ends a stopped process too.
            _reader.Kill();
            _reader.WaitForExit();
        }

        _reader?.Dispose();
        _p.Dispose();
    }

    private static string[] Driver =>
        ["--driver", PalisadeRun.Driver("selfprotect"), "--param", "selfprotect.files=/nonexistent/product", "--param", "selfprotect.processes=/nonexistent/product/"];

    /// <summary>Makes the FIFO and starts the reader, which opens it and stops itself before reading anything.</summary>
    private (string Fifo, string Lines) StoppedReader()
    {
        string fifo = Path.Combine(_p.Work, "events.fifo");
        string lines = Path.Combine(_p.Work, "events.jsonl");
        Assert.Equal(0, _p.Exec("mkfifo", [fifo], _p.Work).ExitCode);
        _reader = Process.Start(new ProcessStartInfo("/usr/bin/python3", [Path.Combine(PalisadeRun.Repo, "bench", "run", "fifo-reader.py"), fifo, lines, "stopped"]))!;
        Assert.True(SpinWait.SpinUntil(() => File.Exists(lines + ".ready"), TimeSpan.FromMinutes(1)), "the reader did not open the FIFO");
        return (fifo, lines);
    }

    private void Signal(string signal) => Assert.Equal(0, _p.Exec("kill", ["-" + signal, _reader!.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], _p.Work).ExitCode);

    /// <summary>
    /// Resumes the reader unless the test already did, waits for the run and the reader to end, and parses every line.
    /// A reader resumed earlier may already have read the whole stream, exited and been reaped, so it is not signalled
    /// twice.
    /// </summary>
    private IReadOnlyList<JsonElement> Finish(BackgroundRun run, bool resume = true)
    {
        if (resume)
        {
            Signal("CONT");
        }

        ProcessResult r = run.Wait();
        Assert.True(r.ExitCode == 0, "exit " + r.ExitCode + ": " + r.Stderr);
        Assert.True(_reader!.WaitForExit(TimeSpan.FromMinutes(1)), "the reader did not see the end of the stream");
        return PalisadeRun.Events(Path.Combine(_p.Work, "events.jsonl"));
    }

    private static string Creates(int n) => "i=0; while [ $i -lt " + n + " ]; do : > f$i; i=$((i+1)); done; echo done";

    private static string Type(JsonElement e) => e.GetProperty("type").GetString()!;

    private static bool IsCreate(JsonElement e) =>
        Type(e) == "operation" && e.GetProperty("operation").GetString() == "open"
        && Path.GetFileName(e.GetProperty("arguments").GetProperty("path").GetString()!) is ['f', >= '0' and <= '9', ..];

    private static void AssertContiguous(IReadOnlyList<JsonElement> lines)
    {
        Assert.Equal(Enumerable.Range(1, lines.Count).Select(i => (long)i), lines.Select(e => e.GetProperty("seq").GetInt64()));
        foreach (IGrouping<string, JsonElement> channel in lines.GroupBy(e => e.GetProperty("channel").GetString()!))
        {
            var numbers = new List<long>();
            foreach (JsonElement e in channel)
            {
                if (Type(e) == "gap")
                {
                    for (long s = e.GetProperty("from").GetInt64(); s <= e.GetProperty("to").GetInt64(); s++)
                    {
                        numbers.Add(s);
                    }
                }
                else
                {
                    numbers.Add(e.GetProperty("channelSeq").GetInt64());
                }
            }

            Assert.True(numbers.SequenceEqual(Enumerable.Range(1, numbers.Count).Select(i => (long)i)), channel.Key + ": a line is missing or reported twice");
        }
    }

    [GuestFact("/bin/sh", "mkfifo", "kill", "/usr/bin/python3")]
    public void A_reader_stopped_during_3000_file_creates_holds_nothing_and_every_create_is_recorded()
    {
        (string fifo, _) = StoppedReader();
        using BackgroundRun run = _p.Start([.. Driver, "--events", fifo], "/bin/sh", "-c", Creates(3000));

        // The guest finishes while nothing has read a single line.
        Assert.Equal("done", run.NextLine());
        IReadOnlyList<JsonElement> lines = Finish(run);

        AssertContiguous(lines);
        Assert.Equal(3000, lines.Count(IsCreate));
        Assert.DoesNotContain(lines, e => Type(e) is "gap" or "driver-fault");
    }

    [GuestFact("/bin/sh", "mkfifo", "kill", "/usr/bin/python3")]
    public void Under_drop_a_reader_stopped_for_20000_creates_gets_a_gap_line_for_every_line_lost()
    {
        (string fifo, _) = StoppedReader();
        using BackgroundRun run = _p.Start([.. Driver, "--events", fifo, "--events-policy", "drop"], "/bin/sh", "-c", Creates(20000));

        Assert.Equal("done", run.NextLine());
        IReadOnlyList<JsonElement> lines = Finish(run);

        AssertContiguous(lines);
        long lost = lines.Where(e => Type(e) == "gap").Sum(e => e.GetProperty("lost").GetInt64());
        Assert.True(lost > 0, "20,000 lines do not fit in the kernel channel: some must be lost");
        Assert.Equal(lost, lines[^1].GetProperty("lost").GetProperty("kernel").GetInt64());
        Assert.True(lines.Count(IsCreate) + lost >= 20000);
    }

    [GuestFact("/bin/sh", "mkfifo", "kill", "/usr/bin/python3")]
    public void Under_block_a_reader_stopped_until_half_way_through_20000_creates_loses_nothing()
    {
        (string fifo, _) = StoppedReader();
        using BackgroundRun run = _p.Start([.. Driver, "--events", fifo, "--events-policy", "block"], "/bin/sh", "-c", Creates(20000));
        Assert.True(SpinWait.SpinUntil(() => File.Exists(Path.Combine(_p.Work, "f10000")), TimeSpan.FromMinutes(2)), "the guest did not get half-way");

        Signal("CONT");
        Assert.Equal("done", run.NextLine());
        IReadOnlyList<JsonElement> lines = Finish(run, resume: false);

        AssertContiguous(lines);
        Assert.DoesNotContain(lines, e => Type(e) == "gap");
        Assert.Equal(20000, lines.Count(IsCreate));
        Assert.Equal("block", lines[0].GetProperty("policy").GetString());
    }
}
