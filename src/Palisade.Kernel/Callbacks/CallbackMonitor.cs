using System.Net;
using System.Runtime.CompilerServices;
using Palisade.Api;

namespace Palisade.Kernel.Callbacks;

/// <summary>
/// Contains driver callbacks that overrun their deadline. Every kernel thread that calls into a driver enters a frame of
/// its slot before the call and exits it after; callbacks that nest (a callback's own I/O meets another filter's
/// callback) get one frame each. A monitor thread scans the frames and declares a callback that has used more than the
/// deadline of its own time overrun: the kernel's fault policy then reports it (event, driver notification, disabling as
/// the registration asks), and when the callback returns its verdict is replaced by the registration's timeout verdict.
/// </summary>
/// <remarks>
/// <para>
/// A frame's own time is its time since it was entered minus the time spent in the frames nested in it, so that a
/// callback is never blamed for another registration's callback that its own I/O met, nor for the callback it is nested
/// in. Exactly one of the callback's exit and the monitor's declaration wins a frame (a compare-and-swap on its state):
/// a callback whose verdict was used was not declared overrun, and one declared overrun never has its verdict used.
/// </para>
/// <para>
/// Entering a frame must cost next to nothing, since it happens around every callback: it records the coarse monotonic
/// clock (<see cref="Environment.TickCount64"/>, a few nanoseconds to read, a few milliseconds of resolution) and plain
/// fields; exiting costs one compare-and-swap. Overruns are detected within one scan period of the deadline.
/// </para>
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
    private readonly Action<Registration, OperationTag, long> _onOverrun;

    /// <summary>Creates the monitor; <paramref name="onOverrun"/> is called on the monitor's thread with the registration,
    /// the operation and the frame's own time in milliseconds, once per overrun callback.</summary>
    public CallbackMonitor(TimeSpan deadline, Action<Registration, OperationTag, long> onOverrun)
    {
        Deadline = deadline;
        _period = (int)Math.Clamp(deadline.TotalMilliseconds / 8, 2, 250);
        _deadlineMs = (long)deadline.TotalMilliseconds;
        _onOverrun = onOverrun;
        _thread = new Thread(Run) { IsBackground = true, Name = "palisade-callback-monitor" };
        _thread.Start();
    }

    public TimeSpan Deadline { get; }

    /// <summary>The calling thread's slot in this monitor, created on first use.</summary>
    public Slot Current
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        get
        {
            Slot? s = t_slot;
            return s is not null && ReferenceEquals(s.Monitor, this) ? s : t_slot = NewSlot();
        }
    }

    /// <summary>
    /// How many calls into <paramref name="r"/> the calling thread is inside (a callback of it, or one nested in it): the
    /// calls an unregistration made on this thread cannot wait for.
    /// </summary>
    public static int CallsOnThisThread(Registration r)
    {
        Slot? s = t_slot;
        if (s is null)
        {
            return 0;
        }

        Frame[] frames = s.Frames;
        int n = 0;
        for (int i = Math.Min(s.Depth, frames.Length) - 1; i >= 0; i--)
        {
            if (ReferenceEquals(frames[i].Registration, r))
            {
                n++;
            }
        }

        return n;
    }

    private Slot NewSlot()
    {
        // A thread that served another kernel before (tests boot many) gets a slot of this monitor's own.
        var s = new Slot(this);
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
            Scan(Environment.TickCount64);
        }
    }

    /// <summary>One pass over every frame of every slot at time <paramref name="now"/>.</summary>
    internal void Scan(long now)
    {
        foreach (Slot s in Volatile.Read(ref _slots))
        {
            Frame[] frames = s.Frames;
            int depth = Math.Min(s.Depth, frames.Length);

            // The time nested frames took is not the outer frame's own: walk from the innermost out, carrying the start of
            // the frame just inside.
            long innerStart = -1;
            for (int i = depth - 1; i >= 0; i--)
            {
                Frame f = frames[i];
                long generation = Volatile.Read(ref f.State);
                long start = Volatile.Read(ref f.Start);
                if (generation == 0)
                {
                    innerStart = -1;
                    continue;
                }

                long own = now - start - Volatile.Read(ref f.Nested) - (innerStart >= 0 ? now - innerStart : 0);
                innerStart = start;
                if (generation < 0 || own <= _deadlineMs)
                {
                    // Declared already (it still runs), or within its time.
                    continue;
                }

                // Read what the frame decides before claiming it: once claimed, the callback may return and the frame be
                // entered again at any moment.
                Registration? r = Volatile.Read(ref f.Registration);
                OperationTag tag = f.Tag;
                if (r is not null && Interlocked.CompareExchange(ref f.State, -generation, generation) == generation)
                {
                    _onOverrun(r, tag, own);
                }
            }
        }
    }

    public void Dispose()
    {
        _stop.Set();
        _thread.Join();
        _stop.Dispose();
    }

    /// <summary>The per-thread stack of callbacks in progress.</summary>
    internal sealed class Slot(CallbackMonitor monitor)
    {
        private Frame[] _frames = [new Frame(), new Frame(), new Frame(), new Frame()];
        private int _depth;

        /// <summary>The monitor that scans this slot.</summary>
        public CallbackMonitor Monitor { get; } = monitor;

        /// <summary>The frames; those below <see cref="Depth"/> are in use.</summary>
        public Frame[] Frames => Volatile.Read(ref _frames);

        /// <summary>How many callbacks are in progress on this thread (nested).</summary>
        public int Depth => Volatile.Read(ref _depth);

        /// <summary>The innermost callback in progress, or null.</summary>
        public Frame? Top
        {
            get
            {
                int d = _depth;
                return d == 0 ? null : _frames[d - 1];
            }
        }

        /// <summary>
        /// Marks the start of a call into <paramref name="r"/> deciding <paramref name="tag"/>, counted in the
        /// registration's run-down protection; null when the registration is being removed (its unregistration has
        /// begun): then the callback must not be called, and the caller goes on as if it were not registered.
        /// <paramref name="pendable"/> is what a pend in this callback would hold (null when the operation cannot be held).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public Frame? TryEnter(Registration r, in OperationTag tag, PendContext? pendable = null)
        {
            if (!r.TryAcquireRundown())
            {
                return null;
            }

            int d = _depth;
            Frame[] frames = _frames;
            if (d == frames.Length)
            {
                frames = Grow();
            }

            Frame f = frames[d];
            long generation = ++f.Generation;
            f.Start = Environment.TickCount64;
            f.Nested = 0;
            f.Tag = tag;
            f.Pendable = d == 0 ? pendable : null;
            f.Held = null;
            f.Registration = r;
            Volatile.Write(ref f.State, generation);
            Volatile.Write(ref _depth, d + 1);
            return f;
        }

        /// <summary>Clears the frame and ends the call's run-down protection; returns false when the call overran (its
        /// verdict must be replaced).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public bool Exit(Frame f)
        {
            Registration r = f.Registration!;
            int d = _depth - 1;
            Volatile.Write(ref _depth, d);
            bool inTime = Interlocked.CompareExchange(ref f.State, 0, f.Generation) == f.Generation;
            if (!inTime)
            {
                Volatile.Write(ref f.State, 0);
            }

            f.Pendable = null;
            if (d > 0)
            {
                Frame outer = _frames[d - 1];
                outer.Nested += Environment.TickCount64 - f.Start;
            }

            r.ReleaseRundown();
            return inTime;
        }

        private Frame[] Grow()
        {
            var next = new Frame[_frames.Length * 2];
            _frames.CopyTo(next, 0);
            for (int i = _frames.Length; i < next.Length; i++)
            {
                next[i] = new Frame();
            }

            Volatile.Write(ref _frames, next);
            return next;
        }
    }

    /// <summary>One callback in progress on a thread.</summary>
    internal sealed class Frame
    {
        /// <summary>The registration called; read by the monitor.</summary>
        public Registration? Registration;

        /// <summary>When the call began (<see cref="Environment.TickCount64"/>).</summary>
        public long Start;

        /// <summary>Milliseconds spent in callbacks nested in this one that have returned.</summary>
        public long Nested;

        /// <summary>The generation of the call in progress; 0 when none; its negation once the monitor declared it overrun.</summary>
        public long State;

        /// <summary>The operation the callback decides, to name it in a fault.</summary>
        public OperationTag Tag;

        /// <summary>What a pend inside this call would hold; null when the operation cannot be held.</summary>
        public PendContext? Pendable;

        /// <summary>The operation a pend inside this call held (set by the pend, taken by the dispatcher after the call).</summary>
        public HeldOperation? Held;

        /// <summary>Counts the calls made in this frame (its owner thread alone writes it).</summary>
        public long Generation;
    }
}

/// <summary>
/// The operation a callback decides, kept in its frame without allocating, so that a fault can name it: a short name of
/// the callback's kind (<c>pre-create</c>, <c>process-create</c>, <c>classify connect</c>...), the requester, and a target
/// (a path, or an address with its port).
/// </summary>
internal readonly struct OperationTag(string name, int processId, object? target = null, int port = 0)
{
    public string Name { get; } = name;

    public int ProcessId { get; } = processId;

    public object? Target { get; } = target;

    public int Port { get; } = port;

    /// <summary>The operation in words, for example <c>pre-create /home/u/a.txt by process 4242</c>.</summary>
    public override string ToString()
    {
        string target = Target switch
        {
            null when Port != 0 => " " + Port,
            null => "",
            IPAddress a => " " + (a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "[" + a + "]" : a.ToString()) + ":" + Port,
            _ => " " + Target,
        };
        return Name + target + (ProcessId > 0 ? " by process " + ProcessId : "");
    }
}
