using System.Collections.Concurrent;
using System.Diagnostics;
using Palisade.Host.Linux.Mediation;

namespace Palisade.Host.Linux.Tests;

/// <summary>The watcher learns of a process's end however it ended, with its status, and reports it once.</summary>
public sealed class ProcessExitWatcherTests : IDisposable
{
    private readonly BlockingCollection<(int Pid, int Code, int Signal)> _reports = [];
    private readonly List<Process> _started = [];

    private ProcessExitWatcher NewWatcher() => new((pid, code, signal) => _reports.Add((pid, code, signal)));

    private Process Start(string script)
    {
        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        Process p = Process.Start(psi)!;
        _started.Add(p);
        return p;
    }

    private (int Pid, int Code, int Signal) NextReport()
    {
        Assert.True(_reports.TryTake(out var report, TimeSpan.FromSeconds(30)), "no end was reported");
        return report;
    }

    private static void WaitUntil(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "the condition never held");
            Thread.Sleep(5);
        }
    }

    [Fact]
    public void Watch_and_claim_racing_on_one_process_never_close_a_descriptor_they_do_not_own()
    {
        // A claim (the process's exit_group, on one supervisor thread) racing a watch (its first call, on another) once
        // closed the pidfd between the watch's publication and its epoll registration, and the failed registration then
        // closed the same number again: by then another thread's file. A third thread keeps opening and reading a file
        // of its own; every read must see that file.
        string path = Path.Combine(Path.GetTempPath(), $"palisade-watch-race-{Environment.ProcessId}");
        File.WriteAllText(path, "sentinel");
        try
        {
            ProcessExitWatcher watcher = NewWatcher();
            Process p = Start("exec sleep 60");
            using var stop = new CancellationTokenSource();
            int badReads = 0;
            var churn = new Thread(() =>
            {
                byte[] buffer = new byte[16];
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        using Microsoft.Win32.SafeHandles.SafeFileHandle h = File.OpenHandle(path);
                        if (RandomAccess.Read(h, buffer, 0) != 8 || buffer[0] != (byte)'s')
                        {
                            Interlocked.Increment(ref badReads);
                        }
                    }
                    catch (IOException)
                    {
                        Interlocked.Increment(ref badReads);
                    }
                }
            });
            churn.Start();
            for (int i = 0; i < 2000; i++)
            {
                using var go = new Barrier(2);
                var watch = new Thread(() => { go.SignalAndWait(); _ = watcher.Watch(p.Id); });
                var claim = new Thread(() => { go.SignalAndWait(); _ = watcher.Claim(p.Id); });
                watch.Start();
                claim.Start();
                Assert.True(watch.Join(TimeSpan.FromSeconds(30)) && claim.Join(TimeSpan.FromSeconds(30)), "a watch or claim hung");
                _ = watcher.Claim(p.Id);
                Assert.Equal(0, watcher.Pending);
            }

            stop.Cancel();
            churn.Join();
            Assert.Equal(0, Volatile.Read(ref badReads));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_process_killed_by_a_signal_is_reported_with_the_signal()
    {
        ProcessExitWatcher watcher = NewWatcher();
        Process p = Start("exec sleep 60");
        Assert.True(watcher.Watch(p.Id));

        p.Kill();

        Assert.Equal((p.Id, 128 + 9, 9), NextReport());
    }

    [Fact]
    public void A_process_that_exits_is_reported_with_its_exit_code()
    {
        ProcessExitWatcher watcher = NewWatcher();
        Process p = Start("read line; exit 7");
        Assert.True(watcher.Watch(p.Id));

        p.StandardInput.Close();

        Assert.Equal((p.Id, 7, 0), NextReport());
    }

    [Fact]
    public void An_ended_process_its_parent_has_not_reaped_is_reported_with_its_status()
    {
        // The grandchild is killed and stays a zombie: its parent became a sleep that never waits.
        Process parent = Start("sleep 60 & echo $!; exec sleep 60");
        int zombie = int.Parse(parent.StandardOutput.ReadLine()!, System.Globalization.CultureInfo.InvariantCulture);
        // Until the shell has become the sleep it may still reap its background job itself.
        WaitUntil(() => File.ReadAllText($"/proc/{parent.Id}/comm").Trim() == "sleep");
        ProcessExitWatcher watcher = NewWatcher();
        Assert.True(watcher.Watch(zombie));

        Assert.Equal(0, Palisade.Interop.Libc.Kill(zombie, 15));

        Assert.Equal((zombie, 128 + 15, 15), NextReport());
        Assert.True(File.ReadAllText($"/proc/{zombie}/stat").Contains(") Z ", StringComparison.Ordinal), "the grandchild was reaped; the zombie path was not taken");
    }

    [Fact]
    public void An_end_claimed_before_it_happened_is_not_reported_again()
    {
        ProcessExitWatcher watcher = NewWatcher();
        Process p = Start("exec sleep 60");
        Assert.True(watcher.Watch(p.Id));

        Assert.True(watcher.Claim(p.Id));
        p.Kill();
        p.WaitForExit();
        watcher.Drain();

        Assert.Equal(0, watcher.Pending);
        Assert.Empty(_reports);
    }

    [Fact]
    public void Drain_reports_an_end_the_watcher_thread_has_not_reported_yet_and_only_once()
    {
        var counts = new ConcurrentDictionary<int, int>();
        var watcher = new ProcessExitWatcher((pid, _, _) => counts.AddOrUpdate(pid, 1, (_, n) => n + 1));
        Process p = Start("exec sleep 60");
        Assert.True(watcher.Watch(p.Id));

        p.Kill();
        p.WaitForExit();
        watcher.Drain();
        watcher.Drain();

        Assert.Equal(1, counts[p.Id]);
    }

    [Fact]
    public void A_process_that_is_gone_cannot_be_watched()
    {
        ProcessExitWatcher watcher = NewWatcher();
        Process p = Start("exit 0");
        p.WaitForExit();

        Assert.False(watcher.Watch(p.Id));
    }

    public void Dispose()
    {
        foreach (Process p in _started)
        {
            try
            {
                p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }

            p.Dispose();
        }

        _reports.Dispose();
    }
}
