using System.Collections.Concurrent;
using Palisade.Interop;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// Learns of the end of every process it watches, however the process ended: exit_group, the exit of its last
/// thread, or a signal (which no system call announces). Each watched process has a pidfd in an epoll set that a
/// background thread waits on; when a pidfd turns readable the process has ended and its wait status is reported.
/// Whoever claims a process first reports its end: the watcher thread, <see cref="Drain"/>, or a caller that saw
/// the end coming (an exit_group notification) through <see cref="Claim"/>. So each end is reported exactly once.
/// Claims and reports happen under the watch's lock (ends are rare), so that a Drain never returns while a report
/// the watcher's thread began is still running.
/// </summary>
internal sealed unsafe class ProcessExitWatcher
{
    private const int BatchSize = 16;

    /// <summary>
    /// The most processes watched at once (each holds a pidfd). Beyond it a process is not watched: its exit_group is still
    /// reported at the call, but an end by a signal is not (docs/security.md).
    /// </summary>
    public const int MaxWatched = 8192;
    private readonly ConcurrentDictionary<int, Watched> _watches = new();
    private readonly Action<int, int, int> _report;
    private readonly Lock _startLock = new();
    private int _epoll = -1;

    /// <summary>Creates a watcher that calls <paramref name="report"/>(pid, exit code, signal) once per ended process.</summary>
    /// <remarks>
    /// The exit code is the process's (0–255) when the signal is 0; when a signal ended it, 128 + the signal, as a
    /// shell reports it. <paramref name="report"/> runs on the watcher's thread or on the thread calling <see cref="Drain"/>.
    /// </remarks>
    public ProcessExitWatcher(Action<int, int, int> report)
    {
        ArgumentNullException.ThrowIfNull(report);
        _report = report;
    }

    /// <summary>Processes watched and not yet reported (and not claimed).</summary>
    public int Pending
    {
        get
        {
            int n = 0;
            foreach (KeyValuePair<int, Watched> w in _watches)
            {
                lock (w.Value)
                {
                    n += w.Value.Claimed ? 0 : 1;
                }
            }

            return n;
        }
    }

    /// <summary>
    /// Sends <paramref name="signal"/> to watched process <paramref name="pid"/> through the pidfd opened when the watch
    /// began, never by its pid: a process that ended cannot be confused with another that reuses its pid. 0, or the errno:
    /// ESRCH when it has ended, ENOENT when it is not watched.
    /// </summary>
    public int SendSignal(int pid, int signal)
    {
        if (!_watches.TryGetValue(pid, out Watched? w))
        {
            return Errno.ENOENT;
        }

        lock (w)
        {
            return w.Claimed || w.Fd < 0 ? Errno.ESRCH : Pidfd.SendSignal(w.Fd, signal);
        }
    }

    /// <summary>
    /// Starts watching process <paramref name="pid"/> (its thread-group id) unless it is watched already. A process
    /// that is already gone cannot be watched (its pid may name another process by now); false then.
    /// </summary>
    public bool Watch(int pid)
    {
        // One descriptor per watched process, bounded so that guests cannot exhaust the kernel's descriptors.
        if (pid <= 0 || _watches.Count >= MaxWatched || _watches.ContainsKey(pid))
        {
            return false;
        }

        int fd = Pidfd.Open(pid);
        if (fd < 0)
        {
            return false;
        }

        // Published and added to the epoll set under the watch's lock: a Claim of the same pid on another thread (its
        // exit_group) waits for this, then closes the descriptor once; this never touches the number after that close,
        // when it may name another file of the kernel's.
        var watch = new Watched(fd);
        lock (watch)
        {
            if (!_watches.TryAdd(pid, watch))
            {
                watch.Close();
                return false;
            }

            var evt = new Pidfd.EpollEvent { Events = Pidfd.EPOLLIN, Data = (ulong)pid };
            if (Pidfd.EpollCtl(EnsureStarted(), Pidfd.EPOLL_CTL_ADD, watch.Fd, &evt) < 0)
            {
                _watches.TryRemove(new KeyValuePair<int, Watched>(pid, watch));
                watch.Close();
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Claims the report of <paramref name="pid"/>'s end for the caller, who saw it coming, and stops watching it. True
    /// when the caller is to report it: it was not reported yet, or is not watched (any more: the kernel's exit service
    /// itself refuses a second report of a process it already removed); false when the watcher reported it.
    /// </summary>
    public bool Claim(int pid)
    {
        if (!_watches.TryGetValue(pid, out Watched? w))
        {
            return true;
        }

        lock (w)
        {
            bool first = !w.Claimed;
            w.Claimed = true;

            // The caller reports the end; the pidfd has nothing more to tell. Closing it here takes it out of the
            // epoll set, so the watcher's thread is not woken for an end already reported.
            w.Close();
            _watches.TryRemove(new KeyValuePair<int, Watched>(pid, w));
            return first;
        }
    }

    /// <summary>
    /// Reports, on the calling thread, every watched process that has ended and is not reported yet, and waits for a
    /// report the watcher's thread is making: for a caller that is about to finish (the launched program has been
    /// waited for) and must not leave ends unreported behind it.
    /// </summary>
    public void Drain()
    {
        foreach (KeyValuePair<int, Watched> w in _watches)
        {
            lock (w.Value)
            {
                if (!w.Value.Claimed && w.Value.Fd >= 0 && Pidfd.TryGetExitStatus(w.Key, w.Value.Fd, out int status))
                {
                    ReportClaimed(w.Key, w.Value, status);
                }
            }
        }
    }

    private int EnsureStarted()
    {
        lock (_startLock)
        {
            if (_epoll >= 0)
            {
                return _epoll;
            }

            int epoll = Pidfd.EpollCreate(Pidfd.EPOLL_CLOEXEC);
            if (epoll < 0)
            {
                throw new InvalidOperationException($"epoll_create1 failed: errno {Libc.LastError}");
            }

            new Thread(() => Run(epoll)) { IsBackground = true, Name = "palisade-exit-watcher" }.Start();
            _epoll = epoll;
            return epoll;
        }
    }

    private void Run(int epoll)
    {
        Pidfd.EpollEvent* events = stackalloc Pidfd.EpollEvent[BatchSize];
        while (true)
        {
            int ready = Pidfd.EpollWait(epoll, events, BatchSize, -1);
            if (ready < 0)
            {
                if (Libc.LastError == Errno.EINTR)
                {
                    continue;
                }

                return;
            }

            for (int i = 0; i < ready; i++)
            {
                int pid = (int)events[i].Data;
                if (!_watches.TryGetValue(pid, out Watched? w))
                {
                    continue;
                }

                lock (w)
                {
                    if (!w.Claimed && w.Fd >= 0)
                    {
                        if (!Pidfd.TryGetExitStatus(pid, w.Fd, out int status))
                        {
                            // Ended (readable) but its status could not be read: the end is still reported, with status
                            // 0, rather than kept on a level-triggered descriptor that would wake this loop forever.
                            status = 0;
                        }

                        ReportClaimed(pid, w, status);
                    }

                    // Closed under the watch's lock, once (a claim may have closed it already): nobody reads or
                    // closes the descriptor number after it may have been reused.
                    w.Close();
                }

                _watches.TryRemove(new KeyValuePair<int, Watched>(pid, w));
            }
        }
    }

    /// <summary>Claims and reports; the caller holds the lock of <paramref name="w"/>, so a Drain waits for the report.</summary>
    private void ReportClaimed(int pid, Watched w, int waitStatus)
    {
        w.Claimed = true;
        int signal = waitStatus & 0x7F;
        int code = signal == 0 ? (waitStatus >> 8) & 0xFF : 128 + signal;
        try
        {
            _report(pid, code, signal);
        }
        catch (Exception fault) when (fault is not OutOfMemoryException)
        {
            // A report that fails is contained like a mediator fault: the watch goes on for every other process.
            Launch.HiddenVerbs.WriteFault(fault);
        }
    }

    /// <summary>One watched process: its pidfd (-1 once closed) and whether its end was claimed. Guarded by its lock.</summary>
    private sealed class Watched(int fd)
    {
        public int Fd = fd;
        public bool Claimed;

        public void Close()
        {
            Libc.CloseOwned(Fd);
            Fd = -1;
        }
    }
}
