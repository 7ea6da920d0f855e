// Object callbacks of an isolated driver (IObjectCallbacks: who may signal, trace, or open a process or thread). The
// registration is the kernel's, made through the driver's context; a pre callback crosses by value and only the desired
// access it leaves is read back (the kernel then keeps only rights that were asked for, as for an in-kernel callback),
// and it may hold the operation (IsolatedDriver.Holds.cs); a post callback carries no verdict and crosses as a
// notification, never waited for.
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal sealed partial class IsolatedDriver
{
    private void RegisterObjectCallback(Conversation c, ref RecordReader a, IObjectCallbacks objects)
    {
        string altitude = a.Text();
        var types = (ObjectTypes)a.I32();
        var operations = (HandleOperations)a.I32();
        int pre = a.I32();
        int post = a.I32();
        if (a.Finish().IsError)
        {
            return;
        }

        var proxy = new ObjectProxy(this, pre, post);
        Status s = objects.Register(new ObjectCallbackRegistration
        {
            Altitude = altitude,
            ObjectTypes = types,
            Operations = operations,
            PreOperation = pre != 0 ? proxy.Pre : null,
            PostOperation = post != 0 ? proxy.Post : null,
        }, out CallbackCookie cookie);
        ReplyCookie(c, s, cookie);
    }

    private void ObjectPre(int registration, ref ObjectPreOperationInfo info)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        HoldFrames frames = HoldFrames.Current;
        Frame frame = frames.Push(c, PendedOperationKind.ObjectPreOperation);
        frame.Object = info;
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.ObjectPre);
            w.I32(registration);
            ObjectCodec.Write(ref w, in info);
            if (!c.Call(ref w, out RecordReader r))
            {
                throw HostFailed();
            }

            ReadOutcome(ref r);
            var desired = (ProcessAccessRights)r.U32();
            EndReply(ref r);
            info.DesiredAccess = desired;

            // An object pre callback that pended returns as usual: the hold stands (what it left is ignored).
            AfterDecision(frame, returnedPending: true);
        }
        finally
        {
            frames.Pop(frame);
            channel.Leave(c);
        }
    }

    private void ObjectPost(int registration, in ObjectPostOperationInfo info)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = channel.BeginNotify(c.Sending, IsolationOp.ObjectPost);
            w.I32(registration);
            ObjectCodec.Write(ref w, in info);
            Send(channel, ref w);
        }
        finally
        {
            channel.Leave(c);
        }
    }

    /// <summary>The kernel's callbacks of one object-callback registration of the host's.</summary>
    private sealed class ObjectProxy(IsolatedDriver driver, int pre, int post)
    {
        public void Pre(ref ObjectPreOperationInfo info) => driver.ObjectPre(pre, ref info);

        public void Post(in ObjectPostOperationInfo info) => driver.ObjectPost(post, in info);
    }
}

/// <summary>The object callbacks' operations on the wire, field by field in declaration order.</summary>
internal static class ObjectCodec
{
    public static void Write(ref RecordWriter w, in ObjectPreOperationInfo info)
    {
        w.I32((int)info.Operation);
        w.I32((int)info.ObjectType);
        w.I32(info.RequesterProcessId);
        w.I32(info.TargetProcessId);
        w.I32(info.TargetThreadId);
        w.Bool(info.KernelHandle);
        w.I32((int)info.AccessKind);
        w.I32(info.Signal);
        w.U32((uint)info.OriginalDesiredAccess);
        w.U32((uint)info.DesiredAccess);
        w.I64(info.HoldDeadline);
    }

    public static ObjectPreOperationInfo ReadPre(ref RecordReader r) => new()
    {
        Operation = (HandleOperations)r.I32(),
        ObjectType = (ObjectTypes)r.I32(),
        RequesterProcessId = r.I32(),
        TargetProcessId = r.I32(),
        TargetThreadId = r.I32(),
        KernelHandle = r.Bool(),
        AccessKind = r.Enum<ObjectAccessKind>(),
        Signal = r.I32(),
        OriginalDesiredAccess = (ProcessAccessRights)r.U32(),
        DesiredAccess = (ProcessAccessRights)r.U32(),
        HoldDeadline = r.I64(),
    };

    public static void Write(ref RecordWriter w, in ObjectPostOperationInfo info)
    {
        w.I32((int)info.Operation);
        w.I32((int)info.ObjectType);
        w.I32(info.RequesterProcessId);
        w.I32(info.TargetProcessId);
        w.I32(info.TargetThreadId);
        w.Bool(info.KernelHandle);
        w.I32((int)info.AccessKind);
        w.I32(info.Signal);
        w.U32((uint)info.GrantedAccess);
        w.Status(info.ReturnStatus);
    }

    public static ObjectPostOperationInfo ReadPost(ref RecordReader r) => new()
    {
        Operation = (HandleOperations)r.I32(),
        ObjectType = (ObjectTypes)r.I32(),
        RequesterProcessId = r.I32(),
        TargetProcessId = r.I32(),
        TargetThreadId = r.I32(),
        KernelHandle = r.Bool(),
        AccessKind = r.Enum<ObjectAccessKind>(),
        Signal = r.I32(),
        GrantedAccess = (ProcessAccessRights)r.U32(),
        ReturnStatus = r.Status(),
    };
}
