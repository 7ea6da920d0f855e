using Palisade.Interop;

namespace Palisade.Host.Linux.Supervision;

/// <summary>How a wait watched by <see cref="OpenWatch"/> ended, for the thread that waited.</summary>
internal enum WaitEnd
{
    /// <summary>It ended on its own, or was handed over (a new thread receives): the thread finishes its notification.</summary>
    Finish,

    /// <summary>Its guest is gone (the notification was withdrawn): the call was cut short; nothing is to be done for it.</summary>
    Abandoned,

    /// <summary>
    /// The run's bound of waiting operations (<see cref="OpenWatch.MaxWaiting"/>) was reached: the call was cut short,
    /// and is answered EAGAIN (unless it completed meanwhile); this thread keeps receiving.
    /// </summary>
    Refused,
}

/// <summary>
/// Lets the receiving thread open files exactly as the guest asked (blocking) without letting one open stall every
/// guest, and without letting a guest multiply the supervisor's threads. An open can wait: a FIFO end until its partner
/// opens, a file until a lease on it is broken. The receiving thread marks each open it starts; a watch thread that
/// finds the same open still in progress on two polls <see cref="PollMilliseconds"/> apart takes the listener away from
/// it and starts a new receiving thread. The old thread keeps waiting in its open as the guest would, finishes that one
/// notification when the open returns, and ends. Linux hands each notification to exactly one receiver, so nothing is
/// answered twice.
/// </summary>
/// <remarks>
/// <para>
/// A waiting thread is released when its guest goes: on each poll the watch asks Linux whether each waiting operation's
/// notification is still pending (SECCOMP_IOCTL_NOTIF_ID_VALID); once it is not (the guest was killed), the watch cuts the
/// wait short with <see cref="InterruptSignal"/> (the call returns EINTR) and the thread ends. Blocking operations run on
/// worker threads (a blocking connect) are watched the same way.
/// </para>
/// <para>
/// At most <see cref="MaxWaiting"/> operations wait at a time per run: a further open that waits is cut short and
/// answered EAGAIN after one to two polls, on the receiving thread that keeps receiving; a further blocking connect is
/// answered EAGAIN at once. docs/security.md states this bound.
/// </para>
/// <para>
/// The hot path pays two interlocked operations and two stores per open and no system call. The watch polls only while
/// opens are being made or operations wait; after <see cref="IdlePollsBeforeParking"/> polls without either it parks
/// until the next open.
/// </para>
/// </remarks>
internal sealed class OpenWatch : IDisposable
{
    /// <summary>How often the watch looks; an open that waits stalls the other guests for one to two polls.</summary>
    public const int PollMilliseconds = 5;

    /// <summary>Polls without a new open after which the watch stops polling (one second).</summary>
    public const int IdlePollsBeforeParking = 200;

    /// <summary>The most operations of one run that may wait at a time, each holding a supervisor thread.</summary>
    public const int MaxWaiting = 64;

    private const long NoOpen = 0;
    private const long TakenOver = -1;
    private const long Refused = -2;

    private const int Free = 0, Reserved = 1, InWait = 2, Interrupting = 3, Interrupted = 4;

    [ThreadStatic]
    private static int t_tid;

    private readonly Action _takeOver;
    private readonly Func<ulong, bool>? _stillWaiting;
    private readonly object _gate = new();
    private readonly Slot[] _slots = new Slot[MaxWaiting];
    private long _inProgress;
    private ulong _currentNotification;
    private int _currentThread;
    private int _refusedThread;
    private int _refusalSent;
    private long _takeOvers;
    private long _refusals;
    private long _abandoned;
    private long _lastTicket;
    private int _parked;
    private volatile bool _disposed;

    /// <summary>
    /// Creates a watch that will call <paramref name="takeOver"/> (on the watch thread) for each open that waits and,
    /// with <paramref name="stillWaiting"/> (is this notification still pending?), releases waits whose guest is gone.
    /// </summary>
    public OpenWatch(Action takeOver, Func<ulong, bool>? stillWaiting = null)
    {
        ArgumentNullException.ThrowIfNull(takeOver);
        _takeOver = takeOver;
        _stillWaiting = stillWaiting;
        for (int i = 0; i < _slots.Length; i++)
        {
            _slots[i] = new Slot();
        }

        if (stillWaiting is not null)
        {
            _ = InterruptSignal.EnsureInstalled();
        }
    }

    /// <summary>Opens handed over so far: each is one receiving thread that waited in its open.</summary>
    public long TakeOvers => Interlocked.Read(ref _takeOvers);

    /// <summary>Waits cut short because the run's bound was reached.</summary>
    public long Refusals => Interlocked.Read(ref _refusals);

    /// <summary>Waits cut short because their guest was gone.</summary>
    public long Abandoned => Interlocked.Read(ref _abandoned);

    /// <summary>Operations waiting now (each holds a thread).</summary>
    public int Waiting
    {
        get
        {
            int n = 0;
            foreach (Slot slot in _slots)
            {
                n += Volatile.Read(ref slot.State) != Free ? 1 : 0;
            }

            return n;
        }
    }

    /// <summary>True while the watch has stopped polling for want of opens.</summary>
    public bool Parked => Volatile.Read(ref _parked) == 1;

    /// <summary>Starts the watch thread.</summary>
    public void Start() => new Thread(Watch) { IsBackground = true, Name = "palisade-open-watch" }.Start();

    /// <summary>
    /// Marks the start of an open on the receiving thread for notification <paramref name="notification"/> (0 when there
    /// is none to watch); returns its ticket for <see cref="End"/>.
    /// </summary>
    public long Begin(ulong notification = 0)
    {
        _currentNotification = notification;
        _currentThread = CurrentThread;
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
    /// thread meanwhile, or cut the open short at the bound: the caller then calls <see cref="Settle"/>.
    /// </summary>
    public bool End(long ticket) => Interlocked.CompareExchange(ref _inProgress, NoOpen, ticket) == ticket;

    /// <summary>
    /// After <see cref="End"/> returned false, or after a worker's blocking call returned: how the wait ended. A thread
    /// whose guest is still there finishes its notification (<see cref="WaitEnd.Finish"/>); its place among the waiting
    /// operations is given back here, before it finishes.
    /// </summary>
    public WaitEnd Settle()
    {
        int tid = CurrentThread;
        if (Volatile.Read(ref _refusedThread) == tid)
        {
            // Cut short at the bound: take the watch's signal once it is sent, so that it cuts short nothing else.
            SpinWait spin = default;
            while (Volatile.Read(ref _refusalSent) == 0)
            {
                spin.SpinOnce();
            }

            InterruptSignal.Absorb();
            Volatile.Write(ref _refusalSent, 0);
            Volatile.Write(ref _refusedThread, 0);
            return WaitEnd.Refused;
        }

        foreach (Slot slot in _slots)
        {
            if (Volatile.Read(ref slot.Thread) == tid && Volatile.Read(ref slot.State) != Free)
            {
                return Release(slot);
            }
        }

        return WaitEnd.Finish;
    }

    /// <summary>
    /// Reserves a place for a blocking operation run on a worker thread for <paramref name="notification"/>; false at the
    /// bound (the caller answers EAGAIN). The worker calls <see cref="Attach"/> when it starts and <see cref="Settle"/>
    /// when its call returns.
    /// </summary>
    public bool TryReserve(ulong notification, out int place)
    {
        for (place = 0; place < _slots.Length; place++)
        {
            Slot slot = _slots[place];
            if (Interlocked.CompareExchange(ref slot.State, Reserved, Free) == Free)
            {
                slot.Notification = notification;
                WakeUp();
                return true;
            }
        }

        Interlocked.Increment(ref _refusals);
        place = -1;
        return false;
    }

    /// <summary>The worker thread of a reserved place starts waiting (from now on the watch may cut its wait short).</summary>
    public void Attach(int place)
    {
        Slot slot = _slots[place];
        Volatile.Write(ref slot.Thread, CurrentThread);
        Volatile.Write(ref slot.State, InWait);
    }

    /// <summary>Stops the watch thread; the guests are all gone, so every operation still waiting is cut short.</summary>
    public void Dispose()
    {
        foreach (Slot slot in _slots)
        {
            Interrupt(slot);
        }

        _disposed = true;
        Volatile.Write(ref _parked, 0);
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }
    }

    private static int CurrentThread => t_tid != 0 ? t_tid : t_tid = (int)Libc.Syscall(Sys.Gettid, 0, 0, 0, 0, 0, 0);

    private WaitEnd Release(Slot slot)
    {
        // InWait -> Free, unless the watch is cutting the wait short: then wait until its signal is sent and take it.
        if (Interlocked.CompareExchange(ref slot.State, Free, InWait) == InWait)
        {
            slot.Thread = 0;
            return WaitEnd.Finish;
        }

        SpinWait spin = default;
        while (Volatile.Read(ref slot.State) != Interrupted)
        {
            spin.SpinOnce();
        }

        InterruptSignal.Absorb();
        slot.Thread = 0;
        Volatile.Write(ref slot.State, Free);
        return WaitEnd.Abandoned;
    }

    private void WakeUp()
    {
        if (Volatile.Read(ref _parked) == 1 && Interlocked.CompareExchange(ref _parked, 0, 1) == 1)
        {
            lock (_gate)
            {
                Monitor.Pulse(_gate);
            }
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
            int waiting = ReleaseAbandoned();
            long open = Volatile.Read(ref _inProgress);
            if (open > 0 && open == seenOpen)
            {
                // The same open was in progress a whole poll ago: it waits. Hand it over, or cut it short at the bound.
                HandOver(open);
                seenOpen = NoOpen;
                continue;
            }

            seenOpen = open;
            long ticket = Volatile.Read(ref _lastTicket);
            idlePolls = open <= 0 && ticket == seenTicket && waiting == 0 ? idlePolls + 1 : 0;
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

    private void HandOver(long open)
    {
        ulong notification = _currentNotification;
        int thread = _currentThread;
        Slot? place = null;
        foreach (Slot slot in _slots)
        {
            if (Interlocked.CompareExchange(ref slot.State, Reserved, Free) == Free)
            {
                place = slot;
                break;
            }
        }

        if (place is null)
        {
            // Named before the open is marked refused: the thread that finds its End refused looks for itself here.
            Volatile.Write(ref _refusedThread, thread);
            if (Interlocked.CompareExchange(ref _inProgress, Refused, open) != open)
            {
                Volatile.Write(ref _refusedThread, 0); // It just ended.
                return;
            }

            Interlocked.Increment(ref _refusals);
            _ = InterruptSignal.Send(thread);
            Volatile.Write(ref _refusalSent, 1);
            return;
        }

        if (Interlocked.CompareExchange(ref _inProgress, TakenOver, open) != open)
        {
            Volatile.Write(ref place.State, Free); // It just ended.
            return;
        }

        place.Notification = notification;
        place.Thread = thread;
        Volatile.Write(ref place.State, InWait);
        Interlocked.Increment(ref _takeOvers);
        _takeOver();
    }

    /// <summary>Cuts short every wait whose guest is gone; returns how many operations wait.</summary>
    private int ReleaseAbandoned()
    {
        int waiting = 0;
        foreach (Slot slot in _slots)
        {
            int state = Volatile.Read(ref slot.State);
            if (state == Free)
            {
                continue;
            }

            waiting++;
            if (state == InWait && slot.Notification != 0 && _stillWaiting is not null && !_stillWaiting(slot.Notification))
            {
                Interrupt(slot);
            }
        }

        return waiting;
    }

    /// <summary>Cuts the wait of <paramref name="slot"/> short, if it is waiting: its thread's call returns EINTR.</summary>
    private void Interrupt(Slot slot)
    {
        if (Interlocked.CompareExchange(ref slot.State, Interrupting, InWait) == InWait)
        {
            Interlocked.Increment(ref _abandoned);
            _ = InterruptSignal.Send(slot.Thread);
            Volatile.Write(ref slot.State, Interrupted);
        }
    }

    private void Park(long ticket)
    {
        Interlocked.Exchange(ref _parked, 1);
        if (Volatile.Read(ref _lastTicket) != ticket || _disposed || Waiting > 0)
        {
            // An open began (or an operation started waiting) while we were deciding: it may not have seen us park.
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

    /// <summary>One waiting operation: its notification, the supervisor thread that waits, and where the wait stands.</summary>
    private sealed class Slot
    {
        public ulong Notification;
        public int Thread;
        public int State;
    }
}
