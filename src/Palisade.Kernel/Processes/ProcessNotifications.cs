using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Events;

namespace Palisade.Kernel.Processes;

/// <summary>
/// The process, thread and image-load callback tables and their dispatch (PspCreateProcessNotifyRoutine and
/// friends). Callbacks of one kind run in registration order; a throwing or late callback is contained.
/// </summary>
internal sealed class ProcessNotifications
{
    public const int Limit = 64;
    private readonly CallbackMonitor _monitor;
    private readonly FaultPolicy _faults;
    private readonly HoldTable _holds;

    /// <summary>This thread's description of a process creation that can be held (reused).</summary>
    [ThreadStatic]
    private static PendContext? t_pend;

    public ProcessNotifications(CallbackMonitor monitor, FaultPolicy faults, HoldTable holds)
    {
        _monitor = monitor;
        _faults = faults;
        _holds = holds;
    }

    public CallbackTable<CallbackRegistration<ProcessCreateCallback>> Create { get; } = new("process create", Limit, byAltitude: false);

    public CallbackTable<CallbackRegistration<ProcessExitCallback>> Exit { get; } = new("process exit", Limit, byAltitude: false);

    public CallbackTable<CallbackRegistration<ThreadCallback>> ThreadCreate { get; } = new("thread create", Limit, byAltitude: false);

    public CallbackTable<CallbackRegistration<ThreadCallback>> ThreadExit { get; } = new("thread exit", Limit, byAltitude: false);

    public CallbackTable<CallbackRegistration<ImageLoadCallback>> ImageLoad { get; } = new("image load", Limit, byAltitude: false);

    public CallbackTable<CallbackRegistration<ProcessForkCallback>> Fork { get; } = new("process fork", Limit, byAltitude: false);

    public CallbackTable<CallbackRegistration<ExecResultCallback>> ExecResult { get; } = new("exec result", Limit, byAltitude: false);

    /// <summary>
    /// Runs every process-create callback; the first error denies, later callbacks still see the verdict. A creation a
    /// guest thread (<paramref name="guestThread"/>, 0 for none) waits for can be held by a callback.
    /// </summary>
    public Status NotifyCreate(in ProcessCreateInfo info, OperationRecord? record, int guestThread = 0)
    {
        Status verdict = Status.Success;
        CallbackMonitor.Slot slot = _monitor.Current;
        PendContext? pend = null;
        if (guestThread != 0 && slot.Depth == 0)
        {
            pend = t_pend ??= new PendContext { Kind = PendedOperationKind.ProcessCreate };
            pend.ProcessId = info.ProcessId;
            pend.ThreadId = guestThread;
            pend.Token = info.ImagePath;
        }

        long holdBase = pend is null ? 0 : Environment.TickCount64;
        foreach (CallbackRegistration<ProcessCreateCallback> r in Create.Snapshot)
        {
            if (r.Disabled)
            {
                continue;
            }

            long hold = pend is null ? 0 : r.Policy.HoldMilliseconds;
            long deadline = hold == 0 ? 0 : holdBase + hold;
            if (hold != 0)
            {
                pend!.Deadline = deadline;
            }

            ProcessCreateInfo current = info with { CreationStatus = verdict, HoldDeadline = deadline };
            Status s;
            Exception? thrown = null;
            if (slot.TryEnter(r, new OperationTag("process-create", info.ProcessId, info.ImagePath), hold == 0 ? null : pend) is not { } frame)
            {
                continue; // Being unregistered: as if it were not registered.
            }

            try
            {
                s = r.Callback(in current);
            }
            catch (Exception ex)
            {
                s = Status.Success;
                thrown = ex;
            }

            bool inTime = slot.Exit(frame);
            if (thrown is not null || !inTime || frame.Held is not null || s == Status.Pending)
            {
                s = Resolve(r, in info, s, thrown, inTime, frame, record);
            }
            else
            {
                r.RecordSuccess();
            }

            if (verdict.IsSuccess && s.IsError)
            {
                verdict = s;
            }

            record?.Verdict(r.OwnerName, s.IsError ? "deny " + s.Name : "allow");
        }

        return verdict;
    }

    /// <summary>The verdict of a process-create callback that held the creation, faulted, or returned Pending without a pend.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private Status Resolve(CallbackRegistration<ProcessCreateCallback> r, in ProcessCreateInfo info, Status s, Exception? thrown, bool inTime,
        CallbackMonitor.Frame frame, OperationRecord? record)
    {
        var tag = new OperationTag("process-create", info.ProcessId, info.ImagePath);
        HeldOperation? held = frame.Held;
        switch (_holds.End(r, frame, thrown, inTime, s == Status.Pending, in tag, _faults, record))
        {
            case CallbackEnd.Faulted:
            case CallbackEnd.TimedOut:
                return TimeoutVerdict(r);
            case CallbackEnd.Completed:
                return held!.VerdictStatus;
            case CallbackEnd.Cancelled:
                return Status.Cancelled;
        }

        if (s == Status.Pending)
        {
            _faults.InvalidVerdict(r, in tag, "returned Pending without a pend");
            return TimeoutVerdict(r);
        }

        r.RecordSuccess();
        return s;
    }

    private static Status TimeoutVerdict(Registration r) => r.Policy.DenyOnTimeout ? Status.AccessDenied : Status.Success;

    public void NotifyExit(in ProcessExitInfo info) =>
        Notify(Exit, new ExitCall(info), "process-exit");

    public void NotifyFork(in ProcessForkInfo info) =>
        Notify(Fork, new ForkCall(info), "process-fork");

    public void NotifyExecResult(in ExecResultInfo info) =>
        Notify(ExecResult, new ExecResultCall(info), "exec-result");

    public void NotifyThread(bool create, in ThreadInfo info) =>
        Notify(create ? ThreadCreate : ThreadExit, new ThreadCall(info), create ? "thread-create" : "thread-exit");

    /// <summary>
    /// Runs every image-load callback; the first error denies the load, later callbacks still run. A callback that throws
    /// or overruns its deadline takes its registration's timeout verdict.
    /// </summary>
    public Status NotifyImageLoad(in ImageLoadInfo info, OperationRecord? record)
    {
        Status verdict = Status.Success;
        CallbackMonitor.Slot slot = _monitor.Current;
        foreach (CallbackRegistration<ImageLoadCallback> r in ImageLoad.Snapshot)
        {
            if (r.Disabled)
            {
                continue;
            }

            var tag = new OperationTag("image-load", info.ProcessId, info.ImagePath);
            if (slot.TryEnter(r, tag) is not { } frame)
            {
                continue; // Being unregistered: as if it were not registered.
            }

            Status s;
            bool threw = false;
            try
            {
                s = r.Callback(in info);
            }
            catch (Exception ex)
            {
                threw = true;
                s = Status.Success;
                _faults.Threw(r, in tag, ex);
            }

            if (!slot.Exit(frame) || threw)
            {
                s = TimeoutVerdict(r);
            }
            else if (s == Status.Pending)
            {
                _faults.InvalidVerdict(r, in tag, "returned Pending (an image load cannot be held)");
                s = TimeoutVerdict(r);
            }
            else
            {
                r.RecordSuccess();
            }

            if (verdict.IsSuccess && s.IsError)
            {
                verdict = s;
            }

            record?.Verdict(r.OwnerName, s.IsError ? "deny " + s.Name : "allow");
        }

        return verdict;
    }

    /// <summary>Calls every live registration of a notification table, containing each callback.</summary>
    private void Notify<TDelegate, TCall>(CallbackTable<CallbackRegistration<TDelegate>> table, TCall call, string what)
        where TDelegate : Delegate
        where TCall : struct, ICall<TDelegate>
    {
        CallbackMonitor.Slot slot = _monitor.Current;
        foreach (CallbackRegistration<TDelegate> r in table.Snapshot)
        {
            if (r.Disabled)
            {
                continue;
            }

            if (slot.TryEnter(r, new OperationTag(what, call.ProcessId)) is not { } frame)
            {
                continue;
            }

            bool threw = false;
            try
            {
                call.Invoke(r.Callback);
            }
            catch (Exception ex)
            {
                threw = true;
                _faults.Threw(r, new OperationTag(what, call.ProcessId), ex);
            }

            if (slot.Exit(frame) && !threw)
            {
                r.RecordSuccess();
            }
        }
    }

    /// <summary>How one notification is passed to its delegate type (a struct, so the loop allocates nothing).</summary>
    private interface ICall<in TDelegate>
    {
        int ProcessId { get; }

        void Invoke(TDelegate callback);
    }

    private readonly struct ExitCall(ProcessExitInfo info) : ICall<ProcessExitCallback>
    {
        public int ProcessId => info.ProcessId;

        public void Invoke(ProcessExitCallback callback) => callback(in info);
    }

    private readonly struct ForkCall(ProcessForkInfo info) : ICall<ProcessForkCallback>
    {
        public int ProcessId => info.ProcessId;

        public void Invoke(ProcessForkCallback callback) => callback(in info);
    }

    private readonly struct ExecResultCall(ExecResultInfo info) : ICall<ExecResultCallback>
    {
        public int ProcessId => info.ProcessId;

        public void Invoke(ExecResultCallback callback) => callback(in info);
    }

    private readonly struct ThreadCall(ThreadInfo info) : ICall<ThreadCallback>
    {
        public int ProcessId => info.ProcessId;

        public void Invoke(ThreadCallback callback) => callback(in info);
    }
}
