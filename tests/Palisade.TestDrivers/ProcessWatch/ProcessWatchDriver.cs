using System.Text;
using Palisade.Api;

namespace Palisade.TestDrivers.ProcessWatch;

/// <summary>
/// Reports what the process notifications tell, one event each: <c>fork</c> (the new process, its parent and both start
/// keys), <c>create</c> (start keys, parent, working directory, argv, and the environment strings whose name starts with
/// <c>PW_</c>, so that the event stays within an event's 4096 characters) and <c>exec-result</c> (start key, outcome,
/// errno). Strings are written as the hex of their UTF-8 bytes, so that the test reads back exactly what the driver was
/// given (spaces, empty strings, any character). Also <c>exit</c> (pid, start key, exit code, signal), and a process whose
/// image is named <c>terminate-me</c> that executed is ended with <see cref="IProcessCallbacks.TerminateProcess"/>, reported
/// as <c>terminate</c> (pid, the call's status).
/// </summary>
public sealed class ProcessWatchDriver : IDriver
{
    private IDriverContext? _context;

    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        Status s = context.Processes.RegisterProcessFork(OnFork, out _);
        if (s.IsSuccess)
        {
            s = context.Processes.RegisterProcessCreate(OnCreate, out _);
        }

        if (s.IsSuccess)
        {
            s = context.Processes.RegisterProcessExit(OnExit, out _);
        }

        return s.IsSuccess ? context.Processes.RegisterExecResult(OnExecResult, out _) : s;
    }

    private void OnExit(in ProcessExitInfo info) =>
        _context?.ReportEvent("exit", $"pid={info.ProcessId} key={info.ProcessStartKey} code={info.ExitCode} signal={info.Signal}", info.ProcessId, null);

    private void OnFork(in ProcessForkInfo info) =>
        _context?.ReportEvent("fork", $"pid={info.ProcessId} key={info.ProcessStartKey} parent={info.ParentProcessId} pkey={info.ParentProcessStartKey} image={Hex(info.ImagePath)}", info.ProcessId, null);

    private Status OnCreate(in ProcessCreateInfo info)
    {
        _context?.ReportEvent("create",
            $"pid={info.ProcessId} key={info.ProcessStartKey} parent={info.ParentProcessId} pkey={info.ParentProcessStartKey} image={Hex(info.ImagePath)} cwd={Hex(info.WorkingDirectory ?? "")} argv={List(info.Arguments)} envc={info.EnvironmentVariables.Count} env={List([.. info.EnvironmentVariables.Where(e => e.StartsWith("PW_", StringComparison.Ordinal))])}",
            info.ProcessId, null);
        return Status.Success;
    }

    private void OnExecResult(in ExecResultInfo info)
    {
        _context?.ReportEvent("exec-result", $"pid={info.ProcessId} key={info.ProcessStartKey} ok={(info.Succeeded ? "true" : "false")} errno={info.Errno} image={Hex(info.ImagePath)}", info.ProcessId, null);
        if (info.Succeeded && Path.GetFileName(info.ImagePath) == "terminate-me" && _context is { } context)
        {
            Status s = context.Processes.TerminateProcess(info.ProcessStartKey);
            context.ReportEvent("terminate", $"pid={info.ProcessId} status={s.Name}", info.ProcessId, null);
        }
    }

    /// <summary>"N:" then the strings' hex, comma-separated (so an empty string is an empty item).</summary>
    private static string List(IReadOnlyList<string> strings)
    {
        var b = new StringBuilder();
        b.Append(strings.Count).Append(':');
        for (int i = 0; i < strings.Count; i++)
        {
            b.Append(i == 0 ? "" : ",").Append(Hex(strings[i]));
        }

        return b.ToString();
    }

    private static string Hex(string s) => Convert.ToHexString(Encoding.UTF8.GetBytes(s));

    public void Unload()
    {
    }
}
