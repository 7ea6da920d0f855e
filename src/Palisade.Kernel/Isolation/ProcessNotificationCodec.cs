// The process notifications by value (ProcessExit, ThreadCreate/ThreadExit, ProcessFork, ExecResult records): every
// field of the info the kernel gives an in-kernel callback, after the host's registration number.
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal static class ProcessNotificationCodec
{
    public static void Write(ref RecordWriter w, in ProcessExitInfo info)
    {
        w.I32(info.ProcessId);
        w.I64(info.ProcessStartKey);
        w.I32(info.ExitCode);
        w.I32(info.Signal);
    }

    public static ProcessExitInfo ReadProcessExit(ref RecordReader r) => new()
    {
        ProcessId = r.I32(),
        ProcessStartKey = r.I64(),
        ExitCode = r.I32(),
        Signal = r.I32(),
    };

    public static void Write(ref RecordWriter w, in ThreadInfo info)
    {
        w.I32(info.ProcessId);
        w.I64(info.ProcessStartKey);
        w.I32(info.ThreadId);
        w.I32(info.CreatorThreadId);
    }

    public static ThreadInfo ReadThread(ref RecordReader r) => new()
    {
        ProcessId = r.I32(),
        ProcessStartKey = r.I64(),
        ThreadId = r.I32(),
        CreatorThreadId = r.I32(),
    };

    public static void Write(ref RecordWriter w, in ProcessForkInfo info)
    {
        w.I32(info.ProcessId);
        w.I64(info.ProcessStartKey);
        w.I32(info.ParentProcessId);
        w.I64(info.ParentProcessStartKey);
        w.String(info.ImagePath ?? "");
        w.Identity(info.File);
    }

    public static ProcessForkInfo ReadProcessFork(ref RecordReader r) => new()
    {
        ProcessId = r.I32(),
        ProcessStartKey = r.I64(),
        ParentProcessId = r.I32(),
        ParentProcessStartKey = r.I64(),
        ImagePath = r.Text(),
        File = r.Identity(),
    };

    public static void Write(ref RecordWriter w, in ExecResultInfo info)
    {
        w.I32(info.ProcessId);
        w.I64(info.ProcessStartKey);
        w.I32(info.ThreadId);
        w.String(info.ImagePath ?? "");
        w.Identity(info.File);
        w.Bool(info.Succeeded);
        w.I32(info.Errno);
    }

    public static ExecResultInfo ReadExecResult(ref RecordReader r) => new()
    {
        ProcessId = r.I32(),
        ProcessStartKey = r.I64(),
        ThreadId = r.I32(),
        ImagePath = r.Text(),
        File = r.Identity(),
        Succeeded = r.Bool(),
        Errno = r.I32(),
    };
}
