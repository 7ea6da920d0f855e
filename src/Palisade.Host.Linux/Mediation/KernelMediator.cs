using System.Runtime.CompilerServices;
using Palisade.Host.Linux.Filtering;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// The mediator <c>palisade run</c> uses: each decision point of the supervisor becomes a request to the kernel
/// through its hosting surface (<see cref="KernelHost"/>), so that the loaded drivers' callbacks decide. The work is
/// split by family, as the supervisor's is: <see cref="FileMediator"/>, <see cref="ProcessMediator"/>,
/// <see cref="NetworkMediator"/>; arguments are decoded in <see cref="RequestDecoder"/> and statuses mapped in
/// <see cref="StatusErrno"/>. The families it subscribes to follow from what the drivers registered, so a system call
/// no driver cares about never leaves the Linux kernel.
/// </summary>
internal sealed class KernelMediator : ISyscallMediator
{
    private readonly KernelHost _host;
    private readonly FileMediator _files;
    private readonly ProcessMediator _processes;
    private readonly NetworkMediator _network;

    public KernelMediator(KernelHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        _host = host;
        // The kernel boundary is part of the kernel: subscribed whatever the drivers registered, with no driver too.
        HostInterests interests = host.Interests;
        Subscriptions = RequestDecoder.FamiliesOf(interests) | SyscallFamilies.KernelBoundary;

        // A create a filter holds is opened by the supervisor's thread that serves it, as the guest's open will resolve.
        host.HeldFiles = Supervision.HeldCreates.Instance;
        _files = new FileMediator(host);
        if ((interests & HostInterests.FileCleanup) != 0 && Supervision.LastCloseWatch.IsSupported)
        {
            // Cleanup at the release of the open file description (the last close, or the exit of its last holder), seen
            // through fanotify on the files the supervisor opens for writing: no close(2) needs to leave the kernel.
            Subscriptions = (Subscriptions & ~SyscallFamilies.FileClose) | SyscallFamilies.FileOpen;
            LastCloses = _files;
        }
        _processes = new ProcessMediator(host);
        _network = new NetworkMediator(host);
        Supervision.HostProtection.WatchMediation(host);
    }

    /// <summary>The kernel's hosting surface this mediator asks (the supervisor registers its wiring through it).</summary>
    internal KernelHost Host => _host;

    public SyscallFamilies Subscriptions { get; }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public int PreOpen(in Requester requester, in OpenCall request) => _files.PreOpen(in requester, in request);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public int PostOpen(in Requester requester, in OpenCall request, in OpenedFile file) => _files.PostOpen(in requester, in file);

    public int TakeHeldFile() => _host.TakeHeldFile();

    public void WaiterGone(in Requester requester) => _host.CancelWaiting(in requester);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public int PathOperation(in Requester requester, in PathOperationCall request) => _files.PathOperation(in requester, in request);

    public void PathOperationCompleted(in Requester requester, in PathOperationCall request, int error) =>
        _files.PathOperationCompleted(in requester, error);

    public void Close(in Requester requester, int fd) => _files.Close(in requester, fd);

    public Supervision.ILastCloseSink? LastCloses { get; }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public int Exec(in Requester requester, in ExecCall request)
    {
        // The minifilters first, on the file about to run (an execute create), then the process callbacks.
        int denied = _files.Execute(in requester, in request);
        return denied != 0 ? denied : _processes.Exec(in requester, in request);
    }

    public void ExecCompleted(in Requester requester, in ExecOutcome outcome) => _processes.ExecCompleted(in requester, in outcome);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public int ImageMapping(in Requester requester, in ImageMappingCall request) => _processes.ImageMapping(in requester, in request);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public int Network(in Requester requester, in NetworkCall request) => _network.Decide(in requester, in request);

    public bool MediatesAccept(int family) => _network.MediatesAccept(family);

    public void FlowEstablished(in Requester requester, in NetworkCall request, int socket) =>
        _network.FlowEstablished(in requester, in request, socket);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public int ProcessAccess(in Requester requester, in ProcessAccessCall request) => _processes.Access(in requester, in request);

    public int ProcessCreate(in Requester requester, in ProcessCreateCall request) => 0;

    public void ProcessStarted(in Requester requester, int parentProcessId) => _processes.ProcessStarted(in requester, parentProcessId);

    public void ThreadStarted(in Requester requester) => _processes.ThreadStarted(in requester);

    public bool TryTakeEndedProcess(out int processId) => _processes.TryTakeEnded(out processId);

    public void ProcessExit(in Requester requester, bool wholeProcess, int status) => _processes.Exit(in requester, wholeProcess, status);

    public void Drain()
    {
        _processes.Drain();
        _network.SweepFlows();
    }

    public KernelFileKind KernelFileKindOf(Palisade.Api.FileIdentity identity) => _host.KernelFileKindOf(identity);

    /// <summary>
    /// A decision that threw (the supervisor answered the guest EPERM): written to standard error and to the kernel's
    /// event stream, beside the drivers' faults.
    /// </summary>
    public void ReportFault(Exception fault)
    {
        ArgumentNullException.ThrowIfNull(fault);
        Launch.HiddenVerbs.WriteFault(fault);
        _host.ReportFault(fault.GetType().Name + ": " + fault.Message);
    }
}
