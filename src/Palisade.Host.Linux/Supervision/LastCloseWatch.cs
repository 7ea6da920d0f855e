using System.Runtime.InteropServices;
using Palisade.Interop;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Where the last close of a watched file description is reported: <paramref name="processId"/> is the process in whose
/// context Linux released it (its close, or its exit), <paramref name="reader"/> a read-only descriptor of the file,
/// valid during the call (the watch closes it).
/// </summary>
internal interface ILastCloseSink
{
    /// <summary>One last close of a description opened for writing.</summary>
    void LastClose(int processId, int reader);
}

/// <summary>
/// The cleanup of the files guests write, at the moment Linux releases the open file description: the supervisor marks
/// each regular file it opens for writing for a guest (an evictable fanotify inode mark, FAN_CLOSE_WRITE), and Linux
/// raises the event at the final release of a description open for writing on it, that is after the last of its
/// descriptors (dups and forked copies included) is closed, or its last holder exits. One thread reads the events and
/// hands each to the sink.
/// </summary>
/// <remarks>
/// <para>The mark is on the inode, not on the description: a description of the same file opened for writing by any
/// other process (one outside Palisade included) raises the event too, with that process's id. The kernel's own process
/// is not reported. Descriptions of the file opened before the first guest's write open are not watched by this watch
/// until then.</para>
/// <para>Requires CAP_SYS_ADMIN (a privileged fanotify group, whose events carry a descriptor of the file);
/// <see cref="TryStart"/> says when it is missing, and the mediator then falls back to reporting every close(2) of a
/// write descriptor.</para>
/// <para>Every event queued before <see cref="Stop"/> is reported before it returns: Linux raises the event of a
/// process's exit before the process is gone, and so before the supervisor's loop can end.</para>
/// </remarks>
internal sealed unsafe class LastCloseWatch
{
    private const int BufferSize = 4096;
    private const int SysEventfd2 = 290;
    private const int EFD_CLOEXEC = 0x80000;

    private readonly int _group;
    private readonly int _stop;
    private readonly ILastCloseSink _sink;
    private readonly Action<Exception>? _onFault;
    private readonly Thread _reader;
    private readonly int _self = Environment.ProcessId;
    private long _reported;

    private LastCloseWatch(int group, int stop, ILastCloseSink sink, Action<Exception>? onFault)
    {
        _group = group;
        _stop = stop;
        _sink = sink;
        _onFault = onFault;
        _reader = new Thread(Read) { IsBackground = true, Name = "palisade-last-close" };
    }

    /// <summary>Last closes reported so far.</summary>
    public long Reported => Interlocked.Read(ref _reported);

    /// <summary>True when this process may create the watch's fanotify group (CAP_SYS_ADMIN). Probed once.</summary>
    public static bool IsSupported => s_supported.Value;

    private static readonly Lazy<bool> s_supported = new(() =>
    {
        int group = Fanotify.Init(Fanotify.FAN_CLOEXEC | Fanotify.FAN_CLASS_NOTIF);
        Libc.CloseOwned(group);
        return group >= 0;
    });

    /// <summary>
    /// Starts a watch reporting to <paramref name="sink"/> (a sink that throws is reported to <paramref name="onFault"/>
    /// and the watch goes on); null (and the errno) when fanotify cannot be used.
    /// </summary>
    public static LastCloseWatch? TryStart(ILastCloseSink sink, Action<Exception>? onFault, out int error)
    {
        ArgumentNullException.ThrowIfNull(sink);

        // An unlimited queue: a lost event would be a cleanup never reported.
        int group = Fanotify.Init(Fanotify.FAN_CLOEXEC | Fanotify.FAN_NONBLOCK | Fanotify.FAN_CLASS_NOTIF | Fanotify.FAN_UNLIMITED_QUEUE);
        if (group < 0)
        {
            error = -group;
            return null;
        }

        int stop = (int)Libc.Syscall(SysEventfd2, 0, EFD_CLOEXEC, 0, 0, 0, 0);
        if (stop < 0)
        {
            error = Libc.LastError;
            Libc.CloseOwned(group);
            return null;
        }

        error = 0;
        var watch = new LastCloseWatch(group, stop, sink, onFault);
        watch._reader.Start();
        return watch;
    }

    /// <summary>
    /// Watches the file behind <paramref name="fd"/> (a descriptor the supervisor opened for writing for a guest, before
    /// the guest receives it). 0 or -errno; a file that cannot be marked is simply not reported.
    /// </summary>
    public int Watch(int fd) => Fanotify.MarkCloseWrite(_group, fd);

    /// <summary>Reports every event already queued, then ends the reader thread and closes the group.</summary>
    public void Stop()
    {
        ulong one = 1;
        _ = Libc.Write(_stop, &one, sizeof(ulong));
        _reader.Join();
        Libc.CloseOwned(_group);
        Libc.CloseOwned(_stop);
    }

    private void Read()
    {
        byte[] buffer = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
        PollFd* polls = stackalloc PollFd[2];
        while (true)
        {
            polls[0] = new PollFd { Fd = _group, Events = Libc.POLLIN };
            polls[1] = new PollFd { Fd = _stop, Events = Libc.POLLIN };
            if (Libc.Poll(polls, 2, -1) < 0 && Libc.LastError != Errno.EINTR)
            {
                return;
            }

            // Drain the queue before looking at the stop: what was queued before Stop is reported.
            while (ReadBatch(buffer))
            {
            }

            if ((polls[1].Revents & Libc.POLLIN) != 0)
            {
                return;
            }
        }
    }

    /// <summary>Reads and reports one batch of events; false when the queue is empty.</summary>
    private bool ReadBatch(byte[] buffer)
    {
        nint n;
        fixed (byte* b = buffer)
        {
            n = Libc.Read(_group, b, (nuint)buffer.Length);
        }

        if (n <= 0)
        {
            return false;
        }

        int offset = 0;
        while (n - offset >= sizeof(Fanotify.EventMetadata))
        {
            Fanotify.EventMetadata e = MemoryMarshal.Read<Fanotify.EventMetadata>(buffer.AsSpan(offset));
            if (e.EventLength < sizeof(Fanotify.EventMetadata) || e.Version != Fanotify.FANOTIFY_METADATA_VERSION)
            {
                break;
            }

            offset += (int)e.EventLength;
            if (e.Fd < 0)
            {
                continue;
            }

            try
            {
                if ((e.Mask & Fanotify.FAN_CLOSE_WRITE) != 0 && e.Pid != _self)
                {
                    Interlocked.Increment(ref _reported);
                    _sink.LastClose(e.Pid, e.Fd);
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The kernel contains the drivers' faults; anything else is the sink's bug, reported, never the end of the watch.
                _onFault?.Invoke(ex);
            }
            finally
            {
                Libc.CloseOwned(e.Fd);
            }
        }

        return true;
    }
}
