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

    public void NotifyExit(in ProcessExitInfo info)
    {
        CallbackMonitor.Slot slot = _monitor.Current;
        foreach (CallbackRegistration<ProcessExitCallback> r in Exit.Snapshot)
        {
            if (r.Disabled)
            {
                continue;
            }

            slot.Enter(r);
            try
            {
                r.Callback(in info);
            }
            catch (Exception ex)
            {
                _events.WriteDriverFault(r.OwnerName, "process-exit callback threw " + ex.GetType().Name + ": " + ex.Message);
            }

            slot.Exit();
        }
    }

    public void NotifyThread(bool create, in ThreadInfo info)
    {
        CallbackMonitor.Slot slot = _monitor.Current;
        foreach (CallbackRegistration<ThreadCallback> r in (create ? ThreadCreate : ThreadExit).Snapshot)
        {
            if (r.Disabled)
            {
                continue;
            }

            slot.Enter(r);
            try
            {
                r.Callback(in info);
            }
            catch (Exception ex)
            {
                _events.WriteDriverFault(r.OwnerName, "thread callback threw " + ex.GetType().Name + ": " + ex.Message);
            }

            slot.Exit();
        }
    }

    public void NotifyImageLoad(in ImageLoadInfo info)
    {
        CallbackMonitor.Slot slot = _monitor.Current;
        foreach (CallbackRegistration<ImageLoadCallback> r in ImageLoad.Snapshot)
        {
            if (r.Disabled)
            {
                continue;
            }

            slot.Enter(r);
            try
            {
                r.Callback(in info);
            }
            catch (Exception ex)
            {
                _events.WriteDriverFault(r.OwnerName, "image-load callback threw " + ex.GetType().Name + ": " + ex.Message);
            }

            slot.Exit();
        }
    }
}
