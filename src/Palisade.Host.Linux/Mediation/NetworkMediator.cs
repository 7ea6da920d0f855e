using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Supervision;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// The socket family of <see cref="KernelMediator"/> (connect, bind, listen, accept, sends with an address): IPv4 and
/// IPv6 operations at a layer some filter watches go to the network filter engine, with the program's path, image
/// identity, arguments and (where a filter tests it) image digest; flows established are reported to the flow
/// callbacks and followed until they close (<see cref="FlowTracker"/>).
/// </summary>
internal sealed class NetworkMediator(KernelHost host) : IDisposable
{
    private readonly ApplicationFacts _facts = new();
    private readonly FlowTracker _flows = new(host);

    /// <summary>The filter (and its driver) that decided this thread's last classification: the flow that classification
    /// establishes, reported on the same thread right after, carries them as its verdict.</summary>
    [ThreadStatic]
    private static string? t_decidingFilter, t_decidingDriver;

    /// <summary>0 to permit; EACCES when a filter blocks, ECONNABORTED for a blocked accept (as Status documents).</summary>
    public int Decide(in Requester requester, in NetworkCall call)
    {
        t_decidingFilter = t_decidingDriver = null;
        if (!RequestDecoder.IsInternet(call.Family))
        {
            return 0; // Local sockets are not network traffic.
        }

        bool v6 = call.Family == Libc.AF_INET6;
        if (!host.IsWatched(call.Operation, v6))
        {
            return 0;
        }

        NetworkRequest request = Request(in requester, in call, host.TestsApplicationHash(call.Operation, v6));
        Status s = host.ClassifyNetwork(in requester, in request, out t_decidingFilter, out t_decidingDriver);
        if (s.IsSuccess)
        {
            return 0;
        }

        return call.Operation == NetworkOperation.Accept ? Errno.ECONNABORTED : StatusErrno.ErrnoOf(s);
    }

    /// <summary>True when the supervisor must accept connections of <paramref name="family"/> itself: a filter decides
    /// each one, or flows are reported.</summary>
    public bool MediatesAccept(int family) =>
        RequestDecoder.IsInternet(family) && (host.HasFlowCallbacks || host.IsWatched(NetworkOperation.Accept, family == Libc.AF_INET6));

    /// <summary>True when flows are reported (some driver registered a flow callback).</summary>
    public bool ReportsFlows => host.HasFlowCallbacks;

    /// <summary>
    /// A connect that succeeded or an accept that was permitted, on socket <paramref name="socket"/> (a copy the caller
    /// holds): reported to the flow callbacks with this thread's last verdict, and followed until it closes.
    /// </summary>
    public void FlowEstablished(in Requester requester, in NetworkCall call, int socket)
    {
        if (!host.HasFlowCallbacks || !RequestDecoder.IsInternet(call.Family))
        {
            return;
        }

        int protocol = RequestDecoder.ProtocolOf(call.Protocol, call.SocketType) switch
        {
            NetworkProtocol.Tcp => Libc.IPPROTO_TCP,
            NetworkProtocol.Udp => Libc.IPPROTO_UDP,
            _ => 0,
        };
        ulong cookie = SockDiag.CookieOf(socket);
        if (protocol == 0 || cookie == 0)
        {
            return; // A flow the sweep cannot follow is not reported: its close would never be.
        }

        NetworkRequest request = Request(in requester, in call, withDigest: false);
        NetworkFlowInfo flow = host.FlowEstablished(in requester, in request, t_decidingFilter, t_decidingDriver);
        _flows.Track(cookie, call.Family, protocol, in flow);
    }

    /// <summary>Reports the flows whose socket has closed by now (the end of a run).</summary>
    public void SweepFlows() => _flows.Sweep();

    public void Dispose() => _flows.Dispose();

    private NetworkRequest Request(in Requester requester, in NetworkCall call, bool withDigest)
    {
        int pid = requester.ProcessId;
        return RequestDecoder.Network(in call, ProcFs.ImageOf(pid)) with
        {
            ApplicationFile = ApplicationFacts.ImageIdentity(pid),
            ApplicationHash = withDigest ? _facts.ImageDigest(pid) : default,
            Arguments = ApplicationFacts.Arguments(pid),
        };
    }
}
