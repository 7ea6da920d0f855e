using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Callbacks;

/// <summary>
/// The operations drivers hold (pended operations), across the kernel: how a pend is made and checked, how the thread
/// of a held operation waits for its end, and how the kernel ends holds that nobody will complete (the guest thread
/// gone, the registration removed, the deadline passed). At most <see cref="Limit"/> operations are held at once.
/// </summary>
/// <remarks>
/// A held operation belongs to one guest thread, which waits for nothing else meanwhile: the table finds holds by that
/// thread, so that the host can say a guest thread no longer waits (<see cref="CancelThread"/>). Nothing here is on the
/// path of an operation that is not held.
/// </remarks>
internal sealed class HoldTable
{
    /// <summary>The most operations held at once, across all drivers.</summary>
    public const int Limit = 128;

    private readonly ConcurrentDictionary<int, HeldOperation> _byThread = new();
    private int _count;
    private long _nextId;

    /// <summary>The host's name for the guest call being decided on this thread (set by the hosting surface per request).</summary>
    [ThreadStatic]
    private static ulong t_call;

    /// <summary>Names the guest call the calling thread decides from now on (0: none named).</summary>
    public static void EnterCall(ulong callId) => t_call = callId;

    /// <summary>How many operations are held now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>
    /// Holds the operation of the callback in <paramref name="frame"/> for <paramref name="caller"/>: the checks every
    /// family's pend makes (the callback is the caller's, of the right kind, the operation can be held, room is left).
    /// <paramref name="token"/> must be what the dispatcher recorded of the operation the callback received.
    /// </summary>
    public Status Pend(CallbackMonitor.Frame? frame, DriverObject? caller, PendedOperationKind kind, object? token,
        PendedOperationCancelCallback? cancelCallback, out HeldOperation? held)
    {
        held = null;
        Registration? r = frame is null || Volatile.Read(ref frame.State) == 0 ? null : frame.Registration;
        if (r is null || !ReferenceEquals(r.Owner, caller) || frame!.Held is not null)
        {
            return Status.InvalidDeviceState;
        }

        PendContext? context = frame.Pendable;
        if (context is null || r.Policy.HoldMilliseconds == 0)
        {
            return Status.NotSupported;
        }

        if (context.Kind != kind || !ReferenceEquals(context.Token, token))
        {
            return Status.InvalidDeviceState;
        }

        if (Interlocked.Increment(ref _count) > Limit)
        {
            Interlocked.Decrement(ref _count);
            return Status.InsufficientResources;
        }

        var h = new HeldOperation(Interlocked.Increment(ref _nextId), kind, r, context, cancelCallback) { CallId = t_call };
        if (!_byThread.TryAdd(context.ThreadId, h))
        {
            Interlocked.Decrement(ref _count);
            return Status.InvalidDeviceState;
        }

        frame.Held = h;
        held = h;
        return Status.Success;
    }

    /// <summary>
    /// Waits, on the thread of the operation, until the hold ends: completed, cancelled, or its deadline passed (then the
    /// hold ends <see cref="PendedOperationState.TimedOut"/> here and the driver is told). Returns how it ended.
    /// </summary>
    public PendedOperationState Wait(HeldOperation held)
    {
        try
        {
            while (!held.WaitEnded((int)Math.Clamp(held.Deadline - Environment.TickCount64, 0, int.MaxValue)))
            {
                if (Environment.TickCount64 >= held.Deadline && held.TryEnd(PendedOperationState.TimedOut))
                {
                    Notify(held);
                }
            }

            return held.State;
        }
        finally
        {
            Release(held);
        }
    }

    /// <summary>
    /// The common end of a pre callback that may have held its operation (<paramref name="frame"/> carries the hold it
    /// made, if any): a throw or an overrun withdraws the hold and reports a throw (<see cref="CallbackEnd.Faulted"/>:
    /// the caller applies the registration's timeout verdict); a callback that returned pending with a hold waits for
    /// the hold's end, recording it; any other return withdraws a hold it made (<see cref="CallbackEnd.Decided"/>: the
    /// caller checks the verdict returned).
    /// </summary>
    public CallbackEnd End(Registration registration, CallbackMonitor.Frame frame, Exception? thrown, bool inTime, bool pending,
        in OperationTag tag, FaultPolicy faults, Events.OperationRecord? record)
    {
        HeldOperation? held = frame.Held;
        frame.Held = null;
        if (thrown is not null || !inTime)
        {
            if (held is not null)
            {
                Withdraw(held);
            }

            if (thrown is not null)
            {
                faults.Threw(registration, in tag, thrown);
            }

            return CallbackEnd.Faulted;
        }

        if (held is null)
        {
            return CallbackEnd.Decided;
        }

        if (!pending)
        {
            Withdraw(held);
            return CallbackEnd.Decided;
        }

        record?.Verdict(registration.OwnerName, "pending " + held.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        switch (Wait(held))
        {
            case PendedOperationState.Completed:
                registration.RecordSuccess();
                return CallbackEnd.Completed;
            case PendedOperationState.Cancelled when !held.RegistrationRemoved:
                return CallbackEnd.Cancelled;
            default:
                record?.Verdict(registration.OwnerName, "timeout");
                return CallbackEnd.TimedOut;
        }
    }

    /// <summary>
    /// The callback that pended <paramref name="held"/> returned another verdict, or faulted: the hold is withdrawn and
    /// released (a completion gets <see cref="Status.InvalidDeviceState"/>).
    /// </summary>
    public void Withdraw(HeldOperation held)
    {
        held.TryEnd(PendedOperationState.Withdrawn);
        Release(held);
    }

    /// <summary>
    /// The guest thread <paramref name="threadId"/> no longer waits for its call <paramref name="callId"/> (0: whatever call):
    /// the operation held for that call, if any, is cancelled. True when one was.
    /// </summary>
    public bool CancelThread(int threadId, ulong callId)
    {
        if (!_byThread.TryGetValue(threadId, out HeldOperation? held) || (callId != 0 && held.CallId != callId)
            || !held.TryEnd(PendedOperationState.Cancelled))
        {
            return false;
        }

        Notify(held);
        return true;
    }

    /// <summary>Cancels every hold whose registration is no longer in <paramref name="live"/> (the registration was removed).</summary>
    public void CancelRemoved<T>(CallbackTable<T> table) where T : Registration
    {
        if (Count == 0)
        {
            return;
        }

        T[] live = table.Snapshot;
        foreach (HeldOperation held in _byThread.Values)
        {
            if (held.Owner is T r && Array.IndexOf(live, r) < 0 && held.TryEnd(PendedOperationState.Cancelled, registrationRemoved: true))
            {
                Notify(held);
            }
        }
    }

    private void Release(HeldOperation held)
    {
        if (((ICollection<KeyValuePair<int, HeldOperation>>)_byThread).Remove(new KeyValuePair<int, HeldOperation>(held.RequesterThreadId, held)))
        {
            Interlocked.Decrement(ref _count);
        }

        // No read of the held file can be in progress once this holds the lock: the file is closed after the last one.
        held.AfterEnd(static h => h.Create?.CloseHeldReader());
    }

    /// <summary>Tells the owning driver, on one of its worker threads, that the kernel ended its hold.</summary>
    private static void Notify(HeldOperation held)
    {
        if (held.CancelCallback is { } callback && held.Owner.Owner?.Context is { } context)
        {
            context.NotifyCancelled(callback, held);
        }
    }
}

/// <summary>How a pre callback that may have held its operation ended (<see cref="HoldTable.End"/>).</summary>
internal enum CallbackEnd
{
    /// <summary>It returned a verdict at once (a hold it made, if any, is withdrawn): the caller checks that verdict.</summary>
    Decided,

    /// <summary>It threw or overran its deadline: the registration's timeout verdict applies.</summary>
    Faulted,

    /// <summary>It held the operation and a completion gave the verdict (<see cref="HeldOperation"/> holds it).</summary>
    Completed,

    /// <summary>The guest went away while the operation was held: the operation is refused.</summary>
    Cancelled,

    /// <summary>The hold's deadline passed, or its registration went away: the timeout verdict applies.</summary>
    TimedOut,
}
