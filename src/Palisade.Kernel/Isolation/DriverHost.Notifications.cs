// The host's side of the process notifications: each runs the driver's callback on the host's notification thread, in
// the order the kernel sent them (IsolationChannel.Notify.cs). Nothing is replied; a callback that throws is reported as
// a fault event, as a work item's is.
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal sealed partial class DriverHost : INotificationHandler
{
    /// <summary>How many notifications may wait for the host's notification thread; more are dropped, counted and reported.</summary>
    public const int NotificationQueueLimit = 1024;

    public bool Notify(IsolationOp op, ref RecordReader a)
    {
        int registration = a.I32();
        switch (op)
        {
            case IsolationOp.ProcessExit:
            {
                ProcessExitInfo info = ProcessNotificationCodec.ReadProcessExit(ref a);
                return a.Finish().IsSuccess && Run(registration, op, (ProcessExitCallback callback) => callback(in info));
            }

            case IsolationOp.ThreadCreate:
            case IsolationOp.ThreadExit:
            {
                ThreadInfo info = ProcessNotificationCodec.ReadThread(ref a);
                return a.Finish().IsSuccess && Run(registration, op, (ThreadCallback callback) => callback(in info));
            }

            case IsolationOp.ProcessFork:
            {
                ProcessForkInfo info = ProcessNotificationCodec.ReadProcessFork(ref a);
                return a.Finish().IsSuccess && Run(registration, op, (ProcessForkCallback callback) => callback(in info));
            }

            case IsolationOp.ExecResult:
            {
                ExecResultInfo info = ProcessNotificationCodec.ReadExecResult(ref a);
                return a.Finish().IsSuccess && Run(registration, op, (ExecResultCallback callback) => callback(in info));
            }

            case IsolationOp.ObjectPost:
            {
                ObjectPostOperationInfo info = ObjectCodec.ReadPost(ref a);
                return a.Finish().IsSuccess && Run(registration, op, (ObjectPostCallback callback) => callback(in info));
            }

            default:
                return false;
        }
    }

    /// <summary>Runs the callback kept under <paramref name="registration"/>; true (well-formed) whatever it did.</summary>
    private bool Run<TCallback>(int registration, IsolationOp op, Action<TCallback> run)
        where TCallback : Delegate
    {
        try
        {
            if (_context.Find(registration) is not TCallback callback)
            {
                throw new InvalidOperationException("no " + op + " registration " + registration + " in this host");
            }

            run(callback);
        }
#pragma warning disable CA1031 // The driver's exception is reported, as the kernel's notification dispatch contains it.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _ = _context.ReportEvent("fault", "a " + op + " callback threw " + e.GetType().Name + ": " + e.Message, 0, null);
        }

        return true;
    }
}
