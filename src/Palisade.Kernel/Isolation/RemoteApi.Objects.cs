// Object callbacks of a driver in its host (IObjectCallbacks): registrations are the kernel's (IsolatedDriver.Objects.cs);
// the driver's pre and post callbacks are kept here under numbers; a pre callback may hold its operation (RemoteHolds).
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

/// <summary>IObjectCallbacks in a driver host.</summary>
internal sealed class RemoteObjects(RemoteDriverContext context) : IObjectCallbacks
{
    public Status Register(ObjectCallbackRegistration registration, out CallbackCookie cookie)
    {
        cookie = default;
        if (registration?.Altitude is null)
        {
            return Status.InvalidParameter;
        }

        int pre = registration.PreOperation is { } p ? context.Keep(p) : 0;
        int post = registration.PostOperation is { } q ? context.Keep(q) : 0;
        Conversation c = context.Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.RegisterObjectCallback);
            w.String(registration.Altitude);
            w.I32((int)registration.ObjectTypes);
            w.I32((int)registration.Operations);
            w.I32(pre);
            w.I32(post);
            return context.ReadCookie(c, ref w, out cookie);
        }
        finally
        {
            context.Channel.Leave(c);
        }
    }

    public Status Unregister(CallbackCookie cookie) => context.Cookie(IsolationOp.UnregisterObjectCallback, cookie);

    /// <summary>Holds the operation of the object pre callback this thread runs (the kernel pends it on its thread).</summary>
    public Status PendOperation(ref ObjectPreOperationInfo info, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended) =>
        context.Holds.Pend(PendedOperationKind.ObjectPreOperation, cancelCallback, out pended, out _, out _);

    public Status CompletePendedOperation(IPendedOperation operation, ProcessAccessRights desiredAccess) =>
        context.Holds.Complete(operation, PendedOperationKind.ObjectPreOperation, (long)desiredAccess);

    /// <summary>Runs a pre callback the kernel sent and replies with the desired access it left.</summary>
    internal void RunPre(Conversation c, int registration, ref ObjectPreOperationInfo info)
    {
        RecordWriter w;
        try
        {
            var pre = context.Find(registration) as ObjectPreCallback
                ?? throw new InvalidOperationException("no object pre callback " + registration + " in this host");
            RemoteHolds.Scope scope = context.Holds.Enter(PendedOperationKind.ObjectPreOperation);
            try
            {
                pre(ref info);
            }
            finally
            {
                // An object pre callback that pended returns as usual: the hold stands.
                context.Holds.Exit(scope, returnedPending: true);
            }

            w = c.BeginReply(Status.Success);
            w.U8((byte)CallbackOutcome.Returned);
            w.U32((uint)info.DesiredAccess);
        }
#pragma warning disable CA1031 // The driver's exception goes to the kernel, which contains it as it does an in-kernel one.
        catch (Exception e)
#pragma warning restore CA1031
        {
            w = c.BeginReply(Status.Success);
            IsolationCodec.WriteThrew(ref w, e);
        }

        c.Reply(ref w);
    }
}
