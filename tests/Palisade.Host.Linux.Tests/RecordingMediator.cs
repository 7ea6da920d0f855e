using System.Collections.Concurrent;
using System.Text;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Tests;

/// <summary>A small real policy for tests: records what it is asked and denies what its predicates say.</summary>
internal sealed class RecordingMediator(SyscallFamilies families) : ISyscallMediator
{
    public SyscallFamilies Subscriptions { get; } = families;

    public ConcurrentQueue<string> Events { get; } = new();

    public Func<NetworkOperation, int, int, bool> DenyNetwork { get; init; } = (_, _, _) => false;

    public Func<ProcessAccessCall, bool> DenyProcessAccess { get; init; } = _ => false;

    /// <summary>True to have the supervisor perform accepts, deciding each connection here.</summary>
    public bool MediateAccept { get; init; }

    public Func<ProcessCreateCall, bool> DenyCreate { get; init; } = _ => false;

    public Func<string, bool> DenyExecImage { get; init; } = _ => false;

    /// <summary>What <see cref="PreOpen"/> answers: 0 (allow, post decision follows) unless set.</summary>
    public int PreOpenResult { get; init; }

    public int PostOpens;

    public int PreOpen(in Requester requester, in OpenCall request) => PreOpenResult;

    public int TakeHeldFile() => -1;

    public void WaiterGone(in Requester requester) => Events.Enqueue($"gone {requester.ThreadId}");

    public int PostOpen(in Requester requester, in OpenCall request, in OpenedFile file)
    {
        Interlocked.Increment(ref PostOpens);
        return 0;
    }

    public int PathOperation(in Requester requester, in PathOperationCall request) => 0;

    public void PathOperationCompleted(in Requester requester, in PathOperationCall request, int error) =>
        Events.Enqueue($"completed {request.Kind} {Encoding.UTF8.GetString(request.Path)} error={error}");

    public void Close(in Requester requester, int fd) => Events.Enqueue($"close {fd}");

    public int Exec(in Requester requester, in ExecCall request)
    {
        string image = Encoding.UTF8.GetString(request.ImagePath);
        Events.Enqueue($"exec {Encoding.UTF8.GetString(request.Path)} -> {image}");
        return DenyExecImage(image) ? 13 : 0;
    }

    public int Network(in Requester requester, in NetworkCall request)
    {
        Events.Enqueue($"{request.Operation} family={request.Family} local={request.LocalPort} remote={request.RemotePort}");
        return DenyNetwork(request.Operation, request.LocalPort, request.RemotePort) ? 13 : 0;
    }

    public bool MediatesAccept(int family) => MediateAccept;

    public void FlowEstablished(in Requester requester, in NetworkCall request, int socket) =>
        Events.Enqueue($"flow {request.Operation} local={request.LocalPort} remote={request.RemotePort}");

    public int ProcessAccess(in Requester requester, in ProcessAccessCall request)
    {
        Events.Enqueue($"access {request.SystemCall} target={request.TargetProcessId} rights={request.Rights}");
        return DenyProcessAccess(request) ? 1 : 0;
    }

    public int ProcessCreate(in Requester requester, in ProcessCreateCall request)
    {
        Events.Enqueue($"create {request.Kind} by {requester.ProcessId}");
        return DenyCreate(request) ? 11 : 0;
    }

    public void ProcessStarted(in Requester requester, int parentProcessId) =>
        Events.Enqueue($"started {requester.ProcessId} parent={parentProcessId}");

    public bool TryTakeEndedProcess(out int processId)
    {
        processId = 0;
        return false;
    }

    public void ThreadStarted(in Requester requester) =>
        Events.Enqueue($"thread {requester.ThreadId} of {requester.ProcessId}");

    public void ProcessExit(in Requester requester, bool wholeProcess, int status) =>
        Events.Enqueue($"exit {requester.ProcessId} whole={wholeProcess} status={status}");

    public void Drain()
    {
    }
}
