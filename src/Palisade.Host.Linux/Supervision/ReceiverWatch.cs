using Palisade.Interop;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Makes sure that only the waiting guest waits. One thread receives notifications at a time and serves each one to its
/// end on the same thread: decoding, the drivers' decision, the operation, the answer. Anything in that can take long
/// (a driver's callback that holds or scans, an open of a FIFO without its partner, a file under lease break, a blocking
/// connect) would stall every guest. So the receiving thread marks each notification it serves; a watch thread that
/// finds the same notification still in progress on two polls <see cref="PollMilliseconds"/> apart hands the listener to
/// a new receiving thread. The old thread goes on serving its one notification as the guest would wait for it, answers
/// it, and ends. Linux hands each notification to exactly one receiver, so nothing is answered twice.
/// </summary>
/// <remarks>
/// <para>This is the one place that knows the threads that wait for a guest (<see cref="Waiting"/>). It bounds them at
/// <see cref="MaxWaitingThreads"/>: at the bound it hands nothing over; it cuts the slow notification short instead
/// (<see cref="InterruptSignal"/>: a system call it waits in returns EINTR, which the operation answers EAGAIN, see
/// <see cref="TakeRefusal"/>) and reports the bound once. The receiving thread then goes on receiving. A wait the
/// signal cannot cut (a driver holding its decision) ends when the hold does, by the driver or its hold time. Every <see cref="LivenessPolls"/> polls it asks whether each waiting thread's guest still waits (the
/// notification is still valid); for one that does not (killed, its process gone) it tells the owner once, which lets
/// the kernel cancel a decision held for it, and cuts the thread's wait short with <see cref="InterruptSignal"/> (a
/// system call it waits in, an open of a FIFO whose partner never comes, returns EINTR), so that a guest cannot hold
/// the supervisor's threads by dying in numbers. The signal never outlives the wait: the thread takes it in
/// <see cref="End"/> if it was sent and not yet delivered.</para>
/// <para>The hot path pays one interlocked exchange when a notification begins, one compare-and-swap when it ends, and
/// no system call. The watch polls only while notifications are being served or threads wait; after
/// <see cref="IdlePollsBeforeParking"/> idle polls it parks until the next notification.</para>
/// </remarks>
internal sealed class ReceiverWatch : IDisposable
{
    /// <summary>How often the watch looks; a notification that takes long stalls the other guests for one to two polls.</summary>
    public const int PollMilliseconds = 5;

    /// <summary>Polls without a new notification, and no thread waiting, after which the watch stops polling (one second).</summary>
    public const int IdlePollsBeforeParking = 200;

    /// <summary>Polls between two checks that the guests of the waiting threads still wait (50 ms).</summary>
    public const int LivenessPolls = 10;

    /// <summary>The most threads that may wait for slow notifications at once.</summary>
    public const int MaxWaitingThreads = 256;

    private const long NoTicket = 0;
    private const long TakenOver = -1;
    private const long Refused = -2;
    private const int InWait = 0, Interrupting = 1, Interrupted = 2, Done = 3;

    [ThreadStatic]
    private static int t_tid;

    private readonly Action _reserve;
    private readonly Action<bool> _takeOver;
    private readonly Func<ulong, bool> _stillWaiting;
    private readonly Action<int, int, ulong> _guestGone;
    private readonly Action _atLimit;
    private readonly object _gate = new();
    private readonly Waiter?[] _waiters = new Waiter?[MaxWaitingThreads];
    private readonly Waiter?[] _gone = new Waiter?[8];
    private long _inProgress;
    private long _takeOvers;
    private long _abandoned;
    private long _refusals;
    private int _refusedReceiver;
    private long _refusedTicket;
    private int _refusalSent;
    private long _lastTicket;

    // The notification the receiving thread serves, written before its ticket is published.
    private ulong _currentId;
    private int _currentProcess;
    private int _currentThread;
    private int _currentReceiver;
    private int _waiting;
    private int _parked;
    private bool _limitReported;
    private volatile bool _disposed;

    /// <summary>
    /// Creates a watch. <paramref name="reserve"/> counts a receiving thread about to be started, before the hand-over is
    /// claimed; then <paramref name="takeOver"/>(true) starts it, or <paramref name="takeOver"/>(false) returns the
    /// reservation when the notification ended first (both called on the watch thread);
    /// <paramref name="stillWaiting"/> says whether a notification is still valid; <paramref name="guestGone"/> is told the
    /// process, thread and notification of a waiting thread whose guest no longer waits (or that has just answered: the
    /// notification id tells which call); <paramref name="atLimit"/> is told once when the bound stops a hand-over.
    /// </summary>
    public ReceiverWatch(Action reserve, Action<bool> takeOver, Func<ulong, bool> stillWaiting, Action<int, int, ulong> guestGone, Action atLimit)
    {
        ArgumentNullException.ThrowIfNull(reserve);
        ArgumentNullException.ThrowIfNull(takeOver);
        _reserve = reserve;
        ArgumentNullException.ThrowIfNull(stillWaiting);
        ArgumentNullException.ThrowIfNull(guestGone);
        ArgumentNullException.ThrowIfNull(atLimit);
        _takeOver = takeOver;
        _stillWaiting = stillWaiting;
        _guestGone = guestGone;
        _atLimit = atLimit;
        _ = InterruptSignal.EnsureInstalled();
    }

    /// <summary>Notifications handed over so far: each is one receiving thread that went on serving a slow notification.</summary>
    public long TakeOvers => Interlocked.Read(ref _takeOvers);

    /// <summary>Slow notifications cut short because <see cref="MaxWaitingThreads"/> threads waited already.</summary>
    public long Refusals => Interlocked.Read(ref _refusals);

    /// <summary>Waits cut short because their guest was gone.</summary>
    public long Abandoned => Interlocked.Read(ref _abandoned);

    /// <summary>Threads that serve a slow notification now (handed over, not yet done).</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>True while the watch has stopped polling for want of work.</summary>
    public bool Parked => Volatile.Read(ref _parked) == 1;

    /// <summary>Starts the watch thread.</summary>
    public void Start() => new Thread(Watch) { IsBackground = true, Name = "palisade-receiver-watch" }.Start();

    /// <summary>
    /// Marks the start of notification <paramref name="id"/> of guest thread <paramref name="thread"/> (of
    /// <paramref name="process"/>) on the receiving thread; returns its ticket for <see cref="End"/>.
    /// </summary>
    public long Begin(ulong id, int process, int thread)
    {
        // Only the receiving thread begins, one notification at a time: a plain increment makes a unique ticket.
        long ticket = _lastTicket + 1;
        Volatile.Write(ref _lastTicket, ticket);
        _currentId = id;
        _currentProcess = process;
        _currentThread = thread;
        _currentReceiver = CurrentThread;
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
    /// Marks the end of the notification with <paramref name="ticket"/>. False when the watch handed the listener to
    /// another thread meanwhile: the caller has answered its notification and receives no more.
    /// </summary>
    public bool End(long ticket)
    {
        if (Interlocked.CompareExchange(ref _inProgress, NoTicket, ticket) == ticket)
        {
            return true;
        }

        if (TakeRefusal())
        {
            // Cut short at the bound (its call was not one that returns EINTR): this thread is still the receiving one.
            Interlocked.CompareExchange(ref _inProgress, NoTicket, ticket);
            return true;
        }

        Waiter? mine = null;
        lock (_waiters)
        {
            for (int i = 0; i < _waiters.Length; i++)
            {
                if (_waiters[i] is { } w && w.Ticket == ticket)
                {
                    _waiters[i] = null;
                    Interlocked.Decrement(ref _waiting);
                    mine = w;
                    break;
                }
            }
        }

        if (mine is not null && Interlocked.CompareExchange(ref mine.State, Done, InWait) != InWait)
        {
            // The watch is cutting this wait short: wait until its signal is sent and take it, so that it cuts short no
            // later call of this thread.
            SpinWait spin = default;
            while (Volatile.Read(ref mine.State) != Interrupted)
            {
                spin.SpinOnce();
            }

            InterruptSignal.Absorb();
        }

        return false;
    }

    /// <summary>
    /// For the operation of the receiving thread whose blocking call returned EINTR: true when the watch cut it short at
    /// the bound (answer EAGAIN), after taking the watch's signal so that it cuts short no later call; false otherwise
    /// (the guest's own signal, or a wait cut short because its guest is gone).
    /// </summary>
    public bool TakeRefusal()
    {
        if (Volatile.Read(ref _refusedReceiver) != CurrentThread)
        {
            return false;
        }

        // Wait until no signal is being sent (the watch repeats it while the refusal is not taken), stop further ones,
        // then take every one still pending.
        SpinWait spin = default;
        while (Interlocked.CompareExchange(ref _refusalSent, 0, 1) != 1)
        {
            if (Volatile.Read(ref _refusedReceiver) != CurrentThread)
            {
                return false; // The watch found the notification ended before it could refuse it.
            }

            spin.SpinOnce();
        }

        InterruptSignal.Absorb();
        Volatile.Write(ref _refusedReceiver, 0);

        // The notification is the receiving thread's again, to answer and end as any other.
        Interlocked.CompareExchange(ref _inProgress, _refusedTicket, Refused);
        return true;
    }

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
        long seen = NoTicket;
        long seenTicket = Volatile.Read(ref _lastTicket);
        int idlePolls = 0;
        int polls = 0;
        while (!_disposed)
        {
            Thread.Sleep(PollMilliseconds);
            if (++polls % LivenessPolls == 0 && Volatile.Read(ref _waiting) > 0)
            {
                CheckWaiters();
            }

            long ticket = Volatile.Read(ref _inProgress);
            if (ticket == Refused)
            {
                // The signal came before the receiving thread waited in a call it cuts short: send it again.
                ResendRefusal();
            }

            if (ticket > 0 && ticket == seen)
            {
                // The same notification was in progress a whole poll ago: it is slow. Hand it over unless it just ended.
                TryHandOver(ticket);
                seen = NoTicket;
                continue;
            }

            seen = ticket;
            long last = Volatile.Read(ref _lastTicket);
            idlePolls = ticket <= 0 && last == seenTicket && Volatile.Read(ref _waiting) == 0 ? idlePolls + 1 : 0;
            seenTicket = last;
            if (idlePolls >= IdlePollsBeforeParking)
            {
                Park(last);
                idlePolls = 0;
                seen = NoTicket;
                seenTicket = Volatile.Read(ref _lastTicket);
            }
        }
    }

    private void TryHandOver(long ticket)
    {
        if (Volatile.Read(ref _waiting) >= MaxWaitingThreads)
        {
            Refuse(ticket);
            return;
        }

        // Read what the notification is before claiming it: once claimed, the receiver never changes these again. The claim
        // and the record of the waiting thread are made under the lock that a failed End takes, so End always finds it.
        // The next receiving thread is counted before the claim (and started after it, outside the lock): once claimed,
        // the receiving thread may end at once, and it must never end as the last one counted (the last closes the
        // listener, and every guest's next call would fail with ENOSYS).
        ulong id = _currentId;
        int process = _currentProcess, thread = _currentThread, receiver = _currentReceiver;
        _reserve();
        bool claimed;
        lock (_waiters)
        {
            claimed = Interlocked.CompareExchange(ref _inProgress, TakenOver, ticket) == ticket;
            if (claimed)
            {
                int free = Array.IndexOf(_waiters, null);
                _waiters[free] = new Waiter(ticket, id, process, thread, receiver);
                Interlocked.Increment(ref _waiting);
            }
        }

        if (!claimed)
        {
            _takeOver(false);
            return;
        }

        _limitReported = false;
        Interlocked.Increment(ref _takeOvers);
        _takeOver(true);
    }

    /// <summary>At the bound: cuts the receiving thread's slow notification short, unless it has just ended.</summary>
    private void Refuse(long ticket)
    {
        int receiver = _currentReceiver;

        // Named before the notification is marked refused: the receiving thread that finds its End refused looks for itself.
        _refusedTicket = ticket;
        Volatile.Write(ref _refusedReceiver, receiver);
        if (Interlocked.CompareExchange(ref _inProgress, Refused, ticket) != ticket)
        {
            Volatile.Write(ref _refusedReceiver, 0);
            return;
        }

        Interlocked.Increment(ref _refusals);
        _ = InterruptSignal.Send(receiver);
        Volatile.Write(ref _refusalSent, 1);
        if (!_limitReported)
        {
            _limitReported = true;
            _atLimit();
        }
    }

    /// <summary>Sends the refusal's signal again, unless the receiving thread is taking it (then it sends no more).</summary>
    private void ResendRefusal()
    {
        if (Interlocked.CompareExchange(ref _refusalSent, 2, 1) == 1)
        {
            _ = InterruptSignal.Send(Volatile.Read(ref _refusedReceiver));
            Volatile.Write(ref _refusalSent, 1);
        }
    }

    private void CheckWaiters()
    {
        Waiter?[] gone = _gone;
        int count = 0;
        lock (_waiters)
        {
            foreach (Waiter? w in _waiters)
            {
                if (w is null || w.GuestGone || count == gone.Length)
                {
                    continue;
                }

                if (!_stillWaiting(w.Id))
                {
                    // Also true for a thread that has just answered and not yet ended: the notification id lets the owner
                    // act only on that very call.
                    w.GuestGone = true;
                    gone[count++] = w;
                }
            }
        }

        // Outside the lock: what the owner does (cancel a held decision) wakes the waiting thread, whose End takes the lock.
        for (int i = 0; i < count; i++)
        {
            Waiter w = gone[i]!;
            _guestGone(w.Process, w.Thread, w.Id);
            Interrupt(w);
            gone[i] = null;
        }
    }

    /// <summary>Cuts the wait of <paramref name="w"/> short, unless it has ended: a system call its thread waits in returns EINTR.</summary>
    private void Interrupt(Waiter w)
    {
        if (Interlocked.CompareExchange(ref w.State, Interrupting, InWait) == InWait)
        {
            Interlocked.Increment(ref _abandoned);
            _ = InterruptSignal.Send(w.Receiver);
            Volatile.Write(ref w.State, Interrupted);
        }
    }

    private static int CurrentThread => t_tid != 0 ? t_tid : t_tid = (int)Libc.Syscall(Sys.Gettid, 0, 0, 0, 0, 0, 0);

    private void Park(long ticket)
    {
        Interlocked.Exchange(ref _parked, 1);
        if (Volatile.Read(ref _lastTicket) != ticket || _disposed || Volatile.Read(ref _waiting) > 0)
        {
            // A notification began while we were deciding: it may not have seen us park.
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

    /// <summary>A thread that serves a slow notification: which one (<see cref="Receiver"/>, the supervisor thread's id), and for whom.</summary>
    private sealed class Waiter(long ticket, ulong id, int process, int thread, int receiver)
    {
        /// <summary>Where the wait stands: in wait, being cut short, cut short, or ended.</summary>
        public int State;

        public int Receiver { get; } = receiver;

        public long Ticket { get; } = ticket;

        public ulong Id { get; } = id;

        public int Process { get; } = process;

        public int Thread { get; } = thread;

        /// <summary>Set once the guest was found no longer waiting (it is reported once).</summary>
        public bool GuestGone { get; set; }
    }
}
