namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Lets the receiving thread open files exactly as the guest asked (blocking) without letting one open stall
/// every guest. An open can wait: a FIFO end until its partner opens, a file until a lease on it is broken. The
/// receiving thread marks each open it starts; a watch thread that finds the same open still in progress on two
/// polls <see cref="PollMilliseconds"/> apart takes the listener away from it and starts a new receiving thread.
/// The old thread keeps waiting in its open as the guest would, finishes that one notification when the open
/// returns, and ends. Linux hands each notification to exactly one receiver, so nothing is answered twice.
/// </summary>
/// <remarks>
/// The hot path pays two interlocked operations per open and no system call. The watch polls only while opens are
/// being made; after <see cref="IdlePollsBeforeParking"/> polls without a new open it parks until the next one.
/// </remarks>
internal sealed class OpenWatch : IDisposable
{
    /// <summary>How often the watch looks; an open that waits stalls the other guests for one to two polls.</summary>
    public const int PollMilliseconds = 5;

    /// <summary>Polls without a new open after which the watch stops polling (one second).</summary>
    public const int IdlePollsBeforeParking = 200;

    private const long NoOpen = 0;
    private const long TakenOver = -1;

    private readonly Action _takeOver;
    private readonly object _gate = new();
    private long _inProgress;
    private long _takeOvers;
    private long _lastTicket;
    private int _parked;
    private volatile bool _disposed;

    /// <summary>Creates a watch that will call <paramref name="takeOver"/> (on the watch thread) for each open that waits.</summary>
    public OpenWatch(Action takeOver)
    {
        ArgumentNullException.ThrowIfNull(takeOver);
        _takeOver = takeOver;
    }

    /// <summary>Opens handed over so far: each is one receiving thread that waited in its open.</summary>
    public long TakeOvers => Interlocked.Read(ref _takeOvers);

    /// <summary>True while the watch has stopped polling for want of opens.</summary>
    public bool Parked => Volatile.Read(ref _parked) == 1;

    /// <summary>Starts the watch thread.</summary>
    public void Start() => new Thread(Watch) { IsBackground = true, Name = "palisade-open-watch" }.Start();

    /// <summary>Marks the start of an open on the receiving thread; returns its ticket for <see cref="End"/>.</summary>
    public long Begin()
    {
        long ticket = Interlocked.Increment(ref _lastTicket);
        Interlocked.Exchange(ref _inProgress, ticket);

        // The exchange above is a full fence, and so is the watch's when it parks: one of the two sees the other.
        if (Volatile.Read(ref _parked) == 1 && Interlocked.CompareExchange(ref _parked, 0, 1) == 1)
        {
            lock (_gate)
            {
                Monitor.Pulse(_gate);
            }
        }

        return ticket;
    }

    /// <summary>
    /// Marks the end of the open with <paramref name="ticket"/>. False when the watch handed the listener to another
    /// thread meanwhile: the caller finishes its notification and receives no more.
    /// </summary>
    public bool End(long ticket) => Interlocked.CompareExchange(ref _inProgress, NoOpen, ticket) == ticket;

    /// <summary>Stops the watch thread.</summary>
    public void Dispose()
    {
        _disposed = true;
        Volatile.Write(ref _parked, 0);
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }
    }

    private void Watch()
    {
        long seenOpen = NoOpen;
        long seenTicket = Volatile.Read(ref _lastTicket);
        int idlePolls = 0;
        while (!_disposed)
        {
            Thread.Sleep(PollMilliseconds);
            long open = Volatile.Read(ref _inProgress);
            if (open > 0 && open == seenOpen)
            {
                // The same open was in progress a whole poll ago: it waits. Take it over unless it just ended.
                if (Interlocked.CompareExchange(ref _inProgress, TakenOver, open) == open)
                {
                    Interlocked.Increment(ref _takeOvers);
                    _takeOver();
                }

                seenOpen = NoOpen;
                continue;
            }

            seenOpen = open;
            long ticket = Volatile.Read(ref _lastTicket);
            idlePolls = open <= 0 && ticket == seenTicket ? idlePolls + 1 : 0;
            seenTicket = ticket;
            if (idlePolls >= IdlePollsBeforeParking)
            {
                Park(ticket);
                idlePolls = 0;
                seenOpen = NoOpen;
                seenTicket = Volatile.Read(ref _lastTicket);
            }
        }
    }

    private void Park(long ticket)
    {
        Interlocked.Exchange(ref _parked, 1);
        if (Volatile.Read(ref _lastTicket) != ticket || _disposed)
        {
            // An open began while we were deciding: it may not have seen us park.
            Volatile.Write(ref _parked, 0);
            return;
        }

        lock (_gate)
        {
            while (Volatile.Read(ref _parked) == 1)
            {
                Monitor.Wait(_gate);
            }
        }
    }
}
