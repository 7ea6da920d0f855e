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
    private readonly EventStream _events;

    public ProcessNotifications(CallbackMonitor monitor, EventStream events)
    {
        _monitor = monitor;
        _events = events;
    }

    public CallbackTable<CallbackRegistration<ProcessCreateCallback>> Create { get; } = new("process create", Limit, byAltitude: false);

    public CallbackTable<CallbackRegistration<ProcessExitCallback>> Exit { get; } = new("process exit", Limit, byAltitude: false);

    public CallbackTable<CallbackRegistration<ThreadCallback>> ThreadCreate { get; } = new("thread create", Limit, byAltitude: false);

    public CallbackTable<CallbackRegistration<ThreadCallback>> ThreadExit { get; } = new("thread exit", Limit, byAltitude: false);

    public CallbackTable<CallbackRegistration<ImageLoadCallback>> ImageLoad { get; } = new("image load", Limit, byAltitude: false);

    /// <summary>Runs every process-create callback; the first error denies, later callbacks still see the verdict.</summary>
    public Status NotifyCreate(in ProcessCreateInfo info, OperationRecord? record)
    {
        Status verdict = Status.Success;
        CallbackMonitor.Slot slot = _monitor.Current;
        foreach (CallbackRegistration<ProcessCreateCallback> r in Create.Snapshot)
        {
            if (r.Disabled)
            {
                continue;
            }

            ProcessCreateInfo current = info with { CreationStatus = verdict };
            Status s;
            slot.Enter(r);
            try
            {
                s = r.Callback(in current);
            }
            catch (Exception ex)
            {
                s = Status.Success;
                _events.WriteDriverFault(r.OwnerName, "process-create callback threw " + ex.GetType().Name + ": " + ex.Message);
            }

            if (!slot.Exit())
            {
                s = Status.Success;
            }

            if (verdict.IsSuccess && s.IsError)
            {
                verdict = s;
            }

            record?.Verdict(r.OwnerName, s.IsError ? "deny " + s.Name : "allow");
        }

        return verdict;
    }

    public void NotifyExit(in ProcessExitInfo info) =>
        Notify(Exit, new ExitCall(info), "process-exit");

    public void NotifyThread(bool create, in ThreadInfo info) =>
        Notify(create ? ThreadCreate : ThreadExit, new ThreadCall(info), "thread");

    public void NotifyImageLoad(in ImageLoadInfo info) =>
        Notify(ImageLoad, new ImageLoadCall(info), "image-load");

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

            slot.Enter(r);
            try
            {
                call.Invoke(r.Callback);
            }
            catch (Exception ex)
            {
                _events.WriteDriverFault(r.OwnerName, what + " callback threw " + ex.GetType().Name + ": " + ex.Message);
            }

            slot.Exit();
        }
    }

    /// <summary>How one notification is passed to its delegate type (a struct, so the loop allocates nothing).</summary>
    private interface ICall<in TDelegate>
    {
        void Invoke(TDelegate callback);
    }

    private readonly struct ExitCall(ProcessExitInfo info) : ICall<ProcessExitCallback>
    {
        public void Invoke(ProcessExitCallback callback) => callback(in info);
    }

    private readonly struct ThreadCall(ThreadInfo info) : ICall<ThreadCallback>
    {
        public void Invoke(ThreadCallback callback) => callback(in info);
    }

    private readonly struct ImageLoadCall(ImageLoadInfo info) : ICall<ImageLoadCallback>
    {
        public void Invoke(ImageLoadCallback callback) => callback(in info);
    }
}
