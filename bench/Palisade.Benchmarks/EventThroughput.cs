using System.Diagnostics;
using System.Globalization;
using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Events;

namespace Palisade.Benchmarks;

/// <summary>
/// How many event lines per second the kernel's event stream sustains, and what it loses. PRODUCERS threads write
/// operation lines (the line a guest's open makes: its path, one driver's verdict, the result) at RATE lines per
/// second in all (0: as fast as they can) for SECONDS, into a real stream whose consumer is another process reading
/// a pipe (<c>cat &gt; /dev/null</c>), or a file. The figures are the stream's own counts: lines offered, lines written,
/// lines lost (each reported in the stream as a gap).
/// usage: dotnet run -c Release --project bench/Palisade.Benchmarks -- events-throughput [RATE] [SECONDS] [PRODUCERS] [drop|block] [pipe|file]
/// </summary>
internal static class EventThroughput
{
    internal static int Run(string[] args)
    {
        long rate = args.Length > 1 ? long.Parse(args[1], CultureInfo.InvariantCulture) : 0;
        double seconds = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 5;
        int producers = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 2;
        EventsPolicy policy = args.Length > 4 && args[4] == "block" ? EventsPolicy.Block : EventsPolicy.Drop;
        bool toFile = args.Length > 5 && args[5] == "file";

        string file = Path.Combine(Path.GetTempPath(), "palisade-bench-events-" + Environment.ProcessId + ".json");
        Process? reader = null;
        Stream sink;
        if (toFile)
        {
            sink = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.Read);
        }
        else
        {
            reader = Process.Start(new ProcessStartInfo("sh", ["-c", "cat > /dev/null"]) { RedirectStandardInput = true })!;
            sink = reader.StandardInput.BaseStream;
        }

        var stream = new EventStream(sink, ownsStream: true, new EventStreamOptions(policy));
        long offered = 0;
        var clock = Stopwatch.StartNew();
        Thread[] threads = [.. Enumerable.Range(0, producers).Select(p => new Thread(() =>
        {
            var record = new OperationRecord();
            string path = "/home/user/project/src/file" + p + ".txt";
            long mine = 0;
            double perThread = rate / (double)producers;
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                // Paced in bursts: as many lines as the rate allows up to now, then a short sleep.
                long due = rate == 0 ? mine + 256 : (long)(perThread * clock.Elapsed.TotalSeconds);
                for (; mine < due; mine++)
                {
                    record.Begin(1000 + p, "open");
                    record.Argument("path", path);
                    record.Verdict("antivirus", "continue");
                    record.Result = Status.Success;
                    stream.WriteOperation(record);
                }

                if (rate != 0)
                {
                    Thread.Sleep(1);
                }
            }

            Interlocked.Add(ref offered, mine);
        }) { Name = "producer " + p })];

        foreach (Thread t in threads)
        {
            t.Start();
        }

        foreach (Thread t in threads)
        {
            t.Join();
        }

        double produced = clock.Elapsed.TotalSeconds;
        long lost = stream.LostLines;
        stream.Dispose();
        double drained = clock.Elapsed.TotalSeconds;
        reader?.WaitForExit();
        if (toFile)
        {
            File.Delete(file);
        }

        long written = offered - lost;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"events-throughput: policy {policy.ToString().ToLowerInvariant()}, sink {(toFile ? "file" : "pipe to cat")}, {producers} producers, rate {(rate == 0 ? "unpaced" : rate.ToString(CultureInfo.InvariantCulture) + "/s")}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  offered {offered} lines in {produced:0.00} s = {offered / produced:0} lines/s; written {written} (all written {drained:0.00} s after start: {written / drained:0} lines/s); lost {lost} ({100.0 * lost / Math.Max(1, offered):0.00} %)"));
        return 0;
    }
}
