// IProcessCallbacks in a driver host. Process-create and image-load callbacks are calls (their verdict is waited for);
// exit, thread, fork and exec-result callbacks arrive as notifications and run in order on the host's notification
// thread (DriverHost.Notifications.cs); TerminateProcess, SuspendProcess and ResumeProcess are requests. Held creations
// are not yet proxied.
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

/// <summary>IProcessCallbacks in a driver host.</summary>
internal sealed class RemoteProcesses(RemoteDriverContext context) : IProcessCallbacks
{
    public Status RegisterProcessCreate(ProcessCreateCallback callback, out CallbackCookie cookie) =>
        context.Register(IsolationOp.RegisterProcessCreate, callback, out cookie);

    public Status RegisterImageLoad(ImageLoadCallback callback, out CallbackCookie cookie) =>
        context.Register(IsolationOp.RegisterImageLoad, callback, out cookie);

    public Status Unregister(CallbackCookie cookie) => context.Cookie(IsolationOp.UnregisterProcessCallback, cookie);

    public Status RegisterProcessExit(ProcessExitCallback callback, out CallbackCookie cookie) =>
        context.Register(IsolationOp.RegisterProcessExit, callback, out cookie);

    public Status RegisterThreadCreate(ThreadCallback callback, out CallbackCookie cookie) =>
        context.Register(IsolationOp.RegisterThreadCreate, callback, out cookie);

    public Status RegisterThreadExit(ThreadCallback callback, out CallbackCookie cookie) =>
        context.Register(IsolationOp.RegisterThreadExit, callback, out cookie);

    public Status RegisterProcessFork(ProcessForkCallback callback, out CallbackCookie cookie) =>
        context.Register(IsolationOp.RegisterProcessFork, callback, out cookie);

    public Status RegisterExecResult(ExecResultCallback callback, out CallbackCookie cookie) =>
        context.Register(IsolationOp.RegisterExecResult, callback, out cookie);

    /// <summary>Holds the creation of the process-create callback this thread runs (the kernel pends it on its thread).</summary>
    public Status PendCreate(in ProcessCreateInfo info, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended) =>
        context.Holds.Pend(PendedOperationKind.ProcessCreate, cancelCallback, out pended, out _, out _);

    public Status CompletePendedCreate(IPendedOperation operation, Status verdict) =>
        context.Holds.Complete(operation, PendedOperationKind.ProcessCreate, verdict.Code);

    public Status TerminateProcess(long processStartKey) => Control(IsolationOp.TerminateProcess, processStartKey);

    public Status SuspendProcess(long processStartKey) => Control(IsolationOp.SuspendProcess, processStartKey);

    public Status ResumeProcess(long processStartKey) => Control(IsolationOp.ResumeProcess, processStartKey);

    /// <summary>A request naming a process by its start key; the kernel's status.</summary>
    private Status Control(IsolationOp op, long processStartKey)
    {
        Conversation c = context.Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(op);
            w.I64(processStartKey);
            return context.Request(c, ref w);
        }
        finally
        {
            context.Channel.Leave(c);
        }
    }

    /// <summary>ISecurityCenter.ListProducts: the kernel's list, by value.</summary>
    internal static Status ListProducts(RemoteDriverContext context, out IReadOnlyList<SecurityProduct> products)
    {
        products = [];
        Conversation c = context.Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.ListProducts);
            if (!c.Call(ref w, out RecordReader r))
            {
                return Status.InvalidDeviceState;
            }

            Status s = r.Status();
            if (s.IsError)
            {
                return context.End(ref r, s);
            }

            uint count = r.U32();
            var list = new List<SecurityProduct>((int)Math.Min(count, 64));
            for (uint i = 0; i < count && !r.Malformed; i++)
            {
                SecurityProductKind kind = r.Enum<SecurityProductKind>();
                string name = r.Text();
                string driver = r.Text();
                ProductState state = r.Enum<ProductState>();
                list.Add(new SecurityProduct(kind, name, driver, state));
            }

            s = context.End(ref r, s);
            if (s.IsSuccess)
            {
                products = list;
            }

            return s;
        }
        finally
        {
            context.Channel.Leave(c);
        }
    }
}
