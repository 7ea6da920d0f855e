using Palisade.Api;
using Palisade.Interop;

namespace Palisade.Kernel.Ports;

/// <summary>
/// The processes a driver keeps out of its own file callbacks (IPortManager.ExcludeProcess, and the clients of a port
/// with ExcludeClientsFromFileCallbacks). Each entry holds a pidfd of the very process it was made for, so that an
/// entry outlives neither its process nor a reuse of its number: a match whose process has ended is dropped and
/// excludes nothing. The filter manager asks <see cref="Excludes"/> for each of the driver's filters on every file
/// operation; with no exclusions that is one array length read.
/// </summary>
internal sealed class ProcessExclusions : IDisposable
{
    /// <summary>The most processes one driver may exclude by name (connections of its ports come on top).</summary>
    public const int NamedLimit = 256;

    private readonly Lock _lock = new();
    private Entry[] _entries = [];
    private int[] _pids = [];

    private sealed record Entry(int ProcessId, int Pidfd, object? Source);

    /// <summary>True when <paramref name="processId"/> is excluded and its process is still the one excluded. Allocates nothing.</summary>
    public bool Excludes(int processId)
    {
        int[] pids = Volatile.Read(ref _pids);
        return pids.Length != 0 && Array.IndexOf(pids, processId) >= 0 && StillAlive(processId);
    }

    /// <summary>Excludes a live process on behalf of <paramref name="source"/> (null: the driver by name; otherwise a connection).</summary>
    public Status Add(int processId, object? source)
    {
        if (processId <= 0)
        {
            return Status.InvalidParameter;
        }

        lock (_lock)
        {
            if (Array.Exists(_entries, e => e.ProcessId == processId && e.Source == source))
            {
                return Status.Success;
            }

            if (source is null && _entries.Count(e => e.Source is null) >= NamedLimit)
            {
                return Status.InsufficientResources;
            }

            int pidfd = Pidfd.Open(processId);
            if (pidfd < 0)
            {
                return Status.NotFound;
            }

            Publish([.. _entries, new Entry(processId, pidfd, source)]);
            return Status.Success;
        }
    }

    /// <summary>Ends the exclusions <paramref name="source"/> made of <paramref name="processId"/>; false when there was none.</summary>
    public bool Remove(int processId, object? source) => RemoveWhere(e => e.ProcessId == processId && e.Source == source) > 0;

    /// <summary>Ends every exclusion <paramref name="source"/> made.</summary>
    public void RemoveAll(object source) => RemoveWhere(e => e.Source == source);

    public void Dispose() => RemoveWhere(_ => true);

    private bool StillAlive(int processId)
    {
        foreach (Entry e in Volatile.Read(ref _entries))
        {
            if (e.ProcessId == processId && !SocketMessages.HasEnded(e.Pidfd))
            {
                return true;
            }
        }

        // Every entry of that number is of a process that ended: none may match a later process of the same number.
        RemoveWhere(e => e.ProcessId == processId && SocketMessages.HasEnded(e.Pidfd));
        return false;
    }

    private int RemoveWhere(Predicate<Entry> match)
    {
        lock (_lock)
        {
            Entry[] gone = Array.FindAll(_entries, match);
            if (gone.Length == 0)
            {
                return 0;
            }

            Publish(Array.FindAll(_entries, e => !match(e)));
            foreach (Entry e in gone)
            {
                Libc.CloseOwned(e.Pidfd);
            }

            return gone.Length;
        }
    }

    private void Publish(Entry[] entries)
    {
        Volatile.Write(ref _entries, entries);
        Volatile.Write(ref _pids, [.. entries.Select(e => e.ProcessId)]);
    }
}
