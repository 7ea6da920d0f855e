// Registry callbacks of a driver in its host: the registration is a request to the kernel; the callback runs here when
// the kernel sends a notification, on its own copy, and only its status and, for a bypass, the bypass result go back.
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

/// <summary>IRegistryCallbacks in a driver host.</summary>
internal sealed class RemoteRegistry(RemoteDriverContext context) : IRegistryCallbacks
{
    public Status Register(RegistryCallback callback, string altitude, out CallbackCookie cookie)
    {
        cookie = default;
        if (callback is null)
        {
            return Status.InvalidParameter;
        }

        int id = context.Keep(callback);
        Conversation c = context.Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.RegisterRegistryCallback);
            w.I32(id);
            w.String(altitude);
            return context.ReadCookie(c, ref w, out cookie);
        }
        finally
        {
            context.Channel.Leave(c);
        }
    }

    public Status Unregister(CallbackCookie cookie) => context.Cookie(IsolationOp.UnregisterRegistryCallback, cookie);

    /// <summary>Runs a registry callback the kernel sent and replies with its status (and a bypass's result).</summary>
    internal void Run(Conversation c, int registration, ref RegistryNotification notification)
    {
        RecordWriter w;
        try
        {
            var callback = context.Find(registration) as RegistryCallback
                ?? throw new InvalidOperationException("no registry callback " + registration + " in this host");
            Status s = callback(ref notification);
            if (s == Status.CallbackBypass && notification.BypassData.Length > IsolationRecord.MaximumData / 2)
            {
                throw new InvalidOperationException("a bypass result of " + notification.BypassData.Length + " bytes does not fit in a record to the kernel");
            }

            w = c.BeginReply(Status.Success);
            w.U8((byte)CallbackOutcome.Returned);
            w.Status(s);
            if (s == Status.CallbackBypass)
            {
                w.I32((int)notification.BypassType);
                notification.BypassData.Span.CopyTo(w.Data(notification.BypassData.Length));
                w.Bool(notification.BypassNames is not null);
                if (notification.BypassNames is not null)
                {
                    IsolationCodec.WriteList(ref w, notification.BypassNames);
                }
            }
        }
#pragma warning disable CA1031 // The driver's exception goes to the kernel, which contains it as it does an in-kernel one.
        catch (Exception e)
#pragma warning restore CA1031
        {
            w = c.BeginReply(Status.Success);
            IsolationCodec.WriteThrew(ref w, e);
        }

        if (w.Overflowed)
        {
            // The names of a bypassed enumeration did not fit: the kernel contains it as a callback that threw.
            w = c.BeginReply(Status.Success);
            IsolationCodec.WriteThrew(ref w, new InvalidOperationException("a bypass result does not fit in a record to the kernel"));
        }

        c.Reply(ref w);
    }
}
