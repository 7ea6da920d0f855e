namespace Palisade.Kernel.Callbacks;

/// <summary>
/// Contains driver callbacks that overrun their deadline. Every kernel thread that calls into a driver marks its
/// slot before the call and clears it after; a monitor thread scans the slots and, for a call past its deadline,
/// disables the registration (later events are not delayed by it), reports the fault, and fires the slot's
/// abandonment hook so that the front end can answer the waiting guest with the default verdict. When the late
/// callback finally returns, its verdict is discarded.
/// </summary>
/// <remarks>
/// Marking a slot must cost next to nothing, since it happens around every callback: a slot records the coarse
/// monotonic clock (<see cref="Environment.TickCount64"/>, a few nanoseconds to read, a few milliseconds of
/// resolution) rather than a precise one. Overruns are detected within one scan period of the deadline.
/// </remarks>
internal sealed class CallbackMonitor : IDisposable
{
    [ThreadStatic]
    private static Slot? t_slot;

    private readonly Lock _lock = new();
    private Slot[] _slots = [];
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _stop = new(false);
    private readonly long _deadlineMs;
    private readonly int _period;
    private readonly Action<Registration, string> _onOverrun;

    public CallbackMonitor(TimeSpan deadline, Action<Registration, string> onOverrun)
    {
        Deadline = deadline;
        _period = (int)Math.Clamp(deadline.TotalMilliseconds / 8, 2, 250);
        _deadlineMs = (long)deadline.TotalMilliseconds;
        _onOverrun = onOverrun;
        _thread = new Thread(Run) { IsBackground = true, Name = "palisade-callback-monitor" };
        _thread.Start();
    }

    public TimeSpan Deadline { get; }

    /// <summary>The calling thread's slot, created on first use.</summary>
    public Slot Current
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        get => t_slot ??= NewSlot();
    }

    private Slot NewSlot()
    {
        var s = new Slot();
        lock (_lock)
        {
            var next = new Slot[_slots.Length + 1];
            _slots.CopyTo(next, 0);
            next[^1] = s;
            _slots = next;
        }

        return s;
    }

    private void Run()
    {
        while (!_stop.Wait(_period))
        {
            long now = Environment.TickCount64;
            foreach (Slot s in Volatile.Read(ref _slots))
            {
                Registration? r = Volatile.Read(ref s.Current);
                if (r is null || s.Overran || now - Volatile.Read(ref s.StartEpoch) <= _deadlineMs)
                {
                    continue;
                }

                if (!ReferenceEquals(r, Volatile.Read(ref s.Current)))
                {
                    continue;
                }

                s.Overran = true;
                r.Disable();
                _onOverrun(r, "deadline overrun: the callback did not return within " + Deadline.TotalMilliseconds + " ms");
                s.Abandon?.Invoke();
            }
        }
    }

    public void Dispose()
    {
        _stop.Set();
        _thread.Join();
        _stop.Dispose();
    }

    /// <summary>The per-thread record of the callback in progress.</summary>
    internal sealed class Slot
    {
        public Registration? Current;
        public long StartEpoch;
        public volatile bool Overran;

        /// <summary>Set by a front end for the request in progress on this thread: answers it with the default verdict.</summary>
        public Action? Abandon;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public void Enter(Registration r)
        {
            Overran = false;
            StartEpoch = Environment.TickCount64;
            Volatile.Write(ref Current, r);
        }

        /// <summary>Clears the slot; returns false when the call overran (its verdict must be discarded).</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public bool Exit()
        {
            Volatile.Write(ref Current, null);
            return !Overran;
        }
    }
}
